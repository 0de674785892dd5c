"""PyAV v18.1's tests/test_packet.py (tag v18.1.0, commit 7e3d950a), the tests that read
packets from a file, adapted: the suite's clip (.m3v, .mkv through ``m3cvc_format.open``; the
.mp4 control through ``av.open``) instead of FATE's files.  The packet flags PyAV checks at
the indices where its FATE files have them set are checked here against the clip: keyframes at
the clip starts, and no corrupt or discarded packet in an intact file.

The tests of ``av.Packet()`` objects the caller makes are run on a demuxed packet instead
(test_rescale_ts and the rest), and the side-data tests on side data set on one, since no
packet of the clip carries any (nor does the control's, made by libx264 into mp4).

Left out, and why:
- test_data_packet_bytes: writes a data stream to mp4 and reads it back (writing; no .m3v).
- test_rescale_ts_without_source_time_base: a demuxed packet always has a time base (PyAV's
  test makes a bare ``av.Packet()``).
- test_data_types: checks PyAV's side-data enum against FFmpeg's version, not packets.
- test_is_disposable: needs a HAP file whose first packet FFmpeg marks disposable.
- test_skip_samples_remux: audio (Opus skip samples) and remuxing.
"""

from __future__ import annotations

import fractions

import av
import pyav_suite_clips
import pytest
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


def _keyframe_packet(container):
    return next(p for p in container.demux(video=0) if p.is_keyframe and p.size)


def test_rescale_ts(clip) -> None:
    with clip.open() as container:
        packet = _keyframe_packet(container)
        packet.time_base = fractions.Fraction(1, 1000)
        packet.pts = 1000
        packet.dts = 900
        packet.duration = 40

        packet.rescale_ts(av.AVRational(1, 100))

        assert packet.time_base == fractions.Fraction(1, 100)
        assert packet.pts == 100
        assert packet.dts == 90
        assert packet.duration == 4


def test_rescale_ts_rejects_zero_time_base(clip) -> None:
    with clip.open() as container:
        packet = _keyframe_packet(container)
        with pytest.raises(ValueError, match="Cannot rebase to zero time"):
            packet.rescale_ts(av.AVRational(0, 1))


def test_rescale_ts_requires_avrational(clip) -> None:
    with clip.open() as container:
        packet = _keyframe_packet(container)
        with pytest.raises(TypeError, match="time_base must be an AVRational"):
            packet.rescale_ts(fractions.Fraction(1, 100))


def _side_data(data: bytes):
    """PyAV side data of type new_extradata holding ``data`` (PyAV's tests take it from a
    FATE file's packet)."""
    sdata = av.packet.PacketSideData(av.packet.packet_sidedata_type_from_literal("new_extradata"), len(data))
    sdata.update(data)
    return sdata


def test_palette(clip) -> None:
    """PyAV's test_palette, on side data set on a demuxed packet."""
    with clip.open() as container:
        iterpackets = container.demux(video=0)
        pkt = next(iterpackets)
        pkt.set_sidedata(_side_data(b"extradata"))
        assert pkt.has_sidedata("new_extradata")

        sdata = pkt.get_sidedata("new_extradata")
        assert sdata.data_type == "new_extradata"
        assert bool(sdata)
        assert sdata.data_size > 0
        assert sdata.data_desc == "New Extradata"

        nxt = next(iterpackets)  # has no palette

        assert not nxt.has_sidedata("new_extradata")

        sdata1 = nxt.get_sidedata("new_extradata")
        assert sdata1.data_type == "new_extradata"
        assert not bool(sdata1)
        assert sdata1.data_size == 0

        nxt.set_sidedata(sdata, move=True)
        assert not bool(sdata)
        assert [s.data_type for s in nxt.iter_sidedata()] == ["new_extradata"]


def test_buffer_protocol(clip) -> None:
    """PyAV's test_buffer_protocol, for the packet's own buffer and for side data set on it."""
    with clip.open() as container:
        pkt = _keyframe_packet(container)
        raw = bytes(pkt)
        assert len(raw) == pkt.size > 0
        assert pkt.buffer_size == pkt.size
        assert pkt.buffer_ptr != 0
        assert bytes(memoryview(pkt)) == raw
        pkt.update(b"\xde\xad\xbe\xef" + raw[4:])
        assert bytes(pkt)[:4] == b"\xde\xad\xbe\xef"

        pkt.set_sidedata(_side_data(b"0123456789"))
        sdata = pkt.get_sidedata("new_extradata")
        raw = bytes(sdata)
        assert len(raw) == sdata.data_size > 0
        assert sdata.buffer_size == sdata.data_size
        assert sdata.buffer_ptr != 0
        assert bytes(memoryview(sdata)) == raw

        # Modify and verify changes stick
        sdata.update(b"\xde\xad\xbe\xef" + raw[4:])
        assert bytes(sdata)[:4] == b"\xde\xad\xbe\xef"

        pkt.set_sidedata(sdata)
        assert bytes(pkt.get_sidedata("new_extradata"))[:4] == b"\xde\xad\xbe\xef"
