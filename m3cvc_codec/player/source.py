"""What the player plays: :class:`PlayerSource`, and :class:`M3VSource`, an `.m3v` file decoded
by the one decoding path (``m3cvc_format.FrameSource`` with the codec's
:class:`~m3cvc_codec.clip_decoder.ClipDecoder`).

Frame ``n`` decodes forward from the start of the clip that holds it; walking forward through a
clip decodes each frame once, and the keyframes of recent clips stay cached in the frame source.
"""

from __future__ import annotations

from fractions import Fraction
from typing import Any, Protocol

from .state import PlayerError

__all__ = ["M3VSource", "PlayerSource", "open_player_source"]


class PlayerSource(Protocol):
    """What the player plays: RGB frames by number, and the clip structure.  (Not to be confused
    with ``m3cvc_format.FrameSource``, the format's decoder of frames, which :class:`M3VSource`
    wraps.)"""

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
    """An `.m3v` file (or a Matroska file holding one) as a :class:`PlayerSource`.

    ``decoder``: a ready frame decoder; by default a
    :class:`~m3cvc_codec.clip_decoder.ClipDecoder` for the stream's header, built with
    ``pack_config`` and ``options`` (those of :func:`m3cvc_codec.packs.load_pack`), which
    checks the stream's pack and weights hash (PackError when they cannot be had), and
    ``progress`` (its hook for the diffusion steps of a slow pack, :mod:`m3cvc_codec.progress`;
    None: a line on stderr when it is a terminal, False: nothing).  ``pack``: refuse a stream
    coded with another pack (PlayerError)."""

    def __init__(
        self, path, *, decoder=None, pack: str | None = None, pack_config=None, options=None, progress=None
    ) -> None:
        import m3cvc_format as m

        reader = m.Reader(path)
        try:
            self.header = reader.header
            if pack is not None and self.header.pack_id != pack:
                raise PlayerError(f"stream was coded with pack {self.header.pack_id!r}, not {pack!r}")
            if decoder is None:
                from ..clip_decoder import ClipDecoder

                decoder = ClipDecoder(self.header, pack_config=pack_config, options=options, progress=progress)
            self.frames = m.FrameSource(reader, decoder=decoder)
        except BaseException:
            reader.close()
            raise
        self.path = str(path)
        self.fps = Fraction(self.header.fps)
        self.width, self.height = self.header.width, self.header.height
        self.frame_count = reader.frame_count
        self.clip_starts = tuple(e.first_frame for e in reader.index)
        self._texts: dict[int, str] = {}
        self._last: tuple[int, Any] | None = None  # (n, frame): the last frame returned

    def frame(self, n: int):
        if not 0 <= n < self.frame_count:
            raise IndexError(f"frame {n} is not in the stream (0..{self.frame_count - 1})")
        if self._last is not None and self._last[0] == n:
            return self._last[1]
        array = self.frames.frame(n)
        self._last = (n, array)
        return array

    def description(self, k: int) -> str:
        """Clip ``k``'s keyframe and clip descriptions, joined (either may be empty)."""
        text = self._texts.get(k)
        if text is None:
            import m3cvc_format as m

            record = self.frames.reader.clip(k)
            codec = self.header.text_codec
            parts = [m.decode_text(record.keyframe_text_coded, codec), m.decode_text(record.clip_text_coded, codec)]
            text = " ".join(p.strip() for p in parts if p and p.strip())
            self._texts[k] = text
        return text

    def close(self) -> None:
        self._last = None
        self.frames.close()


def open_player_source(path, *, pack: str | None = None, pack_config=None, options=None, progress=None) -> M3VSource:
    """Open an `.m3v` file for playing (see :class:`M3VSource`).  Errors: OSError,
    m3cvc_format.M3VError, PackError (the stream's pack or weights cannot be had), PlayerError
    (a stream with no frames, or not of ``pack``)."""
    source = M3VSource(path, pack=pack, pack_config=pack_config, options=options, progress=progress)
    if source.frame_count <= 0:
        source.close()
        raise PlayerError("the stream has no frames")
    return source
