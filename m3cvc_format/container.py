"""``m3cvc_format.open``: an `.m3v` stream as a PyAV-style input container.

Code written for ``av.open`` runs unchanged on an `.m3v` file::

    import m3cvc_format

    with m3cvc_format.open("clip.m3v") as container:          # or av.open("clip.mp4")
        stream = container.streams.video[0]
        print(stream.width, stream.height, stream.average_rate, stream.frames)
        container.seek(2 * 1_000_000)                          # av.time_base units
        for frame in container.decode(video=0):               # real av.VideoFrame objects
            image = frame.to_ndarray(format="rgb24")

Frames are decoded clip by clip through :class:`~m3cvc_format.framesource.FrameSource`
(keyframes from the frame decoder registered for the stream's pack, kept in an LRU cache), so
seeking and decoding a range touch only the clips involved.  One packet is one clip: its CLIP
chunk's bytes.  What matches PyAV and what does not: docs/pyav-compat.md.

PyAV (``av``) and numpy are imported only when frames or packets are produced.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Iterator, Mapping
from fractions import Fraction
from typing import TYPE_CHECKING, Any

from .constants import Mode
from .framesource import DEFAULT_CACHE_SIZE, FrameSource
from .framing import parse_clip_chunk
from .model import ClipRecord

if TYPE_CHECKING:
    from .framedecoders import FrameDecoder

__all__ = [
    "TIME_BASE",
    "CodecContext",
    "ContainerFormat",
    "InputContainer",
    "Packet",
    "StreamContainer",
    "VideoStream",
    "open",
]

#: ``av.time_base``: container durations and stream-less seeks count microseconds.
TIME_BASE = 1_000_000

_FORMATS = (None, "m3v", "matroska", "mkv", "webm")


def open(
    file: Any,
    mode: str | None = None,
    format: str | None = None,
    options: Any = None,
    container_options: Any = None,
    stream_options: Any = None,
    metadata_encoding: str = "utf-8",
    metadata_errors: str = "strict",
    buffer_size: int = 32768,
    timeout: float | tuple[float, ...] | list[float] | None = None,
    io_open: Any = None,
    hwaccel: Any = None,
    *,
    follow: bool = False,
    cache_size: int = DEFAULT_CACHE_SIZE,
    on_damage: str = "raise",
    frame_decoder: FrameDecoder | None = None,
) -> InputContainer:
    """Open an `.m3v` stream for reading, with ``av.open``'s signature and a PyAV-style result.

    ``file``: a path, a ``Path``, ``"-"`` (standard input), a binary file object (a pipe is
    read as a stream, clip by clip), bytes, or a Matroska file with an `.m3v` attachment.

    Beyond PyAV's arguments: ``follow=True`` reads a file that is still being written, waiting
    for more data up to ``timeout`` seconds (PyAV's read timeout; a ``(open, read)`` pair is
    accepted) before taking its end as final; ``cache_size`` is the number of decoded keyframes
    kept; ``on_damage`` is the Reader's policy (``"raise"`` or ``"skip"``); ``frame_decoder``
    replaces the decoder registered for the stream's pack.  ``mode`` must be ``"r"`` (or None):
    there is no writing through this API.  The PyAV options that configure FFmpeg are accepted
    and ignored."""
    if mode not in (None, "r", "rb"):
        raise ValueError(
            f"m3cvc_format.open reads only (mode {mode!r}); write streams with m3cvc_format.Writer "
            "or m3cvc_codec.encode"
        )
    if format not in _FORMATS:
        raise ValueError(f"format {format!r} is not one m3cvc_format.open reads (m3v, or matroska holding one)")
    if isinstance(timeout, (tuple, list)):
        timeout = timeout[1] if len(timeout) > 1 else timeout[0]
    source = FrameSource.open(
        file,
        follow=follow,
        timeout=timeout,
        on_damage=on_damage,
        sniff_mkv=format != "m3v",
        decoder=frame_decoder,
        cache_size=cache_size,
    )
    return InputContainer(
        source,
        name=getattr(source.reader, "name", str(file)),
        options=options,
        container_options=container_options,
        stream_options=stream_options,
    )


class ContainerFormat:
    """What ``container.format`` describes (PyAV's ContainerFormat, read side)."""

    name = "m3v"
    long_name = "M3-CVC ultra-low-bitrate video"
    extensions = frozenset({"m3v"})
    is_input = True
    is_output = False
    flags = 0
    no_file = False

    def __repr__(self) -> str:
        return f"<m3cvc_format.ContainerFormat {self.name!r}>"


class _Codec:
    name = "m3v"
    long_name = "M3-CVC clip decoder (keyframes through the stream's model pack)"
    type = "video"
    is_decoder = True
    is_encoder = False

    def __repr__(self) -> str:
        return f"<m3cvc_format.Codec {self.name!r}>"


class StreamContainer:
    """``container.streams``: one video stream; no audio, subtitles, data or attachments."""

    def __init__(self, video: VideoStream) -> None:
        self.video = (video,)
        self.audio = ()
        self.subtitles = ()
        self.attachments = ()
        self.data = ()
        self.other = ()
        self._streams = [video]

    def __len__(self) -> int:
        return len(self._streams)

    def __iter__(self) -> Iterator[VideoStream]:
        return iter(self._streams)

    def __getitem__(self, index: Any) -> Any:
        if isinstance(index, int):
            return self._streams[index]
        return self.get(index)

    def _add(self, out: list[VideoStream], x: Any) -> None:
        if x is None:
            return
        if isinstance(x, VideoStream):
            if x not in self._streams:
                raise ValueError(f"{x!r} is not a stream of this container")
            out.append(x)
        elif isinstance(x, bool):
            raise TypeError("a stream selection is a stream, an index, or a list or dict of them")
        elif isinstance(x, int):
            out.append(self._streams[x])
        elif isinstance(x, (list, tuple)):
            for item in x:
                self._add(out, item)
        elif isinstance(x, dict):
            for kind, value in x.items():
                self._add_kind(out, kind, value)
        else:
            raise TypeError(f"cannot select streams with {type(x).__name__}")

    def _add_kind(self, out: list[VideoStream], kind: str, value: Any) -> None:
        if value is None:
            return
        if kind not in ("video", "audio", "subtitles", "data", "attachments", "other"):
            raise ValueError(f"unknown stream type {kind!r}")
        streams = getattr(self, kind)
        for i in value if isinstance(value, (list, tuple)) else (value,):
            out.append(streams[i])  # IndexError, as PyAV, for a stream that is not there

    def get(self, *args: Any, **kwargs: Any) -> list[VideoStream]:
        """PyAV's selection: no arguments = every stream; streams, indices, lists, dicts, and
        ``video=0`` style keywords otherwise."""
        if not any(a is not None for a in args) and not any(v is not None for v in kwargs.values()):
            return list(self._streams)
        out: list[VideoStream] = []
        for x in args:
            self._add(out, x)
        for kind, value in kwargs.items():
            self._add_kind(out, kind, value)
        return out

    def best(self, kind: str) -> VideoStream | None:
        """The stream of type ``kind`` ("video"); None if there is none."""
        streams = getattr(self, kind, None)
        if streams is None:
            raise ValueError(f"unknown stream type {kind!r}")
        return streams[0] if streams else None


class CodecContext:
    """``stream.codec_context``: the m3v decoder's settings (read side of PyAV's VideoCodecContext).

    ``thread_type`` and ``thread_count`` are accepted and ignored; ``skip_frame = "NONKEY"``
    makes decoding yield the clips' keyframes only (no clip reconstruction)."""

    type = "video"
    is_decoder = True
    is_encoder = False
    is_open = True
    is_hwaccel = False
    pix_fmt = "rgb24"
    extradata = None
    extradata_size = 0
    profile = None
    has_b_frames = False
    delay = False

    def __init__(self, stream: VideoStream) -> None:
        self._stream = stream
        self.codec = _Codec()
        self.thread_type = "SLICE"
        self.thread_count = 0
        self.skip_frame = "DEFAULT"
        self.options: dict[str, str] = {}

    name = property(lambda self: self.codec.name)
    long_name = property(lambda self: self.codec.long_name)
    width = property(lambda self: self._stream.width)
    height = property(lambda self: self._stream.height)
    coded_width = width
    coded_height = height
    framerate = property(lambda self: self._stream.average_rate)
    rate = framerate
    time_base = property(lambda self: self._stream.time_base)
    bit_rate = property(lambda self: self._stream.bit_rate)
    sample_aspect_ratio = property(lambda self: Fraction(1, 1))
    display_aspect_ratio = property(lambda self: Fraction(self.width, self.height))

    @property
    def format(self) -> Any:
        import av

        return av.VideoFormat(self.pix_fmt, self.width, self.height)

    def decode(self, packet: Any = None) -> list[Any]:
        """The frames of the clip in ``packet`` (a flush or empty packet gives none)."""
        return self._stream.decode(packet)

    def flush_buffers(self) -> None:
        pass

    def encode(self, frame: Any = None) -> Any:
        raise NotImplementedError("m3v streams are written with m3cvc_codec.encode, not through PyAV's API")

    def __repr__(self) -> str:
        return f"<m3cvc_format.CodecContext video/m3v {self.width}x{self.height}>"


class VideoStream:
    """``container.streams.video[0]`` (PyAV's VideoStream, read side).  Attributes PyAV forwards
    from a stream to its codec context are forwarded here too."""

    type = "video"
    index = 0
    id = 0
    start_time = 0
    profile = None
    language = None
    disposition = 1  # default
    discard = None
    pix_fmt = "rgb24"

    def __init__(self, container: InputContainer) -> None:
        self.container = container
        header = container.header
        self._header = header
        self.width = header.width
        self.height = header.height
        self.average_rate = Fraction(header.fps)
        self.base_rate = self.average_rate
        self.guessed_rate = self.average_rate
        self.time_base = Fraction(header.time_base)
        self.sample_aspect_ratio = Fraction(1, 1)
        self.display_aspect_ratio = Fraction(header.width, header.height)
        self.codec_tag = "m3v "
        self.metadata: dict[str, str] = {}
        self.codec_context = CodecContext(self)
        self._frame_duration = header.frame_duration

    # -------------------------------------------------------------- forwarded

    @property
    def name(self) -> str:
        return str(self.codec_context.name)

    @property
    def long_name(self) -> str:
        return str(self.codec_context.long_name)

    @property
    def thread_type(self) -> str:
        return self.codec_context.thread_type

    @thread_type.setter
    def thread_type(self, value: str) -> None:
        self.codec_context.thread_type = value

    @property
    def thread_count(self) -> int:
        return self.codec_context.thread_count

    @thread_count.setter
    def thread_count(self, value: int) -> None:
        self.codec_context.thread_count = value

    @property
    def format(self) -> Any:
        return self.codec_context.format

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        try:
            return getattr(self.__dict__["codec_context"], name)
        except (KeyError, AttributeError):
            raise AttributeError(f"'VideoStream' object has no attribute {name!r}") from None

    # -------------------------------------------------------------- sizes

    @property
    def frames(self) -> int:
        """Frames in the stream (0 when not yet known: a live stream without a header count)."""
        return self.container.source.frame_count or 0

    @property
    def duration(self) -> int | None:
        """Duration in ``time_base`` units (None when not yet known)."""
        frames = self.container.source.frame_count
        return frames * self._frame_duration if frames else None

    @property
    def bit_rate(self) -> int:
        return self.container.bit_rate

    # -------------------------------------------------------------- frames

    def _frame(self, array: Any, n: int, record: ClipRecord) -> Any:
        import av

        frame = av.VideoFrame.from_ndarray(array, format="rgb24")
        pts = n * self._frame_duration
        frame.pts = pts
        frame.time_base = self.time_base
        key = n == record.first_frame
        # I: a clip's keyframe; B: interpolated between two keyframes; P: predicted from one.
        types = av.video.frame.PictureType
        frame.pict_type = types.I if key else (types.B if record.mode == Mode.INTERPOLATION else types.P)
        # Writable in PyAV 18; older releases may refuse some (key_frame was read-only once).
        for name, value in (("key_frame", key), ("dts", pts), ("duration", self._frame_duration)):
            try:
                setattr(frame, name, value)
            except (AttributeError, TypeError):
                pass
        return frame

    def decode(self, packet: Any = None) -> list[Any]:
        """The frames of the clip whose CLIP chunk ``packet`` holds (our packets or an
        ``av.Packet`` made from the chunk's bytes); a flush (None or empty) packet gives none."""
        if packet is None:
            return []
        data = bytes(packet)
        if not data:
            return []
        source = self.container._live_source()
        record = parse_clip_chunk(data, self._header)
        return [
            self._frame(a, record.first_frame + i, record)
            for i, a in enumerate(source.clip_frames(record.index, record))
        ]

    def encode(self, frame: Any = None) -> Any:
        raise NotImplementedError("m3v streams are written with m3cvc_codec.encode, not through PyAV's API")

    def __repr__(self) -> str:
        return f"<m3cvc_format.VideoStream #0 m3v, rgb24 {self.width}x{self.height}>"


class Packet:
    """One clip's CLIP chunk, shaped like ``av.Packet``.

    ``av.Packet`` cannot be subclassed and its ``stream`` must be an FFmpeg stream, so a packet
    of an `.m3v` container is this class: ``bytes(packet)``, ``size``, ``pts``, ``dts``,
    ``duration``, ``time_base``, ``is_keyframe``, ``pos`` (byte offset of the chunk),
    ``stream``, ``stream_index`` and ``decode()`` behave as PyAV's.  :meth:`to_av` gives a
    real ``av.Packet`` with the same bytes and timing (without ``stream``)."""

    __slots__ = (
        "_data",
        "dts",
        "duration",
        "is_corrupt",
        "is_discard",
        "is_disposable",
        "is_keyframe",
        "is_trusted",
        "opaque",
        "pos",
        "pts",
        "stream",
        "time_base",
    )

    def __init__(self, stream: VideoStream, data: bytes = b"", record: ClipRecord | None = None) -> None:
        self._data = bytes(data)
        self.stream = stream
        self.time_base = stream.time_base
        self.is_corrupt = False
        self.is_discard = False
        self.is_disposable = False
        self.is_trusted = False
        self.opaque = None
        if record is None:  # the flush packet that ends a demux, as PyAV's
            self.pts = self.dts = None
            self.duration = 0
            self.is_keyframe = False
            self.pos = -1
        else:
            fd = stream._frame_duration
            self.pts = self.dts = record.first_frame * fd
            self.duration = record.frame_count * fd
            self.is_keyframe = True  # every clip starts at a keyframe and decodes on its own
            self.pos = record.offset

    size = property(lambda self: len(self._data))
    buffer_size = size
    stream_index = property(lambda self: self.stream.index)

    def __bytes__(self) -> bytes:
        return self._data

    def decode(self) -> list[Any]:
        return self.stream.decode(self)

    def to_av(self) -> Any:
        """A real ``av.Packet`` with these bytes, pts, dts, duration, time_base and keyframe flag."""
        import av

        p = av.Packet(self._data)
        p.pts, p.dts, p.duration, p.time_base = self.pts, self.dts, self.duration, self.time_base
        p.is_keyframe = self.is_keyframe
        return p

    def __repr__(self) -> str:
        return f"<m3cvc_format.Packet of #{self.stream_index}, dts={self.dts}, pts={self.pts}; {self.size} bytes>"


class InputContainer:
    """An opened `.m3v` stream with PyAV's InputContainer interface (see the module docs).

    ``source`` is the :class:`~m3cvc_format.framesource.FrameSource` that decodes clips, and
    ``header`` the stream's header, for code that wants more than PyAV's view."""

    def __init__(
        self,
        source: FrameSource,
        *,
        name: str,
        options: Any = None,
        container_options: Any = None,
        stream_options: Any = None,
    ) -> None:
        self.source = source
        self.header = source.header
        self.reader = source.reader
        self.name = name
        self.format = ContainerFormat()
        self.options = dict(options or {})
        self.container_options = dict(container_options or {})
        self.stream_options = list(stream_options or [])
        self.metadata = _metadata(self.header.metadata)
        self.file = None
        self.flags = 0
        self.start_time = 0
        self.streams = StreamContainer(VideoStream(self))
        self._next = 0  # the next frame decode() yields; demux() starts at its clip
        self._closed = False

    # -------------------------------------------------------------- basics

    @property
    def duration(self) -> int | None:
        """Duration in ``av.time_base`` units (microseconds), None when not yet known."""
        frames = self.source.frame_count
        if not frames:
            return None
        return round(Fraction(frames) / self.header.fps * TIME_BASE)

    @property
    def size(self) -> int:
        """Bytes of the file (a stream: bytes read so far)."""
        return self.reader.size if self.reader.size is not None else self.reader.bytes_seen

    @property
    def bit_rate(self) -> int:
        duration = self.duration
        return round(self.size * 8 * TIME_BASE / duration) if duration else 0

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self.source.close()

    @property
    def closed(self) -> bool:
        return self._closed

    def __enter__(self) -> InputContainer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<m3cvc_format.InputContainer {self.name!r}>"

    def _live_source(self) -> FrameSource:
        if self._closed:
            raise ValueError("I/O operation on a closed container")
        return self.source

    def dumps_format(self) -> str:
        s = self.streams.video[0]
        return (
            f"Input #0, m3v, from '{self.name}':\n  Duration: {self.duration} us\n"
            f"  Stream #0:0: Video: m3v, rgb24, {s.width}x{s.height}, {float(s.average_rate):g} fps, "
            f"tb {s.time_base}, pack {self.header.pack_id}\n"
        )

    # -------------------------------------------------------------- reading

    def _wants_video(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> bool:
        return self.streams.video[0] in self.streams.get(*args, **kwargs)

    def decode(self, *args: Any, **kwargs: Any) -> Iterator[Any]:
        """Frames (``av.VideoFrame``, RGB) from the current position to the end.

        Takes PyAV's stream selection (``decode()``, ``decode(video=0)``, ``decode(stream)``,
        ``decode(streams=...)``); a selection without the video stream yields nothing.  A
        ``seek`` while iterating moves the running iteration too, as in PyAV."""
        self._live_source()
        streams = kwargs.pop("streams", None)
        if not self._wants_video((streams, *args), kwargs):
            return iter(())
        return self._decode()

    def _decode(self) -> Iterator[Any]:
        stream = self.streams.video[0]
        while True:
            source = self._live_source()
            n = self._next
            record = source.locate(n)
            if record is None:
                return
            n = max(n, record.first_frame)
            skip = stream.codec_context.skip_frame
            if str(getattr(skip, "name", skip)).upper() == "NONKEY":
                if n > record.first_frame:
                    self._next = record.end_frame
                    continue
                array = source.keyframe(record.index, record)
                self._next = record.end_frame
            else:
                array = source.frame(n)
                self._next = n + 1
            yield stream._frame(array, n, record)

    def demux(self, *args: Any, **kwargs: Any) -> Iterator[Packet]:
        """One :class:`Packet` per clip from the current position (the clip that holds the next
        frame to decode), then one empty flush packet at the end of the stream, as PyAV."""
        self._live_source()
        streams = kwargs.pop("streams", None)
        if not self._wants_video((streams, *args), kwargs):
            return iter(())
        return self._demux()

    def _demux(self) -> Iterator[Packet]:
        stream = self.streams.video[0]
        while True:
            source = self._live_source()
            record = source.locate(self._next)
            if record is None:
                yield Packet(stream)
                return
            data = source.chunk(record.index)
            self._next = record.end_frame
            yield Packet(stream, data, record)

    # -------------------------------------------------------------- seeking

    def seek(
        self,
        offset: int,
        *,
        backward: bool = True,
        any_frame: bool = False,
        stream: VideoStream | None = None,
        unsupported_frame_offset: bool = False,
        unsupported_byte_offset: bool = False,
    ) -> None:
        """Move to ``offset``, as ``InputContainer.seek`` does.

        ``offset`` is an integer in ``stream.time_base`` units when ``stream`` is given, else in
        ``av.time_base`` units (microseconds); a float is a TypeError, as in PyAV.  With the
        defaults the next ``decode()`` starts at the first frame of the clip that holds the
        target (its keyframe; before the start: the first clip; past the end: the last clip),
        and the caller decodes forward to the frame it wants.  ``backward=False`` goes to the
        first clip that starts at or after the target (past the last one: the end of the
        stream).  ``any_frame=True`` lands on the target frame itself (every frame of a clip
        decodes from its keyframes).  ``unsupported_frame_offset=True``: ``offset`` is a frame
        number."""
        if not isinstance(offset, numbers.Integral):
            raise TypeError("Container.seek only accepts integer offset.", type(offset))
        if unsupported_byte_offset:
            raise NotImplementedError("seeking to a byte offset is not supported")
        source = self._live_source()
        offset = int(offset)
        if unsupported_frame_offset:
            position = Fraction(offset)
        elif stream is None:
            position = Fraction(offset, TIME_BASE) * self.header.fps
        else:
            if stream is not self.streams.video[0]:
                raise ValueError(f"{stream!r} is not a stream of this container")
            position = Fraction(offset, stream._frame_duration)
        n = max(0, math.floor(position) if backward else math.ceil(position))
        if any_frame:
            record = source.locate(n)
            if record is None:
                last = source.last_record() if backward else None
                self._next = last.end_frame - 1 if last is not None else (source.frame_count or 0)
            else:
                self._next = max(n, record.first_frame)
        elif backward:
            record = source.locate(n)
            if record is None:
                record = source.last_record()
            self._next = record.first_frame if record is not None else 0
        else:
            record = source.first_clip_from(n)
            self._next = record.first_frame if record is not None else (source.frame_count or 0)


def _metadata(meta: Mapping[str, Any]) -> dict[str, str]:
    """The header's metadata as PyAV shows container metadata: string keys and values."""
    import json

    out = {}
    for key, value in dict(meta).items():
        out[str(key)] = value if isinstance(value, str) else json.dumps(value, sort_keys=True, default=str)
    return out
