"""Round trips of every syntax structure: parse(build(x)) == x, and the fast CLIP parser
agrees with the construct definition."""

from __future__ import annotations

import struct
from fractions import Fraction

import construct as c
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import m3cvc_format as m
from m3cvc_format import chunks, syntax
from m3cvc_format.crc import _pure_python, crc32c
from m3cvc_format.model import IndexEntry

u63 = st.integers(0, 2**63 - 1)


def test_crc32c_check_value():
    assert crc32c(b"123456789") == 0xE3069283
    assert _pure_python(b"123456789") == 0xE3069283


@given(st.binary(max_size=300))
def test_crc32c_matches_pure_python(data):
    assert crc32c(data) == _pure_python(data)


@pytest.mark.parametrize("value,encoded", [(0, "00"), (127, "7f"), (128, "8001"), (300, "ac02"), (16384, "808001")])
def test_leb128_examples_from_spec(value, encoded):
    assert syntax.encode_leb128(value).hex() == encoded
    assert syntax.VarUInt.parse(bytes.fromhex(encoded)) == value


@given(u63)
def test_leb128_round_trip(value):
    data = syntax.VarUInt.build(value)
    assert syntax.VarUInt.parse(data) == value
    assert syntax.read_leb128(data, 0) == (value, len(data))


def test_leb128_rejects_non_minimal_and_overlong():
    with pytest.raises(c.ValidationError):
        syntax.VarUInt.parse(b"\x80\x00")
    with pytest.raises(ValueError):
        syntax.read_leb128(b"\x81\x80\x00", 0)
    with pytest.raises(ValueError):
        syntax.read_leb128(b"\xff" * 9 + b"\x01", 0)
    with pytest.raises(c.ValidationError):
        syntax.Length.build(1 << 28)


@given(st.integers(0, 255), st.binary(max_size=2000))
def test_chunk_round_trip_and_crc(chunk_type, payload):
    data = chunks.frame_chunk(chunk_type, payload)
    parsed = syntax.Chunk.parse(data)
    assert parsed.body.value.chunk_type == chunk_type
    assert parsed.body.value.payload == payload
    assert syntax.Chunk.build(dict(body=dict(value=parsed.body.value), crc=None)) == data
    damaged = bytearray(data)
    damaged[-5 if payload else 0] ^= 1
    with pytest.raises(c.ChecksumError):
        syntax.Chunk.parse(bytes(damaged))


rationals = st.builds(Fraction, st.integers(1, 2**32 - 1), st.integers(1, 2**32 - 1))
headers = st.builds(
    m.Header,
    width=st.integers(1, 65535),
    height=st.integers(1, 65535),
    fps=st.sampled_from([Fraction(8), Fraction(30000, 1001), Fraction(25), Fraction(1, 3)]),
    grid_h=st.integers(1, 512),
    grid_w=st.integers(1, 512),
    vocab_size=st.just(16),
    frame_count=st.integers(0, 2**40 - 1),
    pack_id=st.from_regex(r"[a-z0-9][a-z0-9._-]{0,63}", fullmatch=True),
    pack_hash=st.binary(min_size=32, max_size=32),
    text_codec=st.sampled_from(list(m.TextCodec)),
    default_mode=st.sampled_from(list(m.Mode)),
    stream_seed=st.integers(0, 2**64 - 1),
    prior=st.one_of(st.just(()), st.lists(st.integers(0, 2**24 - 1), min_size=16, max_size=16).map(tuple)),
    metadata=st.dictionaries(
        st.text(max_size=8),
        st.one_of(st.integers(-5, 2**40), st.text(max_size=20), st.floats(allow_nan=False)),
        max_size=5,
    ),
).filter(lambda h: h.grid_h * h.grid_w <= 2**18)


@settings(max_examples=150)
@given(headers)
def test_head_round_trip(header):
    parsed = chunks.parse_head(chunks.build_head(header), 8)
    assert parsed == header


def test_head_rejects_values_beyond_limits():
    good = chunks.build_head(m.Header(width=64, height=48, fps=8, grid_h=3, grid_w=4))
    v = syntax.HeadPayload.parse(good)
    for field, bad in [
        ("width", 0),
        ("width", 65536),
        ("grid_h", 1025),
        ("vocab_size", 4097),
        ("fps_den", 0),
        ("text_codec", 9),
        ("default_mode", 2),
        ("pack_id", b"Bad ID"),
    ]:
        patched = syntax.HeadPayload.build({**v, field: bad})
        with pytest.raises(m.M3VError) as info:
            chunks.parse_head(patched, 8)
        assert info.value.offset == 8


def test_head_time_base_must_express_every_frame():
    with pytest.raises(m.MalformedError):
        m.Header(width=8, height=8, fps=Fraction(30000, 1001), time_base=Fraction(1, 1000), grid_h=1, grid_w=1)


sub_chunk = st.tuples(st.sampled_from([0, 1, 2, 8, 9, 15]), st.binary(max_size=300))


@settings(max_examples=200)
@given(
    clip_index=u63,
    first_frame=u63,
    frame_count=st.integers(1, 2**40),
    flags=st.sampled_from([0, 1, 2, 3]),
    seed=st.integers(0, 2**64 - 1),
    subs=st.lists(sub_chunk, max_size=6),
)
def test_clip_payload_fast_parser_agrees_with_construct(clip_index, first_frame, frame_count, flags, seed, subs):
    built = syntax.ClipPayload.build(
        dict(
            fields=dict(
                clip_index=clip_index,
                first_frame=first_frame,
                frame_count=frame_count,
                flags=flags,
                seed=seed if flags & 2 else None,
            ),
            sub_chunks=[dict(tag=len(body) << 4 | kind, body=body) for kind, body in subs],
        )
    )
    reference = syntax.ClipPayload.parse(built)
    assert reference.fields.clip_index == clip_index
    assert [(s.kind, s.body) for s in reference.sub_chunks] == subs
    critical = [k for k, _ in subs if k < 8]
    texts_ok = all(len(b) > 0 for k, b in subs if k < 2)
    index_map_ok = any(k == 2 and len(b) >= 3 for k, b in subs)
    if critical == sorted(set(critical)) and texts_ok and index_map_ok:
        try:
            record = chunks.parse_clip(built, 100, len(built) + 7)
        except m.MalformedError:
            # The index-map body's own header (coder, rows, columns) may be malformed.
            return
        assert (record.index, record.first_frame, record.frame_count, record.flags) == (
            clip_index,
            first_frame,
            frame_count,
            flags,
        )
        assert record.seed == (seed if flags & 2 else None)
        assert record.ancillary == tuple((k, b) for k, b in subs if k >= 8)
        texts = {k: b for k, b in subs if k < 2}
        assert record.keyframe_text_coded == texts.get(0, b"")
        assert record.clip_text_coded == texts.get(1, b"")
    else:
        with pytest.raises(m.MalformedError):
            chunks.parse_clip(built, 100, len(built) + 7)


def test_clip_rejects_reserved_flag_only_in_own_version():
    body = bytes([1]) + syntax.encode_leb128(2) + syntax.encode_leb128(2) + b"\x01"
    payload = syntax.ClipPayload.build(
        dict(
            fields=dict(clip_index=0, first_frame=0, frame_count=1, flags=0x80, seed=None),
            sub_chunks=[dict(tag=len(body) << 4 | 2, body=body)],
        )
    )
    with pytest.raises(m.MalformedError):
        chunks.parse_clip(payload, 0, 0, minor=m.VERSION_MINOR)
    assert chunks.parse_clip(payload, 0, 0, minor=m.VERSION_MINOR + 1).flags == 0x80


def test_clip_rejects_unknown_critical_sub_chunk():
    payload = syntax.ClipPayload.build(
        dict(
            fields=dict(clip_index=0, first_frame=0, frame_count=1, flags=0, seed=None),
            sub_chunks=[dict(tag=1 << 4 | 5, body=b"x")],
        )
    )
    with pytest.raises(m.UnknownChunkError):
        chunks.parse_clip(payload, 0, 0)


@given(st.lists(st.tuples(st.integers(1, 10**6), st.integers(1, 10**4)), max_size=50), st.integers(9, 1000))
def test_index_round_trip(sizes, start):
    entries, offset, frame = [], start, 0
    for k, (size, frames) in enumerate(sizes):
        entries.append(IndexEntry(k, offset, frame, frames))
        offset += size
        frame += frames
    payload = chunks.build_index(entries)
    assert chunks.parse_index(payload, 0, offset + 1) == entries
    assert syntax.IndexPayload.parse(payload).clip_count == len(entries)


def test_index_refuses_counts_it_cannot_hold():
    payload = syntax.encode_leb128(2**40) + syntax.encode_leb128(5) + b"\x01\x01"
    with pytest.raises(m.MalformedError):
        chunks.parse_index(payload, 0, 100)


@given(st.integers(0, 2**64 - 1), st.integers(0, 2**32 - 1))
def test_tail_round_trip(offset, size):
    payload = chunks.build_tail(offset, size)
    assert len(payload) == 12
    assert chunks.parse_tail(payload, 0) == (offset, size)
    assert struct.unpack("<QI", payload) == (offset, size)
