"""Finding the `.m3v` stream attached to a Matroska file (m3v-demux, and the source opener
for an .mkv given where an .m3v is expected), and reading its subtitle track back
(:func:`subtitles`, compression undone); see :mod:`.mkv`."""

from __future__ import annotations

import hashlib
import re
import struct
import zlib
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .constants import SIGNATURE
from .ebml import (
    ATTACHED_FILE,
    ATTACHMENTS,
    BLOCK,
    BLOCK_DURATION,
    BLOCK_GROUP,
    CLUSTER,
    CODEC_ID,
    CONTENT_COMP_ALGO,
    CONTENT_COMP_SETTINGS,
    CONTENT_COMPRESSION,
    CONTENT_ENCODING,
    CONTENT_ENCODING_ORDER,
    CONTENT_ENCODING_TYPE,
    CONTENT_ENCODINGS,
    DOC_TYPE,
    EBML,
    EBML_READ_VERSION,
    FILE_DATA,
    FILE_DESCRIPTION,
    FILE_MIME_TYPE,
    FILE_NAME,
    FILE_UID,
    LEVEL1,
    SEGMENT,
    SIMPLE_BLOCK,
    TIMESTAMP,
    TRACK_ENTRY,
    TRACK_NUMBER,
    TRACKS,
    VOID,
    DamagedAttachmentError,
    DamagedMKVError,
    EBMLFile,
    ElementHeader,
    NoAttachmentError,
    NotM3VAttachmentError,
    NotMatroskaError,
    WrongMimeTypeError,
    children,
    id_bytes,
    read_header,
    read_string,
    read_uint,
)
from .errors import M3VError, TruncatedError

if TYPE_CHECKING:
    from .opener import Source

MIME_TYPE = "application/x-m3v"
#: How m3v-mux's attachment description starts.

# ------------------------------------------------------------------------------ reading


@dataclass(frozen=True)
class Attachment:
    """An AttachedFile element: its fields and where its FileData lies in the file."""

    name: str
    mime_type: str
    description: str
    uid: int | None
    offset: int  # of the AttachedFile element
    data_offset: int | None
    data_size: int | None

    def describe(self) -> str:
        return f"{self.name or '(no name)'} ({self.mime_type or 'no mimetype'})"


def _open(src: Any) -> Source:
    """``src`` opened for the demuxer, which seeks: a pipe is read into memory (bounded by the
    input's size)."""
    from .opener import open_source

    return open_source(src, sniff_mkv=False, seekable=True)


def _check_ebml_header(f: EBMLFile) -> int:
    """Check the EBML header; the offset just after it."""
    if f.size == 0:
        raise NotMatroskaError("not a Matroska file: the file is empty", 0)
    if f.read(0, 4) != id_bytes(EBML):
        raise NotMatroskaError("not a Matroska file: no EBML header", 0)
    try:
        h = read_header(f, 0, f.size)
    except DamagedMKVError as err:
        raise NotMatroskaError(f"not a Matroska file: {err.message}", 0) from None
    if h.size is None or h.data + h.size > f.size or h.size > 4096:
        raise NotMatroskaError("not a Matroska file: the EBML header's size is wrong or past the end", 0)
    doc_type = "matroska"  # EBML's default
    try:
        for child in children(f, h.data, h.stop, "EBML header"):
            if child.element_id == DOC_TYPE:
                doc_type = read_string(f, child)
            elif child.element_id == EBML_READ_VERSION and read_uint(f, child) > 1:
                raise NotMatroskaError("EBML read version is above 1", child.offset)
    except DamagedMKVError as err:
        raise NotMatroskaError(f"not a Matroska file: damaged EBML header: {err.message}", err.offset) from None
    if doc_type not in ("matroska", "webm"):
        raise NotMatroskaError(f"not a Matroska file: EBML document type is {doc_type!r}", 0)
    return h.stop


def _cluster_end(f: EBMLFile, h: ElementHeader, limit: int) -> int:
    """Where a Cluster of unknown size ends: at the first element that cannot be its child."""
    pos = h.data
    while pos < limit:
        child = read_header(f, pos, limit)
        if child.element_id in LEVEL1:
            return pos
        if child.size is None:
            raise DamagedMKVError(f"element 0x{child.element_id:X} of unknown size inside a Cluster", pos)
        pos = min(child.stop, limit)
    return limit


def _is_m3v(mime_type: str) -> bool:
    return mime_type.strip().lower() == MIME_TYPE


def _parse_attachments(f: EBMLFile, h: ElementHeader, first_m3v: bool = False) -> list[Attachment]:
    """The attached files.  ``first_m3v``: stop at the first `.m3v` one once its mimetype and
    FileData are known (what follows its bytes, its FileUID in m3v-mux's files, is not read:
    over a URL that is a request saved)."""
    found = []
    for af in children(f, h.data, h.stop, "Attachments", DamagedAttachmentError):
        if af.element_id != ATTACHED_FILE:
            continue
        fields: dict[int, Any] = {}
        data_at: int | None = None
        data_size: int | None = None
        for child in children(f, af.data, af.stop, "AttachedFile", DamagedAttachmentError):
            if child.element_id == FILE_DATA:
                data_at, data_size = child.data, child.size
            elif child.element_id in (FILE_NAME, FILE_MIME_TYPE, FILE_DESCRIPTION):
                fields[child.element_id] = read_string(f, child)
            elif child.element_id == FILE_UID:
                fields[FILE_UID] = read_uint(f, child)
            if first_m3v and data_at is not None and _is_m3v(fields.get(FILE_MIME_TYPE, "")):
                break
        found.append(
            Attachment(
                name=fields.get(FILE_NAME, ""),
                mime_type=fields.get(FILE_MIME_TYPE, ""),
                description=fields.get(FILE_DESCRIPTION, ""),
                uid=fields.get(FILE_UID),
                offset=af.offset,
                data_offset=data_at,
                data_size=data_size,
            )
        )
        if first_m3v and data_at is not None and _is_m3v(found[-1].mime_type):
            break
    return found


def _scan(f: EBMLFile, first_m3v: bool = False) -> list[Attachment]:
    pos = _check_ebml_header(f)
    while True:  # the Segment, after any Void elements
        if pos >= f.size:
            raise NoAttachmentError("Matroska file has no Segment, so no attachments", pos)
        h = read_header(f, pos, f.size)
        if h.element_id == SEGMENT:
            break
        if h.element_id != VOID or h.size is None or h.data + h.size > f.size:
            raise DamagedMKVError(f"expected a Segment after the EBML header, found element 0x{h.element_id:X}", pos)
        pos = h.stop
    segment_end = f.size if h.size is None else min(h.stop, f.size)
    cut = None if h.size is None or h.stop <= f.size else h.offset  # a truncated file
    pos = h.data
    while pos < segment_end:
        if segment_end - pos < 2:
            break  # a stray byte at the end of a cut-off file
        try:
            child = read_header(f, pos, segment_end)
        except DamagedMKVError:
            if cut is not None:
                break  # the file ends inside this header
            raise
        if child.element_id == ATTACHMENTS:
            if child.size is None:
                raise DamagedAttachmentError("Attachments element has an unknown size", pos)
            if child.stop > segment_end:
                raise DamagedAttachmentError(
                    f"Attachments element of {child.size} bytes runs past the end of the file "
                    f"({segment_end - child.data} bytes left)",
                    pos,
                )
            return _parse_attachments(f, child, first_m3v)  # at most one Attachments element
        elif child.size is None:
            if child.element_id != CLUSTER:
                raise DamagedMKVError(f"element 0x{child.element_id:X} of unknown size in the Segment", pos)
            pos = _cluster_end(f, child, segment_end)
        elif child.stop > segment_end:
            cut = pos  # this element is cut off (or its size is damaged): nothing more to read
            break
        else:
            pos = child.stop
    if cut is not None:
        raise DamagedMKVError(
            "Matroska file is cut off or damaged before any attachment: element runs past the end of the file", cut
        )
    return []


def attachments(src: Any) -> list[Attachment]:
    """Every attached file of a Matroska file (path, Path, ``"-"``, bytes or binary file)."""
    with _open(src) as source:
        return _scan(EBMLFile(source.file))


_SHA = re.compile(r"(?:^|[ ;,])sha256=([0-9a-f]{64})(?:$|[ ;,.])")
DESCRIPTION_MARK = "M3-CVC video stream (.m3v)"


def _verify(a: Attachment, data: bytes) -> None:
    """Check the attached bytes against the SHA-256 recorded for them: m3v-mux makes the FileUID
    the first 8 bytes of it (its description says it wrote the file), and a ``sha256=<hex>`` in
    the description gives all of it.  A file from another muxer records neither: the stream's
    own chunk CRCs decide."""
    digest = hashlib.sha256(data).digest()
    m = _SHA.search(a.description)
    if m and m.group(1) != digest.hex():
        raise DamagedAttachmentError(
            f"attachment {a.name!r} is damaged: its SHA-256 differs from the one in its description", a.data_offset
        )
    uid_matches = a.uid == (int.from_bytes(digest[:8], "big") or 1)
    if m or uid_matches:
        return  # the recorded digest matches
    if "sha256=" in a.description or a.description.startswith(DESCRIPTION_MARK):
        raise DamagedAttachmentError(
            f"attachment {a.name!r} is damaged: its SHA-256 does not match its FileUID", a.data_offset
        )
    from .reader import Reader

    errors: list[M3VError]
    try:
        with Reader(data, on_damage="skip", sniff_mkv=False) as reader:
            for _ in reader.clips():
                pass
            damage = list(reader.damage)
    except M3VError as exc:
        errors = [exc]
    else:
        if len(damage) == 1 and reader.truncated and isinstance(damage[0].error, TruncatedError):
            damage = []  # a stream cut off after its last complete chunk is valid (spec §9)
        errors = [d.error for d in damage]
    if errors:
        first = errors[0]
        where = f" at byte {first.offset} of the stream" if first.offset is not None else ""
        raise DamagedAttachmentError(
            f"attachment {a.name!r} holds a damaged .m3v stream: {first.message}{where}",
            (a.data_offset or 0) + (first.offset or 0),
        )


def _m3v_attachment(f: EBMLFile, first_m3v: bool = False) -> Attachment:
    """The attachment of type application/x-m3v (the first), with FileData; MKVError otherwise."""
    found = _scan(f, first_m3v)
    if not found:
        raise NoAttachmentError("Matroska file has no attachments")
    matches = [a for a in found if _is_m3v(a.mime_type)]
    if not matches:
        names = ", ".join(a.describe() for a in found[:5]) + (", ..." if len(found) > 5 else "")
        raise WrongMimeTypeError(
            f"no attachment of type {MIME_TYPE} ({len(found)} attachment{'s' if len(found) != 1 else ''}: {names})",
            found[0].offset,
        )
    a = matches[0]
    if a.data_offset is None:
        raise DamagedAttachmentError(f"attachment {a.name!r} has no FileData", a.offset)
    if a.data_size is None:
        raise DamagedAttachmentError(f"attachment {a.name!r} is cut off: its FileData has an unknown size", a.offset)
    return a


def m3v_attachment(src: Any) -> Attachment:
    """Where the `.m3v` stream attached to a Matroska file lies (its ``data_offset`` and
    ``data_size``), read from the file's elements before the attachment alone: no byte of the
    stream is read or checked (:func:`extract_m3v` does both).  The remote opener reads the
    stream inside through it, in ranges."""
    with _open(src) as source:
        return _m3v_attachment(EBMLFile(source.file), first_m3v=True)


def extract_m3v(src: Any, *, verify: bool = True) -> bytes:
    """The `.m3v` stream attached to a Matroska file (path, Path, ``"-"``, bytes or binary
    file), byte for byte.  Raises an :class:`MKVError` subclass naming the problem.

    The stream must start with the `.m3v` signature.  With ``verify`` (the default) its bytes
    must also match the SHA-256 m3v-mux records or, for a file from another muxer, pass the
    stream's own CRC checks; ``verify=False`` returns a damaged stream for recovery."""
    with _open(src) as source:
        f = EBMLFile(source.file)
        a = _m3v_attachment(f)
        data = f.read(a.data_offset or 0, a.data_size or 0)  # its size was checked against the file
        if len(data) != a.data_size:
            raise DamagedAttachmentError(f"attachment {a.name!r} is cut off", a.data_offset)
        if data[: len(SIGNATURE)] != SIGNATURE:
            raise NotM3VAttachmentError(
                f"attachment {a.name!r} of type {MIME_TYPE} is not an .m3v stream (no .m3v signature)", a.data_offset
            )
        if verify:
            _verify(a, data)
        return data


# ------------------------------------------------------------------------------ the subtitle track

#: The most bytes one subtitle frame may inflate to (a zlib bomb is refused, not allocated).
MAX_SUBTITLE_BYTES = 1 << 20


@dataclass(frozen=True)
class Subtitle:
    """One event of a text subtitle track: start and duration in the file's timestamp units
    (milliseconds in m3v-mux's files), and its text."""

    start: int
    duration: int | None
    text: str


@dataclass
class _Track:
    number: int
    codec_id: str = ""
    encodings: list[tuple[int, int, int, bytes]] = field(default_factory=list)  # order, type, algo, settings


def _parse_track(f: EBMLFile, h: ElementHeader) -> _Track:
    track = _Track(0)
    for child in children(f, h.data, h.stop, "TrackEntry"):
        if child.element_id == TRACK_NUMBER:
            track.number = read_uint(f, child)
        elif child.element_id == CODEC_ID:
            track.codec_id = read_string(f, child)
        elif child.element_id == CONTENT_ENCODINGS:
            for enc in children(f, child.data, child.stop, "ContentEncodings"):
                if enc.element_id != CONTENT_ENCODING:
                    continue
                order, kind, algo, settings = 0, 0, 0, b""
                for field_ in children(f, enc.data, enc.stop, "ContentEncoding"):
                    if field_.element_id == CONTENT_ENCODING_ORDER:
                        order = read_uint(f, field_)
                    elif field_.element_id == CONTENT_ENCODING_TYPE:
                        kind = read_uint(f, field_)
                    elif field_.element_id == CONTENT_COMPRESSION:
                        for comp in children(f, field_.data, field_.stop, "ContentCompression"):
                            if comp.element_id == CONTENT_COMP_ALGO:
                                algo = read_uint(f, comp)
                            elif comp.element_id == CONTENT_COMP_SETTINGS:
                                settings = f.read(comp.data, comp.known_size)
                track.encodings.append((order, kind, algo, settings))
    return track


def _decode_frame(track: _Track, data: bytes, offset: int) -> bytes:
    """A frame's bytes with the track's content encodings undone (highest order first)."""
    for _, kind, algo, settings in sorted(track.encodings, reverse=True):
        if kind != 0:
            raise DamagedMKVError(f"track {track.number} is encrypted", offset)
        if algo == 0:  # zlib
            inflater = zlib.decompressobj()
            try:
                out = inflater.decompress(data, MAX_SUBTITLE_BYTES)
            except zlib.error as err:
                raise DamagedMKVError(
                    f"zlib-compressed frame of track {track.number} is damaged: {err}", offset
                ) from None
            if inflater.unconsumed_tail:
                raise DamagedMKVError(f"frame of track {track.number} inflates past {MAX_SUBTITLE_BYTES} bytes", offset)
            if not inflater.eof:
                raise DamagedMKVError(f"zlib-compressed frame of track {track.number} is cut off", offset)
            data = out
        elif algo == 3:  # header stripping: the removed bytes go back in front
            data = settings + data
        else:
            raise DamagedMKVError(f"track {track.number} uses content compression {algo}, which is not read", offset)
    return data


def _block(f: EBMLFile, h: ElementHeader) -> tuple[int, int, bytes]:
    """(track number, relative timestamp, frame) of a Block or SimpleBlock (not laced)."""
    head = f.read(h.data, min(12, h.known_size))
    if not head or head[0] == 0:
        raise DamagedMKVError("malformed block header", h.offset)
    n = 8 - head[0].bit_length() + 1
    if len(head) < n + 3:
        raise DamagedMKVError("block ends inside its header", h.offset)
    track = int.from_bytes(head[:n], "big") & ((1 << (7 * n)) - 1)
    (relative,) = struct.unpack_from(">h", head, n)
    if head[n + 2] & 0x06:
        raise DamagedMKVError(f"laced block of track {track}: a text track is not laced", h.offset)
    return track, relative, f.read(h.data + n + 3, h.known_size - n - 3)


def subtitles(src: Any) -> list[Subtitle]:
    """The events of the first ``S_TEXT/UTF8`` track of a Matroska file (path, Path, ``"-"``,
    bytes or binary file), its content encodings undone: zlib compression, as m3v-mux writes
    it, and header stripping.  An empty list when the file has no such track."""
    with _open(src) as source:
        f = EBMLFile(source.file)
        pos = _check_ebml_header(f)
        h = read_header(f, pos, f.size)
        while h.element_id == VOID and h.size is not None:
            h = read_header(f, h.stop, f.size)
        if h.element_id != SEGMENT:
            raise DamagedMKVError(f"expected a Segment after the EBML header, found element 0x{h.element_id:X}", pos)
        end = f.size if h.size is None else min(h.stop, f.size)
        track: _Track | None = None
        events: list[Subtitle] = []
        pos = h.data
        while pos + 2 <= end:
            child = read_header(f, pos, end)
            stop = _cluster_end(f, child, end) if child.size is None and child.element_id == CLUSTER else child.stop
            if child.element_id == TRACKS and track is None:
                for entry in children(f, child.data, child.stop, "Tracks"):
                    if entry.element_id == TRACK_ENTRY:
                        candidate = _parse_track(f, entry)
                        if candidate.codec_id == "S_TEXT/UTF8" and track is None:
                            track = candidate
            elif child.element_id == CLUSTER and track is not None:
                events += _cluster_events(f, child.data, min(stop, end), track)
            pos = stop
        return events


def _cluster_events(f: EBMLFile, start: int, end: int, track: _Track) -> list[Subtitle]:
    base = 0
    events = []
    for child in children(f, start, end, "Cluster"):
        if child.element_id == TIMESTAMP:
            base = read_uint(f, child)
            continue
        block, duration = None, None
        if child.element_id == SIMPLE_BLOCK:
            block = child
        elif child.element_id == BLOCK_GROUP:
            for part in children(f, child.data, child.stop, "BlockGroup"):
                if part.element_id == BLOCK:
                    block = part
                elif part.element_id == BLOCK_DURATION:
                    duration = read_uint(f, part)
        if block is None:
            continue
        number, relative, frame = _block(f, block)
        if number == track.number:
            text = _decode_frame(track, frame, block.offset).decode("utf-8", "replace")
            events.append(Subtitle(base + relative, duration, text))
    return events
