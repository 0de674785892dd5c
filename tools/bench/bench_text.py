#!/usr/bin/env python3
"""Bytes per description of the `.m3v` text codecs against general-purpose compressors.

Every description (one line of the caption file) is coded on its own, as a
stream codes each clip's texts.  Codecs: raw UTF-8, LZW, tokans-1, zlib (raw
deflate, level 9), brotli (quality 11) and zstd level 19 with a 112,640-byte
dictionary trained on the tokans-1 training split (ActivityNet even lines +
every 4th MSR-VTT caption); zstd frames carry no dictionary id, checksum or
content size.  Reported over (a) the whole ActivityNet file and (b) its odd
(held-out) lines only.  tokans-1 and LZW are decoded again and checked
lossless on every line.

    python tools/bench/bench_text.py   # updates its section of docs/benchmarks.md
"""

from __future__ import annotations

import argparse
import platform
import sys
import time
import zlib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

import brotli  # noqa: E402
import zstandard  # noqa: E402

from m3cvc_format.constants import TextCodec  # noqa: E402
from m3cvc_format.textcodec import TOKANS1_VOCAB_SHA256, decode_text, encode_text  # noqa: E402

MEDIA = Path("/work/shared/media/captions")
DATE = "2026-11-21"
ZSTD_DICT_SIZE = 112_640


def read_lines(path: Path) -> list[bytes]:
    lines = path.read_bytes().split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()
    return lines


def deflate(b: bytes) -> bytes:
    c = zlib.compressobj(9, zlib.DEFLATED, -15)
    return c.compress(b) + c.flush()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--activitynet", type=Path, default=MEDIA / "activitynet_paragraphs.txt")
    ap.add_argument("--msrvtt", type=Path, default=MEDIA / "msrvtt_trainval_captions.txt")
    ap.add_argument("--no-doc", action="store_true", help="print only; leave docs/benchmarks.md alone")
    args = ap.parse_args(argv)

    an = read_lines(args.activitynet)
    mv = read_lines(args.msrvtt)
    train = [l for i, l in enumerate(an) if i % 2 == 0] + [l for i, l in enumerate(mv) if i % 4 == 0]
    zdict = zstandard.train_dictionary(ZSTD_DICT_SIZE, train)
    zc = zstandard.ZstdCompressor(
        level=19, dict_data=zdict, write_checksum=False, write_content_size=False, write_dict_id=False
    )
    zd = zstandard.ZstdDecompressor(dict_data=zdict)

    names = ["raw", "LZW", "tokans-1", "zlib-9 (raw deflate)", "brotli-11", "zstd-19 + 110 KiB dict"]
    sizes = {n: [0] * len(an) for n in names}
    times = {"LZW enc": 0.0, "LZW dec": 0.0, "tokans enc": 0.0, "tokans dec": 0.0}
    mismatches = 0
    for i, line in enumerate(an):
        text = line.decode("utf-8")
        sizes["raw"][i] = len(line)
        for name, codec in (("LZW", TextCodec.LZW), ("tokans", TextCodec.TOKANS1)):
            t0 = time.perf_counter()
            p = encode_text(text, codec)
            t1 = time.perf_counter()
            back = decode_text(p, codec)
            t2 = time.perf_counter()
            times[f"{name} enc"] += t1 - t0
            times[f"{name} dec"] += t2 - t1
            mismatches += back != text
            sizes["tokans-1" if name == "tokans" else name][i] = len(p)
        sizes["zlib-9 (raw deflate)"][i] = len(deflate(line))
        sizes["brotli-11"][i] = len(brotli.compress(line, quality=11))
        z = zc.compress(line)
        assert zd.decompress(z, max_output_size=len(line) + 1) == line
        sizes["zstd-19 + 110 KiB dict"][i] = len(z)

    subsets = {
        f"(a) all {len(an)} ActivityNet descriptions": range(len(an)),
        f"(b) held-out odd lines ({len(an) // 2})": range(1, len(an), 2),
    }
    out = [
        "## Text codecs",
        "",
        f"Measured {DATE} on {platform.machine()} / Python {platform.python_version()} with",
        "",
        "```",
        "python tools/bench/bench_text.py",
        "```",
        "",
        f"Data: `activitynet_paragraphs.txt` ({len(an)} multi-sentence descriptions, one per line), each",
        "description coded on its own as a stream codes each clip text. tokans-1 vocabulary SHA-256",
        f"`{TOKANS1_VOCAB_SHA256}`, trained on the ActivityNet lines with an even 0-based index plus every",
        "4th MSR-VTT caption (`tools/train_textmodel.py`); the odd lines are held out. zstd uses a",
        f"{ZSTD_DICT_SIZE}-byte dictionary trained on that same split; its frames carry no dictionary id,",
        "checksum or content size (the dictionary itself, 110 KiB, is not counted). zlib is raw deflate",
        "(no zlib header or Adler-32).",
        "",
    ]
    for title, idx in subsets.items():
        idx = list(idx)
        raw = sum(sizes["raw"][i] for i in idx)
        lzw = sum(sizes["LZW"][i] for i in idx)
        out += [
            f"### {title}",
            "",
            "| codec | mean bytes / description | fraction of raw | ratio to LZW |",
            "|---|---:|---:|---:|",
        ]
        for n in names:
            s = sum(sizes[n][i] for i in idx)
            out.append(f"| {n} | {s / len(idx):.1f} | {s / raw:.3f} | {s / lzw:.3f} |")
        out.append("")
    n = len(an)
    out += [
        f"tokans-1 and LZW round-trip every description losslessly: {'yes' if mismatches == 0 else f'NO ({mismatches} mismatches)'}.",
        f"Pure-Python speed (this machine, per description): tokans-1 encode {times['tokans enc'] / n * 1e6:.0f} µs, "
        f"decode {times['tokans dec'] / n * 1e6:.0f} µs; LZW encode {times['LZW enc'] / n * 1e6:.0f} µs, "
        f"decode {times['LZW dec'] / n * 1e6:.0f} µs.",
        "",
    ]
    md = "\n".join(out)
    print(md)
    if not args.no_doc:
        from report import update_section

        update_section("text", md)
    return 1 if mismatches else 0


if __name__ == "__main__":
    sys.exit(main())
