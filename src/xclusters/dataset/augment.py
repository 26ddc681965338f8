"""Dihedral augmentation of square images (paper 004 §2.1.3).

The CNNs are not invariant under rotation, so each projected image is used in its 8 dihedral
orientations: 4 rotations by 90° times 2 reflections ("two axial reflections, and four possible
90° orientations"). With 3 projections (x, y, z) that gives 24 images per cluster.
Augmentation index ``a`` in 0..7: reflect left-right if ``a >= 4``, then rotate by
``(a % 4) * 90°`` counter-clockwise. ``a = 0`` is the identity.
"""
from __future__ import annotations

import numpy as np

__all__ = ["N_DIHEDRAL", "dihedral", "random_dihedral_indices"]

N_DIHEDRAL = 8  # 4 rotations x 2 reflections (paper 004 §2.1.3)


def dihedral(image: np.ndarray, index: int) -> np.ndarray:
    """Apply dihedral transform ``index`` (0..7) to an image of shape (..., H, W, C).

    Parameters
    ----------
    image : numpy.ndarray
        Image(s) with spatial axes ``-3`` (rows) and ``-2`` (columns) and channels last.
    index : int
        0..7; see the module docstring.

    Returns
    -------
    numpy.ndarray
        A contiguous copy; counts are conserved exactly.
    """
    index = int(index)
    if not 0 <= index < N_DIHEDRAL:
        raise ValueError(f"dihedral index {index} must be in 0..{N_DIHEDRAL - 1}")
    if image.ndim < 3:
        raise ValueError(f"dihedral expects (..., H, W, C) arrays, got shape {image.shape}")
    out = np.flip(image, axis=-2) if index >= 4 else image
    out = np.rot90(out, k=index % 4, axes=(-3, -2))
    return np.ascontiguousarray(out)


def random_dihedral_indices(rng: np.random.Generator, n: int) -> np.ndarray:
    """``n`` augmentation indices drawn uniformly from 0..7 with ``rng``."""
    return rng.integers(0, N_DIHEDRAL, size=int(n))
