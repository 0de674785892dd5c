"""Clip descriptions: the keyframe text D^F and the clip text D^C of every clip.

A :class:`DescriptionProvider` gives both texts of each clip, in clip order, the way the paper's
dialogue does (section II-B, Fig. 2): the keyframe is described knowing the previous keyframe and
its description (what changed), then the clip knowing its keyframe's description (what moves).
Providers here:

- :class:`NoDescriptions` -- empty texts (the stream then carries no text sub-chunks);
- :class:`SidecarDescriptions` -- texts from a JSON file the user writes (format in
  docs/sidecar.md): per clip index, or per time range in seconds;
- :class:`m3cvc_codec.dialogue.DialogueDescriptions` -- the paper's multi-round dialogue with a
  Qwen-VL model (the ``full`` extra; imported only when asked for).
"""

from __future__ import annotations

import abc
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np

from .errors import CodecError

__all__ = [
    "DESCRIBE_CHOICES",
    "ClipSpan",
    "DescriptionProvider",
    "NoDescriptions",
    "SidecarDescriptions",
    "load_sidecar",
    "provider_for",
]

#: Longest text accepted, in UTF-8 bytes (the format allows 1 MiB; descriptions are sentences).
MAX_TEXT_BYTES = 64 * 1024


@dataclass(frozen=True)
class ClipSpan:
    """Where a clip lies: its index, first frame, frame count, and the stream's rate."""

    index: int
    first_frame: int
    frame_count: int
    fps: Fraction

    @property
    def start_s(self) -> float:
        return float(self.first_frame / Fraction(self.fps))


class DescriptionProvider(abc.ABC):
    """Gives the keyframe text D^F and the clip text D^C of every clip.

    The encoder calls, for clip 0, 1, 2, ... in order, :meth:`describe_keyframe` and then
    :meth:`describe_clip` with the keyframe text just given.  Frames are RGB uint8 arrays at the
    coding size (H x W x 3; a clip's frames N x H x W x 3).  Texts are plain strings ("" for
    none).  A provider may keep state between calls (a dialogue's history), so one instance
    describes one stream.
    """

    #: True when :meth:`describe_clip` wants the clip's frames; False: it gets None and the
    #: encoder keeps only keyframes in memory.
    needs_frames: bool = True

    @abc.abstractmethod
    def describe_keyframe(
        self,
        span: ClipSpan,
        keyframe: np.ndarray,
        previous_keyframe: np.ndarray | None,
        previous_text: str | None,
    ) -> str:
        """D^F of the clip at ``span``: ``keyframe`` is its first frame, ``previous_keyframe``
        and ``previous_text`` the previous clip's keyframe and the D^F given for it (both None
        for clip 0)."""

    @abc.abstractmethod
    def describe_clip(self, span: ClipSpan, frames: np.ndarray | None, keyframe_text: str) -> str:
        """D^C of the clip at ``span``: ``frames`` are all its frames (None when
        :attr:`needs_frames` is False), ``keyframe_text`` the D^F just given for its keyframe."""

    def check_clips(self, clip_count: int) -> None:  # noqa: B027 (optional hook, no-op by default)
        """Called once the clips are chosen, before any text: CodecError when this provider
        cannot describe a stream of ``clip_count`` clips.  Default: any count is fine."""

    def metadata(self) -> Mapping[str, Any]:
        """Informative facts for the stream's metadata (spec/m3v.md §5.4); empty by default."""
        return {}

    def prompts_record(self) -> Mapping[str, Any] | None:
        """The prompts that wrote the texts, for the stream's PRMT chunk (spec/m3v.md): a map
        with ``keyframe`` and ``clip`` turn lists and optional ``name``, ``version``, ``turns``,
        ``model``, ``settings``; None (the default) when no prompts were involved."""
        return None


class NoDescriptions(DescriptionProvider):
    """Empty texts for every clip."""

    needs_frames = False

    def describe_keyframe(self, span, keyframe, previous_keyframe, previous_text) -> str:
        return ""

    def describe_clip(self, span, frames, keyframe_text) -> str:
        return ""


def _text(value: Any, where: str) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        raise CodecError(f"{where} must be a string, got {type(value).__name__}")
    if len(value.encode("utf-8", "surrogatepass")) > MAX_TEXT_BYTES:
        raise CodecError(f"{where} is longer than {MAX_TEXT_BYTES} bytes")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise CodecError(f"{where} is not valid Unicode text") from None
    return value


def _number(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise CodecError(f"{where} must be a finite number of seconds, got {value!r}")
    if value < 0:
        raise CodecError(f"{where} must not be negative, got {value}")
    return float(value)


_CLIP_KEYS = {"index", "keyframe", "clip"}
_RANGE_KEYS = {"start", "end", "keyframe", "clip"}


class SidecarDescriptions(DescriptionProvider):
    """Texts from a sidecar (a parsed mapping; see :func:`load_sidecar` for a file).  They
    depend only on where a clip lies, never on its frames."""

    needs_frames = False

    def __init__(self, data: Any, name: str = "sidecar") -> None:
        self.name = name
        self.by_index: dict[int, tuple[str, str]] | None = None
        self.ranges: list[tuple[float, float, str, str]] | None = None
        if not isinstance(data, Mapping):
            raise CodecError(f"{name}: top level must be a JSON object with 'clips' or 'ranges'")
        unknown = set(data) - {"version", "clips", "ranges"}
        if unknown:
            raise CodecError(f"{name}: unknown key {sorted(unknown)[0]!r} (expected 'clips' or 'ranges')")
        if data.get("version", 1) != 1:
            raise CodecError(f"{name}: version {data['version']!r} is not supported (1 is)")
        if ("clips" in data) == ("ranges" in data):
            raise CodecError(f"{name}: give exactly one of 'clips' and 'ranges'")
        if "clips" in data:
            self._parse_clips(data["clips"])
        else:
            self._parse_ranges(data["ranges"])

    def _parse_clips(self, items: Any) -> None:
        if not isinstance(items, list):
            raise CodecError(f"{self.name}: 'clips' must be a list")
        self.by_index = {}
        for i, item in enumerate(items):
            where = f"{self.name}: clips[{i}]"
            if not isinstance(item, Mapping):
                raise CodecError(f"{where} must be an object")
            unknown = set(item) - _CLIP_KEYS
            if unknown:
                raise CodecError(f"{where}: unknown key {sorted(unknown)[0]!r} (allowed: index, keyframe, clip)")
            k = item.get("index")
            if isinstance(k, bool) or not isinstance(k, int) or k < 0:
                raise CodecError(f"{where}: 'index' must be a clip number (0, 1, ...), got {k!r}")
            if k in self.by_index:
                raise CodecError(f"{where}: clip {k} is described twice")
            self.by_index[k] = (
                _text(item.get("keyframe"), f"{where}.keyframe"),
                _text(item.get("clip"), f"{where}.clip"),
            )

    def _parse_ranges(self, items: Any) -> None:
        if not isinstance(items, list):
            raise CodecError(f"{self.name}: 'ranges' must be a list")
        ranges = []
        for i, item in enumerate(items):
            where = f"{self.name}: ranges[{i}]"
            if not isinstance(item, Mapping):
                raise CodecError(f"{where} must be an object")
            unknown = set(item) - _RANGE_KEYS
            if unknown:
                raise CodecError(f"{where}: unknown key {sorted(unknown)[0]!r} (allowed: start, end, keyframe, clip)")
            if "start" not in item or "end" not in item:
                raise CodecError(f"{where}: needs 'start' and 'end' (seconds)")
            start, end = _number(item["start"], f"{where}.start"), _number(item["end"], f"{where}.end")
            if end <= start:
                raise CodecError(f"{where}: end {end} is not after start {start}")
            ranges.append(
                (start, end, _text(item.get("keyframe"), f"{where}.keyframe"), _text(item.get("clip"), f"{where}.clip"))
            )
        ranges.sort(key=lambda r: (r[0], r[1]))
        for a, b in zip(ranges, ranges[1:]):
            if b[0] < a[1]:
                raise CodecError(f"{self.name}: ranges {a[0]}-{a[1]} s and {b[0]}-{b[1]} s overlap")
        self.ranges = ranges

    def check_clips(self, clip_count: int) -> None:
        """CodecError when per-index texts name a clip the video does not have."""
        if self.by_index:
            top = max(self.by_index)
            if top >= clip_count:
                raise CodecError(
                    f"{self.name}: describes clip {top} but the video has {clip_count} clips "
                    "(fix the clips with --interval, or describe time ranges instead)"
                )

    def texts(self, span: ClipSpan) -> tuple[str, str]:
        """(keyframe text, clip text) the sidecar gives the clip at ``span``."""
        if self.by_index is not None:
            return self.by_index.get(span.index, ("", ""))
        t = span.start_s
        for start, end, kf, clip in self.ranges or ():
            if start <= t + 1e-9 and t < end - 1e-9:
                return kf, clip
        return "", ""

    def describe_keyframe(self, span, keyframe=None, previous_keyframe=None, previous_text=None) -> str:
        return self.texts(span)[0]

    def describe_clip(self, span, frames=None, keyframe_text="") -> str:
        return self.texts(span)[1]


def load_sidecar(path) -> SidecarDescriptions:
    """Read and validate a sidecar JSON file (CodecError naming the problem)."""
    p = Path(path)
    try:
        raw = p.read_bytes()
    except FileNotFoundError:
        raise CodecError(f"{path}: no such file") from None
    except OSError as err:
        raise CodecError(f"{path}: cannot read ({err.strerror or err})") from None
    try:
        data = json.loads(raw.decode("utf-8-sig"))
    except UnicodeDecodeError:
        raise CodecError(f"{path}: not UTF-8 text") from None
    except json.JSONDecodeError as err:
        raise CodecError(f"{path}: invalid JSON at line {err.lineno} column {err.colno}: {err.msg}") from None
    return SidecarDescriptions(data, name=str(path))


#: The values of ``describe`` (m3v-encode ``--describe``).
DESCRIBE_CHOICES = ("none", "sidecar", "vlm")


def provider_for(
    texts: Any = None,
    *,
    describe: str | None = None,
    vlm: str | None = None,
    prompts: Any = None,
    dialogue_turns: int = 4,
    max_new_tokens: int | None = None,
    options: Any = None,
) -> DescriptionProvider:
    """The provider ``describe`` names: ``"none"``; ``"sidecar"`` (``texts``: a path, a mapping);
    ``"vlm"``, the paper's dialogue with the vision-language model ``vlm`` (default
    Qwen/Qwen2-VL-7B-Instruct) under ``prompts`` (a prompts file, default the shipped one),
    ``dialogue_turns`` 1, 2 or 4 and ``max_new_tokens`` per turn, run with ``options``
    (RuntimeOptions).  ``describe`` None: ``"sidecar"`` when ``texts`` is given, else none;
    ``texts`` may also be a DescriptionProvider, used as is."""
    if describe is not None and describe not in DESCRIBE_CHOICES:
        raise CodecError(f"describe {describe!r} is not one of {', '.join(DESCRIBE_CHOICES)}")
    dialogue_options = {"vlm": vlm, "prompts": prompts, "max_new_tokens": max_new_tokens}
    if describe != "vlm":
        given = [k for k, v in dialogue_options.items() if v is not None]
        if dialogue_turns != 4:
            given.append("dialogue_turns")
        if given:
            raise CodecError(f"{given[0].replace('_', '-')} applies to describe 'vlm' only")
    if describe == "vlm":
        if texts is not None:
            raise CodecError("describe 'vlm' writes the texts itself: give a texts sidecar or the dialogue, not both")
        from .dialogue import DialogueDescriptions

        return DialogueDescriptions.from_options(
            model=vlm, prompts=prompts, turns=dialogue_turns, max_new_tokens=max_new_tokens, options=options
        )
    if describe == "sidecar" and texts is None:
        raise CodecError("describe 'sidecar' needs a texts file (--texts FILE)")
    if describe == "none" and texts is not None:
        raise CodecError("describe 'none' takes no texts file")
    if texts is None:
        return NoDescriptions()
    if isinstance(texts, (str, Path)):
        return load_sidecar(texts)
    if isinstance(texts, Mapping):
        return SidecarDescriptions(texts)
    if isinstance(texts, DescriptionProvider):
        return texts
    raise CodecError(
        f"texts must be a sidecar path, a mapping or a DescriptionProvider instance, got {type(texts).__name__}"
    )
