"""The player's core: the frame source, the key handling and the decode + timing loop.

Nothing here draws or reads a keyboard.  An *output* (:mod:`.sdl`, :mod:`.terminal`, or
:class:`HeadlessOutput`) shows frames and turns its own input events into key names; the core
maps key names to :class:`Action` values, applies them to a :class:`PlayerState` with the pure
function :func:`apply_action`, and paces playback with a monotonic clock.

Pacing: frame ``n`` is due at ``t0 + (n - n0) / (fps * speed)``, where ``(t0, n0)`` is the
anchor set when playback (re)starts (start, resume, seek, step), and its *slot* lasts until
the next one is due.  When the player falls behind it skips frames before decoding: it aims at
the frame whose slot will hold the moment decoding ends (now plus the median of the last few
decode times), and the frames before it count as *dropped*.  A frame is never shown before it
is due; one decoded late is shown anyway (and its lateness recorded), so a source slower than
the frame rate still shows every frame it can, on the stream's clock.
"""

from __future__ import annotations

import bisect
import enum
import math
import statistics
import time
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from fractions import Fraction
from typing import Protocol

__all__ = [
    "KEYMAP",
    "Action",
    "FrameSource",
    "HeadlessOutput",
    "M3VSource",
    "Player",
    "PlayerError",
    "PlayerState",
    "PrefetchSource",
    "Stats",
    "Timeline",
    "View",
    "action_for_key",
    "apply_action",
    "clip_at",
    "fit_rect",
    "open_source",
    "scale_frame",
]

#: How long an output may block waiting for input while the player waits (seconds).
POLL_INTERVAL = 0.02
#: How long an output blocks waiting for input while paused.
IDLE_INTERVAL = 0.05


class PlayerError(Exception):
    """A problem the command line reports on one line (exit status 1)."""


class Action(enum.Enum):
    PAUSE = "pause"  # space: pause / resume
    PREV_CLIP = "prev_clip"  # left: start of the previous clip
    NEXT_CLIP = "next_clip"  # right: start of the next clip
    STEP_BACK = "step_back"  # ",": one frame back (pauses)
    STEP_FORWARD = "step_fwd"  # ".": one frame forward (pauses)
    FULLSCREEN = "fullscreen"  # f
    OVERLAY = "overlay"  # t: clip number and description
    QUIT = "quit"  # q, Esc, closing the window


#: Key names (as outputs report them) to actions.
KEYMAP: dict[str, Action] = {
    "space": Action.PAUSE,
    " ": Action.PAUSE,
    "left": Action.PREV_CLIP,
    "right": Action.NEXT_CLIP,
    ",": Action.STEP_BACK,
    ".": Action.STEP_FORWARD,
    "f": Action.FULLSCREEN,
    "t": Action.OVERLAY,
    "q": Action.QUIT,
    "escape": Action.QUIT,
    "quit": Action.QUIT,
}


def action_for_key(name: str) -> Action | None:
    """The action bound to key ``name`` ("space", "left", ",", "q", ...), None if unbound."""
    return KEYMAP.get(name) or KEYMAP.get(name.lower())


# --------------------------------------------------------------------------- timeline


@dataclass(frozen=True)
class Timeline:
    """What key handling needs to know of a stream: its length and where its clips start."""

    frame_count: int
    clip_starts: tuple[int, ...]

    def clip_at(self, n: int) -> int:
        return clip_at(self.clip_starts, n)


def clip_at(starts: Sequence[int], n: int) -> int:
    """Index of the clip holding frame ``n`` (clips start at ``starts``, sorted)."""
    return max(bisect.bisect_right(starts, n) - 1, 0)


@dataclass
class PlayerState:
    """Where the player is.  ``shown``: the frame on screen (None before the first);
    ``position``: the next frame playback shows; ``request``: a frame to show at once
    (after a seek or a step), whatever the clock says."""

    position: int = 0
    shown: int | None = None
    paused: bool = False
    overlay: bool = False
    fullscreen: bool = False
    quit: bool = False
    request: int | None = None


def apply_action(state: PlayerState, action: Action, timeline: Timeline) -> PlayerState:
    """The state after ``action`` (a new object; ``state`` is not changed).

    Left / right go to the start of the previous / next clip of the frame on screen (left on
    the first clip restarts it; right on the last clip does nothing).  ``,`` / ``.`` pause and
    step one frame back / forward (nothing before the first or after the last frame)."""
    current = (
        state.request if state.request is not None else (state.shown if state.shown is not None else state.position)
    )
    count = timeline.frame_count
    if action is Action.QUIT:
        return replace(state, quit=True)
    if action is Action.PAUSE:
        return replace(state, paused=not state.paused)
    if action is Action.OVERLAY:
        return replace(state, overlay=not state.overlay)
    if action is Action.FULLSCREEN:
        return replace(state, fullscreen=not state.fullscreen)
    starts = timeline.clip_starts
    if action is Action.PREV_CLIP:
        if not starts:
            return state
        k = clip_at(starts, current)
        return replace(state, request=starts[max(k - 1, 0)])
    if action is Action.NEXT_CLIP:
        if not starts:
            return state
        k = clip_at(starts, current)
        if k + 1 >= len(starts) or starts[k + 1] >= count:
            return state
        return replace(state, request=starts[k + 1])
    if action is Action.STEP_FORWARD:
        target = current + 1 if (state.request is not None or state.shown is not None) else current
        return replace(state, paused=True, request=target if target < count else state.request)
    if action is Action.STEP_BACK:
        target = current - 1
        return replace(state, paused=True, request=target if target >= 0 else state.request)
    raise ValueError(f"unknown action {action!r}")


# --------------------------------------------------------------------------- frames


class FrameSource(Protocol):
    """What the player plays: RGB frames by number, and the clip structure."""

    fps: Fraction
    frame_count: int
    width: int
    height: int
    clip_starts: tuple[int, ...]

    def frame(self, n: int):
        """Frame ``n``, RGB uint8 (H x W x 3); fastest when called with increasing ``n``."""

    def description(self, k: int) -> str:
        """Clip ``k``'s texts as one line (may be empty)."""

    def close(self) -> None: ...


class M3VSource:
    """An `.m3v` file through ``m3cvc_format.open`` (PyAV's API): seeks land on the start of
    the clip holding the target, and the source decodes forward from there."""

    def __init__(self, path, *, frame_decoder=None) -> None:
        import m3cvc_format as m

        self.path = str(path)
        self.container = m.open(path, frame_decoder=frame_decoder)
        try:
            self.stream = self.container.streams.video[0]
            self.header = self.container.header
            self.fps = Fraction(self.stream.average_rate)
            self.time_base = Fraction(self.stream.time_base)
            self.frame_duration = round(1 / (self.fps * self.time_base))
            self.width, self.height = self.stream.width, self.stream.height
            self.frame_count = int(self.stream.frames)
            self._index = list(self.container.reader.index)
            self.clip_starts = tuple(e.first_frame for e in self._index)
        except BaseException:
            self.container.close()
            raise
        self._frames = None  # the running decode() iterator
        self._next: int | None = None  # the frame it yields next
        self._texts: dict[int, str] = {}
        self._last = None  # (n, frame): the last frame returned
        self.seeks = 0

    def _index_of(self, frame) -> int:
        return int(round(Fraction(frame.pts) * self.time_base * self.fps))

    def frame(self, n: int):
        if not 0 <= n < self.frame_count:
            raise IndexError(f"frame {n} is not in the stream (0..{self.frame_count - 1})")
        if self._last is not None and self._last[0] == n:
            return self._last[1]
        if (
            self._frames is None
            or self._next is None
            or n < self._next
            or clip_at(self.clip_starts, n) != clip_at(self.clip_starts, self._next)
        ):
            # PyAV's way: seek to the keyframe at or before the target, then decode forward.
            self.container.seek(n * self.frame_duration, stream=self.stream, backward=True)
            self._frames = self.container.decode(self.stream)
            self.seeks += 1
        for frame in self._frames:
            i = self._index_of(frame)
            if i >= n:
                self._next = i + 1
                array = frame.to_ndarray(format="rgb24")
                self._last = (i, array)
                return array
        self._frames = self._next = None
        raise IndexError(f"frame {n} is not in the stream")

    def description(self, k: int) -> str:
        """Clip ``k``'s keyframe and clip descriptions, joined (either may be empty)."""
        text = self._texts.get(k)
        if text is None:
            import m3cvc_format as m

            record = self.container.reader.clip(k)
            codec = self.header.text_codec
            parts = [m.decode_text(record.keyframe_text_coded, codec), m.decode_text(record.clip_text_coded, codec)]
            text = " ".join(p.strip() for p in parts if p and p.strip())
            self._texts[k] = text
        return text

    def close(self) -> None:
        self._frames = self._last = None
        self.container.close()


class PrefetchSource:
    """Wraps a :class:`FrameSource` with a thread that decodes ahead of the player.

    The worker decodes frames in order from the last frame asked for, up to ``ahead`` frames
    beyond it (default: one second of the stream), so the cost spikes of a clip's first frame
    (its keyframes) are absorbed while earlier frames play.  A request the worker is not heading
    for (backwards, or in a later clip than the one it decodes) repositions it; the wrapped
    source then seeks.  Only the worker calls the wrapped source's ``frame``; ``description``
    takes the same lock, since both read the file."""

    def __init__(self, source, *, ahead: int | None = None, start: int = 0) -> None:
        import threading

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


def open_source(path) -> M3VSource:
    """Open an `.m3v` file for playing, with the frame decoder the format layer finds for the
    stream's pack.  Errors: FileNotFoundError, m3cvc_format.M3VError, PlayerError (no way to
    decode the stream's pack)."""
    import m3cvc_format as m
    from m3cvc_format import framedecoders

    source = M3VSource(path)
    try:
        framedecoders.find_frame_decoder(source.header.pack_id)(source.header)
    except (m.DecoderNotFoundError, ValueError) as err:  # the pack's own errors are ValueErrors
        source.close()
        raise PlayerError(f"cannot decode pack {source.header.pack_id!r}: {err}") from err
    return source


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


# --------------------------------------------------------------------------- the loop


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
    def start(self, source: FrameSource, state: PlayerState) -> None: ...

    def show(self, frame, view: View) -> None:
        """Draw ``frame`` (None: redraw the last one with ``view``'s overlay and status)."""

    def poll(self, timeout: float) -> list[str]:
        """Key names typed since the last call, waiting up to ``timeout`` s for the first."""

    def stop(self) -> None: ...


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


class Player:
    """Plays ``source`` on ``output`` (see the module documentation for the pacing).

    ``speed``: playback rate factor; ``start``: first frame; ``limit``: stop after that many
    frames have been shown or dropped; ``loop``: start again at the end; ``keep_open``: pause
    on the last frame instead of ending; ``paused``: start paused on the first frame;
    ``clock``: a monotonic clock in seconds (tests give a fake one, with a matching sleep in
    the output)."""

    def __init__(
        self,
        source: FrameSource,
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
