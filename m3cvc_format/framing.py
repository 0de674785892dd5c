"""Chunk framing (spec/m3v.md §4), read and checked in one place.

A chunk is ``type (1 byte) | length (LEB128, at most 4 bytes) | payload | CRC-32C (4 bytes, LE)``
with the CRC over everything before it.  :class:`ByteSource` gives bytes by absolute offset over
a seekable file or a forward-only stream; :func:`read_chunk` reads the chunk at an offset of one,
:func:`parse_chunk` checks one held whole in memory (a packet), and :func:`read_tail` the
fixed-size TAIL that ends a terminated stream.  The Reader, the FrameSource's packets and
:class:`~m3cvc_format.follow.FollowFile` all go through these.
"""

from __future__ import annotations

import io
import struct
from dataclasses import dataclass
from typing import TYPE_CHECKING, BinaryIO, Protocol

from .constants import MAX_LENGTH_VARINT_BYTES, TAIL_SIZE, ChunkType
from .crc import crc32c
from .errors import ChecksumError, MalformedError, MissingIndexError, TruncatedError

if TYPE_CHECKING:
    from .model import ClipRecord, Header

__all__ = [
    "WINDOW",
    "ByteSource",
    "Peekable",
    "RawChunk",
    "chunk_extent",
    "parse_chunk",
    "parse_clip_chunk",
    "read_chunk",
    "read_tail",
]

#: Read-ahead of seekable sources; also the size of the first and last reads.
WINDOW = 1 << 16


@dataclass(frozen=True)
class RawChunk:
    """One chunk as stored, its CRC checked."""

    offset: int
    chunk_type: int
    payload: bytes
    size: int  # type + length + payload + CRC
    crc: int


class ByteSource:
    """Byte access by absolute offset over a seekable file or a forward-only stream."""

    def __init__(self, file: BinaryIO) -> None:
        self.file = file
        self.reads = 0
        self.size: int | None = None
        try:
            self.seekable = bool(file.seekable())
        except (AttributeError, ValueError, OSError):
            self.seekable = False
        if self.seekable:
            try:
                self.size = file.seek(0, io.SEEK_END)
            except OSError:
                self.seekable = False
        self._base = 0
        self._buf: bytes | bytearray = b"" if self.seekable else bytearray()
        self._eof = False

    @property
    def position(self) -> int:
        """Bytes of the stream read so far (its size, once a pipe has been read to the end)."""
        if self.seekable:
            assert self.size is not None
            return self.size
        return self._base + len(self._buf)

    def read_at(self, offset: int, n: int) -> bytes:
        """One read of up to ``n`` bytes at ``offset`` (seekable sources only)."""
        self.reads += 1
        self.file.seek(offset)
        return self.file.read(n)

    def peek(self, pos: int, n: int, readahead: int = WINDOW) -> bytes:
        """Up to ``n`` bytes at ``pos``; fewer only at the end of the data.

        A seekable source reads at least ``readahead`` bytes when it must read.
        """
        if self.seekable:
            assert self.size is not None
            end = min(pos + n, self.size)
            if not (self._base <= pos and end <= self._base + len(self._buf)):
                self._buf = self.read_at(pos, max(end - pos, readahead))
                self._base = pos
            return bytes(self._buf[pos - self._base : end - self._base])
        if pos < self._base:
            raise MissingIndexError("cannot go back in a stream that is not seekable", pos)
        buf = self._buf
        assert isinstance(buf, bytearray)
        del buf[: pos - self._base]
        self._base = pos
        while len(buf) < n and not self._eof:
            # Ask only for what is missing (a larger read would wait on a live pipe
            # for data this chunk does not need), and at most 1 MiB at a time:
            # read(n) allocates n bytes before any arrive.
            chunk = self.file.read(min(n - len(buf), 1 << 20))
            self.reads += 1
            if not chunk:
                self._eof = True
            else:
                buf += chunk
        return bytes(buf[:n])


def chunk_extent(head: bytes, pos: int) -> tuple[int, int]:
    """From the first bytes of a chunk (at least its type and length, when the data has them):
    (where its payload starts, its whole size).  ``pos`` locates errors."""
    from .syntax import read_leb128

    if len(head) < 2:
        raise TruncatedError("data ends inside a chunk header", pos)
    try:
        length, payload_start = read_leb128(head, 1, MAX_LENGTH_VARINT_BYTES)
    except IndexError:
        raise TruncatedError("data ends inside a chunk length", pos) from None
    except ValueError as err:
        raise MalformedError(f"chunk length is malformed: {err}", pos) from None
    return payload_start, payload_start + length + 4


def _checked(data: bytes, pos: int, payload_start: int) -> RawChunk:
    total = len(data)
    (stored,) = struct.unpack_from("<I", data, total - 4)
    if crc32c(data[: total - 4]) != stored:
        raise ChecksumError(f"CRC-32C mismatch in chunk type 0x{data[0]:02x}", pos)
    return RawChunk(pos, data[0], data[payload_start : total - 4], total, stored)


class Peekable(Protocol):
    """What :func:`read_chunk` needs of a source: bytes by offset, and the size when known."""

    @property
    def size(self) -> int | None: ...

    def peek(self, pos: int, n: int, readahead: int = ...) -> bytes: ...


def read_chunk(source: Peekable, pos: int) -> RawChunk | None:
    """The chunk at ``pos`` of ``source``, CRC checked; None at a clean end of data."""
    head = source.peek(pos, 1 + MAX_LENGTH_VARINT_BYTES)
    if not head:
        return None
    payload_start, total = chunk_extent(head, pos)
    if source.size is not None and pos + total > source.size:
        raise TruncatedError(f"chunk of {total} bytes runs past the end of the data ({source.size - pos} left)", pos)
    data = source.peek(pos, total)
    if len(data) < total:
        raise TruncatedError(f"data ends inside a chunk of {total} bytes", pos)
    return _checked(data, pos, payload_start)


def parse_chunk(data: bytes, offset: int = 0) -> RawChunk:
    """One whole chunk held in ``data`` (nothing before or after it), CRC checked."""
    data = bytes(data)
    if not data:
        raise TruncatedError("no chunk: the data is empty", offset)
    payload_start, total = chunk_extent(data[: 1 + MAX_LENGTH_VARINT_BYTES], offset)
    if total != len(data):
        raise MalformedError(f"chunk of {total} bytes given {len(data)}", offset)
    return _checked(data, offset, payload_start)


def parse_clip_chunk(data: bytes, header: Header | None = None, offset: int = 0) -> ClipRecord:
    """A whole CLIP chunk (type, length, payload, CRC) -> ClipRecord, CRC checked."""
    from .chunks import parse_clip

    if not data or data[0] != ChunkType.CLIP:
        raise MalformedError("data is not a CLIP chunk", offset)
    chunk = parse_chunk(data, offset)
    minor = header.version[1] if header is not None else 0
    return parse_clip(chunk.payload, offset, chunk.size, minor)


def read_tail(tail: bytes, offset: int) -> tuple[int, int] | None:
    """The (index offset, index size) a TAIL chunk at ``offset`` points at; None when ``tail``
    (the last TAIL_SIZE bytes of the data) is not a TAIL chunk; ChecksumError when it is one
    whose CRC does not match."""
    if len(tail) != TAIL_SIZE or tail[0] != ChunkType.TAIL or tail[1] != TAIL_SIZE - 6:
        return None
    if crc32c(tail[:-4]) != struct.unpack_from("<I", tail, TAIL_SIZE - 4)[0]:
        raise ChecksumError("TAIL CRC mismatch", offset)
    index_offset, index_size = struct.unpack_from("<QI", tail, 2)
    return int(index_offset), int(index_size)
