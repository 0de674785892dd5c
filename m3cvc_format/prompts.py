"""The PRMT chunk (spec/m3v.md §4.3): the prompts of the dialogue that wrote a stream's texts.

The payload is one MessagePack map with string keys, sorted at every level: ``keyframe`` and
``clip`` (the turns of the keyframe and the clip dialogue, as sent, placeholders unexpanded)
and the optional ``name``, ``version``, ``turns``, ``model`` and ``settings``.  Keys this
version does not define are kept and otherwise ignored.  The chunk is informative: nothing a
decoder does depends on it.

:func:`pack_prompts` checks a map and gives the payload a writer stores; :func:`parse_prompts`
checks a payload and gives the map back.  Both raise :class:`~m3cvc_format.errors.MalformedError`
(a ValueError) with one line naming the key at fault.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from .constants import MAX_PROMPTS_BYTES
from .errors import LimitError, MalformedError

__all__ = ["PROMPTS_KEYS", "SETTINGS_KEYS", "check_prompts", "pack_prompts", "parse_prompts"]

#: The keys of the PRMT map that spec/m3v.md §4.3 defines, and what each holds.
PROMPTS_KEYS = {
    "keyframe": "array of strings (required)",
    "clip": "array of strings (required)",
    "name": "string",
    "version": "integer >= 0",
    "turns": "integer >= 1",
    "model": "string",
    "system": "string",
    "settings": "map with string keys",
}

#: The registered keys of ``settings`` (spec/m3v.md §4.3).
SETTINGS_KEYS = {
    "max_new_tokens": "integer >= 0",
    "greedy": "boolean",
    "clip_input": '"video" or "frames"',
    "frames": "integer >= 0",
}


def _turns(value: Any, key: str) -> list[str]:
    if isinstance(value, (str, bytes)) or not isinstance(value, Sequence):
        raise MalformedError(f"prompts {key!r} must be a list of strings, not {type(value).__name__}")
    for i, turn in enumerate(value):
        if not isinstance(turn, str):
            raise MalformedError(f"prompts {key!r} turn {i + 1} is {type(turn).__name__}, not a string")
    return list(value)


def _integer(value: Any, key: str, low: int) -> int:
    if type(value) is not int or value < low:
        raise MalformedError(f"prompts {key!r} must be an integer >= {low}, not {value!r}")
    return value


def _string(value: Any, key: str) -> str:
    if not isinstance(value, str):
        raise MalformedError(f"prompts {key!r} must be a string, not {type(value).__name__}")
    return value


def _string_keys(value: Any, where: str) -> None:
    """Map keys are strings at every level (msgpack would otherwise accept binary keys)."""
    if isinstance(value, Mapping):
        for k, v in value.items():
            if not isinstance(k, str):
                raise MalformedError(f"{where} has a key that is not a string: {k!r}")
            _string_keys(v, f"{where} {k!r}")
    elif isinstance(value, (list, tuple)):
        for v in value:
            _string_keys(v, where)


def check_prompts(prompts: Mapping[str, Any]) -> dict[str, Any]:
    """``prompts`` checked against §4.3, as a plain dict (turn sequences as lists).

    ``keyframe`` and ``clip`` are required lists of strings; ``name``, ``model`` and ``system``
    strings; ``version`` an integer >= 0; ``turns`` an integer >= 1; ``settings`` a map with string
    keys, whose registered keys hold what :data:`SETTINGS_KEYS` says.
    Other keys are allowed (readers ignore the ones they do not know); every key at every
    level must be a string."""
    if not isinstance(prompts, Mapping):
        raise MalformedError(f"prompts must be a map, not {type(prompts).__name__}")
    _string_keys(prompts, "prompts")
    out = dict(prompts)
    for key in ("keyframe", "clip"):
        if key not in out:
            raise MalformedError(f"prompts have no {key!r} turns")
        out[key] = _turns(out[key], key)
    for key in ("name", "model", "system"):
        if key in out:
            _string(out[key], key)
    if "version" in out:
        _integer(out["version"], "version", 0)
    if "turns" in out:
        _integer(out["turns"], "turns", 1)
    if "settings" in out:
        settings = out["settings"]
        if not isinstance(settings, Mapping):
            raise MalformedError(f"prompts 'settings' must be a map, not {type(settings).__name__}")
        for key in ("max_new_tokens", "frames"):
            if key in settings:
                _integer(settings[key], f"settings.{key}", 0)
        if "greedy" in settings and type(settings["greedy"]) is not bool:
            raise MalformedError(f"prompts 'settings.greedy' must be true or false, not {settings['greedy']!r}")
        if "clip_input" in settings and settings["clip_input"] not in ("video", "frames"):
            raise MalformedError(
                f'prompts \'settings.clip_input\' must be "video" or "frames", not {settings["clip_input"]!r}'
            )
        out["settings"] = dict(settings)
    return out


def pack_prompts(prompts: Mapping[str, Any]) -> bytes:
    """The PRMT payload for ``prompts``: checked (:func:`check_prompts`), then MessagePack with
    map keys sorted at every level, strings as str and byte strings as bin (as HEAD metadata,
    §5.4), so equal prompts give equal bytes."""
    from .model import pack_metadata

    try:
        payload = pack_metadata(check_prompts(prompts))
    except (TypeError, ValueError) as err:
        if isinstance(err, MalformedError):
            raise
        raise MalformedError(f"prompts cannot be stored as MessagePack: {err}") from None
    if len(payload) > MAX_PROMPTS_BYTES:
        raise LimitError(f"prompts of {len(payload)} bytes exceed {MAX_PROMPTS_BYTES}")
    return payload


def parse_prompts(payload: bytes, offset: int | None = None) -> dict[str, Any]:
    """The map a PRMT payload holds, checked as :func:`check_prompts` does; ``offset`` (the
    chunk's) locates errors.  The payload must be exactly one MessagePack map."""
    import msgpack

    if len(payload) > MAX_PROMPTS_BYTES:
        raise LimitError(f"PRMT payload of {len(payload)} bytes exceeds {MAX_PROMPTS_BYTES}", offset)
    try:
        value = msgpack.unpackb(bytes(payload), raw=False, strict_map_key=True, use_list=True)
    except Exception as err:  # msgpack raises several unrelated types (ExtraData, ValueError, ...)
        reason = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise MalformedError(f"PRMT payload is not one MessagePack map: {reason}", offset) from None
    if not isinstance(value, dict):
        raise MalformedError(f"PRMT payload is a MessagePack {type(value).__name__}, not a map", offset)
    try:
        return check_prompts(value)
    except MalformedError as err:
        raise MalformedError(f"PRMT: {err.message}", offset) from None
