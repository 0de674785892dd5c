#!/usr/bin/env python3
"""A 10,000-clip stream: m3v-info wall time, and the reads random access to one clip needs.

    python tools/bench/bench_random_access.py [--clips 10000]

The stream has realistic payloads (ActivityNet descriptions coded with tokans-1, 20x32 maps
coded with the context-adaptive coder; a pool of texts and maps is cycled and each distinct
payload is coded once, which changes nothing in the stream's layout).  Targets: m3v-info
at most 0.5 s; at most 3 reads besides the clip itself.
"""

from __future__ import annotations

import argparse
import datetime
import functools
import io
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]

from bench_framing import descriptions, maps  # noqa: E402

import m3cvc_format as m  # noqa: E402
import m3cvc_format.indexmap as indexmap  # noqa: E402
import m3cvc_format.textcodec as textcodec  # noqa: E402


def build(n_clips: int, path: Path) -> None:
    encode_text = functools.lru_cache(maxsize=None)(textcodec.encode_text)
    coded_maps: dict[bytes, bytes] = {}
    original_encode_map = indexmap.encode_index_map

    def encode_map(indices, vocab_size, coder, prior=None):
        key = np.asarray(indices, dtype=np.uint16).tobytes() + bytes([int(coder)])
        if key not in coded_maps:
            coded_maps[key] = original_encode_map(indices, vocab_size, coder, prior)
        return coded_maps[key]

    textcodec.encode_text, indexmap.encode_index_map = encode_text, encode_map
    try:
        texts = descriptions(200)
        pool = maps(32, 20, 32)
        header = m.Header(
            width=512,
            height=320,
            fps=8,
            grid_h=20,
            grid_w=32,
            text_codec=m.TextCodec.TOKANS1,
            pack_id="lite",
            frame_count=16 * n_clips,
        )
        with m.Writer(path, header) as w:
            for k in range(n_clips):
                kf, cl = texts[k % len(texts)]
                w.write_clip(
                    m.Clip(
                        index=k,
                        first_frame=16 * k,
                        frame_count=16,
                        mode=m.Mode.PREDICTION if k == n_clips - 1 else m.Mode.INTERPOLATION,
                        keyframe_text=kf,
                        clip_text=cl,
                        index_map=pool[k % len(pool)],
                    )
                )
    finally:
        textcodec.encode_text, indexmap.encode_index_map = encode_text.__wrapped__, original_encode_map


def time_info(path: Path, runs: int = 7) -> tuple[float, float]:
    cmd = [sys.executable, "-m", "m3cvc_format.cli_info", str(path)]
    env: dict[str, str] = {}
    walls = []
    for _ in range(runs):
        t = time.perf_counter()
        subprocess.run(cmd, check=True, capture_output=True, env=env)
        walls.append(time.perf_counter() - t)
    t = time.perf_counter()
    subprocess.run([sys.executable, "-c", "pass"], check=True)
    python_start = time.perf_counter() - t
    return statistics.median(walls), python_start


class CountingFile(io.FileIO):
    """Counts read calls and bytes, as a network file system would see them."""

    def __init__(self, path):
        super().__init__(path, "rb")
        self.calls = 0
        self.bytes = 0

    def read(self, n=-1):
        data = super().read(n)
        self.calls += 1
        self.bytes += len(data)
        return data

    def readinto(self, b):
        n = super().readinto(b)
        self.calls += 1
        self.bytes += n or 0
        return n


def random_access(path: Path, k: int) -> dict:
    f = CountingFile(path)
    t = time.perf_counter()
    reader = m.Reader(f)
    after_header = f.calls
    _ = reader.index  # reads the index
    after_index = f.calls
    record = reader.clip(k)
    after_clip = f.calls
    clip = record.decode(reader.header)
    elapsed = time.perf_counter() - t
    assert clip.index == k
    return {
        "header_reads": after_header,
        "index_reads": after_index - after_header,
        "clip_reads": after_clip - after_index,
        "bytes_read": f.bytes,
        "ms": 1000 * elapsed,
        "index_source": reader.index_source,
    }


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--clips", type=int, default=10_000)
    p.add_argument("--no-doc", action="store_true", help="print only; leave docs/benchmarks.md alone")
    args = p.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "long.m3v"
        t = time.perf_counter()
        build(args.clips, path)
        build_s = time.perf_counter() - t
        size = path.stat().st_size
        wall, python_start = time_info(path)
        access = [random_access(path, k) for k in (0, args.clips // 2 + 17, args.clips - 1)]
    lines = [
        "## A 10,000-clip stream: m3v-info time and random access",
        "",
        f"`python tools/bench/bench_random_access.py --clips {args.clips}`, {datetime.date.today().isoformat()}, "
        "on the 2-core development machine. The stream: "
        f"{args.clips} clips of 16 frames (512x320, 8 fps, {16 * args.clips / 8 / 3600:.1f} h), {size} bytes "
        f"({size / args.clips:.0f} bytes a clip); built in {build_s:.1f} s.",
        "",
        f"- `m3v-info FILE` (reads and CRC-checks every clip for the byte split): median wall time of 7 runs "
        f"**{wall:.3f} s** (target at most 0.5 s), of which starting Python takes {python_start:.3f} s.",
        "- Random access to one clip (a fresh reader each time; reads counted on the file object):",
        "",
        "| clip | reads for signature+HEAD | reads for TAIL+INDX | reads for the clip | bytes read | time | index |",
        "|---|---|---|---|---|---|---|",
    ]
    for k, a in zip((0, args.clips // 2 + 17, args.clips - 1), access):
        lines.append(
            f"| {k} | {a['header_reads']} | {a['index_reads']} | {a['clip_reads']} | {a['bytes_read']} | "
            f"{a['ms']:.1f} ms | {a['index_source']} |"
        )
    lines += [
        "",
        "Target: at most 3 reads besides the clip itself; measured: "
        f"{max(a['header_reads'] + a['index_reads'] for a in access)}.",
    ]
    text = "\n".join(lines) + "\n"
    if not args.no_doc:
        from report import update_section

        update_section("random_access", text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
