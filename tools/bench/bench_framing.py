#!/usr/bin/env python3
"""Framing overhead of `.m3v` per clip, against carrying the same payloads in Matroska.

    python tools/bench/bench_framing.py [--clips 300]

Payloads are realistic: descriptions from ActivityNet paragraphs (keyframe text = first
sentence, clip text = the rest) coded with tokans-1, and 20x32 / 40x64 index maps coded
with the context-adaptive coder.  Framing per clip = (stream bytes - text bytes - VQ
bytes - the bytes of an empty stream) / clips, so it includes the INDX entry.  The
Matroska file carries the same coded payloads: one Cluster per clip (with a CRC-32
element, as .m3v has a CRC per clip), the index map as a SimpleBlock of a video track,
each description as a BlockGroup with BlockDuration on a subtitle track, and one
CuePoint per clip (the counterpart of the INDX entry).
"""

from __future__ import annotations

import argparse
import datetime
import io
import shutil
import struct
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]

import m3cvc_format as m  # noqa: E402
from m3cvc_format.crc import crc32c  # noqa: E402

MEDIA = ROOT.parent / "shared" / "media"


# ---------------------------------------------------------------- a minimal Matroska writer


def _vint_size(n: int) -> bytes:
    for length in range(1, 9):
        if n < (1 << (7 * length)) - 1:
            return (n | (1 << (7 * length))).to_bytes(length, "big")
    raise ValueError(n)


def el(element_id: int, data: bytes) -> bytes:
    return element_id.to_bytes((element_id.bit_length() + 7) // 8, "big") + _vint_size(len(data)) + data


def uint(element_id: int, value: int) -> bytes:
    return el(element_id, value.to_bytes(max(1, (value.bit_length() + 7) // 8), "big"))


def string(element_id: int, value: str) -> bytes:
    return el(element_id, value.encode())


def matroska(
    width: int, height: int, fps: float, clips: list[tuple[int, int, bytes, bytes, bytes]]
) -> tuple[bytes, int]:
    """clips: (first_frame, frame_count, index_map_payload, keyframe_text, clip_text); returns (file, payload bytes)."""
    ebml = el(
        0x1A45DFA3,
        uint(0x4286, 1)
        + uint(0x42F7, 1)
        + uint(0x42F2, 4)
        + uint(0x42F3, 8)
        + string(0x4282, "matroska")
        + uint(0x4287, 4)
        + uint(0x4285, 2),
    )
    ms_per_frame = 1000 / fps
    info = el(
        0x1549A966,
        uint(0x2AD7B1, 1_000_000)
        + string(0x4D80, "bench_framing")
        + string(0x5741, "bench_framing")
        + el(0x4489, struct.pack(">d", (clips[-1][0] + clips[-1][1]) * ms_per_frame)),
    )

    def track(number: int, kind: int, codec: str, extra: bytes = b"") -> bytes:
        return el(0xAE, uint(0xD7, number) + uint(0x73C5, number) + uint(0x83, kind) + string(0x86, codec) + extra)

    tracks = el(
        0x1654AE6B,
        track(1, 1, "V_M3V/INDEXMAP", el(0xE0, uint(0xB0, width) + uint(0xBA, height)))
        + track(2, 0x11, "S_M3V/KEYFRAME_TEXT")
        + track(3, 0x11, "S_M3V/CLIP_TEXT"),
    )
    body = info + tracks
    clusters = []
    cue_points = []
    payload = 0
    for first, count, vq, kf_text, clip_text in clips:
        t = round(first * ms_per_frame)
        duration = round(count * ms_per_frame)
        blocks = el(0xA3, b"\x81" + struct.pack(">h", 0) + b"\x80" + vq)
        for number, text in ((2, kf_text), (3, clip_text)):
            if text:
                blocks += el(
                    0xA0,
                    el(0xA1, bytes([0x80 | number]) + struct.pack(">h", 0) + b"\x00" + text) + uint(0x9B, duration),
                )
        payload += len(vq) + len(kf_text) + len(clip_text)
        inner = uint(0xE7, t) + blocks
        cluster = el(0x1F43B675, el(0xBF, struct.pack("<I", crc32c(inner))) + inner)
        cue_points.append((t, len(body) + sum(len(c) for c in clusters)))
        clusters.append(cluster)
    body += b"".join(clusters)
    cues = el(
        0x1C53BB6B,
        b"".join(el(0xBB, uint(0xB3, t) + el(0xB7, uint(0xF7, 1) + uint(0xF1, pos))) for t, pos in cue_points),
    )
    return ebml + el(0x18538067, body + cues), payload


# ---------------------------------------------------------------- payloads


def descriptions(n: int) -> list[tuple[str, str]]:
    path = MEDIA / "captions" / "activitynet_paragraphs.txt"
    lines = [line for line in path.read_text(encoding="utf-8").splitlines() if line][1::2][:n]
    out = []
    for line in lines:
        first, _, rest = line.partition(". ")
        out.append((first + ".", rest))
    return out


def maps(n: int, h: int, w: int) -> list[np.ndarray]:
    """Stand-in VQ maps of real images (tools/bench/standin_maps.py), cycled to ``n``."""
    from standin_maps import load_maps

    found = load_maps()
    pool = [mp for key in (f"{w}x{h}/video", f"{w}x{h}/kodak") for mp in found.get(key, [])]
    if not pool:
        raise SystemExit(f"no stand-in maps for a {h}x{w} grid")
    return [pool[i % len(pool)] for i in range(n)]


def run(n_clips: int, grid: tuple[int, int], with_texts: bool) -> dict:
    h, w = grid
    header = m.Header(width=512, height=320, fps=8, grid_h=h, grid_w=w, text_codec=m.TextCodec.TOKANS1, pack_id="lite")
    texts = descriptions(n_clips) if with_texts else [("", "")] * n_clips
    index_maps = maps(n_clips, h, w)
    clips = [
        m.Clip(
            index=k,
            first_frame=16 * k,
            frame_count=16,
            mode=m.Mode.INTERPOLATION,
            keyframe_text=texts[k][0],
            clip_text=texts[k][1],
            index_map=index_maps[k],
        )
        for k in range(n_clips)
    ]
    buf = io.BytesIO()
    writer = m.write(buf, header, clips)
    data = buf.getvalue()
    empty = io.BytesIO()
    m.write(empty, header, [])
    fixed = len(empty.getvalue())
    framing = (len(data) - writer.text_bytes - writer.vq_bytes - fixed) / n_clips

    reader = m.Reader(data)
    records = list(reader.clips())
    mkv_clips = []
    for rec in records:
        vq = rec.index_map.data
        mkv_clips.append(
            (
                rec.first_frame,
                rec.frame_count,
                bytes([rec.index_map.coder]) + vq,
                rec.keyframe_text_coded,
                rec.clip_text_coded,
            )
        )
    mkv, payload = matroska(512, 320, 8.0, mkv_clips)
    mkv_small, _ = matroska(512, 320, 8.0, mkv_clips[:1])
    mkv_framing = (len(mkv) - payload - (len(mkv_small) - sum(len(x) for x in mkv_clips[0][2:]))) / (n_clips - 1)
    check = mkvinfo_check(mkv)
    return {
        "grid": f"{h}x{w}",
        "texts": "ActivityNet, tokans-1" if with_texts else "none",
        "clips": n_clips,
        "bytes_per_clip": len(data) / n_clips,
        "text_per_clip": writer.text_bytes / n_clips,
        "vq_per_clip": writer.vq_bytes / n_clips,
        "m3v_framing": framing,
        "m3v_fixed": fixed,
        "mkv_framing": mkv_framing,
        "mkvinfo": check,
    }


def mkvinfo_check(data: bytes) -> str:
    tool = shutil.which("mkvinfo")
    if not tool:
        return "mkvinfo not installed"
    with tempfile.NamedTemporaryFile(suffix=".mkv") as f:
        f.write(data)
        f.flush()
        out = subprocess.run([tool, "--all", f.name], capture_output=True, text=True)
    if out.returncode != 0:
        return f"mkvinfo rejected it: {out.stdout.strip().splitlines()[-1:]}"
    clusters = sum(1 for line in out.stdout.splitlines() if line.startswith("|+ Cluster"))
    cues = sum(1 for line in out.stdout.splitlines() if line.strip(" |").startswith("+ Cue point"))
    return f"mkvinfo --all reads it: {clusters} clusters, {cues} cue points"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--clips", type=int, default=300)
    p.add_argument("--no-doc", action="store_true", help="print only; leave docs/benchmarks.md alone")
    args = p.parse_args(argv)
    rows = [run(args.clips, (20, 32), True), run(args.clips, (20, 32), False), run(args.clips, (40, 64), True)]
    lines = [
        "## Framing overhead per clip",
        "",
        f"`python tools/bench/bench_framing.py --clips {args.clips}`, {datetime.date.today().isoformat()}. "
        "512x320, 8 fps, 16-frame clips. Framing per clip includes the clip's CLIP chunk header and CRC, "
        "its fields, sub-chunk tags and its INDX entry (target: at most 24 bytes). The Matroska column "
        "carries the same coded payloads (one Cluster with a CRC-32 element per clip, SimpleBlock for the "
        "map, BlockGroup+BlockDuration per description, one CuePoint per clip).",
        "",
        "| grid | texts | bytes/clip | text/clip | VQ/clip | .m3v framing/clip | Matroska framing/clip | check |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['grid']} | {r['texts']} | {r['bytes_per_clip']:.1f} | {r['text_per_clip']:.1f} | "
            f"{r['vq_per_clip']:.1f} | **{r['m3v_framing']:.2f}** | {r['mkv_framing']:.2f} | {r['mkvinfo']} |"
        )
    lines.append("")
    lines.append(
        f"Fixed cost of a stream (signature, HEAD without metadata, empty INDX, TAIL): {rows[0]['m3v_fixed']} bytes."
    )
    text = "\n".join(lines) + "\n"
    if not args.no_doc:
        from report import update_section

        update_section("framing", text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
