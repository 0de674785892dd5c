"""Distortion metrics for the rate-distortion benchmark: PSNR (RGB or luma) and MS-SSIM (luma).

Conventions (the same for every codec in ``bench_rd.py``):

- Frames are RGB ``uint8`` (H x W x 3) or a single plane (H x W); arithmetic is in float64.
- **Luma** is BT.601 full-range: ``Y = 0.299 R + 0.587 G + 0.114 B`` on the 0..255 scale, kept
  as float (not rounded), so a codec is not charged for a rounding step it did not make.
- **PSNR** = ``10 log10(255^2 / MSE)``; for RGB the MSE is over all three channels together.
  Identical frames give ``inf``.  ``bench_rd.py`` averages PSNR per frame (mean of the
  per-frame dB values), the usual convention in learned-video-codec papers.
- **MS-SSIM** follows Wang, Simoncelli & Bovik, "Multi-scale structural similarity for image
  quality assessment" (Asilomar 2003), as in their reference ``msssim.m``: 5 scales, an 11x11
  Gaussian window with sigma 1.5 applied without padding ("valid"), K1 = 0.01, K2 = 0.03,
  L = 255, exponents (0.0448, 0.2856, 0.3001, 0.2363, 0.1333); contrast-structure at every
  scale, luminance only at the coarsest; between scales a 2x2 average then dropping every other
  pixel (a 2x2 box average for even sizes, which is what 512x320 gives at every scale:
  512x320, 256x160, 128x80, 64x40, 32x20).  One deviation, shared with the common
  implementations (tf.image.ssim_multiscale, pytorch-msssim): a negative mean
  contrast-structure term at some scale (possible only for very poor reconstructions) is
  clamped to 0 before the fractional power, so the result is always a real number in [0, 1].
"""

from __future__ import annotations

import math

import cv2
import numpy as np

__all__ = ["MS_SSIM_WEIGHTS", "luma", "ms_ssim", "mse", "psnr", "psnr_rgb", "psnr_y", "ssim_maps"]

MS_SSIM_WEIGHTS = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)
_K1, _K2, _L = 0.01, 0.03, 255.0
_WIN, _SIGMA = 11, 1.5
_G = cv2.getGaussianKernel(_WIN, _SIGMA, cv2.CV_64F)  # normalised 11x1 column


def luma(frame: np.ndarray) -> np.ndarray:
    """BT.601 luma (float64, 0..255) of an RGB frame; a 2-D plane is returned as float64."""
    x = np.asarray(frame)
    if x.ndim == 2:
        return x.astype(np.float64)
    if x.ndim != 3 or x.shape[2] != 3:
        raise ValueError(f"expected H x W x 3 RGB or an H x W plane, got shape {x.shape}")
    x = x.astype(np.float64)
    return 0.299 * x[..., 0] + 0.587 * x[..., 1] + 0.114 * x[..., 2]


def _pair(a, b) -> tuple[np.ndarray, np.ndarray]:
    a, b = np.asarray(a), np.asarray(b)
    if a.shape != b.shape:
        raise ValueError(f"frames differ in shape: {a.shape} vs {b.shape}")
    return a.astype(np.float64), b.astype(np.float64)


def mse(a, b) -> float:
    a, b = _pair(a, b)
    return float(np.mean((a - b) ** 2))


def psnr(a, b, peak: float = 255.0) -> float:
    """PSNR in dB over every sample of ``a`` and ``b`` (inf when identical)."""
    e = mse(a, b)
    return math.inf if e == 0 else 10.0 * math.log10(peak * peak / e)


def psnr_rgb(ref: np.ndarray, dist: np.ndarray) -> float:
    """PSNR over the three RGB channels together."""
    return psnr(ref, dist)


def psnr_y(ref: np.ndarray, dist: np.ndarray) -> float:
    """PSNR of BT.601 luma (float, unrounded)."""
    return psnr(luma(ref), luma(dist))


def _filt(x: np.ndarray) -> np.ndarray:
    """Gaussian 11/1.5 filter, 'valid' part only (no padding effects)."""
    h = _WIN // 2
    y = cv2.sepFilter2D(x, cv2.CV_64F, _G, _G, borderType=cv2.BORDER_REFLECT)
    return y[h:-h, h:-h]


def ssim_maps(x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """(mean luminance term, mean contrast-structure term) of two float64 planes."""
    if min(x.shape) < _WIN:
        raise ValueError(f"plane {x.shape} is smaller than the {_WIN}x{_WIN} window")
    c1, c2 = (_K1 * _L) ** 2, (_K2 * _L) ** 2
    mx, my = _filt(x), _filt(y)
    sxx = _filt(x * x) - mx * mx
    syy = _filt(y * y) - my * my
    sxy = _filt(x * y) - mx * my
    lum = (2 * mx * my + c1) / (mx * mx + my * my + c1)
    cs = (2 * sxy + c2) / (sxx + syy + c2)
    return float(lum.mean()), float(cs.mean())


def _down2(x: np.ndarray) -> np.ndarray:
    """2x2 average, then every other pixel (msssim.m's lowpass + downsample)."""
    h, w = x.shape
    # pad odd sizes by repeating the last row/column (msssim.m's 'symmetric' border)
    if h % 2:
        x = np.vstack([x, x[-1:]])
    if w % 2:
        x = np.hstack([x, x[:, -1:]])
    return 0.25 * (x[0::2, 0::2] + x[1::2, 0::2] + x[0::2, 1::2] + x[1::2, 1::2])


def ms_ssim(ref: np.ndarray, dist: np.ndarray, weights=MS_SSIM_WEIGHTS) -> float:
    """MS-SSIM of the BT.601 luma of two RGB frames (or of two planes); 1.0 when identical.

    The coarsest scale must still hold an 11x11 window: at 5 scales the frames need at least
    176 pixels on each side (512x320 is fine)."""
    x, y = _pair(luma(ref), luma(dist))
    n = len(weights)
    need = _WIN * 2 ** (n - 1)
    if min(x.shape) < need:
        raise ValueError(f"MS-SSIM with {n} scales needs at least {need} pixels a side, got {x.shape}")
    value = 1.0
    for j, w in enumerate(weights):
        lum, cs = ssim_maps(x, y)
        if j == n - 1:
            value *= max(lum * cs, 0.0) ** w  # lum in (0, 1]; clamp only matters via cs
        else:
            value *= max(cs, 0.0) ** w
            x, y = _down2(x), _down2(y)
    return float(value)
