"""Decoding ahead of the player in a thread: :class:`PrefetchSource`."""

from __future__ import annotations

import math
import threading

from .source import PlayerSource
from .state import clip_at

__all__ = ["PrefetchSource"]


class PrefetchSource:
    """Wraps a :class:`~.source.PlayerSource` with a thread that decodes ahead of the player.

    The worker decodes frames in order from the last frame asked for, up to ``ahead`` frames
    beyond it (default: one second of the stream), so the cost spikes of a clip's first frame
    (its keyframes) are absorbed while earlier frames play.  A request the worker is not heading
    for (backwards, or in a later clip than the one it decodes) repositions it; the wrapped
    source then seeks.  Only the worker calls the wrapped source's ``frame``; ``description``
    takes the same lock, since both read the file."""

    def __init__(self, source: PlayerSource, *, ahead: int | None = None, start: int = 0) -> None:
        self.source = source
        self.fps, self.frame_count = source.fps, source.frame_count
        self.width, self.height = source.width, source.height
        self.clip_starts = tuple(source.clip_starts)
        self.ahead = int(ahead) if ahead else max(4, min(64, math.ceil(float(source.fps))))
        self._cond = threading.Condition()
        self._io = threading.Lock()  # held while the wrapped source reads or decodes
        self._buffer: dict[int, object] = {}
        self._want = start  # the frame the player wants next: the worker stays within `ahead` of it
        self._next = start  # the frame the worker decodes next
        self._generation = 0  # bumped by a reposition: results of the old position are dropped
        self._error: tuple[int, int, BaseException] | None = None  # (generation, frame, error)
        self._stop = False
        self.repositions = 0
        self._thread = threading.Thread(target=self._work, name="m3v-play decoder", daemon=True)
        self._thread.start()

    def _work(self) -> None:
        cond = self._cond
        while True:
            with cond:
                while not self._stop and (
                    self._next >= self.frame_count or self._error is not None or self._next >= self._want + self.ahead
                ):
                    cond.wait()
                if self._stop:
                    return
                n, generation = self._next, self._generation
            try:
                with self._io:
                    frame = self.source.frame(n)
            except BaseException as err:  # handed to the player when it asks for frame n
                with cond:
                    if generation == self._generation:
                        self._error = (generation, n, err)
                        cond.notify_all()
                continue
            with cond:
                if generation == self._generation and self._next == n:
                    self._buffer[n] = frame
                    self._next = n + 1
                    cond.notify_all()

    def frame(self, n: int):
        if not 0 <= n < self.frame_count:
            raise IndexError(f"frame {n} is not in the stream (0..{self.frame_count - 1})")
        with self._cond:
            if n not in self._buffer:
                heading = self._next <= n and clip_at(self.clip_starts, n) <= clip_at(self.clip_starts, self._next)
                failed = self._error is not None and self._error[1] <= n
                if not heading or failed:  # reposition the worker at n
                    self._generation += 1
                    self._buffer.clear()
                    self._next = n
                    self._error = None
                    self.repositions += 1
                self._want = n
                self._cond.notify_all()
                while n not in self._buffer:
                    if self._error is not None and self._error[1] <= n:
                        raise self._error[2]
                    if self._stop:
                        raise ValueError("the frame source is closed")
                    self._cond.wait()
            frame = self._buffer[n]
            for k in [k for k in self._buffer if k < n]:
                del self._buffer[k]
            self._want = n + 1
            self._cond.notify_all()
            return frame

    def description(self, k: int) -> str:
        with self._io:
            return self.source.description(k)

    def close(self) -> None:
        with self._cond:
            self._stop = True
            self._cond.notify_all()
        self._thread.join(10)
        with self._io:
            self.source.close()
