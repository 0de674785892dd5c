"""Chunk payloads to and from values: the bridge between :mod:`syntax` and :mod:`model`.

Building goes through the construct definitions.  Parsing HEAD, INDX and TAIL
does too; CLIP payloads are parsed by a hand-written loop because a reader
meets thousands of them (construct takes ~80 us a clip, this ~5 us); tests
check that both parsers agree.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Sequence
from fractions import Fraction
from typing import Any

import construct as c

from . import syntax
from .constants import (
    ANCILLARY_SUBCHUNK_BIT,
    BASE_VERSION_MINOR,
    CLIP_FLAGS_KNOWN,
    FLAG_PREDICTION,
    FLAG_SEED_PRESENT,
    MAX_CHUNK_LENGTH,
    MAX_GRID_SYMBOLS,
    MAX_METADATA_BYTES,
    PAD_SUBCHUNK_KIND,
    SUBCHUNK_KIND_BITS,
    TAIL_PAYLOAD_SIZE,
    VERSION_MAJOR,
    VERSION_MINOR,
    ChunkType,
    IndexMapCoder,
    Mode,
    SubChunkKind,
)
from .crc import crc32c
from .errors import (
    LimitError,
    M3VError,
    MalformedError,
    UnknownChunkError,
    UnsupportedVersionError,
)
from .model import (
    Clip,
    ClipRecord,
    Header,
    IndexEntry,
    IndexMapPayload,
    check_work_limit,
    min_clip_chunk_size,
    pack_metadata,
    unpack_metadata,
)

__all__ = [
    "build_clip",
    "build_head",
    "build_index",
    "build_tail",
    "frame_chunk",
    "pad_clip_payload",
    "parse_clip",
    "parse_head",
    "parse_index",
    "parse_tail",
]

_KIND_MASK = (1 << SUBCHUNK_KIND_BITS) - 1
_INDEX_MAP = SubChunkKind.INDEX_MAP.value


def frame_chunk(chunk_type: int, payload: bytes) -> bytes:
    """type, length, payload and the CRC-32C of all three."""
    if len(payload) > MAX_CHUNK_LENGTH:
        raise LimitError(f"chunk payload of {len(payload)} bytes exceeds {MAX_CHUNK_LENGTH}")
    body = bytes([chunk_type]) + syntax.encode_leb128(len(payload)) + payload
    return body + struct.pack("<I", crc32c(body))


def _construct_error(err: Exception, what: str, offset: int) -> M3VError:
    if isinstance(err, c.StreamError):
        return MalformedError(f"{what} payload ends inside a field", offset)
    if isinstance(err, c.TerminatedError):
        return MalformedError(f"{what} payload has bytes after its last field", offset)
    return MalformedError(f"{what} payload is malformed: {err}", offset)


# ---------------------------------------------------------------- HEAD


def build_head(header: Header, minor: int = BASE_VERSION_MINOR) -> bytes:
    """The HEAD payload for ``header``, with ``version_minor`` = ``minor``: the lowest minor
    version that covers what the stream uses (spec/m3v.md §10), 1 unless it has a PRMT chunk."""
    if not BASE_VERSION_MINOR <= minor <= VERSION_MINOR:
        raise ValueError(f"a writer of version 1.{VERSION_MINOR} cannot write version 1.{minor}")
    metadata = pack_metadata(header.metadata)
    if len(metadata) > MAX_METADATA_BYTES:
        raise LimitError(f"metadata of {len(metadata)} bytes exceeds {MAX_METADATA_BYTES}")
    return _build(
        syntax.HeadPayload,
        dict(
            version_major=VERSION_MAJOR,
            version_minor=minor,
            width=header.width,
            height=header.height,
            fps_num=header.fps.numerator,
            fps_den=header.fps.denominator,
            time_base_num=header.time_base.numerator,
            time_base_den=header.time_base.denominator,
            frame_count=header.frame_count,
            pack_id=header.pack_id.encode("ascii"),
            pack_hash=header.pack_hash,
            grid_h=header.grid_h,
            grid_w=header.grid_w,
            vocab_size=header.vocab_size,
            text_codec=int(header.text_codec),
            default_mode=int(header.default_mode),
            stream_seed=header.stream_seed,
            prior=list(header.prior),
            metadata=metadata,
            extension=b"",
        ),
    )


def parse_head(payload: bytes, offset: int) -> Header:
    """Parse a HEAD payload located at byte ``offset`` (for error messages)."""
    if len(payload) < 2:
        raise MalformedError("HEAD payload is shorter than its version fields", offset)
    major, minor = payload[0], payload[1]
    if major != VERSION_MAJOR:
        raise UnsupportedVersionError(
            f"stream version {major}.{minor} is not supported (this reader implements {VERSION_MAJOR}.x)",
            offset,
        )
    try:
        v = syntax.HeadPayload.parse(payload)
    except c.ConstructError as err:
        raise _construct_error(err, "HEAD", offset) from None
    if v.extension and minor <= VERSION_MINOR:
        raise MalformedError(
            f"HEAD has {len(v.extension)} bytes after its last field, which version {major}.{minor} does not define",
            offset,
        )
    if len(v.metadata) > MAX_METADATA_BYTES:
        raise LimitError("HEAD metadata exceeds 1 MiB", offset)
    try:
        pack_id = bytes(v.pack_id).decode("ascii")
    except UnicodeDecodeError:
        raise MalformedError("pack id is not ASCII", offset) from None
    try:
        return Header(
            width=v.width,
            height=v.height,
            fps=Fraction(v.fps_num, v.fps_den) if v.fps_den else Fraction(0),
            time_base=Fraction(v.time_base_num, v.time_base_den) if v.time_base_den else Fraction(0),
            frame_count=v.frame_count,
            pack_id=pack_id,
            pack_hash=bytes(v.pack_hash),
            grid_h=v.grid_h,
            grid_w=v.grid_w,
            vocab_size=v.vocab_size,
            text_codec=v.text_codec,
            default_mode=v.default_mode,
            stream_seed=v.stream_seed,
            prior=tuple(v.prior),
            metadata=unpack_metadata(bytes(v.metadata)),
            version=(major, minor),
            extension=bytes(v.extension),
        )
    except M3VError as err:
        raise err.at(offset) from None


# ---------------------------------------------------------------- CLIP


def _sub_chunk(kind: int, body: bytes) -> bytes:
    return syntax.encode_leb128(len(body) << SUBCHUNK_KIND_BITS | kind) + body


def _framed_size(payload_length: int) -> int:
    """Bytes of a chunk with a payload of ``payload_length`` bytes: type, length, payload, CRC."""
    return 1 + len(syntax.encode_leb128(payload_length)) + payload_length + 4


def pad_clip_payload(payload: bytes, grid_cells: int) -> bytes:
    """``payload`` with a PAD sub-chunk appended when its CLIP chunk would be smaller than the
    work limit allows for a map of ``grid_cells`` cells (spec/m3v.md §11), of the least size that
    meets it; unchanged otherwise (real maps code at 1 to 8 bits a cell, far above the limit's
    half bit, so only maps that code in almost nothing, a constant map or a full copy of the
    reference, are padded)."""
    if grid_cells > MAX_GRID_SYMBOLS:  # a record copied from a damaged stream: no padding for it
        raise LimitError(f"an index map of {grid_cells} cells exceeds the limit of {MAX_GRID_SYMBOLS}")
    need = min_clip_chunk_size(grid_cells)
    size = _framed_size(len(payload))
    if size >= need:
        return payload
    # Each body byte adds one byte, the tag and the chunk's length field 1-5 more: start below
    # the least body that can do and take the first that does (the size only grows with it).
    body = max(0, need - size - 6)
    while True:
        padded = payload + _sub_chunk(PAD_SUBCHUNK_KIND, bytes(body))
        if _framed_size(len(padded)) >= need:
            return padded
        body += 1


def _assemble_clip(
    fields: dict[str, Any],
    texts_coded: Sequence[bytes],
    map_body: bytes,
    ancillary: Iterable[tuple[int, bytes]],
    grid_cells: int,
) -> bytes:
    """A CLIP payload from its parts: the fixed fields, the coded keyframe and clip texts (an
    empty one is left out: an absent text sub-chunk means the empty text), the index-map body,
    then the ancillary sub-chunks, then PAD where the work limit needs it."""
    parts = [syntax.ClipFields.build(fields)]
    for kind, coded in zip((SubChunkKind.KEYFRAME_TEXT, SubChunkKind.CLIP_TEXT), texts_coded):
        if coded:
            parts.append(_sub_chunk(kind, bytes(coded)))
    parts.append(_sub_chunk(SubChunkKind.INDEX_MAP, map_body))
    for anc_kind, anc_body in ancillary:
        if not anc_kind & ANCILLARY_SUBCHUNK_BIT or not 0 <= anc_kind <= _KIND_MASK:
            raise MalformedError(f"sub-chunk kind {anc_kind} is not an ancillary kind (8-15)")
        parts.append(_sub_chunk(anc_kind, anc_body))
    return pad_clip_payload(b"".join(parts), grid_cells)


def _map_body(coder: int, grid_h: int, grid_w: int, coded: bytes) -> bytes:
    """An index-map sub-chunk body: coder, rows and columns (minimal LEB128), coded bytes."""
    return bytes([int(coder)]) + syntax.encode_leb128(grid_h) + syntax.encode_leb128(grid_w) + bytes(coded)


def _fields(index: int, first_frame: int, frame_count: int, flags: int, seed: int | None) -> dict[str, Any]:
    flags = (flags & ~FLAG_SEED_PRESENT) | (FLAG_SEED_PRESENT if seed is not None else 0)
    return dict(clip_index=index, first_frame=first_frame, frame_count=frame_count, flags=flags, seed=seed)


def build_clip(clip: Clip, header: Header, coder: IndexMapCoder, reference: Any = None) -> tuple[bytes, int, int]:
    """CLIP payload for ``clip``; also returns its text and index-map body sizes.  TEMPORAL
    needs ``reference``, the index map of the previous clip."""
    from .indexmap import encode_index_map
    from .textcodec import encode_text

    texts = [encode_text(text, header.text_codec) for text in (clip.keyframe_text, clip.clip_text)]
    if clip.index_map is None:
        raise MalformedError(f"clip {clip.index} has no index map")
    import numpy as np

    index_map = np.asarray(clip.index_map)
    if index_map.shape != (header.grid_h, header.grid_w):
        raise MalformedError(
            f"clip {clip.index} index map is {index_map.shape}, the header's grid is {header.grid_h}x{header.grid_w}"
        )
    if coder == IndexMapCoder.TEMPORAL and clip.index == 0:
        raise MalformedError("clip 0 cannot use the TEMPORAL coder: there is no previous clip")
    coded = encode_index_map(index_map, header.vocab_size, coder, header.prior or None, reference)
    body = _map_body(coder, header.grid_h, header.grid_w, coded)
    flags = FLAG_PREDICTION if clip.mode == Mode.PREDICTION else 0
    fields = _fields(clip.index, clip.first_frame, clip.frame_count, flags, clip.seed)
    payload = _assemble_clip(fields, texts, body, clip.ancillary, header.grid_h * header.grid_w)
    return payload, sum(map(len, texts)), len(body)


def build_coded_clip(record: ClipRecord) -> tuple[bytes, int, int]:
    """CLIP payload for a clip whose payloads are already coded (a :class:`ClipRecord`, as read
    or with its texts replaced); also returns its text and index-map body sizes.  The texts and
    the index map are copied as given, so a map read from a stream is written back byte for
    byte.  Ancillary sub-chunks follow the index map."""
    if record.index_map is None:
        raise MalformedError(f"clip {record.index} has no index map")
    m = record.index_map
    body = _map_body(m.coder, m.grid_h, m.grid_w, m.data)
    fields = _fields(record.index, record.first_frame, record.frame_count, record.flags, record.seed)
    texts = (record.keyframe_text_coded, record.clip_text_coded)
    payload = _assemble_clip(fields, texts, body, record.ancillary, m.grid_h * m.grid_w)
    return payload, record.text_bytes, len(body)


def _build(construct: Any, value: Any) -> bytes:
    """``construct.build(value)``, typed."""
    data: bytes = construct.build(value)
    return data


def _read_leb128_fast(data: bytes, pos: int, max_bytes: int = 9) -> tuple[int, int]:
    byte = data[pos]  # most fields fit one byte: skip the general loop for them
    return (byte, pos + 1) if byte < 0x80 else syntax.read_leb128(data, pos, max_bytes)


def parse_clip(payload: bytes, offset: int, size: int, minor: int = VERSION_MINOR) -> ClipRecord:
    """Parse a CLIP payload whose chunk starts at ``offset`` and spans ``size`` bytes.

    ``minor`` is the stream's minor version: flag bits and sub-chunk kinds that
    this reader does not know are errors in a stream of its own version or
    older, and ignored in a newer one.
    """
    read = _read_leb128_fast
    pos = 0
    try:
        clip_index, pos = read(payload, pos)
        first_frame, pos = read(payload, pos)
        frame_count, pos = read(payload, pos)
        flags = payload[pos]
        pos += 1
        seed = None
        if flags & FLAG_SEED_PRESENT:
            seed, pos = read(payload, pos, 10)
        if seed is not None and seed >> 64:
            raise ValueError("clip seed exceeds 64 bits")
    except IndexError:
        raise MalformedError("CLIP payload ends inside its fields", offset) from None
    except ValueError as err:
        raise MalformedError(f"CLIP field is malformed: {err}", offset) from None
    if flags & ~CLIP_FLAGS_KNOWN and minor <= VERSION_MINOR:
        raise MalformedError(f"clip {clip_index} sets reserved flag bits 0x{flags & ~CLIP_FLAGS_KNOWN:02x}", offset)
    if frame_count == 0:
        raise MalformedError(f"clip {clip_index} has no frames", offset)

    texts = [b"", b""]  # by kind: keyframe text, clip text (plain ints: enums cost here)
    index_map = None
    index_map_size = 0
    ancillary = []
    last_kind = -1
    end = len(payload)
    while pos < end:
        b0 = payload[pos]
        if b0 < 0x80:
            tag, body_start = b0, pos + 1
        elif pos + 1 < end and 0 < payload[pos + 1] < 0x80:  # the usual 2-byte tag
            tag, body_start = (b0 & 0x7F) | payload[pos + 1] << 7, pos + 2
        else:
            try:
                tag, body_start = read(payload, pos)
            except (IndexError, ValueError):
                raise MalformedError("sub-chunk tag is malformed", offset) from None
        kind, length = tag & _KIND_MASK, tag >> SUBCHUNK_KIND_BITS
        if body_start + length > end:
            raise MalformedError(f"sub-chunk of {length} bytes runs past the end of clip {clip_index}", offset)
        body = payload[body_start : body_start + length]
        pos = body_start + length
        if kind & ANCILLARY_SUBCHUNK_BIT:
            ancillary.append((kind, bytes(body)))
            continue
        if kind > _INDEX_MAP:
            if minor > VERSION_MINOR:
                raise UnknownChunkError(f"clip {clip_index} needs critical sub-chunk kind {kind}", offset)
            raise UnknownChunkError(f"clip {clip_index} has reserved critical sub-chunk kind {kind}", offset)
        if kind <= last_kind:
            raise MalformedError(f"clip {clip_index} repeats or reorders sub-chunk kind {kind}", offset)
        last_kind = kind
        if kind == _INDEX_MAP:
            try:
                coder = body[0]
                grid_h, p = read(body, 1)
                grid_w, p = read(body, p)
            except (IndexError, ValueError):
                raise MalformedError(f"index map of clip {clip_index} has a malformed header", offset) from None
            if coder == IndexMapCoder.TEMPORAL and (clip_index == 0 or minor < 1):
                raise MalformedError(
                    f"clip {clip_index} uses the TEMPORAL coder, which "
                    + (
                        "clip 0 cannot use (it has no previous clip)"
                        if clip_index == 0
                        else "version 1.0 does not define"
                    ),
                    offset,
                )
            # The work limit (§11), from the payload's own length: a real chunk's size is its
            # framed payload (chunk_length is minimal), whatever ``size`` the caller knows.
            check_work_limit(clip_index, grid_h * grid_w, _framed_size(len(payload)), offset)
            index_map = IndexMapPayload(coder, grid_h, grid_w, bytes(body[p:]))
            index_map_size = length
        else:
            if length == 0:
                raise MalformedError(f"clip {clip_index} has an empty text sub-chunk", offset)
            texts[kind] = body
    if index_map is None:
        raise MalformedError(f"clip {clip_index} has no index map", offset)
    return ClipRecord(
        offset=offset,
        size=size,
        index=clip_index,
        first_frame=first_frame,
        frame_count=frame_count,
        flags=flags,
        seed=seed,
        keyframe_text_coded=texts[SubChunkKind.KEYFRAME_TEXT.value],
        clip_text_coded=texts[SubChunkKind.CLIP_TEXT.value],
        index_map=index_map,
        ancillary=tuple(ancillary),
        index_map_body_size=index_map_size,
    )


# ---------------------------------------------------------------- INDX and TAIL


def build_index(entries: list[IndexEntry]) -> bytes:
    deltas = []
    prev_offset = prev_frame = 0
    for e in entries:
        deltas.append(dict(offset_delta=e.offset - prev_offset, frame_delta=e.first_frame - prev_frame))
        prev_offset, prev_frame = e.offset, e.first_frame
    frame_end = entries[-1].first_frame + entries[-1].frame_count if entries else 0
    return _build(syntax.IndexPayload, dict(clip_count=len(entries), frame_end=frame_end, entries=deltas))


def parse_index(payload: bytes, offset: int, clips_end: int) -> list[IndexEntry]:
    """Parse INDX; ``clips_end`` is the offset of the INDX chunk (every clip lies before it)."""
    read = _read_leb128_fast
    try:
        count, pos = read(payload, 0)
        frame_end, pos = read(payload, pos)
        # Each entry takes at least two bytes: refuse counts the payload cannot hold
        # before building anything of that size.
        if count * 2 > len(payload) - pos:
            raise MalformedError(f"INDX claims {count} clips in {len(payload)} bytes", offset)
        offsets = []
        frames = []
        cur_offset = cur_frame = 0
        for i in range(count):
            d_off, pos = read(payload, pos)
            d_frame, pos = read(payload, pos)
            if i and (d_off == 0 or d_frame == 0):
                raise MalformedError(f"INDX entry {i} does not advance", offset)
            cur_offset += d_off
            cur_frame += d_frame
            offsets.append(cur_offset)
            frames.append(cur_frame)
    except IndexError:
        raise MalformedError("INDX payload ends inside an entry", offset) from None
    except ValueError as err:
        raise MalformedError(f"INDX is malformed: {err}", offset) from None
    if pos != len(payload):
        raise MalformedError("INDX payload has bytes after its last entry", offset)
    if count and (offsets[-1] >= clips_end or frames[-1] >= frame_end):
        raise MalformedError("INDX points past the clips it indexes", offset)
    if count and frames[0] != 0:
        raise MalformedError("INDX does not start at frame 0", offset)
    bounds = frames[1:] + [frame_end]
    return [
        IndexEntry(clip_index=i, offset=offsets[i], first_frame=frames[i], frame_count=bounds[i] - frames[i])
        for i in range(count)
    ]


def build_tail(index_offset: int, index_size: int) -> bytes:
    return _build(syntax.TailPayload, dict(index_offset=index_offset, index_size=index_size))


def parse_tail(payload: bytes, offset: int) -> tuple[int, int]:
    if len(payload) != TAIL_PAYLOAD_SIZE:
        raise MalformedError(f"TAIL payload must be {TAIL_PAYLOAD_SIZE} bytes", offset)
    v = syntax.TailPayload.parse(payload)
    return v.index_offset, v.index_size


CHUNK_NAMES = {t.value: t.name for t in ChunkType}
