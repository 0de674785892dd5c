"""Finding the `.m3v` stream attached to a Matroska file (m3v-demux, and the source opener
for an .mkv given where an .m3v is expected); see :mod:`.mkv`."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .constants import SIGNATURE
from .ebml import (
    ATTACHED_FILE,
    ATTACHMENTS,
    CLUSTER,
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


def _parse_attachments(f: EBMLFile, h: ElementHeader) -> list[Attachment]:
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
    return found


def _scan(f: EBMLFile) -> list[Attachment]:
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
            return _parse_attachments(f, child)  # at most one Attachments element
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


def extract_m3v(src: Any, *, verify: bool = True) -> bytes:
    """The `.m3v` stream attached to a Matroska file (path, Path, ``"-"``, bytes or binary
    file), byte for byte.  Raises an :class:`MKVError` subclass naming the problem.

    The stream must start with the `.m3v` signature.  With ``verify`` (the default) its bytes
    must also match the SHA-256 m3v-mux records or, for a file from another muxer, pass the
    stream's own CRC checks; ``verify=False`` returns a damaged stream for recovery."""
    with _open(src) as source:
        f = EBMLFile(source.file)
        found = _scan(f)
        if not found:
            raise NoAttachmentError("Matroska file has no attachments")
        matches = [a for a in found if a.mime_type.strip().lower() == MIME_TYPE]
        if not matches:
            names = ", ".join(a.describe() for a in found[:5]) + (", ..." if len(found) > 5 else "")
            raise WrongMimeTypeError(
                f"no attachment of type {MIME_TYPE} ({len(found)} attachment{'s' if len(found) != 1 else ''}: {names})",
                found[0].offset,
            )
        a = matches[0]
        if a.data_offset is None:
            raise DamagedAttachmentError(f"attachment {a.name!r} has no FileData", a.offset)
        data = f.read(a.data_offset, a.data_size or 0)  # its size was checked against the file
        if len(data) != a.data_size:
            raise DamagedAttachmentError(f"attachment {a.name!r} is cut off", a.data_offset)
        if data[: len(SIGNATURE)] != SIGNATURE:
            raise NotM3VAttachmentError(
                f"attachment {a.name!r} of type {MIME_TYPE} is not an .m3v stream (no .m3v signature)", a.data_offset
            )
        if verify:
            _verify(a, data)
        return data
