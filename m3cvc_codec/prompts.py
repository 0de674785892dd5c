"""The prompts of the description dialogue: a versioned JSON file the user can copy and edit.

The shipped default is ``m3cvc_codec/data/prompts/default.json`` (:func:`default_prompts_path`);
``m3v-encode --prompts FILE`` reads another.  The file::

    {
      "format": "m3cvc-prompts/1",           // this layout, version 1 (required)
      "name": "my-prompts",                  // recorded in the stream (required)
      "version": 3,                          // the prompts' own version, an integer >= 0 (required)
      "about": "free text",                  // ignored
      "system": "You are ...",               // optional system turn (default: the model's)
      "keyframe": {                          // the keyframe dialogue, per turn count
        "4": ["turn 1", "turn 2", "turn 3", "turn 4"],
        "2": ["turn 1", "turn 2"],
        "1": ["turn 1"]
      },
      "clip": ["turn 1"]                     // the clip dialogue (the same for every turn count)
    }

The reply to a dialogue's last turn is its description: D^F for the keyframe dialogue, D^C for
the clip dialogue.  A turn is a string with placeholders, filled when it is sent:

- keyframe turns: ``{keyframe}`` (the keyframe image), ``{previous_keyframe}`` (the previous
  clip's keyframe image), ``{previous_text}`` (the D^F given for it);
- clip turns: ``{clip}`` (the clip: a video, or frames sampled from it), ``{keyframe}`` (its
  keyframe image), ``{keyframe_text}`` (the D^F just given).

An image placeholder puts the image at that place in the message; a text placeholder is
replaced by the text.  The first keyframe has no previous one: a part of a turn in double
square brackets ``[[ ... ]]`` is left out when a placeholder in it has no value, and a turn
that uses ``{previous_keyframe}`` or ``{previous_text}`` outside brackets is skipped (the
default 4-turn dialogue thus asks 3 questions about the first keyframe, 4 about the others).
Any other ``{name}`` is an error (a misspelt placeholder would otherwise be sent as is).

:meth:`Prompts.record` gives the map the stream's PRMT chunk stores (spec/m3v.md §4.3).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from .errors import CodecError

__all__ = [
    "CLIP_PLACEHOLDERS",
    "FORMAT",
    "KEYFRAME_PLACEHOLDERS",
    "Prompts",
    "PromptsError",
    "Segment",
    "default_prompts_path",
    "default_prompts_text",
    "expand_turn",
    "load_prompts",
    "parse_prompts",
]

#: The ``format`` value of the layout this module reads.
FORMAT = "m3cvc-prompts/1"

#: placeholder -> "image" | "video" | "text", per dialogue.
KEYFRAME_PLACEHOLDERS = {"keyframe": "image", "previous_keyframe": "image", "previous_text": "text"}
CLIP_PLACEHOLDERS = {"clip": "video", "keyframe": "image", "keyframe_text": "text"}
#: Placeholders that have no value for the first keyframe.
PREVIOUS = ("previous_keyframe", "previous_text")

_KEYS = {"format", "name", "version", "about", "system", "keyframe", "clip"}
_PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")
_MAX_TURNS = 16
_MAX_TURN_CHARS = 8192


class PromptsError(CodecError):
    """A prompts file that cannot be used: one line naming the file and the problem."""


#: One piece of a filled turn: ("text", str) or ("image"|"video", placeholder name).
Segment = tuple[str, str]


def _sections(text: str, where: str) -> list[tuple[bool, str]]:
    """``text`` cut into (optional?, piece): pieces inside [[ ]] are optional."""
    out: list[tuple[bool, str]] = []
    rest = text
    while rest:
        start = rest.find("[[")
        stray = rest.find("]]")
        if stray != -1 and (start == -1 or stray < start):
            raise PromptsError(f"{where}: ']]' without '[['")
        if start == -1:
            out.append((False, rest))
            break
        end = rest.find("]]", start + 2)
        if end == -1:
            raise PromptsError(f"{where}: '[[' without ']]'")
        inner = rest[start + 2 : end]
        if "[[" in inner:
            raise PromptsError(f"{where}: '[[ ]]' sections cannot nest")
        if rest[:start]:
            out.append((False, rest[:start]))
        out.append((True, inner))
        rest = rest[end + 2 :]
    return out


def expand_turn(text: str, values: Mapping[str, Any], kinds: Mapping[str, str]) -> list[Segment] | None:
    """The turn ``text`` filled: a list of segments, ("text", str) with text placeholders
    replaced and ("image" | "video", name) where an image or video goes; None when the turn is
    skipped (a placeholder outside [[ ]] has no value, i.e. ``values[name]`` is None).  Adjacent
    text is merged; empty text is dropped."""
    pieces: list[Segment] = []
    for optional, piece in _sections(text, "turn"):
        names = _PLACEHOLDER.findall(piece)
        if any(values.get(n) is None for n in names if n in kinds):
            if optional:
                continue
            return None
        pos = 0
        for m in _PLACEHOLDER.finditer(piece):
            name = m.group(1)
            if name not in kinds:
                continue
            pieces.append(("text", piece[pos : m.start()]))
            if kinds[name] == "text":
                pieces.append(("text", str(values[name])))
            else:
                pieces.append((kinds[name], name))
            pos = m.end()
        pieces.append(("text", piece[pos:]))
    merged: list[Segment] = []
    for kind, value in pieces:
        if kind == "text" and merged and merged[-1][0] == "text":
            merged[-1] = ("text", merged[-1][1] + value)
        else:
            merged.append((kind, value))
    return [(k, v) for k, v in merged if k != "text" or v]


@dataclass(frozen=True)
class Prompts:
    """A checked prompts file (see the module docstring)."""

    name: str
    version: int
    keyframe: Mapping[int, tuple[str, ...]]
    clip: tuple[str, ...]
    system: str | None = None
    source: str = field(default="", compare=False)

    @property
    def turn_counts(self) -> list[int]:
        """The keyframe dialogue's turn counts this file has, ascending."""
        return sorted(self.keyframe)

    def keyframe_turns(self, turns: int) -> tuple[str, ...]:
        """The keyframe dialogue of ``turns`` turns; PromptsError when the file has none."""
        try:
            return self.keyframe[turns]
        except KeyError:
            have = ", ".join(str(n) for n in self.turn_counts)
            raise PromptsError(
                f"{self.source or self.name}: no {turns}-turn keyframe dialogue (it has {have})"
            ) from None

    def record(self, turns: int, model: str | None = None, settings: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """The PRMT map (spec/m3v.md §4.3) of the dialogue of ``turns`` turns: ``keyframe``
        and ``clip`` (the turns as written, placeholders unexpanded), ``name``, ``version``,
        ``turns``, and ``model`` and ``settings`` when given; ``system`` when the file sets one."""
        out: dict[str, Any] = {
            "keyframe": list(self.keyframe_turns(turns)),
            "clip": list(self.clip),
            "name": self.name,
            "version": self.version,
            "turns": turns,
        }
        if model is not None:
            out["model"] = model
        if settings is not None:
            out["settings"] = dict(settings)
        if self.system is not None:
            out["system"] = self.system
        return out


def _turn_list(value: Any, where: str, kinds: Mapping[str, str]) -> tuple[str, ...]:
    if not isinstance(value, list) or not value:
        raise PromptsError(f"{where} must be a non-empty list of strings")
    if len(value) > _MAX_TURNS:
        raise PromptsError(f"{where} has {len(value)} turns (at most {_MAX_TURNS})")
    for i, turn in enumerate(value):
        at = f"{where}[{i}]"
        if not isinstance(turn, str) or not turn.strip():
            raise PromptsError(f"{at} must be a non-empty string")
        if len(turn) > _MAX_TURN_CHARS:
            raise PromptsError(f"{at} is longer than {_MAX_TURN_CHARS} characters")
        for _optional, piece in _sections(turn, at):
            for name in _PLACEHOLDER.findall(piece):
                if name not in kinds:
                    known = ", ".join("{" + k + "}" for k in kinds)
                    raise PromptsError(f"{at}: unknown placeholder {{{name}}} (known here: {known})")
    return tuple(value)


def _images(segments: list[Segment] | None) -> set[str]:
    return {v for k, v in segments or () if k != "text"}


def parse_prompts(data: Any, source: str = "prompts") -> Prompts:
    """A :class:`Prompts` from a parsed JSON document; PromptsError naming ``source`` and the key."""
    if not isinstance(data, Mapping):
        raise PromptsError(f"{source}: top level must be a JSON object")
    unknown = sorted(set(data) - _KEYS)
    if unknown:
        raise PromptsError(f"{source}: unknown key {unknown[0]!r} (allowed: {', '.join(sorted(_KEYS))})")
    fmt = data.get("format")
    if fmt != FORMAT:
        if isinstance(fmt, str) and fmt.startswith("m3cvc-prompts/"):
            raise PromptsError(f"{source}: format {fmt!r} is not supported (this version reads {FORMAT!r})")
        raise PromptsError(f"{source}: 'format' must be {FORMAT!r} (is this a prompts file?)")
    name = data.get("name")
    if not isinstance(name, str) or not name.strip():
        raise PromptsError(f"{source}: 'name' must be a non-empty string")
    version = data.get("version")
    if type(version) is not int or version < 0:
        raise PromptsError(f"{source}: 'version' must be an integer >= 0, got {version!r}")
    system = data.get("system")
    if system is not None and not isinstance(system, str):
        raise PromptsError(f"{source}: 'system' must be a string")
    if "about" in data and not isinstance(data["about"], (str, list)):
        raise PromptsError(f"{source}: 'about' must be a string or a list of strings")

    keyframe_data = data.get("keyframe")
    if not isinstance(keyframe_data, Mapping) or not keyframe_data:
        raise PromptsError(f"{source}: 'keyframe' must be an object mapping turn counts (4, 2, 1) to turns")
    keyframe: dict[int, tuple[str, ...]] = {}
    for key, turns in keyframe_data.items():
        where = f"{source}: keyframe[{key!r}]"
        if not (isinstance(key, str) and key.isdigit() and 1 <= int(key) <= _MAX_TURNS):
            raise PromptsError(f"{where}: the key must be a turn count 1-{_MAX_TURNS}")
        parsed = _turn_list(turns, where, KEYFRAME_PLACEHOLDERS)
        if len(parsed) != int(key):
            raise PromptsError(f"{where} has {len(parsed)} turns, not {key}")
        for previous in (True, False):
            values = {
                "keyframe": 1,
                "previous_keyframe": 1 if previous else None,
                "previous_text": "" if previous else None,
            }
            kept = [s for s in (expand_turn(t, values, KEYFRAME_PLACEHOLDERS) for t in parsed) if s is not None]
            if not kept:
                raise PromptsError(f"{where}: every turn needs a previous keyframe, so the first keyframe gets none")
            if "keyframe" not in set().union(*(_images(s) for s in kept)):
                which = "a later" if previous else "the first"
                raise PromptsError(f"{where}: no turn shows {{keyframe}} for {which} keyframe")
        keyframe[int(key)] = parsed

    clip = _turn_list(data.get("clip"), f"{source}: clip", CLIP_PLACEHOLDERS)
    values = {"clip": 1, "keyframe": 1, "keyframe_text": ""}
    if "clip" not in set().union(*(_images(expand_turn(t, values, CLIP_PLACEHOLDERS)) for t in clip)):
        raise PromptsError(f"{source}: clip: no turn shows {{clip}}")
    return Prompts(name=name, version=version, keyframe=keyframe, clip=clip, system=system, source=source)


def default_prompts_path() -> Path:
    """The shipped prompts file (copy it to write your own)."""
    return Path(str(resources.files("m3cvc_codec") / "data" / "prompts" / "default.json"))


def default_prompts_text() -> str:
    """The shipped prompts file's text (``m3v-encode --print-prompts``), to copy and edit."""
    return default_prompts_path().read_text(encoding="utf-8")


def load_prompts(path: str | Path | None = None) -> Prompts:
    """Read and check a prompts file (None: the shipped default); PromptsError naming the problem."""
    p = default_prompts_path() if path is None else Path(path)
    try:
        raw = p.read_bytes()
    except FileNotFoundError:
        raise PromptsError(f"{path}: no such prompts file") from None
    except OSError as err:
        raise PromptsError(f"{path}: cannot read ({err.strerror or err})") from None
    try:
        data = json.loads(raw.decode("utf-8-sig"))
    except UnicodeDecodeError:
        raise PromptsError(f"{p}: not UTF-8 text") from None
    except json.JSONDecodeError as err:
        raise PromptsError(f"{p}: invalid JSON at line {err.lineno} column {err.colno}: {err.msg}") from None
    return parse_prompts(data, source=str(p) if path is not None else "default prompts")
