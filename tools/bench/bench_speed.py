#!/usr/bin/env python3
"""Encode and decode speed of the lite pack at 512x320 on this machine (2 cores).

    python tools/bench/bench_speed.py [--runs 3]

Targets (issue 3): decode at least 16 frames/s and encode at least 8 frames/s at 512x320.
The input is a held-back clip already preprocessed to 512x320 at 8 fps and stored
losslessly (FFV1), so the figures measure the codec, not the source decoder.  Encode
covers both passes (scores for keyframe selection, keyframe coding) and writing the
stream; decode covers reading, keyframe decoding, reconstruction and writing a .y4m.
"""

from __future__ import annotations

import argparse
import datetime
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

MEDIA = ROOT.parent / "shared" / "media" / "videos"
CLIPS = ("sam2_05_default_juggle.mp4", "mmaction2_test_pool.mp4")  # held back from training


def lossless_copy(src: Path, dst: Path) -> int:
    import av

    from m3cvc_codec.video_io import read_frames

    frames = list(read_frames(src, size=(512, 320), fps=8))
    with av.open(str(dst), "w") as out:
        stream = out.add_stream("ffv1", rate=8)
        stream.width, stream.height, stream.pix_fmt = 512, 320, "bgr0"
        for arr in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(arr, format="rgb24").reformat(format="bgr0")):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return len(frames)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--no-doc", action="store_true", help="print only; leave docs/benchmarks.md alone")
    args = p.parse_args(argv)
    import m3cvc_codec

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name in CLIPS:
            src = Path(tmp) / f"{name}.mkv"
            n = lossless_copy(MEDIA / name, src)
            for grid in ("1/16", "1/8"):
                for mode in ("interpolation", "prediction"):
                    enc, dec = [], []
                    for _ in range(args.runs):
                        out = Path(tmp) / "s.m3v"
                        t = time.perf_counter()
                        report = m3cvc_codec.encode(src, out, grid=grid, mode=mode)
                        enc.append(time.perf_counter() - t)
                        t = time.perf_counter()
                        m3cvc_codec.decode(out, Path(tmp) / "d.y4m")
                        dec.append(time.perf_counter() - t)
                    rows.append(
                        (
                            name,
                            grid,
                            mode,
                            n,
                            len(report.clips),
                            report.bpp,
                            n / statistics.median(enc),
                            n / statistics.median(dec),
                        )
                    )
    lines = [
        "## Encode and decode speed (lite pack, 512x320, 8 fps)",
        "",
        f"`python tools/bench/bench_speed.py --runs {args.runs}`, {datetime.date.today().isoformat()}, on the "
        "2-core development machine with nothing else running; median of the runs; default keyframe selection. "
        "Targets: decode at least 16 frames/s, encode at least 8 frames/s.",
        "",
        "| clip | grid | mode | frames | clips | bpp | encode fps | decode fps |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name, grid, mode, n, clips, bpp, e, d in rows:
        lines.append(f"| {name} | {grid} | {mode} | {n} | {clips} | {bpp:.5f} | **{e:.1f}** | **{d:.1f}** |")
    text = "\n".join(lines) + "\n"
    print(text)
    if not args.no_doc:
        from report import update_section

        update_section("speed", text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
