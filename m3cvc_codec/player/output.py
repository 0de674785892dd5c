"""What outputs share: the :class:`View` they draw beside the pixels, the :class:`Output`
protocol, :class:`HeadlessOutput`, and the geometry (:func:`fit_rect`, :func:`scale_frame`).

The SDL window (:mod:`.sdl`) and the terminal (:mod:`.terminal`) are the other outputs.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Protocol

from .source import PlayerSource
from .state import PlayerState

__all__ = ["HeadlessOutput", "Output", "View", "fit_rect", "scale_frame"]


# --------------------------------------------------------------------------- geometry


def fit_rect(src_w: int, src_h: int, dst_w: int, dst_h: int) -> tuple[int, int, int, int]:
    """``(x, y, w, h)``: the largest rectangle of the source's aspect ratio centred in
    ``dst_w x dst_h`` (letterbox or pillarbox)."""
    if src_w <= 0 or src_h <= 0 or dst_w <= 0 or dst_h <= 0:
        return 0, 0, max(dst_w, 0), max(dst_h, 0)
    scale = min(dst_w / src_w, dst_h / src_h)
    w = max(1, min(dst_w, round(src_w * scale)))
    h = max(1, min(dst_h, round(src_h * scale)))
    return (dst_w - w) // 2, (dst_h - h) // 2, w, h


def scale_frame(rgb, width: int, height: int):
    """``rgb`` resized to ``width x height`` (area filter when shrinking, bilinear when
    enlarging; unchanged when the size is the same).  The SDL window and its tests both use
    it, so a screenshot can be compared with a decoded frame exactly."""
    import numpy as np

    rgb = np.asarray(rgb)
    if rgb.shape[1] == width and rgb.shape[0] == height:
        return np.ascontiguousarray(rgb)
    import cv2

    shrink = width < rgb.shape[1] or height < rgb.shape[0]
    return cv2.resize(rgb, (width, height), interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR)


# --------------------------------------------------------------------------- outputs


@dataclass(frozen=True)
class View:
    """What an output shows besides the pixels."""

    frame: int
    frame_count: int
    clip: int
    clip_count: int
    fps: float
    paused: bool
    overlay: bool
    fullscreen: bool
    description: str = ""

    def status(self) -> str:
        """One line: clip, frame, time, and the clip's description."""
        t = self.frame / self.fps if self.fps else 0.0
        head = (
            f"clip {self.clip + 1}/{self.clip_count}  frame {self.frame + 1}/{self.frame_count}  "
            f"{int(t // 60)}:{t % 60:04.1f}{'  [paused]' if self.paused else ''}"
        )
        return f"{head}  {self.description}" if self.description else head


class Output(Protocol):
    def start(self, source: PlayerSource, state: PlayerState) -> None: ...

    def show(self, frame, view: View) -> None:
        """Draw ``frame`` (None: redraw the last one with ``view``'s overlay and status)."""

    def poll(self, timeout: float) -> list[str]:
        """Key names typed since the last call, waiting up to ``timeout`` s for the first."""

    def stop(self) -> None: ...


class HeadlessOutput:
    """Shows nothing; waits with ``sleep``.  ``keys`` (optional, for tests) maps a frame number
    to key names delivered once that frame has been shown, one key per :meth:`poll`."""

    def __init__(self, sleep: Callable[[float], None] = time.sleep, keys: dict[int, Iterable[str]] | None = None):
        self._sleep = sleep
        self._keys = {k: list(v) for k, v in (keys or {}).items()}
        self._pending: list[str] = []
        self.shown: list[int] = []
        self.views: list[View] = []

    def start(self, source, state) -> None:
        pass

    def show(self, frame, view: View) -> None:
        self.views.append(view)
        if frame is not None:
            self.shown.append(view.frame)
            self._pending += self._keys.pop(view.frame, [])

    def poll(self, timeout: float) -> list[str]:
        if self._pending:
            return [self._pending.pop(0)]
        if timeout > 0:
            self._sleep(timeout)
        return []

    def stop(self) -> None:
        pass
