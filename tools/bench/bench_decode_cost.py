"""Worst-case CPU per input byte: how long ``m3v-info --verify`` (summarize + verify) takes on
hostile but CRC-valid streams, in seconds per byte of input.

    python tools/bench/bench_decode_cost.py [--quick]

Each case is a stream a hostile or buggy writer could make, built here from the chunk
primitives (not through the Writer, which pads clips to meet spec/m3v.md §11):

* ``issue-512x512``: the case of issue 13: a 512x512 grid (the largest the spec allows), one
  clip whose CONTEXT map codes in 0 bytes (every cell repeats its neighbour), then the same
  with 10 clips;
* ``escapes``: the costliest map to decode per coded bit that we know of: vocabulary 4096, a
  five-value pattern in which no cell repeats any of its causal neighbours, so every cell goes
  through stage 2 (an O(V) table) at well under one bit a cell;
* ``...-padded``: the same clips padded with a PAD sub-chunk to the least size the work limit
  of spec/m3v.md §11 (16 cells a byte) allows: the worst a conforming stream can do;
* ``text-lzw`` / ``text-tokans``: the text codecs' most expansive payloads (2^20 bytes of text
  from a short payload);
* ``resync``: a damaged clip followed by overlapping fake CLIP chunks, every 5 bytes one whose
  length spans 64 KiB: each costs the search after damage (spec §9) a CRC over its span; once
  with the reader's bound on that search, once with it lifted (as before the bound).

A case the reader refuses (LimitError) is timed all the same: refusing is the point.
"""

from __future__ import annotations

import argparse
import platform
import sys
import time
from fractions import Fraction

import numpy as np

from m3cvc_format import reader as reader_module
from m3cvc_format.chunks import build_head, frame_chunk
from m3cvc_format.constants import SIGNATURE, ChunkType, IndexMapCoder, TextCodec
from m3cvc_format.errors import M3VError
from m3cvc_format.indexmap import encode_index_map
from m3cvc_format.model import Header
from m3cvc_format.reader import Reader
from m3cvc_format.summary import summarize, verify
from m3cvc_format.syntax import encode_leb128
from m3cvc_format.textcodec import encode_text

PAD_KIND = 15
CELLS_PER_BYTE = 16  # spec/m3v.md §11


def clip_chunk(index: int, coder: int, grid: tuple[int, int], coded: bytes, texts=(b"", b""), pad_to: int = 0) -> bytes:
    """A CLIP chunk (prediction mode, one frame) holding ``coded``; padded with PAD to at least
    ``pad_to`` bytes of chunk when asked."""
    body = bytes([coder]) + encode_leb128(grid[0]) + encode_leb128(grid[1]) + coded
    payload = encode_leb128(index) + encode_leb128(index) + b"\x01\x01"
    for kind, text in enumerate(texts):
        if text:
            payload += encode_leb128(len(text) << 4 | kind) + text
    payload += encode_leb128(len(body) << 4 | 2) + body
    pad = 0
    while len(frame_chunk(ChunkType.CLIP, payload)) < pad_to:
        pad += 1
        trial = payload + encode_leb128(pad << 4 | PAD_KIND) + bytes(pad)
        if len(frame_chunk(ChunkType.CLIP, trial)) >= pad_to:
            payload = trial
            break
    return frame_chunk(ChunkType.CLIP, payload)


def stream(header: Header, clips: list[bytes]) -> bytes:
    return SIGNATURE + frame_chunk(ChunkType.HEAD, build_head(header)) + b"".join(clips)


def header(grid: tuple[int, int], vocab: int, codec: TextCodec = TextCodec.UTF8, prior=()) -> Header:
    return Header(
        width=640,
        height=480,
        fps=Fraction(25),
        grid_h=grid[0],
        grid_w=grid[1],
        vocab_size=vocab,
        text_codec=codec,
        prior=tuple(prior),
    )


def pattern(h: int, w: int) -> np.ndarray:
    y, x = np.mgrid[0:h, 0:w]
    return ((x + 2 * y) % 5).astype(np.int64)  # differs from W, N, NW and NE everywhere


def cases(quick: bool):
    big = (512, 512)
    const = encode_index_map(np.zeros(big, np.int64), 256, IndexMapCoder.CONTEXT)
    need = big[0] * big[1] // CELLS_PER_BYTE
    yield "issue-512x512, 1 clip", stream(header(big, 256), [clip_chunk(0, 2, big, const)])
    if not quick:
        yield "issue-512x512, 10 clips", stream(header(big, 256), [clip_chunk(k, 2, big, const) for k in range(10)])
    yield "issue-512x512, 1 clip, padded", stream(header(big, 256), [clip_chunk(0, 2, big, const, pad_to=need)])
    # A prior that favours the pattern's five values makes its escapes cheaper still.
    grid = (64, 64) if quick else (128, 128)
    prior = [1000] * 5 + [0] * 4091
    coded = encode_index_map(pattern(*grid), 4096, IndexMapCoder.CONTEXT, prior)
    yield (
        f"escapes V=4096 {grid[0]}x{grid[1]} ({grid[0] * grid[1] / len(coded):.1f} cells/B)",
        stream(header(grid, 4096, prior=prior), [clip_chunk(0, 2, grid, coded)]),
    )
    # Texts: LZW's most expansive payload is a run of one byte (each code one byte longer than
    # the last), tokans-1's the most probable token repeated.  Both stop at the 2^20 limit.
    run = b"a" * (1 << 20)
    for codec, label in ((TextCodec.LZW, "text-lzw"), (TextCodec.TOKANS1, "text-tokans")):
        text = encode_text(run.decode(), codec)
        h = header((1, 1), 2, codec)
        one = encode_index_map(np.zeros((1, 1), np.int64), 2, IndexMapCoder.CONTEXT)
        yield f"{label} ({len(text)} B payload)", stream(h, [clip_chunk(0, 2, (1, 1), one, (text, b""))])


def resync_stream(size: int) -> bytes:
    h = header((2, 2), 16)
    one = encode_index_map(np.arange(4).reshape(2, 2), 16, IndexMapCoder.RAW)
    damaged = bytearray(clip_chunk(0, 0, (2, 2), one))
    damaged[6] ^= 1  # a CRC mismatch: the reader searches for the next intact chunk
    fake = b"\x02\x80\x80\x04\x05" * (size // 5)  # type CLIP, length 2^16, clip index 5
    return stream(h, [bytes(damaged), fake, clip_chunk(1, 0, (2, 2), one)])


def verify_seconds(data: bytes) -> tuple[float, str]:
    t = time.perf_counter()
    try:
        summary = summarize(data, on_damage="skip")
        verify(summary)
        outcome = "valid" if not summary.damage else f"damaged ({len(summary.damage)} notes)"
    except M3VError as exc:
        outcome = f"{type(exc).__name__}"
    return time.perf_counter() - t, outcome


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="smaller grids, fewer cases")
    args = p.parse_args(argv)
    print(f"# {time.strftime('%Y-%m-%d')} {platform.machine()} python {platform.python_version()}")
    print(f"{'case':52s} {'bytes':>8s} {'seconds':>8s} {'ms/byte':>9s} {'us/cell':>8s}  outcome")
    worst = cell_cost = 0.0
    for name, data in cases(args.quick):
        seconds, outcome = verify_seconds(data)
        per_byte = 1000 * seconds / len(data)
        reader = Reader(data)  # counts CLIP chunks without parsing them (a refused one included)
        clips = sum(chunk.chunk_type == ChunkType.CLIP for chunk in reader.chunks())
        cells = reader.header.grid_h * reader.header.grid_w * clips
        per_cell = 1e6 * seconds / cells
        if outcome == "valid":
            worst = max(worst, per_byte)
            cell_cost = max(cell_cost, per_cell) if cells > 1 else cell_cost
        print(f"{name:52s} {len(data):8d} {seconds:8.3f} {per_byte:9.4f} {per_cell:8.1f}  {outcome}", flush=True)
    size = 200_000 if args.quick else 1_000_000
    data = resync_stream(size)
    for label, bounded in (("bounded", True), ("unbounded, as before", False)):
        saved = reader_module._RESYNC_BASE_BYTES
        if not bounded:
            reader_module._RESYNC_BASE_BYTES = 1 << 62
        try:
            seconds, outcome = verify_seconds(data)
        finally:
            reader_module._RESYNC_BASE_BYTES = saved
        name = f"resync over {size // 1000} kB of fake chunks ({label})"
        print(f"{name:52s} {len(data):8d} {seconds:8.3f} {1000 * seconds / len(data):9.4f} {'-':>8s}  {outcome}")
    print(f"worst accepted: {worst:.4f} ms per input byte")
    print(
        f"bound for a stream meeting the work limit: {CELLS_PER_BYTE} cells/byte x {cell_cost:.1f} us/cell "
        f"= {CELLS_PER_BYTE * cell_cost / 1000:.4f} ms per input byte"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
