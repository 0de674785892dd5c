"""m3v-info: describe an `.m3v` stream (``--clips``, ``--texts``, ``--prompts`` add sections;
``--json`` prints everything as one JSON object, the prompts under ``"prompts"``).

A URL (``https://``, ``s3://``, any fsspec URL) is described from its header and clip index
alone, a few range requests whatever its size: the figures that need every clip's bytes (the
modes, the text/VQ split) are left out unless ``--full``, ``--clips``, ``--texts`` or
``--verify`` asks for them, which read every clip.

Exit status: 0 valid, 1 invalid or damaged (one line on stderr with the reason
and the byte offset), 2 usage error (m3cvc_format.cli).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .cli import run
from .constants import Mode
from .remote import is_url
from .summary import TEXT_CODEC_NAMES, StreamSummary, coder_name, summarize, to_json, verify

if TYPE_CHECKING:
    from .model import Header, IndexEntry

__all__ = ["main"]


def _percent(part: int, whole: int) -> str:
    return f"{100 * part / whole:.1f}%" if whole else "-"


@dataclass
class IndexSummary:
    """What the header and the clip index tell about a stream, without reading its clips (what
    m3v-info shows of a URL)."""

    header: Header
    total_bytes: int
    entries: list[IndexEntry]
    index_source: str
    terminated: bool
    prompts: dict[str, Any] | None
    prompts_bytes: int

    @property
    def frames(self) -> int:
        return self.entries[-1].first_frame + self.entries[-1].frame_count if self.entries else 0

    @property
    def duration_s(self) -> float:
        return float(self.frames / self.header.fps)

    @property
    def bpp(self) -> float:
        pixels = self.header.width * self.header.height * self.frames
        return 8 * self.total_bytes / pixels if pixels else 0.0

    @property
    def kbit_s(self) -> float:
        return 8 * self.total_bytes / self.duration_s / 1000 if self.frames else 0.0


def summarize_index(src: str) -> IndexSummary | None:
    """The header and index of ``src``; None when reading them met damage (then the whole
    stream is read, as for a local file, to say where)."""
    from .reader import Reader

    with Reader(src) as reader:
        entries = reader.index
        if reader.damage:
            return None
        size = reader.size
        assert size is not None  # a URL is read in ranges: its size is known
        return IndexSummary(
            reader.header,
            size,
            entries,
            reader.index_source,
            reader.terminated,
            reader.prompts,
            reader.prompts_bytes,
        )


def index_json(summary: IndexSummary) -> dict[str, Any]:
    """:func:`~.summary.to_json`'s object for what the index tells: the figures that need the
    clips' bytes are null, each clip has its index, frames and offset."""
    out = to_json(
        StreamSummary(
            summary.header,
            summary.total_bytes,
            [],
            summary.index_source,
            summary.terminated,
            prompts=summary.prompts,
            prompts_bytes=summary.prompts_bytes,
        ),
        texts=False,
    )
    out.update(
        frame_count=summary.frames,
        duration_s=summary.duration_s,
        kbit_s=summary.kbit_s,
        bpp=summary.bpp,
        text_bytes=None,
        vq_bytes=None,
        framing_bytes=None,
        clips=[
            {"index": e.clip_index, "first_frame": e.first_frame, "frame_count": e.frame_count, "offset": e.offset}
            for e in summary.entries
        ],
    )
    return out


def _bytes_line(summary: StreamSummary) -> tuple[str, str]:
    total = summary.total_bytes
    return (
        "bytes",
        f"text {summary.text_bytes} ({_percent(summary.text_bytes, total)}), "
        f"VQ {summary.vq_bytes} ({_percent(summary.vq_bytes, total)}), "
        + (
            f"prompts {summary.prompts_bytes} ({_percent(summary.prompts_bytes, total)}), "
            if summary.prompts_bytes
            else ""
        )
        + f"framing {summary.framing_bytes} ({_percent(summary.framing_bytes, total)})",
    )


def format_summary(summary: StreamSummary | IndexSummary, name: str) -> str:
    h = summary.header
    if isinstance(summary, IndexSummary):
        clips_line = f"{len(summary.entries)} (modes not read: header and index only; --full reads every clip)"
    else:
        predicted = sum(c.flags & 1 for c in summary.clips)  # flags bit 0 is the mode
        modes = {Mode.INTERPOLATION: len(summary.clips) - predicted, Mode.PREDICTION: predicted}
        clips_line = (
            f"{len(summary.clips)} (interpolation {modes[Mode.INTERPOLATION]}, prediction {modes[Mode.PREDICTION]})"
        )
    lines = [
        ("file", name),
        ("version", f"{h.version[0]}.{h.version[1]}"),
        ("video", f"{h.width}x{h.height}, {float(h.fps):g} fps ({h.fps}), time base {h.time_base}"),
        (
            "frames",
            f"{summary.frames} ({summary.duration_s:.3f} s)"
            + (f", header declares {h.frame_count}" if h.frame_count and h.frame_count != summary.frames else ""),
        ),
        ("clips", clips_line),
        (
            "pack",
            f"{h.pack_id}" + (f" (sha256 {h.pack_hash.hex()[:16]}...)" if any(h.pack_hash) else " (hash unspecified)"),
        ),
        (
            "coding",
            f"grid {h.grid_h}x{h.grid_w}, vocabulary {h.vocab_size}, text {TEXT_CODEC_NAMES[h.text_codec]}, default mode {h.default_mode.name.lower()}",
        ),
        ("size", f"{summary.total_bytes} bytes, {summary.kbit_s:.3f} kbit/s, {summary.bpp:.6f} bpp"),
    ]
    if isinstance(summary, StreamSummary):
        lines.append(_bytes_line(summary))
    lines += [
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
    if summary.prompts is not None:
        kf, cl = (len(summary.prompts.get(key, [])) for key in ("keyframe", "clip"))
        prompts_name = summary.prompts.get("name")
        lines.append(
            (
                "prompts",
                (f"{prompts_name!r}: " if isinstance(prompts_name, str) else "")
                + f"{kf} keyframe turn{'' if kf == 1 else 's'}, {cl} clip turn{'' if cl == 1 else 's'}"
                + " (--prompts shows them)",
            )
        )
    width = max(len(k) for k, _ in lines)
    return "\n".join(f"{k:<{width}}  {v}" for k, v in lines)


def format_clips(summary: StreamSummary) -> str:
    rows = ["clip  first  frames  mode           bytes   text     VQ  map       seed"]
    for c in summary.clips:
        rows.append(
            f"{c.index:>4}  {c.first_frame:>5}  {c.frame_count:>6}  {c.mode.name.lower():<13} {c.size:>6} {c.text_bytes:>6} {c.vq_bytes:>6}  {coder_name(c):<8}  {'' if c.seed is None else c.seed}"
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


def _setting(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, sort_keys=True, default=repr)


def _field(key: str, value: str) -> str:
    label = f"{key}:"
    return f"  {label:<10}{value}" if len(label) < 10 else f"  {label} {value}"


def _numbered(turns: list[str]) -> list[str]:
    """Turns numbered from 1, a turn's later lines indented under its first."""
    out = []
    for n, turn in enumerate(turns, 1):
        lines = turn.splitlines() or [""]
        out.append(f"    {n}. {lines[0]}")
        out.extend(f"       {line}" for line in lines[1:])
    return out


def format_prompts(prompts: Mapping[str, Any] | None) -> str:
    """The prompts of a stream's PRMT chunk as text: name, version, model, turns and settings,
    then each dialogue's turns numbered, as sent (placeholders unexpanded)."""
    if prompts is None:
        return "no prompts recorded"
    known = ("name", "version", "model", "turns")
    out = ["prompts (PRMT chunk)"]
    for key in known:
        if key in prompts:
            note = "  (of the prompts file)" if key == "version" else ""
            out.append(_field(key, f"{_setting(prompts[key])}{note}"))
    settings = prompts.get("settings")
    if isinstance(settings, Mapping) and settings:
        out.append(_field("settings", ", ".join(f"{k}={_setting(v)}" for k, v in sorted(settings.items()))))
    elif isinstance(settings, Mapping):
        out.append(_field("settings", "none"))
    for key in sorted(set(prompts) - set(known) - {"settings", "keyframe", "clip"}):
        out.append(_field(key, f"{_setting(prompts[key])}  (a key this version does not define)"))
    for key in ("keyframe", "clip"):
        turns = list(prompts.get(key, []))
        out.append(f"  {key} dialogue, {len(turns)} turn{'' if len(turns) == 1 else 's'}:")
        out.extend(_numbered(turns))
    return "\n".join(out)


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="m3v-info", description="Describe an .m3v stream.")
    p.add_argument(
        "file", help="the .m3v file (or an .mkv holding one), - for standard input, or a URL (https://, s3://, ...)"
    )
    p.add_argument("--clips", action="store_true", help="a table of the clips")
    p.add_argument("--texts", action="store_true", help="the descriptions of every clip")
    p.add_argument(
        "--prompts", action="store_true", help="the prompts of the dialogue that wrote the descriptions (PRMT chunk)"
    )
    p.add_argument("--verify", action="store_true", help="check every CRC and decode every payload")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.add_argument(
        "--full",
        action="store_true",
        help="of a URL, read every clip too (modes, text/VQ split); by default only its header and index",
    )
    return p


def _body(args: argparse.Namespace) -> int:
    name = args.file
    if is_url(name) and not (args.full or args.clips or args.texts or args.verify):
        index_summary = summarize_index(name)
        if index_summary is not None:
            if args.json:
                print(json.dumps(index_json(index_summary), ensure_ascii=False, indent=2))
            else:
                parts = [format_summary(index_summary, name)]
                if args.prompts:
                    parts.append(format_prompts(index_summary.prompts))
                print("\n\n".join(parts))
            return 0
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
        if args.prompts:
            parts.append(format_prompts(summary.prompts))
        print("\n\n".join(parts))
    if args.verify and not args.json:
        print("verify      ok: every CRC matches and every payload decodes")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    return run("m3v-info", _parser(), _body, argv)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
