"""The R-D harness's paper metrics and BD-rate tables (tools/bench/bench_rd.py) and the
ablations command (tools/bench/ablations.py): their pieces on synthetic curves and scores, and
one short run on a real clip (slow)."""

from __future__ import annotations

import json
import sys

import numpy as np
import pytest
from conftest import ROOT, need_media

sys.path.insert(0, str(ROOT / "tools" / "bench"))
import ablations
import bench_rd as R

from m3cvc_codec import metrics as M


def point(bpp, psnr, ms_ssim=None, lpips=None):
    p = {"bpp": bpp, "psnr_rgb": psnr, "ms_ssim": 0.5 + psnr / 100 if ms_ssim is None else ms_ssim}
    if lpips is not None:
        p["lpips"] = lpips
    return p


def curve(rates, psnrs, **kw):
    return [(f"s{i}", point(r, q, **kw)) for i, (r, q) in enumerate(zip(rates, psnrs))]


def test_bd_table_against_the_lowest_anchor_points_and_no_overlap():
    anchor = curve([0.01, 0.02, 0.04, 0.08, 0.16, 0.32], [20, 22, 24, 26, 28, 30])
    ser = {
        "x265": anchor,
        "m3cvc 1/16 interpolation (D_th)": curve([0.005, 0.01, 0.02], [20, 22, 24]),  # half the rate
        "m3cvc 1/8 prediction (D_th)": curve([0.001, 0.002], [12, 13]),  # far below the anchor
        "m3cvc 1/8 interpolation (D_th)": curve([0.001], [21]),  # one point: no curve
    }
    rows = R.bd_table(ser, points=4, metrics=("psnr_rgb",))
    by = {r["series"]: r for r in rows}
    assert by["m3cvc 1/16 interpolation (D_th)"]["bd_rate"] == pytest.approx(-50.0)
    assert by["m3cvc 1/16 interpolation (D_th)"]["anchor_settings"] == ["s0", "s1", "s2", "s3"]
    assert by["m3cvc 1/8 prediction (D_th)"]["bd_rate"] is None
    assert "do not overlap" in by["m3cvc 1/8 prediction (D_th)"]["why"]
    text = "\n".join(R.render_bd(rows, 4))
    assert (
        "| 1/16 interpolation (D_th) | -50.0 % (20 to 24) |" in text
        and "| 1/8 prediction (D_th) | no overlap |" in text
    )
    assert "crf" not in text and "s0, s1, s2, s3" in text
    assert "| 1/8 interpolation (D_th) | n/a: test: 1 points; the pchip fit needs at least 2 |" in text


def test_bd_table_uses_a_metric_only_where_every_point_has_it():
    ser = {"x264": curve([0.01, 0.02], [20, 22], lpips=0.5), "m3cvc a (D_th)": curve([0.01, 0.02], [20, 22])}
    assert {r["metric"] for r in R.bd_table(ser)} == {"psnr_rgb", "ms_ssim"}


def test_summarise_and_render_carry_lpips_and_clip_sim():
    row = {
        "bytes": 100,
        "frames": 2,
        "enc_s": 1.0,
        "dec_s": 1.0,
        "psnr_rgb": [20.0, 22.0],
        "psnr_y": [21.0, 23.0],
        "ms_ssim": [0.8, 0.9],
        "lpips": [0.2, 0.4],
    }
    s = R.summarise([row])
    assert s["lpips"] == pytest.approx(0.3) and "clip_sim" not in s
    rows = [dict(row, clip="juggle", codec="x264", setting=f"crf {c}", command="c", max_frames=None) for c in (51, 45)]
    text = R.render(rows, ["juggle"], None, {"metric_notes": ["CLIP-sim left out: no model"]})
    assert "| LPIPS | enc fps |" in text and "CLIP-sim left out: no model" in text


def test_score_adds_the_perceptual_metrics_per_frame():
    frames = [np.full((200, 200, 3), v, np.uint8) for v in (10, 200)]
    fake = {"lpips": lambda a, b: np.abs(a.astype(float) - b).mean(axis=(1, 2, 3))}
    out = R.score(frames, [f + 1 for f in frames], fake)
    assert out["lpips"] == [1.0, 1.0] and len(out["psnr_rgb"]) == 2


def test_perceptual_metrics_names_what_is_missing(tmp_path, monkeypatch):
    pytest.importorskip("torch")
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch-home"))
    monkeypatch.delenv(M.LPIPS_WEIGHTS_ENV, raising=False)
    metrics, notes = R.perceptual_metrics(["lpips"], lpips_weights=tmp_path)
    assert metrics == {} and len(notes) == 1
    assert notes[0].startswith("LPIPS left out: ") and M.LPIPS_BACKBONE_FILE in notes[0] and "\n" not in notes[0]


def test_threshold_for_count_matches_the_interval_counts():
    """On synthetic scores, the bisection finds a D_th giving each reachable clip count."""
    from m3cvc_codec.encoder import Analysis, select_keyframes
    from m3cvc_codec.keyframes import KeyframeParams

    rng = np.random.default_rng(4)
    jumps = rng.random(40)
    params = KeyframeParams(lambda1=1.0, lambda2=0.0, threshold=0.5, min_clip=2, max_clip=16)
    video = Analysis(input=None, settings=None, frame_count=40, semantic=lambda n, l: float(jumps[l:n].sum()) / 4)  # type: ignore[arg-type]
    for want in (3, 5, 8, 12):
        th, got = ablations.threshold_for_count(video, params, want)
        assert got == want
        from dataclasses import replace

        assert len(select_keyframes(video, replace(params, threshold=th)).clips) == want


def test_bd_rows_against_first_variant_and_anchor():
    def variant(study, name, scale):
        v = ablations.Variant(study, name)
        for i, (b, q) in enumerate([(1000, 20.0), (2000, 22.0), (4000, 24.0)]):
            row = {"bytes": int(b * scale), "frames": 4, "enc_s": 1, "dec_s": 1}
            row.update(psnr_rgb=[q] * 4, psnr_y=[q] * 4, ms_ssim=[0.5 + q / 100] * 4)
            v.points.append(ablations.Point(f"p{i}", {}, row))
        return v

    vs = [variant("mode", "interpolation", 1.0), variant("mode", "prediction", 2.0)]
    rows = ablations.bd_rows(vs, None, ["psnr_rgb"])
    assert "vs_reference_psnr_rgb" not in rows[0]
    assert rows[1]["vs_reference_psnr_rgb"]["bd_rate"] == pytest.approx(100.0)


@pytest.mark.slow
def test_ablations_command_on_a_real_clip(tmp_path):
    """The mode study on 8 frames of juggle, with x264 as the anchor and LPIPS on a
    random-weight AlexNet (a smoke test of the whole path: the figures mean nothing)."""
    pytest.importorskip("torch")
    need_media("videos", R.CLIPS["juggle"])
    import torch

    weights = tmp_path / "lpips"
    weights.mkdir()
    torch.manual_seed(0)
    torch.save(
        {f"features.{k}": v for k, v in M.alexnet_features().state_dict().items()}, weights / M.LPIPS_BACKBONE_FILE
    )
    torch.save(
        {f"lin{k}.model.1.weight": torch.rand(1, c, 1, 1) for k, c in enumerate(M.LPIPS_CHANNELS)},
        weights / M.LPIPS_LINEAR_FILE,
    )
    out = tmp_path / "out"
    argv = ["--studies", "mode", "--max-frames", "8", "--intervals", "4,2", "--anchor", "x264"]
    argv += ["--anchor-crfs", "51,45", "--metrics", "psnr,lpips", "--lpips-weights", str(weights), "--out", str(out)]
    assert ablations.main(argv) == 0
    result = json.loads((out / "ablations.json").read_text())
    names = [(v["study"], v["name"]) for v in result["variants"]]
    assert names == [("mode", "interpolation"), ("mode", "prediction")]
    assert result["metrics"] == ["lpips", "psnr_rgb"]
    for variant in result["variants"]:  # matched to the fixed intervals' 2 and 4 clips
        assert sorted(p["clips"] for p in variant["points"]) == [2, 4]
        assert all(p["lpips"] > 0 and p["bpp"] > 0 for p in variant["points"])
    assert [p["setting"] for p in result["anchor"]["points"]] == ["crf 51", "crf 45"]
    assert {r["variant"] for r in result["bd_rate"]} == {"interpolation", "prediction"}
    md = (out / "ablations.md").read_text()
    assert "| mode | prediction | D_th=" in md and "vs x264 (veryslow), LPIPS" in md
