"""Reader: sequential and random access, recovery from truncation and damage, hostile input."""

from __future__ import annotations

import io
import tracemalloc

import numpy as np
import pytest
from conftest import Pipe, make_clips, make_header, make_stream
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import m3cvc_format as m
from m3cvc_format.chunks import frame_chunk

STREAM = make_stream(count=6)


def clip_spans(data: bytes) -> list[tuple[int, int]]:
    r = m.Reader(data)
    return [(e.offset, e.offset + r.clip(e.clip_index).size) for e in r.index]


def test_reads_what_was_written():
    header = make_header()
    clips = make_clips(header, 6)
    buf = io.BytesIO()
    m.write(buf, header, clips, index_map_coder=m.IndexMapCoder.RAW)
    r = m.Reader(buf.getvalue())
    assert r.header == header
    decoded = [rec.decode(r.header) for rec in r]
    for got, want in zip(decoded, clips):
        assert (got.index, got.first_frame, got.frame_count, got.mode, got.seed) == (
            want.index,
            want.first_frame,
            want.frame_count,
            want.mode,
            want.seed,
        )
        assert (got.keyframe_text, got.clip_text) == (want.keyframe_text, want.clip_text)
        assert np.array_equal(got.index_map, want.index_map)
    assert len(decoded) == 6
    assert r.index_source == "trailer" and r.clip_count == 6
    assert r.frame_count == clips[-1].first_frame + clips[-1].frame_count


def test_path_pathlike_and_file_object(tmp_path):
    path = tmp_path / "s.m3v"
    path.write_bytes(STREAM)
    with open(path, "rb") as file:
        for src in (str(path), path, file):
            with m.Reader(src) as r:
                assert [c.index for c in r] == list(range(6))
        assert not file.closed  # a file object the caller gave stays open


def test_pipe_reads_sequentially_but_refuses_random_access():
    r = m.Reader(Pipe(STREAM, step=5))
    assert not r.seekable
    assert [c.index for c in r.clips()] == list(range(6))
    with pytest.raises(m.MissingIndexError):
        r.index


def test_random_access_reads_only_the_clip_after_the_index():
    r = m.Reader(STREAM)
    r.index
    before = r.reads
    for k in reversed(range(6)):
        assert r.clip(k).index == k
    assert r.reads - before <= 6  # one read a clip at most (several may share a read-ahead window)


def test_clip_at_frame():
    r = m.Reader(STREAM)
    for e in r.index:
        assert r.clip_at_frame(e.first_frame) == e.clip_index
        assert r.clip_at_frame(e.first_frame + e.frame_count - 1) == e.clip_index
    with pytest.raises(IndexError):
        r.clip_at_frame(r.frame_count)


def test_every_truncation_point_recovers_every_complete_clip_before_it():
    spans = clip_spans(STREAM)
    header_end = m.Reader(STREAM).header_end
    for cut in range(len(STREAM) + 1):
        data = STREAM[:cut]
        if cut < header_end:
            with pytest.raises((m.TruncatedError, m.SignatureError)):
                m.Reader(data)
            continue
        r = m.Reader(data)
        got = [c.index for c in r.clips()]
        assert got == [k for k, (_, end) in enumerate(spans) if end <= cut], cut
        # random access rebuilds the index by scanning when the trailer is gone
        assert [e.clip_index for e in r.index] == got
        if cut < len(STREAM):
            assert r.index_source == "scan"


def test_unterminated_stream_is_indexed_by_scanning():
    data = make_stream(count=4, index=False)
    r = m.Reader(data)
    assert [e.clip_index for e in r.index] == [0, 1, 2, 3]
    assert r.index_source == "scan" and not r.truncated


@settings(max_examples=200, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_bit_flips_are_caught_and_other_clips_still_read(data):
    spans = clip_spans(STREAM)
    header_end = m.Reader(STREAM).header_end
    pos = data.draw(st.integers(header_end, len(STREAM) - 1))
    bit = data.draw(st.integers(0, 7))
    damaged = bytearray(STREAM)
    damaged[pos] ^= 1 << bit
    r = m.Reader(bytes(damaged), on_damage="skip")
    got = [c.index for c in r.clips()]
    hit = [k for k, (start, end) in enumerate(spans) if start <= pos < end]
    assert got == [k for k in range(6) if k not in hit]
    if hit:
        assert r.damage and r.damage[0].offset == spans[hit[0]][0]
        assert isinstance(r.damage[0].error, (m.ChecksumError, m.MalformedError, m.TruncatedError))
        # The default policy raises; a flipped length that reaches past the end looks
        # exactly like a cut-off stream and is reported as truncation instead.
        strict = m.Reader(bytes(damaged))
        try:
            list(strict.clips())
            assert strict.truncated and strict.damage
        except m.M3VError:
            pass
    # every intact clip is still reachable by random access (through the index or a rescan)
    for k in got:
        assert r.clip(k).index == k


def test_damaged_header_is_fatal():
    damaged = bytearray(STREAM)
    damaged[12] ^= 4
    with pytest.raises(m.ChecksumError) as info:
        m.Reader(bytes(damaged))
    assert info.value.offset == 8


def _consume(data: bytes) -> None:
    r = m.Reader(data, on_damage="skip")
    for rec in r.clips():
        try:
            rec.decode(r.header)
        except m.M3VError:
            pass
    if r.seekable:
        r.index


@settings(max_examples=300, deadline=1000)
@given(st.binary(max_size=4096))
def test_random_garbage_only_raises_our_errors(garbage):
    for data in (garbage, m.SIGNATURE + garbage, STREAM[:60] + garbage):
        try:
            _consume(data)
        except m.M3VError as err:
            assert isinstance(err, ValueError) and str(err)


@settings(max_examples=60, deadline=1000)
@given(st.binary(min_size=1, max_size=2048), st.integers(0, 10**9))
def test_garbage_memory_stays_proportional_to_input(garbage, where):
    data = bytearray(STREAM)
    pos = 8 + where % (len(data) - 8)
    data[pos : pos + len(garbage)] = garbage
    tracemalloc.start()
    try:
        _consume(bytes(data))
    except m.M3VError:
        pass
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert peak < 2_000_000 + 8 * len(data)


def test_length_far_beyond_the_data_allocates_nothing_big():
    r = m.Reader(STREAM)
    clip1 = r.index[1].offset
    data = bytearray(STREAM)
    data[clip1 + 1 : clip1 + 3] = b"\xff\xff\xff\x7f"  # 2**28 - 1
    for src in (bytes(data), Pipe(bytes(data), step=4096)):
        tracemalloc.start()
        reader = m.Reader(src)
        assert [c.index for c in reader.clips()] == [0]
        assert reader.truncated and isinstance(reader.damage[0].error, m.TruncatedError)
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        assert peak < 2_000_000 + 8 * len(data)  # the 1 MiB read piece, not the 256 MiB claimed


def test_unknown_ancillary_chunks_are_skipped_and_critical_ones_refused():
    r = m.Reader(STREAM)
    at = r.index[2].offset
    with_ancillary = STREAM[:at] + frame_chunk(0xC3, b"private data") + STREAM[at:]
    assert [c.index for c in m.Reader(with_ancillary).clips()] == list(range(6))
    with_critical = STREAM[:at] + frame_chunk(0x33, b"needed") + STREAM[at:]
    with pytest.raises(m.UnknownChunkError) as info:
        list(m.Reader(with_critical, on_damage="skip").clips())
    assert info.value.offset == at


def test_data_after_tail_is_an_error():
    with pytest.raises(m.MalformedError):
        list(m.Reader(STREAM + b"\x00").clips())


def test_signature_damage_is_explained():
    with pytest.raises(m.SignatureError, match="line-ending"):
        m.Reader(STREAM.replace(b"\r\n", b"\n", 1))
    with pytest.raises(m.SignatureError, match="high bit"):
        m.Reader(bytes([STREAM[0] & 0x7F]) + STREAM[1:])
    with pytest.raises(m.SignatureError):
        m.Reader(b"")


def test_errors_subclass_value_error():
    for name in (
        "SignatureError",
        "TruncatedError",
        "ChecksumError",
        "MalformedError",
        "LimitError",
        "UnknownChunkError",
        "PayloadError",
        "UnsupportedVersionError",
        "MissingIndexError",
    ):
        cls = getattr(m, name)
        assert issubclass(cls, m.M3VError) and issubclass(cls, ValueError)


def _temporal_stream(count=9, refresh=4):
    header = make_header()
    rng = np.random.default_rng(11)
    clips = make_clips(header, count)
    for prev, clip in zip(clips, clips[1:]):
        cells = rng.random(prev.index_map.shape) < 0.1
        clip.index_map = np.where(cells, rng.integers(0, header.vocab_size, cells.shape), prev.index_map)
    buf = io.BytesIO()
    m.write(buf, header, clips, refresh=refresh)
    return buf.getvalue(), clips


def test_random_access_decodes_the_dependent_chain():
    data, clips = _temporal_stream()
    r = m.Reader(data)
    assert [r.clip(k).dependent for k in range(9)] == [False, True, True, True] * 2 + [False]
    for k in range(9):  # each with a fresh cache: the chain is walked back every time
        assert np.array_equal(r.decode_clip(k).index_map, clips[k].index_map)
    maps = {}
    r.decode_clip(6, maps)
    assert sorted(maps) == [4, 5, 6]  # back to the independent clip 4, no further
    with pytest.raises(m.MissingReferenceError):
        r.clip(2).decode(r.header)  # without its reference


def test_damaged_clip_takes_its_dependants_until_the_next_independent_clip():
    data, clips = _temporal_stream()
    r = m.Reader(data)
    c2 = r.clip(2)
    damaged = bytearray(data)
    damaged[c2.offset + c2.size // 2] ^= 0x04
    damaged = bytes(damaged)
    r = m.Reader(damaged, on_damage="skip")
    assert [c.index for c in r.decoded_clips()] == [0, 1, 4, 5, 6, 7, 8]
    assert [type(d.error) for d in r.damage] == [m.ChecksumError, m.MissingReferenceError]
    r = m.Reader(damaged)
    with pytest.raises(m.MissingReferenceError) as info:
        r.decode_clip(3)
    assert info.value.offset is not None
    assert np.array_equal(r.decode_clip(5).index_map, clips[5].index_map)
    with pytest.raises(m.ChecksumError):
        list(m.Reader(damaged).decoded_clips())
