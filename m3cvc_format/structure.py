"""The raw structure of a stream, field by field, as plain data (for tools and for
checking other parsers, such as the one generated from spec/m3v.ksy, against this one)."""

from __future__ import annotations

from typing import Any

import construct

from . import syntax
from .constants import ANCILLARY_CHUNK_BIT, PRMT_VERSION_MINOR, SIGNATURE, ChunkType
from .errors import MalformedError, TruncatedError
from .prompts import parse_prompts
from .reader import Reader

__all__ = ["describe"]


def _head(payload: bytes) -> dict[str, Any]:
    v = syntax.HeadPayload.parse(payload)
    return {
        "version_major": v.version_major,
        "version_minor": v.version_minor,
        "width": v.width,
        "height": v.height,
        "fps_num": v.fps_num,
        "fps_den": v.fps_den,
        "time_base_num": v.time_base_num,
        "time_base_den": v.time_base_den,
        "frame_count": v.frame_count,
        "pack_id": bytes(v.pack_id).decode("ascii", "replace"),
        "pack_hash": bytes(v.pack_hash).hex(),
        "grid_h": v.grid_h,
        "grid_w": v.grid_w,
        "vocab_size": v.vocab_size,
        "text_codec": v.text_codec,
        "default_mode": v.default_mode,
        "stream_seed": v.stream_seed,
        "prior": list(v.prior),
        "metadata_length": len(v.metadata),
        "extension_length": len(v.extension),
    }


def _clip(payload: bytes) -> dict[str, Any]:
    v = syntax.ClipPayload.parse(payload)
    f = v.fields
    return {
        "clip_index": f.clip_index,
        "first_frame": f.first_frame,
        "frame_count": f.frame_count,
        "flags": f.flags,
        "seed": f.seed,
        "sub_chunks": [{"kind": s.kind, "length": len(s.body)} for s in v.sub_chunks],
    }


def _index(payload: bytes) -> dict[str, Any]:
    v = syntax.IndexPayload.parse(payload)
    return {
        "clip_count": v.clip_count,
        "frame_end": v.frame_end,
        "entries": [{"offset_delta": e.offset_delta, "frame_delta": e.frame_delta} for e in v.entries],
    }


def _tail(payload: bytes) -> dict[str, Any]:
    v = syntax.TailPayload.parse(payload)
    return {"index_offset": v.index_offset, "index_size": v.index_size}


_DETAIL = {
    ChunkType.HEAD: ("head", _head),
    ChunkType.CLIP: ("clip", _clip),
    ChunkType.INDX: ("index", _index),
    ChunkType.TAIL: ("tail", _tail),
}


def describe(src: Any) -> dict[str, Any]:
    """Every chunk of the stream with its fields, parsed with the construct syntax; a PRMT
    chunk (in a stream of version 1.2 or later, spec §4.3) with ``prompts``, its map.

    A stream that ends inside a chunk is described up to the last complete
    chunk, with ``truncated_at`` giving the offset of the incomplete one.
    """
    with Reader(src) as reader:
        out: dict[str, Any] = {"signature": SIGNATURE.hex(), "chunks": [], "truncated_at": None}
        head_size = reader.header_end - len(SIGNATURE)
        raw_head = reader._src.peek(len(SIGNATURE), head_size)
        out["chunks"].append(_entry(len(SIGNATURE), raw_head))
        prompts_defined = reader.header.version[1] >= PRMT_VERSION_MINOR
        try:
            for chunk in reader.chunks():
                raw = reader._src.peek(chunk.offset, chunk.size)
                entry = _entry(chunk.offset, raw)
                if prompts_defined and chunk.chunk_type == ChunkType.PRMT:
                    entry["prompts"] = parse_prompts(chunk.payload, chunk.offset)
                out["chunks"].append(entry)
        except TruncatedError as err:
            out["truncated_at"] = err.offset
        return out


def _entry(offset: int, raw: bytes) -> dict[str, Any]:
    chunk = syntax.Chunk.parse(raw)
    body = chunk.body.value
    entry: dict[str, Any] = {
        "offset": offset,
        "type": body.chunk_type,
        "ancillary": bool(body.chunk_type & ANCILLARY_CHUNK_BIT),
        "length": body.chunk_length,
        "crc": chunk.crc,
    }
    detail = _DETAIL.get(body.chunk_type)
    if detail:
        try:
            entry[detail[0]] = detail[1](bytes(body.payload))
        except construct.ConstructError as err:  # e.g. a CLIP whose type byte became HEAD's
            reason = str(err).splitlines()[-1]
            raise MalformedError(f"{detail[0].upper()} payload does not parse: {reason}", offset) from None
    return entry
