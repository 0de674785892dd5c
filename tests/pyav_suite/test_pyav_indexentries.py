"""PyAV v18.1's tests/test_indexentries.py (tag v18.1.0, commit 7e3d950a), adapted: the suite's
clip (.m3v, .mkv through ``m3cvc_format.open``; the .mp4 control through ``av.open``) instead of
FATE's files.

An .m3v's index has one entry per clip (each a keyframe), as a WebM's cues list keyframes,
where FFmpeg's mp4 index has one per sample.  So PyAV's mp4-specific counts become what holds
for both kinds of index: the keyframe entries are the keyframe packets (their number,
timestamps and search results); the other tests are PyAV's as they are.

Left out: none (test_index_entries_len_mp4 and _len_webm are merged into test_index_entries_len;
_search_timestamp_options_mp4 checks keyframe searches, as every .m3v entry is a keyframe).
"""

from __future__ import annotations

import pyav_suite_clips
from pyav_suite_clips import FRAMES, KEYFRAMES

clip = pyav_suite_clips.clip  # the parametrised fixture: .m3v, .mkv, .mp4 control


def test_index_entries_len(clip) -> None:
    with clip.open() as container:
        stream = container.streams.video[0]
        index_entries_len_before_demux = len(stream.index_entries)
        keyframes = len([p for p in container.demux(video=0) if p.is_keyframe])
        assert len([e for e in stream.index_entries if e.is_keyframe]) == keyframes
        # mp4: one entry per sample (PyAV's _len_mp4); .m3v: one per clip, as a WebM's (_len_webm)
        assert index_entries_len_before_demux == (keyframes if clip.ours else stream.frames)


def test_index_entries_search_timestamp_options(clip) -> None:
    with clip.open() as container:
        stream = container.streams.video[0]
        fi = stream.index_entries
        keys = [i for i, e in enumerate(fi) if e.is_keyframe]
        ticks = int(1 / (stream.average_rate * stream.time_base))  # one frame in time_base units
        assert len(keys) == len(KEYFRAMES)

        target_ts = fi[keys[1]].timestamp + ticks  # just after the second keyframe

        assert fi.search_timestamp(target_ts) == keys[1]
        assert fi.search_timestamp(target_ts, backward=False) == keys[2]
        assert fi.search_timestamp(fi[keys[-1]].timestamp + 10 * FRAMES * ticks, backward=False) == -1


def test_index_entries_matches_packet(clip) -> None:
    with clip.open() as container:
        stream = container.streams.video[0]
        keys = [e.timestamp for e in stream.index_entries if e.is_keyframe]
        assert [p.dts for p in container.demux(video=0) if p.is_keyframe] == keys


def test_index_entries_in_bounds(clip) -> None:
    with clip.open() as container:
        stream = container.streams.video[0]
        first = stream.index_entries[0]
        first_neg = stream.index_entries[-len(stream.index_entries)]
        last = stream.index_entries[-1]
        last_pos = stream.index_entries[len(stream.index_entries) - 1]
        assert first.timestamp == first_neg.timestamp
        assert last.timestamp == last_pos.timestamp


def test_index_entries_out_of_bounds(clip) -> None:
    with clip.open() as container:
        stream = container.streams.video[0]
        try:
            _ = stream.index_entries[len(stream.index_entries)]
        except IndexError:
            pass
        else:
            raise AssertionError("no IndexError past the end")
        try:
            _ = stream.index_entries[-len(stream.index_entries) - 1]
        except IndexError:
            pass
        else:
            raise AssertionError("no IndexError before the start")


def test_index_entries_slice(clip) -> None:
    with clip.open() as container:
        stream = container.streams.video[0]
        # PyAV's takes entries 1..4; the .m3v has 4 entries (clips), so 0..3
        individual_indices = [stream.index_entries[i] for i in range(0, 4)]
        slice_indices = stream.index_entries[0:4]
        assert len(individual_indices) == len(slice_indices) == 4
        assert all([i.timestamp == j.timestamp for i, j in zip(individual_indices, slice_indices)])
