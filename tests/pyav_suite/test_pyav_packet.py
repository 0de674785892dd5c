"""PyAV v18.1's tests/test_packet.py (tag v18.1.0, commit 7e3d950a), the tests that read
packets from a file, adapted: the suite's clip (.m3v, .mkv through ``m3cvc_format.open``; the
.mp4 control through ``av.open``) instead of FATE's files.  The packet flags PyAV checks at
the indices where its FATE files have them set are checked here against the clip: keyframes at
the clip starts, and no corrupt or discarded packet in an intact file.

Left out, and why:
- test_data_packet_bytes: writes a data stream to mp4 and reads it back (writing; no .m3v).
- test_rescale_ts, test_rescale_ts_without_source_time_base, test_rescale_ts_rejects_zero_time_base,
  test_rescale_ts_requires_avrational, test_data_types: they test ``av.Packet()`` objects the
  caller makes and PyAV's side-data enums, not packets read from a file.
- test_is_disposable: needs a HAP file whose first packet FFmpeg marks disposable.
- test_palette, test_buffer_protocol: need packets carrying side data (new_extradata); an .m3v
  packet has none.  test_iter is kept: iter_sidedata() over every packet.
- test_skip_samples_remux: audio (Opus skip samples) and remuxing.
"""

from __future__ import annotations

import pyav_suite_clips
from pyav_suite_clips import KEYFRAMES

clip = pyav_suite_clips.clip  # the parametrised fixture: .m3v, .mkv, .mp4 control


def test_is_keyframe(clip) -> None:
    with clip.open() as container:
        stream = container.streams.video[0]
        for i, packet in enumerate(container.demux(stream)):
            if i in KEYFRAMES:
                assert packet.is_keyframe
            else:
                assert not packet.is_keyframe


def test_is_corrupt(clip) -> None:
    with clip.open() as container:
        stream = container.streams.video[0]
        for packet in container.demux(stream):
            assert not packet.is_corrupt


def test_is_discard(clip) -> None:
    with clip.open() as container:
        stream = container.streams.video[0]
        for packet in container.demux(stream):
            assert not packet.is_discard


def test_set_duration(clip) -> None:
    with clip.open() as container:
        for packet in container.demux():
            assert packet.duration is not None
            old_duration = packet.duration
            packet.duration += 10
            assert packet.duration == old_duration + 10


def test_iter(clip) -> None:
    """PyAV's file has one packet with new_extradata side data; the clip's packets have none
    (nor have the control's, made by libx264 into mp4)."""
    with clip.open() as container:
        seen = [sdata.data_type for pkt in container.demux() for sdata in pkt.iter_sidedata()]
    assert seen == []
