"""The robustness suite, small (issue 13): hostile mutations (CRC-repaired ones included) raise
only our errors and never hang, single-bit flips are all detected, a cut at every byte keeps
every whole clip, and a killed writer leaves no half-written file.  The full figures come from
tools/bench/bench_robustness.py, which these tests share their code with."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import pytest

import m3cvc_format as m
from m3cvc_format.chunks import frame_chunk
from m3cvc_format.constants import ChunkType

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools" / "bench"))

import bench_robustness as robust  # noqa: E402

SEED = 13


@pytest.fixture(scope="module")
def streams() -> dict[str, bytes]:
    return robust.made_streams(SEED)


def test_the_corpus_covers_the_format(streams):
    """Every coder, text codec, PRMT, unterminated streams and TEMPORAL chains are in it."""
    coders, codecs, unterminated, dependent, prompts = set(), set(), 0, 0, 0
    for data in streams.values():
        reader = m.Reader(data)
        codecs.add(reader.header.text_codec)
        records = list(reader.clips())
        coders |= {r.index_map.coder for r in records if r.index_map is not None}
        dependent += sum(r.dependent for r in records)
        unterminated += not reader.terminated
        prompts += reader.prompts is not None
    assert coders == {0, 1, 2, 3} and codecs == set(m.TextCodec)
    assert unterminated and dependent and prompts


def test_a_chunk_retyped_as_a_second_head_is_a_malformed_error_in_describe(streams):
    """Found by the suite: m3v-info's structure view parsed a CLIP whose type byte was changed to
    HEAD's (CRC recomputed) as a HEAD and raised construct's StreamError."""
    from m3cvc_format.structure import describe

    data = streams["temporal"]
    offset, _, end = robust.chunk_spans(data)[1]
    mutated = bytearray(data)
    mutated[offset] = ChunkType.HEAD
    with pytest.raises(m.MalformedError) as info:
        describe(robust.recrc(mutated, offset, end))
    assert info.value.offset == offset and "HEAD payload does not parse" in str(info.value)


def test_the_time_limit_interrupts_a_case():
    start = time.perf_counter()
    with pytest.raises(robust.Hang), robust.time_limit(0.2):
        while True:
            pass
    assert time.perf_counter() - start < 2


def test_a_mutation_keeps_a_valid_crc_where_it_repairs_it(streams):
    """The CRC-repaired mutations get past the CRC: the chunk they change reads as intact."""
    data = streams["context-tokans"]
    offset, start, end = robust.chunk_spans(data)[2]
    mutated = bytearray(data)
    mutated[start + 1] ^= 0x40
    repaired = robust.recrc(mutated, offset, end)
    chunk = m.Reader(repaired)._chunk_at(offset)
    assert chunk is not None and chunk.payload != data[start:end]
    assert frame_chunk(chunk.chunk_type, chunk.payload) == repaired[offset : end + 4]


@pytest.mark.slow
def test_mutations_raise_only_our_errors_and_never_hang(streams):
    figures = robust.fuzz(streams, examples=60, seed=SEED, limit_s=10.0)
    assert figures.cases == 60 and len(figures.by_kind) >= 6 and figures.structured >= 5
    assert figures.tracebacks == [] and figures.hangs == []


@pytest.mark.slow
def test_every_single_bit_flip_is_detected(streams):
    flips, found, missed = robust.bit_flips(streams, 300, SEED)
    assert (found, missed) == (flips, [])


@pytest.mark.slow
def test_a_cut_at_every_byte_keeps_every_whole_clip(streams):
    small = {name: streams[name] for name in ("raw-lzw", "vocab-1")}
    figures = robust.cuts_everywhere(small, limit_s=10.0)
    assert figures.cuts == sum(map(len, small.values()))
    assert figures.clips_inside > 20
    assert figures.tracebacks == [] and figures.clips_lost == []


@pytest.mark.slow
def test_a_killed_writer_leaves_no_half_written_file(tmp_path):
    out = tmp_path / "out" / "s.m3v"
    out.parent.mkdir()
    command = robust.writer_command(out, clips=400)  # about half a second of writing
    figures = robust.kills(command, out, count=4, seed=SEED, max_delay=0.2, after_first_file=True)
    assert figures.kills == 4 and figures.half_written == [] and figures.published == 0  # killed while writing
    assert figures.temporaries_left.get("SIGTERM", 0) == 0  # SIGTERM removes them itself
    assert figures.temporaries_left.get("SIGKILL", 0) >= 1  # SIGKILL cannot be caught: they stay...
    assert figures.temporaries_after_next_write == 0  # ...until the next write to the path removes them


def test_the_search_after_damage_is_bounded(monkeypatch):
    """Found while writing the suite: after a damaged chunk the reader looks for the next intact
    one, checking the CRC of every candidate over its whole span; overlapping fake CLIP chunks
    (one every 5 bytes, each spanning 64 KiB) made that search cost the square of the size."""
    from m3cvc_format import reader as reader_module

    bench = __import__("bench_decode_cost")
    data = bench.resync_stream(200_000)
    checked = []
    real_checksum = reader_module.Reader._chunk_at

    def counting(self, pos):
        chunk = real_checksum(self, pos)
        checked.append(pos)
        return chunk

    monkeypatch.setattr(reader_module.Reader, "_chunk_at", counting)
    reader = m.Reader(data, on_damage="skip")
    assert list(reader.clips()) == []
    errors = [d.error for d in reader.damage]
    assert isinstance(errors[0], m.ChecksumError)
    assert any(isinstance(e, m.LimitError) and "stopped looking" in str(e) for e in errors)
    limit = reader_module._RESYNC_BASE_BYTES + reader_module._RESYNC_BYTES_PER_BYTE * len(data)
    assert reader._resync_checked <= limit + (1 << 17)  # the bound, overshot by one candidate at most
    assert len(checked) < 2000  # unbounded, about 27,000 candidates of 64 KiB each


def test_the_search_after_damage_is_bounded_on_a_pipe_too():
    """On a pipe the size is unknown: fake chunks whose lengths run past the data cost no CRC,
    but reading them does, and a lying length must not raise the bound."""
    from conftest import Pipe

    from m3cvc_format import reader as reader_module

    bench = __import__("bench_decode_cost")
    data = bench.resync_stream(200_000)
    start = time.perf_counter()
    reader = m.Reader(Pipe(data, step=65536), on_damage="skip")
    assert list(reader.clips()) == []
    assert reader._resync_checked <= reader_module._RESYNC_BASE_BYTES + 64 * len(data) + (1 << 17)
    assert time.perf_counter() - start < 5
