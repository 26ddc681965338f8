"""The eROSITA-NR baseline of paper 000 §2.1: annulus background subtraction.

Per band, the per-pixel background is the mean of all non-zero pixels in an annulus of inner
radius 140 px and width 5 px around the image centre (measured on the full field, before the
256x256 crop); it is subtracted and negative pixels are set to zero.
"""
from __future__ import annotations

import logging

import numpy as np

__all__ = ["ANNULUS_INNER_PX", "ANNULUS_WIDTH_PX", "annulus_background", "nr_baseline"]

log = logging.getLogger("xclusters.predict")

#: Annulus of the eROSITA-NR background, pixels of 9.6 arcsec (paper 000 §2.1).
ANNULUS_INNER_PX = 140.0
ANNULUS_WIDTH_PX = 5.0


def annulus_background(cube: np.ndarray, inner_px: float = ANNULUS_INNER_PX,
                       width_px: float = ANNULUS_WIDTH_PX) -> np.ndarray:
    """Mean of the non-zero pixels with ``inner <= r < inner + width`` per band.

    Parameters
    ----------
    cube : numpy.ndarray
        ``(bands, H, W)`` counts per pixel; the centre is pixel ((H-1)/2, (W-1)/2).
    inner_px, width_px : float
        Annulus inner radius and width, pixels.

    Returns
    -------
    numpy.ndarray
        ``(bands,)`` counts per pixel; 0 for a band with no non-zero annulus pixels (logged).
    """
    cube = np.asarray(cube, dtype=np.float64)
    if cube.ndim != 3:
        raise ValueError(f"cube shape {cube.shape}: expected (bands, H, W)")
    h, w = cube.shape[1:]
    yy = np.arange(h) - (h - 1) / 2.0
    xx = np.arange(w) - (w - 1) / 2.0
    r = np.hypot(yy[:, None], xx[None, :])
    ring = (r >= inner_px) & (r < inner_px + width_px)
    if not ring.any():
        log.warning("image %dx%d px does not reach the background annulus r = %g-%g px; "
                    "background set to 0 (bin a larger field)", h, w, inner_px,
                    inner_px + width_px)
    out = np.zeros(cube.shape[0])
    for b, plane in enumerate(cube):
        vals = plane[ring]
        vals = vals[vals != 0]
        out[b] = vals.mean() if vals.size else 0.0
    return out


def nr_baseline(cube: np.ndarray, background: np.ndarray | None = None) -> tuple[np.ndarray,
                                                                                np.ndarray]:
    """Background-subtracted, zero-clipped eROSITA image (eROSITA-NR).

    Parameters
    ----------
    cube : numpy.ndarray
        ``(bands, H, W)`` eROSITA counts per pixel.
    background : numpy.ndarray, optional
        ``(bands,)`` per-pixel background measured on the full field; measured on ``cube``
        itself by :func:`annulus_background` when omitted.

    Returns
    -------
    (baseline, background) : numpy.ndarray
        ``(bands, H, W)`` float32 counts and the ``(bands,)`` background used.
    """
    cube = np.asarray(cube, dtype=np.float32)
    bkg = annulus_background(cube) if background is None else np.asarray(background, float)
    if bkg.shape != (cube.shape[0],):
        raise ValueError(f"background shape {bkg.shape}: expected ({cube.shape[0]},)")
    return np.clip(cube - bkg[:, None, None].astype(np.float32), 0.0, None), bkg
