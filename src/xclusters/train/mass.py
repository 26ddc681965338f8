"""Train the mass CNN on one cross-validation split (paper 004 section 2.2).

Folds (paper 004 §2.1.3): clusters ordered by mass are assigned cyclically to 10 folds, all
images of a cluster in one fold. Run ``k`` tests on fold ``k``, validates on fold
``(k + 1) mod n`` and trains on the other eight (80/10/10 %); cycling ``k`` over all folds
predicts every cluster once ("we cycle through the data assignments to the train,
validation, and test folds", §2.2).

Stopping (§2.2): after each epoch the validation fold is predicted; training stops and that
model is kept when max|δ| < 0.3, |median δ| < 0.02 and the slope of the true-predicted fit
> 0.9 (δ = log M_pred - log M_true). Otherwise the model of the last epoch
(``train.mass.max_epochs``, paper: 400) is kept. Loss MSE on log10(M500c/Msun), Adam lr 5e-4.
"""
from __future__ import annotations

import logging
import math
import shutil
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping, Sequence

import numpy as np

if TYPE_CHECKING:
    from xclusters.train.settings import MassTrainSettings

__all__ = ["fold_splits", "train_mass_fold", "train_mass_fold_from_file", "dataset_to_arrays",
           "STOP_MAX_ABS_DELTA", "STOP_MAX_ABS_MEDIAN", "STOP_MIN_SLOPE"]

log = logging.getLogger("xclusters.train")

#: Convergence thresholds on the validation fold (paper 004 §2.2).
STOP_MAX_ABS_DELTA = 0.3
STOP_MAX_ABS_MEDIAN = 0.02
STOP_MIN_SLOPE = 0.9


def fold_splits(k: int, n_folds: int = 10) -> dict:
    """Test, validation and training folds of cross-validation run ``k``.

    Parameters
    ----------
    k : int
        Run index, 0 <= k < n_folds.
    n_folds : int
        Number of folds (paper 004: 10).

    Returns
    -------
    dict
        ``{"test": k, "val": (k + 1) % n_folds, "train": [the other folds, ascending]}``.
    """
    n = int(n_folds)
    if n < 3:
        raise ValueError(f"n_folds = {n_folds!r}: need at least 3 (train, validation, test)")
    if not 0 <= int(k) < n:
        raise ValueError(f"fold run k = {k!r}: expected 0 <= k < {n}")
    test, val = int(k), (int(k) + 1) % n
    return {"test": test, "val": val, "train": [f for f in range(n) if f not in (test, val)]}


def dataset_to_arrays(ds, max_batches: int | None = None) -> tuple[Any, np.ndarray]:
    """Collect a batched ``(images, log_m)`` dataset into NumPy arrays.

    For a ``((images, z), log_m)`` dataset (redshift input) the first item is the tuple
    ``(images, z)`` of arrays.
    """
    xs, ys = [], []
    for i, (x, y) in enumerate(ds):
        if max_batches is not None and i >= max_batches:
            break
        xs.append(tuple(np.asarray(a) for a in x) if isinstance(x, (tuple, list))
                  else np.asarray(x))
        ys.append(np.asarray(y).reshape(-1))
    if not xs:
        raise ValueError("the dataset is empty")
    if isinstance(xs[0], tuple):
        return tuple(np.concatenate(parts) for parts in zip(*xs)), np.concatenate(ys)
    return np.concatenate(xs), np.concatenate(ys)


def _targets_mean(ds, max_batches: int = 64) -> float:
    ys = [np.asarray(y).reshape(-1) for _, (_, y) in zip(range(max_batches), ds)]
    if not ys:
        raise ValueError("the training dataset is empty")
    return float(np.mean(np.concatenate(ys)))


def _pixel_stats(ds, max_batches: int = 64) -> tuple[float, float]:
    """log1p pixel mean and std of (up to ``max_batches``) training batches."""
    from xclusters.models.mass import log1p_pixel_stats

    xs = [np.asarray(x[0] if isinstance(x, (tuple, list)) else x)
          for _, (x, _) in zip(range(max_batches), ds)]
    return log1p_pixel_stats(np.concatenate(xs))


def train_mass_fold(train_ds, val_ds, out_model_path: str | Path, *,
                    cfg: Mapping[str, Any] | MassTrainSettings, seed: int, workdir: str | Path,
                    val_arrays: tuple[Any, np.ndarray] | None = None,
                    input_scaling: str | None = None, slope_fit: str = "pred_on_true",
                    extra_callbacks: Sequence | None = None) -> dict:
    """Train the paper-004 CNN on one fold split with the paper's stopping rule.

    Parameters
    ----------
    train_ds, val_ds : tf.data.Dataset
        Batched ``(images (B, H, W, 1) counts, log10(M500c/Msun) (B,) or (B, 1))``; with
        ``train.mass.redshift_input`` batches ``((images, z (B, 1)), log_m)``.
    out_model_path : path
        Destination ``.keras`` file: the converged model, else the last epoch's.
    cfg : mapping or MassTrainSettings
        The validated config (or its ``train`` section), read once into
        :class:`xclusters.train.settings.MassTrainSettings`: ``mass.max_epochs``,
        ``mass.batch_size``, ``mass.learning_rate``, ``mass.input_scaling``,
        ``mass.redshift_input``, ``mixed_precision``, ``strategy``.
    seed : int
        Seed for weights initialisation and dropout.
    workdir : path
        Directory for the ``BackupAndRestore`` state (resume after a kill).
    val_arrays : (images, log_m), optional
        The validation fold as arrays for the stopping rule (``((images, z), log_m)`` with
        the redshift input); collected from ``val_ds`` when omitted.
    input_scaling : str, optional
        Parameter-free input scaling inside the model (:mod:`xclusters.models.mass`);
        default ``train.mass.input_scaling`` (``log1p_standardized``).
    slope_fit : {"pred_on_true", "true_on_pred"}
        Regression giving the slope of the stopping rule
        (:func:`xclusters.train.callbacks.convergence_stats`).
    extra_callbacks : sequence, optional
        Appended after the built-in callbacks.

    Returns
    -------
    dict
        JSON summary (also in ``<stem>.summary.json``): epochs run, stop reason
        (``converged``/``max_epochs``/``nan``), final validation statistics, timing, and
        what an epoch is (``epoch_definition``, ``variants_per_epoch``, ``steps_per_epoch``).
    """
    import keras

    from xclusters.models.mass import build_mass_model
    from xclusters.train.callbacks import (MassConvergence, Throughput, read_history,
                                           resume_state, save_model_atomic, write_json_atomic)
    from xclusters.train.runtime import configure_runtime, scope
    from xclusters.train.settings import MassTrainSettings
    from xclusters.train.superobs import _epoch_summary, _image_shape, output_paths

    t_start = time.perf_counter()
    settings = MassTrainSettings.from_config(cfg)
    max_epochs, batch_size, lr = settings.max_epochs, settings.batch_size, settings.learning_rate
    if input_scaling is None:
        input_scaling = settings.input_scaling
    redshift_input = settings.redshift_input
    paths = output_paths(out_model_path)
    if paths["model"].suffix != ".keras":
        raise ValueError(f"out_model_path = {out_model_path}: must end in '.keras'")
    paths["model"].parent.mkdir(parents=True, exist_ok=True)
    spec = train_ds.element_spec[0]
    if isinstance(spec, (tuple, list)) != redshift_input:
        raise ValueError(f"train.mass.redshift_input is {redshift_input} but the training "
                         f"dataset yields {'(image, z)' if not redshift_input else 'images'}"
                         " inputs; build it with mass_dataset(..., redshift="
                         f"{redshift_input})")
    shape = _image_shape(train_ds.map(lambda x, y: (x[0], y)) if redshift_input else train_ds)
    if shape[-1] != 1 or shape[1] is None or shape[1] != shape[2]:
        raise ValueError(f"mass training images have shape {shape[1:]}; expected square "
                         "(H, H, 1) single-band counts")
    backup_dir = Path(workdir) / f"backup_{paths['model'].stem}"
    resuming = backup_dir.is_dir()

    strategy = configure_runtime(seed, mixed_precision=settings.mixed_precision,
                                 strategy=settings.strategy)
    if val_arrays is None:
        val_arrays = dataset_to_arrays(val_ds)
    val_inputs, val_log_m = val_arrays
    val_log_m = np.asarray(val_log_m)
    bias0 = _targets_mean(train_ds)
    stats = _pixel_stats(train_ds) if input_scaling == "log1p_standardized" else (0.0, 1.0)
    with scope(strategy):
        model = build_mass_model(int(shape[1]), input_scaling=input_scaling, output_bias=bias0,
                                 redshift_input=redshift_input, log1p_mean_std=stats)
        model.compile(optimizer=keras.optimizers.Adam(learning_rate=lr), loss="mse",
                      metrics=["mae"])

    if resuming:
        log.info("resuming from %s", backup_dir)
    elif paths["history"].exists():
        paths["history"].unlink()
    conv = MassConvergence(val_inputs, val_log_m, max_abs_delta=STOP_MAX_ABS_DELTA,
                           max_abs_median=STOP_MAX_ABS_MEDIAN, min_slope=STOP_MIN_SLOPE,
                           batch_size=max(batch_size, 64), slope_fit=slope_fit)
    throughput = Throughput(batch_size)
    callbacks = [
        keras.callbacks.TerminateOnNaN(),
        conv,
        throughput,
        keras.callbacks.CSVLogger(str(paths["history"]), append=True),
        keras.callbacks.BackupAndRestore(str(backup_dir)),
        *(extra_callbacks or []),
    ]
    log.info("training mass CNN: up to %d epochs, lr %g, %d validation images -> %s",
             max_epochs, lr, len(val_log_m), paths["model"])
    # shuffling and augmentation belong to the tf.data pipeline (seeded per epoch)
    model.fit(train_ds, validation_data=val_ds, epochs=max_epochs, callbacks=callbacks,
              verbose=2, shuffle=False)

    history = read_history(paths["history"])
    last_loss = history[-1].get("loss", math.nan) if history else math.nan
    if history and not math.isfinite(last_loss):
        raise RuntimeError(f"mass training diverged (loss {last_loss}); no model written. "
                           f"See {paths['history']}; try a lower train.mass.learning_rate.")
    reason = "converged" if conv.converged_epoch is not None else "max_epochs"
    save_model_atomic(model, paths["model"])
    shutil.rmtree(backup_dir, ignore_errors=True)
    best, _, best_epoch = resume_state(history)
    summary = {
        "model": str(paths["model"]), "history": str(paths["history"]), "kind": "mass",
        "epochs_run": len(history), "max_epochs": max_epochs, "stop_reason": reason,
        "kept_epoch": len(history), "best_val_loss": best, "best_epoch": best_epoch,
        "final_val_loss": history[-1].get("val_loss") if history else None,
        "validation": conv.last, "output_bias_init": bias0, "input_scaling": input_scaling,
        "log1p_mean_std": list(stats),
        "redshift_input": redshift_input, "slope_fit": slope_fit,
        "seed": int(seed), "resumed": resuming, "time_s": time.perf_counter() - t_start,
        **throughput.summary(), **_epoch_summary(train_ds),
    }
    write_json_atomic(paths["summary"], summary)
    log.info("mass training done: %s", summary)
    return summary


def train_mass_fold_from_file(dataset_path: str | Path, k: int, out_model_path: str | Path, *,
                              cfg: Mapping[str, Any] | MassTrainSettings, seed: int,
                              workdir: str | Path,
                              n_folds: int = 10, augment: bool = True) -> dict:
    """Read ``dataset.h5`` via :mod:`xclusters.dataset.tfdata` and train run ``k``."""
    from xclusters.dataset.tfdata import mass_dataset
    from xclusters.train.settings import MassTrainSettings

    split = fold_splits(k, n_folds)
    settings = MassTrainSettings.from_config(cfg)
    bs, z_in = settings.batch_size, settings.redshift_input
    train_ds = mass_dataset(dataset_path, split["train"], bs, augment, seed, redshift=z_in,
                            epoch_definition=settings.epoch_definition)
    val_ds = mass_dataset(dataset_path, [split["val"]], bs, False, seed, shuffle=False,
                          redshift=z_in)
    return train_mass_fold(train_ds, val_ds, out_model_path, cfg=settings, seed=seed,
                           workdir=workdir, val_arrays=dataset_to_arrays(val_ds))
