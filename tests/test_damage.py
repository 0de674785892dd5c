"""Damaged input that gets past the CRC (a buggy or hostile writer recomputed it), wrong
indexes, and cuts at the edges (issue 13, "Damaged input, crashes, determinism")."""

from __future__ import annotations

import dataclasses

import pytest
from conftest import make_stream

import m3cvc_format as m
from m3cvc_format import cli_info
from m3cvc_format.chunks import build_coded_clip, build_index, build_tail, frame_chunk
from m3cvc_format.constants import ChunkType
from m3cvc_format.model import IndexMapPayload
from m3cvc_format.summary import summarize


def patch_clip(data: bytes, k: int, **changes) -> bytes:
    """``data`` with clip ``k``'s fields changed and its CRC recomputed (same size)."""
    record = m.Reader(data).clip(k)
    payload, _, _ = build_coded_clip(dataclasses.replace(record, **changes))
    chunk = frame_chunk(ChunkType.CLIP, payload)
    assert len(chunk) == record.size
    return data[: record.offset] + chunk + data[record.offset + record.size :]


def with_index(data: bytes, entries: list[m.IndexEntry]) -> bytes:
    """``data`` with its INDX and TAIL replaced by an index of ``entries`` (intact CRCs)."""
    reader = m.Reader(data)
    assert reader.index_source == "trailer"
    body = data[: reader.index_offset]
    index = frame_chunk(ChunkType.INDX, build_index(entries))
    return body + index + frame_chunk(ChunkType.TAIL, build_tail(len(body), len(index)))


def entries_of(reader: m.Reader) -> list[tuple[int, int, int, int]]:
    return [(e.clip_index, e.offset, e.first_frame, e.frame_count) for e in reader.index]


# ------------------------------------------------------------ a field outside its enumeration


@pytest.fixture
def unknown_coder() -> tuple[bytes, int]:
    """A 6-clip stream whose clip 2 names index-map coder 19 (CRC recomputed); and its offset."""
    data = make_stream(count=6)
    record = m.Reader(data).clip(2)
    assert record.index_map is not None
    bad = patch_clip(data, 2, index_map=dataclasses.replace(record.index_map, coder=19))
    return bad, record.offset


def test_unknown_coder_is_a_malformed_error_naming_the_field_and_offset(unknown_coder):
    data, offset = unknown_coder
    reader = m.Reader(data)
    with pytest.raises(m.MalformedError) as caught:
        reader.decode_clip(2)
    assert caught.value.offset == offset
    assert "coder 19" in str(caught.value) and f"byte {offset}" in str(caught.value)
    assert reader.decode_clip(3).index == 3  # the other clips decode


def test_unknown_coder_skipped_goes_on_to_later_clips(unknown_coder):
    data, offset = unknown_coder
    reader = m.Reader(data, on_damage="skip")
    assert [clip.index for clip in reader.decoded_clips()] == [0, 1, 3, 4, 5]
    assert [d.offset for d in reader.damage] == [offset]
    assert isinstance(reader.damage[0].error, m.MalformedError)


def test_unknown_coder_verify_prints_one_line(unknown_coder, tmp_path, capsys):
    data, offset = unknown_coder
    path = tmp_path / "coder19.m3v"
    path.write_bytes(data)
    assert cli_info.main([str(path), "--verify"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    assert "coder 19" in err[0] and f"byte {offset}" in err[0] and "clip 2" in err[0]


def test_index_map_grid_differing_from_the_header_is_malformed():
    data = make_stream(count=3)
    record = m.Reader(data).clip(1)
    assert record.index_map is not None
    # 4x3 instead of 3x4: the same number of cells, so only the grid check can catch it
    bad = patch_clip(data, 1, index_map=IndexMapPayload(record.index_map.coder, 4, 3, record.index_map.data))
    with pytest.raises(m.MalformedError, match="grid") as caught:
        m.Reader(bad).decode_clip(1)
    assert caught.value.offset == record.offset


# ------------------------------------------------------------ indexes that disagree with the clips


def test_demux_with_a_rebuilt_index_missing_a_clip():
    data = make_stream(count=6, index=False)
    clips = list(m.Reader(data).clips())
    damaged = bytearray(data)
    damaged[clips[3].offset + 5] ^= 1  # CRC mismatch: clip 3 is lost
    with m.open(bytes(damaged), on_damage="skip", packets="clip") as container:
        packets = list(container.demux())
    assert [p.pts for p in packets[:-1]] == [c.first_frame for c in clips if c.index != 3]
    assert packets[-1].size == 0  # the flush packet


def test_reader_clip_looks_clips_up_by_their_index_not_their_position():
    data = make_stream(count=6, index=False)
    clips = list(m.Reader(data).clips())
    damaged = bytearray(data)
    damaged[clips[3].offset + 5] ^= 1
    reader = m.Reader(bytes(damaged), on_damage="skip")
    assert [e.clip_index for e in reader.index] == [0, 1, 2, 4, 5]
    assert reader.clip(5).index == 5 and reader.clip(4).index == 4
    with pytest.raises(m.MalformedError, match="clip 3"):
        reader.clip(3)
    with pytest.raises(IndexError):
        reader.clip(6)
    assert reader.clip_at_frame(clips[5].first_frame) == 5


def test_demux_ends_when_the_index_frame_counts_disagree_with_the_clips():
    data = make_stream(count=6)
    entries = m.Reader(data).index
    longer = [*entries[:-1], dataclasses.replace(entries[-1], frame_count=entries[-1].frame_count + 3)]
    with m.open(with_index(data, longer), packets="clip") as container:
        packets = []
        for packet in container.demux():
            packets.append(packet)
            assert len(packets) <= 7, "demux does not end"
    assert [p.pts for p in packets[:-1]] == [e.first_frame for e in entries]


def test_reader_clip_checks_the_frame_count():
    data = make_stream(count=4)
    reader = m.Reader(data)
    good = entries_of(reader)
    entries = reader.index
    wrong = [*entries[:2], dataclasses.replace(entries[2], frame_count=entries[2].frame_count + 1), entries[3]]
    wrong[3] = dataclasses.replace(wrong[3], first_frame=wrong[3].first_frame + 1)
    reader = m.Reader(with_index(data, wrong))
    assert reader.clip(2).frame_count == entries[2].frame_count
    assert reader.index_source == "scan" and entries_of(reader) == good
    assert any("disagrees" in str(d.error) for d in reader.damage)


@pytest.mark.parametrize("problem", ["offset", "missing-middle", "missing-last", "frames"])
def test_a_wrong_index_over_intact_clips_is_rebuilt_by_scanning(problem):
    data = make_stream(count=6)
    reader = m.Reader(data)
    good = entries_of(reader)
    entries = list(reader.index)
    if problem == "offset":
        entries[2] = dataclasses.replace(entries[2], offset=entries[2].offset + 1)
    elif problem == "missing-middle":  # entry 2 points at clip 3
        entries = [*entries[:2], *entries[3:]]
    elif problem == "missing-last":
        entries = entries[:-1]
    else:
        entries = [
            dataclasses.replace(e, first_frame=2 * e.first_frame, frame_count=2 * e.frame_count) for e in entries
        ]
    reader = m.Reader(with_index(data, entries))
    assert [reader.clip(k).index for k in (4, 2, 5, 0)] == [4, 2, 5, 0]
    assert reader.index_source == "scan" and entries_of(reader) == good
    assert reader.damage  # the problem is reported
    with m.open(with_index(data, entries), packets="clip") as container:
        assert [p.pts for p in container.demux()][:-1] == [g[2] for g in good]


def test_a_damaged_clip_under_a_good_index_still_raises_its_error():
    data = make_stream(count=5)
    reader = m.Reader(data)
    offset = reader.index[2].offset
    damaged = bytearray(data)
    damaged[offset + 5] ^= 1
    reader = m.Reader(bytes(damaged))
    with pytest.raises(m.ChecksumError) as caught:
        reader.clip(2)
    assert caught.value.offset == offset
    assert reader.clip(3).index == 3


# ------------------------------------------------------------ cuts at the edges


@pytest.mark.parametrize("cut", [1, 17, 18])
def test_a_cut_in_or_just_before_the_trailer_is_not_terminated(cut):
    data = make_stream(count=4)
    summary = summarize(data[:-cut], on_damage="skip")
    assert not summary.terminated
    assert len(summary.clips) == 4
    assert summarize(data).terminated


def test_m3v_info_says_unterminated_after_a_cut_just_before_the_trailer(tmp_path, capsys):
    data = make_stream(count=4)
    path = tmp_path / "cut.m3v"
    path.write_bytes(data[:-18])
    assert cli_info.main([str(path), "--json"]) == 0
    import json

    out = json.loads(capsys.readouterr().out)
    assert out["terminated"] is False and out["index"] == "scan"


# ------------------------------------------------------------ CRC-repaired mutations


def _recrc(data: bytearray, offset: int) -> bytes:
    """``data`` with the CRC of the chunk at ``offset`` recomputed (a hostile or buggy writer)."""
    import struct

    from m3cvc_format.crc import crc32c
    from m3cvc_format.syntax import read_leb128

    length, start = read_leb128(bytes(data), offset + 1, 4)
    end = start + length
    data[end : end + 4] = struct.pack("<I", crc32c(bytes(data[offset:end])))
    return bytes(data)


_MUTATED = [
    make_stream(count=5),
    make_stream(count=5, coder=m.IndexMapCoder.CONTEXT),
    make_stream(count=5, index=False, coder=m.IndexMapCoder.STATIC),
]


def _read_every_way(data: bytes) -> None:
    """Every reading path, each allowed to fail only with an M3VError (IndexError for a clip
    number past the end), and demux bounded."""
    from m3cvc_format.summary import verify

    reader = m.Reader(data, on_damage="skip")
    list(reader.decoded_clips())
    for k in range(6):
        try:
            m.Reader(data, on_damage="skip").decode_clip(k)
        except (m.M3VError, IndexError):
            pass
    try:
        verify(summarize(data))
    except m.M3VError:
        pass
    with m.open(data, on_damage="skip", packets="clip") as container:
        for count, _ in enumerate(container.demux()):
            assert count < 20, "demux does not end"


def test_crc_repaired_mutations_raise_only_m3v_errors():
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    @settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(st.data())
    def check(draw):
        data = draw.draw(st.sampled_from(_MUTATED))
        chunks = [(8, 0)] + [(c.offset, c.size) for c in m.Reader(data).chunks()]
        offset, _ = draw.draw(st.sampled_from(chunks))
        chunk = m.Reader(data)._chunk_at(offset)
        assert chunk is not None
        start = offset + chunk.size - 4 - len(chunk.payload)
        mutated = bytearray(data)
        for _ in range(draw.draw(st.integers(1, 3))):
            if not chunk.payload:
                break
            mutated[start + draw.draw(st.integers(0, len(chunk.payload) - 1))] = draw.draw(st.integers(0, 255))
        try:
            _read_every_way(_recrc(mutated, offset))
        except m.M3VError:
            pass  # a damaged HEAD makes the stream unreadable (spec §9)

    check()
