"""The R-D benchmark's distortion metrics (m3cvc_codec/metrics.py): PSNR on RGB and BT.601
luma, and MS-SSIM (Wang et al. 2003) on luma."""

from __future__ import annotations

import math
from itertools import pairwise

import cv2  # a core dependency (opencv-python-headless): a missing one fails, never skips
import numpy as np
import pytest

from m3cvc_codec import metrics as M


def scene(seed: int = 2026) -> np.ndarray:
    """A deterministic 512x320 RGB frame with structure at several scales."""
    rng = np.random.default_rng(seed)
    base = rng.integers(0, 256, (20, 32, 3), dtype=np.uint8)
    img = cv2.resize(base, (512, 320), interpolation=cv2.INTER_CUBIC).astype(np.float64)
    img += rng.normal(0, 6, img.shape)
    return np.clip(np.rint(img), 0, 255).astype(np.uint8)


def noisy(img: np.ndarray, sigma: float, seed: int = 7) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.clip(img + rng.normal(0, sigma, img.shape), 0, 255).astype(np.uint8)


def test_identical_frames():
    a = scene()
    assert M.psnr_rgb(a, a) == math.inf
    assert M.psnr_y(a, a) == math.inf
    assert M.ms_ssim(a, a) == pytest.approx(1.0, abs=1e-12)


def test_psnr_known_value_and_luma_weights():
    a = np.full((8, 8, 3), 100, np.uint8)
    b = a.copy()
    b[..., 0] += 10  # red +10 everywhere: RGB MSE = 100/3, luma error = 2.99
    assert M.psnr_rgb(a, b) == pytest.approx(10 * math.log10(255**2 / (100 / 3)))
    assert M.psnr_y(a, b) == pytest.approx(10 * math.log10(255**2 / 2.99**2))
    assert M.luma(np.array([[[255, 255, 255]]], np.uint8))[0, 0] == pytest.approx(255.0)
    assert M.luma(np.array([[[0, 0, 255]]], np.uint8))[0, 0] == pytest.approx(0.114 * 255)


def test_luma_metrics_blind_to_luma_preserving_colour_change():
    a = np.full((200, 200, 3), 120, np.uint8).astype(np.float64)
    # shift R up and B down so that 0.299 dR + 0.114 dB = 0 -> luma unchanged
    b = a.copy()
    b[..., 0] += 11.4
    b[..., 2] -= 29.9
    assert M.psnr_y(a, b) == math.inf
    assert M.ms_ssim(a, b) == pytest.approx(1.0)
    assert M.psnr_rgb(a, b) < 30


def test_more_noise_lowers_everything_monotonically():
    a = scene()
    sigmas = [1, 3, 8, 20, 50]
    p, py, s = zip(*[(M.psnr_rgb(a, d), M.psnr_y(a, d), M.ms_ssim(a, d)) for d in (noisy(a, x) for x in sigmas)])
    assert all(x > y for x, y in pairwise(p))
    assert all(x > y for x, y in pairwise(py))
    assert all(x > y for x, y in pairwise(s))
    assert 0 < s[-1] < s[0] < 1


def test_more_blur_lowers_ms_ssim():
    a = scene()
    values = [M.ms_ssim(a, cv2.GaussianBlur(a, (k, k), 0)) for k in (3, 7, 15, 31)]
    assert all(x > y for x, y in pairwise(values))


def test_ms_ssim_matches_reference_implementation():
    # 0.9644119 is pytorch-msssim 1.0.0's ms_ssim(data_range=255, win_size=11, win_sigma=1.5,
    # K=(0.01, 0.03)) on the same BT.601 luma planes; it agrees to ~1e-6 on noise, JPEG and
    # blur of Kodak frames too (checked once by hand, it is not a test dependency).
    a = scene()
    assert M.ms_ssim(a, noisy(a, 15)) == pytest.approx(0.9644119, abs=1e-5)


def test_ms_ssim_symmetric_and_mostly_insensitive_to_small_brightness_shift():
    a = scene()
    b = noisy(a, 10)
    assert M.ms_ssim(a, b) == pytest.approx(M.ms_ssim(b, a), abs=1e-12)
    shifted = np.clip(a.astype(np.int16) + 5, 0, 255).astype(np.uint8)
    # a uniform +5 moves only the luminance term, which enters at the coarsest scale
    assert M.ms_ssim(a, shifted) > 0.999
    assert M.psnr_y(a, shifted) < 35


def test_ms_ssim_refuses_too_small_or_mismatched_frames():
    with pytest.raises(ValueError, match="needs at least"):
        M.ms_ssim(np.zeros((100, 200, 3), np.uint8), np.zeros((100, 200, 3), np.uint8))
    with pytest.raises(ValueError, match="differ in shape"):
        M.psnr_rgb(np.zeros((4, 4, 3), np.uint8), np.zeros((4, 5, 3), np.uint8))
