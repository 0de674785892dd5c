"""Step progress of slow frame decoding (the full pack's diffusion loops), for whoever shows it.

A decoded frame of the ``full`` pack costs a diffusion loop: tens of UNet or transformer steps
per keyframe and per clip, seconds to minutes each on a CPU.  A frame-level progress bar then
stands still for minutes, so the pack reports every step, and the caller decides where it goes:

- the pack calls :func:`step` (``"keyframe"`` or ``"clip"``, step, steps) inside its loops (for
  the clip pipelines, through diffusers' ``callback_on_step_end``: :func:`pipeline_callback`);
- :class:`~m3cvc_codec.clip_decoder.ClipDecoder` runs each pack call inside :func:`reporting`,
  which names the clip and hands each :class:`Step` to its hook: :class:`StderrLine` by default
  (:func:`default_hook`), a ``tqdm`` bar's postfix in ``m3v-decode``, or any callable.

The hook is held in a :class:`contextvars.ContextVar`, so packs shared between decoders (the pack
cache) and decoders running in threads (the player's prefetch thread) each report to their own
caller; with no hook in place, :func:`step` does nothing.

Whether the default shows anything: ``M3CVC_PROGRESS=0`` (or ``off``, ``no``, ``false``) never,
``M3CVC_PROGRESS=1`` always (one line per step where stderr is not a terminal), unset: when
stderr is a terminal, as one line rewritten in place and cleared when the keyframe or clip is
done.  An output that draws on the terminal itself (``m3v-play --terminal``) mutes it while it
runs (:func:`muted`).  This module imports nothing heavy.
"""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any, TextIO

__all__ = [
    "ENV",
    "Hook",
    "StderrLine",
    "Step",
    "active",
    "default_hook",
    "muted",
    "pipeline_callback",
    "reporting",
    "step",
]

#: The environment variable that turns the default progress display on (1) or off (0).
ENV = "M3CVC_PROGRESS"

_OFF = ("0", "off", "no", "false")
_ON = ("1", "on", "yes", "true")


@dataclass(frozen=True)
class Step:
    """One finished step: ``stage`` (``"keyframe"``, ``"clip"``) of clip ``clip`` (None when
    the caller named none), ``step`` of ``steps`` done."""

    stage: str
    step: int
    steps: int
    clip: int | None = None

    def __str__(self) -> str:
        where = f"clip {self.clip} {self.stage}" if self.clip is not None else self.stage
        return f"{where}: step {self.step}/{self.steps}"


#: What receives the steps.
Hook = Callable[[Step], None]

_current: ContextVar[Callable[[str, int, int], None] | None] = ContextVar("m3cvc_progress", default=None)


def active() -> bool:
    """Whether a hook would receive :func:`step` calls here (so a pack can skip the work of
    wiring callbacks when none would)."""
    return _current.get() is not None


def step(stage: str, done: int, steps: int) -> None:
    """Report that step ``done`` of ``steps`` of ``stage`` is finished (nothing without a hook)."""
    report = _current.get()
    if report is not None:
        report(stage, int(done), int(steps))


@contextmanager
def reporting(hook: Hook | None, *, clip: int | None = None) -> Iterator[None]:
    """Steps reported meanwhile (in this thread or task) go to ``hook`` as :class:`Step` with
    ``clip``; ``hook`` None: they go nowhere (an enclosing hook is masked, not used)."""
    report = None if hook is None else (lambda stage, done, steps: hook(Step(stage, done, steps, clip)))
    token = _current.set(report)
    try:
        yield
    finally:
        _current.reset(token)


def pipeline_callback(stage: str, steps: int) -> Callable[..., dict[str, Any]] | None:
    """A diffusers ``callback_on_step_end`` reporting ``stage``'s steps (the pipeline's own
    count, ``num_timesteps``, where it has one, else ``steps``), or None when no hook listens."""
    if not active():
        return None

    def callback(pipe: Any, index: int, timestep: Any, tensors: dict[str, Any]) -> dict[str, Any]:
        total = getattr(pipe, "num_timesteps", None)
        step(stage, index + 1, int(total) if isinstance(total, int) and total > 0 else steps)
        return {}  # nothing replaced: the pipeline keeps its latents

    return callback


# -- showing it ----------------------------------------------------------------------------

_mute_lock = threading.Lock()
_mute_depth = 0


@contextmanager
def muted() -> Iterator[None]:
    """:class:`StderrLine` writes nothing meanwhile (for outputs that draw on the terminal)."""
    global _mute_depth
    with _mute_lock:
        _mute_depth += 1
    try:
        yield
    finally:
        with _mute_lock:
            _mute_depth -= 1


class StderrLine:
    """Shows steps on ``stream`` (default: ``sys.stderr`` when called): on a terminal one line
    rewritten in place (``prefix: clip 3 keyframe: step 5/25``) and cleared when its stage is
    done; elsewhere one line per step.  Writes nothing while :func:`muted`."""

    def __init__(self, prefix: str = "decoding", stream: TextIO | None = None) -> None:
        self.prefix = prefix
        self.stream = stream
        self._lock = threading.Lock()

    def __call__(self, event: Step) -> None:
        if _mute_depth:
            return
        out = self.stream if self.stream is not None else sys.stderr
        tty = _isatty(out)
        text = f"{self.prefix}: {event}" if self.prefix else str(event)
        with self._lock:
            try:
                if not tty:
                    out.write(text + "\n")
                elif event.step >= event.steps:
                    out.write("\r\x1b[K")
                else:
                    out.write(f"\r{text}\x1b[K")
                out.flush()
            except (OSError, ValueError):  # a closed or broken stderr never stops decoding
                pass


def _isatty(stream: Any) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, OSError, ValueError):
        return False


def default_hook(prefix: str = "decoding") -> Hook | None:
    """:class:`StderrLine` where the environment asks for it (``M3CVC_PROGRESS=1``) or stderr
    is a terminal and it does not forbid it (``M3CVC_PROGRESS=0``); else None."""
    flag = os.environ.get(ENV, "").strip().lower()
    if flag in _OFF:
        return None
    if flag in _ON or _isatty(sys.stderr):
        return StderrLine(prefix)
    return None
