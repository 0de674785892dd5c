"""``m3v-play``: play an `.m3v` stream in an SDL window (pygame, the ``play`` extra), in a
true-colour terminal, or headless (decode and pacing only).

:mod:`.core` holds what does not depend on the output: the frame source
(``m3cvc_format.open``, PyAV's API), the key handling (a pure state machine) and the decode +
timing loop; :mod:`.sdl` and :mod:`.terminal` draw and read keys.  pygame is imported only by
:mod:`.sdl`, when a window is asked for.

    from m3cvc_codec.player import Player, HeadlessOutput, open_source

    source = open_source("clip.m3v")
    stats = Player(source, HeadlessOutput(), speed=2.0).run()
    print(stats.summary())
"""

from __future__ import annotations

from .core import (
    KEYMAP,
    Action,
    HeadlessOutput,
    M3VSource,
    Player,
    PlayerError,
    PlayerState,
    Stats,
    Timeline,
    View,
    action_for_key,
    apply_action,
    clip_at,
    fit_rect,
    open_source,
    scale_frame,
)

__all__ = [
    "KEYMAP",
    "Action",
    "HeadlessOutput",
    "M3VSource",
    "Player",
    "PlayerError",
    "PlayerState",
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
