"""Changing the descriptions of an existing `.m3v` stream without re-encoding its video.

:func:`edit_texts` copies a stream and replaces the keyframe and clip texts of the clips it is
given.  Everything else is copied as read: the HEAD chunk byte for byte, every clip's fields,
its index-map sub-chunk byte for byte (maps are never decoded and re-coded), its ancillary
sub-chunks, and the ancillary chunks between clips, the PRMT chunk that records the prompts
(spec §4.3) among them, byte for byte and in its place.  INDX and TAIL are rebuilt with the new
offsets, and every chunk's CRC is computed afresh, through :class:`~m3cvc_format.writer.Writer`.

The spec needs no change for this: the result is a valid stream under the existing rules
(spec/m3v.md).  HEAD holds no sizes or offsets, only the INDX and TAIL do; a text sub-chunk is
coded on its own with the stream's ``text_codec`` (§6.3); and a dependent (TEMPORAL) map
depends only on the previous clip's map (§6.5), never on texts, so copying every map byte for
byte keeps every reference chain intact.  The one byte-level change besides the texts: ancillary
sub-chunks of a clip, which §6.3 lets stand anywhere among its sub-chunks, are written after
the index map.

:func:`parse_texts` reads what ``m3v-edit --texts`` takes: the per-clip form of the description
sidecar (docs/sidecar.md) or exactly the JSON that ``m3v-info --texts --json`` prints.
"""

from __future__ import annotations

import dataclasses
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, BinaryIO

from .constants import ANCILLARY_CHUNK_BIT, ChunkType
from .errors import LimitError, MalformedError, TruncatedError
from .framing import parse_chunk
from .model import ClipRecord
from .reader import Reader
from .textcodec import decode_text, encode_text
from .writer import Writer

__all__ = ["INFO_CLIP_KEYS", "INFO_KEYS", "TextEdits", "edit_texts", "parse_texts"]

#: New texts by clip index: (keyframe text, clip text); None keeps that text as it is.
TextEdits = Mapping[int, tuple[str | None, str | None]]

#: Top-level keys of ``m3v-info --json`` (m3cvc_format.summary.to_json).
INFO_KEYS = frozenset(
    {
        "version",
        "width",
        "height",
        "fps",
        "fps_rational",
        "time_base",
        "frame_count",
        "declared_frame_count",
        "duration_s",
        "pack",
        "pack_hash",
        "grid",
        "vocab_size",
        "text_codec",
        "default_mode",
        "stream_seed",
        "metadata",
        "prompts",
        "total_bytes",
        "kbit_s",
        "bpp",
        "text_bytes",
        "vq_bytes",
        "prompts_bytes",
        "framing_bytes",
        "terminated",
        "index",
        "clips",
    }
)

#: Keys of a clip of ``m3v-info --json``; only ``index``, ``keyframe_text`` and ``clip_text``
#: are used, the others describe the stream as it was and are ignored.
INFO_CLIP_KEYS = frozenset(
    {
        "index",
        "first_frame",
        "frame_count",
        "mode",
        "offset",
        "bytes",
        "text_bytes",
        "vq_bytes",
        "index_map_coder",
        "seed",
        "keyframe_text",
        "clip_text",
    }
)

_SIDECAR_KEYS = frozenset({"version", "clips"})
_SIDECAR_CLIP_KEYS = frozenset({"index", "keyframe", "clip"})


def parse_texts(data: Any) -> dict[int, tuple[str | None, str | None]]:
    """New texts from a parsed JSON document: the per-clip sidecar form
    ``{"version": 1, "clips": [{"index": k, "keyframe": ..., "clip": ...}]}`` or the output of
    ``m3v-info --texts --json``.  A text left out keeps the clip's text; ``""`` removes it.
    Unknown keys, wrong types and repeated indices are ValueErrors naming the entry."""
    if not isinstance(data, dict):
        raise ValueError("the texts must be a JSON object with a 'clips' list")
    if "ranges" in data:
        raise ValueError("'ranges': m3v-edit takes texts per clip index ('clips'), not per time range")
    unknown = sorted(set(data) - _SIDECAR_KEYS - INFO_KEYS)
    if unknown:
        raise ValueError(f"unknown key {unknown[0]!r} at the top level")
    version = data.get("version", 1)
    sidecar_version = type(version) is int and version == 1
    stream_version = isinstance(version, str) and re.fullmatch(r"\d+\.\d+", version) is not None
    if not (sidecar_version or stream_version):
        raise ValueError(f"'version': {version!r} is neither 1 (a sidecar) nor a stream version (m3v-info)")
    clips = data.get("clips")
    if not isinstance(clips, list):
        raise ValueError("'clips' must be a list")
    out: dict[int, tuple[str | None, str | None]] = {}
    for n, entry in enumerate(clips):
        where = f"clips[{n}]"
        if not isinstance(entry, dict):
            raise ValueError(f"{where}: not an object")
        keys = set(entry)
        bad = sorted(keys - _SIDECAR_CLIP_KEYS - INFO_CLIP_KEYS)
        if bad:
            raise ValueError(f"{where}: unknown key {bad[0]!r}")
        if keys & {"keyframe", "clip"} and keys & (INFO_CLIP_KEYS - {"index"}):
            raise ValueError(f"{where}: mixes sidecar keys (keyframe, clip) with m3v-info keys")
        index = entry.get("index")
        if type(index) is not int or index < 0:
            raise ValueError(f"{where}.index: {index!r} is not a clip index (an integer from 0)")
        if index in out:
            raise ValueError(f"{where}.index: clip {index} is listed twice")
        texts: list[str | None] = []
        for key in ("keyframe", "clip"):
            name = key if key in entry else f"{key}_text"
            value = entry.get(name)
            if value is not None and not isinstance(value, str):
                raise ValueError(f"{where}.{name}: not a string")
            texts.append(value)
        out[index] = (texts[0], texts[1])
    return out


def _recode(record: ClipRecord, texts: tuple[str | None, str | None], codec: Any) -> ClipRecord:
    """``record`` with the texts given (None: kept); a text equal to the one it has keeps its
    coded bytes, so an edit that changes nothing changes no byte."""
    coded = [record.keyframe_text_coded, record.clip_text_coded]
    for i, (what, text) in enumerate(zip(("keyframe", "clip"), texts)):
        if text is None or text == decode_text(coded[i], codec):
            continue
        try:
            coded[i] = encode_text(text, codec)
        except LimitError as err:
            raise LimitError(f"clip {record.index} {what} text: {err.message}") from None
        except UnicodeError as err:
            raise ValueError(f"clip {record.index} {what} text cannot be coded: {err}") from None
    return dataclasses.replace(record, keyframe_text_coded=bytes(coded[0]), clip_text_coded=bytes(coded[1]))


def edit_texts(
    src: str | os.PathLike[str] | bytes,
    dst: str | os.PathLike[str] | BinaryIO,
    texts: TextEdits,
) -> int:
    """Copy the stream ``src`` to ``dst`` with the texts of the clips in ``texts`` replaced.

    ``texts`` maps a clip index to (keyframe text, clip text); None keeps that text.  Clips
    not in ``texts`` keep their coded text bytes exactly.  ``src`` is read whole before
    anything is written, and a path ``dst`` is written atomically (a temporary file renamed into
    place), so ``dst`` may be ``src``: a failed edit leaves it as it was.  A clip index out of
    range is a ValueError; a text over the format's limit a LimitError; a damaged or cut-off
    stream its M3VError.  Returns how many clips' texts changed."""
    data = src if isinstance(src, bytes) else Path(src).read_bytes()
    with Reader(data, sniff_mkv=False) as reader:
        header = reader.header
        head = parse_chunk(data[8 : reader.header_end], 8).payload
        records = list(reader.clips())
        if reader.truncated:
            error = reader.damage[0].error if reader.damage else None
            raise error or TruncatedError("the stream is cut off")
        chunks = list(reader.chunks())
    count = len(records)
    for index in sorted(texts):
        if not 0 <= index < count:
            have = f"clips 0-{count - 1}" if count else "no clips"
            raise ValueError(f"clip {index} is out of range: the stream has {have}")
    if records and records[-1].index != count - 1:
        raise MalformedError(f"clip indices have gaps (last clip {records[-1].index} of {count})")
    terminated = any(c.chunk_type == ChunkType.TAIL for c in chunks)
    edited = [_recode(r, texts[r.index], header.text_codec) if r.index in texts else r for r in records]
    by_offset = dict(zip((r.offset for r in records), edited))
    changed = sum(a != b for a, b in zip(records, edited))
    with Writer(dst, header, index=terminated, head=head) as writer:
        for chunk in chunks:
            if chunk.chunk_type == ChunkType.CLIP:
                writer.write_coded_clip(by_offset[chunk.offset])
            elif chunk.chunk_type & ANCILLARY_CHUNK_BIT:
                writer.write_ancillary(chunk.chunk_type, chunk.payload)
    return changed
