"""tf.data pipelines that stream ``dataset.h5`` (never loaded whole) and evaluation arrays.

* :func:`superobs_dataset`: (eROSITA, ideal) float32 (H, W, 3) pairs of one split.
* :func:`mass_dataset`: (Chandra (H, W, 1), log10 M500c/Msun of shape (1,)) of some folds.
* :func:`load_split_arrays`: numpy arrays of a split or folds, for prediction/evaluation.

Rows are read one at a time with h5py inside a Python generator
(``tf.data.Dataset.from_generator``); each Keras epoch shuffles with
``rng_for(seed, "tfdata", <tag>, epoch)``, so an epoch's examples depend only on the seed and
the epoch number. What one epoch is (``train.epoch_definition``, issue 16):

* ``paper`` (default): when augmenting on the fly, one epoch enumerates every (image,
  dihedral transform) pair exactly once (8 per image; with 3 projections the 24 variants
  per cluster of paper 004 §2.1.3 and paper 000), in a shuffled order -- the papers'
  epoch, for which they store the variants;
* ``pass``: each image once with one random transform drawn per example (8 passes = 1 paper
  epoch).

With ``dataset.augmentation: stored`` the 8 transforms are rows of the file: ``augment=True``
uses all of them (one epoch = all stored rows, for either definition), ``False`` only the
identity rows. With ``none``, ``augment`` is ignored (one epoch = each image once).
Validation sets are built with ``augment=False``: each image once, untransformed.

The datasets carry their length (``assert_cardinality``: Keras knows the steps per epoch) and
an ``epoch_plan`` attribute read by :func:`epoch_plan` (recorded in the training summaries).
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from ..seeds import rng_for
from .augment import N_DIHEDRAL, dihedral
from .folds import SPLITS
from .layout import (CHANDRA_IMAGES, SUPEROBS_BKG, SUPEROBS_INPUTS, SUPEROBS_TARGETS,
                     DatasetError, check_dataset, chandra_observation_redshift, read_meta)

__all__ = ["superobs_dataset", "mass_dataset", "load_split_arrays", "select_rows",
           "epoch_plan", "EPOCH_DEFINITIONS"]

log = logging.getLogger("xclusters.dataset")

#: Values of ``train.epoch_definition`` (see the module docstring).
EPOCH_DEFINITIONS = ("paper", "pass")


def _check_epoch_definition(epoch_definition: str) -> str:
    if epoch_definition not in EPOCH_DEFINITIONS:
        raise ValueError(f"epoch_definition = {epoch_definition!r} (train.epoch_definition): "
                         f"expected one of {EPOCH_DEFINITIONS}")
    return epoch_definition


def _mode(path: str | Path) -> str:
    import h5py

    with h5py.File(path, "r") as fh:
        mode = fh.attrs.get("augmentation", "none")
    return mode.decode() if isinstance(mode, bytes) else str(mode)


def _as_folds(folds: int | Sequence[int] | None) -> list[int] | None:
    if folds is None:
        return None
    if isinstance(folds, (int, np.integer)):
        return [int(folds)]
    return [int(f) for f in folds]


def select_rows(meta, *, split: str | None = None, folds: int | Sequence[int] | None = None,
                all_stored_augmentations: bool = False) -> np.ndarray:
    """Row indices of ``meta`` in ``split`` and/or ``folds`` (sorted ascending).

    Only identity rows (``augmentation == 0``) unless ``all_stored_augmentations``.
    Raises :class:`DatasetError` when nothing is selected, with the rows per split/fold.
    """
    keep = np.ones(len(meta), dtype=bool)
    if split is not None:
        if split not in SPLITS:
            raise ValueError(f"split={split!r} must be one of {SPLITS}")
        keep &= np.asarray(meta["split"]) == split
    fl = _as_folds(folds)
    if fl is not None:
        keep &= np.isin(np.asarray(meta["fold"]), fl)
    if not all_stored_augmentations:
        keep &= np.asarray(meta["augmentation"]) == 0
    rows = np.nonzero(keep)[0]
    if rows.size == 0:
        per_split = {s: int(np.sum(np.asarray(meta["split"]) == s)) for s in SPLITS}
        per_fold = {int(f): int(np.sum(np.asarray(meta["fold"]) == f))
                    for f in np.unique(meta["fold"])}
        raise DatasetError(f"no rows for split={split!r} folds={fl}: rows per split "
                           f"{per_split}, per fold {per_fold}. Use more clusters "
                           "(sample.n_clusters) or other folds (train.mass.folds).")
    return rows


class _RowStream:
    """Generator factory: one call = one epoch over ``rows`` (shuffled, augmented).

    With ``augment`` and ``epoch_definition == "paper"`` the epoch is every (row, transform)
    pair once; with ``"pass"`` every row once with a random transform. Yields whole batches,
    which costs far less per example than element-wise ``from_generator`` followed by
    ``batch``.
    """

    def __init__(self, path, x_name, y_name, rows, labels, augment, seed, shuffle, tag,
                 batch_size, drop_remainder, epoch_definition="paper"):
        self.path = str(path)
        self.x_name, self.y_name = x_name, y_name
        self.rows = np.asarray(rows)
        self.labels = labels
        self.augment = augment
        self.seed = int(seed)
        self.shuffle = shuffle
        self.tag = tag
        self.batch_size = int(batch_size)
        self.drop_remainder = drop_remainder
        self.epoch_definition = _check_epoch_definition(epoch_definition)
        self.epoch = 0

    @property
    def variants_per_image(self) -> int:
        """Examples per image and epoch: 8 (paper epochs, on the fly) or 1."""
        return N_DIHEDRAL if self.augment and self.epoch_definition == "paper" else 1

    @property
    def n_examples(self) -> int:
        """Examples yielded per epoch (before ``drop_remainder``)."""
        return len(self.rows) * self.variants_per_image

    @property
    def n_batches(self) -> int:
        """Batches per epoch."""
        n = self.n_examples
        return n // self.batch_size if self.drop_remainder else -(-n // self.batch_size)

    def plan(self, mode: str, augment: bool) -> dict:
        """The ``epoch_plan`` of the dataset (see :func:`epoch_plan`)."""
        n = self.n_batches * self.batch_size if self.drop_remainder else self.n_examples
        return {"epoch_definition": self.epoch_definition, "augmentation": mode,
                "augment": bool(augment and mode != "none"), "rows": int(len(self.rows)),
                "variants_per_epoch": int(n), "steps_per_epoch": int(self.n_batches),
                "batch_size": self.batch_size}

    def epoch_order(self, epoch: int) -> tuple[np.ndarray, np.ndarray]:
        """(positions into ``rows``, dihedral transform) of every example of ``epoch``."""
        rng = rng_for(self.seed, "tfdata", self.tag, epoch)
        n = len(self.rows)
        if self.variants_per_image > 1:
            pairs = rng.permutation(n * N_DIHEDRAL) if self.shuffle \
                else np.arange(n * N_DIHEDRAL)
            return pairs // N_DIHEDRAL, pairs % N_DIHEDRAL
        order = rng.permutation(n) if self.shuffle else np.arange(n)
        augs = (rng.integers(0, N_DIHEDRAL, size=n) if self.augment
                else np.zeros(n, dtype=int))
        return order, augs

    def __call__(self):
        import h5py

        order, augs = self.epoch_order(self.epoch)
        self.epoch += 1
        with h5py.File(self.path, "r") as fh:
            xd = fh[self.x_name]
            yd = fh[self.y_name] if self.y_name else None
            for start in range(0, len(order), self.batch_size):
                sel = order[start:start + self.batch_size]
                if self.drop_remainder and len(sel) < self.batch_size:
                    break
                rows = [int(r) for r in self.rows[sel]]
                a = augs[start:start + len(sel)]
                # one h5py read per row: a multi-row selection of scattered gzip chunks
                # measured 5x slower (chunks re-read through the small chunk cache)
                x = np.stack([dihedral(xd[r], k) for r, k in zip(rows, a)])
                if yd is not None:
                    y = np.stack([dihedral(yd[r], k) for r, k in zip(rows, a)])
                else:
                    y = np.asarray(self.labels[sel], dtype=np.float32)[:, None]
                yield x, y


def _make(stream: _RowStream, x_shape, y_shape, mode: str, augment: bool):
    import tensorflow as tf

    ds = tf.data.Dataset.from_generator(
        stream, output_signature=(tf.TensorSpec((None, *x_shape), tf.float32),
                                  tf.TensorSpec((None, *y_shape), tf.float32)))
    ds = ds.apply(tf.data.experimental.assert_cardinality(stream.n_batches))
    ds = ds.prefetch(tf.data.AUTOTUNE)
    ds.epoch_plan = stream.plan(mode, augment)
    return ds


def epoch_plan(ds) -> dict:
    """What one epoch of a training dataset is, for the training summary.

    Parameters
    ----------
    ds : tf.data.Dataset
        A dataset of :func:`superobs_dataset` / :func:`mass_dataset`, or any batched dataset.

    Returns
    -------
    dict
        ``epoch_definition`` (``paper``/``pass``; ``None`` for a dataset not built here),
        ``variants_per_epoch`` (examples per epoch; ``None`` if unknown),
        ``steps_per_epoch`` (batches; ``None`` if unknown) and, for datasets built here,
        ``augmentation`` (the file's mode), ``augment``, ``rows`` (dataset rows read) and
        ``batch_size``.
    """
    plan = getattr(ds, "epoch_plan", None)
    if plan is not None:
        return dict(plan)
    steps = None
    try:
        n = int(ds.cardinality())
        steps = n if n >= 0 else None
    except Exception:  # pragma: no cover - non-tf.data iterables
        pass
    return {"epoch_definition": None, "variants_per_epoch": None, "steps_per_epoch": steps}


def _batch(batch_size: int) -> int:
    if int(batch_size) < 1:
        raise ValueError(f"batch_size={batch_size} must be >= 1")
    return int(batch_size)


def _shape(path, name) -> tuple[int, ...]:
    import h5py

    with h5py.File(path, "r") as fh:
        return tuple(int(n) for n in fh[name].shape[1:])


def superobs_dataset(path: str | Path, split: str, batch_size: int, augment: bool = True,
                     seed: int = 0, *, shuffle: bool = True, drop_remainder: bool = False,
                     epoch_definition: str = "paper"):
    """Batches of (eROSITA inputs, ideal targets), each (batch, H, W, 3) float32 counts.

    Parameters
    ----------
    path : path
        A complete ``dataset.h5``.
    split : {"train", "val", "test"}
        Rows of that split (``dataset.val_folds``/``test_folds`` at build time).
    batch_size : int
    augment : bool
        Dihedral augmentation (on the fly or the stored rows, see the module docstring).
    seed : int
        Seeds shuffling and augmentation (with the split name and the epoch number).
    shuffle : bool
        Shuffle the rows each pass.
    drop_remainder : bool
        Drop the last incomplete batch.
    epoch_definition : {"paper", "pass"}
        ``train.epoch_definition``: with on-the-fly ``augment``, ``paper`` makes one epoch
        every (image, dihedral transform) pair once, ``pass`` each image once with a random
        transform (module docstring).

    Returns
    -------
    tf.data.Dataset
        Ends with ``prefetch(AUTOTUNE)``; known cardinality (batches per epoch) and an
        ``epoch_plan`` (:func:`epoch_plan`).
    """
    check_dataset(path, ["superobs"])
    meta = read_meta(path, check=False)
    mode = _mode(path)
    rows = select_rows(meta, split=split, all_stored_augmentations=augment and mode == "stored")
    shape = _shape(path, SUPEROBS_INPUTS)
    stream = _RowStream(path, SUPEROBS_INPUTS, SUPEROBS_TARGETS, rows, None,
                        augment and mode == "on_the_fly", seed, shuffle, f"superobs-{split}",
                        _batch(batch_size), drop_remainder, epoch_definition)
    log.info("superobs %s: %d rows, %d examples per epoch (augmentation %s, augment=%s, "
             "%s epochs)", split, len(rows), stream.n_examples, mode, augment,
             epoch_definition)
    return _make(stream, shape, shape, mode, augment)


def mass_dataset(path: str | Path, folds: int | Sequence[int], batch_size: int,
                 augment: bool = True, seed: int = 0, *, shuffle: bool = True,
                 drop_remainder: bool = False, epoch_definition: str = "paper",
                 redshift: bool = False):
    """Batches of (Chandra image (batch, H, W, 1), log10(M500c/Msun) (batch, 1)) float32.

    With ``redshift=True`` the inputs are ``(image, z)`` with ``z`` (batch, 1) the Chandra
    observation's redshift (:func:`~xclusters.dataset.layout.chandra_observation_redshift`):
    batches ``((image, z), log_m)`` for the mass CNN's redshift input.

    Parameters
    ----------
    path : path
        A complete ``dataset.h5`` with ``/chandra/images``.
    folds : int or sequence of int
        Folds to include, e.g. ``fold_roles(k)["train"]``.
    batch_size, augment, seed, shuffle, drop_remainder, epoch_definition
        As in :func:`superobs_dataset`.
    redshift : bool
        Yield the redshift as a second input (``train.mass.redshift_input``).

    Returns
    -------
    tf.data.Dataset
    """
    check_dataset(path, ["mass"])
    meta = read_meta(path, check=False)
    mode = _mode(path)
    rows = select_rows(meta, folds=folds, all_stored_augmentations=augment and mode == "stored")
    labels = np.asarray(meta["log_m500c"], dtype=np.float32)[rows]
    if redshift:  # the redshift rides along as a second label column, split off below
        z = chandra_observation_redshift(meta).astype(np.float32)[rows]
        labels = np.stack([labels, z], axis=1)
    shape = _shape(path, CHANDRA_IMAGES)
    tag = "mass-" + "-".join(str(f) for f in _as_folds(folds))
    stream = _RowStream(path, CHANDRA_IMAGES, None, rows, labels,
                        augment and mode == "on_the_fly", seed, shuffle, tag,
                        _batch(batch_size), drop_remainder, epoch_definition)
    log.info("mass folds %s: %d rows, %d examples per epoch (augmentation %s, augment=%s, "
             "%s epochs, redshift input %s)", _as_folds(folds), len(rows), stream.n_examples,
             mode, augment, epoch_definition, redshift)
    if not redshift:
        return _make(stream, shape, (1,), mode, augment)
    # _RowStream yields labels[sel][:, None]: (batch, 1, 2) = (log_m, z)
    ds = _make(stream, shape, (1, 2), mode, augment)
    out = ds.map(lambda x, y: ((x, y[:, 0, 1:2]), y[:, 0, 0:1]))
    out.epoch_plan = ds.epoch_plan
    return out


def load_split_arrays(path: str | Path, split: str | None = None, *,
                      folds: int | Sequence[int] | None = None, what: str = "superobs",
                      all_augmentations: bool = False) -> dict[str, Any]:
    """Arrays of a split (or folds) for prediction and evaluation.

    Parameters
    ----------
    path : path
        A complete ``dataset.h5``.
    split : {"train", "val", "test"}, optional
        Select by split; ``folds`` selects by fold; both may be combined; neither = all rows.
    what : {"superobs", "mass"}
        ``superobs``: ``inputs`` (N, H, W, 3), ``targets`` (N, H, W, 3), ``bkg`` (N, 3)
        (eROSITA-NR full-field annulus background per pixel), ``meta``.
        ``mass``: ``images`` (N, H, W, 1), ``log_m500c`` (N,) float32, ``meta``.
    all_augmentations : bool
        False: identity rows only (one per cluster and projection). True: all 8 dihedral
        transforms (stored rows, or made here in memory for ``on_the_fly``; ``meta`` then has
        one row per transform with its ``augmentation`` index).

    Returns
    -------
    dict
        Arrays as above plus ``meta`` (astropy Table of the selected rows).
    """
    import h5py

    if what not in ("superobs", "mass"):
        raise ValueError(f"what={what!r} must be 'superobs' or 'mass'")
    check_dataset(path, [what])
    meta = read_meta(path, check=False)
    mode = _mode(path)
    rows = select_rows(meta, split=split, folds=folds,
                       all_stored_augmentations=all_augmentations and mode == "stored")
    names = ({"inputs": SUPEROBS_INPUTS, "targets": SUPEROBS_TARGETS, "bkg": SUPEROBS_BKG}
             if what == "superobs" else {"images": CHANDRA_IMAGES})
    with h5py.File(path, "r") as fh:
        out: dict[str, Any] = {k: fh[v][rows] for k, v in names.items()}
    sel = meta[rows]
    if all_augmentations and mode != "stored":
        n = len(rows)
        for k in names:
            if k == "bkg":
                out[k] = np.repeat(out[k], N_DIHEDRAL, axis=0)
            else:
                out[k] = np.stack([dihedral(img, a) for img in out[k]
                                   for a in range(N_DIHEDRAL)])
        from astropy.table import vstack

        reps = []
        for i in range(n):
            block = sel[[i] * N_DIHEDRAL]
            block["augmentation"] = np.arange(N_DIHEDRAL)
            reps.append(block)
        sel = vstack(reps)
    if what == "mass":
        out["log_m500c"] = np.asarray(sel["log_m500c"], dtype=np.float32)
    out["meta"] = sel
    return out
