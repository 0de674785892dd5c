#!/usr/bin/env python3
"""Make the conformance vectors in spec/vectors/ (deterministic: same bytes every run).

    python tools/make_vectors.py            # (re)write spec/vectors/
    python tools/make_vectors.py --check    # exit 1 if any file would change

Each vector NAME.m3v comes with NAME.json: for a valid stream what a reader
must report (header, clips with decoded texts and index maps); for a damaged
or invalid one the error class and byte offset it must report, and which
clips stay readable.
"""

from __future__ import annotations

import argparse
import dataclasses
import io
import json
import struct
import sys
from fractions import Fraction
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]

import m3cvc_format as m  # noqa: E402
from m3cvc_format.chunks import frame_chunk  # noqa: E402
from m3cvc_format.constants import PAD_SUBCHUNK_KIND  # noqa: E402
from m3cvc_format.crc import crc32c  # noqa: E402
from m3cvc_format.model import SequentialDecoder  # noqa: E402  (the reader's one reference-chain walk)
from m3cvc_format.syntax import read_leb128  # noqa: E402

OUT = ROOT / "spec" / "vectors"

TEXTS = [
    (
        "A man in a red jacket walks a brown dog along a park path; trees line both sides.",
        "The man walks left to right while the dog sniffs the grass, then both stop near a bench.",
    ),
    (
        "Close-up of a café table: two white cups, a croissant, morning light.",
        "A hand reaches in and lifts one cup; steam rises. The camera stays still.",
    ),
    ("一个女孩在草地上玩耍 🌼", "她跑向镜头，然后转身。"),
    ("", "Nothing changes."),
    ("Ein Junge jongliert drei Bälle auf dem Rasen.", ""),
    ("", ""),
]


#: The prompts the "prompts" vector records (spec/m3v.md §4.3), as a dialogue writer might.
PROMPTS = {
    "name": "default",
    "version": 1,
    "turns": 4,
    "model": "Qwen/Qwen2-VL-7B-Instruct",
    "settings": {"max_new_tokens": 128, "greedy": True, "clip_input": "frames", "frames": 8},
    "keyframe": [
        "Describe the objects in this image and the background.",
        "This is the previous keyframe, described as: {previous_text}\nWhat differs in the new image?",
        "Describe the small details: textures, colours, text, faces.",
        "Summarise the image in one paragraph.",
    ],
    "clip": ["The first frame is described as: {keyframe_text}\nDescribe the primary motion in this clip."],
    "x-comment": "café — 试验",
}


def structured_map(rng: np.random.Generator, h: int, w: int, vocab: int) -> np.ndarray:
    """Blocky map with noise: neighbours often agree, as in a real VQ index map."""
    coarse = rng.integers(0, vocab, (max(1, h // 4) + 1, max(1, w // 4) + 1))
    base = np.kron(coarse, np.ones((4, 4), dtype=np.int64))[:h, :w]
    noise = rng.random((h, w)) < 0.25
    base[noise] = rng.integers(0, vocab, int(noise.sum()))
    return base.astype(np.uint16)


def make_clips(rng, header: m.Header, count: int, modes=None, seeds=None, texts=TEXTS, coders=None):
    clips, first = [], 0
    for k in range(count):
        n = int(rng.integers(1, 17))
        kf, cl = texts[k % len(texts)]
        clips.append(
            m.Clip(
                index=k,
                first_frame=first,
                frame_count=n,
                mode=(modes[k] if modes else (m.Mode.PREDICTION if k == count - 1 else m.Mode.INTERPOLATION)),
                keyframe_text=kf,
                clip_text=cl,
                index_map=structured_map(rng, header.grid_h, header.grid_w, header.vocab_size),
                seed=seeds[k] if seeds else None,
                index_map_coder=coders[k % len(coders)] if coders else None,
            )
        )
        first += n
    return clips


def stream_bytes(header, clips, *, index=True, coder=m.IndexMapCoder.CONTEXT, ancillary_after=None):
    buf = io.BytesIO()
    w = m.Writer(buf, header, index=index, index_map_coder=coder)
    for clip in clips:
        w.write_clip(clip)
        if ancillary_after is not None and clip.index == ancillary_after:
            w.write_ancillary(0xF0, b"an ancillary chunk no reader knows: skip me")
    w.close()
    return buf.getvalue()


def prior_for(vocab: int) -> tuple[int, ...]:
    # A Zipf-like prior, as a pack's index statistics might look.
    return tuple(int(4096 / (1 + i) ** 0.8) for i in range(vocab))


def expected_valid(data: bytes, notes: str) -> dict:
    reader = m.Reader(data, on_damage="skip")
    h = reader.header
    clips = []
    decoder = SequentialDecoder(h)
    for record in reader.clips():
        clip = decoder.decode(record)
        clips.append(
            {
                "index": clip.index,
                "offset": record.offset,
                "size": record.size,
                "first_frame": clip.first_frame,
                "frame_count": clip.frame_count,
                "mode": clip.mode.name.lower(),
                "seed": clip.seed,
                "decode_seed": m.decode_seed(h.stream_seed, clip.index, clip.seed),
                "keyframe_text": clip.keyframe_text,
                "clip_text": clip.clip_text,
                "index_map_coder": int(clip.index_map_coder),
                "index_map": clip.index_map.tolist(),
                "ancillary": [[k, b.hex()] for k, b in clip.ancillary],
            }
        )
    index_source = reader.index and reader.index_source
    prompts = reader.prompts
    out = {
        "valid": True,
        "notes": notes,
        "size": len(data),
        "header": {
            "version": list(h.version),
            "width": h.width,
            "height": h.height,
            "fps": [h.fps.numerator, h.fps.denominator],
            "time_base": [h.time_base.numerator, h.time_base.denominator],
            "frame_count": h.frame_count,
            "pack_id": h.pack_id,
            "pack_hash": h.pack_hash.hex(),
            "grid": [h.grid_h, h.grid_w],
            "vocab_size": h.vocab_size,
            "text_codec": int(h.text_codec),
            "default_mode": int(h.default_mode),
            "stream_seed": h.stream_seed,
            "prior": list(h.prior),
            "metadata": h.metadata,
            "extension": h.extension.hex(),
        },
        "clips": clips,
        "index": index_source or "scan",
        "terminated": reader.index_offset is not None,
        "truncated_at": reader.damage[0].offset if reader.truncated else None,
    }
    if prompts is not None:
        out["prompts"] = prompts
    return out


def first_error(data: bytes) -> m.M3VError | None:
    """What a strict reader reports: the error it raises, or the damage it records
    (a chunk that runs past the end of the data reads as a cut-off stream)."""
    try:
        reader = m.Reader(data)
        list(reader.clips())
    except m.M3VError as err:
        return err
    return reader.damage[0].error if reader.damage else None


def expected_invalid(data: bytes, notes: str) -> dict:
    error = first_error(data)
    if error is None:
        raise AssertionError("invalid vector reads without error: " + notes)
    try:
        reader = m.Reader(data, on_damage="skip")
        readable = [c.index for c in reader.clips()]
    except m.M3VError:
        readable = []
    try:
        decodable = [c.index for c in m.Reader(data, on_damage="skip").decoded_clips()]
    except m.M3VError:
        decodable = []
    return {
        "valid": False,
        "notes": notes,
        "size": len(data),
        "error": type(error).__name__,
        "offset": error.offset,
        "message": error.message,
        "readable_clips": readable,
        "decodable_clips": decodable,
    }


def set_crc(data: bytearray, start: int, size: int) -> None:
    struct.pack_into("<I", data, start + size - 4, crc32c(bytes(data[start : start + size - 4])))


def with_head(data: bytes, change) -> bytes:
    """``data`` with its HEAD payload replaced by ``change(payload)`` (CRC recomputed)."""
    reader = m.Reader(data)
    start = len(m.SIGNATURE)
    raw = data[start : reader.header_end]
    payload_start = 2 if raw[1] < 0x80 else 3
    payload = raw[payload_start:-4]
    return data[:start] + frame_chunk(m.ChunkType.HEAD, change(payload)) + data[reader.header_end :]


def build_vectors() -> dict[str, tuple[bytes, dict]]:
    vectors: dict[str, tuple[bytes, dict]] = {}

    def valid(name, data, notes):
        vectors[name] = (data, expected_valid(data, notes))

    def invalid(name, data, notes):
        vectors[name] = (data, expected_invalid(data, notes))

    rng = np.random.default_rng(20261121)

    h = m.Header(
        width=64, height=48, fps=8, grid_h=2, grid_w=3, vocab_size=16, text_codec=m.TextCodec.UTF8, frame_count=1
    )
    minimal = stream_bytes(
        h,
        [m.Clip(index=0, first_frame=0, frame_count=1, mode=m.Mode.PREDICTION, index_map=np.arange(6).reshape(2, 3))],
        coder=m.IndexMapCoder.RAW,
    )
    valid("minimal", minimal, "one clip of one frame, raw index map, no texts")

    h = m.Header(
        width=512,
        height=320,
        fps=Fraction(30000, 1001),
        time_base=Fraction(1, 30000),
        grid_h=20,
        grid_w=32,
        text_codec=m.TextCodec.LZW,
        stream_seed=0x0123456789ABCDEF,
        prior=prior_for(256),
        pack_id="lite",
        pack_hash=bytes(range(32)),
        metadata={
            "encoder": "make_vectors",
            "keyframe_selection": {"strategy": "composite", "lambda1": 1.0, "lambda2": 0.05, "threshold": 0.3},
        },
    )
    modes = [
        m.Mode.INTERPOLATION,
        m.Mode.PREDICTION,
        m.Mode.INTERPOLATION,
        m.Mode.INTERPOLATION,
        m.Mode.PREDICTION,
        m.Mode.PREDICTION,
    ]
    clips = make_clips(
        rng,
        h,
        6,
        modes=modes,
        seeds=[None, 7, None, 2**64 - 1, 0, None],
        coders=[m.IndexMapCoder.CONTEXT, m.IndexMapCoder.STATIC, m.IndexMapCoder.RAW],
    )
    header = m.Header(**{**h.__dict__, "frame_count": sum(c.frame_count for c in clips)})
    multi = stream_bytes(header, clips)
    valid(
        "clips-modes",
        multi,
        "six clips in both modes, 30000/1001 fps, per-clip seeds, all three index-map coders, LZW texts",
    )

    for gh, gw in ((32, 32), (64, 64)):
        h = m.Header(
            width=512,
            height=512,
            fps=8,
            grid_h=gh,
            grid_w=gw,
            text_codec=m.TextCodec.TOKANS1,
            prior=prior_for(256),
            frame_count=0,
        )
        clips = make_clips(rng, h, 3, coders=[m.IndexMapCoder.CONTEXT, m.IndexMapCoder.STATIC])
        valid(
            f"grid-{gh}x{gw}",
            stream_bytes(h, clips),
            f"{gh}x{gw} grid, context and static coders, tokans-1 texts, frame count unknown (0)",
        )

    for codec in m.TextCodec:
        h = m.Header(width=320, height=240, fps=25, grid_h=5, grid_w=8, text_codec=codec, vocab_size=256)
        clips = make_clips(rng, h, len(TEXTS))
        valid(
            f"text-{codec.name.lower()}", stream_bytes(h, clips), f"text codec {codec.name}: non-ASCII and empty texts"
        )

    h = m.Header(width=176, height=144, fps=8, grid_h=9, grid_w=11, text_codec=m.TextCodec.TOKANS1)
    clips = make_clips(rng, h, 4)
    unterminated = stream_bytes(h, clips, index=False)
    valid(
        "unterminated",
        unterminated,
        "no INDX or TAIL (a live stream stopped at a chunk boundary): the index is rebuilt by scanning",
    )

    full = stream_bytes(h, clips)
    cut_reader = m.Reader(full)
    cut_at = cut_reader.index[2].offset + cut_reader.clip(2).size // 2
    valid("cut-off", full[:cut_at], "cut inside clip 2: clips 0 and 1 are recovered, the cut is reported")

    h = m.Header(width=176, height=144, fps=8, grid_h=6, grid_w=6, vocab_size=64, text_codec=m.TextCodec.LZW)
    clips = make_clips(rng, h, 3)
    clips[1].ancillary = ((8, b"ancillary sub-chunk"), (15, b""))
    valid(
        "ancillary",
        stream_bytes(h, clips, ancillary_after=0),
        "an unknown ancillary chunk (0xF0) after clip 0 and ancillary sub-chunks (kinds 8, 15) in clip 1: readers skip them",
    )

    # A stream of a later minor version: HEAD has extension bytes, clip 0 a flag bit
    # this version reserves. A reader of this version must accept it and ignore both.
    h = m.Header(width=64, height=64, fps=8, grid_h=4, grid_w=4, vocab_size=8, text_codec=m.TextCodec.UTF8)
    older = stream_bytes(h, make_clips(rng, h, 2), index=False)
    newer = bytearray(with_head(older, lambda p: bytes([1, m.VERSION_MINOR + 1]) + p[2:] + b"\x2a\x00future"))
    clip0 = m.Reader(bytes(newer)).clip(0)
    # clip 0's fields start after its type and length: clip_index, first_frame and
    # frame_count take one byte each here, then comes flags.
    _, payload_start = read_leb128(newer, clip0.offset + 1)
    newer[payload_start + 3] |= 0x80
    set_crc(newer, clip0.offset, clip0.size)
    valid(
        "newer-minor",
        bytes(newer),
        f"version 1.{m.VERSION_MINOR + 1}: HEAD carries 8 extension bytes and clip 0 sets reserved flag bit 7; "
        f"a 1.{m.VERSION_MINOR} reader ignores both",
    )

    # Dependent clips (TEMPORAL, since 1.1): maps that change a little from clip to clip,
    # written with an independent map at least every 3 clips.
    h = m.Header(
        width=192,
        height=128,
        fps=8,
        grid_h=8,
        grid_w=12,
        vocab_size=64,
        text_codec=m.TextCodec.UTF8,
        prior=prior_for(64),
    )
    clips = make_clips(rng, h, 7)
    for prev, clip in zip(clips, clips[1:]):
        changed = rng.random(prev.index_map.shape) < 0.2
        clip.index_map = np.where(changed, rng.integers(0, 64, prev.index_map.shape), prev.index_map)
    clips[5].index_map = clips[4].index_map.copy()  # an unchanged map: an empty TEMPORAL payload
    buf = io.BytesIO()
    with m.Writer(buf, h, refresh=3) as w:
        for clip in clips:
            w.write_clip(clip)
    temporal = buf.getvalue()
    coders = [rec.index_map.coder for rec in m.Reader(temporal).clips()]
    assert coders == [2, 3, 3, 2, 3, 3, 2], coders
    valid(
        "temporal",
        temporal,
        "seven clips, maps coded CONTEXT, TEMPORAL, TEMPORAL, CONTEXT, TEMPORAL, TEMPORAL (empty payload: the "
        "map repeats clip 4's), CONTEXT: each TEMPORAL map decodes against the previous clip's",
    )

    # ---- invalid and damaged streams
    base = vectors["clips-modes"][0]
    invalid("bad-signature", b"\x89PNG\r\n\x1a\n" + base[8:], "not an .m3v signature")
    invalid(
        "text-mode-damage",
        base.replace(b"\r\n", b"\n", 1),
        "CR LF of the signature turned into LF by a text-mode transfer",
    )
    invalid("truncated-header", base[:20], "ends inside HEAD")
    r = m.Reader(base)
    c1 = r.clip(1)
    damaged = bytearray(base)
    damaged[c1.offset + c1.size // 2] ^= 0x10
    invalid(
        "crc-mismatch", bytes(damaged), "one bit flipped inside clip 1: CRC mismatch; the other clips stay readable"
    )
    long_len = bytearray(base)
    # clip 1's chunk_length (2 bytes) replaced by a 4-byte length near 2**28: far beyond the file
    long_len[c1.offset + 1 : c1.offset + 3] = b"\xff\xff\xff\x7f"
    invalid("length-beyond-file", bytes(long_len), "clip 1's chunk_length says 268435455 bytes")
    invalid("unsupported-major", with_head(base, lambda p: bytes([2, 0]) + p[2:]), "version 2.0")
    insert_at = m.Reader(minimal).clip(0).offset
    invalid(
        "unknown-critical",
        minimal[:insert_at] + frame_chunk(0x05, b"must be understood") + minimal[insert_at:],
        "a critical chunk of reserved type 0x05",
    )
    nonminimal = bytearray(minimal)
    off = insert_at
    length = nonminimal[off + 1]
    patched = minimal[:off] + bytes([0x02, length | 0x80, 0x00]) + minimal[off + 2 :]
    invalid("non-minimal-length", patched, "clip 0's chunk_length written as two bytes (80|n, 00): not minimal")
    r = m.Reader(temporal)
    c1 = r.clip(1)
    damaged = bytearray(temporal)
    damaged[c1.offset + c1.size // 2] ^= 0x10
    invalid(
        "temporal-damaged",
        bytes(damaged),
        "a bit flipped in clip 1 (TEMPORAL): clip 2, coded against clip 1, cannot be decoded either; "
        "clips 3-6 decode (clip 3 is independent)",
    )
    invalid(
        "temporal-in-1.0",
        with_head(temporal, lambda p: bytes([1, 0]) + p[2:]),
        "version 1.0 stream whose clip 1 uses coder 3, which 1.0 does not register",
    )

    # ---- the PRMT chunk (since 1.2), with a generator of its own so the vectors above keep their bytes
    rng = np.random.default_rng(20261202)
    h = m.Header(width=160, height=96, fps=8, grid_h=3, grid_w=5, vocab_size=32, text_codec=m.TextCodec.UTF8)
    clips = make_clips(rng, h, 3)
    buf = io.BytesIO()
    with m.Writer(buf, h, prompts=PROMPTS) as w:
        for clip in clips:
            w.write_clip(clip)
        w.write_ancillary(0xF0, b"an ancillary chunk no reader knows: skip me")
    valid(
        "prompts",
        buf.getvalue(),
        "version 1.2: a PRMT chunk right after HEAD records the prompts of the dialogue (a key 'x-comment' that "
        "1.2 does not define is ignored); a 1.1 reader skips it as an unknown ancillary chunk",
    )
    buf = io.BytesIO()
    with m.Writer(buf, h) as w:  # no prompts: version 1.1, where type 0x80 is not PRMT
        w.write_ancillary(0x80, b"\x00 a private chunk from before 1.2, not a PRMT")
        for clip in clips[:2]:
            w.write_clip(dataclasses.replace(clip, mode=m.Mode.PREDICTION) if clip.index == 1 else clip)
    valid(
        "type-0x80-in-1.1",
        buf.getvalue(),
        "version 1.1 with an ancillary chunk of type 0x80 before clip 0: type 0x80 was free before 1.2, so in a 1.1 "
        "stream it is not PRMT; readers skip it and report no prompts",
    )

    # ---- the work limit and PAD (since 1.3), with a generator of their own
    rng = np.random.default_rng(20261208)
    h = m.Header(width=192, height=128, fps=8, grid_h=16, grid_w=24, vocab_size=64, text_codec=m.TextCodec.UTF8)
    clips = make_clips(rng, h, 3)
    # Clip 1: a constant map (CONTEXT codes it in 0 bytes) and no texts: 14 bytes of chunk for
    # 384 cells, under the 24 the work limit asks, so the writer pads it with PAD.
    clips[1] = dataclasses.replace(
        clips[1], keyframe_text="", clip_text="", index_map=np.full((16, 24), 5, dtype=np.int64)
    )
    padded = stream_bytes(h, clips)
    valid(
        "padded",
        padded,
        "clip 1's map is constant (0 coded bytes) and it has no texts: its chunk would be 14 bytes for 384 cells, "
        "so the writer adds a PAD sub-chunk (kind 15, zero bytes) to reach the 24 bytes the work limit asks "
        "(at most 16 cells a byte, §11); the stream stays version 1.1",
    )
    cut = stream_bytes(h, clips, index=False)
    c1 = m.Reader(cut).clip(1)
    pad_kind, pad_body = c1.ancillary[-1]
    assert pad_kind == PAD_SUBCHUNK_KIND
    _, payload_start = read_leb128(cut, c1.offset + 1)
    payload = cut[payload_start : c1.offset + c1.size - 4]
    unpadded = frame_chunk(m.ChunkType.CLIP, payload[: -(len(pad_body) + 1)])  # the PAD's tag is 1 byte here
    invalid(
        "work-limit",
        cut[: c1.offset] + unpadded + cut[c1.offset + c1.size :],
        "unterminated; clip 1 as in 'padded' but without its PAD sub-chunk: a 14-byte CLIP chunk cannot hold an "
        "index map of 384 cells (at most 16 cells a byte, §11), a LimitError before any decoding; clips 0 and 2 "
        "stay readable",
    )
    return vectors


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--check", action="store_true", help="compare with spec/vectors instead of writing")
    p.add_argument("--out", type=Path, default=OUT)
    args = p.parse_args(argv)
    vectors = build_vectors()
    changed = []
    args.out.mkdir(parents=True, exist_ok=True)
    for name, (data, expected) in sorted(vectors.items()):
        text = json.dumps(expected, ensure_ascii=False, indent=1, sort_keys=True) + "\n"
        for path, content in ((args.out / f"{name}.m3v", data), (args.out / f"{name}.json", text.encode("utf-8"))):
            if not path.exists() or path.read_bytes() != content:
                changed.append(path.name)
                if not args.check:
                    path.write_bytes(content)
    if args.check:
        if changed:
            print("would change: " + ", ".join(changed))
            return 1
        print(f"{len(vectors)} vectors up to date")
        return 0
    print(f"{len(vectors)} vectors; written: {', '.join(changed) or 'none (up to date)'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
