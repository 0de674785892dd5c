"""The lite pack's clip reconstruction from decoded keyframes (section II-D without a video
model): :meth:`LitePack.reconstruct_clip <m3cvc_codec.packs.lite.LitePack.reconstruct_clip>`.

**Interpolation** (clip k of m frames, keyframes K0 = clip k's, K1 = clip k+1's): DIS optical
flow (preset medium; at half size for frames of 320 lines or more, scaled back) is estimated on
the two *decoded* keyframes both ways, F01 (K0 -> K1) and
F10 (K1 -> K0). Frame t (0 <= t < m), with a = t / m, is

    (1 - a) * K0(p - a * F01(p)) + a * K1(p - (1 - a) * F10(p))

(K0 warped forward by a of the flow, K1 backward by 1 - a, sampled with ``cv2.remap``, bilinear,
edges replicated). Frame 0 is K0 itself; frame m would be K1, the next clip's first frame.

**Prediction** (the last clip, or any clip whose mode says so): the keyframe is held for the
clip's frames. A generative pack replaces both with a video model; holding is the stable,
artefact-free choice without one.

Both functions yield frames one at a time (RGB uint8, the keyframes' size).
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

__all__ = ["flow_pair", "interpolate_clip", "predict_clip"]


#: Frames whose shorter side is at least twice this get their flow estimated at half size
#: (and scaled back up): 4x less work, the same result for the smooth motion between keyframes.
FLOW_HALF_FROM = 160


def _dis():
    import cv2

    return cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)


def flow_pair(k0: np.ndarray, k1: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(F01, F10): DIS flow between two RGB frames, both ways (H x W x 2 float32)."""
    import cv2

    g0 = cv2.cvtColor(np.ascontiguousarray(k0), cv2.COLOR_RGB2GRAY)
    g1 = cv2.cvtColor(np.ascontiguousarray(k1), cv2.COLOR_RGB2GRAY)
    if min(g0.shape) < 16:
        zero = np.zeros(g0.shape + (2,), np.float32)
        return zero, zero.copy()
    dis = _dis()
    h, w = g0.shape
    factor = 2 if min(h, w) >= 2 * FLOW_HALF_FROM else 1
    if factor == 1:
        return dis.calc(g0, g1, None), dis.calc(g1, g0, None)
    size = (w // factor, h // factor)
    s0 = cv2.resize(g0, size, interpolation=cv2.INTER_AREA)
    s1 = cv2.resize(g1, size, interpolation=cv2.INTER_AREA)
    up = lambda f: cv2.resize(f, (w, h), interpolation=cv2.INTER_LINEAR) * float(factor)
    return up(dis.calc(s0, s1, None)), up(dis.calc(s1, s0, None))


def interpolate_clip(k0: np.ndarray, k1: np.ndarray, frame_count: int) -> Iterator[np.ndarray]:
    """The ``frame_count`` frames from ``k0`` towards ``k1`` (``k1`` itself not included)."""
    import cv2

    if k0.shape != k1.shape:
        k1 = cv2.resize(k1, (k0.shape[1], k0.shape[0]), interpolation=cv2.INTER_AREA)
    yield k0
    if frame_count <= 1:
        return
    f01, f10 = flow_pair(k0, k1)
    h, w = k0.shape[:2]
    gx, gy = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
    a0, a1 = k0.astype(np.float32), k1.astype(np.float32)
    for t in range(1, frame_count):
        a = t / frame_count
        w0 = cv2.remap(
            a0, gx - a * f01[..., 0], gy - a * f01[..., 1], cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE
        )
        w1 = cv2.remap(
            a1,
            gx - (1 - a) * f10[..., 0],
            gy - (1 - a) * f10[..., 1],
            cv2.INTER_LINEAR,
            borderMode=cv2.BORDER_REPLICATE,
        )
        yield np.clip(np.rint((1 - a) * w0 + a * w1), 0, 255).astype(np.uint8)


def predict_clip(k0: np.ndarray, frame_count: int) -> Iterator[np.ndarray]:
    """The ``frame_count`` frames of a prediction clip: the keyframe held."""
    for _ in range(frame_count):
        yield k0
