#!/usr/bin/env python3
"""The paper's ablations (Table I) as one command: keyframe selection strategy, dialogue turns,
interpolation vs prediction, each an R-D curve of the m3cvc codec, compared by BD-rate.

    python tools/bench/ablations.py                          # every study on 32 frames of juggle
    python tools/bench/ablations.py --studies selection,mode --max-frames 24
    python tools/bench/ablations.py --tiny-vlm               # the turns study with the tiny random VLM
    python tools/bench/ablations.py --vlm Qwen/Qwen2-VL-7B-Instruct --models DIR --device cuda

Studies (the paper's section III-C; every variant is a curve over the same keyframe counts):

- ``selection``: a keyframe every N frames (``--intervals``, default 16,8,4,2) against the
  paper's adaptive D(Fn, Fl) selection, semantic only (lambda2 = 0) and semantic + motion (the
  scorer's defaults).  As in the paper, "with an equal number of keyframes": for each interval,
  the adaptive variants use the threshold D_th that gives the same number of clips (found by
  bisection on the encoder's own analysis; the nearest count where none is equal).
- ``turns``: the dialogue's 1, 2 and 4 turns per keyframe (``DialogueDescriptions``, the
  encoder's ``--dialogue-turns``) with the semantic + motion selection above; needs a VLM
  (``--vlm ID`` with ``--models DIR``, or ``--tiny-vlm``: tools/make_tiny_models.py's random
  Qwen2-VL), otherwise the study is skipped with a line saying so.  The streams leave the
  dialogue's prompts out (``--no-record-prompts``; ``--record-prompts`` keeps them): the prompts
  record grows with the turn count and would otherwise decide this study's rates.
- ``mode``: interpolation against prediction with the same selection.

Each point is encoded and decoded through ``m3cvc_codec.encode`` / ``decode`` (bench_rd's
``run_m3cvc``) from a lossless copy of the preprocessed frames, and scored by bench_rd's metrics:
PSNR, MS-SSIM, and the paper's LPIPS and CLIP-sim where their weights are local (``--metrics``,
``--lpips-weights``, ``--models``, ``--clip-model``).  BD-rate (``bd.py``, pchip) of every
variant is given against the study's first variant and against an anchor codec's lowest-rate
points (``--anchor``, default x265 veryslow at CRF 51, 48, 45, 42, run on the same frames),
for each metric, or "no overlap" where the curves share no quality range.  The paper reports
BD-rate on LPIPS against VTM; VTM is not available here.

What the figures mean depends on the models: the lite pack does not condition its
reconstruction on the texts, so with it the turns study measures only what the texts cost
(their bytes), and a random tiny VLM writes random texts.  Results: a markdown table (printed,
and in ``--out``/ablations.md) and the same in JSON (``--out``/ablations.json).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import shlex
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_rd as R  # tools/bench is not a package: bench_rd.py beside this file

ROOT = Path(__file__).resolve().parents[2]
STUDIES = ("selection", "turns", "mode")
TURNS = (1, 2, 4)


@dataclasses.dataclass
class Point:
    """One encoded and decoded setting of a variant."""

    setting: str
    kwargs: dict
    row: dict  # bench_rd's run_m3cvc result


@dataclasses.dataclass
class Variant:
    study: str
    name: str
    points: list[Point] = dataclasses.field(default_factory=list)

    def curve(self) -> list[tuple[str, dict]]:
        """bench_rd's (setting, pooled point) list, by rate."""
        out = [(p.setting, R.summarise([p.row])) for p in self.points]
        return sorted(out, key=lambda sp: sp[1]["bpp"])


def threshold_for_count(video, params, clips: int, iterations: int = 40) -> tuple[float, int]:
    """The D_th whose selection gives ``clips`` clips (or the nearest count), by bisection:
    the count falls as the threshold rises."""
    from m3cvc_codec.encoder import select_keyframes

    def count(th: float) -> int:
        return len(select_keyframes(video, dataclasses.replace(params, threshold=th)).clips)

    lo, hi = 0.0, params.lambda1 * 2.0 + params.lambda2 * 1e4  # above any D: only forced keyframes
    best = min(((lo, count(lo)), (hi, count(hi))), key=lambda tc: abs(tc[1] - clips))
    for _ in range(iterations):
        mid = (lo + hi) / 2
        n = count(mid)
        if abs(n - clips) < abs(best[1] - clips) or (n == clips and best[1] == clips and mid < best[0]):
            best = (mid, n)
        if n > clips:
            lo = mid
        elif n < clips:
            hi = mid
        else:
            hi = mid  # the smallest threshold with that count: the most sensitive selection
    return best


def matched_thresholds(src_file: Path, counts: list[int], pack: str, grid: str, lambda2) -> list[tuple[float, int]]:
    """For each clip count, (D_th, count it gives) with the scorer's defaults and ``lambda2``."""
    from m3cvc_codec import encoder

    _, settings, scorer = encoder.prepare(pack, grid=grid, lambda2=lambda2, size=(R.WIDTH, R.HEIGHT), fps=R.FPS)
    video = encoder.analyse(str(src_file), scorer, settings)
    return [threshold_for_count(video, settings.params, n) for n in counts]


def _tiny_vlm(root: Path) -> tuple[str, str]:
    """tools/make_tiny_models.py's random Qwen2-VL in ``root``: (model id, models folder)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("make_tiny_models", ROOT / "tools" / "make_tiny_models.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.make_tiny_models(root, ["qwen2-vl"])
    from m3cvc_codec.models.vlm import DEFAULT_VLM

    return DEFAULT_VLM, str(root)


def bd_rows(variants: list[Variant], anchor: list[tuple[str, dict]] | None, metrics: list[str]) -> list[dict]:
    """BD-rate of each variant against its study's first variant and against the anchor."""
    rows = []
    for study in dict.fromkeys(v.study for v in variants):
        group = [v for v in variants if v.study == study]
        reference = group[0]
        for v in group:
            row: dict = {"study": study, "variant": v.name, "reference": reference.name}
            for metric in metrics:
                if v is not reference:
                    row[f"vs_reference_{metric}"] = R.bd_against(reference.curve(), v.curve(), metric)
                if anchor is not None:
                    row[f"vs_anchor_{metric}"] = R.bd_against(anchor, v.curve(), metric)
            rows.append(row)
    return rows


def render(variants, bd, metrics, anchor_name, anchor, meta) -> str:
    labels = {m: R.METRICS[m] for m in metrics}
    if "lpips" in labels:
        labels["lpips"] = meta.get("lpips_label", "LPIPS")
    lines = ["## Ablations (the paper's Table I)", ""]
    lines.append(f"Command: `{meta['command']}`. Date: {meta['date']}. Machine: {meta['machine']}.")
    lines.append("")
    lines.append(
        f"Clip: `{meta['clip_file']}`, first {meta['frames']} frames, 512x320 at 8 fps (bench_rd's loader). "
        f"Pack: {meta['pack']}, grid {meta['grid']}. Description provider for the turns study: {meta['vlm']}."
    )
    lines.append("")
    for note in meta.get("notes", []):
        lines.append(note)
        lines.append("")
    lines.append(
        "| study | variant | setting | clips | bpp | text bytes | PSNR-RGB (dB) | MS-SSIM | "
        + "".join(f"{labels[m]} | " for m in metrics if m not in ("psnr_rgb", "ms_ssim"))
        + "enc s |"
    )
    extra = [m for m in metrics if m not in ("psnr_rgb", "ms_ssim")]
    lines.append("|---|---|---|---|---|---|---|---|" + "---|" * len(extra) + "---|")
    for v in variants:
        for p in sorted(v.points, key=lambda p: p.row["bytes"]):
            s = R.summarise([p.row])
            lines.append(
                f"| {v.study} | {v.name} | {p.setting} | {p.row['clips']} | {s['bpp']:.5f} | {p.row.get('text_bytes') or 0} | "
                f"{s['psnr_rgb']:.2f} | {s['ms_ssim']:.4f} | "
                + "".join(f"{s[m]:.4f} | " if m in s else "- | " for m in extra)
                + f"{p.row['enc_s']:.1f} |"
            )
    lines.append("")
    if anchor is not None:
        lines.append(
            f"Anchor {anchor_name}: "
            + "; ".join(
                f"{s} {p['bpp']:.4f} bpp, PSNR-RGB {p['psnr_rgb']:.2f} dB, MS-SSIM {p['ms_ssim']:.4f}"
                + "".join(f", {labels[m]} {p[m]:.4f}" for m in extra if m in p)
                for s, p in anchor
            )
            + "."
        )
        lines.append("")
    lines.append(
        "BD-rate (Bjontegaard, pchip fit, percent; negative = less rate for the same quality) of each variant "
        "against its study's first variant, and against the anchor's lowest-rate points; in brackets the quality "
        "range both curves cover, which the delta is averaged over (a narrow one makes a fragile figure):"
    )
    lines.append("")
    cols = [(f"vs_reference_{m}", f"vs first, {labels[m]}") for m in metrics]
    if anchor is not None:
        cols += [(f"vs_anchor_{m}", f"vs {anchor_name}, {labels[m]}") for m in metrics]
    lines.append("| study | variant | " + " | ".join(c[1] for c in cols) + " |")
    lines.append("|---|---|" + "---|" * len(cols))
    for row in bd:
        lines.append(
            f"| {row['study']} | {row['variant']} | " + " | ".join(R.bd_cell(row.get(k)) for k, _ in cols) + " |"
        )
    lines.append("")
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--studies", default=",".join(STUDIES), help=f"comma list of {','.join(STUDIES)}")
    ap.add_argument("--clip", default="juggle", choices=sorted(R.CLIPS), help="which of bench_rd's clips")
    ap.add_argument("--max-frames", type=int, default=32, help="the clip's first N frames (default 32: 4 s)")
    ap.add_argument("--intervals", type=R._ints, default=[16, 8, 4, 2], help="keyframe intervals (curve points)")
    ap.add_argument("--pack", default="lite")
    ap.add_argument("--grid", default="1/16")
    ap.add_argument("--metrics", type=lambda s: [m for m in s.split(",") if m], default=list(R.METRIC_CHOICES))
    ap.add_argument("--lpips-weights", metavar="DIR", default=None, help="as for bench_rd.py")
    ap.add_argument("--models", metavar="DIR", default=None, help="local models folder (CLIP, LPIPS, the VLM)")
    ap.add_argument("--clip-model", default=None, help="CLIP for CLIP-sim")
    ap.add_argument("--device", default="cpu", help="where the metrics' and the VLM's models run")
    ap.add_argument("--vlm", default=None, help="the dialogue's model (id or folder) for the turns study")
    ap.add_argument("--tiny-vlm", action="store_true", help="the turns study with the tiny random Qwen2-VL")
    ap.add_argument("--max-new-tokens", type=int, default=None, help="per dialogue turn (default: the encoder's)")
    ap.add_argument(
        "--record-prompts",
        action="store_true",
        help="turns study: keep the dialogue's prompts in the streams (left out by default: the record grows "
        "with the turn count, ~1.2 kB for 4 turns, and the paper's rates do not include it)",
    )
    ap.add_argument("--anchor", default="x265", choices=sorted(R.TRADITIONAL) + ["none"])
    ap.add_argument("--anchor-crfs", type=R._ints, default=None, help="default 51,48,45,42 (SVT-AV1: 63,60,57,54)")
    ap.add_argument(
        "--anchor-scale",
        type=float,
        default=1.0,
        help="code the anchor at this fraction of 512x320 (area-downscaled, decoded frames bicubic-upscaled "
        "back): reaches lower rates and qualities than CRF alone, where the m3cvc curves may lie",
    )
    ap.add_argument("--out", type=Path, default=R.OUT, help="folder for ablations.md and ablations.json")
    args = ap.parse_args(argv)

    studies = [s for s in args.studies.split(",") if s]
    for s in studies:
        if s not in STUDIES:
            ap.error(f"unknown study {s!r}")
    for m in args.metrics:
        if m not in R.METRIC_CHOICES:
            ap.error(f"unknown metric {m!r}")
    if args.vlm and args.tiny_vlm:
        ap.error("give --vlm or --tiny-vlm, not both")
    if not 0 < args.anchor_scale <= 1:
        ap.error("--anchor-scale must be in (0, 1]")
    if len(args.intervals) < 2:
        ap.error("--intervals needs at least two values (a curve)")
    from m3cvc_codec.models.hub import quiet_model_loading

    quiet_model_loading()  # no progress bars from transformers while CLIP or the VLM load
    os.environ.setdefault("SVT_LOG", "1")
    given = list(sys.argv[1:] if argv is None else argv)
    meta: dict = {
        "command": " ".join(["python tools/bench/ablations.py", *(shlex.quote(a) for a in given)]),
        "date": time.strftime("%Y-%m-%d", time.gmtime()),
        "machine": f"{os.cpu_count()}-core CPU" + (f", {args.device}" if args.device != "cpu" else ", no GPU"),
        "pack": args.pack,
        "grid": args.grid,
        "clip_file": R.CLIPS[args.clip],
        "notes": [],
    }
    path = R.MEDIA / "videos" / R.CLIPS[args.clip]
    if not path.exists():
        print(f"{path} is missing (set M3CVC_MEDIA)", file=sys.stderr)
        return 1
    why = R.m3cvc_unavailable(args.pack)
    if why:
        print(f"m3cvc unavailable: {why}", file=sys.stderr)
        return 1
    t0 = time.perf_counter()
    src = R.load_clip(path, max_frames=args.max_frames)
    meta["frames"] = len(src)
    perceptual, notes = R.perceptual_metrics(
        args.metrics,
        lpips_weights=args.lpips_weights,
        models_dir=args.models,
        clip_model=args.clip_model,
        device=args.device,
    )
    meta["notes"] += notes
    meta["lpips_label"] = R.metric_label("lpips", perceptual)
    asked = {"psnr_rgb": "psnr" in args.metrics, "ms_ssim": "ms_ssim" in args.metrics}
    metrics = [m for m in R.BD_METRICS if m in perceptual or asked.get(m)]
    for note in notes:
        print(note, file=sys.stderr)

    from m3cvc_codec.packs.config import RuntimeOptions

    variants: list[Variant] = []
    cache: dict[str, dict] = {}
    anchor = None
    with tempfile.TemporaryDirectory(prefix="ablations_") as tmp:
        work = Path(tmp)
        src_file = work / "source.mkv"
        R.write_lossless(src, src_file)

        def run(variant: Variant, setting: str, kwargs: dict) -> None:
            key = json.dumps({k: v for k, v in kwargs.items() if k != "options"}, sort_keys=True, default=str)
            if key not in cache:
                cache[key] = R.run_m3cvc(kwargs, src_file, src, work, perceptual)
                s = R.summarise([cache[key]])
                print(
                    f"  {variant.study} / {variant.name} / {setting}: {cache[key]['clips']} clips, {s['bpp']:.5f} bpp, "
                    f"{s['psnr_rgb']:.2f} dB [{time.perf_counter() - t0:.0f} s]",
                    file=sys.stderr,
                )
            variant.points.append(Point(setting, kwargs, cache[key]))

        # the mode spelt out, so the mode study's interpolation runs are the selection study's (cached)
        base = {
            "pack": args.pack,
            "grid": args.grid,
            "size": (R.WIDTH, R.HEIGHT),
            "fps": R.FPS,
            "mode": "interpolation",
        }
        fixed = Variant("selection", "fixed interval")
        for iv in args.intervals:
            run(fixed, f"interval={iv}", {**base, "interval": iv})
        counts = [p.row["clips"] for p in fixed.points]
        adaptive = "semantic + motion"
        matched = {adaptive: matched_thresholds(src_file, counts, args.pack, args.grid, None)}
        if "selection" in studies:
            semantic_only = "semantic only (lambda2=0)"
            matched = {semantic_only: matched_thresholds(src_file, counts, args.pack, args.grid, 0.0), **matched}

        def adaptive_points(variant: Variant, extra: dict, which: str = adaptive) -> None:
            for (th, n), want in zip(matched[which], counts):
                lam = {"lambda2": 0.0} if which.startswith("semantic only") else {}
                run(variant, f"D_th={th:.4g} ({n} clips for {want})", {**base, **lam, "threshold": th, **extra})

        if "selection" in studies:
            variants.append(fixed)
            for name in matched:
                v = Variant("selection", name)
                adaptive_points(v, {}, name)
                variants.append(v)
        if "turns" in studies:
            vlm, models_dir = args.vlm, args.models
            if args.tiny_vlm:
                vlm, models_dir = _tiny_vlm(work / "tiny-models")
                meta["vlm"] = "the tiny random-weight Qwen2-VL of tools/make_tiny_models.py (random texts)"
            elif vlm:
                meta["vlm"] = f"`{vlm}`"
            if vlm is None:
                line = "turns study skipped: it needs a VLM (--vlm ID with --models DIR, or --tiny-vlm)"
                print(line, file=sys.stderr)
                meta["notes"].append(line)
                meta["vlm"] = "none (study skipped)"
            else:
                options = RuntimeOptions(device=args.device, models_dir=models_dir)
                for turns in TURNS:
                    v = Variant("turns", f"{turns} turn{'s' if turns > 1 else ''}")
                    extra = {"describe": "vlm", "vlm": vlm, "dialogue_turns": turns, "options": options}
                    if not args.record_prompts:  # the paper's streams carry no prompts
                        extra["record_prompts"] = False
                    if args.max_new_tokens:
                        extra["max_new_tokens"] = args.max_new_tokens
                    adaptive_points(v, extra)
                    variants.append(v)
        meta.setdefault("vlm", "not used")
        if "mode" in studies:
            for mode in ("interpolation", "prediction"):
                v = Variant("mode", mode)
                adaptive_points(v, {"mode": mode})
                variants.append(v)

        if args.anchor != "none":
            crfs = args.anchor_crfs or ([63, 60, 57, 54] if args.anchor == "svtav1" else [51, 48, 45, 42])
            yuv = R.to_yuv(src, args.anchor_scale)
            anchor = sorted(
                ((f"crf {c}", R.summarise([R.run_traditional(args.anchor, c, yuv, src, perceptual)])) for c in crfs),
                key=lambda sp: sp[1]["bpp"],
            )
            print(f"  anchor {args.anchor}: done [{time.perf_counter() - t0:.0f} s]", file=sys.stderr)

    anchor_name = R.CODEC_LABEL.get(args.anchor, args.anchor)
    if args.anchor_scale != 1.0:
        anchor_name += f" at {args.anchor_scale:g}x size"
    bd = bd_rows(variants, anchor, metrics)
    text = render(variants, bd, metrics, anchor_name, anchor, meta)
    args.out.mkdir(parents=True, exist_ok=True)
    result = {
        "meta": meta,
        "metrics": metrics,
        "variants": [
            {
                "study": v.study,
                "name": v.name,
                "points": [
                    {
                        "setting": p.setting,
                        "clips": p.row["clips"],
                        "bytes": p.row["bytes"],
                        "text_bytes": p.row.get("text_bytes"),
                        **R.summarise([p.row]),
                    }
                    for p in v.points
                ],
            }
            for v in variants
        ],
        "anchor": {"codec": args.anchor, "scale": args.anchor_scale, "points": [{"setting": s, **p} for s, p in anchor]}
        if anchor
        else None,
        "bd_rate": bd,
    }
    from m3cvc_format.atomic import atomic_file

    with atomic_file(args.out / "ablations.md") as f:
        f.write((text + "\n").encode())
    with atomic_file(args.out / "ablations.json") as f:
        f.write(json.dumps(result, indent=1).encode())
    print(text)
    print(f"done in {time.perf_counter() - t0:.0f} s; wrote {args.out / 'ablations.md'} and .json", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
