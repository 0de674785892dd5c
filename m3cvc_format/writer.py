"""Streaming `.m3v` writer.

The writer emits the signature and HEAD at once and each clip as it is given,
so it works on a non-seekable pipe; ``close()`` appends INDX and TAIL.  Given
a path it writes a temporary file beside it and renames it into place on
close, so a reader never sees a half-written file under the final name.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable, Mapping
from typing import Any, BinaryIO

import numpy as np

from .atomic import AtomicFile
from .chunks import build_clip, build_coded_clip, build_head, build_index, build_tail, frame_chunk
from .constants import (
    ANCILLARY_CHUNK_BIT,
    BASE_VERSION_MINOR,
    PRMT_VERSION_MINOR,
    SIGNATURE,
    ChunkType,
    IndexMapCoder,
)
from .errors import MalformedError
from .model import Clip, ClipRecord, Header, IndexEntry
from .prompts import pack_prompts, parse_prompts

__all__ = ["Writer", "write"]


class Writer:
    """Write a stream to ``dest``: a path, a ``Path``, ``"-"`` (stdout) or a binary file object.

    Clips must come in order: indices 0, 1, 2, ... and frames contiguous from 0.
    Use as a context manager; leaving the block with an exception discards a
    path's temporary file instead of publishing it.

    ``refresh`` > 0 lets the writer code a clip's index map with TEMPORAL, against the
    previous clip's map, when that is shorter than ``index_map_coder``; at least every
    ``refresh`` clips a map stays independent (spec/m3v.md §6.5), which bounds what a seek
    decodes and what a damaged clip takes with it.  0 (the default) keeps every map
    independent.  A clip's own ``index_map_coder`` overrides both.

    ``head``: the HEAD payload as stored in a stream that ``header`` was read from, written as
    it is instead of being built from ``header`` (a tool that copies a stream keeps its header
    byte for byte).

    ``prompts``: the prompts of the dialogue that wrote the texts (spec/m3v.md §4.3: ``keyframe``
    and ``clip`` lists of strings, optional ``name``, ``version``, ``turns``, ``model``,
    ``settings``), written as a PRMT chunk right after HEAD; the stream is then version 1.2.
    Without them (None, the default) the stream is version 1.1, byte for byte what a 1.1
    writer wrote.  Bad prompts raise MalformedError (a ValueError) before anything is written.

    A clip whose CLIP chunk would hold more than 16 index-map cells a byte (a map that codes in
    almost nothing, such as a constant one or a TEMPORAL full copy, with short texts) gets a PAD
    sub-chunk that brings it to the least size the work limit of spec/m3v.md §11 allows; this
    applies to :meth:`write_coded_clip` too, and does not change the stream's version.
    """

    def __init__(
        self,
        dest: str | os.PathLike[str] | BinaryIO,
        header: Header,
        *,
        index: bool = True,
        index_map_coder: IndexMapCoder = IndexMapCoder.CONTEXT,
        refresh: int = 0,
        head: bytes | None = None,
        prompts: Mapping[str, Any] | None = None,
    ) -> None:
        self.header = header
        prompts_payload = None if prompts is None else pack_prompts(prompts)
        minor = BASE_VERSION_MINOR if prompts_payload is None else PRMT_VERSION_MINOR
        if head is not None and prompts_payload is not None and (len(head) < 2 or head[1] < PRMT_VERSION_MINOR):
            raise MalformedError(
                f"prompts need a version 1.{PRMT_VERSION_MINOR} HEAD; the HEAD given is not (leave out head=)"
            )
        self.write_index = index
        self.index_map_coder = IndexMapCoder(index_map_coder)
        if self.index_map_coder is IndexMapCoder.TEMPORAL:
            raise ValueError("the writer's default coder must be independent; use refresh for TEMPORAL")
        if not isinstance(refresh, int) or refresh < 0:
            raise ValueError(f"refresh {refresh!r} must be a non-negative integer")
        self.refresh = refresh
        self.dependent_clips = 0
        self._previous_map: Any = None
        self._chain = 0  # dependent clips since the last independent one
        self.entries: list[IndexEntry] = []
        self.text_bytes = 0
        self.vq_bytes = 0
        self._atomic: AtomicFile | None = None
        self._closed = False
        if isinstance(dest, (str, os.PathLike)) and str(dest) == "-":
            self._file: BinaryIO = sys.stdout.buffer
        elif isinstance(dest, (str, os.PathLike)):
            self._atomic = AtomicFile(dest)
            self._file = self._atomic.file
        else:
            self._file = dest
        self.bytes_written = 0
        self._emit(SIGNATURE)
        self._emit(frame_chunk(ChunkType.HEAD, build_head(header, minor) if head is None else bytes(head)))
        #: The version_minor of the HEAD written.
        self.version_minor = minor if head is None else (head[1] if len(head) > 1 else 0)
        #: The PRMT payload written after HEAD (None: the stream records no prompts).
        self.prompts_payload = prompts_payload
        if prompts_payload is not None:
            self._emit(frame_chunk(ChunkType.PRMT, prompts_payload))

    def _emit(self, data: bytes) -> None:
        self._file.write(data)
        self.bytes_written += len(data)

    @property
    def frames_written(self) -> int:
        return self.entries[-1].first_frame + self.entries[-1].frame_count if self.entries else 0

    def _check_place(self, index: int, first_frame: int) -> None:
        """Clips are written in order, each starting where the previous one ended."""
        if self._closed:
            raise ValueError("writer is closed")
        if index != len(self.entries):
            raise MalformedError(f"clip {index} written where clip {len(self.entries)} belongs")
        if first_frame != self.frames_written:
            raise MalformedError(
                f"clip {index} starts at frame {first_frame}; the previous clip ended at {self.frames_written}"
            )

    def _append_clip(
        self, index: int, first_frame: int, frame_count: int, payload: bytes, text_bytes: int, vq_bytes: int
    ) -> IndexEntry:
        entry = IndexEntry(index, self.bytes_written, first_frame, frame_count)
        self._emit(frame_chunk(ChunkType.CLIP, payload))
        self.entries.append(entry)
        self.text_bytes += text_bytes
        self.vq_bytes += vq_bytes
        return entry

    def write_clip(self, clip: Clip) -> IndexEntry:
        """Code and append one clip; returns its index entry (byte offset included)."""
        self._check_place(clip.index, clip.first_frame)
        coder: IndexMapCoder = IndexMapCoder(
            clip.index_map_coder if clip.index_map_coder is not None else self.index_map_coder
        )
        reference = self._previous_map
        if coder is IndexMapCoder.TEMPORAL and reference is None:
            raise MalformedError(f"clip {clip.index} cannot use the TEMPORAL coder: no previous clip was written")
        payload, text_bytes, vq_bytes = build_clip(clip, self.header, coder, reference)
        if clip.index_map_coder is None and self.refresh and reference is not None and self._chain + 1 < self.refresh:
            temporal = build_clip(clip, self.header, IndexMapCoder.TEMPORAL, reference)
            if len(temporal[0]) < len(payload):
                payload, text_bytes, vq_bytes = temporal
                coder = IndexMapCoder.TEMPORAL
        self._chain = self._chain + 1 if coder is IndexMapCoder.TEMPORAL else 0
        self.dependent_clips += coder is IndexMapCoder.TEMPORAL
        self._previous_map = np.asarray(clip.index_map)
        return self._append_clip(clip.index, clip.first_frame, clip.frame_count, payload, text_bytes, vq_bytes)

    def write_coded_clip(self, record: ClipRecord) -> IndexEntry:
        """Append a clip whose texts and index map are already coded (a :class:`ClipRecord`
        read from a stream, its texts possibly replaced), without decoding or re-coding them:
        its index-map sub-chunk is written byte for byte as read.  A TEMPORAL map stays valid
        when the clip before it carries the same map, as it does when a whole stream is copied."""
        self._check_place(record.index, record.first_frame)
        payload, text_bytes, vq_bytes = build_coded_clip(record)
        dependent = record.dependent
        self._chain = self._chain + 1 if dependent else 0
        self.dependent_clips += dependent
        self._previous_map = None  # not decoded: a following write_clip codes its map independently
        return self._append_clip(record.index, record.first_frame, record.frame_count, payload, text_bytes, vq_bytes)

    def write_ancillary(self, chunk_type: int, payload: bytes) -> None:
        """Append an ancillary chunk (type with bit 7 set) that readers skip unless they know it."""
        if not ANCILLARY_CHUNK_BIT & chunk_type or not 0 <= chunk_type <= 0xFF:
            raise MalformedError(f"chunk type 0x{chunk_type:02x} is not ancillary")
        if chunk_type == ChunkType.PRMT and self.version_minor >= PRMT_VERSION_MINOR:
            # A PRMT chunk (spec §4.3): once, before the first clip, a valid map.  (In a 1.1
            # stream, copied as it is, type 0x80 is some older private chunk: not checked.)
            if self.entries or self.prompts_payload is not None:
                raise MalformedError("a stream has at most one PRMT chunk, before its first clip")
            parse_prompts(payload)
            self.prompts_payload = bytes(payload)
        self._emit(frame_chunk(chunk_type, payload))

    def flush(self) -> None:
        self._file.flush()

    def close(self) -> None:
        """Write INDX and TAIL, then publish the file (rename) or flush the stream."""
        if self._closed:
            return
        try:
            declared = self.header.frame_count
            if declared and declared != self.frames_written:
                raise MalformedError(f"header declares {declared} frames but the clips hold {self.frames_written}")
            if self.write_index:
                index_offset = self.bytes_written
                index_chunk = frame_chunk(ChunkType.INDX, build_index(self.entries))
                self._emit(index_chunk)
                self._emit(frame_chunk(ChunkType.TAIL, build_tail(index_offset, len(index_chunk))))
            if self._atomic is not None:
                self._atomic.publish()
                self._atomic = None
            else:
                self._file.flush()
        except BaseException:
            self.abort()
            raise
        self._closed = True

    def abort(self) -> None:
        """Stop without publishing: a path's temporary file is removed."""
        self._closed = True
        if self._atomic is not None:
            self._atomic.discard()
            self._atomic = None

    def __enter__(self) -> Writer:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: object) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()


def write(dest: str | os.PathLike[str] | BinaryIO, header: Header, clips: Iterable[Clip], **options: Any) -> Writer:
    """Write ``header`` and every clip of ``clips`` to ``dest``; returns the closed writer."""
    with Writer(dest, header, **options) as writer:
        for clip in clips:
            writer.write_clip(clip)
    return writer
