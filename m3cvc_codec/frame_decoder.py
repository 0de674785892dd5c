"""The codec's frame decoder for :mod:`m3cvc_format.framedecoders`: keyframes through the
stream's model pack, clips through :mod:`m3cvc_codec.reconstruct`.

Registered by pack id in the ``m3cvc.frame_decoders`` entry-point group (pyproject)::

    [project.entry-points."m3cvc.frame_decoders"]
    lite = "m3cvc_codec.frame_decoder:PackFrameDecoder"

so that ``m3cvc_format.open("x.m3v")`` decodes frames without the format package importing
the codec.  Construction checks the stream's pack id and weights hash
(:func:`m3cvc_codec.packs.check_stream_pack`) and raises PackError when they do not match.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from . import packs as _packs
from .reconstruct import interpolate_clip, predict_clip

__all__ = ["PackFrameDecoder"]


class PackFrameDecoder:
    """Frames of one stream: ``decode_keyframe(clip)`` and ``reconstruct(clip, kf, next_kf)``."""

    def __init__(self, header) -> None:
        self.header = header
        self.pack, self.grid = _packs.check_stream_pack(header)

    def _clip(self, clip):
        return clip.decode(self.header) if hasattr(clip, "keyframe_text_coded") else clip

    def decode_keyframe(self, clip) -> np.ndarray:
        """The clip's keyframe, RGB uint8 at the stream's size (resized if the pack's is not)."""
        import m3cvc_format as m

        clip = self._clip(clip)
        h = self.header
        seed = m.decode_seed(h.stream_seed, clip.index, clip.seed)
        frame = np.asarray(self.pack.decode_keyframe(np.asarray(clip.index_map), self.grid, clip.keyframe_text, seed))
        if frame.shape != (h.height, h.width, 3):
            import cv2

            frame = cv2.resize(frame.astype(np.uint8), (h.width, h.height), interpolation=cv2.INTER_AREA)
        return np.ascontiguousarray(frame, dtype=np.uint8)

    def reconstruct(self, clip, keyframe: np.ndarray, next_keyframe: np.ndarray | None) -> Iterator[np.ndarray]:
        """The clip's frames, one at a time: towards ``next_keyframe``, or held when None."""
        clip = self._clip(clip)
        if next_keyframe is None:
            return predict_clip(keyframe, clip.frame_count)
        return interpolate_clip(keyframe, next_keyframe, clip.frame_count)
