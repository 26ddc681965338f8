"""Figures of the super-observation evaluation (paper 000 Figs. 1, 4–9), PNG via matplotlib.

Figures are built with :class:`matplotlib.figure.Figure` (no pyplot state, Agg canvas), so they
work headless and in worker processes.
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Sequence

import numpy as np
from astropy.table import Table
from matplotlib.colors import Normalize
from matplotlib.figure import Figure
from matplotlib.patches import Circle

from .stats import binned_median, uniform_edges
from .superobs import BANDS, KIND_LABELS, KINDS, METRIC_NAMES, METRIC_UNITS, PARAMS
from ..io import atomic_path

__all__ = ["KIND_COLOURS", "save_figure", "plot_image_grid", "plot_binned_differences",
           "plot_background", "plot_mass_dependence"]

log = logging.getLogger("xclusters.evaluate")

#: Colours of the observation kinds (paper 000 Fig. 7: eROSITA blue, eROSITA-NR red,
#: Prediction green).
KIND_COLOURS = {"erosita": "tab:blue", "erosita_nr": "tab:red", "prediction": "tab:green",
                "truth": "tab:orange"}
#: Colour-scale maximum of the image grid, counts per pixel (paper 000 Fig. 1: 0 to 10).
GRID_VMAX_COUNTS = 10.0
DPI = 110


def save_figure(fig: Figure, path: str | Path) -> Path:
    """Save a figure as PNG atomically."""
    # bbox_inches="tight" would draw every figure twice; margins are set per figure instead.
    with atomic_path(path, suffix=".png") as tmp:
        fig.savefig(tmp, dpi=DPI, format="png")
    return Path(path)


def plot_image_grid(images: dict[str, np.ndarray], r500c_pix: np.ndarray, path: str | Path, *,
                    labels: Sequence[str] | None = None, bands: Sequence[str] = BANDS,
                    vmax_counts: float = GRID_VMAX_COUNTS) -> Path:
    """Fig. 1 style grid: rows = (cluster, band), columns = eROSITA / eROSITA-NR / Prediction /
    Super observation, log colour scale ``log10(1 + counts)`` from 0 to ``vmax_counts``.

    Parameters
    ----------
    images : dict
        ``{"erosita", "erosita_nr", "prediction", "truth"}`` -> ``(n, H, W, B)`` counts of the
        clusters to show.
    r500c_pix : ndarray
        ``(n,)`` R500c in pixels (drawn as a circle about the image centre).
    path : path-like
        Output PNG.
    labels : sequence of str, optional
        Row labels (cluster ids).
    """
    order = ("erosita", "erosita_nr", "prediction", "truth")
    n = images["truth"].shape[0]
    nb = images["truth"].shape[3]
    fig = Figure(figsize=(2.3 * len(order), 2.2 * max(1, n * nb)))
    norm = Normalize(vmin=0.0, vmax=np.log10(1.0 + vmax_counts))
    axes = fig.subplots(max(1, n * nb), len(order), squeeze=False)
    fig.subplots_adjust(left=0.07, right=0.85, top=0.96, bottom=0.02, wspace=0.05,
                        hspace=0.12)
    im = None
    for i in range(n):
        for b in range(nb):
            row = i * nb + b
            for j, kind in enumerate(order):
                ax = axes[row, j]
                img = np.asarray(images[kind][i, :, :, b], dtype=np.float64)
                im = ax.imshow(np.log10(1.0 + np.clip(img, 0, None)), origin="lower",
                               cmap="magma", norm=norm, interpolation="nearest")
                h, w = img.shape
                if np.isfinite(r500c_pix[i]) and r500c_pix[i] > 0:
                    ax.add_patch(Circle(((w - 1) / 2, (h - 1) / 2), r500c_pix[i], fill=False,
                                        ec="cyan", lw=0.8))
                ax.set_xticks([])
                ax.set_yticks([])
                if row == 0:
                    ax.set_title(KIND_LABELS[kind], fontsize=9)
                if j == 0:
                    lab = f"{labels[i]}\n" if labels is not None else ""
                    ax.set_ylabel(f"{lab}{bands[b]}", fontsize=8)
    if im is not None:
        cb = fig.colorbar(im, ax=axes, shrink=0.6, pad=0.01)
        cb.set_label("log10(1 + counts per pixel)")
    return save_figure(fig, path)


def _binned_panel(ax_top, ax_hist, x: np.ndarray, ys: dict[str, np.ndarray], n_bins: int):
    edges = uniform_edges(x, n_bins)
    width = np.diff(edges)
    for kind, y in ys.items():
        st = binned_median(x, y, edges)
        ok = st["n"] > 0
        if not np.any(ok):
            continue
        ax_top.plot(st["centre"][ok], st["median"][ok], "o-", ms=3, color=KIND_COLOURS[kind],
                    label=KIND_LABELS[kind])
        ax_top.fill_between(st["centre"][ok], st["p16"][ok], st["p84"][ok], alpha=0.25,
                            color=KIND_COLOURS[kind], lw=0)
    st = binned_median(x, x, edges)
    if np.all(np.isfinite(edges)):
        ax_hist.bar(st["centre"], st["n"], width=width, color="0.6", edgecolor="0.3")


def plot_binned_differences(per_image: Table, metric: str, path: str | Path, *,
                            n_bins: int = 8, bands: Sequence[str] = BANDS) -> Path:
    """Figs. 4–7 style: median (observation - truth) and 68 % band vs the true value per band,
    over a histogram of the number of images per bin.

    Parameters
    ----------
    per_image : astropy.table.Table
        ``per_image`` table of :func:`~xclusters.evaluate.superobs.evaluate_superobs`.
    metric : {"C", "A", "S", "flux"}
        Quantity to plot.
    path : path-like
        Output PNG.
    n_bins : int
        Equal-width bins of the true value.
    """
    unit = METRIC_UNITS[metric]
    fig = Figure(figsize=(4.0 * len(bands), 4.6))
    gs = fig.add_gridspec(2, len(bands), height_ratios=(3, 1), hspace=0.05, wspace=0.3,
                          left=0.07, right=0.98, top=0.92, bottom=0.11)
    for b, band in enumerate(bands):
        ax_top = fig.add_subplot(gs[0, b])
        ax_hist = fig.add_subplot(gs[1, b], sharex=ax_top)
        x = np.asarray(per_image[f"{metric}_{band}_truth"], dtype=np.float64)
        ys = {k: np.asarray(per_image[f"d{metric}_{band}_{k}"], dtype=np.float64)
              for k in KINDS}
        _binned_panel(ax_top, ax_hist, x, ys, n_bins)
        ax_top.axhline(0.0, color="k", lw=0.6, ls=":")
        ax_top.set_title(band)
        ax_top.tick_params(labelbottom=False)
        u = f" [{unit}]" if unit else ""
        ax_hist.set_xlabel(f"true {METRIC_NAMES[metric].lower()}{u}")
        if b == 0:
            ax_top.set_ylabel(f"Δ {METRIC_NAMES[metric].lower()} (obs − truth){u}")
            ax_hist.set_ylabel("N")
            ax_top.legend(fontsize=7)
    return save_figure(fig, path)


def plot_background(per_image: Table, path: str | Path, *, n_bins: int = 8,
                    bands: Sequence[str] = BANDS) -> Path:
    """Fig. 8 style: background of each observation kind vs the eROSITA background."""
    fig = Figure(figsize=(4.0 * len(bands), 4.6))
    gs = fig.add_gridspec(2, len(bands), height_ratios=(3, 1), hspace=0.05, wspace=0.3,
                          left=0.07, right=0.98, top=0.92, bottom=0.11)
    for b, band in enumerate(bands):
        ax_top = fig.add_subplot(gs[0, b])
        ax_hist = fig.add_subplot(gs[1, b], sharex=ax_top)
        x = np.asarray(per_image[f"background_{band}_erosita"], dtype=np.float64)
        ys = {k: np.asarray(per_image[f"background_{band}_{k}"], dtype=np.float64)
              for k in KINDS}
        _binned_panel(ax_top, ax_hist, x, ys, n_bins)
        ax_top.set_title(band)
        ax_top.tick_params(labelbottom=False)
        ax_hist.set_xlabel("B (eROSITA) [ct]")
        if b == 0:
            ax_top.set_ylabel("B [ct]")
            ax_hist.set_ylabel("N")
            ax_top.legend(fontsize=7)
    return save_figure(fig, path)


def plot_mass_dependence(mass_dependence: Table, path: str | Path, *,
                         bands: Sequence[str] = BANDS) -> Path:
    """Fig. 9 style: for each parameter and band, the median and 16–84th percentile of the
    difference in equal-population mass bins (top) and the true value vs mass (bottom)."""
    fig = Figure(figsize=(3.6 * len(bands), 3.0 * len(PARAMS) * 1.4))
    gs = fig.add_gridspec(2 * len(PARAMS), len(bands), height_ratios=[2, 1] * len(PARAMS),
                          hspace=0.35, left=0.08, right=0.98, top=0.96, bottom=0.05)
    offsets = {"erosita": -0.02, "erosita_nr": 0.0, "prediction": 0.02}
    markers = {"erosita": "o", "erosita_nr": "s", "prediction": "^"}
    md = mass_dependence
    for p, param in enumerate(PARAMS):
        for b, band in enumerate(bands):
            ax = fig.add_subplot(gs[2 * p, b])
            ax_t = fig.add_subplot(gs[2 * p + 1, b], sharex=ax)
            for kind in KINDS + ("truth",):
                sel = ((md["band"] == band) & (md["parameter"] == param)
                       & (md["kind"] == KIND_LABELS[kind]))
                rows = md[sel]
                if len(rows) == 0:
                    continue
                centre = 0.5 * (np.asarray(rows["log_m500c_lo"]) + np.asarray(rows["log_m500c_hi"]))
                med = np.asarray(rows["median"], dtype=float)
                lo = med - np.asarray(rows["p16"], dtype=float)
                hi = np.asarray(rows["p84"], dtype=float) - med
                target = ax_t if kind == "truth" else ax
                target.errorbar(centre + offsets.get(kind, 0.0), med, yerr=[lo, hi],
                                fmt=markers.get(kind, "o"), ms=4, capsize=2,
                                color=KIND_COLOURS[kind], label=KIND_LABELS[kind])
            ax.axhline(0.0, color="k", lw=0.6, ls=":")
            ax.tick_params(labelbottom=False)
            if p == 0:
                ax.set_title(band)
            if b == 0:
                ax.set_ylabel(f"Δ{param}")
                ax_t.set_ylabel(f"true {param}")
                if p == 0:
                    ax.legend(fontsize=6)
            if p == len(PARAMS) - 1:
                ax_t.set_xlabel("log10(M500c / Msun)")
    return save_figure(fig, path)
