"""Cross-validation folds and train/validation/test splits (paper 004 §2.1.3, §2.2).

Clusters are ordered by mass and dealt cyclically into ``n_folds`` folds so every fold has
about the same mass function; all images of a cluster (projections and augmentations) share
its fold, so a cluster is never both trained and tested on.

Splits
------
* Super-observation model (paper 000 §2.2: 80/10/10 of a shuffled data set): the folds in
  ``dataset.test_folds`` (default ``[9]``) are the test set, ``dataset.val_folds`` (default
  ``[8]``) the validation set, the others (0..7) the training set. Dealing by mass spreads the
  mass function evenly over the three, like a shuffle does on average.
* Mass model (paper 004 §2.2: "we cycle through the data assignments to the train,
  validation, and test folds until the masses of all clusters have been predicted"): model
  ``k`` tests on fold ``k``, validates on fold ``(k + 1) % n_folds`` (our choice; the paper does
  not say which fold validates) and trains on the other 8 (:func:`fold_roles`).

Few clusters
------------
The dealing order starts with the test folds, then the validation folds, then the remaining
folds ascending (default 9, 8, 0, 1, ..., 7). With at least ``len(test_folds) +
len(val_folds) + 1`` clusters every split of the super-observation model is non-empty. Mass
model ``k`` needs clusters in folds ``k``, ``(k+1) % n`` and one more: with 4 clusters (folds
9, 8, 0, 1) that holds for ``k`` = 0, 8 and 9 (``train.mass.folds: [0]`` is the default). For
>= ``n_folds`` clusters the order only relabels folds.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

__all__ = ["assign_folds", "dealing_order", "split_of_fold", "fold_roles", "SPLITS"]

SPLITS = ("train", "val", "test")


def _check(n_folds: int, val_folds: Sequence[int], test_folds: Sequence[int]) -> None:
    if n_folds < 3:
        raise ValueError(f"dataset.n_folds={n_folds} must be >= 3 (train, val, test)")
    for name, folds in (("val_folds", val_folds), ("test_folds", test_folds)):
        bad = [f for f in folds if not 0 <= int(f) < n_folds]
        if bad or not folds:
            raise ValueError(f"dataset.{name}={list(folds)} must be a non-empty list of folds "
                             f"in 0..{n_folds - 1}")
    if set(val_folds) & set(test_folds):
        raise ValueError(f"dataset.val_folds={list(val_folds)} and dataset.test_folds="
                         f"{list(test_folds)} overlap")
    if len(set(val_folds) | set(test_folds)) >= n_folds:
        raise ValueError("dataset.val_folds and dataset.test_folds leave no training fold")


def dealing_order(n_folds: int = 10, val_folds: Sequence[int] = (8,),
                  test_folds: Sequence[int] = (9,)) -> list[int]:
    """Fold labels in the order clusters are dealt: test, validation, then the rest."""
    _check(n_folds, val_folds, test_folds)
    first = [int(f) for f in test_folds] + [int(f) for f in val_folds]
    return first + [f for f in range(n_folds) if f not in first]


def assign_folds(cluster_ids: Sequence[str], m500c: Sequence[float], n_folds: int = 10,
                 val_folds: Sequence[int] = (8,), test_folds: Sequence[int] = (9,)
                 ) -> dict[str, int]:
    """Fold of each cluster: order by mass (ties by id), deal cyclically (paper 004 §2.1.3).

    Parameters
    ----------
    cluster_ids : sequence of str
        Unique cluster ids.
    m500c : sequence of float
        Masses (Msun), same order.
    n_folds, val_folds, test_folds
        ``dataset.n_folds``, ``dataset.val_folds``, ``dataset.test_folds``.

    Returns
    -------
    dict
        ``{cluster_id: fold}``.
    """
    ids = [str(c) for c in cluster_ids]
    mass = np.asarray(m500c, dtype=float)
    if len(ids) != len(mass):
        raise ValueError(f"{len(ids)} cluster ids but {len(mass)} masses")
    if len(set(ids)) != len(ids):
        raise ValueError("cluster ids are not unique")
    if not np.all(np.isfinite(mass)):
        bad = [c for c, m in zip(ids, mass) if not np.isfinite(m)]
        raise ValueError(f"m500c is not finite for clusters {bad[:5]}; fix the sample table")
    order = sorted(range(len(ids)), key=lambda i: (mass[i], ids[i]))
    deal = dealing_order(n_folds, val_folds, test_folds)
    return {ids[i]: deal[k % n_folds] for k, i in enumerate(order)}


def split_of_fold(fold: int, val_folds: Sequence[int] = (8,),
                  test_folds: Sequence[int] = (9,)) -> str:
    """``train``, ``val`` or ``test`` for the super-observation model."""
    if int(fold) in set(int(f) for f in test_folds):
        return "test"
    if int(fold) in set(int(f) for f in val_folds):
        return "val"
    return "train"


def fold_roles(test_fold: int, n_folds: int = 10) -> dict[str, list[int]]:
    """Folds of mass model ``test_fold``: test ``k``, validation ``(k+1) % n``, train the rest."""
    k = int(test_fold)
    if not 0 <= k < n_folds:
        raise ValueError(f"fold {k} must be in 0..{n_folds - 1} (train.mass.folds)")
    val = (k + 1) % n_folds
    return {"train": [f for f in range(n_folds) if f not in (k, val)], "val": [val],
            "test": [k]}
