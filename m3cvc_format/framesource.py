"""Frames of an `.m3v` stream, decoded clip by clip: seekable, cached, and streaming.

:class:`FrameSource` turns clips into frames through a frame decoder found by pack id
(:mod:`.framedecoders`).  Its cost follows the clips a request touches, never the file length:

- **Random access** (a seekable file with an index): frame *n* reads and decodes only the clip
  that holds it, and, when that clip interpolates, the keyframe of the next clip (spec/m3v.md
  §6.2).  Decoded keyframes stay in a bounded LRU cache (``cache_size`` keyframes, default 8),
  so walking forward decodes each keyframe once, and going back to a recent clip decodes none.
- **Streaming** (a pipe, ``"-"``, or a file that is still being written, read with
  ``follow=True``): clips are read in order as they arrive; an interpolation clip is held back
  until its successor's CLIP chunk has arrived, and the last clip (end of data, or a successor
  lost to damage) is predicted.  Only a bounded window of recent clips is kept, so frames can
  go forward only, and memory stays constant however long the stream.

Frames are RGB ``uint8`` arrays (height x width x 3).  Arrays from the keyframe cache are
read-only; copy one to modify it.

    src = FrameSource.open("x.m3v")          # or FrameSource(reader)
    for n, frame in src.frames(100, 140):    # frames 100..139
        ...
"""

from __future__ import annotations

import bisect
from collections import OrderedDict
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from .constants import Mode
from .errors import M3VError, MalformedError, MissingIndexError
from .follow import DEFAULT_FOLLOW_TIMEOUT
from .model import Clip, ClipRecord, decode_with_references

if TYPE_CHECKING:
    from .framedecoders import FrameDecoder
    from .reader import Reader

__all__ = [
    "DEFAULT_CACHE_SIZE",
    "DEFAULT_FOLLOW_TIMEOUT",
    "STREAM_WINDOW",
    "FrameSource",
]

#: Keyframes kept decoded by default.
DEFAULT_CACHE_SIZE = 8
#: Clips (parsed records and their chunk bytes, not frames) a streaming source keeps behind it.
STREAM_WINDOW = 64


# --------------------------------------------------------------------------- frame source


class FrameSource:
    """Frames of one stream, decoded clip by clip (see the module documentation).

    ``reader``: a :class:`~m3cvc_format.Reader`; random access when it is seekable, streaming
    otherwise.  ``decoder``: a frame decoder (default: the one registered for the header's
    pack id, found on first use, so streams whose pack is missing can still be listed and
    demuxed).  ``cache_size``: decoded keyframes kept (0 keeps none)."""

    def __init__(
        self,
        reader: Reader,
        *,
        decoder: FrameDecoder | None = None,
        cache_size: int = DEFAULT_CACHE_SIZE,
        window: int = STREAM_WINDOW,
    ) -> None:
        if not isinstance(cache_size, int) or cache_size < 0:
            raise ValueError("cache_size must be a non-negative integer")
        self.reader = reader
        self.header = reader.header
        self.seekable = reader.seekable
        self.cache_size = cache_size
        self._decoder = decoder
        self._keyframes: OrderedDict[int, Any] = OrderedDict()
        self._clips: OrderedDict[int, Clip] = OrderedDict()  # decoded Clip values
        self._maps: dict[int, Any] = {}  # decoded index maps, the references of dependent clips
        self._clip_limit = max(cache_size, 2)
        self._records: OrderedDict[int, tuple[ClipRecord, bytes]] = OrderedDict()
        self._record_limit = max(window, 2) if not self.seekable else 4
        self._walk: Iterator[ClipRecord] | None = None
        self._ended = False
        self._dropped_end = 0  # streaming: frames before this are gone
        # seekable: the index and the first frames of its clips, for bisect
        self._starts: tuple[list[Any], list[int]] | None = None
        self._lost: dict[int, int] = {}  # seekable, on_damage="skip": damaged clips, by offset
        self._cursor: tuple[int, int, Iterator[Any]] | None = None  # (clip index, next frame in clip, frames)
        self.stats = {"keyframes_decoded": 0, "keyframe_cache_hits": 0, "clips_read": 0, "clips_reconstructed": 0}

    @classmethod
    def open(
        cls,
        src: Any,
        *,
        follow: bool = False,
        timeout: float | None = None,
        on_damage: str = "raise",
        sniff_mkv: bool = True,
        **options: Any,
    ) -> FrameSource:
        """A FrameSource over ``src``: anything :class:`~m3cvc_format.Reader` reads (see
        :func:`~m3cvc_format.opener.open_source`), with the Reader's ``follow``, ``timeout``,
        ``on_damage`` and ``sniff_mkv``; ``options`` go to the constructor (``decoder``: a ready
        frame decoder, e.g. one built with a pack configuration, instead of the registered one)."""
        from .reader import Reader

        reader = Reader(src, on_damage=on_damage, follow=follow, timeout=timeout, sniff_mkv=sniff_mkv)
        try:
            return cls(reader, **options)
        except BaseException:
            reader.close()
            raise

    def close(self) -> None:
        self._cursor = None
        self._keyframes.clear()
        self._clips.clear()
        self._maps.clear()
        self._records.clear()
        self.reader.close()

    def __enter__(self) -> FrameSource:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------ the decoder

    @property
    def decoder(self) -> FrameDecoder:
        if self._decoder is None:
            from .framedecoders import open_frame_decoder

            self._decoder = open_frame_decoder(self.header)
        return self._decoder

    # ------------------------------------------------------------ what is known

    @property
    def ended(self) -> bool:
        """Whether every clip of the stream is known (always for a seekable source)."""
        return self.seekable or self._ended

    @property
    def frame_count(self) -> int | None:
        """Frames of the stream; for a stream still arriving, the header's count (None if 0)."""
        if self.seekable:
            return self.reader.frame_count
        if self._ended:
            return next(reversed(self._records.values()))[0].end_frame if self._records else self._dropped_end
        return self.header.frame_count or None

    @property
    def clip_count(self) -> int | None:
        if self.seekable:
            return self.reader.clip_count
        if self._ended:
            return next(reversed(self._records.values()))[0].index + 1 if self._records else 0
        return None

    # ------------------------------------------------------------ records

    def _pull(self) -> bool:
        """Streaming: read the next clip into the window; False at the end of the data."""
        if self._ended:
            return False
        if self._walk is None:
            self._walk = self.reader.clips()
        try:
            record = next(self._walk)
        except StopIteration:
            self._ended = True
            return False
        self.stats["clips_read"] += 1
        self._records[record.index] = (record, self.reader.chunk_bytes(record))
        while len(self._records) > self._record_limit:
            _, (old, _) = self._records.popitem(last=False)
            self._dropped_end = old.end_frame
        return True

    def _entry(self, k: int) -> tuple[ClipRecord, bytes]:
        hit = self._records.get(k)
        if hit is not None:
            return hit
        if self.seekable:
            if k in self._lost:
                raise MalformedError(f"clip {k} is damaged", self._lost[k])
            try:
                record = self.reader.clip(k)  # IndexError past the end
            except M3VError as err:
                if self.reader.on_damage != "skip":
                    raise
                entry = self.reader.entry(k)
                offset = err.offset if err.offset is not None else (entry.offset if entry else self.reader.header_end)
                self._lost[k] = offset
                self.reader._note_damage(offset, err)
                raise MalformedError(f"clip {k} is damaged: {err}", offset) from err
            self.stats["clips_read"] += 1
            hit = (record, self.reader.chunk_bytes(record))
            self._records[k] = hit
            while len(self._records) > self._record_limit:
                self._records.popitem(last=False)
            return hit
        last = next(reversed(self._records)) if self._records else -1
        if k <= last:
            raise MissingIndexError(f"clip {k} was passed: a stream that is not seekable goes forward only")
        while self._pull():
            if k in self._records:
                return self._records[k]
            if next(reversed(self._records)) > k:
                raise MalformedError(f"clip {k} is missing from the stream (lost to damage)")
        raise IndexError(f"clip {k} is beyond the end of the stream")

    def _usable(self, k: int) -> ClipRecord | None:
        """Clip k's record; None when it is damaged and the reader skips damage."""
        try:
            return self.record(k)
        except MalformedError:
            if k in self._lost:
                return None
            raise

    def record(self, k: int) -> ClipRecord:
        """The ClipRecord of clip ``k``."""
        return self._entry(k)[0]

    def chunk(self, k: int) -> bytes:
        """The bytes of clip ``k``'s CLIP chunk."""
        return self._entry(k)[1]

    def successor(self, k: int) -> ClipRecord | None:
        """Clip k+1's record, or None when the stream has no clip k+1 (end, or lost)."""
        if self.seekable:
            entries = self.reader.index
            return self._usable(k + 1) if entries and k + 1 <= entries[-1].clip_index else None
        while True:
            if k + 1 in self._records:
                return self._records[k + 1][0]
            if self._records and next(reversed(self._records)) > k + 1:
                return None
            if not self._pull():
                return None

    def locate(self, n: int) -> ClipRecord | None:
        """The record of the clip that holds frame ``n``; if ``n`` falls where clips were lost,
        the next clip after it; None past the end.  Streaming: reads forward as needed."""
        if n < 0:
            n = 0
        if self.seekable:
            cursor = self._cursor
            if cursor is not None:  # the clip being decoded: the usual case, walking forward
                record = self._records.get(cursor[0], (None,))[0]
                if record is not None and record.first_frame <= n < record.end_frame:
                    return record
            while True:
                entries = self.reader.index
                if not entries or n >= self.reader.frame_count:
                    return None
                if self._starts is None or self._starts[0] is not entries:  # the index was rebuilt
                    self._starts = (entries, [e.first_frame for e in entries])
                pos = max(bisect.bisect_right(self._starts[1], n) - 1, 0)
                if entries[pos].first_frame + entries[pos].frame_count <= n:
                    pos += 1  # a gap (rebuilt index)
                while pos < len(entries):  # on_damage="skip": a damaged clip's frames are left out
                    record = self._usable(entries[pos].clip_index)
                    if self.reader.index is not entries:
                        break  # reading the clip showed the index wrong: look again in the rebuilt one
                    if record is not None and record.end_frame > n:
                        return record
                    pos += 1
                else:
                    return None
        if n < self._dropped_end:
            raise MissingIndexError(f"frame {n} was passed: a stream that is not seekable goes forward only")
        while True:
            for record, _ in self._records.values():
                if record.end_frame > n:
                    return record
            if not self._pull():
                return None

    def last_record(self) -> ClipRecord | None:
        """The last clip of the stream (streaming: reads to the end of the data)."""
        if self.seekable:
            count = self.reader.clip_count
            return self.record(self.reader.index[count - 1].clip_index) if count else None
        while self._pull():
            pass
        return next(reversed(self._records.values()))[0] if self._records else None

    def first_clip_from(self, n: int) -> ClipRecord | None:
        """The first clip that starts at frame ``n`` or later; None if none does."""
        record = self.locate(n)
        if record is None or record.first_frame >= n:
            return record
        return self.locate(record.end_frame)

    # ------------------------------------------------------------ decoding

    def clip(self, k: int, record: ClipRecord | None = None) -> Clip:
        """Clip ``k`` with its texts and index map decoded."""
        value = self._clips.get(k)
        if value is not None:
            self._clips.move_to_end(k)
            return value
        given = record if record is not None else self.record(k)
        value = decode_with_references(self.header, k, lambda j: given if j == k else self.record(j), self._maps)
        while len(self._maps) > self._clip_limit:  # the maps the next clips may refer to
            del self._maps[next(iter(self._maps))]
        self._clips[k] = value
        while len(self._clips) > self._clip_limit:
            self._clips.popitem(last=False)
        return value

    def _check(self, frame: Any, what: str) -> Any:
        import numpy as np

        h = self.header
        frame = np.asarray(frame)
        if frame.shape != (h.height, h.width, 3) or frame.dtype != np.uint8:
            raise M3VError(
                f"frame decoder gave {what} of shape {frame.shape} {frame.dtype}, not ({h.height}, {h.width}, 3) uint8"
            )
        return frame

    def keyframe(self, k: int, record: ClipRecord | None = None) -> Any:
        """Clip ``k``'s decoded keyframe, from the LRU cache when it is there."""
        frame = self._keyframes.get(k)
        if frame is not None:
            self._keyframes.move_to_end(k)
            self.stats["keyframe_cache_hits"] += 1
            return frame
        frame = self._check(self.decoder.decode_keyframe(self.clip(k, record)), f"keyframe {k}").copy()
        frame.setflags(write=False)  # shared by the cache and every predicted frame
        self.stats["keyframes_decoded"] += 1
        if self.cache_size:
            self._keyframes[k] = frame
            while len(self._keyframes) > self.cache_size:
                self._keyframes.popitem(last=False)
        return frame

    @property
    def cached_keyframes(self) -> list[int]:
        """Clip indices whose keyframes are cached, least recently used first."""
        return list(self._keyframes)

    def clip_frames(self, k: int, record: ClipRecord | None = None) -> Iterator[Any]:
        """The frames of clip ``k``, in order (interpolated towards clip k+1's keyframe when
        the clip's mode says so and clip k+1 exists, predicted otherwise)."""
        record = record if record is not None else self.record(k)
        clip = self.clip(k, record)
        keyframe = self.keyframe(k, record)
        following = None
        if record.mode == Mode.INTERPOLATION:
            nxt = self.successor(k)
            if nxt is not None and nxt.index == k + 1:
                following = self.keyframe(k + 1, nxt)
        self.stats["clips_reconstructed"] += 1
        count = 0
        for frame in self.decoder.reconstruct(clip, keyframe, following):
            if count >= record.frame_count:
                break
            yield self._check(frame, f"frame {count} of clip {k}")
            count += 1
        if count < record.frame_count:
            raise M3VError(f"frame decoder gave {count} frames for clip {k} of {record.frame_count}")

    def frame(self, n: int) -> Any:
        """Frame ``n`` (decoding forward within its clip from where the last call left off)."""
        record = self.locate(n)
        if record is None or n < record.first_frame:
            raise IndexError(f"frame {n} is not in the stream")
        k, i = record.index, n - record.first_frame
        cursor = self._cursor
        if cursor is not None and cursor[0] == k and cursor[1] <= i:
            _, j, frames = cursor
        else:
            j, frames = 0, self.clip_frames(k, record)
        self._cursor = None
        while j < i:
            next(frames)
            j += 1
        frame = next(frames)
        self._cursor = (k, i + 1, frames) if i + 1 < record.frame_count else None
        return frame

    def frames(self, start: int = 0, stop: int | None = None) -> Iterator[tuple[int, Any]]:
        """``(n, frame)`` for the frames ``start <= n < stop`` the stream holds, in order."""
        n = start
        while stop is None or n < stop:
            record = self.locate(n)
            if record is None:
                return
            n = max(n, record.first_frame)
            if stop is not None and n >= stop:
                return
            yield n, self.frame(n)
            n += 1

    def __iter__(self) -> Iterator[tuple[int, Any]]:
        return self.frames()
