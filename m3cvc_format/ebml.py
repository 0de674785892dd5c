"""EBML, the binary format Matroska is built on: element ids, writing elements, and reading
them back with every size checked against its parent and the file before anything is read or
allocated (the primitives of :mod:`.mkv_mux` and :mod:`.mkv_extract`); the Matroska errors."""

from __future__ import annotations

import hashlib
import io
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from typing import BinaryIO

from .errors import M3VError

# ------------------------------------------------------------------------------ EBML ids

EBML = 0x1A45DFA3
EBML_VERSION = 0x4286
EBML_READ_VERSION = 0x42F7
EBML_MAX_ID_LENGTH = 0x42F2
EBML_MAX_SIZE_LENGTH = 0x42F3
DOC_TYPE = 0x4282
DOC_TYPE_VERSION = 0x4287
DOC_TYPE_READ_VERSION = 0x4285
VOID = 0xEC

SEGMENT = 0x18538067
SEEK_HEAD = 0x114D9B74
SEEK = 0x4DBB
SEEK_ID = 0x53AB
SEEK_POSITION = 0x53AC

INFO = 0x1549A966
TIMESTAMP_SCALE = 0x2AD7B1
DURATION = 0x4489
MUXING_APP_ID = 0x4D80
WRITING_APP_ID = 0x5741
TITLE = 0x7BA9
SEGMENT_UID = 0x73A4

TRACKS = 0x1654AE6B
TRACK_ENTRY = 0xAE
TRACK_NUMBER = 0xD7
TRACK_UID = 0x73C5
TRACK_TYPE = 0x83
FLAG_LACING = 0x9C
DEFAULT_DURATION = 0x23E383
NAME = 0x536E
LANGUAGE = 0x22B59C
CODEC_ID = 0x86
CODEC_PRIVATE = 0x63A2
CONTENT_ENCODINGS = 0x6D80
CONTENT_ENCODING = 0x6240
CONTENT_ENCODING_ORDER = 0x5031
CONTENT_ENCODING_SCOPE = 0x5032
CONTENT_ENCODING_TYPE = 0x5033
CONTENT_COMPRESSION = 0x5034
CONTENT_COMP_ALGO = 0x4254
CONTENT_COMP_SETTINGS = 0x4255
VIDEO = 0xE0
PIXEL_WIDTH = 0xB0
PIXEL_HEIGHT = 0xBA
PIXEL_CROP_BOTTOM = 0x54AA
PIXEL_CROP_RIGHT = 0x54DD

CLUSTER = 0x1F43B675
TIMESTAMP = 0xE7
SIMPLE_BLOCK = 0xA3
BLOCK_GROUP = 0xA0
BLOCK = 0xA1
BLOCK_DURATION = 0x9B

CUES = 0x1C53BB6B
CUE_POINT = 0xBB
CUE_TIME = 0xB3
CUE_TRACK_POSITIONS = 0xB7
CUE_TRACK = 0xF7
CUE_CLUSTER_POSITION = 0xF1
CUE_RELATIVE_POSITION = 0xF0

ATTACHMENTS = 0x1941A469
ATTACHED_FILE = 0x61A7
FILE_DESCRIPTION = 0x467E
FILE_NAME = 0x466E
FILE_MIME_TYPE = 0x4660
FILE_DATA = 0x465C
FILE_UID = 0x46AE

CHAPTERS = 0x1043A770
EDITION_ENTRY = 0x45B9
EDITION_UID = 0x45BC
EDITION_FLAG_HIDDEN = 0x45BD
EDITION_FLAG_DEFAULT = 0x45DB
CHAPTER_ATOM = 0xB6
CHAPTER_UID = 0x73C4
CHAPTER_TIME_START = 0x91
CHAPTER_TIME_END = 0x92
CHAPTER_FLAG_HIDDEN = 0x98
CHAPTER_FLAG_ENABLED = 0x4598
CHAPTER_DISPLAY = 0x80
CHAP_STRING = 0x85
CHAP_LANGUAGE = 0x437C

TAGS = 0x1254C367

#: Children of a Segment: where a Cluster of unknown size ends.
LEVEL1 = frozenset({SEEK_HEAD, INFO, TRACKS, CLUSTER, CUES, ATTACHMENTS, CHAPTERS, TAGS, EBML, SEGMENT})


# ------------------------------------------------------------------------------ errors


class MKVError(M3VError):
    """Base class of the errors about Matroska input (also an M3VError and a ValueError)."""


class NotMatroskaError(MKVError):
    """The data is not a Matroska file (no EBML header, another document type)."""


class DamagedMKVError(MKVError):
    """An EBML element is malformed or runs past its parent or the end of the file."""


class NoAttachmentError(MKVError):
    """The Matroska file has no attachments."""


class WrongMimeTypeError(NoAttachmentError):
    """The Matroska file has attachments, none of them with the `.m3v` mimetype."""


class DamagedAttachmentError(DamagedMKVError):
    """The `.m3v` attachment is cut off, malformed, or differs from its recorded SHA-256."""


class NotM3VAttachmentError(MKVError):
    """The attachment with the `.m3v` mimetype does not hold an `.m3v` stream."""


# ------------------------------------------------------------------------------ EBML writing


def id_bytes(element_id: int) -> bytes:
    return element_id.to_bytes((element_id.bit_length() + 7) // 8, "big")


def encode_size(n: int, length: int | None = None) -> bytes:
    """EBML variable-size integer; the all-ones value of each length is reserved (unknown)."""
    if length is None:
        length = next((k for k in range(1, 9) if n < (1 << (7 * k)) - 1), None)
        if length is None:
            raise ValueError(f"EBML size {n} too large")
    elif n >= (1 << (7 * length)) - 1:
        raise ValueError(f"EBML size {n} does not fit in {length} bytes")
    return (n | (1 << (7 * length))).to_bytes(length, "big")


def element(element_id: int, *payload: bytes) -> bytes:
    data = b"".join(payload)
    return id_bytes(element_id) + encode_size(len(data)) + data


def uint_element(element_id: int, value: int, width: int | None = None) -> bytes:
    if width is None:
        width = max(1, (value.bit_length() + 7) // 8)
    return element(element_id, value.to_bytes(width, "big"))


def float_element(element_id: int, value: float) -> bytes:
    return element(element_id, struct.pack(">d", value))


def text_element(element_id: int, value: str) -> bytes:
    return element(element_id, value.encode("utf-8"))


def derived_uid(digest: bytes, label: str) -> int:
    """A non-zero 64-bit UID derived from the stream's digest: deterministic, unlikely to collide."""
    value = int.from_bytes(hashlib.sha256(digest + label.encode()).digest()[:8], "big")
    return value or 1


def void_element(total: int) -> bytes:
    """A Void element of exactly ``total`` bytes (``total`` >= 2)."""
    if total < 2:
        raise ValueError("a Void element takes at least 2 bytes")
    for length in range(1, 9):
        n = total - 1 - length
        if n >= 0 and n < (1 << (7 * length)) - 1:
            return b"\xec" + encode_size(n, length) + bytes(n)
    raise ValueError(total)


# ------------------------------------------------------------------------------ EBML reading


class EBMLFile:
    """Bounded reads at absolute offsets of a seekable binary file."""

    def __init__(self, file: BinaryIO):
        self.file = file
        self.size = file.seek(0, io.SEEK_END)
        self._base, self._buf = 0, b""

    def read(self, pos: int, n: int) -> bytes:
        """Up to ``n`` bytes at ``pos`` (``n`` is clipped to the file's end before reading)."""
        n = max(0, min(n, self.size - pos))
        if self._base <= pos and pos + n <= self._base + len(self._buf):
            return self._buf[pos - self._base : pos + n - self._base]
        self.file.seek(pos)
        if n <= 4096:  # small reads (element headers) go through a read-ahead window
            self._buf, self._base = self.file.read(min(65536, self.size - pos)), pos
            return self._buf[:n]
        return self.file.read(n)


@dataclass(frozen=True)
class ElementHeader:
    offset: int
    element_id: int
    data: int  # offset of the element's data
    size: int | None  # None: unknown size

    @property
    def end(self) -> int | None:
        return None if self.size is None else self.data + self.size

    @property
    def known_size(self) -> int:
        """The size of an element whose size is known (DamagedMKVError otherwise)."""
        if self.size is None:
            raise DamagedMKVError(f"element 0x{self.element_id:X} has an unknown size", self.offset)
        return self.size

    @property
    def stop(self) -> int:
        """The end of an element whose size is known (DamagedMKVError otherwise)."""
        return self.data + self.known_size


def read_header(f: EBMLFile, pos: int, limit: int) -> ElementHeader:
    """The element header at ``pos``; DamagedMKVError if malformed or past ``limit``."""
    head = f.read(pos, min(12, limit - pos))
    if not head:
        raise DamagedMKVError("data ends where an EBML element should start", pos)
    first = head[0]
    if first == 0 or first < 0x10:
        raise DamagedMKVError(f"invalid EBML element id byte 0x{first:02x}", pos)
    id_len = 8 - first.bit_length() + 1
    if len(head) < id_len + 1:
        raise DamagedMKVError("data ends inside an EBML element header", pos)
    element_id = int.from_bytes(head[:id_len], "big")
    lead = head[id_len]
    if lead == 0:
        raise DamagedMKVError(f"invalid EBML size in element 0x{element_id:X}", pos)
    size_len = 8 - lead.bit_length() + 1
    if len(head) < id_len + size_len:
        raise DamagedMKVError("data ends inside an EBML element header", pos)
    raw = int.from_bytes(head[id_len : id_len + size_len], "big") & ((1 << (7 * size_len)) - 1)
    size = None if raw == (1 << (7 * size_len)) - 1 else raw
    return ElementHeader(pos, element_id, pos + id_len + size_len, size)


def children(
    f: EBMLFile, start: int, end: int, parent: str, error: type[MKVError] = DamagedMKVError
) -> Iterator[ElementHeader]:
    """Children of a master element spanning [start, end), each checked to lie within it."""
    pos = start
    while pos < end:
        try:
            h = read_header(f, pos, end)
        except DamagedMKVError as err:
            if error is DamagedMKVError:
                raise
            raise error(f"{err.message} in its {parent}", err.offset) from None
        if h.size is None or h.data + h.size > end:
            size = "an unknown size" if h.size is None else f"{h.size} bytes"
            raise error(f"element 0x{h.element_id:X} of {size} runs past the end of its {parent}", pos)
        yield h
        pos = h.stop


def read_uint(f: EBMLFile, h: ElementHeader) -> int:
    if h.known_size > 8:
        raise DamagedMKVError(f"unsigned integer element 0x{h.element_id:X} of {h.size} bytes", h.offset)
    return int.from_bytes(f.read(h.data, h.known_size), "big")


def read_string(f: EBMLFile, h: ElementHeader) -> str:
    return f.read(h.data, h.known_size).split(b"\x00", 1)[0].decode("utf-8", "replace")
