"""m3cvc_format.open and FrameSource: the frame-decoder registry, PyAV's seek rules, decoding
that touches only the clips it needs, the keyframe LRU cache, streaming from pipes and growing
files, and errors.  Frames come from a counting fake decoder whose pixels say which clip, which
frame of it, and which next keyframe made them."""

from __future__ import annotations

import io
import os
import queue
import subprocess
import sys
import threading
import time
from fractions import Fraction
from importlib.metadata import EntryPoint

import av
import numpy as np
import pytest
from conftest import ROOT, Pipe, make_header

import m3cvc_format as m
from m3cvc_format import framedecoders
from m3cvc_format.framesource import FrameSource

PACK = "test.count"
PATTERN = (4, 3, 1, 5, 2)  # frames a clip, cycled


class CountingDecoder:
    """Keyframe of clip k: pixel (k, 0, 0).  Frame i of clip k: (k, i, j + 1) where j is the clip
    whose keyframe it interpolates towards, 0 when predicted (all modulo 256)."""

    def __init__(self, header):
        self.header = header
        self.keyframes: list[int] = []
        self.reconstructed: list[int] = []

    def decode_keyframe(self, clip):
        self.keyframes.append(clip.index)
        frame = np.zeros((self.header.height, self.header.width, 3), np.uint8)
        frame[..., 0] = clip.index % 256
        return frame

    def reconstruct(self, clip, keyframe, next_keyframe):
        self.reconstructed.append(clip.index)
        for i in range(clip.frame_count):
            frame = keyframe.copy()
            frame[..., 1] = i
            frame[..., 2] = 0 if next_keyframe is None else (int(next_keyframe[0, 0, 0]) + 1) % 256
            yield frame


@pytest.fixture
def decoders(monkeypatch):
    """Registers the counting decoder for PACK; the list collects every decoder made."""
    made: list[CountingDecoder] = []

    def factory(header):
        made.append(CountingDecoder(header))
        return made[-1]

    monkeypatch.setitem(framedecoders._registered, PACK, factory)
    return made


def clip_list(count, pattern=PATTERN, modes=None):
    clips, first = [], 0
    for k in range(count):
        n = pattern[k % len(pattern)]
        mode = modes[k] if modes else (m.Mode.PREDICTION if k == count - 1 else m.Mode.INTERPOLATION)
        clips.append(
            m.Clip(
                index=k,
                first_frame=first,
                frame_count=n,
                mode=mode,
                keyframe_text=f"key {k}",
                index_map=np.full((3, 4), k % 16),
            )
        )
        first += n
    return clips


def build(count=10, *, index=True, header_frames=False, **kw) -> tuple[bytes, list[m.Clip]]:
    clips = clip_list(count, **kw)
    total = clips[-1].first_frame + clips[-1].frame_count
    header = make_header(pack_id=PACK, frame_count=total if header_frames else 0)
    buf = io.BytesIO()
    m.write(buf, header, clips, index=index, index_map_coder=m.IndexMapCoder.RAW)
    return buf.getvalue(), clips


def expected(clips) -> list[tuple[int, int, int]]:
    out = []
    for k, c in enumerate(clips):
        nxt = k + 2 if c.mode == m.Mode.INTERPOLATION and k + 1 < len(clips) else 0
        out += [(k % 256, i, nxt % 256) for i in range(c.frame_count)]
    return out


def pixels(frames) -> list[tuple[int, int, int]]:
    return [tuple(int(v) for v in f.to_ndarray(format="rgb24")[0, 0]) for f in frames]


def starts(clips) -> list[int]:
    return [c.first_frame for c in clips]


# --------------------------------------------------------------------------- registry


def test_missing_decoder_is_a_clear_error_only_when_frames_are_needed(decoders):
    clips = clip_list(3)
    buf = io.BytesIO()
    m.write(buf, make_header(pack_id="org.xy.abc"), clips, index_map_coder=m.IndexMapCoder.RAW)
    with m.open(buf.getvalue()) as c:
        assert c.streams.video[0].frames == sum(x.frame_count for x in clips)
        assert len([p for p in c.demux() if p.size]) == 3  # listing and demuxing need no decoder
        c.seek(0)
        with pytest.raises(m.DecoderNotFoundError) as err:
            next(c.decode(video=0))
    assert isinstance(err.value, m.M3VError) and isinstance(err.value, ValueError)
    assert "'org.xy.abc'" in str(err.value) and PACK in str(err.value)  # names the installed ones
    with pytest.raises(m.DecoderNotFoundError, match="pack 'none'"):
        framedecoders.find_frame_decoder("none")


def test_entry_points_are_found_by_pack_id(monkeypatch):
    from m3cvc_format.container import ContainerFormat  # any importable callable will do

    ep = EntryPoint("org.example.pack", "m3cvc_format.container:ContainerFormat", framedecoders.GROUP)
    monkeypatch.setattr(framedecoders, "_entry_points", lambda: [ep])
    assert framedecoders.find_frame_decoder("org.example.pack") is ContainerFormat
    assert "org.example.pack" in m.available_frame_decoders()
    with pytest.raises(m.DecoderNotFoundError, match=r"org\.example\.pack"):
        framedecoders.find_frame_decoder("org.example.other")
    framedecoders.register("org.example.other", CountingDecoder)
    try:
        assert framedecoders.find_frame_decoder("org.example.other") is CountingDecoder
    finally:
        framedecoders.unregister("org.example.other")


def test_format_package_never_imports_the_codec_nor_av_until_frames():
    probe = (
        "import sys, m3cvc_format as m, json\n"
        "m.open; m.FrameSource; m.DecoderNotFoundError\n"
        f"c = m.open({str(ROOT / 'spec' / 'vectors' / 'clips-modes.m3v')!r})\n"
        "s = c.streams.video[0]; s.frames, s.duration, c.duration\n"
        "[p for p in c.demux()]; c.seek(0)\n"
        "print(json.dumps(sorted(sys.modules)))"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout
    loaded = set(__import__("json").loads(out.splitlines()[-1]))
    assert "av" not in loaded and "m3cvc_codec" not in loaded
    light = subprocess.run(
        [sys.executable, "-c", "import sys\nimport m3cvc_format; m3cvc_format.open\nprint(sorted(sys.modules))"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "'av'" not in light and "'numpy'" not in light


# --------------------------------------------------------------------------- streams and frames


def test_streams_and_durations_as_pyav(decoders, tmp_path):
    data, clips = build(10)
    frames = sum(c.frame_count for c in clips)
    path = tmp_path / "s.m3v"
    path.write_bytes(data)
    with m.open(path) as c:
        s = c.streams.video[0]
        assert (s.width, s.height, s.type, s.index) == (64, 48, "video", 0)
        assert s.average_rate == Fraction(8) and isinstance(s.average_rate, Fraction)
        assert s.time_base == Fraction(1, 8) and isinstance(s.time_base, Fraction)
        assert s.frames == frames and s.duration == frames  # one tick a frame
        assert s.codec_context.name == "m3v" and s.name == "m3v" and s.codec_context.width == 64
        assert c.duration == frames * 1_000_000 // 8 and c.format.name == "m3v"
        assert list(c.streams) == [s] and c.streams.audio == () and c.streams.get(video=0) == [s]
        assert c.streams.get() == [s] and c.streams.get(s) == [s] and c.streams.best("video") is s
        s.thread_type = "AUTO"  # accepted, ignored; PyAV's enum, as PyAV gives it
        assert s.codec_context.thread_type == av.codec.context.ThreadType.AUTO
        with pytest.raises(IndexError):
            c.streams.get(audio=0)
        assert list(c.decode(audio=None, subtitles=None)) != []
    assert c.closed


def test_decode_gives_real_frames_with_times_and_key_flags(decoders):
    data, clips = build(10)
    with m.open(data) as c:
        frames = list(c.decode(video=0))
    assert all(isinstance(f, av.VideoFrame) for f in frames)
    assert pixels(frames) == expected(clips)
    assert [f.pts for f in frames] == list(range(len(frames)))
    assert frames[9].time == pytest.approx(9 / 8) and frames[9].time_base == Fraction(1, 8)
    assert [n for n, f in enumerate(frames) if f.key_frame] == starts(clips)
    kinds = {int(f.pict_type) for f in frames}
    assert kinds == {1, 2, 3}  # I at clip starts, B interpolated, P predicted (the last clip)
    assert frames[1].to_image().size == (64, 48) and frames[1].to_ndarray(format="rgb24").shape == (48, 64, 3)
    assert decoders[0].keyframes == list(range(10))  # each keyframe decoded once


def test_decode_range_touches_only_the_clips_it_needs(decoders, tmp_path):
    data, clips = build(400)
    path = tmp_path / "long.m3v"
    path.write_bytes(data)
    target = clips[303].first_frame + 2  # frame 2 of clip 303 (5 frames, interpolating)
    with m.open(path) as c:
        s = c.streams.video[0]
        c.seek(target, stream=s, any_frame=True)
        got = [f for f, _ in zip(c.decode(s), range(4))]  # frames 2..4 of clip 303, 0 of 304
        assert pixels(got) == expected(clips)[target : target + 4]
        # clip 304 interpolates: its successor's keyframe is the only one beyond the range
        assert decoders[0].keyframes == [303, 304, 305] and decoders[0].reconstructed == [303, 304]
        assert c.source.stats["clips_read"] <= 3
        assert c.reader.reads <= 8  # signature+HEAD, trailer, index, a few clips: not the file


def test_lru_cache_is_bounded_and_reused(decoders):
    data, clips = build(10)
    with m.open(data, cache_size=2) as c:
        sizes = []
        for _ in c.decode():
            sizes.append(len(c.source.cached_keyframes))
        assert max(sizes) == 2 and decoders[0].keyframes == list(range(10))
        assert c.source.cached_keyframes == [8, 9]
        c.seek(clips[8].first_frame, stream=c.streams.video[0])
        assert pixels([next(c.decode())]) == [(8, 0, 10)]
        assert decoders[0].keyframes == list(range(10))  # 8 and 9 came from the cache
        c.seek(0)
        next(c.decode())
        assert decoders[0].keyframes[10:] == [0, 1]
    with m.open(data, cache_size=0) as c:
        assert pixels(c.decode()) == expected(clips)
        # no cache: clip k's keyframe is decoded for clip k and again for clip k-1
        assert len(decoders[1].keyframes) == 2 * 10 - 1
    with pytest.raises(ValueError):
        m.open(data, cache_size=-1)


# --------------------------------------------------------------------------- seeking


def test_clip_starts_used_by_the_seek_table():
    _, clips = build(20)
    assert starts(clips)[:8] == [0, 4, 7, 8, 13, 15, 19, 22]
    assert starts(clips)[-1] == 58 and sum(c.frame_count for c in clips) == 60


@pytest.mark.parametrize(
    "offset, kwargs, frame",
    [
        (0, {}, 0),
        (1_500_000, {}, 8),  # 1.5 s = frame 12, in clip 3 (frames 8-12)
        (1_624_999, {}, 8),  # just before frame 13
        (1_625_000, {}, 13),  # frame 13 starts clip 4
        (14, {"stream": True}, 13),  # stream time base: frame 14, in clip 4 (13-14)
        (13, {"stream": True}, 13),
        (9, {"stream": True, "backward": False}, 13),
        (8, {"stream": True, "backward": False}, 8),
        (9, {"stream": True, "any_frame": True}, 9),
        (-5_000_000, {}, 0),  # before the start: the first clip
        (10**12, {}, 58),  # past the end: the last clip (58-59)
        (59, {"stream": True, "backward": False}, 60),  # no clip starts there or after: the end
        (10**12, {"any_frame": True}, 59),  # past the end, any frame: the last frame
    ],
)
def test_seek_lands_as_pyav(decoders, offset, kwargs, frame):
    data, clips = build(20)
    with m.open(data) as c:
        s = c.streams.video[0]
        if kwargs.pop("stream", False):
            kwargs["stream"] = s
        next(c.decode())  # seeking from a position that is not the start
        c.seek(offset, **kwargs)
        got = next(c.decode(video=0), None)
    if frame >= 60:
        assert got is None
    else:
        assert got.pts == frame
        assert got.key_frame == (frame in starts(clips))


def test_seek_rejects_floats_and_foreign_streams(decoders, tmp_path):
    data, _ = build(4)
    with m.open(data) as c, av.open(_tiny_mp4(tmp_path)) as other:
        with pytest.raises(TypeError):
            c.seek(1.5)
        with pytest.raises(ValueError):
            c.seek(0, stream=other.streams.video[0])
        c.seek(np.int64(8), stream=c.streams.video[0])  # any integral type
        assert next(c.decode()).pts == 8
        c.seek(3, unsupported_frame_offset=True, any_frame=True)
        assert next(c.decode()).pts == 3


def test_seek_while_iterating_and_resuming_after_break(decoders):
    data, clips = build(10)
    with m.open(data) as c:
        s = c.streams.video[0]
        it = c.decode(s)
        first = [next(it).pts for _ in range(3)]
        c.seek(clips[5].first_frame, stream=s)
        after = [next(it).pts for _ in range(2)]  # the running iteration moves too, as PyAV's
        assert first == [0, 1, 2] and after == [clips[5].first_frame, clips[5].first_frame + 1]
        del it
        assert next(c.decode(s)).pts == clips[5].first_frame + 2  # a new decode() goes on


def test_skip_frame_nonkey_decodes_keyframes_only(decoders):
    data, clips = build(10)
    with m.open(data) as c:
        c.streams.video[0].codec_context.skip_frame = "NONKEY"
        frames = list(c.decode())
    assert [f.pts for f in frames] == starts(clips) and all(f.key_frame for f in frames)
    assert decoders[0].reconstructed == []


# --------------------------------------------------------------------------- packets


def test_demux_one_packet_per_clip_when_asked(decoders):
    data, clips = build(10)
    with m.open(data, packets="clip") as c, m.Reader(data) as r:
        s = c.streams.video[0]
        packets = list(c.demux(s))
        entries = r.index
        assert len(packets) == 11 and packets[-1].size == 0 and packets[-1].pts is None  # flush
        for p, e, clip in zip(packets, entries, clips):
            end = entries[e.clip_index + 1].offset if e.clip_index + 1 < len(entries) else r.index_offset
            assert bytes(p) == data[e.offset : end] and p.size == end - e.offset and p.pos == e.offset
            assert (p.pts, p.dts, p.duration) == (clip.first_frame, clip.first_frame, clip.frame_count)
            assert p.time_base == s.time_base and p.is_keyframe and p.stream is s and p.stream_index == 0
        decoded = [f for p in packets for f in p.decode()]
        assert pixels(decoded) == expected(clips)
        real = packets[3].to_av()
        assert isinstance(real, av.Packet) and bytes(real) == bytes(packets[3]) and real.pts == clips[3].first_frame
        assert pixels(s.decode(real)) == expected(clips)[clips[3].first_frame : clips[4].first_frame]
        assert s.codec_context.decode(None) == [] and s.decode(av.Packet(b"")) == []
        with pytest.raises(m.ChecksumError) as err:
            s.decode(av.Packet(bytes(packets[2])[:-1] + b"\0"))
        assert isinstance(err.value, av.InvalidDataError)
        c.seek(clips[6].first_frame + 1, stream=s)
        assert next(c.demux()).pts == clips[6].first_frame
        assert list(c.demux(audio=None, video=None, subtitles=None))  # no selection = all streams


def test_demux_one_packet_per_frame_and_a_decoder_that_needs_flushing(decoders):
    """The default: a packet per frame; a clip's first carries its CLIP chunk and is its only
    keyframe, the others are empty but timed.  Decoding packet by packet, a clip's frames come
    out when the next clip's keyframe arrives, the last clip's at the flush (None)."""
    data, clips = build(6)
    with m.open(data) as c, m.Reader(data) as r:
        s = c.streams.video[0]
        packets = list(c.demux(s))
        frames = sum(x.frame_count for x in clips)
        assert len(packets) == frames + 1 and packets[-1].dts is None and packets[-1].size == 0
        assert [p.pts for p in packets[:-1]] == list(range(frames)) and all(p.duration == 1 for p in packets[:-1])
        assert [n for n, p in enumerate(packets) if p.is_keyframe] == starts(clips)
        assert [n for n, p in enumerate(packets) if p.size] == starts(clips)
        for clip, entry in zip(clips, r.index):
            key = packets[clip.first_frame]
            assert bytes(key) == r.chunk_bytes(r.clip(entry.clip_index)) and key.pos == entry.offset
        assert all(p.pos is None and bytes(p) == b"" for p in packets if not p.is_keyframe)
        assert list(packets[0].iter_sidedata()) == [] and not packets[0].has_sidedata("new_extradata")
        out = []
        first_clip = [f.pts for p in packets[: clips[1].first_frame] for f in s.decode(p)]
        assert first_clip == []  # held until the clip is complete
        for p in packets[clips[1].first_frame : -1]:
            out += s.decode(p)
        assert [f.pts for f in out] == list(range(clips[0].first_frame, clips[-1].first_frame))
        flushed = s.decode(None)
        assert [f.pts for f in flushed] == list(range(clips[-1].first_frame, frames))
        assert flushed[0].time_base == out[0].time_base == s.time_base  # as PyAV 18.1.1's
        assert pixels(out + flushed) == expected(clips)
        # a seek drops what the decoder held, as PyAV flushes its codecs
        c.seek(0)
        held = [f for p in c.demux() for f in ([] if p.pts is None or p.pts >= 6 else p.decode())]
        assert [f.pts for f in held] == list(range(clips[1].first_frame))  # clip 0, at clip 1's keyframe
        s.decode(packets[clips[2].first_frame])
        c.seek(0)
        assert s.decode(None) == []
        # empty packets before any keyframe are dropped
        assert s.decode(packets[1]) == [] and s.decode(None) == []


def test_discard_is_pyavs_enum_and_honoured(decoders):
    data, clips = build(6)
    with m.open(data) as c:
        s = c.streams.video[0]
        assert s.discard == av.stream.Discard.default and isinstance(s.discard, av.stream.Discard)
        s.discard = av.stream.Discard.nonkey
        assert [p.pts for p in c.demux() if p.dts is not None] == starts(clips)
        c.seek(0)
        assert [f.pts for f in c.decode()] == starts(clips)
        s.discard = 48  # Discard.all, by value
        assert s.discard is av.stream.Discard.all
        c.seek(0)
        assert [p.dts for p in c.demux()] == [None] and list(c.decode()) == []
        s.discard = av.stream.Discard.none
        c.seek(0)
        assert len(list(c.decode())) == sum(x.frame_count for x in clips)
        with pytest.raises(ValueError):
            s.discard = 7


def test_thread_type_is_pyavs_enum(decoders):
    ThreadType = av.codec.context.ThreadType
    with m.open(build(2)[0]) as c:
        s = c.streams.video[0]
        assert s.thread_type is ThreadType.SLICE and s.thread_count == 0  # PyAV's defaults
        for value in (ThreadType.AUTO, 3, "AUTO"):
            s.thread_type = ThreadType.SLICE
            s.thread_type = value
            assert s.thread_type is ThreadType.AUTO and s.codec_context.thread_type.name == "AUTO"
        with pytest.raises(KeyError):
            s.thread_type = "SOMETIMES"


def test_attributes_pyav_code_reads(decoders, tmp_path):
    data, clips = build(7)
    path = tmp_path / "a.m3v"
    path.write_bytes(data)
    with m.open(path) as c, m.Reader(data) as r:
        s = c.streams.video[0]
        cc = s.codec_context
        entries = s.index_entries
        assert len(entries) == len(clips) and [e.timestamp for e in entries] == starts(clips)
        assert [e.pos for e in entries] == [e.offset for e in r.index] and all(e.is_keyframe for e in entries)
        assert entries[-1].timestamp == entries[len(clips) - 1].timestamp and len(entries[1:3]) == 2
        assert [e.size for e in entries] == [p.size for p in c.demux() if p.is_keyframe]  # the CLIP chunks
        c.seek(0)
        with pytest.raises(IndexError):
            entries[len(clips)]
        assert entries.search_timestamp(clips[3].first_frame + 1) == 3
        assert entries.search_timestamp(clips[3].first_frame + 1, backward=False) == 4
        assert entries.search_timestamp(10**6, backward=False) == -1
        assert (cc.coded_width, cc.coded_height) == (0, 0)  # as FFmpeg's before the first frame
        next(c.decode())
        assert (cc.coded_width, cc.coded_height) == (64, 48)
        assert cc.max_bit_rate is None and cc.level == -99
        assert (cc.color_range, cc.color_primaries, cc.color_trc, cc.colorspace) == (0, 2, 2, 2)
        assert c.video_codec_id == 0 and c.chapters() == []
        duration = c.duration
        assert c.bit_rate == int(len(data) * 8 * 1_000_000 / duration) and c.size == len(data)
        for name in ("framerate", "rate"):
            assert not hasattr(s, name)  # PyAV 18 has them on the codec context only
        assert cc.framerate == s.average_rate
        chapters = [{"id": 1, "start": 0, "end": 4, "time_base": Fraction(1, 8), "metadata": {"title": "a"}}]
        c.set_chapters(chapters)
        assert c.chapters() == chapters
        assert repr(c) == f"<av.InputContainer {str(path)!r}>"
        assert repr(s).startswith("<av.VideoStream #0 m3v, rgb24 64x48 at 0x")
        assert repr(cc).startswith("<av.VideoCodecContext video/m3v at 0x")
        assert repr(next(c.demux())).startswith("<av.Packet of #0, dts=")
    assert repr(s).startswith("<av.VideoStream (container closed) at 0x")


def test_mkv_container_is_the_mkv_file(decoders, tmp_path):
    """size, bit_rate and name are the .mkv file's, and its chapters (one per clip) are read."""
    mkv = _mkv_module()
    data, clips = build(5)
    src = tmp_path / "a.m3v"
    src.write_bytes(data)
    out = tmp_path / "a.mkv"
    mkv.mux(src, out)
    size = out.stat().st_size
    with m.open(out) as c:
        assert c.name == str(out) and c.size == size > len(data)
        assert c.bit_rate == int(size * 8 * 1_000_000 / c.duration)
        with av.open(str(out)) as real:
            assert c.chapters() == real.chapters() and len(c.chapters()) == len(clips)
    with m.open(out.read_bytes()) as c:
        assert c.size == size


def test_stream_without_a_decoder_has_no_codec_context():
    """As PyAV for a codec FFmpeg lacks: the stream opens, codec_context is None, demuxing
    works, decoding raises av.DecoderNotFoundError (also ours)."""
    buf = io.BytesIO()
    m.write(buf, make_header(pack_id="org.xy.absent"), clip_list(2), index_map_coder=m.IndexMapCoder.RAW)
    with m.open(buf.getvalue()) as c:
        s = c.streams.video[0]
        assert s.codec_context is None and repr(s).startswith("<av.VideoStream #0 video/<nocodec> at")
        assert len([p for p in c.demux() if p.size]) == 2
        c.seek(0)
        for attempt in (lambda: next(c.decode(s)), lambda: s.decode(None)):
            with pytest.raises(av.DecoderNotFoundError) as err:
                attempt()
            assert isinstance(err.value, m.DecoderNotFoundError) and "org.xy.absent" in str(err.value)
        with pytest.raises(AttributeError):
            s.thread_type


def test_errors_are_pyavs_and_ours(decoders, tmp_path):
    """Libraries catch av.FFmpegError to fall back to another reader; our code catches M3VError."""
    empty = tmp_path / "empty.m3v"
    empty.write_bytes(b"")
    for src in (empty, b"", io.BytesIO(b"")):  # empty: fails at open, as PyAV
        with pytest.raises(av.InvalidDataError) as err:
            m.open(src)
        assert isinstance(err.value, m.SignatureError) and isinstance(err.value, av.FFmpegError)
        assert err.value.errno == 1094995529  # AVERROR_INVALIDDATA, as PyAV reports it
    with pytest.raises(av.InvalidDataError) as err:
        m.open(ROOT / "README.md")
    assert err.value.filename == str(ROOT / "README.md") and "signature" in str(err.value)
    with pytest.raises(av.FileNotFoundError) as missing:
        m.open(tmp_path / "missing.m3v")
    assert isinstance(missing.value, FileNotFoundError) and missing.value.errno == 2
    with pytest.raises(av.IsADirectoryError):
        m.open(tmp_path)
    data, _ = build(3)
    damaged = bytearray(data)
    damaged[len(data) // 2] ^= 1
    with m.open(bytes(damaged)) as c, pytest.raises(av.InvalidDataError) as err:
        list(c.decode())
    assert isinstance(err.value, (m.ChecksumError, m.MalformedError)) and err.value.offset is not None

    class WriteOnly(io.BytesIO):
        def readable(self):
            return False

    with pytest.raises(ValueError, match="readable"):
        m.open(WriteOnly(data))
    with pytest.raises(ValueError, match="packets"):
        m.open(data, packets="gop")


# --------------------------------------------------------------------------- streaming


def test_pipe_decodes_like_a_file(decoders):
    data, clips = build(12)
    with m.open(Pipe(data, step=5)) as c:
        s = c.streams.video[0]
        assert not c.source.seekable and s.frames == 0 and s.duration is None  # not yet known
        frames = list(c.decode(video=0))
        assert s.frames == len(frames) == sum(x.frame_count for x in clips)
    assert pixels(frames) == expected(clips)
    assert decoders[0].keyframes == list(range(12))
    with m.open(Pipe(data), cache_size=1) as c:
        s = c.streams.video[0]
        c.seek(clips[8].first_frame + 1, stream=s)  # forward: skips clips without decoding them
        assert pixels([next(c.decode())]) == [(8, 0, 10)]
        c.seek(clips[3].first_frame, stream=s)  # back, but still in the window of recent clips
        assert pixels([next(c.decode())]) == [(3, 0, 5)]
        # demux goes on from the clip that holds the next frame to decode
        assert [p.pts for p in c.demux() if p.size][:2] == [clips[3].first_frame, clips[4].first_frame]
    assert decoders[1].keyframes[:2] == [8, 9]


def test_pipe_cannot_go_back_past_its_window(decoders):
    data, clips = build(12)
    src = FrameSource(m.Reader(Pipe(data)), window=2)
    assert [n for n, _ in src.frames(clips[9].first_frame, clips[9].first_frame + 1)] == [clips[9].first_frame]
    with pytest.raises(m.MissingIndexError, match="forward only"):
        src.frame(0)
    assert src.frame_count is None and src.clip_count is None
    assert len(list(src.frames(clips[10].first_frame))) == clips[10].frame_count + clips[11].frame_count
    assert src.ended and src.clip_count == 12


def test_standard_input(decoders, monkeypatch):
    data, clips = build(3)

    class Stdin:
        buffer = Pipe(data)

    monkeypatch.setattr(sys, "stdin", Stdin)
    with m.open("-") as c:
        assert pixels(c.decode()) == expected(clips)


def test_live_pipe_holds_an_interpolation_clip_for_its_successor(decoders):
    data, clips = build(6)
    with m.Reader(data) as r:
        offsets = [e.offset for e in r.index]
    rfd, wfd = os.pipe()
    out: queue.Queue = queue.Queue()

    def consume():
        try:
            with open(rfd, "rb", buffering=0) as f, m.open(f) as c:
                for frame in c.decode():
                    out.put(pixels([frame])[0])
        except BaseException as err:  # pragma: no cover - reported below
            out.put(err)
        out.put(None)

    t = threading.Thread(target=consume, daemon=True)
    with open(wfd, "wb", buffering=0) as w:
        w.write(data[: offsets[1]])  # header and clip 0 (interpolation)
        t.start()
        with pytest.raises(queue.Empty):
            out.get(timeout=0.3)  # held back: clip 1's keyframe has not arrived
        w.write(data[offsets[1] : offsets[2]])
        assert out.get(timeout=5) == (0, 0, 2)  # before the rest of the stream exists
        w.write(data[offsets[2] :])
    t.join(5)
    got = []
    while (item := out.get(timeout=5)) is not None:
        assert not isinstance(item, BaseException), item
        got.append(item)
    assert [(0, 0, 2)] + got == expected(clips)


def _write_slowly(path, data, parts, started: threading.Event, pause=0.03):
    with open(path, "wb") as f:
        for i, part in enumerate(parts):
            f.write(data[part[0] : part[1]])
            f.flush()
            if i == 0:
                started.set()
            time.sleep(pause)


def test_growing_file_is_followed_until_its_trailer(decoders, tmp_path):
    data, clips = build(8, header_frames=True)
    with m.Reader(data) as r:
        cuts = [0] + [e.offset + 3 for e in r.index] + [len(data) - 5, len(data)]  # cut inside chunks
    path = tmp_path / "live.m3v"
    started = threading.Event()
    writer = threading.Thread(target=_write_slowly, args=(path, data, list(zip(cuts, cuts[1:])), started))
    writer.start()
    started.wait(5)
    t0 = time.monotonic()
    with m.open(path, follow=True, timeout=8.0) as c:
        assert c.streams.video[0].frames == sum(x.frame_count for x in clips)  # from the header
        frames = pixels(c.decode())
    elapsed = time.monotonic() - t0
    writer.join()
    assert frames == expected(clips)
    assert elapsed < 6  # ended at the TAIL, not by waiting out the 8 s timeout


def test_unterminated_growing_file_ends_at_timeout_with_the_last_clip_predicted(decoders, tmp_path):
    modes = [m.Mode.INTERPOLATION] * 4  # even the last one: it has no successor, so it is predicted
    data, clips = build(4, index=False, modes=modes)
    path = tmp_path / "cut.m3v"
    path.write_bytes(data)
    t0 = time.monotonic()
    with m.open(path, follow=True, timeout=0.3) as c:
        frames = pixels(c.decode())
    assert 0.25 < time.monotonic() - t0 < 3
    assert frames == expected(clips) and frames[-1][2] == 0
    with m.open(path) as c:  # read as a plain file: the index is rebuilt by scanning
        assert pixels(c.decode()) == frames


# --------------------------------------------------------------------------- inputs and errors


def test_inputs_paths_files_and_errors(decoders, tmp_path):
    data, clips = build(3)
    path = tmp_path / "a.m3v"
    path.write_bytes(data)
    for src in (path, str(path), io.BytesIO(data), data):
        with m.open(src) as c:
            assert pixels(c.decode()) == expected(clips)
    with open(path, "rb") as f:
        with m.open(f) as c:
            assert c.streams.video[0].frames == len(expected(clips))
        assert not f.closed  # a caller's file stays open
    with pytest.raises(ValueError, match="reads only"):
        m.open(path, "w")
    with pytest.raises(ValueError):
        m.open(path, format="mp4")
    with pytest.raises(FileNotFoundError):  # av.FileNotFoundError, a FileNotFoundError
        m.open(tmp_path / "missing.m3v")
    with pytest.raises(m.SignatureError):
        m.open(ROOT / "README.md")
    c = m.open(path)
    it = c.decode()
    c.close()
    with pytest.raises(ValueError, match="closed"):
        next(it)
    with pytest.raises(ValueError, match="closed"):
        c.seek(0)


@pytest.mark.parametrize("piped", [False, True])
def test_damaged_clip_is_left_out_with_on_damage_skip(monkeypatch, piped):
    """spec/vectors/crc-mismatch.m3v: clip 1 (frame 6) is damaged; clip 0 interpolates towards
    it, so it is predicted instead; the frames of clip 1 are missing (pts jump), as FFmpeg drops
    frames it cannot decode."""
    made = []
    monkeypatch.setitem(framedecoders._registered, "lite", lambda h: made.append(CountingDecoder(h)) or made[-1])
    data = (ROOT / "spec" / "vectors" / "crc-mismatch.m3v").read_bytes()
    src = Pipe(data, step=4096) if piped else data
    with m.open(src, on_damage="skip") as c:
        frames = list(c.decode())
        assert len(c.reader.damage) == 1 and c.reader.damage[0].offset == 1078
    ticks = 1001  # time base 1/30000 at 30000/1001 fps
    assert [f.pts // ticks for f in frames] == [n for n in range(39) if n != 6]
    got = pixels(frames)
    assert got[:6] == [(0, i, 0) for i in range(6)]  # predicted: its successor is lost
    assert got[6] == (2, 0, 4) and [f.key_frame for f in frames].count(True) == 5
    with m.open(data) as c, pytest.raises(m.ChecksumError):
        next(c.decode())  # the default stops at the damage


def test_bad_frame_decoder_output_is_an_error(monkeypatch):
    class Wrong(CountingDecoder):
        def decode_keyframe(self, clip):
            return np.zeros((2, 2, 3), np.uint8)

    monkeypatch.setitem(framedecoders._registered, PACK, Wrong)
    with m.open(build(2)[0]) as c, pytest.raises(m.M3VError, match="shape"):
        next(c.decode())

    class Short(CountingDecoder):
        def reconstruct(self, clip, keyframe, next_keyframe):
            return [keyframe]

    monkeypatch.setitem(framedecoders._registered, PACK, Short)
    with m.open(build(2)[0]) as c, pytest.raises(m.M3VError, match="gave 1 frames"):
        list(c.decode())


def _mkv_module():
    from m3cvc_format import mkv

    return mkv


def test_mkv_with_an_m3v_attachment(decoders, tmp_path):
    mkv = _mkv_module()
    data, clips = build(5)
    src = tmp_path / "a.m3v"
    src.write_bytes(data)
    out = tmp_path / "a.mkv"
    mkv.mux(src, out)
    with m.open(out) as c:
        assert pixels(c.decode()) == expected(clips)
    with open(out, "rb") as f, m.open(Pipe(f.read(), step=1000)) as c:  # a pipe: sniffed, then read
        assert pixels(c.decode()) == expected(clips)
    with pytest.raises(m.M3VError):
        m.open(out, format="m3v")  # told it is .m3v: not sniffed


def test_mkv_input_goes_through_extract_m3v(decoders, tmp_path, monkeypatch):
    """The routing alone, with a stand-in for m3cvc_format.mkv (whichever state that module is in)."""
    import types

    data, clips = build(3)
    fake = types.ModuleType("m3cvc_format.mkv")
    seen = []
    fake.extract_m3v = lambda src: (seen.append(src), data)[1]
    monkeypatch.setitem(sys.modules, "m3cvc_format.mkv", fake)
    monkeypatch.setattr(m, "mkv", fake, raising=False)
    path = tmp_path / "x.mkv"
    path.write_bytes(b"\x1a\x45\xdf\xa3" + b"\0" * 60)
    with m.open(path) as c:
        assert pixels(c.decode()) == expected(clips)
    assert seen == [str(path)]


def _tiny_mp4(tmp_path):
    path = tmp_path / "tiny.mp4"
    with av.open(str(path), "w") as out:
        s = out.add_stream("libx264", rate=8)
        s.width, s.height, s.pix_fmt = 32, 32, "yuv420p"
        frame = av.VideoFrame.from_ndarray(np.zeros((32, 32, 3), np.uint8), format="rgb24")
        frame.pts = 0
        for p in s.encode(frame):
            out.mux(p)
        for p in s.encode():
            out.mux(p)
    return str(path)


def test_a_ready_decoder_object_is_used_as_given(tmp_path):
    """m3cvc_format.open(frame_decoder=...) and FrameSource.open(decoder=...) take a decoder
    already built (the codec builds one with a pack configuration): no registry lookup, and it
    decodes every clip."""
    data, clips = build(4)
    path = tmp_path / "a.m3v"
    path.write_bytes(data)
    assert PACK not in m.available_frame_decoders()  # nothing registered: only the object can decode
    with m.Reader(data) as r:
        ready = CountingDecoder(r.header)
    with m.open(path, frame_decoder=ready) as c:
        assert pixels(c.decode()) == expected(clips)
    assert sorted(set(ready.keyframes)) == list(range(4))
    ready2 = CountingDecoder(ready.header)
    with FrameSource.open(data, decoder=ready2) as src:
        assert src.decoder is ready2
        assert [tuple(int(v) for v in f[0, 0]) for _, f in src.frames()] == expected(clips)


@pytest.mark.parametrize("cache_size", [0, 8])
def test_dependent_clips_decode_in_any_order_through_the_one_walk(cache_size):
    """TEMPORAL clips reached by random access, backwards and in a pipe decode to the maps the
    sequential walk gives (the FrameSource uses the reader's reference-chain walk)."""
    clips = clip_list(9)
    header = make_header(pack_id=PACK)
    rng = np.random.default_rng(11)
    for prev, clip in zip(clips, clips[1:]):  # maps that change a little: coded against the last one
        cells = rng.random(prev.index_map.shape) < 0.1
        clip.index_map = np.where(cells, rng.integers(0, header.vocab_size, cells.shape), prev.index_map)
    buf = io.BytesIO()
    m.write(buf, header, clips, refresh=4)
    data = buf.getvalue()
    with m.Reader(data) as r:
        assert sum(r.clip(k).dependent for k in range(9)) >= 4
        want = {c.index: c.index_map for c in r.decoded_clips()}
    with FrameSource(m.Reader(data), decoder=object(), cache_size=cache_size) as src:
        for k in (8, 3, 7, 0, 5, 5):
            assert (src.clip(k).index_map == want[k]).all()
    with FrameSource.open(Pipe(data, step=50), decoder=object(), cache_size=cache_size) as src:
        for k in (1, 4, 8):
            assert (src.clip(k).index_map == want[k]).all()


# --------------------------------------------------------------------------- PyAV's Packet API


def test_packet_rescale_ts_as_pyav(decoders):
    """rescale_ts takes an av.AVRational (a Fraction is PyAV 18.1's TypeError), rounds as
    av_rescale_q (to the nearest, halves away from zero), leaves an untimed flush untimed, and
    a rescaled packet still decodes to its frames."""
    data, clips = build(3, pattern=(5, 4, 3))
    with m.open(data) as c:
        s = c.streams.video[0]
        packets = list(c.demux())
        p = packets[3]
        assert (p.pts, p.duration, p.time_base) == (3, 1, Fraction(1, 8))
        p.rescale_ts(av.AVRational(1, 1000))
        assert (p.pts, p.dts, p.duration, p.time_base) == (375, 375, 125, Fraction(1, 1000))
        p.rescale_ts(av.AVRational(1, 3))  # 375/1000 s = 1.125 thirds; 125/1000 s = 0.375
        assert (p.pts, p.duration) == (1, 0)
        half = packets[1]
        half.rescale_ts(av.AVRational(1, 4))  # frame 1 at 8 fps: 1/8 s = 0.5 quarter, up to 1
        assert half.pts == 1
        flush = packets[-1]
        flush.rescale_ts(av.AVRational(1, 90000))
        assert (flush.pts, flush.dts, flush.duration, flush.time_base) == (None, None, 0, Fraction(1, 90000))
        with pytest.raises(TypeError, match="time_base must be an AVRational"):
            p.rescale_ts(Fraction(1, 100))
        with pytest.raises(ValueError, match="Cannot rebase to zero time"):
            p.rescale_ts(av.AVRational(0, 1))
        real = av.Packet()  # the same values through PyAV's own
        real.time_base, real.pts, real.dts, real.duration = Fraction(1, 8), 3, 3, 1
        real.rescale_ts(av.AVRational(1, 1000))
        c.seek(0)
        mine = list(c.demux())
        for q in mine:
            q.rescale_ts(av.AVRational(1, 90000))
        assert (mine[3].pts, mine[3].duration) == (33750, 11250)
        assert (real.pts, real.dts, real.duration) == (375, 375, 125)
        decoded = [f for q in mine for f in s.decode(q)]  # empty frame packets in 1/90000 too
    assert pixels(decoded) == expected(clips)


def test_packet_side_data_as_pyav(decoders):
    data, _ = build(2)
    with m.open(data) as c:
        p, q = list(c.demux())[:2]
    empty = p.get_sidedata("new_extradata")
    assert isinstance(empty, av.packet.PacketSideData) and not empty and empty.data_size == 0
    assert empty.data_type == "new_extradata" and not p.has_sidedata("new_extradata")
    with pytest.raises(ValueError):
        p.has_sidedata("no such type")
    side = av.packet.PacketSideData(av.packet.packet_sidedata_type_from_literal("skip_samples"), 10)
    side.update(bytes(range(10)))
    p.set_sidedata(side)
    assert p.has_sidedata("skip_samples") and bytes(p.get_sidedata("skip_samples")) == bytes(range(10))
    assert [(sd.data_type, bytes(sd)) for sd in p.iter_sidedata()] == [("skip_samples", bytes(range(10)))]
    assert bytes(p.to_av().get_sidedata("skip_samples")) == bytes(range(10))
    q.set_sidedata(side, move=True)  # moved: the source is emptied, as PyAV's
    assert not side and q.get_sidedata("skip_samples").data_size == 10
    assert next(iter(q.iter_sidedata())).data_desc == "Skip Samples"


def test_packet_buffer_protocol_as_pyav(decoders):
    """memoryview, bytes, numpy and file writes read a packet's bytes on every Python version;
    update() replaces them in place (same size); a packet is equal only to itself and always
    true, as PyAV's."""
    import hashlib

    data, _clips = build(3)
    with m.open(data) as c, m.Reader(data) as r:
        packets = list(c.demux())
        key, empty, flush = packets[0], packets[1], packets[-1]
        chunk = r.chunk_bytes(r.clip(0))
        view = memoryview(key)
        assert not view.readonly and view.nbytes == key.size == len(chunk) and bytes(view) == chunk
        assert bytes(key) == chunk and np.frombuffer(key, np.uint8).tobytes() == chunk
        assert hashlib.sha256(key).digest() == hashlib.sha256(chunk).digest()
        out = io.BytesIO()
        out.write(key)
        assert out.getvalue() == chunk
        assert memoryview(empty).nbytes == 0 and bytes(flush) == b"" and flush and empty
        assert key.buffer_size == key.size and key.buffer_ptr != 0 and empty.buffer_ptr == 0
        assert key != bytes(key) and key == key and len({key, empty, flush}) == 3
        with pytest.raises(ValueError, match=f"got 3 bytes; need {len(chunk)} bytes"):
            key.update(b"abc")
        with pytest.raises(TypeError):
            key.update(12)
        del view
        key.update(np.frombuffer(chunk[:-1] + b"\0", np.uint8))  # a damaged CRC, as a user might
        assert bytes(key)[-1] == 0 and key.size == len(chunk)
        with pytest.raises(m.ChecksumError):
            key.decode()
        assert str(key) == repr(key) and repr(key).startswith("<av.Packet of #0, dts=0, pts=0;")
        with pytest.raises(AttributeError):
            key.not_an_attribute = 1  # as PyAV's (no __dict__)


# --------------------------------------------------------------------------- the .mkv's own file


def _muxed(tmp_path, count=5):
    mkv = _mkv_module()
    data, clips = build(count)
    src = tmp_path / "a.m3v"
    src.write_bytes(data)
    out = tmp_path / "a.mkv"
    mkv.mux(src, out)
    with av.open(str(out)) as real:
        chapters = real.chapters()
    assert len(chapters) == count  # m3v-mux: one per clip
    return data, clips, out, chapters


def test_mkv_from_bytes_file_objects_and_pipes_is_the_mkv_file(decoders, tmp_path):
    """size, bit_rate and chapters are the .mkv's however it is given; a caller's file keeps its
    position."""
    data, clips, out, chapters = _muxed(tmp_path)
    size = out.stat().st_size
    with m.open(out.read_bytes()) as c:
        assert c.size == size and c.chapters() == chapters
    with open(out, "rb") as f, m.open(f) as c:
        assert c.size == size > len(data) and c.bit_rate == int(size * 8 * 1_000_000 / c.duration)
        f.seek(7)
        assert c.chapters() == chapters and f.tell() == 7
        assert pixels(c.decode()) == expected(clips)
    with m.open(Pipe(out.read_bytes(), step=1000)) as c:
        assert c.size == size and c.chapters() == chapters and c.name == "<stream>"
        assert pixels(c.decode()) == expected(clips)
    with m.open(Pipe(data, step=1000)) as c:  # an .m3v pipe: what was read of it, no chapters
        assert pixels(c.decode()) == expected(clips) and c.size == len(data) and c.chapters() == []
    with m.open(io.BytesIO(data)) as c:  # an .m3v file object
        assert c.size == len(data) and c.chapters() == []


@pytest.fixture
def memory_urls():
    """fsspec's in-memory file system: ``memory://`` URLs read in ranges, as remote.py reads
    https:// and s3://."""
    fsspec = pytest.importorskip("fsspec")
    fs = fsspec.filesystem("memory")
    made: list[str] = []

    def put(name: str, data: bytes) -> str:
        fs.pipe_file(f"/m3cvc-test/{name}", data)
        made.append(f"/m3cvc-test/{name}")
        return f"memory://m3cvc-test/{name}"

    yield put
    for path in made:
        fs.rm_file(path)


def test_url_container_is_the_url_file(decoders, tmp_path, memory_urls):
    """.m3v and .mkv by URL: size, bit_rate and name are the remote file's, chapters the .mkv's."""
    data, clips, out, chapters = _muxed(tmp_path)
    mkv_bytes = out.read_bytes()
    m3v_url, mkv_url = memory_urls("a.m3v", data), memory_urls("a.mkv", mkv_bytes)
    with m.open(m3v_url) as c:
        assert (c.name, c.size) == (m3v_url, len(data)) and c.chapters() == []
        assert c.bit_rate == int(len(data) * 8 * 1_000_000 / c.duration)
    with m.open(mkv_url) as c:
        assert (c.name, c.size) == (mkv_url, len(mkv_bytes)) and c.size > len(data)
        assert c.bit_rate == int(len(mkv_bytes) * 8 * 1_000_000 / c.duration)
        assert pixels(c.decode()) == expected(clips)
        assert c.chapters() == chapters
        assert pixels(c.decode()) == []  # reading the chapters did not move the stream
        c.seek(0)
        assert pixels(c.decode()) == expected(clips)
    with pytest.raises(m.M3VError):
        m.open(mkv_url, format="m3v")  # told it is .m3v: not sniffed


# --------------------------------------------------------------------------- index entry sizes


def test_index_entry_sizes_are_the_clip_chunks_not_the_gaps(decoders):
    """Ancillary chunks between clips are not part of an entry: its size is its CLIP chunk's,
    read from the chunk's header, or from the clip's record once read (a pipe: always)."""
    clips = clip_list(6)
    buf = io.BytesIO()
    with m.Writer(buf, make_header(pack_id=PACK), index_map_coder=m.IndexMapCoder.RAW) as w:
        for k, clip in enumerate(clips):
            w.write_clip(clip)
            w.write_ancillary(0xF0, bytes(40 + k))  # a chunk readers skip
    data = buf.getvalue()
    with m.Reader(data) as r:
        chunk_sizes = [r.clip(e.clip_index).size for e in r.index]
        gaps = [b.offset - a.offset for a, b in zip(r.index, r.index[1:])] + [r.index_offset - r.index[-1].offset]
    assert all(g > s for g, s in zip(gaps, chunk_sizes))
    with m.open(data) as c:
        entries = c.streams.video[0].index_entries
        assert [e.size for e in entries] == chunk_sizes  # from the headers: nothing decoded
        assert decoders == [] and f"size={chunk_sizes[0]}" in repr(entries[0])
        assert [p.size for p in c.demux() if p.is_keyframe] == chunk_sizes
        assert [e.size for e in c.streams.video[0].index_entries] == chunk_sizes  # records now
    with m.open(Pipe(data, step=100)) as c:
        list(c.demux())
        assert [e.size for e in c.streams.video[0].index_entries] == chunk_sizes


def test_index_entry_size_of_a_damaged_header_is_the_span(decoders):
    """A CLIP chunk whose length field is damaged: its entry keeps the index's span (reading
    the clip reports the damage)."""
    data, _ = build(4)
    with m.Reader(data) as r:
        entry = r.index[2]
        span = r.index[3].offset - entry.offset
        intact = [r.clip(k).size for k in (0, 1, 3)]
    bad = bytearray(data)
    bad[entry.offset + 1] = 0xFF  # a length that runs past the next clip
    with m.open(bytes(bad)) as c:
        sizes = [e.size for e in c.streams.video[0].index_entries]
    assert sizes[2] == span and [sizes[k] for k in (0, 1, 3)] == intact
