"""The `.m3v` syntax in construct, one definition per syntax table of spec/m3v.md.

Only syntax lives here: value ranges and cross-field rules (the spec's
"Semantics" sections) are checked in :mod:`m3cvc_format.model`.
"""

from __future__ import annotations

from typing import Any

import construct as c

from .constants import (
    MAX_LENGTH_VARINT_BYTES,
    MAX_VARINT_BYTES,
    PACK_HASH_SIZE,
    SUBCHUNK_KIND_BITS,
)
from .crc import crc32c

__all__ = [
    "Chunk",
    "ClipFields",
    "ClipPayload",
    "HeadPayload",
    "HeadVersion",
    "IndexPayload",
    "Leb128",
    "Length",
    "SubChunk",
    "TailPayload",
    "VarUInt",
    "encode_leb128",
    "read_leb128",
]


def encode_leb128(value: int) -> bytes:
    """Unsigned LEB128: 7 bits a byte, least significant group first, bit 7 = more follows."""
    if value < 0:
        raise ValueError("LEB128 values are unsigned")
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def read_leb128(data: bytes | bytearray | memoryview, pos: int, max_bytes: int = MAX_VARINT_BYTES) -> tuple[int, int]:
    """Decode a minimal LEB128 at ``data[pos:]``; return (value, position after it).

    Raises IndexError when the data ends inside the number and ValueError when
    it is longer than ``max_bytes`` or not minimal (a final 0x00 group after the first).
    """
    value = 0
    shift = 0
    for i in range(max_bytes):
        byte = data[pos + i]
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            if byte == 0 and i:
                raise ValueError("LEB128 number is not minimal")
            return value, pos + i + 1
        shift += 7
    raise ValueError(f"LEB128 number longer than {max_bytes} bytes")


class Leb128(c.Construct):  # type: ignore[misc]  # construct ships no type information
    """Minimal unsigned LEB128 of at most ``max_bytes`` bytes (spec: descriptor ``leb128``)."""

    def __init__(self, max_bytes: int = MAX_VARINT_BYTES):
        super().__init__()
        self.max_bytes = max_bytes

    def _parse(self, stream: Any, context: Any, path: str) -> int:
        raw = bytearray()
        for _ in range(self.max_bytes):
            byte = c.stream_read(stream, 1, path)[0]
            raw.append(byte)
            if not byte & 0x80:
                break
        try:
            value, _ = read_leb128(raw, 0, self.max_bytes)
        except (ValueError, IndexError) as err:
            raise c.ValidationError(str(err), path=path) from None
        return value

    def _build(self, obj: Any, stream: Any, context: Any, path: str) -> int:
        if not isinstance(obj, int) or obj < 0:
            raise c.ValidationError(f"LEB128 needs a non-negative int, got {obj!r}", path=path)
        data = encode_leb128(obj)
        if len(data) > self.max_bytes:
            raise c.ValidationError(f"{obj} needs more than {self.max_bytes} LEB128 bytes", path=path)
        c.stream_write(stream, data, len(data), path)
        return obj

    def _sizeof(self, context: Any, path: str) -> int:
        raise c.SizeofError("LEB128 has no fixed size", path=path)


#: Any unsigned field (at most 9 bytes: values below 2**63).
VarUInt = Leb128(MAX_VARINT_BYTES)
#: Chunk lengths (at most 4 bytes: values below 2**28).
Length = Leb128(MAX_LENGTH_VARINT_BYTES)

#: chunk := chunk_type u8, chunk_length leb128(4), payload, crc u32le over all three.
Chunk = c.Struct(
    "body"
    / c.RawCopy(
        c.Struct(
            "chunk_type" / c.Int8ub,
            "chunk_length" / Length,
            "payload" / c.Bytes(c.this.chunk_length),
        )
    ),
    "crc" / c.Checksum(c.Int32ul, lambda data: crc32c(data), c.this.body.data),
)

#: The two bytes of HEAD a reader checks before it trusts the rest of the layout.
HeadVersion = c.Struct("version_major" / c.Int8ub, "version_minor" / c.Int8ub)

HeadPayload = c.Struct(
    "version_major" / c.Int8ub,
    "version_minor" / c.Int8ub,
    "width" / VarUInt,
    "height" / VarUInt,
    "fps_num" / VarUInt,
    "fps_den" / VarUInt,
    "time_base_num" / VarUInt,
    "time_base_den" / VarUInt,
    "frame_count" / VarUInt,
    "pack_id" / c.Prefixed(VarUInt, c.GreedyBytes),
    "pack_hash" / c.Bytes(PACK_HASH_SIZE),
    "grid_h" / VarUInt,
    "grid_w" / VarUInt,
    "vocab_size" / VarUInt,
    "text_codec" / c.Int8ub,
    "default_mode" / c.Int8ub,
    "stream_seed" / c.Int64ul,
    "prior" / c.PrefixedArray(VarUInt, VarUInt),
    "metadata" / c.Prefixed(VarUInt, c.GreedyBytes),
    # Fields that a later minor version appends; a reader of this version skips them.
    "extension" / c.GreedyBytes,
)

ClipFields = c.Struct(
    "clip_index" / VarUInt,
    "first_frame" / VarUInt,
    "frame_count" / VarUInt,
    "flags" / c.Int8ub,
    "seed" / c.If(c.this.flags & 0x02, Leb128(10)),  # 64-bit values need a tenth byte
)

#: sub_chunk := tag leb128 (= body_length << 4 | kind), body.
SubChunk = c.Struct(
    "tag" / VarUInt,
    "kind" / c.Computed(c.this.tag & ((1 << SUBCHUNK_KIND_BITS) - 1)),
    "body" / c.Bytes(c.this.tag >> SUBCHUNK_KIND_BITS),
)

ClipPayload = c.Struct(
    "fields" / ClipFields,
    "sub_chunks" / c.GreedyRange(SubChunk),
    c.Terminated,
)

IndexPayload = c.Struct(
    "clip_count" / VarUInt,
    "frame_end" / VarUInt,
    "entries"
    / c.Array(
        c.this.clip_count,
        c.Struct("offset_delta" / VarUInt, "frame_delta" / VarUInt),
    ),
    c.Terminated,
)

TailPayload = c.Struct(
    "index_offset" / c.Int64ul,
    "index_size" / c.Int32ul,
    c.Terminated,
)
