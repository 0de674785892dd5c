"""The decode + timing loop: :class:`Player` plays a :class:`~.source.PlayerSource` on an
:class:`~.output.Output`, applying keys through the pure state machine of :mod:`.state`, and
counts what it did in :class:`Stats`.

Pacing: frame ``n`` is due at ``t0 + (n - n0) / (fps * speed)``, where ``(t0, n0)`` is the
anchor set when playback (re)starts (start, resume, seek, step), and its *slot* lasts until
the next one is due.  When the player falls behind it skips frames before decoding: it aims at
the frame whose slot will hold the moment decoding ends (now plus the median of the last few
decode times), and the frames before it count as *dropped*.  A frame is never shown before it
is due; one decoded late is shown anyway (and its lateness recorded), so a source slower than
the frame rate still shows every frame it can, on the stream's clock.  The clock is a parameter
(tests give a fake one, with a matching ``sleep`` in the output).
"""

from __future__ import annotations

import math
import statistics
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from .output import Output, View
from .source import PlayerSource
from .state import PlayerError, PlayerState, Timeline, action_for_key, apply_action, clip_at

__all__ = ["IDLE_INTERVAL", "POLL_INTERVAL", "Player", "Stats"]

#: How long an output may block waiting for input while the player waits (seconds).
POLL_INTERVAL = 0.02
#: How long an output blocks waiting for input while paused.
IDLE_INTERVAL = 0.05


@dataclass
class Stats:
    """Counts of a play.  ``wall``: the whole run; ``startup``: until the first frame was up;
    ``fps``: frames shown a second of playing (after the first frame)."""

    shown: int = 0
    dropped: int = 0
    wall: float = 0.0
    startup: float = 0.0
    late_max: float = 0.0  # the latest a shown frame came after its due time (playing)
    late_total: float = 0.0
    paced: int = 0  # frames shown by the clock (not by a seek or a step)
    last_frame: int | None = None

    @property
    def fps(self) -> float:
        playing = self.wall - self.startup
        return self.shown / playing if playing > 0 else 0.0

    @property
    def late_mean(self) -> float:
        return self.late_total / self.paced if self.paced else 0.0

    def summary(self) -> str:
        return (
            f"{self.shown} frames shown, {self.dropped} dropped, {self.wall:.2f} s, "
            f"{self.fps:.2f} fps effective (first frame after {self.startup * 1000:.0f} ms; lateness "
            f"mean {self.late_mean * 1000:.1f} ms, max {self.late_max * 1000:.1f} ms)"
        )


class Player:
    """Plays ``source`` on ``output`` (see the module documentation for the pacing).

    ``speed``: playback rate factor; ``start``: first frame; ``limit``: stop after that many
    frames have been shown or dropped; ``loop``: start again at the end; ``keep_open``: pause
    on the last frame instead of ending; ``paused``: start paused on the first frame;
    ``clock``: a monotonic clock in seconds (tests give a fake one, with a matching sleep in
    the output)."""

    def __init__(
        self,
        source: PlayerSource,
        output: Output,
        *,
        speed: float = 1.0,
        start: int = 0,
        limit: int | None = None,
        loop: bool = False,
        keep_open: bool = False,
        paused: bool = False,
        overlay: bool = False,
        fullscreen: bool = False,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not (speed > 0 and math.isfinite(speed)):
            raise ValueError("speed must be a positive number")
        if source.frame_count <= 0:
            raise PlayerError("the stream has no frames")
        self.source = source
        self.output = output
        self.speed = float(speed)
        self.rate = float(source.fps) * self.speed
        self.limit = limit
        self.loop = loop
        self.keep_open = keep_open
        self.clock = clock
        self.timeline = Timeline(source.frame_count, tuple(source.clip_starts))
        start = min(max(int(start), 0), source.frame_count - 1)
        self.state = PlayerState(position=start, paused=paused, overlay=overlay, fullscreen=fullscreen, request=start)
        self.stats = Stats()
        self._anchor: tuple[float, int] | None = None
        self._cost = 0.0  # the time a frame takes to decode, estimated (seconds)
        self._costs: deque[float] = deque(maxlen=5)
        self._started = 0.0

    # -------------------------------------------------------------- helpers

    def view(self, n: int) -> View:
        st, src = self.state, self.source
        k = clip_at(self.timeline.clip_starts, n)
        text = src.description(k) if st.overlay else ""
        return View(
            frame=n,
            frame_count=src.frame_count,
            clip=k,
            clip_count=len(self.timeline.clip_starts),
            fps=float(src.fps),
            paused=st.paused,
            overlay=st.overlay,
            fullscreen=st.fullscreen,
            description=text,
        )

    def handle(self, keys: Iterable[str]) -> None:
        """Apply key names; redraws the frame on screen when the overlay, fullscreen or pause
        state changed."""
        before = self.state
        for key in keys:
            action = action_for_key(key)
            if action is not None:
                self.state = apply_action(self.state, action, self.timeline)
        st = self.state
        if st.paused != before.paused:
            self._anchor = None  # resume: the next frame is due one period from now
            if not st.paused and st.shown is not None:
                self._anchor = (self.clock(), st.shown)
        if (
            st.shown is not None
            and not st.quit
            and st.request is None
            and (st.overlay != before.overlay or st.fullscreen != before.fullscreen or st.paused != before.paused)
        ):
            self.output.show(None, self.view(st.shown))

    def _present(self, frame, n: int) -> None:
        if self.stats.shown == 0:
            self.stats.startup = self.clock() - self._started
        self.state.shown = n
        self.state.position = n + 1
        self.stats.shown += 1
        self.stats.last_frame = n
        self.output.show(frame, self.view(n))

    def _decode(self, n: int, timed: bool = True):
        """Frame ``n`` from the source; ``timed``: its time joins the decode-cost estimate (the
        median of the last few, so that one slow frame, a clip's first, does not make the
        player skip the cheap ones after it)."""
        began = self.clock()
        frame = self.source.frame(n)
        if timed:
            self._costs.append(self.clock() - began)
            self._cost = statistics.median(self._costs)
        return frame

    def _limit_reached(self) -> bool:
        return self.limit is not None and self.stats.shown + self.stats.dropped >= self.limit

    def _wait_until(self, deadline: float) -> bool:
        """Wait for ``deadline`` while handling keys; False when a key interrupted the wait
        (quit, pause, seek or step)."""
        while True:
            remaining = deadline - self.clock()
            if remaining <= 0:
                return True
            keys = self.output.poll(min(remaining, POLL_INTERVAL))
            if keys:
                self.handle(keys)
                st = self.state
                if st.quit or st.paused or st.request is not None:
                    return False

    # -------------------------------------------------------------- the loop

    def run(self) -> Stats:
        """Play until the end, the frame limit, or quit; returns the counts."""
        st = self.state
        src = self.source
        count = src.frame_count
        period = 1.0 / self.rate
        started = self._started = self.clock()
        self.output.start(src, st)
        try:
            while True:
                self.handle(self.output.poll(0))
                st = self.state
                if st.quit:
                    break
                if st.request is not None:  # a seek or a step: show it now, re-anchor
                    n, st.request = st.request, None
                    if 0 <= n < count:
                        frame = self._decode(n, timed=False)  # a seek: not the usual cost
                        self._present(frame, n)
                        self._anchor = (self.clock(), n)
                    if self._limit_reached():
                        break
                    continue
                if st.paused:
                    self._anchor = None
                    self.handle(self.output.poll(IDLE_INTERVAL))
                    continue
                if self._limit_reached() or st.position >= count:
                    # the last frame stays up for its slot
                    if self._anchor is not None and not self._wait_until(
                        self._anchor[0] + (st.position - self._anchor[1]) * period
                    ):
                        continue
                    st = self.state  # keys handled while waiting replace the state
                    if self._limit_reached():
                        break
                    if self.loop:  # frame 0 takes the slot after the last frame's
                        if self._anchor is None:
                            self._anchor = (self.clock(), 0)
                        else:
                            t0, n0 = self._anchor
                            self._anchor = (t0 + (count - n0) * period, 0)
                        st.position = 0
                        continue
                    if self.keep_open:
                        st.paused = True
                        self.output.show(None, self.view(st.shown if st.shown is not None else count - 1))
                        continue
                    break
                if self._anchor is None:
                    self._anchor = (self.clock(), st.position)
                t0, n0 = self._anchor
                # The frame whose slot will hold the moment its decoding ends: skip the ones
                # before it (their slots are over, or will be before they could be shown).
                target = n0 + math.floor((self.clock() + self._cost - t0) * self.rate)
                if target > st.position:
                    skip = min(target, count) - st.position
                    if self.limit is not None:
                        skip = min(skip, self.limit - self.stats.shown - self.stats.dropped)
                    if skip > 0:
                        self.stats.dropped += skip
                        st.position += skip
                        continue
                n = st.position
                frame = self._decode(n)
                deadline = t0 + (n - n0) * period
                if not self._wait_until(deadline):
                    continue
                # A decoded frame is shown even when late (a slow source still shows pictures);
                # the lateness is recorded.
                late = max(self.clock() - deadline, 0.0)
                self.stats.late_max = max(self.stats.late_max, late)
                self.stats.late_total += late
                self.stats.paced += 1
                self._present(frame, n)
        finally:
            self.stats.wall = self.clock() - started
            self.output.stop()
        return self.stats
