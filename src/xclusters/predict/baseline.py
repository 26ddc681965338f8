"""The eROSITA-NR baseline of paper 000 §2.1: annulus background subtraction.

Per band, the per-pixel background is the mean of all non-zero pixels in an annulus of inner
radius 140 px and width 5 px around the image centre (measured on the full field, before the
256x256 crop); it is subtracted and negative pixels are set to zero.
"""
from __future__ import annotations

import logging

import numpy as np

from ..images.build import ANNULUS_INNER_PX, ANNULUS_WIDTH_PX, annulus_pixel_means

__all__ = ["ANNULUS_INNER_PX", "ANNULUS_WIDTH_PX", "annulus_background", "nr_baseline"]

log = logging.getLogger("xclusters.predict")

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
        ``(bands,)`` counts per pixel; 0 for a band with no non-zero annulus pixels, and 0 for
        every band (logged) when the image does not reach the annulus.
    """
    cube = np.asarray(cube, dtype=np.float64)
    if cube.ndim == 3 and np.hypot((cube.shape[1] - 1) / 2, (cube.shape[2] - 1) / 2) < inner_px:
        log.warning("image %dx%d px does not reach the background annulus r = %g-%g px; "
                    "background set to 0 (bin a larger field)", *cube.shape[1:], inner_px,
                    inner_px + width_px)
    return annulus_pixel_means(cube, inner_px, width_px)


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
