"""Train the super-observation CNN (paper 000 section 2.3).

The model is saved after every epoch that reaches a new validation-loss minimum, and
training stops when that minimum has held for ``train.superobs.patience`` epochs (paper: 100)
or after ``train.superobs.epochs``. The kept model is the best-validation one.
"""
from __future__ import annotations

import logging
import math
import shutil
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping, Sequence

if TYPE_CHECKING:
    from xclusters.train.settings import SuperobsTrainSettings

__all__ = ["train_superobs", "train_superobs_from_file", "output_paths"]

log = logging.getLogger("xclusters.train")


def output_paths(out_model_path: str | Path) -> dict[str, Path]:
    """Files written next to a model: ``<stem>.history.csv`` and ``<stem>.summary.json``."""
    p = Path(out_model_path)
    return {"model": p, "history": p.with_name(f"{p.stem}.history.csv"),
            "summary": p.with_name(f"{p.stem}.summary.json")}


def _image_shape(ds) -> tuple:
    spec = ds.element_spec
    x_spec = spec[0] if isinstance(spec, (tuple, list)) else spec
    shape = tuple(x_spec.shape)
    if len(shape) != 4:
        raise ValueError(f"training dataset yields images of shape {shape}; expected batched "
                         "(batch, H, W, bands) tensors paired with targets")
    return shape


def _epoch_summary(train_ds) -> dict:
    """``epoch_definition``, ``variants_per_epoch``, ``steps_per_epoch`` of the training set."""
    from xclusters.dataset.tfdata import epoch_plan

    plan = epoch_plan(train_ds)
    return {"epoch_definition": plan["epoch_definition"],
            "variants_per_epoch": plan["variants_per_epoch"],
            "steps_per_epoch": plan["steps_per_epoch"]}


def train_superobs(train_ds, val_ds, out_model_path: str | Path, *,
                   cfg: Mapping[str, Any] | SuperobsTrainSettings, seed: int, workdir: str | Path,
                   extra_callbacks: Sequence | None = None) -> dict:
    """Train the paper-000 CNN on batched ``(eROSITA, ideal)`` image pairs.

    Parameters
    ----------
    train_ds, val_ds : tf.data.Dataset
        Batched ``(inputs, targets)``, both ``(B, H, W, 3)`` float32 counts per pixel.
    out_model_path : path
        Destination ``.keras`` file (the best-validation-loss model).
    cfg : mapping or SuperobsTrainSettings
        The validated config (or its ``train`` section), read once into
        :class:`xclusters.train.settings.SuperobsTrainSettings`: ``superobs.epochs``,
        ``superobs.batch_size``, ``superobs.learning_rate``, ``superobs.patience``, the loss
        weights, ``mixed_precision`` and ``strategy``.
    seed : int
        Seed of weights initialisation and dropout/shuffling inside TensorFlow.
    workdir : path
        Directory for the ``BackupAndRestore`` state; rerunning with the same ``workdir``
        after a kill continues from the last completed epoch.
    extra_callbacks : sequence of keras.callbacks.Callback, optional
        Appended after the built-in callbacks.

    Returns
    -------
    dict
        The JSON summary (also written to ``<stem>.summary.json``): epochs run, best
        validation loss and epoch, stop reason, wall time (s), training images per second,
        and what an epoch is (``epoch_definition``, ``variants_per_epoch``,
        ``steps_per_epoch``; :func:`xclusters.dataset.tfdata.epoch_plan`).
    """
    import keras

    from xclusters.models.morphology import SuperobsLoss
    from xclusters.models.superobs import build_superobs_model
    from xclusters.train.callbacks import (AtomicModelCheckpoint, MinimumHeldStop,
                                           Throughput, read_history, resume_state,
                                           write_json_atomic)
    from xclusters.train.runtime import configure_runtime, scope
    from xclusters.train.settings import SuperobsTrainSettings

    t_start = time.perf_counter()
    settings = SuperobsTrainSettings.from_config(cfg)
    epochs, patience = settings.epochs, settings.patience
    batch_size, lr = settings.batch_size, settings.learning_rate
    paths = output_paths(out_model_path)
    if paths["model"].suffix != ".keras":
        raise ValueError(f"out_model_path = {out_model_path}: must end in '.keras'")
    paths["model"].parent.mkdir(parents=True, exist_ok=True)
    backup_dir = Path(workdir) / f"backup_{paths['model'].stem}"
    resuming = backup_dir.is_dir()
    n_bands = _image_shape(train_ds)[-1]

    strategy = configure_runtime(seed, mixed_precision=settings.mixed_precision,
                                 strategy=settings.strategy)
    with scope(strategy):
        model = build_superobs_model(n_bands=n_bands)
        model.compile(optimizer=keras.optimizers.Adam(learning_rate=lr),
                      loss=SuperobsLoss.from_train_config(settings), metrics=["mae"])

    history = read_history(paths["history"]) if resuming else []
    best, wait, best_epoch = resume_state(history)
    if resuming:
        log.info("resuming from %s (%d epochs logged, best val_loss %.6g)", backup_dir,
                 len(history), best)
    elif paths["history"].exists():
        paths["history"].unlink()
    stopper = MinimumHeldStop(patience, best=best, wait=wait)
    throughput = Throughput(batch_size)
    callbacks = [
        keras.callbacks.TerminateOnNaN(),
        AtomicModelCheckpoint(paths["model"], monitor="val_loss", save_best_only=True,
                              initial_value_threshold=None if math.isinf(best) else best),
        stopper,
        throughput,
        keras.callbacks.CSVLogger(str(paths["history"]), append=True),
        keras.callbacks.BackupAndRestore(str(backup_dir)),
        *(extra_callbacks or []),
    ]
    log.info("training superobs CNN: up to %d epochs, patience %d, lr %g -> %s", epochs,
             patience, lr, paths["model"])
    # shuffling and augmentation belong to the tf.data pipeline (seeded per epoch)
    model.fit(train_ds, validation_data=val_ds, epochs=epochs, callbacks=callbacks, verbose=2,
              shuffle=False)

    history = read_history(paths["history"])
    best, _, best_epoch = resume_state(history)
    last_loss = history[-1].get("loss", math.nan) if history else math.nan
    if history and not math.isfinite(last_loss):
        reason = "nan"
    elif stopper.stopped_epoch is not None:
        reason = "patience"
    else:
        reason = "max_epochs"
    if not paths["model"].exists():
        raise RuntimeError(f"training ended ({reason}) without a finite validation loss; "
                           f"no model was written to {paths['model']}. See {paths['history']}.")
    shutil.rmtree(backup_dir, ignore_errors=True)
    summary = {
        "model": str(paths["model"]), "history": str(paths["history"]),
        "kind": "superobs", "epochs_run": len(history), "max_epochs": epochs,
        "patience": patience, "best_val_loss": best, "best_epoch": best_epoch,
        "stop_reason": reason, "seed": int(seed), "resumed": resuming,
        "time_s": time.perf_counter() - t_start, **throughput.summary(),
        **_epoch_summary(train_ds),
    }
    write_json_atomic(paths["summary"], summary)
    log.info("superobs training done: %s", summary)
    return summary


def train_superobs_from_file(dataset_path: str | Path, out_model_path: str | Path, *,
                             cfg: Mapping[str, Any] | SuperobsTrainSettings, seed: int,
                             workdir: str | Path,
                             augment: bool = True) -> dict:
    """Read ``dataset.h5`` through :mod:`xclusters.dataset.tfdata` and call :func:`train_superobs`.

    ``augment`` applies the dihedral flips/rotations to the training split only;
    ``train.epoch_definition`` says what one epoch of it is.
    """
    from xclusters.dataset.tfdata import superobs_dataset
    from xclusters.train.settings import SuperobsTrainSettings

    settings = SuperobsTrainSettings.from_config(cfg)
    bs = settings.batch_size
    train_ds = superobs_dataset(dataset_path, "train", bs, augment, seed,
                                epoch_definition=settings.epoch_definition)
    val_ds = superobs_dataset(dataset_path, "val", bs, False, seed, shuffle=False)
    return train_superobs(train_ds, val_ds, out_model_path, cfg=settings, seed=seed,
                          workdir=workdir)
