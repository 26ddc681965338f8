"""Dataset-level predictions: the super observation of a split, log M500c of each test fold."""
from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Sequence

import h5py
import numpy as np
from astropy.table import Table

from ..io import atomic_path

log = logging.getLogger("xclusters.pipeline")

__all__ = ["predict_superobs_test_split", "predict_mass_folds", "load_keras_model"]

BATCH = 8


def load_keras_model(path: str | Path, kind: str):
    """Load a ``.keras`` model in safe mode (no arbitrary code), with a clear error."""
    from ..predict.loading import load_trained_model

    return load_trained_model(path, kind)


def _rows(meta: Table, split: str) -> np.ndarray:
    if split == "all":
        return np.arange(len(meta))
    if split == "trainval":
        return np.flatnonzero(np.isin(np.asarray(meta["split"]).astype(str), ["train", "val"]))
    return np.flatnonzero(np.asarray(meta["split"]).astype(str) == split)


def predict_superobs_test_split(model_path: str | Path, dataset: str | Path,
                                out: str | Path, *, split: str = "test") -> Path:
    """Predict the super observation for every image of ``split``; write ``/prediction``, ``/index``.

    The eROSITA inputs are read in batches from the HDF5 file, never whole. Negative predicted
    counts are set to 0 (:func:`xclusters.predict.superobs.clip_negative_counts`); the file's
    attributes ``negclip`` (True), ``negclip_n_pixels``, ``negclip_pixel_fraction``,
    ``negclip_counts`` and ``negclip_count_fraction`` record it.
    """
    from ..dataset.layout import SUPEROBS_INPUTS, check_dataset, read_meta
    from ..predict.superobs import clip_negative_counts, predict_superobs_arrays

    check_dataset(dataset, ["superobs"])
    meta = read_meta(dataset)
    rows = _rows(meta, split)
    if rows.size == 0:
        raise ValueError(f"{dataset}: the '{split}' split is empty; use more clusters "
                         f"(sample.n_clusters) or another --split.")
    model = load_keras_model(model_path, "superobs")
    preds = []
    with h5py.File(dataset, "r") as h5:
        inputs = h5[SUPEROBS_INPUTS]
        for start in range(0, rows.size, BATCH):
            idx = rows[start:start + BATCH]
            x = inputs[idx].astype(np.float32)  # rows ascending (flatnonzero)
            preds.append(predict_superobs_arrays(model, x, batch_size=BATCH, clip=False))
    pred, clip_stats = clip_negative_counts(np.concatenate(preds), what=f"{split} split")
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(out) as tmp:
        with h5py.File(tmp, "w") as h5:
            h5.create_dataset("prediction", data=pred, compression="gzip", shuffle=True)
            h5.create_dataset("index", data=rows.astype(np.int64))
            h5.attrs["model"] = str(model_path)
            h5.attrs["split"] = split
            for key, value in clip_stats.items():
                h5.attrs[f"negclip_{key}" if key != "clipped" else "negclip"] = value
    log.info("predicted %d super observations (%s split) -> %s", pred.shape[0], split, out)
    return Path(out)


_FOLD = re.compile(r"fold(\d+)")


def predict_mass_folds(model_paths: Sequence[str | Path], dataset: str | Path,
                       out: str | Path) -> Path:
    """For each ``mass_fold<k>.keras``, predict log M500c of the images in test fold ``k``.

    Writes an ECSV table with ``row, cluster_id, fold, log_m500c_true, log_m500c_pred``.
    A model with the redshift input (``train.mass.redshift_input``) gets each image's
    Chandra observation redshift
    (:func:`~xclusters.dataset.layout.chandra_observation_redshift`).
    """
    from ..dataset.layout import (CHANDRA_IMAGES, chandra_observation_redshift, check_dataset,
                                  read_meta)
    from ..predict.mass import predict_mass_arrays

    check_dataset(dataset, ["mass"])
    meta = read_meta(dataset)
    folds = np.asarray(meta["fold"]).astype(int)
    redshift = chandra_observation_redshift(meta)
    out_rows = {"row": [], "cluster_id": [], "fold": [], "log_m500c_true": [],
                "log_m500c_pred": []}
    with h5py.File(dataset, "r") as h5:
        images = h5[CHANDRA_IMAGES]
        for path in model_paths:
            m = _FOLD.search(Path(path).stem)
            if not m:
                raise ValueError(f"{path}: mass model names must contain fold<k> "
                                 f"(e.g. mass_fold0.keras) to know the test fold.")
            k = int(m.group(1))
            rows = np.flatnonzero(folds == k)
            if rows.size == 0:
                log.warning("fold %d has no images; nothing to predict for %s", k, path)
                continue
            model = load_keras_model(path, "mass")
            for start in range(0, rows.size, 64):
                idx = rows[start:start + 64]
                x = images[idx].astype(np.float32)
                y = predict_mass_arrays(model, x, redshift=redshift[idx])
                out_rows["row"].extend(idx.tolist())
                out_rows["cluster_id"].extend(np.asarray(meta["cluster_id"][idx]).astype(str))
                out_rows["fold"].extend([k] * idx.size)
                out_rows["log_m500c_true"].extend(np.asarray(meta["log_m500c"][idx], float))
                out_rows["log_m500c_pred"].extend(y.astype(float).tolist())
    table = Table(out_rows)
    table.meta["comment"] = "log10(M500c/Msun): true and predicted by the fold's mass CNN"
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(out) as tmp:
        table.write(tmp, format="ascii.ecsv", overwrite=True)
    log.info("predicted %d masses from %d model(s) -> %s", len(table), len(model_paths), out)
    return Path(out)
