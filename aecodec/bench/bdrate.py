"""Bjontegaard delta rate with piecewise-cubic (pchip) interpolation.

log(bpp) is interpolated as a function of quality for both curves and integrated
over the quality range the two share; the result is the mean rate difference,
as a fraction (-0.3 = 30% fewer bits than the anchor at equal quality).
"""
from __future__ import annotations

import numpy as np
from scipy.integrate import trapezoid
from scipy.interpolate import PchipInterpolator


def _curve(rates, quality):
    r = np.asarray(rates, dtype=np.float64)
    q = np.asarray(quality, dtype=np.float64)
    if r.shape != q.shape or r.size < 2:
        raise ValueError("each curve needs at least two (rate, quality) points")
    if np.any(r <= 0):
        raise ValueError("rates must be positive")
    order = np.argsort(q)
    q, lr = q[order], np.log(r[order])
    keep = np.concatenate([[True], np.diff(q) > 0])      # pchip needs strictly rising x
    return q[keep], lr[keep]


def bd_rate(anchor_rate, anchor_quality, test_rate, test_quality, samples: int = 1000) -> float:
    qa, la = _curve(anchor_rate, anchor_quality)
    qt, lt = _curve(test_rate, test_quality)
    lo, hi = max(qa[0], qt[0]), min(qa[-1], qt[-1])
    if lo >= hi:
        raise ValueError("the two curves do not overlap in quality")
    grid = np.linspace(lo, hi, samples)
    diff = PchipInterpolator(qt, lt)(grid) - PchipInterpolator(qa, la)(grid)
    return float(np.expm1(trapezoid(diff, grid) / (hi - lo)))
