"""Summary statistics used by the evaluation: percentile summaries and binned statistics.

Paper 000 reports medians with 16th/84th percentiles (Table 3, Figs. 4–9, "the middle 68 %");
these helpers compute them robustly: NaNs are dropped, and an empty selection gives NaN with a
logged warning instead of an exception.
"""
from __future__ import annotations

import logging

import numpy as np

__all__ = ["PERCENTILES", "median_interval", "binned_median", "quantile_edges",
           "uniform_edges", "regression_slope"]

log = logging.getLogger("xclusters.evaluate")

#: Lower and upper percentiles of the "68 %" interval (paper 000 Table 3: 16th and 84th).
PERCENTILES = (16.0, 84.0)


def median_interval(values: np.ndarray, what: str = "values") -> tuple[float, float, float, int]:
    """Median and 16th/84th percentiles of the finite entries.

    Parameters
    ----------
    values : array_like
        Any shape; NaN and inf are ignored.
    what : str
        Name used in the warning when nothing is finite.

    Returns
    -------
    tuple
        ``(median, p16, p84, n_finite)``; NaNs when ``n_finite == 0``.
    """
    v = np.asarray(values, dtype=np.float64).ravel()
    v = v[np.isfinite(v)]
    if v.size == 0:
        log.warning("%s: no finite values; median and percentiles are NaN.", what)
        return np.nan, np.nan, np.nan, 0
    p16, med, p84 = np.percentile(v, [PERCENTILES[0], 50.0, PERCENTILES[1]])
    return float(med), float(p16), float(p84), int(v.size)


def regression_slope(x: np.ndarray, y: np.ndarray) -> float:
    """Least-squares slope of ``y`` on ``x`` over the pairs where both are finite.

    The mass evaluation and the paper-004 stopping rule use it with ``x = log M_true`` and
    ``y = log M_pred`` (a model that predicts toward the mean has a slope below 1).

    Returns
    -------
    float
        NaN when fewer than two finite pairs or no spread in ``x``.
    """
    x = np.asarray(x, dtype=np.float64).ravel()
    y = np.asarray(y, dtype=np.float64).ravel()
    if x.shape != y.shape:
        raise ValueError(f"x {x.shape} and y {y.shape} differ in shape.")
    ok = np.isfinite(x) & np.isfinite(y)
    x, y = x[ok], y[ok]
    if x.size < 2 or np.ptp(x) == 0:
        return float("nan")
    return float(np.polyfit(x, y, 1)[0])


def uniform_edges(x: np.ndarray, n_bins: int) -> np.ndarray:
    """``n_bins + 1`` equal-width edges spanning the finite range of ``x`` (NaN if empty)."""
    x = np.asarray(x, dtype=np.float64)
    x = x[np.isfinite(x)]
    if x.size == 0:
        return np.full(n_bins + 1, np.nan)
    lo, hi = float(x.min()), float(x.max())
    if hi <= lo:
        lo, hi = lo - 0.5 * max(abs(lo), 1e-3), hi + 0.5 * max(abs(hi), 1e-3)
    return np.linspace(lo, hi, n_bins + 1)


def quantile_edges(x: np.ndarray, n_bins: int) -> np.ndarray:
    """Edges of ``n_bins`` bins of roughly equal population (paper 000 Fig. 9 mass bins)."""
    x = np.asarray(x, dtype=np.float64)
    x = x[np.isfinite(x)]
    if x.size == 0:
        return np.full(n_bins + 1, np.nan)
    edges = np.quantile(x, np.linspace(0.0, 1.0, n_bins + 1))
    if edges[-1] <= edges[0]:
        return uniform_edges(x, n_bins)
    return edges


def binned_median(x: np.ndarray, y: np.ndarray, edges: np.ndarray) -> dict[str, np.ndarray]:
    """Median and 16th/84th percentiles of ``y`` in bins of ``x``.

    Parameters
    ----------
    x, y : array_like
        Same length; pairs with a non-finite member are dropped.
    edges : array_like
        Bin edges (``n_bins + 1``); the last bin includes its upper edge.

    Returns
    -------
    dict
        ``centre, lo, hi, n, median, p16, p84`` arrays of length ``n_bins``; empty bins NaN.
    """
    x = np.asarray(x, dtype=np.float64).ravel()
    y = np.asarray(y, dtype=np.float64).ravel()
    edges = np.asarray(edges, dtype=np.float64)
    nb = len(edges) - 1
    out = {k: np.full(nb, np.nan) for k in ("median", "p16", "p84")}
    out["lo"], out["hi"] = edges[:-1].copy(), edges[1:].copy()
    out["centre"] = 0.5 * (edges[:-1] + edges[1:])
    out["n"] = np.zeros(nb, dtype=int)
    ok = np.isfinite(x) & np.isfinite(y)
    if not np.all(np.isfinite(edges)):
        return out
    x, y = x[ok], y[ok]
    idx = np.clip(np.searchsorted(edges, x, side="right") - 1, 0, nb - 1)
    inside = (x >= edges[0]) & (x <= edges[-1])
    for b in range(nb):
        sel = y[inside & (idx == b)]
        out["n"][b] = sel.size
        if sel.size:
            out["p16"][b], out["median"][b], out["p84"][b] = np.percentile(
                sel, [PERCENTILES[0], 50.0, PERCENTILES[1]])
    return out
