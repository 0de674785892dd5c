"""PyAV v18.1's tests/test_decode.py (tag v18.1.0, commit 7e3d950a, with the one change PyAV
made for 18.1.1, the version installed: commit 6483bc0f, flushed frames keep their time base), adapted: each test opens
the suite's clip as .m3v and .mkv through ``m3cvc_format.open`` and as the .mp4 control through
``av.open`` (pyav_suite_clips.py) instead of FATE's h264/interlaced_crop.mp4.

Left out, and why:
- test_mux_stream_without_codec_context: writing (add_mux_stream, encode) only.
- test_decode_audio_corrupt, test_decode_audio_sample_count: audio; an .m3v has none.
- test_decoded_motion_vectors, test_decoded_video_enc_params: H.264 decoder features (the
  export_mvs flag and venc_params side data); the m3v decoder has no motion vectors or
  quantisers.  Their "no_flag" twins are kept: no such side data without the flag.
- test_side_data: needs a file with a display matrix (mov/displaymatrix.mov); an .m3v has no
  rotation.  test_no_side_data (rotation 0) is kept.
- test_hardware_decode, test_hardware_decode_download_preserves_frame_props,
  test_hardware_frame_reformat_matches_downloaded_frame: hardware decoding (skipped by PyAV
  itself without HWACCEL_DEVICE_TYPE).
"""

from __future__ import annotations

import dataclasses
import io
from fractions import Fraction

import av
import pyav_suite_clips
import pytest
from pyav_suite_clips import FRAMES, Clip

import m3cvc_format

clip = pyav_suite_clips.clip  # the parametrised fixture: .m3v, .mkv, .mp4 control


def _without_codec(clip: Clip, tmp_path) -> Clip:
    """The clip with a codec nothing can decode: an .m3v whose pack is not installed (and its
    .mkv), or PyAV's own trick for an mp4 (an unknown sample entry)."""
    if clip.kind == "mp4":
        buffer = io.BytesIO()
        with av.open(buffer, "w", format="mp4") as output:
            stream = output.add_mux_stream("h264", width=16, height=16)
            packet = av.Packet(b"invalid")
            packet.stream = stream
            packet.pts = packet.dts = 0
            packet.time_base = Fraction(1, 1000)
            output.mux(packet)
        path = tmp_path / "nocodec.mp4"
        path.write_bytes(buffer.getvalue().replace(b"avc1", b"zzzz"))
        return Clip("mp4", path)
    with m3cvc_format.Reader(clip.path) as reader:
        header = reader.header
        clips = list(reader.decoded_clips())
    m3v = tmp_path / "nocodec.m3v"
    m3cvc_format.write(m3v, dataclasses.replace(header, pack_id="org.example.absent"), clips)
    if clip.kind == "m3v":
        return Clip("m3v", m3v)
    from m3cvc_format import mkv

    mkv.mux(m3v, tmp_path / "nocodec.mkv")
    return Clip("mkv", tmp_path / "nocodec.mkv")


def test_decode_stream_without_codec_context(clip, tmp_path) -> None:
    with _without_codec(clip, tmp_path).open() as container:
        stream = container.streams.video[0]
        assert stream.codec_context is None
        with pytest.raises(av.DecoderNotFoundError):
            list(container.decode(stream))


def test_decoded_video_frame_count(clip) -> None:
    container = clip.open()
    video_stream = next(s for s in container.streams if s.type == "video")

    assert video_stream is container.streams.video[0]

    frame_count = 0
    for _frame in container.decode(video_stream):
        frame_count += 1

    assert frame_count == video_stream.frames == FRAMES


def test_decoded_time_base(clip) -> None:
    container = clip.open()
    stream = container.streams.video[0]

    assert stream.time_base == (Fraction(1, 8) if clip.ours else Fraction(1, 16384))

    decoded = 0
    for packet in container.demux(stream):
        for frame in packet.decode():
            assert packet.time_base == frame.time_base
            assert stream.time_base == frame.time_base
            decoded += 1
    assert decoded == FRAMES  # PyAV's returns at the first frame; every frame is checked here


def test_decoded_motion_vectors_no_flag(clip) -> None:
    container = clip.open()
    stream = container.streams.video[0]

    for frame in container.decode(stream):
        vectors = frame.side_data.get("MOTION_VECTORS")
        if not frame.key_frame:
            assert vectors is None
            return
    raise AssertionError("no frame that is not a keyframe")


def test_decoded_video_enc_params_no_flag(clip) -> None:
    container = clip.open()
    stream = container.streams.video[0]
    # When no additional flag is given, there should be no side data with the video encoding params

    for frame in container.decode(stream):
        video_enc_params = frame.side_data.get("VIDEO_ENC_PARAMS")
        assert video_enc_params is None


def test_flushed_frames_keep_time_base(clip) -> None:
    """From PyAV commit 6483bc0f (in 18.1.1, the version installed)."""
    container = clip.open()
    stream = container.streams.video[0]
    ctx = stream.codec_context
    assert ctx is not None

    for packet in container.demux(stream):
        if packet.dts is None:  # the dummy flush packet
            break
        ctx.decode(packet)

    flushed = ctx.decode()
    assert flushed
    for frame in flushed:
        assert frame.time_base == stream.time_base


def test_decode_video_corrupt(clip, tmp_path) -> None:
    """PyAV's test opens an empty raw .h264 (a format without a header, guessed from the
    extension) and gets one flush packet.  An empty file of a format with a header, as .mp4,
    fails at open with InvalidDataError in FFmpeg: so do an empty .m3v and .mkv."""
    path = tmp_path / f"empty.{clip.kind}"
    path.write_bytes(b"")
    with pytest.raises(av.InvalidDataError):
        Clip(clip.kind, path).open()


def test_decode_close_then_use(clip) -> None:
    container = clip.open()
    container.close()

    # Check accessing every attribute either works or raises
    # an `AssertionError`.
    for attr in dir(container):
        try:
            getattr(container, attr)
        except AssertionError:
            pass


def test_flush_decoded_video_frame_count(clip) -> None:
    container = clip.open()
    video_stream = container.streams.video[0]

    # Decode the first GOP, which requires a flush to get all frames
    have_keyframe = False
    input_count = 0
    output_count = 0

    for packet in container.demux(video_stream):
        if packet.is_keyframe:
            if have_keyframe:
                break
            have_keyframe = True

        input_count += 1

        for _frame in video_stream.decode(packet):
            output_count += 1

    # Check the test works as expected and requires a flush
    assert output_count < input_count

    for frame in video_stream.decode(None):
        # PyAV 18.1.0 asserted `frame.time_base is None` here; 18.1.1 (the version installed,
        # PyAV commit 6483bc0f) sets the stream's time base on flushed frames too.
        assert frame.time_base == video_stream.time_base
        output_count += 1

    assert output_count == input_count


def test_no_side_data(clip) -> None:
    container = clip.open()
    frame = next(container.decode(video=0))
    assert frame.rotation == 0
