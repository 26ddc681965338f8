"""The dataset stage: per-cluster images -> ``dataset.h5`` -> tf.data pipelines.

``build`` writes the file (pairs, Chandra images, labels, meta, folds; atomically),
``folds`` assigns mass-ordered cyclic folds and splits, ``augment`` holds the 8 dihedral
transforms, ``layout`` the file layout and checks, ``tfdata`` the readers. The readers import
TensorFlow lazily, so building the dataset does not need it.
"""
from .augment import N_DIHEDRAL, dihedral
from .build import build_dataset
from .folds import assign_folds, fold_roles, split_of_fold
from .layout import DatasetError, check_dataset, read_meta
from .tfdata import load_split_arrays, mass_dataset, superobs_dataset

__all__ = ["build_dataset", "superobs_dataset", "mass_dataset", "load_split_arrays",
           "assign_folds", "fold_roles", "split_of_fold", "dihedral", "N_DIHEDRAL",
           "check_dataset", "read_meta", "DatasetError"]
