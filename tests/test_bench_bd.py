"""Bjontegaard deltas (tools/bench/bd.py) on curves whose answer is known in closed form."""

from __future__ import annotations

import math

import numpy as np
import pytest
from conftest import _load_tool

bd = _load_tool("bench/bd")

# an x265-like curve (bpp, PSNR dB)
RATES = [0.004, 0.009, 0.02, 0.05, 0.11]
PSNR = [24.1, 26.8, 29.0, 31.9, 34.2]


@pytest.mark.parametrize("method", bd.METHODS)
def test_a_curve_against_itself_is_zero(method):
    assert bd.bd_rate(RATES, PSNR, RATES, PSNR, method) == pytest.approx(0.0, abs=1e-12)
    assert bd.bd_quality(RATES, PSNR, RATES, PSNR, method) == pytest.approx(0.0, abs=1e-12)


@pytest.mark.parametrize("method", bd.METHODS)
@pytest.mark.parametrize("factor, percent", [(0.5, -50.0), (2.0, 100.0), (0.8, -20.0)])
def test_the_same_quality_at_a_scaled_rate(method, factor, percent):
    scaled = [r * factor for r in RATES]
    assert bd.bd_rate(RATES, PSNR, scaled, PSNR, method) == pytest.approx(percent, abs=1e-9)
    # order of the points does not matter
    assert bd.bd_rate(RATES[::-1], PSNR[::-1], scaled, PSNR, method) == pytest.approx(percent, abs=1e-9)


@pytest.mark.parametrize("method", bd.METHODS)
def test_a_curve_one_db_higher(method):
    up = [p + 1.0 for p in PSNR]
    assert bd.bd_quality(RATES, PSNR, RATES, up, method) == pytest.approx(1.0, abs=1e-12)
    assert bd.bd_quality(RATES, up, RATES, PSNR, method) == pytest.approx(-1.0, abs=1e-12)
    assert bd.bd_rate(RATES, PSNR, RATES, up, method) < 0  # better quality at a rate: saves rate


@pytest.mark.parametrize("method", bd.METHODS)
def test_rate_gap_that_grows_linearly_with_quality(method):
    """log10 R_test - log10 R_anchor = 0.01 (Q - 30) over Q in [28, 36] (both curves linear in
    log rate, so both fits are exact): mean difference 0.02, BD-rate 10**0.02 - 1."""
    quality = np.linspace(28, 36, 5)
    anchor = 10 ** (quality / 20 - 3)
    test = anchor * 10 ** (0.01 * (quality - 30))
    assert bd.bd_rate(anchor, quality, test, quality, method) == pytest.approx((10**0.02 - 1) * 100, rel=1e-9)


def test_only_the_overlap_counts():
    """The test curve covers only [30, 34] of the anchor's quality range, at half its rate."""
    quality = np.array([26.0, 28, 30, 32, 34, 36])
    anchor = 10 ** (quality / 20 - 3)
    inner = slice(2, 5)
    assert bd.bd_rate(anchor, quality, anchor[inner] / 2, quality[inner]) == pytest.approx(-50.0)


def test_pchip_does_not_overshoot_where_the_cubic_does():
    x = np.array([0.0, 1, 2, 3, 4])
    y = np.array([0.0, 0, 0, 1, 1])  # a step: pchip stays within [0, 1] and flat where the data is
    d = bd.pchip_slopes(x, y)
    assert d[0] == 0 and d[1] == 0 and d[-1] == 0
    assert bd._pchip_integral(x, y, 0, 2) == pytest.approx(0.0)
    assert 0 <= bd._pchip_integral(x, y, 2, 3) <= 1
    assert bd._cubic_integral(x, y, 0, 2) != pytest.approx(0.0, abs=1e-3)


def test_pchip_slopes_reproduce_scipy():
    scipy_interpolate = pytest.importorskip("scipy.interpolate")
    x = np.log10(RATES)
    y = np.asarray(PSNR)
    assert bd.pchip_slopes(x, y) == pytest.approx(scipy_interpolate.PchipInterpolator(x, y).derivative()(x))
    lo, hi = x[0] + 0.1, x[-1] - 0.2
    assert bd._pchip_integral(x, y, lo, hi) == pytest.approx(
        scipy_interpolate.PchipInterpolator(x, y).integrate(lo, hi)
    )


def test_errors_name_the_problem():
    with pytest.raises(bd.BDError, match=r"do not overlap in quality: anchor 24\.1 to 34\.2, test 40 to 42"):
        bd.bd_rate(RATES, PSNR, [0.5, 0.6, 0.7, 0.8], [40, 40.5, 41, 42])
    with pytest.raises(bd.BDError, match="cubic fit needs at least 4"):
        bd.bd_rate(RATES, PSNR, RATES[:3], PSNR[:3], "cubic")
    assert math.isfinite(bd.bd_rate(RATES, PSNR, RATES[:2], PSNR[:2], "pchip"))
    assert bd.bd_rate(RATES, PSNR, RATES + RATES[:1], PSNR + PSNR[:1]) == pytest.approx(0.0)  # a repeat
    with pytest.raises(bd.BDError, match="2 distinct points; the cubic fit needs at least 4"):
        bd.bd_rate(RATES, PSNR, [0.1, 0.2, 0.1, 0.2], [25, 26, 25, 26], "cubic")
    with pytest.raises(bd.BDError, match=r"share the value 26\.8"):
        bd.bd_rate(RATES, PSNR, RATES[:3], [24.1, 26.8, 26.8])
    with pytest.raises(bd.BDError, match="positive"):
        bd.bd_rate(RATES, PSNR, [0.0, 0.1], [25, 26])
    with pytest.raises(bd.BDError, match="method"):
        bd.bd_rate(RATES, PSNR, RATES, PSNR, "akima")
    assert issubclass(bd.BDError, ValueError)


def test_overlap_is_the_shared_interval():
    assert bd.overlap([1, 5, 3], [4, 9]) == (4.0, 5.0)
    assert bd.overlap([1, 2], [2, 3]) is None
