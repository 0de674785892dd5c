"""``m3v-play``: play an `.m3v` stream in an SDL window (pygame, the ``play`` extra), in a
true-colour terminal, or headless (decode and pacing only).

What does not depend on the output, along its seams:

- :mod:`.state`: key names -> actions -> player state (a pure state machine) and the timeline;
- :mod:`.source`: what is played (:class:`PlayerSource`); :class:`M3VSource` reads an `.m3v`
  file through ``m3cvc_format.FrameSource`` with the codec's clip decoder;
- :mod:`.prefetch`: :class:`PrefetchSource`, a thread decoding ahead of the player;
- :mod:`.output`: what outputs share (:class:`View`, :class:`HeadlessOutput`, geometry);
- :mod:`.loop`: :class:`Player`, the decode + timing loop, and its :class:`Stats`.

:mod:`.sdl` and :mod:`.terminal` draw and read keys.  pygame is imported only by :mod:`.sdl`,
when a window is asked for.

    from m3cvc_codec.player import Player, HeadlessOutput, open_player_source

    source = open_player_source("clip.m3v")
    stats = Player(source, HeadlessOutput(), speed=2.0).run()
    print(stats.summary())
"""

from __future__ import annotations

from .loop import Player, Stats
from .output import HeadlessOutput, Output, View, fit_rect, scale_frame
from .prefetch import PrefetchSource
from .source import M3VSource, PlayerSource, open_player_source
from .state import (
    KEYMAP,
    Action,
    PlayerError,
    PlayerState,
    Timeline,
    action_for_key,
    apply_action,
    clip_at,
)

__all__ = [
    "KEYMAP",
    "Action",
    "HeadlessOutput",
    "M3VSource",
    "Output",
    "Player",
    "PlayerError",
    "PlayerSource",
    "PlayerState",
    "PrefetchSource",
    "Stats",
    "Timeline",
    "View",
    "action_for_key",
    "apply_action",
    "clip_at",
    "fit_rect",
    "open_player_source",
    "scale_frame",
]
