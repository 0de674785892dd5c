#!/usr/bin/env python3
"""Bits per index of the lite pack's real index maps: CONTEXT against TEMPORAL.

    python tools/bench/bench_temporal.py   # updates its section of docs/benchmarks.md

The held-back clips (512x320, 8 fps, as every benchmark prepares them) go through the shipped
lite encoder at both grids; the maps of every k-th frame (k = 2, 4, 8: a keyframe every k
frames) are coded as a writer with ``refresh`` 8 codes them: the first of every 8 and any map
where TEMPORAL is not shorter with CONTEXT, the others with TEMPORAL against the map before.
Bits are the payload bytes (what the stream stores) times 8 over the indices.  No prior, as
m3v-encode writes its streams.  Also the share of indices equal to the previous keyframe's
at the same position, the encode and decode time of one map, and the bits an index when
the maps come from m3v-encode's default ``--reuse 0.5`` (lite pack ``encode_keyframe_near``
against the previous keyframe's map) instead of the nearest codewords.
"""

from __future__ import annotations

import argparse
import datetime
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]

MEDIA = ROOT.parent / "shared" / "media" / "videos"
CLIPS = {"juggle": "sam2_05_default_juggle.mp4", "pool": "mmaction2_test_pool.mp4"}  # held back from training
COMMAND = "python tools/bench/bench_temporal.py"
REFRESH = 8
REUSE = 0.5


def reused_maps(frames: list[np.ndarray], pack, grid) -> list[np.ndarray]:
    """Keyframe maps as m3v-encode makes them by default: each near-tied cell keeps the previous
    keyframe's index (the first of every REFRESH maps too: the encoder does not know yet)."""
    out: list[np.ndarray] = []
    for frame in frames:
        out.append(
            np.asarray(
                pack.encode_keyframe_near(frame, grid, out[-1], REUSE) if out else pack.encode_keyframe(frame, grid)
            )
        )
    return out


def measure(maps: list[np.ndarray], interval: int) -> dict:
    from m3cvc_format import IndexMapCoder, decode_index_map, encode_index_map

    keys = maps[::interval]
    context = temporal = 0
    chosen = []
    chain = 0
    enc_t = dec_t = 0.0
    n_temporal_coded = 0
    for k, x in enumerate(keys):
        c = encode_index_map(x, 256, IndexMapCoder.CONTEXT)
        context += len(c)
        best = len(c)
        if k and chain + 1 < REFRESH:
            t0 = time.perf_counter()
            t = encode_index_map(x, 256, IndexMapCoder.TEMPORAL, None, keys[k - 1])
            t1 = time.perf_counter()
            assert np.array_equal(decode_index_map(t, *x.shape, 256, IndexMapCoder.TEMPORAL, None, keys[k - 1]), x)
            enc_t += t1 - t0
            dec_t += time.perf_counter() - t1
            n_temporal_coded += 1
            if len(t) < best:
                best = len(t)
                chain += 1
                chosen.append(True)
            else:
                chain = 0
                chosen.append(False)
        else:
            chain = 0
            chosen.append(False)
        temporal += best
    n = sum(x.size for x in keys)
    same = [float(np.mean(a == b)) for a, b in zip(keys, keys[1:])]
    return {
        "maps": len(keys),
        "context_bits": 8 * context / n,
        "temporal_bits": 8 * temporal / n,
        "dependent": sum(chosen),
        "repeat_share": float(np.mean(same)) if same else 0.0,
        "enc_ms": 1e3 * enc_t / max(1, n_temporal_coded),
        "dec_ms": 1e3 * dec_t / max(1, n_temporal_coded),
    }


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--no-doc", action="store_true", help="print the section instead of writing docs/")
    args = ap.parse_args(argv)
    from m3cvc_codec.packs.lite import LitePack
    from m3cvc_codec.video_io import read_frames

    pack = LitePack()
    rows = []
    for name, file in CLIPS.items():
        frames = list(read_frames(MEDIA / file, size=(512, 320), fps=8))
        for grid in pack.grids:
            maps = [np.asarray(pack.encode_keyframe(f, grid)) for f in frames]
            for interval in (2, 4, 8):
                r = measure(maps, interval)
                r["reuse_bits"] = measure(reused_maps(frames[::interval], pack, grid), 1)["temporal_bits"]
                rows.append((name, grid.name, interval, r))
                print(name, grid.name, interval, {k: round(v, 3) for k, v in r.items()}, flush=True)
    lines = [
        "## Index maps against the previous keyframe (TEMPORAL)",
        "",
        f"Date: {datetime.date.today().isoformat()}. Command: `{COMMAND}`",
        "",
        "The shipped lite pack's maps of the held-back clips (512x320, 8 fps), a keyframe every k frames, "
        f"coded as m3v-encode's writer codes them with its default `--refresh {REFRESH}`: TEMPORAL "
        "(spec/entropy-coding.md) against the previous keyframe's map where that is shorter, CONTEXT for the "
        f"first map, at least every {REFRESH} maps and wherever TEMPORAL is not shorter. Bits an index = 8 x "
        "payload bytes / indices, no prior. *repeat*: share of indices equal to the previous keyframe's at the same "
        "position. Times: one TEMPORAL map in Python on this machine (2 cores). *with --reuse*: the same, on the "
        f"maps m3v-encode makes by default (`--reuse {REUSE}`: a cell keeps the previous keyframe's index where "
        "that codeword is within a factor 1.5 of the nearest, in squared latent distance).",
        "",
        "| clip | grid | k | maps | repeat | CONTEXT bits/index | with TEMPORAL | saved | TEMPORAL maps | enc ms | dec ms "
        "| with --reuse |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, grid, interval, r in rows:
        saved = 1 - r["temporal_bits"] / r["context_bits"]
        lines.append(
            f"| {name} | {grid} | {interval} | {r['maps']} | {r['repeat_share']:.0%} | {r['context_bits']:.2f} | "
            f"{r['temporal_bits']:.2f} | {saved:.0%} | {r['dependent']} | {r['enc_ms']:.0f} | {r['dec_ms']:.0f} | "
            f"{r['reuse_bits']:.2f} |"
        )
    section = "\n".join(lines)
    if args.no_doc:
        print(section)
    else:
        from report import update_section

        update_section("temporal", section)
    return 0


if __name__ == "__main__":
    sys.exit(main())
