#!/usr/bin/env python3
"""m3v-batch throughput against a plain loop over m3v-encode, and what a 10,000-hour corpus costs.

    python tools/bench/bench_batch.py [--copies 1] [--out FILE.md]

The corpus is the shared media's videos as they are (../shared/media/videos: 7 files, 65 s of
video, 176x144 to 1280x720), each listed ``--copies`` times (symbolic links, so each copy is
its own input), coded with m3v-encode's defaults (the lite pack, 512x320, 8 fps).  Measured:

- **loop**: ``m3v-encode FILE -o OUT -q`` once per file, one after the other (a new process
  each: imports and pack loading every time);
- **in-process**: ``m3v-batch encode --no-ray`` (one process, the pack loaded once);
- **Ray, 1 and 2 workers**: ``m3v-batch encode --workers N`` on Ray embedded with this machine's
  cores, Ray's start included.

For each: wall seconds, throughput (seconds of input video per wall second), the overhead per
file (wall time not spent coding, over the files: (wall - Ray's start - sum of the workers'
coding seconds / workers) / files; Ray's start and stop, measured alone, is given once), and
the peak resident memory of a worker.  Then, on paper, a 10,000-hour
corpus: the lite pack on CPU cores at the measured per-core rate, and the full pack on GPUs at
the paper's Table II (76.7 s to encode ParkScene, 10 s of 1080p video coded at 512x320 and 8 fps,
on one RTX 3090).  Prints a Markdown section (and writes it to ``--out``).
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
MEDIA = ROOT.parent / "shared" / "media" / "videos"

#: The paper's Table II: encoder latency on ParkScene (HEVC class B: 240 frames, 24 fps = 10 s)
#: on one RTX 3090, and the sequence's length.
PAPER_ENCODE_S = 76.7
PAPER_DECODE_S = 142.5
PARKSCENE_S = 10.0
CORPUS_HOURS = 10_000


def corpus(folder: Path, copies: int) -> list[Path]:
    files = []
    for source in sorted(MEDIA.iterdir()):
        for k in range(copies):
            link = folder / f"{source.stem}-{k}{source.suffix}"
            link.symlink_to(source)
            files.append(link)
    return files


def plain_loop(files: list[Path], out: Path) -> float:
    out.mkdir()
    started = time.perf_counter()
    for file in files:
        subprocess.run(["m3v-encode", str(file), "-o", str(out / f"{file.stem}.m3v"), "-q"], check=True)
    return time.perf_counter() - started


def batch_run(folder: Path, out: Path, extra: list[str]) -> tuple[float, list[dict]]:
    started = time.perf_counter()
    done = subprocess.run(["m3v-batch", "encode", str(folder), "-o", str(out), "-q", *extra])
    wall = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"m3v-batch {' '.join(extra)} failed ({done.returncode})")
    (manifest,) = out.glob("manifest-*.jsonl")
    return wall, [json.loads(line) for line in manifest.read_text().splitlines()]


def ray_start_seconds() -> float | None:
    try:
        import ray
    except ImportError:
        return None
    started = time.perf_counter()
    ray.init(num_cpus=os.cpu_count(), include_dashboard=False, logging_level="ERROR", log_to_driver=False)
    ray.shutdown()
    return time.perf_counter() - started


def same_bytes(a: Path, b: Path) -> bool:
    names = sorted(p.name for p in a.glob("*.m3v"))
    return names == sorted(p.name for p in b.glob("*.m3v")) and all(
        (a / n).read_bytes() == (b / n).read_bytes() for n in names
    )


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--copies", type=int, default=1, help="list each video this many times (default 1)")
    p.add_argument("--out", type=Path, help="also write the Markdown section here")
    args = p.parse_args(argv)
    if not MEDIA.is_dir():
        print(f"bench_batch: {MEDIA} is missing", file=sys.stderr)
        return 1
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-batch-") as tmp:
        work = Path(tmp)
        folder = work / "corpus"
        folder.mkdir()
        files = corpus(folder, args.copies)
        loop_wall = plain_loop(files, work / "loop")
        runs = [("m3v-batch --no-ray (in-process)", ["--no-ray"], 1)]
        ray_start = ray_start_seconds()
        if ray_start is not None:
            runs += [("m3v-batch on Ray, 1 worker of 1 CPU", ["--workers", "1", "--cpus-per-worker", "1"], 1)]
            runs += [("m3v-batch on Ray, 2 workers of 1 CPU", ["--workers", "2", "--cpus-per-worker", "1"], 2)]
        video_s = None
        for number, (label, extra, workers) in enumerate(runs):
            out = work / f"run{number}"
            wall, records = batch_run(folder, out, extra)
            assert same_bytes(out, work / "loop"), f"{label}: not the bytes m3v-encode wrote"
            video_s = sum(r["duration_s"] for r in records)
            coding = sum(r["seconds"] for r in records)
            rss = max((r["peak_rss_mb"] or 0) for r in records)
            fixed = ray_start if ray_start is not None and "Ray" in label else 0.0
            rows.append((label, wall, video_s / wall, (wall - fixed - coding / workers) / len(files), rss, coding))
        assert video_s is not None
        rows.insert(0, ("plain loop over m3v-encode", loop_wall, video_s / loop_wall, None, None, None))
        shutil.rmtree(work / "loop")

    # On paper.  The lite pack's core-seconds per second of video: with 2 workers on the 2 cores,
    # each worker holds a core, so the sum of their coding seconds (Ray's start left out: nothing
    # against 10,000 hours); without Ray, the in-process run charged 2 cores (its ONNX sessions
    # run 2 threads).
    last = rows[-1]
    lite_core_s_per_video_s = last[5] / video_s if len(rows) == 4 else last[5] * 2 / video_s
    corpus_s = CORPUS_HOURS * 3600
    lite_core_hours = corpus_s * lite_core_s_per_video_s / 3600
    full_gpu_hours = corpus_s * PAPER_ENCODE_S / PARKSCENE_S / 3600
    full_decode_gpu_hours = corpus_s * PAPER_DECODE_S / PARKSCENE_S / 3600

    date = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    lines = [
        "## m3v-batch: corpus throughput (issue 14)",
        "",
        f"`python tools/bench/bench_batch.py --copies {args.copies}`, {date}, 2-core CPU, no GPU "
        f"(Python {platform.python_version()}; other jobs shared the machine, so the walls are noisy). Corpus: "
        f"{len(files)} inputs, the {len(files) // args.copies} shared-media videos {args.copies} times "
        f"({video_s:.1f} s of video at 8 fps after preprocessing), "
        "m3v-encode's defaults (lite pack, 512x320, 8 fps); every run's outputs byte-identical to the loop's."
        + (f" Ray's own start and stop: {ray_start:.1f} s." if ray_start is not None else " Ray not installed."),
        "",
        "| run | wall s | s of video / wall s | overhead / file s (Ray's start apart) | worker peak RSS MiB |",
        "| --- | ---: | ---: | ---: | ---: |",
    ]
    for label, wall, rate, overhead, rss, _ in rows:
        lines.append(
            f"| {label} | {wall:.1f} | {rate:.2f} | {'' if overhead is None else f'{overhead:.2f}'} | "
            f"{'' if rss is None else f'{rss:.0f}'} |"
        )
    lines += [
        "",
        f"A {CORPUS_HOURS:,}-hour corpus ({corpus_s / 1e6:.0f} million seconds of video), encode only:",
        "",
        f"- **lite pack on CPUs**: {lite_core_s_per_video_s:.3f} core-seconds per second of video (the "
        f"{'2-worker run above, a core a worker' if len(rows) == 4 else 'in-process run, charged 2 cores'}) = **{lite_core_hours:,.0f} core-hours**: "
        f"{lite_core_hours / (100 * 32):,.1f} h on 100 machines of 32 cores.",
        f"- **full pack on GPUs** at Table II ({PAPER_ENCODE_S} s to encode the 10 s ParkScene on one RTX 3090, "
        f"assuming the whole sequence is coded): {PAPER_ENCODE_S / PARKSCENE_S:.2f} GPU-seconds per second of video "
        f"= **{full_gpu_hours:,.0f} GPU-hours**: {full_gpu_hours / 100 / 24:,.0f} days on 100 GPUs "
        f"(decoding it all back at Table II's {PAPER_DECODE_S} s: {full_decode_gpu_hours:,.0f} GPU-hours more).",
    ]
    text = "\n".join(lines) + "\n"
    print(text)
    if args.out:
        args.out.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
