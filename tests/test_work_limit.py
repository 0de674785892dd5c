"""The work limit of spec/m3v.md §11 (since 1.3): a CLIP chunk holds at most 16 index-map cells a
byte, checked before decoding, and writers meet it with a PAD sub-chunk (issue 13, "CPU is not
bounded by input size")."""

from __future__ import annotations

import dataclasses
import io
import time

import numpy as np
import pytest
from conftest import make_header

import m3cvc_format as m
from m3cvc_format.chunks import build_coded_clip, build_head, frame_chunk, pad_clip_payload, parse_clip
from m3cvc_format.constants import MAX_CELLS_PER_CLIP_BYTE, PAD_SUBCHUNK_KIND, ChunkType
from m3cvc_format.model import ClipRecord, IndexMapPayload, min_clip_chunk_size
from m3cvc_format.summary import summarize, verify
from m3cvc_format.syntax import encode_leb128


def constant_clip(index: int, first: int, grid: tuple[int, int], value: int = 3, **kw) -> m.Clip:
    return m.Clip(index=index, first_frame=first, frame_count=2, index_map=np.full(grid, value), **kw)


def write(header: m.Header, clips: list[m.Clip], **options) -> bytes:
    buf = io.BytesIO()
    m.write(buf, header, clips, **options)
    return buf.getvalue()


@pytest.mark.parametrize("grid", [(3, 4), (16, 24), (20, 32), (40, 64)])
def test_writer_pads_a_map_that_codes_in_nothing_to_exactly_the_limit(grid):
    header = make_header(grid_h=grid[0], grid_w=grid[1], vocab_size=256)
    data = write(header, [constant_clip(0, 0, grid), constant_clip(1, 2, grid, keyframe_text="a cat")])
    cells = grid[0] * grid[1]
    reader = m.Reader(data)
    padded = 0
    for record in reader.clips():
        assert record.index_map is not None and len(record.index_map.data) <= 3  # CONTEXT: almost nothing
        assert record.size >= min_clip_chunk_size(cells)
        pads = [body for kind, body in record.ancillary if kind == PAD_SUBCHUNK_KIND]
        if pads:  # padded: to the least size that meets the limit, with zero bytes
            padded += 1
            assert record.ancillary[-1][0] == PAD_SUBCHUNK_KIND and pads == [bytes(len(pads[0]))]
            assert record.size in (min_clip_chunk_size(cells), min_clip_chunk_size(cells) + 1)
    assert padded == (0 if cells <= 16 * 17 else 2 if cells > 16 * 40 else padded)  # 17: a bare chunk
    assert reader.header.version == (1, 1)  # PAD does not raise the version (§10)
    verify(summarize(data))
    for clip in m.Reader(data).decoded_clips():
        assert (clip.index_map == 3).all()
        assert clip.ancillary == () or clip.ancillary[-1][0] == PAD_SUBCHUNK_KIND


def test_pad_is_the_least_that_meets_the_limit():
    for cells in (1, 17, 300, 2000, 2047, 2048, 2064, 32400, 1 << 18):
        need = min_clip_chunk_size(cells)
        for length in (0, 5, 13, 40, 120, 126, 127, 128, 129, 16383, 16384):
            payload = bytes(length)
            padded = pad_clip_payload(payload, cells)
            size = len(frame_chunk(ChunkType.CLIP, padded))
            assert size >= need
            if padded == payload:
                continue
            assert size >= need and len(frame_chunk(ChunkType.CLIP, payload)) < need
            extra = len(padded) - len(payload)
            tag = len(encode_leb128((extra - 1) << 4 | PAD_SUBCHUNK_KIND))
            body = extra - tag
            if body > 0:  # one byte less of PAD would not do
                smaller = payload + encode_leb128((body - 1) << 4 | PAD_SUBCHUNK_KIND) + bytes(body - 1)
                assert len(frame_chunk(ChunkType.CLIP, smaller)) < need


def test_a_temporal_full_copy_is_padded_and_still_preferred_to_context():
    grid = (20, 32)
    header = make_header(grid_h=grid[0], grid_w=grid[1], vocab_size=256)
    rng = np.random.default_rng(1)
    first = rng.integers(0, 256, grid)
    clips = [
        m.Clip(index=0, first_frame=0, frame_count=3, index_map=first),
        m.Clip(index=1, first_frame=3, frame_count=3, index_map=first.copy()),
    ]
    data = write(header, clips, refresh=8)
    records = list(m.Reader(data).clips())
    assert records[1].dependent and records[1].index_map.data == b""
    assert records[1].size == min_clip_chunk_size(grid[0] * grid[1])
    decoded = list(m.Reader(data).decoded_clips())
    assert (decoded[1].index_map == first).all()


def test_a_chunk_under_the_limit_is_a_limit_error_before_any_decoding(monkeypatch):
    grid = (16, 24)
    header = make_header(grid_h=grid[0], grid_w=grid[1], vocab_size=64)
    data = write(header, [constant_clip(0, 0, grid)], index=False)
    record = m.Reader(data).clip(0)
    pad_body = record.ancillary[-1][1]
    raw = m.Reader(data).chunk_bytes(record)
    payload = raw[2:-4]  # type, a 1-byte length, payload, CRC
    assert len(payload) == raw[1]
    bare = payload[: -(len(pad_body) + 1)]
    import m3cvc_format.indexmap as indexmap

    def no_decoding(*args, **kwargs):
        raise AssertionError("the map was decoded")

    monkeypatch.setattr(indexmap, "decode_index_map", no_decoding)
    with pytest.raises(m.LimitError) as info:
        parse_clip(bare, 100, len(frame_chunk(ChunkType.CLIP, bare)))
    assert info.value.offset == 100
    assert "384 cells" in str(info.value) and "at least 24 bytes" in str(info.value)
    stream = data[: record.offset] + frame_chunk(ChunkType.CLIP, bare)
    with pytest.raises(m.LimitError):
        verify(summarize(stream))
    reader = m.Reader(stream, on_damage="skip")
    assert list(reader.clips()) == [] and isinstance(reader.damage[0].error, m.LimitError)


def test_the_issue_stream_is_refused_at_once():
    """Issue 13: a valid 161-byte stream declaring a 512x512 grid took 4.6 s to verify, each
    further 16-byte clip 2.5 s more.  (A map of zeros codes in 0 bytes under CONTEXT.)"""
    header = make_header(grid_h=512, grid_w=512, vocab_size=256)
    body = bytes([m.IndexMapCoder.CONTEXT]) + encode_leb128(512) + encode_leb128(512)
    clips = [
        frame_chunk(ChunkType.CLIP, bytes([k, k, 1, 1]) + encode_leb128(len(body) << 4 | 2) + body) for k in range(3)
    ]
    hostile = m.SIGNATURE + frame_chunk(ChunkType.HEAD, build_head(header)) + b"".join(clips)
    assert len(hostile) < 200
    start = time.perf_counter()
    with pytest.raises(m.LimitError):
        verify(summarize(hostile))
    reader = m.Reader(hostile, on_damage="skip")
    assert list(reader.decoded_clips()) == [] and len(reader.damage) == 3
    assert time.perf_counter() - start < 0.5
    # Padded, as a writer pads it, the same clip is accepted.
    padded = pad_clip_payload(bytes([0, 0, 1, 1]) + encode_leb128(len(body) << 4 | 2) + body, 512 * 512)
    record = parse_clip(padded, 0, 0)
    assert record.index_map is not None and record.index_map.data == b""
    assert len(frame_chunk(ChunkType.CLIP, padded)) == 512 * 512 // MAX_CELLS_PER_CLIP_BYTE


def test_copying_a_padded_stream_keeps_its_bytes():
    grid = (40, 64)
    header = make_header(grid_h=grid[0], grid_w=grid[1], vocab_size=256)
    data = write(header, [constant_clip(k, 2 * k, grid, keyframe_text="x" * k) for k in range(3)])
    buf = io.BytesIO()
    with m.Writer(buf, header) as writer:
        for record in m.Reader(data).clips():
            writer.write_coded_clip(record)
    assert buf.getvalue() == data


def test_a_coded_record_without_padding_is_padded_when_written():
    grid = (40, 64)
    record = ClipRecord(
        offset=0,
        size=0,
        index=0,
        first_frame=0,
        frame_count=1,
        flags=1,
        seed=None,
        keyframe_text_coded=b"",
        clip_text_coded=b"",
        index_map=IndexMapPayload(2, grid[0], grid[1], b""),
    )
    payload, _, _ = build_coded_clip(record)
    assert len(frame_chunk(ChunkType.CLIP, payload)) == min_clip_chunk_size(grid[0] * grid[1])
    with pytest.raises(m.LimitError):  # a damaged record's grid: refused, not padded to gigabytes
        build_coded_clip(dataclasses.replace(record, index_map=IndexMapPayload(2, 1 << 20, 1 << 20, b"")))
