"""Clip descriptions: the keyframe text D^F and the clip text D^C of every clip.

A :class:`DescriptionProvider` gives both texts of a clip. Providers here:

- :class:`NoDescriptions` -- empty texts (the stream then carries no text sub-chunks);
- :class:`SidecarDescriptions` -- texts from a JSON file the user writes (format in
  docs/sidecar.md): per clip index, or per time range in seconds.

The VLM provider of the paper (Qwen-VL dialogue) comes with the ``full`` pack.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np

from .errors import CodecError

__all__ = [
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


@runtime_checkable
class DescriptionProvider(Protocol):
    """Gives (keyframe_text, clip_text) for a clip.  ``keyframe`` is the clip's first frame and
    ``frames`` all its frames (N x H x W x 3 RGB uint8, at the coding size)."""

    def describe(self, span: ClipSpan, keyframe: np.ndarray, frames: np.ndarray | None) -> tuple[str, str]: ...

    def metadata(self) -> Mapping[str, Any]:
        """Informative facts for the stream's metadata (e.g. the ``prompts`` key); may be empty."""
        ...


class NoDescriptions:
    """Empty texts for every clip."""

    needs_frames = False

    def describe(self, span, keyframe, frames):
        return "", ""

    def metadata(self):
        return {}


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


class SidecarDescriptions:
    """Texts from a sidecar (a parsed mapping; see :func:`load_sidecar` for a file)."""

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

    def describe(self, span: ClipSpan, keyframe=None, frames=None) -> tuple[str, str]:
        if self.by_index is not None:
            return self.by_index.get(span.index, ("", ""))
        t = span.start_s
        for start, end, kf, clip in self.ranges or ():
            if start <= t + 1e-9 and t < end - 1e-9:
                return kf, clip
        return "", ""

    def metadata(self):
        return {}


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


def provider_for(texts: Any) -> DescriptionProvider:
    """None -> no texts; a path -> sidecar file; a mapping -> sidecar data; a provider as is."""
    if texts is None:
        return NoDescriptions()
    if isinstance(texts, (str, Path)):
        return load_sidecar(texts)
    if isinstance(texts, Mapping):
        return SidecarDescriptions(texts)
    if hasattr(texts, "describe"):
        return texts
    raise CodecError(f"texts must be a sidecar path, a mapping or a DescriptionProvider, got {type(texts).__name__}")
