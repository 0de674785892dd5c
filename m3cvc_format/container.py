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
seeking and decoding a range touch only the clips involved.  ``demux()`` gives one packet per
frame (the first frame of a clip carries the clip's CLIP chunk and is the clip's only keyframe;
the others are empty but timed), or one per clip with ``open(..., packets="clip")``.  Errors
are both the project's classes and PyAV's (:mod:`m3cvc_format.pyav_errors`).  What matches
PyAV and what does not: docs/pyav-compat.md.

PyAV (``av``) and numpy are imported only when frames, packets, PyAV's enums or errors are
produced.
"""

from __future__ import annotations

import builtins
import functools
import io
import math
import numbers
import os
import sys
from collections.abc import Callable, Iterator, Mapping
from fractions import Fraction
from typing import TYPE_CHECKING, Any

from .constants import MAX_LENGTH_VARINT_BYTES, ChunkType, Mode
from .errors import M3VError
from .framedecoders import DecoderNotFoundError
from .framesource import DEFAULT_CACHE_SIZE, FrameSource
from .framing import chunk_extent, parse_clip_chunk
from .model import ClipRecord
from .opener import EBML_MAGIC, FileWindow, Source, open_source
from .pyav_errors import pyav_errors
from .remote import is_url

if TYPE_CHECKING:
    from .framedecoders import FrameDecoder

__all__ = [
    "TIME_BASE",
    "ClosedContainerError",
    "CodecContext",
    "ContainerFormat",
    "IndexEntries",
    "IndexEntry",
    "InputContainer",
    "Packet",
    "StreamContainer",
    "VideoStream",
    "open",
]

#: ``av.time_base``: container durations and stream-less seeks count microseconds.
TIME_BASE = 1_000_000

_FORMATS = (None, "m3v", "matroska", "mkv", "webm")
_PACKETS = ("frame", "clip")

#: FFmpeg's AVDISCARD values (``av.stream.Discard``), honoured by demux() and decode().
_DISCARD_DEFAULT, _DISCARD_NONINTRA, _DISCARD_NONKEY, _DISCARD_ALL = 0, 24, 32, 48
#: FFmpeg's "unknown"/"unspecified" values of the codec context fields nothing here sets.
_LEVEL_UNKNOWN = -99
_UNSPECIFIED = 2  # AVCOL_PRI / AVCOL_TRC / AVCOL_SPC _UNSPECIFIED


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
    packets: str = "frame",
) -> InputContainer:
    """Open an `.m3v` stream for reading, with ``av.open``'s signature and a PyAV-style result.

    ``file``: a path, a ``Path``, ``"-"`` (standard input), a binary file object (a pipe is
    read as a stream, clip by clip), bytes, or a Matroska file with an `.m3v` attachment.

    Beyond PyAV's arguments: ``follow=True`` reads a file that is still being written, waiting
    for more data up to ``timeout`` seconds (PyAV's read timeout; a ``(open, read)`` pair is
    accepted) before taking its end as final; ``cache_size`` is the number of decoded keyframes
    kept; ``on_damage`` is the Reader's policy (``"raise"`` or ``"skip"``); ``frame_decoder``
    replaces the decoder registered for the stream's pack; ``packets`` is what ``demux()``
    yields a packet for: ``"frame"`` (default, as FFmpeg) or ``"clip"``.  ``mode`` must be
    ``"r"`` (or None): there is no writing through this API.  The PyAV options that configure
    FFmpeg are accepted and ignored.

    A missing, unreadable or damaged input raises an error that is both the project's class
    (an :class:`~m3cvc_format.M3VError`, or the built-in OSError) and PyAV's
    (``av.InvalidDataError``, ``av.FileNotFoundError``...), as :mod:`.pyav_errors` makes them."""
    if mode not in (None, "r", "rb"):
        raise ValueError(
            f"m3cvc_format.open reads only (mode {mode!r}); write streams with m3cvc_format.Writer "
            "or m3cvc_codec.encode"
        )
    if format not in _FORMATS:
        raise ValueError(f"format {format!r} is not one m3cvc_format.open reads (m3v, or matroska holding one)")
    if packets not in _PACKETS:
        raise ValueError(f"packets must be one of {_PACKETS}, not {packets!r}")
    if isinstance(timeout, (tuple, list)):
        timeout = timeout[1] if len(timeout) > 1 else timeout[0]
    is_path = isinstance(file, (str, os.PathLike)) and os.fspath(file) != "-"
    is_data = isinstance(file, (bytes, bytearray, memoryview))
    if not is_path and not is_data and hasattr(file, "read"):
        readable = getattr(file, "readable", None)
        if readable is not None and not readable():  # PyAV's check and message
            raise ValueError("File object has no read() method, or readable() returned False.")
    name = str(os.fspath(file)) if is_path else str(getattr(file, "name", "<stream>"))
    sniff_mkv = format != "m3v"
    src, outer = _outer_file(file, is_path, sniff_mkv and not follow, name)
    with pyav_errors(name):
        if is_path and is_url(name):  # opened here, to know the file a Matroska window reads
            src = open_source(name, follow=follow, timeout=timeout, sniff_mkv=sniff_mkv)
            outer = _remote_matroska(src)
        source = FrameSource.open(
            src,
            follow=follow,
            timeout=timeout,
            on_damage=on_damage,
            sniff_mkv=sniff_mkv,
            decoder=frame_decoder,
            cache_size=cache_size,
        )
    if isinstance(outer, _PipeMeter):
        outer = outer.matroska()  # read to its end by now: a Matroska pipe is read whole
    return InputContainer(
        source,
        name=getattr(source.reader, "name", name),
        options=options,
        container_options=container_options,
        stream_options=stream_options,
        packets=packets,
        matroska=outer,
        file=None if is_path or is_data else file,
    )


class _Matroska:
    """The Matroska file a stream was read from, when it came in one: its ``size`` in bytes, and
    its chapters, either read already (``chapters``: a pipe's, whose bytes are not kept) or
    read on request from what ``reopen()`` returns (a path, or a :class:`FileWindow` of the bytes,
    the caller's file object or the remote file)."""

    def __init__(self, size: int, *, chapters: list[dict[str, Any]] | None = None, reopen: Any = None) -> None:
        self.size = size
        self.chapters = chapters
        self._reopen = reopen

    def read_chapters(self) -> list[dict[str, Any]]:
        if self.chapters is None:
            self.chapters = _pyav_chapters(self._reopen()) if self._reopen is not None else []
        return self.chapters


def _pyav_chapters(target: Any) -> list[dict[str, Any]]:
    """The chapters real PyAV (FFmpeg's Matroska demuxer) reads from ``target``, a path or a
    :class:`FileWindow`."""
    import av

    if isinstance(target, FileWindow):
        with target.kept_position(), av.open(target) as mkv:
            return list(mkv.chapters())
    with av.open(os.fspath(target)) as mkv:
        return list(mkv.chapters())


def _outer_file(file: Any, is_path: bool, sniff_mkv: bool, name: str) -> tuple[Any, _Matroska | _PipeMeter | None]:
    """What to read the stream from, and the Matroska file it comes in (None when it is not
    one, or when that is found out only when the URL is opened).  A pipe (or ``"-"``) is read
    through a :class:`_PipeMeter`, which measures it if it turns out to be a Matroska file."""
    if not sniff_mkv:
        return file, None
    if is_path:
        if is_url(name):
            return file, None
        try:
            with builtins.open(file, "rb") as f:  # open() is shadowed here
                if f.read(4) == EBML_MAGIC:
                    return file, _Matroska(os.fstat(f.fileno()).st_size, reopen=lambda: file)
        except OSError:  # FrameSource.open says what is wrong with the path
            pass
        return file, None
    if isinstance(file, (bytes, bytearray, memoryview)):
        if bytes(file[:4]) == EBML_MAGIC:
            return file, _Matroska(len(file), reopen=lambda: FileWindow(io.BytesIO(file), 0, len(file)))
        return file, None
    if isinstance(file, str) and file == "-":
        file = sys.stdin.buffer
    if not hasattr(file, "read"):
        return file, None  # FrameSource.open refuses it
    try:
        seekable = bool(file.seekable())
    except (AttributeError, ValueError, OSError):
        seekable = False
    if not seekable:
        meter = _PipeMeter(file)
        return meter, meter
    try:
        start = file.tell()
        head = file.read(4)
        end = file.seek(0, io.SEEK_END)
        file.seek(start)
    except (OSError, ValueError):  # a closed file: FrameSource.open says so
        return file, None
    if head != EBML_MAGIC:
        return file, None
    return file, _Matroska(end - start, reopen=lambda: FileWindow(file, start, end - start))


def _remote_matroska(src: Source) -> _Matroska | None:
    """The Matroska file at a URL whose attached stream ``src`` reads: its size, and its
    chapters read from it on request (FFmpeg's demuxer reads the whole file for them, the
    attachment included)."""
    from .remote import RemoteFile

    # Source keeps the files it opened (to close them): for a URL, the remote file.  When the
    # file read is not that remote file itself, it is a window onto an attachment in it.
    remote = next((f for f in getattr(src, "_owned", ()) if isinstance(f, RemoteFile)), None)
    read: Any = src.file
    if remote is None or read is remote:
        return None
    return _Matroska(remote.size, reopen=lambda: FileWindow(remote, 0, remote.size))


class _PipeMeter:
    """A forward-only file (a pipe, standard input) read through, counting its bytes and, when
    it starts as a Matroska file does, keeping them: the opener reads such a pipe to its end to
    extract the stream attached to it, and :meth:`matroska` then has the file's size and
    chapters.  An `.m3v` pipe passes through (counted, not kept)."""

    def __init__(self, file: Any) -> None:
        self._file = file
        self.name = getattr(file, "name", "<stream>")
        self._count = 0
        self._kept: bytearray | None = bytearray()  # until the first 4 bytes say what it is

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return False

    def read(self, size: int | None = -1) -> bytes:
        data: bytes = self._file.read(-1 if size is None else size)
        if data:
            self._count += len(data)
            if self._kept is not None:
                self._kept += data
                if len(self._kept) >= 4 and self._kept[:4] != EBML_MAGIC:
                    self._kept = None
        return data

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        data = self.read(len(view))
        view[: len(data)] = data
        return len(data)

    def matroska(self) -> _Matroska | None:
        """The Matroska file read (its chapters read now, its bytes then dropped); None for an
        `.m3v` stream."""
        kept, self._kept = self._kept, None
        if kept is None or kept[:4] != EBML_MAGIC:
            return None
        try:
            chapters = _pyav_chapters(FileWindow(io.BytesIO(kept), 0, len(kept)))
        except Exception:  # the stream was read; FFmpeg finding no chapters in it is no error
            chapters = []
        return _Matroska(self._count, chapters=chapters)


class ClosedContainerError(ValueError, AssertionError):
    """A closed container was used: a ValueError, as for a closed file, and an AssertionError,
    as PyAV raises."""


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
        return f"<av.ContainerFormat {self.name!r}>"


class _Codec:
    name = "m3v"
    long_name = "M3-CVC clip decoder (keyframes through the stream's model pack)"
    type = "video"
    is_decoder = True
    is_encoder = False
    mode = "r"

    def __repr__(self) -> str:
        return f"<av.Codec {self.name} mode='r'>"


def _selected(value: Any) -> Iterator[Any]:
    return iter(value if isinstance(value, (list, tuple)) else (value,))


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
        kind = {"subtitle": "subtitles", "attachment": "attachments"}.get(kind, kind)
        if kind not in ("video", "audio", "subtitles", "data", "attachments", "other"):
            raise ValueError(f"unknown stream type {kind!r}")
        streams = getattr(self, kind)
        for i in _selected(value):
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
        kind = {"subtitle": "subtitles", "attachment": "attachments"}.get(kind, kind)
        streams = getattr(self, kind, None)
        if streams is None:
            raise ValueError(f"unknown stream type {kind!r}")
        return streams[0] if streams else None


class IndexEntry:
    """One entry of ``stream.index_entries``: a clip's CLIP chunk, the stream's keyframes.
    ``size`` is the chunk's own, measured on first use (``measure``) when not given."""

    __slots__ = ("_measure", "_size", "flags", "min_distance", "pos", "timestamp")

    def __init__(
        self, pos: int, timestamp: int, size: int | None = None, measure: Callable[[], int] | None = None
    ) -> None:
        self.pos = pos
        self.timestamp = timestamp
        self._size = size
        self._measure = measure
        self.flags = 1  # AVINDEX_KEYFRAME: every clip starts at a keyframe
        self.min_distance = 0

    @property
    def size(self) -> int:
        if self._size is None:
            self._size = self._measure() if self._measure is not None else 0
        return self._size

    is_keyframe = property(lambda self: bool(self.flags & 1))
    is_discard = property(lambda self: bool(self.flags & 2))

    def __repr__(self) -> str:
        return (
            f"<av.IndexEntry pos={self.pos} timestamp={self.timestamp} flags={self.flags} "
            f"size={self.size} min_distance={self.min_distance}>"
        )


class IndexEntries:
    """``stream.index_entries`` (PyAV's IndexEntries): one entry per clip, from the stream's
    index (a stream that is not seekable: the clips read so far).  An entry's ``size`` is its
    CLIP chunk's: the clip's record when it has been read, else the length in the chunk's
    header (a read of a few bytes, made when the size is first asked for)."""

    def __init__(self, stream: VideoStream) -> None:
        self._stream = stream

    def _entries(self) -> list[IndexEntry]:
        container = self._stream.container
        with pyav_errors(container.name):
            return self._read_entries(container._live_source())

    def _read_entries(self, source: FrameSource) -> list[IndexEntry]:
        fd = self._stream._frame_duration
        reader = source.reader
        if not source.seekable:
            return [IndexEntry(r.offset, r.first_frame * fd, r.size) for r, _ in source._records.values()]
        entries = reader.index
        ends = [e.offset for e in entries[1:]] + [reader.index_offset or reader.size or 0]
        sizes = self._stream.container._clip_sizes
        return [
            IndexEntry(
                e.offset,
                e.first_frame * fd,
                sizes.get(e.offset),
                functools.partial(self._measure, e.clip_index, e.offset, end),
            )
            for e, end in zip(entries, ends)
        ]

    def _measure(self, clip_index: int, offset: int, end: int) -> int:
        """The size of the CLIP chunk at ``offset``, which the index says ends by ``end`` (the
        next clip's offset, or the INDX chunk's: ancillary chunks may lie between)."""
        container = self._stream.container
        with pyav_errors(container.name):
            source = container._live_source()
            size = _clip_chunk_size(source, clip_index, offset, end)
        container._clip_sizes[offset] = size
        return size

    def __len__(self) -> int:
        return len(self._entries())

    def __iter__(self) -> Iterator[IndexEntry]:
        return iter(self._entries())

    def __getitem__(self, index: Any) -> Any:
        entries = self._entries()
        if isinstance(index, slice):
            return entries[index]
        if not isinstance(index, numbers.Integral):
            raise TypeError("index entries are indexed by integers or slices")
        if not -len(entries) <= int(index) < len(entries):
            raise IndexError("index entry out of range")
        return entries[index]

    def search_timestamp(self, timestamp: int, *, backward: bool = True, any_frame: bool = False) -> int:
        """The entry for ``timestamp`` (stream time base), as FFmpeg's
        ``av_index_search_timestamp``: the last at or before it (``backward``), else the first
        at or after it; -1 when there is none.  Every entry is a keyframe, so ``any_frame``
        changes nothing."""
        stamps = [e.timestamp for e in self._entries()]
        if backward:
            found = [i for i, t in enumerate(stamps) if t <= timestamp]
            return found[-1] if found else -1
        return next((i for i, t in enumerate(stamps) if t >= timestamp), -1)


class CodecContext:
    """``stream.codec_context``: the m3v decoder (read side of PyAV's VideoCodecContext).

    Like FFmpeg's decoder it takes packets one at a time and holds a clip's frames until the
    clip is complete (the next clip's keyframe packet, or a flush with None), so a caller
    decoding packet by packet flushes at the end, as with any codec that delays frames.
    ``thread_type`` and ``thread_count`` are PyAV's and ignored (clips decode one at a time);
    ``skip_frame = "NONKEY"`` gives the clips' keyframes only (no clip reconstruction)."""

    type = "video"
    is_decoder = True
    is_encoder = False
    is_hwaccel = False
    pix_fmt = "rgb24"
    extradata = None
    extradata_size = 0
    profile = None
    profiles = ()
    has_b_frames = False
    delay = False
    max_bit_rate = None
    level = _LEVEL_UNKNOWN
    color_range = 0  # AVCOL_RANGE_UNSPECIFIED
    color_primaries = _UNSPECIFIED
    color_trc = _UNSPECIFIED
    colorspace = _UNSPECIFIED
    bits_per_coded_sample = 24

    def __init__(self, stream: VideoStream) -> None:
        self._stream = stream
        self.codec = _Codec()
        self._thread_type = 2  # ThreadType.SLICE, PyAV's default for a decoder
        self.thread_count = 0
        self._skip_frame = "DEFAULT"
        self.options: dict[str, str] = {}
        self.is_open = False
        self.coded_width = 0  # FFmpeg sets them when it decodes the first frame
        self.coded_height = 0
        self._pending: ClipRecord | None = None  # the clip whose frames are being collected
        self._pending_frames: list[int] = []

    name = property(lambda self: self.codec.name)
    long_name = property(lambda self: self.codec.long_name)
    width = property(lambda self: self._stream.width)
    height = property(lambda self: self._stream.height)
    framerate = property(lambda self: self._stream.average_rate)
    rate = framerate
    time_base = property(lambda self: self._stream.time_base)
    bit_rate = property(lambda self: self._stream.bit_rate)
    sample_aspect_ratio = property(lambda self: Fraction(1, 1))
    display_aspect_ratio = property(lambda self: Fraction(self.width, self.height))

    @property
    def thread_type(self) -> Any:
        """``av.codec.context.ThreadType`` (set with one, its name or its int value)."""
        from av.codec.context import ThreadType

        return ThreadType(self._thread_type)

    @thread_type.setter
    def thread_type(self, value: Any) -> None:
        from av.codec.context import ThreadType

        if isinstance(value, str):
            value = ThreadType[value]
        elif not isinstance(value, ThreadType):
            value = ThreadType(int(value))
        self._thread_type = value.value

    @property
    def skip_frame(self) -> str:
        return self._skip_frame

    @skip_frame.setter
    def skip_frame(self, value: Any) -> None:
        name = str(getattr(value, "name", value)).upper()
        if name not in ("NONE", "DEFAULT", "NONREF", "BIDIR", "NONINTRA", "NONKEY", "ALL"):
            raise ValueError(f"unknown skip_frame {value!r}")
        self._skip_frame = name

    @property
    def format(self) -> Any:
        import av

        return av.VideoFormat(self.pix_fmt, self.width, self.height)

    def _keys_only(self) -> bool:
        return self._skip_frame in ("NONKEY", "NONINTRA", "ALL") or self._stream._discard >= _DISCARD_NONINTRA

    def _emit(self, time_base: Fraction | None) -> list[Any]:
        record, wanted = self._pending, self._pending_frames
        self._pending, self._pending_frames = None, []
        if record is None or not wanted:
            return []
        return self._stream._clip_frames(record, wanted, time_base)

    def decode(self, packet: Any = None) -> list[Any]:
        """The frames this packet completes.  Our frame packets: a clip's frames come out when
        the next clip's keyframe packet arrives or at a flush (None, or an untimed empty
        packet).  A whole-clip packet (``packets="clip"``, or an ``av.Packet`` made from a CLIP
        chunk's bytes) gives its clip's frames at once."""
        with pyav_errors(self._stream.container.name):
            self._stream.container._live_source()
            # PyAV 18.1.1 gives every frame the stream's time base, a flush's included
            time_base = self._stream.time_base
            data = b"" if packet is None else bytes(packet)
            timed = isinstance(packet, Packet) and packet.pts is not None
            if not data and not timed:  # a flush
                return self._emit(time_base)
            if not data:  # an empty frame packet: a frame of the clip being collected
                n = _frame_number(packet, self._stream)
                record = self._pending
                if record is not None and record.first_frame <= n < record.end_frame:
                    self._pending_frames.append(n)
                return []  # before any keyframe: dropped, as FFmpeg does
            record = parse_clip_chunk(data, self._stream._header)
            out = self._emit(time_base)
            if isinstance(packet, Packet) and packet._frames == 1:
                self._pending, self._pending_frames = record, [record.first_frame]
                return out
            frames = list(range(record.first_frame, record.end_frame))
            return out + self._stream._clip_frames(record, frames, time_base)

    def flush_buffers(self) -> None:
        """Forget a clip being collected (``container.seek`` calls it, as PyAV does)."""
        self._pending, self._pending_frames = None, []

    def open(self, strict: bool = True) -> None:
        self.is_open = True

    def close(self, strict: bool = True) -> None:
        self.is_open = False

    def encode(self, frame: Any = None) -> Any:
        raise NotImplementedError("m3v streams are written with m3cvc_codec.encode, not through PyAV's API")

    def __repr__(self) -> str:
        return f"<av.VideoCodecContext video/{self.name} at 0x{id(self):x}>"


def _frame_number(packet: Packet, stream: VideoStream) -> int:
    """The frame a timed packet is for, in whatever time base its timestamps now are."""
    assert packet.pts is not None  # an untimed packet is a flush
    ticks = Fraction(packet.pts) * (packet.time_base or stream.time_base) / stream.time_base
    return math.floor(ticks / stream._frame_duration)


_NO_CONTEXT = object()


class VideoStream:
    """``container.streams.video[0]`` (PyAV's VideoStream, read side).  Attributes PyAV forwards
    from a stream to its codec context are forwarded here too.  ``codec_context`` is None when
    no frame decoder is installed for the stream's pack, as PyAV's for a codec FFmpeg lacks."""

    type = "video"
    index = 0
    id = 0
    start_time = 0
    language = None

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
        self.pix_fmt = "rgb24"
        self._codec_context: Any = _NO_CONTEXT
        self._frame_duration = header.frame_duration
        self._discard = _DISCARD_DEFAULT

    # -------------------------------------------------------------- codec context

    @property
    def codec_context(self) -> CodecContext | None:
        """The decoder; None when no frame decoder is installed for the stream's pack."""
        if self._codec_context is _NO_CONTEXT:
            source = self.container.source
            try:
                source.decoder  # noqa: B018 (finding it is the question)
            except DecoderNotFoundError:
                self._codec_context = None
            except Exception:  # found but refusing this stream (weights): decoding says why
                self._codec_context = CodecContext(self)
            else:
                self._codec_context = CodecContext(self)
        context: CodecContext | None = self._codec_context
        return context

    def _context(self) -> CodecContext:
        context = self.codec_context
        if context is None:
            self.container.source.decoder  # noqa: B018 (raises DecoderNotFoundError, naming the pack)
            raise DecoderNotFoundError(f"no frame decoder for pack {self._header.pack_id!r}")
        return context

    @property
    def name(self) -> str | None:
        return "m3v"

    @property
    def long_name(self) -> str:
        return _Codec.long_name

    @property
    def profile(self) -> Any:
        return None

    @property
    def profiles(self) -> list[Any]:
        return []

    @property
    def disposition(self) -> Any:
        from av.stream import Disposition

        return Disposition.default

    @property
    def discard(self) -> Any:
        """``av.stream.Discard``: which packets demux() and decode() leave out; ``nonkey`` and
        ``nonintra`` keep each clip's keyframe only, ``all`` every packet."""
        from av.stream import Discard

        return Discard(self._discard)

    @discard.setter
    def discard(self, value: Any) -> None:
        from av.stream import Discard

        self._discard = int(Discard(value))

    @property
    def index_entries(self) -> IndexEntries:
        return IndexEntries(self)

    @property
    def thread_type(self) -> Any:
        return self._context_attr("thread_type")

    @thread_type.setter
    def thread_type(self, value: Any) -> None:
        context = self.codec_context
        if context is not None:  # PyAV ignores a setting for a stream without a codec
            context.thread_type = value

    @property
    def thread_count(self) -> Any:
        return self._context_attr("thread_count")

    @thread_count.setter
    def thread_count(self, value: int) -> None:
        context = self.codec_context
        if context is not None:
            context.thread_count = value

    @property
    def format(self) -> Any:
        return self._context_attr("format")

    def _context_attr(self, name: str) -> Any:
        context = self.codec_context
        if context is None:
            raise AttributeError(f"'VideoStream' object has no attribute {name!r}")
        return getattr(context, name)

    def __getattr__(self, name: str) -> Any:
        # PyAV 18 forwards unknown attributes to the codec context, except framerate and rate
        if name.startswith("_") or name in ("framerate", "rate"):
            raise AttributeError(f"'VideoStream' object has no attribute {name!r}")
        context = self.__dict__.get("_codec_context", _NO_CONTEXT)
        if context is _NO_CONTEXT:
            context = self.codec_context
        if context is None:
            raise AttributeError(f"'VideoStream' object has no attribute {name!r}")
        try:
            return getattr(context, name)
        except AttributeError:
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

    def _frame(self, array: Any, n: int, record: ClipRecord, time_base: Fraction | None = None) -> Any:
        import av

        frame = av.VideoFrame.from_ndarray(array, format="rgb24")
        pts = n * self._frame_duration
        frame.pts = pts
        if time_base is not None:  # PyAV leaves it unset on frames a flush gives
            frame.time_base = time_base
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
        context = self._codec_context
        if isinstance(context, CodecContext):
            context.coded_width, context.coded_height = self.width, self.height
        return frame

    def _clip_frames(self, record: ClipRecord, wanted: list[int], time_base: Fraction | None) -> list[Any]:
        """Frames ``wanted`` (frame numbers) of the clip ``record``, as PyAV frames."""
        source = self.container._live_source()
        if self._context()._keys_only():
            if record.first_frame not in wanted:
                return []
            return [self._frame(source.keyframe(record.index, record), record.first_frame, record, time_base)]
        keep = set(wanted)
        return [
            self._frame(a, record.first_frame + i, record, time_base)
            for i, a in enumerate(source.clip_frames(record.index, record))
            if record.first_frame + i in keep
        ]

    def decode(self, packet: Any = None) -> list[Any]:
        """The frames ``packet`` completes (:meth:`CodecContext.decode`); None flushes.
        Raises ``av.DecoderNotFoundError`` when the stream's pack is not installed."""
        with pyav_errors(self.container.name):
            context = self._context()
        return context.decode(packet)

    def encode(self, frame: Any = None) -> Any:
        raise NotImplementedError("m3v streams are written with m3cvc_codec.encode, not through PyAV's API")

    def __repr__(self) -> str:
        at = f"at 0x{id(self):x}"
        if self.container.closed:
            return f"<av.VideoStream (container closed) {at}>"
        if self.codec_context is None:
            return f"<av.VideoStream #{self.index} video/<nocodec> {at}>"
        return f"<av.VideoStream #{self.index} {self.name}, {self.pix_fmt} {self.width}x{self.height} {at}>"


class Packet(bytearray):
    """A packet of an `.m3v` stream, shaped like ``av.Packet``.

    A frame packet (the default): the first frame of a clip carries the clip's CLIP chunk and
    is a keyframe, the clip's other frames are empty (``size`` 0) but timed; a clip packet
    (``open(..., packets="clip")``) carries the chunk and spans the clip.  ``av.Packet`` cannot
    be subclassed and its ``stream`` must be an FFmpeg stream, so this is our own class:
    ``size``, ``pts``, ``dts``, ``duration``, ``time_base``, ``is_keyframe``, ``pos`` (byte
    offset of the chunk, None for an empty packet), ``stream``, ``stream_index``,
    ``rescale_ts()``, the side data calls and ``decode()`` behave as PyAV's.

    Its bytes are the packet's data, through the buffer protocol as PyAV's (``bytes(packet)``,
    ``memoryview(packet)``, writable, ``numpy.frombuffer``, ``file.write(packet)``,
    ``update()``).  A Python class can give the buffer protocol only from Python 3.12
    (``__buffer__``, PEP 688), so the class is a ``bytearray`` on every version: equality,
    hashing, truth and ``str`` are PyAV's (identity; always true), ``len()`` the size (PyAV's
    has none).  :meth:`to_av` gives a real ``av.Packet`` with the same bytes, timing and side
    data (without ``stream``)."""

    __slots__ = (
        "_frames",
        "_side_data",
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

    def __init__(
        self,
        stream: VideoStream,
        data: bytes = b"",
        record: ClipRecord | None = None,
        frame: int | None = None,
    ) -> None:
        """``record`` None: the flush packet that ends a demux, as PyAV's.  ``frame`` None: a
        packet for the whole clip; else for that frame (the data only on the clip's first)."""
        super().__init__(data)
        self.stream = stream
        self.time_base: Fraction = stream.time_base
        self.is_corrupt = False
        self.is_discard = False
        self.is_disposable = False
        self.is_trusted = False
        self.opaque = None
        self._side_data: Any = None  # an av.Packet holding side data set on this one
        fd = stream._frame_duration
        self.pos: int | None
        self.pts: int | None
        self.dts: int | None
        self.duration: int | None
        if record is None:
            self.pts = self.dts = None
            self.duration = 0
            self.is_keyframe = False
            self.pos = None
            self._frames = 0
        elif frame is None:
            self.pts = self.dts = record.first_frame * fd
            self.duration = record.frame_count * fd
            self.is_keyframe = True  # every clip starts at a keyframe and decodes on its own
            self.pos = record.offset
            self._frames = record.frame_count
        else:
            self.pts = self.dts = frame * fd
            self.duration = fd
            self.is_keyframe = frame == record.first_frame
            self.pos = record.offset if self.is_keyframe else None
            self._frames = 1

    # PyAV's packets are equal only to themselves, hashable, and true even when empty.
    __eq__ = object.__eq__
    __ne__ = object.__ne__
    __hash__ = object.__hash__  # type: ignore[assignment]

    def __bool__(self) -> bool:
        return True

    size = property(lambda self: len(self))
    buffer_size = size
    stream_index = property(lambda self: self.stream.index)

    @property
    def buffer_ptr(self) -> int:
        """The address of the packet's bytes (0 when it has none), as PyAV's."""
        if not len(self):
            return 0
        import ctypes

        return ctypes.addressof(ctypes.c_char.from_buffer(self))

    def update(self, input: Any) -> None:
        """Replace the packet's bytes with as many others (any buffer), as PyAV's Buffer does."""
        try:
            view = memoryview(input)
        except TypeError:
            raise TypeError("expected bytes, bytearray or memoryview") from None
        if view.nbytes != len(self):
            raise ValueError(f"got {view.nbytes} bytes; need {len(self)} bytes")
        self[:] = view.cast("B") if view.c_contiguous else view.tobytes()

    def rescale_ts(self, time_base: Any) -> None:
        """PyAV's (``av_packet_rescale_ts``): ``pts``, ``dts`` and a positive ``duration`` to
        ``time_base``, an ``av.AVRational`` (a ``Fraction`` is a TypeError, as in PyAV 18.1),
        rounding to the nearest, halves away from zero; then ``time_base`` is set.  A packet
        without a time base takes it with its values unchanged."""
        from av.rational import AVRational

        if not isinstance(time_base, AVRational):
            raise TypeError("time_base must be an AVRational")
        if not time_base.num:
            raise ValueError("Cannot rebase to zero time.")
        dst = Fraction(time_base.num, time_base.den)
        src = self.time_base
        if src and src != dst:
            self.pts, self.dts = _rescaled(self.pts, src, dst), _rescaled(self.dts, src, dst)
            if self.duration is not None and self.duration > 0:
                self.duration = _rescaled(self.duration, src, dst)
        self.time_base = dst

    def decode(self) -> list[Any]:  # type: ignore[override]
        return self.stream.decode(self)

    def _holder(self) -> Any:
        if self._side_data is None:
            import av

            self._side_data = av.Packet()
        return self._side_data

    def iter_sidedata(self) -> Iterator[Any]:
        """``av.packet.PacketSideData`` objects: those given to :meth:`set_sidedata` (an `.m3v`
        packet carries none of its own)."""
        return iter(()) if self._side_data is None else self._side_data.iter_sidedata()

    def has_sidedata(self, dtype: str) -> bool:
        """Whether side data of type ``dtype`` (PyAV's names) was set; ValueError for an
        unknown type, as PyAV."""
        return bool(self._holder().has_sidedata(dtype))

    def get_sidedata(self, dtype: str) -> Any:
        """A copy of the side data of type ``dtype``: an ``av.packet.PacketSideData``, empty
        (false, ``data_size`` 0) when there is none, as PyAV."""
        return self._holder().get_sidedata(dtype)

    def set_sidedata(self, sidedata: Any, move: bool = False) -> None:
        """Copy (or move, emptying ``sidedata``) PyAV side data onto this packet."""
        self._holder().set_sidedata(sidedata, move)

    def to_av(self) -> Any:
        """A real ``av.Packet`` with these bytes, pts, dts, duration, time_base, keyframe flag
        and side data."""
        import av

        p = av.Packet(bytes(self))
        p.pts, p.dts, p.duration, p.time_base = self.pts, self.dts, self.duration, self.time_base
        p.is_keyframe = self.is_keyframe
        for side in self.iter_sidedata():
            p.set_sidedata(side)
        return p

    def __repr__(self) -> str:
        return (
            f"<av.Packet of #{self.stream_index}, dts={self.dts}, pts={self.pts}; {self.size} bytes at 0x{id(self):x}>"
        )

    __str__ = __repr__


def _rescaled(value: int | None, src: Fraction, dst: Fraction) -> int | None:
    """``value`` in ``src`` units as ``dst`` units, as FFmpeg's av_rescale_q: to the nearest,
    halves away from zero."""
    if value is None:
        return None
    exact = Fraction(value) * src / dst
    rounded = math.floor(abs(exact) + Fraction(1, 2))
    return rounded if exact >= 0 else -rounded


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
        packets: str = "frame",
        matroska: _Matroska | None = None,
        file: Any = None,
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
        self.metadata_encoding = "utf-8"
        self.metadata_errors = "strict"
        self.file = file
        self.flags = 0
        self.start_time = 0
        self.start_time_realtime = None
        self.video_codec_id = 0
        self.input_was_opened = True
        self.io_open = None
        self.open_files: dict[str, Any] = {}
        self.open_timeout = self.read_timeout = None
        self.streams = StreamContainer(VideoStream(self))
        self._packets = packets
        self._matroska = matroska  # the Matroska file holding the stream, if it came in one
        self._chapters: list[dict[str, Any]] | None = None
        self._clip_sizes: dict[int, int] = {}  # CLIP chunk offset -> size, as index_entries measure them
        self._next = 0  # the next frame decode() yields; demux() starts at its clip
        self._closed = False

    # -------------------------------------------------------------- basics

    @property
    def duration(self) -> int | None:
        """Duration in ``av.time_base`` units (microseconds), None when not yet known."""
        frames = self._live_source().frame_count
        if not frames:
            return None
        return round(Fraction(frames) / self.header.fps * TIME_BASE)

    @property
    def size(self) -> int:
        """Bytes of the file (the Matroska file for an `.mkv`; a stream: bytes read so far)."""
        self._live_source()
        if self._matroska is not None:
            return self._matroska.size
        return self.reader.size if self.reader.size is not None else self.reader.bytes_seen

    @property
    def bit_rate(self) -> int:
        """FFmpeg's estimate, truncated as it does: size * 8 * time_base / duration."""
        duration = self.duration
        return int(self.size * 8.0 * TIME_BASE / duration) if duration else 0

    def chapters(self) -> list[dict[str, Any]]:
        """PyAV's chapter list: those given to :meth:`set_chapters`, else those of the Matroska
        file holding the stream (``m3v-mux`` writes one per clip), read by real PyAV on the first
        call, else none (an `.m3v` has no chapters)."""
        self._live_source()
        if self._chapters is None:
            with pyav_errors(self.name):
                self._chapters = self._matroska.read_chapters() if self._matroska is not None else []
        return [dict(c, metadata=dict(c.get("metadata", {}))) for c in self._chapters]

    def set_chapters(self, chapters: list[dict[str, Any]]) -> None:
        """Replace the chapters :meth:`chapters` gives (PyAV's dicts: id, start, end,
        time_base, optional metadata); nothing is written to the file."""
        self._live_source()
        checked = []
        for c in chapters:
            entry = {
                "id": int(c["id"]),
                "start": int(c["start"]),
                "end": int(c["end"]),
                "time_base": Fraction(c["time_base"]),
                "metadata": {str(k): str(v) for k, v in dict(c.get("metadata", {})).items()},
            }
            checked.append(entry)
        self._chapters = checked

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
        return f"<av.InputContainer {self.name!r}>"

    def _live_source(self) -> FrameSource:
        if self._closed:
            raise ClosedContainerError("I/O operation on a closed container (Container is not open)")
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
        with pyav_errors(self.name):
            context = stream._context()
            while True:
                source = self._live_source()
                if stream._discard >= _DISCARD_ALL:
                    return
                n = self._next
                record = source.locate(n)
                if record is None:
                    return
                n = max(n, record.first_frame)
                if context._keys_only():
                    if n > record.first_frame:
                        self._next = record.end_frame
                        continue
                    array = source.keyframe(record.index, record)
                    self._next = record.end_frame
                else:
                    array = source.frame(n)
                    self._next = n + 1
                yield stream._frame(array, n, record, stream.time_base)

    def demux(self, *args: Any, **kwargs: Any) -> Iterator[Packet]:
        """Packets from the current position (the clip that holds the next frame to decode):
        one per frame (or per clip with ``packets="clip"``), then one empty flush packet at
        the end of the stream, as PyAV.  ``stream.discard`` is honoured: ``nonkey`` and
        ``nonintra`` keep the keyframe packets, ``all`` none."""
        self._live_source()
        streams = kwargs.pop("streams", None)
        if not self._wants_video((streams, *args), kwargs):
            return iter(())
        return self._demux()

    def _demux(self) -> Iterator[Packet]:
        stream = self.streams.video[0]
        with pyav_errors(self.name):
            while True:
                source = self._live_source()
                record = None if stream._discard >= _DISCARD_ALL else source.locate(self._next)
                if record is None:
                    yield Packet(stream)
                    return
                data = source.chunk(record.index)
                if self._packets == "clip":
                    self._next = record.end_frame
                    yield Packet(stream, data, record)
                    continue
                keys_only = stream._discard >= _DISCARD_NONINTRA
                n = record.first_frame
                while n < record.end_frame:
                    self._next = n + 1 if not keys_only else record.end_frame
                    yield Packet(stream, data if n == record.first_frame else b"", record, n)
                    if keys_only or self._next != n + 1:  # done, or a seek moved us
                        break
                    n += 1

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
        number.  The decoder's buffered frames are dropped, as PyAV flushes its codecs."""
        if not isinstance(offset, numbers.Integral):
            raise TypeError("Container.seek only accepts integer offset.", type(offset))
        if unsupported_byte_offset:
            raise NotImplementedError("seeking to a byte offset is not supported")
        with pyav_errors(self.name):
            self._seek(int(offset), backward, any_frame, stream, unsupported_frame_offset)

    def _seek(
        self, offset: int, backward: bool, any_frame: bool, stream: VideoStream | None, frame_offset: bool
    ) -> None:
        source = self._live_source()
        video = self.streams.video[0]
        if isinstance(video._codec_context, CodecContext):
            video._codec_context.flush_buffers()
        if frame_offset:
            position = Fraction(offset)
        elif stream is None:
            position = Fraction(offset, TIME_BASE) * self.header.fps
        else:
            if stream is not video:
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


def _clip_chunk_size(source: FrameSource, clip_index: int, offset: int, end: int) -> int:
    """The size of clip ``clip_index``'s CLIP chunk at ``offset``: its record's when the clip has
    been read, else the length its header gives (the first bytes of the chunk: one small read,
    which a remote file serves from the block it fetched for the clip before).  Where the header
    is not a CLIP chunk's that fits before ``end``, damage the reader reports when the clip is
    read, the span the index gives it (``end - offset``)."""
    hit = source._records.get(clip_index)
    if hit is not None and hit[0].offset == offset:
        return hit[0].size
    # The Reader has no call for a chunk's header alone; its byte source is what it reads with.
    head = source.reader._src.peek(offset, 1 + MAX_LENGTH_VARINT_BYTES, readahead=0)
    if head[:1] == bytes([ChunkType.CLIP]):
        try:
            _, size = chunk_extent(head, offset)
        except M3VError:
            size = 0
        if 0 < size <= end - offset:
            return size
    return max(end - offset, 0)


def _metadata(meta: Mapping[str, Any]) -> dict[str, str]:
    """The header's metadata as PyAV shows container metadata: string keys and values."""
    import json

    out = {}
    for key, value in dict(meta).items():
        out[str(key)] = value if isinstance(value, str) else json.dumps(value, sort_keys=True, default=str)
    return out
