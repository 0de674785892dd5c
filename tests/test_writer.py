"""Writer: atomic paths, pipes and stdout, determinism, the order rules for clips."""

from __future__ import annotations

import io
import os
import subprocess
import sys
import threading

import numpy as np
import pytest
from conftest import ROOT, make_clips, make_header, make_stream

import m3cvc_format as m


def test_path_is_published_only_on_close(tmp_path):
    header = make_header()
    target = tmp_path / "out.m3v"
    with m.Writer(target, header, index_map_coder=m.IndexMapCoder.RAW) as w:
        for clip in make_clips(header, 3):
            w.write_clip(clip)
        assert not target.exists()  # still a temporary file beside it
        assert len(list(tmp_path.iterdir())) == 1
    assert target.read_bytes() == make_stream(header, 3)
    assert list(tmp_path.iterdir()) == [target]
    umask = os.umask(0)
    os.umask(umask)
    assert target.stat().st_mode & 0o777 == 0o666 & ~umask  # as open() would make it


def test_failure_leaves_no_file(tmp_path):
    header = make_header()
    target = tmp_path / "out.m3v"
    target.write_bytes(b"previous version")
    with pytest.raises(RuntimeError), m.Writer(target, header, index_map_coder=m.IndexMapCoder.RAW) as w:
        w.write_clip(make_clips(header, 1)[0])
        raise RuntimeError("encoder crashed")
    assert target.read_bytes() == b"previous version"
    assert list(tmp_path.iterdir()) == [target]


def test_writes_to_a_pipe():
    header = make_header()
    read_fd, write_fd = os.pipe()
    received = []
    reader = threading.Thread(target=lambda: received.append(os.fdopen(read_fd, "rb").read()))
    reader.start()
    with os.fdopen(write_fd, "wb") as pipe:
        m.write(pipe, header, make_clips(header, 4), index_map_coder=m.IndexMapCoder.RAW)
    reader.join()
    assert received[0] == make_stream(header, 4)


def test_writes_to_stdout():
    code = (
        "import m3cvc_format as m; from conftest import make_header, make_clips\n"
        "h = make_header(); m.write('-', h, make_clips(h, 2), index_map_coder=m.IndexMapCoder.RAW)\n"
    )
    # run from tests/, so that `python -c` finds conftest the way pytest does
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, check=True, cwd=ROOT / "tests").stdout
    assert out == make_stream(make_header(), 2)


def test_same_input_gives_identical_bytes():
    header = make_header(metadata={"b": 1, "a": {"z": 2, "y": [1, 2]}}, stream_seed=99)
    streams = {make_stream(header, 5, coder=coder) for coder in [m.IndexMapCoder.RAW] * 3}
    assert len(streams) == 1
    reordered = make_header(metadata={"a": {"y": [1, 2], "z": 2}, "b": 1}, stream_seed=99)
    assert make_stream(reordered, 5) in streams  # metadata is written with sorted keys


def test_clip_order_and_frame_continuity_are_enforced():
    header = make_header()
    clips = make_clips(header, 3)
    w = m.Writer(io.BytesIO(), header, index_map_coder=m.IndexMapCoder.RAW)
    with pytest.raises(m.MalformedError):
        w.write_clip(clips[1])
    w.write_clip(clips[0])
    gap = m.Clip(index=1, first_frame=clips[1].first_frame + 1, frame_count=1, index_map=clips[1].index_map)
    with pytest.raises(m.MalformedError):
        w.write_clip(gap)
    with pytest.raises(m.MalformedError):
        w.write_clip(
            m.Clip(index=1, first_frame=clips[1].first_frame, frame_count=1, index_map=np.zeros((2, 2), dtype=int))
        )


def test_declared_frame_count_must_match():
    header = make_header(frame_count=1000)
    with pytest.raises(m.MalformedError):
        m.write(io.BytesIO(), header, make_clips(header, 2), index_map_coder=m.IndexMapCoder.RAW)


def test_ancillary_chunks_need_the_ancillary_bit():
    w = m.Writer(io.BytesIO(), make_header())
    with pytest.raises(m.MalformedError):
        w.write_ancillary(0x10, b"critical")
    w.write_ancillary(0x90, b"fine")


def _drifting_clips(header, count, changed=0.1, seed=3):
    """Clips whose maps change a little from one to the next (what TEMPORAL is for)."""
    rng = np.random.default_rng(seed)
    clips = make_clips(header, count)
    for prev, clip in zip(clips, clips[1:]):
        cells = rng.random(prev.index_map.shape) < changed
        clip.index_map = np.where(cells, rng.integers(0, header.vocab_size, cells.shape), prev.index_map)
    return clips


def _coders(data):
    return [rec.index_map.coder for rec in m.Reader(data).clips()]


def _write(header, clips, **options):
    buf = io.BytesIO()
    with m.Writer(buf, header, **options) as w:
        for clip in clips:
            w.write_clip(clip)
    return buf.getvalue(), w


@pytest.mark.parametrize("refresh", [1, 2, 4, 8])
def test_refresh_bounds_the_dependent_chain(refresh):
    header = make_header()
    clips = _drifting_clips(header, 12)
    data, w = _write(header, clips, refresh=refresh)
    coders = _coders(data)
    assert coders[0] == m.IndexMapCoder.CONTEXT
    chain = longest = 0
    for c in coders:
        chain = chain + 1 if c == m.IndexMapCoder.TEMPORAL else 0
        longest = max(longest, chain)
    assert longest == refresh - 1  # these maps always favour TEMPORAL, so the limit is reached
    assert w.dependent_clips == coders.count(m.IndexMapCoder.TEMPORAL)
    plain, _ = _write(header, clips)
    assert (len(data) < len(plain)) == (refresh > 1)
    decoded = [c.index_map for c in m.Reader(data).decoded_clips()]
    assert all(np.array_equal(a, c.index_map) for a, c in zip(decoded, clips))


def test_temporal_only_where_it_is_shorter():
    header = make_header()
    rng = np.random.default_rng(4)
    clips = make_clips(header, 6)
    for clip in clips:  # unrelated maps: the reference does not help
        clip.index_map = rng.integers(0, header.vocab_size, clip.index_map.shape)
    clips[3].index_map = clips[2].index_map.copy()  # except here: a repeated map
    data, _ = _write(header, clips, refresh=8)
    coders = _coders(data)
    assert coders[3] == m.IndexMapCoder.TEMPORAL
    assert m.IndexMapCoder.CONTEXT in coders[1:3]


def test_temporal_needs_a_previous_clip():
    header = make_header()
    clips = make_clips(header, 2)
    clips[0].index_map_coder = m.IndexMapCoder.TEMPORAL
    with pytest.raises(m.MalformedError):
        _write(header, clips)
    with pytest.raises(ValueError):
        m.Writer(io.BytesIO(), header, index_map_coder=m.IndexMapCoder.TEMPORAL)
    for bad in (-1, 1.5):
        with pytest.raises(ValueError):
            m.Writer(io.BytesIO(), header, refresh=bad)
    clips = make_clips(header, 2)
    clips[1].index_map_coder = m.IndexMapCoder.TEMPORAL  # explicit: allowed from clip 1 on
    data, _ = _write(header, clips)
    assert _coders(data)[1] == m.IndexMapCoder.TEMPORAL
