"""Benchmark the index-map coders on STAND-IN VQ maps (tools/bench/standin_maps.py).

    python tools/bench/bench_indexmap.py   # updates its section of docs/benchmarks.md

For every grid size: mean payload bytes per map for RAW (8 bits an index for
256 codes), zstd level 19 on the uint8 map bytes, STATIC and CONTEXT; bits per
index; the overhead of the actual payload over the ideal code length under the
coder's own model; mean CONTEXT decode time.  Every payload is decoded and
checked against its map.

Priors (the stream header's index statistics):
  * leave-one-out: all 52 maps of a grid (24 Kodak + 28 video frames), each
    coded with prior = 1 + index counts of the other 51 maps;
  * cross-domain: prior = 1 + index counts of the 24 Kodak maps, test on the
    28 video maps.
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np
import zstandard
from standin_maps import GRIDS, STANDIN_NOTE, VOCAB, load_maps

from m3cvc_format.constants import IndexMapCoder
from m3cvc_format.indexmap import decode_index_map, encode_index_map, index_map_code_length

DATE = "2026-11-21"
COMMAND = "python tools/bench/bench_indexmap.py"


def measure(maps: np.ndarray, priors: list[list[int] | None], coder: IndexMapCoder, timing: bool = False):
    sizes, ideals, times = [], [], []
    for m, prior in zip(maps, priors):
        data = encode_index_map(m, VOCAB, coder, prior)
        t = time.perf_counter()
        out = decode_index_map(data, m.shape[0], m.shape[1], VOCAB, coder, prior)
        times.append(time.perf_counter() - t)
        if not np.array_equal(out, m):
            raise AssertionError(f"{coder.name} round trip failed")
        sizes.append(len(data))
        ideals.append(index_map_code_length(m, VOCAB, coder, prior))
    sizes, ideals = np.array(sizes, float), np.array(ideals)
    return {
        "bytes": sizes.mean(),
        "bpi": sizes.mean() * 8 / maps[0].size,
        "overhead": sizes.sum() * 8 / ideals.sum() - 1,
        "overhead_max": float(np.max(sizes * 8 / ideals - 1)),
        "dec_ms": 1000 * float(np.mean(times)),
    }


def zstd_bytes(maps: np.ndarray) -> float:
    cctx = zstandard.ZstdCompressor(level=19)
    return float(np.mean([len(cctx.compress(m.astype(np.uint8).tobytes())) for m in maps]))


def run() -> str:
    maps = load_maps()
    lines = [
        "## Index-map coding",
        "",
        f"Date: {DATE}. Command: `{COMMAND}`",
        "",
        f"**{STANDIN_NOTE}** Figures will move once the learned tokenizer's maps exist;",
        "see tools/bench/standin_maps.py for how they are built (24 Kodak images and frames",
        "0/30/60/90 of 7 videos, 512x320 for 32x20 and 64x40, 512x512 for 32x32 and 64x64).",
        "",
        "Vocabulary 256. Bytes are mean payload bytes per map (no container overhead);",
        "bits/index = 8 x bytes / (grid_h x grid_w). Overhead = actual payload bits over the",
        "ideal code length under the coder's own model, summed over the maps (max per map in",
        "brackets). Every payload was decoded and compared with its map.",
        "",
    ]
    for split in ("leave-one-out", "cross-domain"):
        if split == "leave-one-out":
            lines += [
                "### Leave-one-out: all 52 maps, prior = 1 + index counts of the other 51",
                "",
            ]
        else:
            lines += [
                "### Cross-domain: prior = 1 + index counts of the 24 Kodak maps; test = 28 video maps",
                "",
            ]
        lines += [
            "| grid | RAW 8-bit | zstd-19 | STATIC prior | CONTEXT no prior | CONTEXT prior "
            "| CONTEXT overhead | STATIC overhead | CONTEXT decode |",
            "|---|---|---|---|---|---|---|---|---|",
        ]
        for name, (_, _, gw, gh) in GRIDS.items():
            kodak, video = maps[f"{name}/kodak"], maps[f"{name}/video"]
            if split == "leave-one-out":
                test = np.concatenate([kodak, video])
                total = np.bincount(test.reshape(-1), minlength=VOCAB)
                priors = [(total - np.bincount(m.reshape(-1), minlength=VOCAB) + 1).tolist() for m in test]
            else:
                test = video
                p = (np.bincount(kodak.reshape(-1), minlength=VOCAB) + 1).tolist()
                priors = [p] * len(test)
            n = gw * gh
            raw = measure(test, [None] * len(test), IndexMapCoder.RAW)
            zs = zstd_bytes(test)
            st = measure(test, priors, IndexMapCoder.STATIC)
            c0 = measure(test, [None] * len(test), IndexMapCoder.CONTEXT)
            cp = measure(test, priors, IndexMapCoder.CONTEXT)
            fmt = lambda b, n=n: f"{b:.1f} B ({8 * b / n:.3f})"
            lines.append(
                f"| {gw}x{gh} | {fmt(raw['bytes'])} | {fmt(zs)} | {fmt(st['bytes'])} | {fmt(c0['bytes'])} "
                f"| {fmt(cp['bytes'])} | {100 * c0['overhead']:.2f}% ({100 * c0['overhead_max']:.2f}%) "
                f"| {100 * st['overhead']:.2f}% ({100 * st['overhead_max']:.2f}%) | {c0['dec_ms']:.0f} ms |"
            )
            print(lines[-1], flush=True)
        lines += ["", "Cells: mean bytes per map (bits per index).", ""]
    lines += [
        "Notes: the rANS payload costs a roughly constant 2-3 bytes over the ideal length",
        "(16-24 bits: the coder starts from state 0 and the final word is cut to whole bytes),",
        "so the relative overhead is highest on the smallest grid (32x20, about 0.56%, just",
        "over the 0.5% target) and 0.2% or less from 64x40 up. CONTEXT decode is the",
        "Python-plus-numpy decoder of m3cvc_format/indexmap.py (mean per map, no prior)",
        "on a shared 2-core machine, so the timings are noisy.",
        "On these stand-ins the prior does not help CONTEXT (per-image k-means usage differs",
        "from the pooled counts), so a writer should send one only where it measures a gain;",
        "STATIC with a mismatched prior can be worse than RAW.",
        "",
    ]
    return "\n".join(lines)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--no-doc", action="store_true", help="print only; leave docs/benchmarks.md alone")
    args = ap.parse_args()
    text = run()
    print(text)
    if not args.no_doc:
        from report import update_section

        update_section("indexmap", text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
