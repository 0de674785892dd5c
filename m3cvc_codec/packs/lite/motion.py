"""The lite pack's motion scorer: mean DIS optical-flow magnitude between two frames.

:func:`motion_features` keeps a small grey copy of each frame (longer side at most
:data:`MOTION_SIDE` pixels) with its scale (frame pixels per small pixel); :func:`motion`
measures OpenCV's DIS flow (preset fast) from one small frame to another and reports the mean
end-point length scaled back to frame pixels.  Frames too small for DIS's pyramid (a side
under 16 after scaling) get the mean absolute grey difference / 255 instead.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = ["MOTION_SIDE", "GreyFeature", "grey_small", "motion", "motion_features"]

#: Longer side of the grey frames motion is measured on.
MOTION_SIDE = 160


class GreyFeature(np.ndarray):
    """A small grey frame (uint8, h x w) that knows its :attr:`scale`: frame pixels per
    small pixel."""

    scale: float = 1.0

    def __array_finalize__(self, obj) -> None:
        self.scale = getattr(obj, "scale", 1.0)


def grey_small(rgb: np.ndarray, side: int = MOTION_SIDE) -> tuple[np.ndarray, float]:
    """Grey frame with the longer side at most ``side``; returns it and the scale factor
    (frame pixels per small pixel)."""
    import cv2

    h, w = rgb.shape[:2]
    scale = max(1.0, max(h, w) / side)
    grey = cv2.cvtColor(np.ascontiguousarray(rgb), cv2.COLOR_RGB2GRAY)
    if scale > 1.0:
        grey = cv2.resize(grey, (max(8, round(w / scale)), max(8, round(h / scale))), interpolation=cv2.INTER_AREA)
    return grey, w / grey.shape[1]


def motion_features(frames: np.ndarray, side: int = MOTION_SIDE) -> list[np.ndarray]:
    """One :class:`GreyFeature` per frame of ``frames`` (N x H x W x 3 uint8, or one frame)."""
    x = np.asarray(frames)
    if x.ndim == 3:
        x = x[None]
    out: list[np.ndarray] = []
    for rgb in x:
        grey, scale = grey_small(rgb, side)
        feature = grey.view(GreyFeature)
        feature.scale = scale
        out.append(feature)
    return out


def _dis():
    import cv2

    return cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_FAST)


def motion(before: Sequence[np.ndarray], after: Sequence[np.ndarray], dis=None) -> np.ndarray:
    """Mean flow magnitude from ``before[i]`` to ``after[i]`` in frame pixels (float64, N).
    ``dis``: a DIS flow object to use (one is made when None; never shared between threads)."""
    if len(before) != len(after):
        raise ValueError(f"motion: {len(before)} features before, {len(after)} after")
    out = np.empty(len(before), np.float64)
    for i, (a, b) in enumerate(zip(before, after)):
        scale = getattr(b, "scale", 1.0)
        a, b = np.asarray(a), np.asarray(b)
        if min(a.shape) < 16:  # too small for DIS's pyramid: mean absolute difference
            out[i] = float(np.abs(a.astype(np.float32) - b.astype(np.float32)).mean()) / 255.0
        else:
            if dis is None:
                dis = _dis()
            flow = dis.calc(a, b, None)
            out[i] = float(np.sqrt((flow.astype(np.float64) ** 2).sum(axis=-1)).mean()) * scale
    return out
