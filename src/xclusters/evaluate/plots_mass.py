"""Figures of the mass evaluation (paper 004 Figs. 3–6), PNG via matplotlib (no pyplot)."""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Sequence

import numpy as np
from matplotlib.colors import TwoSlopeNorm
from matplotlib.figure import Figure
from matplotlib.patches import Circle

from .gradients import PROFILE_EDGES_R500C
from .mass import LX_INNER_R500C, LX_OUTER_R500C, _gauss
from .plots_superobs import save_figure

__all__ = ["plot_true_vs_pred", "plot_delta_histogram", "plot_gradient_maps",
           "plot_gradient_profiles"]

log = logging.getLogger("xclusters.evaluate")


def plot_true_vs_pred(log_m_true: np.ndarray, log_m_pred: np.ndarray, folds: np.ndarray,
                      path: str | Path) -> Path:
    """Fig. 3: predicted vs true log M500c, coloured by fold, with the one-to-one line."""
    t = np.asarray(log_m_true, dtype=float)
    p = np.asarray(log_m_pred, dtype=float)
    fig = Figure(figsize=(5, 5))
    ax = fig.add_subplot()
    sc = ax.scatter(t, p, c=np.asarray(folds, dtype=float), cmap="tab10", s=8, alpha=0.7,
                    vmin=-0.5, vmax=9.5)
    ok = np.isfinite(t) & np.isfinite(p)
    if np.any(ok):
        lo = float(min(t[ok].min(), p[ok].min())) - 0.05
        hi = float(max(t[ok].max(), p[ok].max())) + 0.05
        ax.plot([lo, hi], [lo, hi], "k--", lw=0.8)
        ax.set_xlim(lo, hi)
        ax.set_ylim(lo, hi)
    ax.set_xlabel("log10(M500c,true / Msun)")
    ax.set_ylabel("log10(M500c,pred / Msun)")
    fig.colorbar(sc, ax=ax, label="fold")
    return save_figure(fig, path)


def plot_delta_histogram(delta: np.ndarray, fit_all: dict, path: str | Path, *,
                         best_fold: tuple[int, np.ndarray, dict] | None = None,
                         lx_scatter_percent: Sequence[float] = ()) -> Path:
    """Fig. 4: PDF of delta with the best-fit Gaussian of all folds (and of the best fold).

    Parameters
    ----------
    delta : ndarray
        Residuals (dex) of all folds.
    fit_all : dict
        :func:`~xclusters.evaluate.mass.fit_gaussian` result for ``delta``.
    best_fold : tuple, optional
        ``(fold, delta_of_fold, fit_of_fold)``.
    lx_scatter_percent : sequence of float
        Scatter of the L_X baseline(s), shown as a text annotation.
    """
    d = np.asarray(delta, dtype=float)
    d = d[np.isfinite(d)]
    fig = Figure(figsize=(6, 4))
    ax = fig.add_subplot()
    if d.size:
        span = max(0.05, float(np.max(np.abs(d))) * 1.1)
        edges = np.linspace(-span, span, max(5, min(40, d.size // 3 + 5)))
        ax.hist(d, bins=edges, density=True, histtype="step", color="tab:blue", lw=1.5,
                label="all folds")
        xx = np.linspace(-span, span, 300)
        if np.isfinite(fit_all.get("sigma", np.nan)) and fit_all["sigma"] > 0:
            ax.plot(xx, _gauss(xx, fit_all["mu"], fit_all["sigma"]), "--", color="tab:green",
                    label=f"fit: σ={fit_all['sigma']:.3f}, μ={fit_all['mu']:.3f} dex")
        if best_fold is not None:
            k, dk, fk = best_fold
            dk = np.asarray(dk, dtype=float)
            dk = dk[np.isfinite(dk)]
            if dk.size:
                ax.hist(dk, bins=edges, density=True, histtype="step", color="tab:pink",
                        lw=1.2, label=f"best fold {k}")
            if np.isfinite(fk.get("sigma", np.nan)) and fk["sigma"] > 0:
                ax.plot(xx, _gauss(xx, fk["mu"], fk["sigma"]), "--", color="tab:purple",
                        label=f"fold {k}: σ={fk['sigma']:.3f}, μ={fk['mu']:.3f} dex")
    if len(lx_scatter_percent):
        txt = ", ".join(f"{s:.1f}%" for s in lx_scatter_percent if np.isfinite(s))
        ax.text(0.02, 0.95, f"core-excised L_X scatter: {txt}", transform=ax.transAxes,
                fontsize=7, va="top", color="tab:red")
    ax.set_xlabel("δ = log M_pred − log M_true [dex]")
    ax.set_ylabel("PDF")
    ax.legend(fontsize=7, loc="upper right")
    return save_figure(fig, path)


def plot_gradient_maps(states: list[np.ndarray], r500c_pix: np.ndarray, path: str | Path, *,
                       labels: Sequence[str] | None = None) -> Path:
    """Fig. 5: per cluster, log N of the input and iterated images, Delta N of each iteration
    (circles at 0.15 and 1.0 R500c), and the pixels with |Delta N / N| <= 2 %."""
    n = states[0].shape[0]
    n_iter = len(states) - 1
    fig = Figure(figsize=(2.4 * (n_iter + 1), 2.3 * 3 * n))
    axes = fig.subplots(3 * n, n_iter + 1, squeeze=False)
    for i in range(n):
        img0 = states[0][i, :, :, 0]
        h, w = img0.shape
        for j in range(n_iter + 1):
            ax = axes[3 * i, j]
            ax.imshow(np.log10(1.0 + states[j][i, :, :, 0]), origin="lower", cmap="magma")
            ax.set_title("input" if j == 0 else f"iteration {j}", fontsize=8)
            ax_d, ax_s = axes[3 * i + 1, j], axes[3 * i + 2, j]
            if j == 0:
                ax_d.axis("off")
                ax_s.axis("off")
                ax.set_ylabel(labels[i] if labels is not None else f"#{i}", fontsize=8)
            else:
                before, after = states[j - 1][i, :, :, 0], states[j][i, :, :, 0]
                dn = after - before
                lim = max(1.0, float(np.max(np.abs(dn))))
                ax_d.imshow(dn, origin="lower", cmap="RdBu_r",
                            norm=TwoSlopeNorm(0.0, -lim, lim))
                ax_d.set_title("ΔN", fontsize=8)
                frac = np.abs(dn) / np.maximum(before, 1.0)
                ax_s.imshow(frac <= 0.02, origin="lower", cmap="gray_r")
                ax_s.set_title("|ΔN/N| ≤ 2%", fontsize=8)
                for a in (ax_d, ax_s):
                    for rr, ls in ((LX_INNER_R500C, "-"), (LX_OUTER_R500C, "--")):
                        a.add_patch(Circle(((w - 1) / 2, (h - 1) / 2), rr * r500c_pix[i],
                                           fill=False, ec="tab:green", lw=0.8, ls=ls))
            for a in (ax, ax_d, ax_s):
                a.set_xticks([])
                a.set_yticks([])
    return save_figure(fig, path)


def plot_gradient_profiles(profiles: list[np.ndarray], path: str | Path, *,
                           edges_r500c: np.ndarray = PROFILE_EDGES_R500C,
                           labels: Sequence[str] | None = None) -> Path:
    """Fig. 6: Delta N / N vs R/R500c, one line per cluster; iteration 1 solid, 2 dotted."""
    centres = 0.5 * (edges_r500c[1:] + edges_r500c[:-1])
    styles = ["-", ":", "-.", "--"]
    fig = Figure(figsize=(6, 4))
    ax = fig.add_subplot()
    n = profiles[0].shape[0] if profiles else 0
    colours = [f"C{i % 10}" for i in range(n)]
    for it, prof in enumerate(profiles):
        for i in range(n):
            lab = (labels[i] if labels is not None else f"#{i}") if it == 0 else None
            ax.plot(centres, prof[i], styles[it % len(styles)], color=colours[i], lw=1.2,
                    label=lab)
    ax.axvline(0.2, color="0.5", lw=0.6, ls=":")
    ax.axhline(0.0, color="k", lw=0.6)
    ax.set_xlabel("R / R500c")
    ax.set_ylabel("ΔN / N")
    ax.set_title("solid: iteration 1, dotted: iteration 2", fontsize=8)
    if n:
        ax.legend(fontsize=6)
    return save_figure(fig, path)
