"""The codec's one clip decoder: the frames of a stream's clips through its model pack.

:class:`ClipDecoder` is the :class:`m3cvc_format.framedecoders.FrameDecoder` every path uses:
``m3cvc_codec.decode``, ``m3cvc_format.open`` (the PyAV facade) and the player.  The format
package finds it by pack id in the ``m3cvc.frame_decoders`` entry-point group (pyproject)::

    [project.entry-points."m3cvc.frame_decoders"]
    lite = "m3cvc_codec.clip_decoder:ClipDecoder"

so that ``m3cvc_format.open("x.m3v")`` decodes frames without the format package importing
the codec; build one yourself to decode with another pack config or runtime options::

    decoder = ClipDecoder(header, pack_config="my-weights/", options=RuntimeOptions(device="cuda"))
    m3cvc_format.FrameSource(reader, decoder=decoder)

Construction checks the stream's pack id and weights hash
(:func:`m3cvc_codec.packs.check_stream_pack`) and raises PackError when they do not match.
Keyframes are decoded with their decode seed (:func:`m3cvc_format.decode_seed`); clips come from
:meth:`Pack.reconstruct_clip <m3cvc_codec.packs.Pack.reconstruct_clip>` with the same seed.
Frames a pack makes at another size (a video model's own resolution) are resized to the
stream's (area interpolation).  Whether a clip is
interpolated or predicted is the caller's choice (FrameSource passes the next keyframe or None).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np

from . import packs as _packs

__all__ = ["ClipDecoder"]


class ClipDecoder:
    """Frames of one stream: ``decode_keyframe(clip)`` and ``reconstruct(clip, kf, next_kf)``
    (the :class:`m3cvc_format.framedecoders.FrameDecoder` protocol).  ``pack_config`` and ``options`` are
    those of :func:`m3cvc_codec.packs.load_pack`."""

    def __init__(
        self,
        header,
        *,
        pack_config: _packs.PackConfig | str | Path | None = None,
        options: _packs.RuntimeOptions | None = None,
    ) -> None:
        self.header = header
        self.pack, self.grid = _packs.check_stream_pack(header, pack_config, options)

    def _clip(self, clip):
        return clip.decode(self.header) if hasattr(clip, "keyframe_text_coded") else clip

    def _seed(self, clip) -> int:
        import m3cvc_format as m

        return m.decode_seed(self.header.stream_seed, clip.index, clip.seed)

    def _fit(self, frame) -> np.ndarray:
        """A pack's frame as RGB uint8 at the stream's size (resized if the pack's is not)."""
        frame = np.asarray(frame)
        h = self.header
        if frame.shape != (h.height, h.width, 3):
            import cv2

            frame = cv2.resize(frame.astype(np.uint8), (h.width, h.height), interpolation=cv2.INTER_AREA)
        return np.ascontiguousarray(frame, dtype=np.uint8)

    def decode_keyframe(self, clip) -> np.ndarray:
        """The clip's keyframe, RGB uint8 at the stream's size."""
        clip = self._clip(clip)
        return self._fit(
            self.pack.decode_keyframe(np.asarray(clip.index_map), self.grid, clip.keyframe_text, self._seed(clip))
        )

    def reconstruct(self, clip, keyframe: np.ndarray, next_keyframe: np.ndarray | None) -> Iterator[np.ndarray]:
        """The clip's frames, in order, at the stream's size: towards ``next_keyframe``, or
        predicted when None."""
        clip = self._clip(clip)
        frames = self.pack.reconstruct_clip(keyframe, next_keyframe, clip.clip_text, clip.frame_count, self._seed(clip))
        return map(self._fit, frames)
