"""Learning curves: training and validation loss per epoch of each trained model (issue 16).

Reads the ``<stem>.history.csv`` files written by Keras' ``CSVLogger`` during training
(:mod:`xclusters.train`) and, when present, the ``<stem>.summary.json`` next to them (what one
epoch is: ``train.epoch_definition``, examples and optimizer steps per epoch). One figure per
model kind: the super-observation CNN (one panel, training and validation loss) and the mass
CNN (two panels, training and validation loss, one curve per cross-validation fold). Epochs
are numbered from 1; the best validation epoch of each curve is marked.

Written by ``xclusters learning-curves`` (Snakemake rules ``learning_curves_superobs`` and
``learning_curves_mass``) as ``fig_learning_curves.png`` in the evaluation directories.
"""
from __future__ import annotations

import json
import logging
import re
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from ..train.history import read_history
from .plots_superobs import save_figure

__all__ = ["curve_label", "load_curves", "plot_learning_curves"]

log = logging.getLogger("xclusters.evaluate")

_FOLD = re.compile(r"fold(\d+)")


def curve_label(history_path: str | Path) -> str:
    """``fold <k>`` for ``mass_fold<k>.history.csv``, else the model stem (``superobs``)."""
    stem = Path(history_path).name.removesuffix(".history.csv")
    m = _FOLD.search(stem)
    return f"fold {int(m.group(1))}" if m else stem


def _summary(history_path: Path) -> dict:
    p = history_path.with_name(history_path.name.removesuffix(".history.csv") +
                               ".summary.json")
    if not p.is_file():
        return {}
    try:
        return json.loads(p.read_text())
    except (OSError, ValueError) as exc:
        log.warning("%s: unreadable training summary (%s); epochs shown without units", p, exc)
        return {}


def load_curves(history_paths: Sequence[str | Path]) -> dict[str, dict]:
    """Loss per epoch of each history file.

    Parameters
    ----------
    history_paths : sequence of path
        ``CSVLogger`` files (``epoch``, ``loss``, ``val_loss`` columns; others ignored).

    Returns
    -------
    dict
        ``{label: {"epoch": (n,) int from 1, "loss": (n,), "val_loss": (n,) (NaN where
        missing), "summary": dict}}`` in the order given; files without rows are skipped
        with a warning.
    """
    out: dict[str, dict] = {}
    for path in history_paths:
        p = Path(path)
        rows = read_history(p)
        if not rows:
            log.warning("%s: no epochs logged; no learning curve", p)
            continue
        out[curve_label(p)] = {
            "epoch": np.array([int(r["epoch"]) + 1 for r in rows]),
            "loss": np.array([r.get("loss", np.nan) for r in rows], dtype=float),
            "val_loss": np.array([r.get("val_loss", np.nan) for r in rows], dtype=float),
            "summary": _summary(p),
        }
    return out


def _epoch_label(curves: Mapping[str, dict]) -> str:
    summaries = [c["summary"] for c in curves.values() if c["summary"]]
    if not summaries:
        return "epoch"
    s = summaries[0]
    definition = s.get("epoch_definition")
    n = s.get("variants_per_epoch")
    steps = s.get("steps_per_epoch")
    what = {"paper": "paper epoch: each image x 8 dihedral transforms",
            "pass": "pass: each image once"}.get(definition, "")
    detail = ", ".join(x for x in (what, f"{n} examples" if n else "",
                                   f"{steps} steps" if steps else "") if x)
    if len(summaries) > 1 and len({(t.get("variants_per_epoch"), t.get("steps_per_epoch"))
                                   for t in summaries}) > 1:
        detail = what + ", examples per epoch vary by fold" if what else ""
    return f"epoch\n({detail})" if detail else "epoch"


def _log_scale(ax, values: list[np.ndarray]) -> None:
    v = np.concatenate([np.ravel(x) for x in values]) if values else np.zeros(0)
    v = v[np.isfinite(v)]
    if v.size and np.all(v > 0) and v.max() / v.min() > 10.0:
        ax.set_yscale("log")


def plot_learning_curves(history_paths: Sequence[str | Path], path: str | Path, *,
                         title: str = "", loss_label: str = "loss") -> Path:
    """Training and validation loss per epoch, one PNG.

    Parameters
    ----------
    history_paths : sequence of path
        One ``<stem>.history.csv`` (one panel: training and validation curves) or several,
        e.g. the mass CNN's folds (two panels, training and validation, a curve per file).
    path : path
        Output PNG.
    title : str
        Figure title.
    loss_label : str
        Y-axis label (the loss and its units).

    Returns
    -------
    Path
        ``path``. A figure saying "no epochs logged" is written when no file has rows.
    """
    curves = load_curves(history_paths)
    xlabel = _epoch_label(curves)
    if len(curves) <= 1:
        fig = Figure(figsize=(6.0, 4.2), layout="constrained")
        ax = fig.add_subplot()
        for label, c in curves.items():
            ax.plot(c["epoch"], c["loss"], "-o", ms=3, color="tab:blue", label="training")
            ax.plot(c["epoch"], c["val_loss"], "-s", ms=3, color="tab:orange",
                    label="validation")
            if np.any(np.isfinite(c["val_loss"])):
                i = int(np.nanargmin(c["val_loss"]))
                ax.axvline(c["epoch"][i], color="0.5", ls=":", lw=1,
                           label=f"best validation (epoch {c['epoch'][i]})")
            _log_scale(ax, [c["loss"], c["val_loss"]])
        if not curves:
            ax.text(0.5, 0.5, "no epochs logged", ha="center", va="center",
                    transform=ax.transAxes)
        else:
            ax.legend(fontsize=8)
        ax.set_xlabel(xlabel)
        ax.set_ylabel(loss_label)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    else:
        fig = Figure(figsize=(10.0, 4.2), layout="constrained")
        axes = fig.subplots(1, 2, sharey=True)
        colours = [f"C{i % 10}" for i in range(len(curves))]
        for ax, key, name in zip(axes, ("loss", "val_loss"), ("training", "validation")):
            for colour, (label, c) in zip(colours, curves.items()):
                ax.plot(c["epoch"], c[key], "-o", ms=2, color=colour, label=label)
            ax.set_title(f"{name} loss", fontsize=10)
            ax.set_xlabel(xlabel, fontsize=8)
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        _log_scale(axes[0], [c[k] for c in curves.values() for k in ("loss", "val_loss")])
        axes[0].set_ylabel(loss_label)
        axes[1].legend(fontsize=7, ncol=2)
    if title:
        fig.suptitle(title)
    out = save_figure(fig, path)
    log.info("learning curves of %d model(s) -> %s", len(curves), out)
    return out
