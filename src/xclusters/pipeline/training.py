"""Training steps of the workflow: the dataset file in, a ``.keras`` model out."""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Mapping

from ..models.record import training_record, write_training_record
from ..seeds import int_seed_for

log = logging.getLogger("xclusters.pipeline")

__all__ = ["train_superobs_from_dataset", "train_mass_from_dataset"]


def train_superobs_from_dataset(dataset: str | Path, out_model: str | Path, *,
                                config: Mapping[str, Any], workdir: str | Path) -> dict:
    """Train the super-observation CNN (paper 000) on ``dataset.h5`` and save ``out_model``.

    ``config`` is the validated config; its ``train`` section is read once into
    :class:`xclusters.train.settings.SuperobsTrainSettings` (a missing key is an error).
    """
    from ..train.settings import SuperobsTrainSettings
    from ..train.superobs import train_superobs_from_file

    settings = SuperobsTrainSettings.from_config(config)

    out_model = Path(out_model)
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    out_model.parent.mkdir(parents=True, exist_ok=True)
    seed = int_seed_for(config["seed"], "train", "superobs")
    augment = config["dataset"]["augmentation"] == "on_the_fly"
    summary = train_superobs_from_file(dataset, out_model, cfg=settings, seed=seed,
                                       workdir=workdir, augment=augment)
    write_training_record(out_model, training_record(config, "superobs", out_model))
    log.info("superobs training: %s", summary)
    return summary


def train_mass_from_dataset(dataset: str | Path, fold: int, out_model: str | Path, *,
                            config: Mapping[str, Any], workdir: str | Path) -> dict:
    """Train the mass CNN (paper 004) with test fold ``fold`` and save ``out_model``.

    ``config`` is the validated config; its ``train`` section is read once into
    :class:`xclusters.train.settings.MassTrainSettings` (a missing key is an error).
    """
    from ..train.mass import train_mass_fold_from_file
    from ..train.settings import MassTrainSettings

    settings = MassTrainSettings.from_config(config)

    out_model = Path(out_model)
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    out_model.parent.mkdir(parents=True, exist_ok=True)
    n_folds = int(config["dataset"]["n_folds"])
    if not 0 <= fold < n_folds:
        raise ValueError(f"--fold {fold}: must be in 0..{n_folds - 1} (dataset.n_folds).")
    seed = int_seed_for(config["seed"], "train", "mass", fold)
    augment = config["dataset"]["augmentation"] == "on_the_fly"
    summary = train_mass_fold_from_file(dataset, fold, out_model, cfg=settings, seed=seed,
                                        workdir=workdir, n_folds=n_folds, augment=augment)
    write_training_record(out_model, training_record(config, "mass", out_model))
    log.info("mass training fold %d: %s", fold, summary)
    return summary
