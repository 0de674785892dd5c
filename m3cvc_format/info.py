"""m3v-info: describe an `.m3v` stream.

Exit status: 0 valid, 1 invalid or damaged (one line on stderr with the reason
and the byte offset), 2 usage error.
"""

from __future__ import annotations

import argparse
import functools
import gc
import json
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from .cli import run
from .constants import IndexMapCoder, Mode, TextCodec
from .errors import M3VError, MalformedError
from .model import ClipRecord, Header, SequentialDecoder

__all__ = ["StreamSummary", "main", "summarize"]

_TEXT_CODEC_NAMES = {TextCodec.UTF8: "utf8", TextCodec.LZW: "lzw", TextCodec.TOKANS1: "tokans-1"}


@dataclass
class StreamSummary:
    header: Header
    total_bytes: int
    clips: list[ClipRecord]
    index_source: str  # "trailer", "scan" (rebuilt) or "none" (pipe)
    terminated: bool
    damage: list = field(default_factory=list)

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
        return self.total_bytes - self.text_bytes - self.vq_bytes

    @property
    def bpp(self) -> float:
        pixels = self.header.width * self.header.height * self.frames
        return 8 * self.total_bytes / pixels if pixels else 0.0

    @property
    def kbit_s(self) -> float:
        return 8 * self.total_bytes / self.duration_s / 1000 if self.frames else 0.0


def summarize(src, *, on_damage: str = "raise") -> StreamSummary:
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
        total = reader.bytes_seen  # a pipe has been read to its end by now
        terminated = reader.index_offset is not None and not reader.truncated
        index_source = reader.index_source
        if index_source == "trailer":
            _check_index(reader.index, clips)
        return StreamSummary(reader.header, total, clips, index_source, terminated, list(reader.damage))


def _check_index(entries, clips: list[ClipRecord]) -> None:
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
        "index_map_coder": _coder_name(clip),
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
        "text_codec": _TEXT_CODEC_NAMES[h.text_codec],
        "default_mode": h.default_mode.name.lower(),
        "stream_seed": h.stream_seed,
        "metadata": h.metadata,
        "total_bytes": summary.total_bytes,
        "kbit_s": summary.kbit_s,
        "bpp": summary.bpp,
        "text_bytes": summary.text_bytes,
        "vq_bytes": summary.vq_bytes,
        "framing_bytes": summary.framing_bytes,
        "terminated": summary.terminated,
        "index": summary.index_source,
        "clips": [_clip_dict(c, h, texts) for c in summary.clips],
    }


def _percent(part: int, whole: int) -> str:
    return f"{100 * part / whole:.1f}%" if whole else "-"


def format_summary(summary: StreamSummary, name: str) -> str:
    h = summary.header
    predicted = sum(c.flags & 1 for c in summary.clips)  # flags bit 0 is the mode
    modes = {Mode.INTERPOLATION: len(summary.clips) - predicted, Mode.PREDICTION: predicted}
    lines = [
        ("file", name),
        ("version", f"{h.version[0]}.{h.version[1]}"),
        ("video", f"{h.width}x{h.height}, {float(h.fps):g} fps ({h.fps}), time base {h.time_base}"),
        (
            "frames",
            f"{summary.frames} ({summary.duration_s:.3f} s)"
            + (f", header declares {h.frame_count}" if h.frame_count and h.frame_count != summary.frames else ""),
        ),
        (
            "clips",
            f"{len(summary.clips)} (interpolation {modes[Mode.INTERPOLATION]}, prediction {modes[Mode.PREDICTION]})",
        ),
        (
            "pack",
            f"{h.pack_id}" + (f" (sha256 {h.pack_hash.hex()[:16]}...)" if any(h.pack_hash) else " (hash unspecified)"),
        ),
        (
            "coding",
            f"grid {h.grid_h}x{h.grid_w}, vocabulary {h.vocab_size}, text {_TEXT_CODEC_NAMES[h.text_codec]}, default mode {h.default_mode.name.lower()}",
        ),
        ("size", f"{summary.total_bytes} bytes, {summary.kbit_s:.3f} kbit/s, {summary.bpp:.6f} bpp"),
        (
            "bytes",
            f"text {summary.text_bytes} ({_percent(summary.text_bytes, summary.total_bytes)}), "
            f"VQ {summary.vq_bytes} ({_percent(summary.vq_bytes, summary.total_bytes)}), "
            f"framing {summary.framing_bytes} ({_percent(summary.framing_bytes, summary.total_bytes)})",
        ),
        (
            "index",
            {
                "trailer": "present",
                "scan": "rebuilt by scanning (no usable trailer)",
                "none": "not read (stream is not seekable)",
            }[summary.index_source]
            + ("" if summary.terminated else "; stream is unterminated (no INDX/TAIL)"),
        ),
    ]
    width = max(len(k) for k, _ in lines)
    return "\n".join(f"{k:<{width}}  {v}" for k, v in lines)


def format_clips(summary: StreamSummary) -> str:
    rows = ["clip  first  frames  mode           bytes   text     VQ  map       seed"]
    for c in summary.clips:
        rows.append(
            f"{c.index:>4}  {c.first_frame:>5}  {c.frame_count:>6}  {c.mode.name.lower():<13} {c.size:>6} {c.text_bytes:>6} {c.vq_bytes:>6}  {_coder_name(c):<8}  {'' if c.seed is None else c.seed}"
        )
    return "\n".join(rows)


def format_texts(summary: StreamSummary) -> str:
    from .textcodec import decode_text

    out = []
    for c in summary.clips:
        kf = decode_text(c.keyframe_text_coded, summary.header.text_codec)
        cl = decode_text(c.clip_text_coded, summary.header.text_codec)
        out.append(f"clip {c.index} (frames {c.first_frame}-{c.end_frame - 1}, {c.mode.name.lower()})")
        out.append(f"  keyframe: {kf}")
        out.append(f"  clip:     {cl}")
    return "\n".join(out)


def _coder_name(record) -> str:
    """The index-map coder's name, lower case (TEMPORAL: coded against the previous clip)."""
    coder = record.index_map.coder if record.index_map is not None else None
    try:
        return IndexMapCoder(coder).name.lower()
    except ValueError:
        return f"coder {coder}"


def verify(summary: StreamSummary) -> None:
    """Decode every payload; raise the first problem as an M3VError."""
    decoder = SequentialDecoder(summary.header)
    for clip in summary.clips:
        try:
            decoder.decode(clip)
        except M3VError as err:
            raise type(err)(f"clip {clip.index}: {err.message}", clip.offset) from None
    h = summary.header
    if summary.terminated and h.frame_count and h.frame_count != summary.frames:
        raise MalformedError(f"header declares {h.frame_count} frames, the clips hold {summary.frames}")


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="m3v-info", description="Describe an .m3v stream.")
    p.add_argument("file", help="the .m3v file, or - for standard input")
    p.add_argument("--clips", action="store_true", help="a table of the clips")
    p.add_argument("--texts", action="store_true", help="the descriptions of every clip")
    p.add_argument("--verify", action="store_true", help="check every CRC and decode every payload")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    return p


def _body(args: argparse.Namespace) -> int:
    name = args.file
    summary = summarize(name)
    if args.verify:
        verify(summary)
    if summary.damage:  # a cut-off stream: the clips before the cut are readable
        first = summary.damage[0].error
        raise type(first)(f"{first.message}; {len(summary.clips)} complete clips before it", first.offset)
    if args.json:
        print(json.dumps(to_json(summary), ensure_ascii=False, indent=2))
    else:
        parts = [format_summary(summary, name)]
        if args.clips:
            parts.append(format_clips(summary))
        if args.texts:
            parts.append(format_texts(summary))
        print("\n\n".join(parts))
    if args.verify and not args.json:
        print("verify      ok: every CRC matches and every payload decodes")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    return run("m3v-info", _parser(), _body, argv)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
