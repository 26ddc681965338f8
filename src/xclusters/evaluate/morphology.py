"""Morphology parameters of X-ray images: concentration, asymmetry, smoothness.

Two families, both from paper 000 (``papers/000_*.txt``):

* **R500c** versions used for evaluation (§3.1–3.3, eqs. 4–6):
  ``C = F(r <= 0.1 R500c) / F(r <= R500c)``,
  ``A = F(|X - X180|; r <= R500c) / F(X; r <= R500c)``,
  ``S = F(|X - boxcar11(X)|; r <= R500c) / F(X; r <= R500c)``.
* The **fixed** versions of the training loss (§2.3, eqs. 1–3: concentration within 10 and
  100 pixels, asymmetry and smoothness over the whole image) are these with R500c = 100 px
  (C) or an aperture covering the image (A, S); their one implementation is the differentiable
  TensorFlow loss, :mod:`xclusters.models.morphology` (tests cross-check the two).

Conventions (documented choices where the paper is silent):

* Centre: the geometric image centre, pixel coordinate ``((H-1)/2, (W-1)/2)`` (0-based). The
  images place the cluster centre there, and the 180-degree rotation ``X[::-1, ::-1]`` is a
  rotation about exactly this point, so the circular aperture is invariant under it.
* A pixel is inside radius ``r`` when the distance of its centre from the image centre is
  ``<= r`` (pixels are not split).
* Smoothness: the 11-pixel boxcar is applied to the *full* image, and the sums are then
  restricted to ``r <= R500c``. Masking before smoothing would create an artificial edge at
  R500c. The boxcar boundary (only relevant near the image edge) is zero padding by default
  (``boundary="zero"``); ``"valid_mean"`` averages over the in-image pixels only (the
  behaviour of ``tf.nn.avg_pool2d(..., padding="SAME")``), ``"reflect"`` and ``"nearest"``
  follow :func:`scipy.ndimage.uniform_filter`.
* Empty images (zero flux inside the aperture) give NaN and a logged warning: the ratio is
  undefined, and NaN keeps such images out of the statistics instead of counting them as
  perfectly concentrated/symmetric/smooth. (Only the training loss floors its denominators,
  at ``EPS_COUNTS``, so that its gradient stays finite; see :mod:`xclusters.models.morphology`.)

All functions accept a single image ``(H, W)`` or a stack ``(N, H, W)``; the batched helpers
:func:`morphology_r500c` takes ``(N, H, W, B)`` band cubes.
"""
from __future__ import annotations

import logging

import numpy as np
from scipy import ndimage

__all__ = [
    "BOXCAR_PIX",
    "CONCENTRATION_INNER_FRAC",
    "image_centre",
    "radius_map",
    "boxcar",
    "concentration",
    "asymmetry",
    "smoothness",
    "morphology_r500c",
]

log = logging.getLogger("xclusters.evaluate")

#: Boxcar smoothing width in pixels (paper 000 §2.3, eq. 3, and §3.3, eq. 6).
BOXCAR_PIX = 11
#: Inner aperture of the R500c concentration, as a fraction of R500c (paper 000 §3.1, eq. 4).
CONCENTRATION_INNER_FRAC = 0.1
#: Inner and outer radii (pixels) of the fixed concentration (paper 000 §2.3, eq. 1).

_BOUNDARIES = ("zero", "valid_mean", "reflect", "nearest")


def _as_stack(images: np.ndarray) -> tuple[np.ndarray, bool]:
    arr = np.asarray(images, dtype=np.float64)
    if arr.ndim == 2:
        return arr[None], True
    if arr.ndim == 3:
        return arr, False
    raise ValueError(f"images must have shape (H, W) or (N, H, W), got {arr.shape}; "
                     f"select one band of an (N, H, W, B) cube first.")


def _radii(r: float | np.ndarray, n: int, name: str) -> np.ndarray:
    r = np.asarray(r, dtype=np.float64)
    if r.ndim == 0:
        r = np.full(n, float(r))
    if r.shape != (n,):
        raise ValueError(f"{name} must be a scalar or have one value per image ({n}), "
                         f"got shape {r.shape}.")
    return r


def _ratio(num: np.ndarray, den: np.ndarray, what: str) -> np.ndarray:
    num = np.asarray(num, dtype=np.float64)
    den = np.asarray(den, dtype=np.float64)
    bad = ~(den > 0) | ~np.isfinite(num)
    out = np.full(np.broadcast(num, den).shape, np.nan)
    np.divide(num, den, out=out, where=~bad)
    if np.any(bad):
        log.warning("%s: %d of %d image(s) have no positive flux in the aperture "
                    "(or a non-finite radius); their value is NaN.", what, int(np.sum(bad)),
                    bad.size)
    return out


def image_centre(shape: tuple[int, ...]) -> tuple[float, float]:
    """Geometric centre ``(yc, xc)`` of an image, in 0-based pixel coordinates.

    Parameters
    ----------
    shape : tuple of int
        ``(..., H, W)``.

    Returns
    -------
    tuple of float
        ``((H - 1) / 2, (W - 1) / 2)`` pixels.
    """
    h, w = shape[-2], shape[-1]
    return (h - 1) / 2.0, (w - 1) / 2.0


def radius_map(shape: tuple[int, ...]) -> np.ndarray:
    """Distance of each pixel centre from the image centre, in pixels, shape ``(H, W)``."""
    yc, xc = image_centre(shape)
    y, x = np.indices(shape[-2:], dtype=np.float64)
    return np.hypot(y - yc, x - xc)


def _flux_within(stack: np.ndarray, r_pix: np.ndarray) -> np.ndarray:
    """Sum of each image inside its radius; ``stack`` (N, H, W), ``r_pix`` (N,)."""
    rmap = radius_map(stack.shape)
    mask = rmap[None] <= r_pix[:, None, None]
    return np.sum(np.where(mask, stack, 0.0), axis=(1, 2))


def boxcar(images: np.ndarray, size: int = BOXCAR_PIX, boundary: str = "zero") -> np.ndarray:
    """Boxcar (moving-average) smoothing of each image.

    Parameters
    ----------
    images : ndarray
        ``(H, W)`` or ``(N, H, W)``.
    size : int
        Width of the square boxcar in pixels (paper 000: 11).
    boundary : {"zero", "valid_mean", "reflect", "nearest"}
        Treatment of pixels beyond the image edge (see the module docstring).

    Returns
    -------
    ndarray
        Smoothed images, same shape as ``images``.
    """
    if boundary not in _BOUNDARIES:
        raise ValueError(f"boundary={boundary!r} is not one of {_BOUNDARIES}.")
    if int(size) < 1:
        raise ValueError(f"boxcar size must be a positive number of pixels, got {size}.")
    stack, single = _as_stack(images)
    sz = (1, int(size), int(size))
    if boundary in ("zero", "valid_mean"):
        out = ndimage.uniform_filter(stack, size=sz, mode="constant", cval=0.0)
        if boundary == "valid_mean":
            norm = ndimage.uniform_filter(np.ones(stack.shape[1:]), size=sz[1:],
                                          mode="constant", cval=0.0)
            out = out / norm[None]
    else:
        out = ndimage.uniform_filter(stack, size=sz, mode=boundary)
    return out[0] if single else out


def concentration(images: np.ndarray, r500c_pix: float | np.ndarray) -> np.ndarray | float:
    """R500c surface-brightness concentration (paper 000 eq. 4).

    Parameters
    ----------
    images : ndarray
        ``(H, W)`` or ``(N, H, W)`` counts (or any flux unit).
    r500c_pix : float or ndarray
        R500c in pixels, scalar or one per image.

    Returns
    -------
    float or ndarray
        ``F(r <= 0.1 R500c) / F(r <= R500c)``, dimensionless in [0, 1]; NaN when the R500c
        aperture holds no flux.
    """
    stack, single = _as_stack(images)
    r = _radii(r500c_pix, len(stack), "r500c_pix")
    inner = _flux_within(stack, CONCENTRATION_INNER_FRAC * r)
    outer = _flux_within(stack, r)
    out = _ratio(inner, outer, "R500c concentration")
    return float(out[0]) if single else out


def _asym(stack: np.ndarray, mask: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    diff = np.abs(stack - stack[:, ::-1, ::-1])
    if mask is None:
        return diff.sum(axis=(1, 2)), stack.sum(axis=(1, 2))
    return (np.where(mask, diff, 0.0).sum(axis=(1, 2)),
            np.where(mask, stack, 0.0).sum(axis=(1, 2)))


def asymmetry(images: np.ndarray, r500c_pix: float | np.ndarray) -> np.ndarray | float:
    """R500c asymmetry (paper 000 eq. 5): ``sum|X - X180| / sum X`` within R500c.

    Parameters
    ----------
    images : ndarray
        ``(H, W)`` or ``(N, H, W)``.
    r500c_pix : float or ndarray
        R500c in pixels.

    Returns
    -------
    float or ndarray
        Dimensionless, 0 (symmetric) to 2; NaN when the aperture holds no flux.
    """
    stack, single = _as_stack(images)
    r = _radii(r500c_pix, len(stack), "r500c_pix")
    mask = radius_map(stack.shape)[None] <= r[:, None, None]
    num, den = _asym(stack, mask)
    out = _ratio(num, den, "R500c asymmetry")
    return float(out[0]) if single else out


def smoothness(images: np.ndarray, r500c_pix: float | np.ndarray, *,
               size: int = BOXCAR_PIX, boundary: str = "zero") -> np.ndarray | float:
    """R500c smoothness (paper 000 eq. 6): ``sum|X - boxcar(X)| / sum X`` within R500c.

    Parameters
    ----------
    images : ndarray
        ``(H, W)`` or ``(N, H, W)``.
    r500c_pix : float or ndarray
        R500c in pixels.
    size : int
        Boxcar width in pixels (paper: 11).
    boundary : str
        Boxcar boundary treatment, see :func:`boxcar`.

    Returns
    -------
    float or ndarray
        Dimensionless; NaN when the aperture holds no flux.
    """
    stack, single = _as_stack(images)
    r = _radii(r500c_pix, len(stack), "r500c_pix")
    mask = radius_map(stack.shape)[None] <= r[:, None, None]
    diff = np.abs(stack - boxcar(stack, size, boundary))
    num = np.where(mask, diff, 0.0).sum(axis=(1, 2))
    den = np.where(mask, stack, 0.0).sum(axis=(1, 2))
    out = _ratio(num, den, "R500c smoothness")
    return float(out[0]) if single else out


def _bands(cube: np.ndarray) -> np.ndarray:
    cube = np.asarray(cube, dtype=np.float64)
    if cube.ndim != 4:
        raise ValueError(f"expected an (N, H, W, B) band cube, got shape {cube.shape}.")
    return cube


def morphology_r500c(cube: np.ndarray, r500c_pix: np.ndarray, *,
                     boundary: str = "zero") -> dict[str, np.ndarray]:
    """R500c C, A, S for every image and band.

    Parameters
    ----------
    cube : ndarray
        ``(N, H, W, B)`` images.
    r500c_pix : ndarray
        ``(N,)`` R500c of each image in pixels.
    boundary : str
        Boxcar boundary treatment for S.

    Returns
    -------
    dict
        ``{"C": (N, B), "A": (N, B), "S": (N, B)}`` dimensionless.
    """
    cube = _bands(cube)
    r = _radii(r500c_pix, cube.shape[0], "r500c_pix")
    out = {k: np.full((cube.shape[0], cube.shape[3]), np.nan) for k in ("C", "A", "S")}
    for b in range(cube.shape[3]):
        band = cube[..., b]
        out["C"][:, b] = concentration(band, r)
        out["A"][:, b] = asymmetry(band, r)
        out["S"][:, b] = smoothness(band, r, boundary=boundary)
    return out
