"""Frame decoders, found by pack id, the way libavformat finds codecs.

The format package reads bitstreams; turning a clip into pixels needs the model pack the
stream's header names (spec/m3v.md §5.3), which lives in another distribution (the codec,
``m3cvc_codec``, or a third party's).  This module never imports one: a package that can
reconstruct frames for a pack registers a *factory* under the pack's id in the entry-point
group ``m3cvc.frame_decoders``::

    [project.entry-points."m3cvc.frame_decoders"]
    lite = "m3cvc_codec.clip_decoder:ClipDecoder"

A factory is called with the stream's :class:`~m3cvc_format.Header` and returns a
:class:`FrameDecoder`; it raises (a ``ValueError``) when it cannot decode that stream, for
example when the installed weights differ from the header's ``pack_hash``.

The protocol is two methods; frames are RGB ``uint8`` arrays of the header's size
(``height x width x 3``)::

    decoder.decode_keyframe(clip)                 # clip: a decoded Clip (or a ClipRecord)
    decoder.reconstruct(clip, keyframe, next_kf)  # the clip's frame_count frames, in order;
                                                  # next_kf is None for prediction

``reconstruct`` is given ``next_keyframe=None`` whenever the clip is to be predicted: its mode
says so, or its successor is not available (the last clip, a cut-off stream, a lost clip);
it never looks at the clip's mode to decide.  It may return a list or a lazy iterable.

:func:`register` adds a factory in-process (applications, tests); it wins over entry points.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from .errors import M3VError

if TYPE_CHECKING:
    from importlib.metadata import EntryPoints

__all__ = [
    "GROUP",
    "DecoderNotFoundError",
    "FrameDecoder",
    "FrameDecoderFactory",
    "available_frame_decoders",
    "find_frame_decoder",
    "open_frame_decoder",
    "register",
    "unregister",
]

#: The entry-point group: names are pack ids, values are factories ``(header) -> FrameDecoder``.
GROUP = "m3cvc.frame_decoders"


@runtime_checkable
class FrameDecoder(Protocol):
    """Turns the clips of one stream into frames (RGB uint8, H x W x 3)."""

    def decode_keyframe(self, clip: Any) -> Any:
        """The keyframe of ``clip`` (a decoded :class:`~m3cvc_format.Clip`; a
        :class:`~m3cvc_format.ClipRecord` is decoded first)."""

    def reconstruct(self, clip: Any, keyframe: Any, next_keyframe: Any | None) -> Iterable[Any]:
        """The ``clip.frame_count`` frames of ``clip``: interpolated towards ``next_keyframe``,
        or predicted from ``keyframe`` alone when it is None."""


FrameDecoderFactory = Callable[[Any], FrameDecoder]


class DecoderNotFoundError(M3VError):
    """No frame decoder is installed for the stream's pack id."""


_registered: dict[str, FrameDecoderFactory] = {}

#: Registration name of a decoder that serves any pack id it can load.
ANY_PACK = "*"


def register(pack_id: str, factory: FrameDecoderFactory) -> None:
    """Use ``factory`` for ``pack_id`` in this process (before any entry point)."""
    if not callable(factory):
        raise TypeError("a frame decoder factory must be callable (header) -> FrameDecoder")
    _registered[pack_id] = factory


def unregister(pack_id: str) -> None:
    _registered.pop(pack_id, None)


def _entry_points() -> EntryPoints:
    from importlib.metadata import entry_points

    return entry_points(group=GROUP)


def available_frame_decoders() -> list[str]:
    """Pack ids a frame decoder is installed for (entry points and :func:`register`)."""
    return sorted({ep.name for ep in _entry_points()} | set(_registered))


def _refusing_as_not_found(factory: FrameDecoderFactory, pack_id: str, have: str) -> FrameDecoderFactory:
    """``factory``, with its refusal of a pack it cannot load reported as DecoderNotFoundError."""

    def make(header: Any) -> FrameDecoder:
        try:
            return factory(header)
        except M3VError:
            raise
        except ValueError as err:
            raise DecoderNotFoundError(
                f"no frame decoder for pack {pack_id!r}: {err} (installed frame decoders: {have})"
            ) from err

    return make


def find_frame_decoder(pack_id: str) -> FrameDecoderFactory:
    """The factory registered for ``pack_id``; DecoderNotFoundError naming the installed ones."""
    factory = _registered.get(pack_id)
    if factory is not None:
        return factory
    eps = list(_entry_points())
    for ep in eps:
        if ep.name == pack_id:
            found: FrameDecoderFactory = ep.load()
            return found
    # A decoder registered as "*" (never a valid pack id) serves any other pack it can load,
    # the way the codec package decodes every pack installed through ``m3cvc.packs``; its
    # factory raises, naming the problem, when it cannot.
    have = ", ".join(available_frame_decoders()) or "none"
    if pack_id != "none":
        any_pack = _registered.get(ANY_PACK) or next((ep.load() for ep in eps if ep.name == ANY_PACK), None)
        if any_pack is not None:
            return _refusing_as_not_found(any_pack, pack_id, have)
    if pack_id == "none":
        raise DecoderNotFoundError(
            f"stream has pack 'none': its index maps are not meant to be decoded to pixels "
            f"(installed frame decoders: {have})"
        )
    raise DecoderNotFoundError(
        f"no frame decoder for pack {pack_id!r} (installed frame decoders: {have}; "
        f"a package provides one under the entry-point group {GROUP!r})"
    )


def open_frame_decoder(header: Any) -> FrameDecoder:
    """A frame decoder for a stream with this header (the factory's errors pass through)."""
    return find_frame_decoder(header.pack_id)(header)
