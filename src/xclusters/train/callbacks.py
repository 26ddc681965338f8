"""Keras callbacks implementing the papers' stopping rules, plus bookkeeping helpers."""
from __future__ import annotations

import json
import logging
import math
import os
import time
from pathlib import Path
from typing import Any, Mapping

import keras
import numpy as np

from ..io import atomic_path, atomic_write_text, temporary_name
from .history import read_history

__all__ = [
    "AtomicModelCheckpoint", "MinimumHeldStop", "Throughput", "MassConvergence",
    "convergence_stats", "SLOPE_FITS", "read_history", "resume_state", "write_json_atomic",
    "save_model_atomic",
]

log = logging.getLogger("xclusters.train")


def _tmp_keras_path(final: Path) -> Path:
    # Keras refuses file names that do not end in ".keras"
    return temporary_name(final, suffix=".keras")


def save_model_atomic(model, path: str | Path) -> Path:
    """Save ``model`` as ``.keras`` under a temporary name and rename it into place."""
    final = Path(path)
    with atomic_path(final, suffix=".keras") as tmp:
        model.save(tmp, overwrite=True)
    return final


class AtomicModelCheckpoint(keras.callbacks.ModelCheckpoint):
    """``ModelCheckpoint`` that writes to a temporary ``.keras`` file and renames it.

    A job killed while saving never leaves a truncated model under the final name.
    """

    def __init__(self, filepath: str | Path, **kwargs: Any):
        self.final_path = Path(filepath)
        if self.final_path.suffix != ".keras":
            raise ValueError(f"{filepath}: model files must end in '.keras'")
        self.final_path.parent.mkdir(parents=True, exist_ok=True)
        super().__init__(str(_tmp_keras_path(self.final_path)), **kwargs)

    def _save_model(self, epoch, batch, logs):
        super()._save_model(epoch, batch, logs)
        tmp = Path(self.filepath)
        if tmp.exists():
            os.replace(tmp, self.final_path)
            log.info("epoch %d: saved %s (val_loss %.6g)", epoch + 1, self.final_path,
                     (logs or {}).get(self.monitor, float("nan")))


class MinimumHeldStop(keras.callbacks.Callback):
    """Stop when the minimum of ``monitor`` has held for ``patience`` epochs (paper 000 §2.3).

    Unlike ``EarlyStopping`` it can resume its state (best value, epochs since the best) from
    a previous, interrupted run.

    Parameters
    ----------
    patience : int
        Epochs without a new minimum before stopping (paper 000: 100).
    monitor : str
        Logged quantity, normally ``val_loss``.
    best, wait : float, int
        Initial state (from :func:`resume_state`).
    """

    def __init__(self, patience: int, monitor: str = "val_loss", best: float = math.inf,
                 wait: int = 0):
        super().__init__()
        self.patience = int(patience)
        self.monitor = monitor
        self.best = float(best)
        self.wait = int(wait)
        self.best_epoch: int | None = None
        self.stopped_epoch: int | None = None

    def on_epoch_end(self, epoch, logs=None):
        value = (logs or {}).get(self.monitor)
        if value is None:
            raise KeyError(f"MinimumHeldStop: '{self.monitor}' not logged; is validation data "
                           "passed to fit()?")
        value = float(value)
        if value < self.best:
            self.best, self.wait, self.best_epoch = value, 0, epoch + 1
            return
        self.wait += 1
        if self.wait >= self.patience:
            self.stopped_epoch = epoch + 1
            self.model.stop_training = True
            log.info("epoch %d: %s minimum %.6g held for %d epochs; stopping", epoch + 1,
                     self.monitor, self.best, self.wait)


class Throughput(keras.callbacks.Callback):
    """Measure training images per second (training steps only, validation excluded).

    The image count is ``steps * batch_size`` (a last partial batch counts as full).
    """

    def __init__(self, batch_size: int):
        super().__init__()
        self.batch_size = int(batch_size)
        self.epoch_rates: list[float] = []
        self._t0 = 0.0
        self._steps = 0
        self._train_time = None

    def on_epoch_begin(self, epoch, logs=None):
        self._t0, self._steps, self._train_time = time.perf_counter(), 0, None

    def on_train_batch_end(self, batch, logs=None):
        self._steps += 1

    def on_test_begin(self, logs=None):
        if self._train_time is None:
            self._train_time = time.perf_counter() - self._t0

    def on_epoch_end(self, epoch, logs=None):
        dt = self._train_time if self._train_time is not None else time.perf_counter() - self._t0
        if dt > 0 and self._steps:
            self.epoch_rates.append(self._steps * self.batch_size / dt)

    def summary(self) -> dict:
        """``images_per_s`` over all epochs of this run; ``..._steady`` skips the first."""
        rates = self.epoch_rates
        return {"images_per_s": float(np.mean(rates)) if rates else None,
                "images_per_s_steady": float(np.mean(rates[1:])) if len(rates) > 1 else None}


SLOPE_FITS = ("pred_on_true", "true_on_pred")


def convergence_stats(log_m_true, log_m_pred, slope_fit: str = "pred_on_true") -> dict:
    """Validation statistics of paper 004 §2.2 for δ = log M_pred - log M_true.

    Parameters
    ----------
    log_m_true, log_m_pred : array_like
        log10(M500c / Msun).
    slope_fit : {"pred_on_true", "true_on_pred"}
        Which least-squares line gives the slope. The paper says "slope of the best-fit line
        of M_true versus M_predicted" without naming the regressor. The default fits
        log M_pred as a function of log M_true, the relation of the paper's Figure 3: a
        model that predicts toward the mean has slope < 1, which the criterion slope > 0.9
        limits. ``"true_on_pred"`` fits log M_true on log M_pred (y-versus-x reading).

    Returns
    -------
    dict
        ``max_abs_delta``, ``median_delta`` (dex) and ``slope``.
    """
    if slope_fit not in SLOPE_FITS:
        raise ValueError(f"slope_fit = {slope_fit!r}: expected one of {SLOPE_FITS}")
    t = np.asarray(log_m_true, dtype=np.float64).ravel()
    p = np.asarray(log_m_pred, dtype=np.float64).ravel()
    if t.shape != p.shape or t.size == 0:
        raise ValueError(f"need equal, non-empty true/pred arrays, got {t.shape} and {p.shape}")
    if not np.all(np.isfinite(p)):
        return {"max_abs_delta": float("inf"), "median_delta": float("nan"),
                "slope": float("nan")}
    from ..evaluate.stats import regression_slope

    x, y = (t, p) if slope_fit == "pred_on_true" else (p, t)
    slope = regression_slope(x, y)
    d = p - t
    return {"max_abs_delta": float(np.max(np.abs(d))), "median_delta": float(np.median(d)),
            "slope": slope}


class MassConvergence(keras.callbacks.Callback):
    """Paper 004 §2.2 stopping rule, evaluated on the validation fold after every epoch.

    Stop when max|δ| < ``max_abs_delta``, |median δ| < ``max_abs_median`` and the slope of the
    true-predicted fit > ``min_slope``. The statistics are added to the epoch logs (so
    ``CSVLogger`` records them when placed after this callback).

    Parameters
    ----------
    images : numpy.ndarray or tuple of numpy.ndarray
        Validation images ``(N, H, W, 1)``, counts, or ``(images, z (N, 1))`` for a model
        with the redshift input.
    log_m : numpy.ndarray
        True log10(M500c / Msun), ``(N,)``.
    max_abs_delta, max_abs_median, min_slope : float
        Thresholds (paper 004: 0.3 dex, 0.02 dex, 0.9).
    batch_size : int
        Prediction batch size.
    slope_fit : {"pred_on_true", "true_on_pred"}
        See :func:`convergence_stats`.
    """

    def __init__(self, images, log_m, *, max_abs_delta: float = 0.3,
                 max_abs_median: float = 0.02, min_slope: float = 0.9, batch_size: int = 64,
                 slope_fit: str = "pred_on_true"):
        super().__init__()
        self.slope_fit = slope_fit
        if isinstance(images, (tuple, list)):  # (images, z): a model with two inputs
            self.images = [np.asarray(a, dtype=np.float32) for a in images]
            n_img = self.images[0].shape[0]
        else:
            self.images = np.asarray(images, dtype=np.float32)
            n_img = self.images.shape[0]
        self.log_m = np.asarray(log_m, dtype=np.float64).ravel()
        if n_img != self.log_m.size:
            raise ValueError(f"validation images ({n_img}) and masses "
                             f"({self.log_m.size}) differ in number")
        self.max_abs_delta = float(max_abs_delta)
        self.max_abs_median = float(max_abs_median)
        self.min_slope = float(min_slope)
        self.batch_size = int(batch_size)
        self.converged_epoch: int | None = None
        self.last: dict = {}

    def on_epoch_end(self, epoch, logs=None):
        pred = self.model.predict(self.images, batch_size=self.batch_size, verbose=0)
        stats = convergence_stats(self.log_m, pred, self.slope_fit)
        self.last = stats
        if logs is not None:
            logs.update({f"val_{k}": v for k, v in stats.items()})
        ok = (stats["max_abs_delta"] < self.max_abs_delta
              and abs(stats["median_delta"]) < self.max_abs_median
              and stats["slope"] > self.min_slope)
        if ok:
            self.converged_epoch = epoch + 1
            self.model.stop_training = True
            log.info("epoch %d: converged on validation (max|d|=%.3f, median d=%.4f, "
                     "slope=%.3f); keeping this model", epoch + 1, stats["max_abs_delta"],
                     stats["median_delta"], stats["slope"])


def resume_state(history: list[dict], monitor: str = "val_loss") -> tuple[float, int, int | None]:
    """Best value, epochs since it and its (1-based) epoch from a history; ``(inf, 0, None)``."""
    best, wait, best_epoch = math.inf, 0, None
    for row in history:
        v = row.get(monitor, math.nan)
        if v < best:
            best, wait, best_epoch = v, 0, int(row["epoch"]) + 1
        else:
            wait += 1
    return best, wait, best_epoch


def write_json_atomic(path: str | Path, data: Mapping[str, Any]) -> Path:
    """Write ``data`` as indented JSON under a temporary name and rename it into place."""
    return atomic_write_text(path, json.dumps(data, indent=2, sort_keys=True, default=str)
                             + "\n")
