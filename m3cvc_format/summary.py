"""A whole stream at a glance: its clips, what their bytes are spent on, and a check that
every payload decodes (what ``m3v-info`` prints, as data)."""

from __future__ import annotations

import functools
import gc
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .constants import IndexMapCoder, TextCodec
from .errors import M3VError, MalformedError
from .model import ClipRecord, Header, IndexEntry, SequentialDecoder

if TYPE_CHECKING:
    from .reader import Damage

__all__ = ["TEXT_CODEC_NAMES", "StreamSummary", "coder_name", "summarize", "to_json", "verify"]

#: Names of the text codecs, as m3v-info prints them.
TEXT_CODEC_NAMES = {TextCodec.UTF8: "utf8", TextCodec.LZW: "lzw", TextCodec.TOKANS1: "tokans-1"}


@dataclass
class StreamSummary:
    header: Header
    total_bytes: int
    clips: list[ClipRecord]
    index_source: str  # "trailer", "scan" (rebuilt) or "none" (pipe)
    terminated: bool
    damage: list[Damage] = field(default_factory=list)
    #: The prompts of the stream's PRMT chunk (spec/m3v.md §4.3); None when it records none.
    prompts: dict[str, Any] | None = None
    #: Bytes of the PRMT chunk (type, length, payload, CRC), 0 without one.
    prompts_bytes: int = 0

    @property
    def frames(self) -> int:
        return self.clips[-1].end_frame if self.clips else 0

    @property
    def duration_s(self) -> float:
        return float(self.frames / self.header.fps)

    @functools.cached_property
    def text_bytes(self) -> int:
        return sum(c.text_bytes for c in self.clips)

    @functools.cached_property
    def vq_bytes(self) -> int:
        return sum(c.vq_bytes for c in self.clips)

    @property
    def framing_bytes(self) -> int:
        return self.total_bytes - self.text_bytes - self.vq_bytes - self.prompts_bytes

    @property
    def bpp(self) -> float:
        pixels = self.header.width * self.header.height * self.frames
        return 8 * self.total_bytes / pixels if pixels else 0.0

    @property
    def kbit_s(self) -> float:
        return 8 * self.total_bytes / self.duration_s / 1000 if self.frames else 0.0


def summarize(src: Any, *, on_damage: str = "raise") -> StreamSummary:
    """Read every clip of ``src`` (CRCs checked) and the index, for a summary."""
    from .reader import Reader

    with Reader(src, on_damage=on_damage) as reader:
        # Thousands of small records, no cycles: the cyclic collector would only rescan them.
        was_enabled = gc.isenabled()
        gc.disable()
        try:
            clips = list(reader.clips())
        finally:
            if was_enabled:
                gc.enable()
        prompts = reader.prompts  # the clip walk kept the PRMT chunk (a pipe cannot go back)
        prompts_bytes = reader.prompts_bytes
        total = reader.bytes_seen  # a pipe has been read to its end by now
        terminated = reader.terminated and not reader.truncated
        index_source = reader.index_source
        if index_source == "trailer":
            _check_index(reader.index, clips)
        return StreamSummary(
            reader.header, total, clips, index_source, terminated, list(reader.damage), prompts, prompts_bytes
        )


def _check_index(entries: list[IndexEntry], clips: list[ClipRecord]) -> None:
    if len(entries) != len(clips):
        raise MalformedError(f"index lists {len(entries)} clips, the stream holds {len(clips)}")
    for entry, clip in zip(entries, clips):
        if (entry.offset, entry.first_frame, entry.frame_count) != (clip.offset, clip.first_frame, clip.frame_count):
            raise MalformedError(f"index entry {entry.clip_index} disagrees with its clip", clip.offset)


def _clip_dict(clip: ClipRecord, header: Header, texts: bool) -> dict[str, Any]:
    out: dict[str, Any] = {
        "index": clip.index,
        "first_frame": clip.first_frame,
        "frame_count": clip.frame_count,
        "mode": clip.mode.name.lower(),
        "offset": clip.offset,
        "bytes": clip.size,
        "text_bytes": clip.text_bytes,
        "vq_bytes": clip.vq_bytes,
        "index_map_coder": coder_name(clip),
        "seed": clip.seed,
    }
    if texts:
        from .textcodec import decode_text

        out["keyframe_text"] = decode_text(clip.keyframe_text_coded, header.text_codec)
        out["clip_text"] = decode_text(clip.clip_text_coded, header.text_codec)
    return out


def to_json(summary: StreamSummary, *, texts: bool = True) -> dict[str, Any]:
    h = summary.header
    return {
        "version": f"{h.version[0]}.{h.version[1]}",
        "width": h.width,
        "height": h.height,
        "fps": float(h.fps),
        "fps_rational": [h.fps.numerator, h.fps.denominator],
        "time_base": [h.time_base.numerator, h.time_base.denominator],
        "frame_count": summary.frames,
        "declared_frame_count": h.frame_count,
        "duration_s": summary.duration_s,
        "pack": h.pack_id,
        "pack_hash": h.pack_hash.hex(),
        "grid": [h.grid_h, h.grid_w],
        "vocab_size": h.vocab_size,
        "text_codec": TEXT_CODEC_NAMES[h.text_codec],
        "default_mode": h.default_mode.name.lower(),
        "stream_seed": h.stream_seed,
        "metadata": h.metadata,
        "prompts": _plain(summary.prompts),
        "total_bytes": summary.total_bytes,
        "kbit_s": summary.kbit_s,
        "bpp": summary.bpp,
        "text_bytes": summary.text_bytes,
        "vq_bytes": summary.vq_bytes,
        "prompts_bytes": summary.prompts_bytes,
        "framing_bytes": summary.framing_bytes,
        "terminated": summary.terminated,
        "index": summary.index_source,
        "clips": [_clip_dict(c, h, texts) for c in summary.clips],
    }


def _plain(value: Any) -> Any:
    """A decoded MessagePack value as JSON can hold it: byte strings (bin) as hex, extension
    types as their repr (neither occurs in the keys spec/m3v.md §4.3 defines)."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, (bytes, bytearray)):
        return bytes(value).hex()
    if value is None or isinstance(value, (str, int, float)):
        return value
    return repr(value)


def coder_name(record: ClipRecord) -> str:
    """The index-map coder's name, lower case (TEMPORAL: coded against the previous clip)."""
    coder = record.index_map.coder if record.index_map is not None else None
    if coder is not None:
        try:
            return IndexMapCoder(coder).name.lower()
        except ValueError:
            pass
    return f"coder {coder}"


def verify(summary: StreamSummary) -> None:
    """Decode every payload; raise the first problem as an M3VError."""
    decoder = SequentialDecoder(summary.header)
    for clip in summary.clips:
        try:
            decoder.decode(clip)
        except M3VError as err:
            message = (
                err.message if err.message.startswith(f"clip {clip.index} ") else f"clip {clip.index}: {err.message}"
            )
            raise type(err)(message, clip.offset) from None
    h = summary.header
    if summary.terminated and h.frame_count and h.frame_count != summary.frames:
        raise MalformedError(f"header declares {h.frame_count} frames, the clips hold {summary.frames}")
