#!/usr/bin/env python3
"""Time to the first frame after a random seek in a 30-minute stream, against decoding
from the start, through the PyAV-compatible API (m3cvc_format.open) and the lite pack.

    python tools/bench/bench_seek.py [--minutes 30] [--seeks 12]

The stream: 512x320, 8 fps, 16-frame interpolation clips (900 clips for 30 minutes) whose
keyframes are real lite-pack index maps of frames from the test videos, cycled; each
distinct map is coded once (the layout is the same as a real encode's).  A seek opens the
file, seeks to a random time (PyAV units: microseconds, backward=True, landing on the start
of the clip that holds it) and decodes forward to the target frame.  Decoding from the
start is measured over the first minute and extrapolated linearly to each target (its
cost grows with the position, the seek's does not).
"""

from __future__ import annotations

import argparse
import datetime
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
MEDIA = ROOT.parent / "shared" / "media" / "videos"


def build(path: Path, minutes: float) -> int:
    import m3cvc_format as m
    from m3cvc_codec.packs import load_pack
    from m3cvc_codec.video_io import read_frames

    pack = load_pack("lite")
    grid = pack.grids[0]
    maps = []
    for name in ("sam2_01_dog.mp4", "sam2_02_cups.mp4", "decord_flipping_a_pancake.mkv"):
        maps += [pack.encode_keyframe(f, grid) for f in list(read_frames(MEDIA / name))[::16]]
    n_clips = int(minutes * 60 * 8 / 16)
    gh, gw = grid.grid(512, 320)
    header = m.Header(
        width=512,
        height=320,
        fps=8,
        grid_h=gh,
        grid_w=gw,
        pack_id="lite",
        pack_hash=pack.weights_hash(grid),
        frame_count=16 * n_clips,
    )
    with m.Writer(path, header) as w:
        for k in range(n_clips):
            w.write_clip(
                m.Clip(
                    index=k,
                    first_frame=16 * k,
                    frame_count=16,
                    mode=m.Mode.PREDICTION if k == n_clips - 1 else m.Mode.INTERPOLATION,
                    index_map=maps[k % len(maps)],
                )
            )
    return 16 * n_clips


def first_frame_after_seek(path: Path, target: int) -> tuple[float, float, int]:
    """(seconds to the first decoded frame, seconds to the target frame, frames decoded)."""
    import m3cvc_format

    t = time.perf_counter()
    first = None
    with m3cvc_format.open(path) as c:
        stream = c.streams.video[0]
        c.seek(int(target * 1_000_000 / 8), backward=True)  # microseconds, as av.open
        decoded = 0
        for frame in c.decode(stream):
            decoded += 1
            if first is None:
                first = time.perf_counter() - t
            if frame.pts >= target * int(1 / (stream.time_base * 8)):
                break
    return first, time.perf_counter() - t, decoded


def decode_from_start(path: Path, frames: int) -> float:
    import m3cvc_format

    t = time.perf_counter()
    with m3cvc_format.open(path) as c:
        for i, _ in enumerate(c.decode(video=0)):
            if i + 1 == frames:
                break
    return time.perf_counter() - t


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--minutes", type=float, default=30)
    p.add_argument("--seeks", type=int, default=12)
    p.add_argument("--no-doc", action="store_true", help="print only; leave docs/benchmarks.md alone")
    args = p.parse_args(argv)
    rng = random.Random(2026)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "long.m3v"
        total = build(path, args.minutes)
        size = path.stat().st_size
        targets = sorted(rng.randrange(total) for _ in range(args.seeks))
        seeks = [first_frame_after_seek(path, t) for t in targets]
        minute = decode_from_start(path, 8 * 60)
    per_frame = minute / (8 * 60)
    first_times = [f for f, _, _ in seeks]
    seek_times = [t for _, t, _ in seeks]
    lines = [
        f"## Random seek in a {args.minutes:g}-minute stream",
        "",
        f"`python tools/bench/bench_seek.py --minutes {args.minutes:g} --seeks {args.seeks}`, "
        f"{datetime.date.today().isoformat()}, 2-core development machine. Stream: {total} frames "
        f"(512x320, 8 fps, 16-frame interpolation clips, lite pack 1/16), {size} bytes. Each seek opens the "
        "file with `m3cvc_format.open`, seeks (microseconds, backward) and decodes forward to the target.",
        "",
        "| target frame | first frame (clip start) | target frame | frames decoded | decoding from the start (extrapolated) |",
        "|---|---|---|---|---|",
    ]
    for target, (f, t, n) in zip(targets, seeks):
        lines.append(
            f"| {target} ({target / 8 / 60:.1f} min) | {1000 * f:.0f} ms | {1000 * t:.0f} ms | {n} | "
            f"{target * per_frame:.1f} s |"
        )
    lines += [
        "",
        f"After a seek (file opened cold each time): first frame in median **{1000 * statistics.median(first_times):.0f} ms**, "
        f"target frame in median {1000 * statistics.median(seek_times):.0f} ms (max {1000 * max(seek_times):.0f} ms), "
        "whatever the position. Decoding from the start: "
        f"{minute:.1f} s for the first minute ({1 / per_frame:.0f} frames/s), so "
        f"{total / 2 * per_frame:.0f} s to reach the middle of the stream.",
    ]
    text = "\n".join(lines) + "\n"
    print(text)
    if not args.no_doc:
        from report import update_section

        update_section("seek", text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
