"""Bjontegaard deltas: the average rate difference at equal quality (BD-rate) and the average
quality difference at equal rate (BD-PSNR, or BD-anything), between two R-D curves.

    bd_rate(anchor_rates, anchor_quality, test_rates, test_quality)  -> percent (negative: test saves)
    bd_quality(anchor_rates, anchor_quality, test_rates, test_quality) -> quality units (dB for PSNR)

Both follow Bjontegaard (VCEG-M33, 2001): the curves are fitted in the (quality, log10 rate)
plane -- log rate as a function of quality for BD-rate, quality as a function of log rate for
BD-quality -- and the difference of the two fits is averaged over the interval where the
curves overlap; BD-rate is ``(10**mean_difference - 1) * 100``.  Two fits:

- ``"pchip"`` (default): a piecewise cubic Hermite interpolant through the points with the
  Fritsch-Carlson slopes (the same slopes as scipy's ``PchipInterpolator``), as the later
  Bjontegaard spreadsheets and the AV1 / JVET common test conditions do.  It passes through
  every point and does not overshoot, so it suits curves with few or unevenly spaced points.
- ``"cubic"``: VCEG-M33's least-squares cubic polynomial (needs at least 4 points).

Nothing is extrapolated: curves whose ranges do not overlap raise :class:`BDError` naming both
ranges.  The direction of quality does not matter to BD-rate (LPIPS, lower is better, works as
it is); for BD-quality negate such a metric to read "positive = better".
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = ["METHODS", "BDError", "bd_quality", "bd_rate", "overlap", "pchip_slopes"]

METHODS = ("pchip", "cubic")
#: Gauss-Legendre nodes and weights on [-1, 1] that integrate a cubic exactly.
_GAUSS = (np.array([-1, 1]) / np.sqrt(3.0), np.array([1.0, 1.0]))


class BDError(ValueError):
    """The two curves give no Bjontegaard delta (too few points, repeated values, no overlap)."""


def _curve(x: Sequence[float], y: Sequence[float], method: str, what: str) -> tuple[np.ndarray, np.ndarray]:
    xs, ys = np.asarray(x, np.float64), np.asarray(y, np.float64)
    if xs.shape != ys.shape or xs.ndim != 1:
        raise BDError(f"{what}: rates and qualities differ in length ({xs.shape} vs {ys.shape})")
    if not (np.all(np.isfinite(xs)) and np.all(np.isfinite(ys))):
        raise BDError(f"{what}: a value is not finite")
    need = 4 if method == "cubic" else 2
    if len(xs) < need:
        raise BDError(f"{what}: {len(xs)} points; the {method} fit needs at least {need}")
    # one setting measured twice (two thresholds giving the same clips) is one point
    xs, ys = np.unique(np.stack([xs, ys], axis=1), axis=0).T
    order = np.argsort(xs, kind="stable")
    xs, ys = xs[order], ys[order]
    if len(xs) < need:
        raise BDError(f"{what}: {len(xs)} distinct points; the {method} fit needs at least {need}")
    if np.any(np.diff(xs) <= 0):
        raise BDError(f"{what}: two points share the value {xs[np.flatnonzero(np.diff(xs) <= 0)[0]]:g}")
    return xs, ys


def pchip_slopes(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Fritsch-Carlson slopes at the points (strictly increasing ``x``), as scipy's
    PchipInterpolator computes them: a weighted harmonic mean of the neighbouring secants where
    they agree in sign, 0 at a local extremum, the three-point formula at the ends (limited so
    the curve stays monotone)."""
    h = np.diff(x)
    m = np.diff(y) / h
    if len(x) == 2:
        return np.array([m[0], m[0]])
    d = np.zeros_like(y)
    for k in range(1, len(x) - 1):
        if m[k - 1] * m[k] > 0:
            w1, w2 = 2 * h[k] + h[k - 1], h[k] + 2 * h[k - 1]
            d[k] = (w1 + w2) / (w1 / m[k - 1] + w2 / m[k])

    def edge(h0: float, h1: float, m0: float, m1: float) -> float:
        slope = ((2 * h0 + h1) * m0 - h0 * m1) / (h0 + h1)
        if np.sign(slope) != np.sign(m0):
            return 0.0
        if np.sign(m0) != np.sign(m1) and abs(slope) > 3 * abs(m0):
            return 3 * m0
        return float(slope)

    d[0] = edge(h[0], h[1], m[0], m[1])
    d[-1] = edge(h[-1], h[-2], m[-1], m[-2])
    return d


def _pchip_integral(x: np.ndarray, y: np.ndarray, lo: float, hi: float) -> float:
    d = pchip_slopes(x, y)
    total = 0.0
    for k in range(len(x) - 1):
        a, b = max(lo, x[k]), min(hi, x[k + 1])
        if b <= a:
            continue
        h = x[k + 1] - x[k]
        t = ((a + b) / 2 + (b - a) / 2 * _GAUSS[0] - x[k]) / h
        # cubic Hermite basis on the segment
        value = (
            (2 * t**3 - 3 * t**2 + 1) * y[k]
            + (t**3 - 2 * t**2 + t) * h * d[k]
            + (-2 * t**3 + 3 * t**2) * y[k + 1]
            + (t**3 - t**2) * h * d[k + 1]
        )
        total += (b - a) / 2 * float(np.dot(_GAUSS[1], value))
    return total


def _cubic_integral(x: np.ndarray, y: np.ndarray, lo: float, hi: float) -> float:
    antiderivative = np.polyint(np.polyfit(x, y, 3))
    return float(np.polyval(antiderivative, hi) - np.polyval(antiderivative, lo))


def _mean_difference(xa: np.ndarray, ya: np.ndarray, xt: np.ndarray, yt: np.ndarray, method: str, axis: str) -> float:
    lo, hi = max(xa[0], xt[0]), min(xa[-1], xt[-1])
    if hi <= lo:
        raise BDError(
            f"the curves do not overlap in {axis}: anchor {xa[0]:g} to {xa[-1]:g}, test {xt[0]:g} to {xt[-1]:g}"
        )
    integral = _pchip_integral if method == "pchip" else _cubic_integral
    return (integral(xt, yt, lo, hi) - integral(xa, ya, lo, hi)) / (hi - lo)


def _check_method(method: str) -> None:
    if method not in METHODS:
        raise BDError(f"method {method!r} is not one of {', '.join(METHODS)}")


def _log_rates(rates: Sequence[float], what: str) -> np.ndarray:
    r = np.asarray(rates, np.float64)
    if np.any(~(r > 0)):
        raise BDError(f"{what}: rates must be positive")
    return np.log10(r)


def bd_rate(
    anchor_rates: Sequence[float],
    anchor_quality: Sequence[float],
    test_rates: Sequence[float],
    test_quality: Sequence[float],
    method: str = "pchip",
) -> float:
    """Average rate difference of the test curve against the anchor at equal quality, in
    percent (-50: the test needs half the anchor's rate)."""
    _check_method(method)
    qa, la = _curve(anchor_quality, _log_rates(anchor_rates, "anchor"), method, "anchor")
    qt, lt = _curve(test_quality, _log_rates(test_rates, "test"), method, "test")
    return float((10 ** _mean_difference(qa, la, qt, lt, method, "quality") - 1) * 100)


def overlap(anchor_values: Sequence[float], test_values: Sequence[float]) -> tuple[float, float] | None:
    """The interval both curves cover (of quality for BD-rate, of rate for BD-quality), which is
    what the delta is averaged over; None when they share none."""
    lo = max(min(anchor_values), min(test_values))
    hi = min(max(anchor_values), max(test_values))
    return (float(lo), float(hi)) if hi > lo else None


def bd_quality(
    anchor_rates: Sequence[float],
    anchor_quality: Sequence[float],
    test_rates: Sequence[float],
    test_quality: Sequence[float],
    method: str = "pchip",
) -> float:
    """Average quality difference of the test curve against the anchor at equal rate (BD-PSNR
    in dB when the quality is PSNR)."""
    _check_method(method)
    la, qa = _curve(_log_rates(anchor_rates, "anchor"), anchor_quality, method, "anchor")
    lt, qt = _curve(_log_rates(test_rates, "test"), test_quality, method, "test")
    return _mean_difference(la, qa, lt, qt, method, "log10 rate")
