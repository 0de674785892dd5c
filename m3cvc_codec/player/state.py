"""Key handling as a pure state machine: key names -> :class:`Action` -> a new :class:`PlayerState`.

Nothing here reads a keyboard, draws or decodes.  An output turns its own input events into key
names ("space", "left", ",", "q", ...); :func:`action_for_key` maps them to actions and
:func:`apply_action` gives the state after an action, knowing of the stream only its
:class:`Timeline` (frame count and clip starts).
"""

from __future__ import annotations

import bisect
import enum
from collections.abc import Sequence
from dataclasses import dataclass, replace

__all__ = [
    "KEYMAP",
    "Action",
    "PlayerError",
    "PlayerState",
    "Timeline",
    "action_for_key",
    "apply_action",
    "clip_at",
]


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
