"""Read band images and eROSITA event lists for inference; write predictions with WCS.

Bands (paper 000 §2.1): soft / medium / hard, eROSITA PI channels 74-177 / 178-274 /
275-722 (inclusive), which are 0.5-1.2 / 1.2-2.0 / 2.0-7.0 keV in the DR1 RMF. Event files
whose channel column has ``TUNIT = 'eV'`` (eSASS convention) are binned by those energies.
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Sequence

import numpy as np

__all__ = ["EROSITA_PI_BANDS", "EROSITA_ENERGY_BANDS_KEV", "BAND_NAMES", "EROSITA_PIXEL_ARCSEC",
           "EROSITA_N_CHANNELS", "COUNT_UNITS", "CHANNEL_UNITS", "InputFileError",
           "read_band_image", "read_single_image", "bin_event_list", "write_prediction_fits"]

log = logging.getLogger("xclusters.predict")

#: PI channel ranges of the three bands, inclusive (paper 000 §2.1).
EROSITA_PI_BANDS = ((74, 177), (178, 274), (275, 722))
#: The same bands in keV (paper 000 §2.1).
EROSITA_ENERGY_BANDS_KEV = ((0.5, 1.2), (1.2, 2.0), (2.0, 7.0))
BAND_NAMES = ("soft", "medium", "hard")
#: Pixel size of the eROSITA images, arcsec (paper 000 Table 1).
EROSITA_PIXEL_ARCSEC = 9.6
#: Channels of the eROSITA RMF (DR1 RMF, ../shared/data/README.md).
EROSITA_N_CHANNELS = 1024
#: BUNIT values accepted as "counts per pixel".
COUNT_UNITS = ("", "count", "counts", "ct", "cts", "photon", "photons")


class InputFileError(ValueError):
    """An input FITS file does not hold what inference needs."""


def _check_units(header, path: Path, hdu_name: str) -> None:
    bunit = str(header.get("BUNIT", "")).strip().lower()
    if bunit not in COUNT_UNITS:
        raise InputFileError(f"{path} [{hdu_name}]: BUNIT = {header['BUNIT']!r}; the models "
                             "expect counts per pixel (BUNIT 'count'). Convert the image to "
                             "counts (rate x exposure) first.")


def _celestial_wcs(header):
    from astropy.wcs import WCS

    try:
        w = WCS(header, naxis=2)
    except Exception:  # malformed WCS keywords
        return None
    return w.celestial if w.has_celestial else None


def _image_hdus(hdul):
    return [h for h in hdul if getattr(h, "is_image", False) and h.data is not None
            and h.data.ndim >= 2]


def _open_fits(path: str | Path, what: str):
    """Open a FITS file (no memory map) or raise :class:`InputFileError` naming it."""
    from astropy.io import fits

    p = Path(path)
    if not p.is_file():
        raise InputFileError(f"{p}: {what} not found")
    try:
        return fits.open(p, memmap=False)
    except OSError as exc:
        raise InputFileError(f"{p}: not a readable FITS file ({exc})") from exc


def read_band_image(path: str | Path, n_bands: int | None = 3):
    """Read an ``n_bands`` image: a cube ``(n_bands, H, W)`` in one HDU or one 2-D HDU per band.

    The one band-image reader: user images for inference and the pipeline's own images
    (:func:`xclusters.dataset.build.read_cluster_image`). ``n_bands=None`` takes the first
    cube as it is (a single 2-D image is one band).

    Returns
    -------
    cube : numpy.ndarray
        ``(n_bands, H, W)`` float32 counts per pixel.
    wcs : astropy.wcs.WCS or None
        The celestial WCS of the (first) image HDU.
    header : astropy.io.fits.Header
        Header of that HDU.
    """
    p = Path(path)
    with _open_fits(p, "input image") as hdul:
        imgs = _image_hdus(hdul)
        cubes = [h for h in imgs if h.data.ndim == 3
                 and (n_bands is None or h.data.shape[0] == n_bands)]
        planes = [h for h in imgs if h.data.ndim == 2]
        if n_bands is None and not cubes:
            n_bands = 1
        if cubes:
            hdu = cubes[0]
            cube = np.asarray(hdu.data, dtype=np.float32)
        elif len(planes) >= n_bands and len({h.data.shape for h in planes[:n_bands]}) == 1:
            hdu = planes[0]
            for h in planes[:n_bands]:
                _check_units(h.header, p, h.name)
            cube = np.stack([np.asarray(h.data, dtype=np.float32) for h in planes[:n_bands]])
        else:
            found = [f"{h.name}:{h.data.shape}" for h in imgs] or ["no image HDUs"]
            raise InputFileError(
                f"{p}: expected a {n_bands}-band image, either a cube ({n_bands}, H, W) in one "
                f"HDU or {n_bands} 2-D HDUs of equal shape (soft, medium, hard); found "
                f"{', '.join(found)}. For an event list use --events (event_list=True).")
        _check_units(hdu.header, p, hdu.name)
        header = hdu.header.copy()
    if not np.all(np.isfinite(cube)):
        raise InputFileError(f"{p}: image contains NaN or infinite pixels")
    if cube.min() < 0:
        raise InputFileError(f"{p}: image has negative pixels (min {cube.min():g}); expected "
                             "raw counts, not a background-subtracted image")
    return cube, _celestial_wcs(header), header


def read_single_image(path: str | Path):
    """Read a single-band image ``(H, W)`` or ``(1, H, W)``; returns ``(image, wcs, header)``."""
    p = Path(path)
    with _open_fits(p, "input image") as hdul:
        imgs = _image_hdus(hdul)
        ok = [h for h in imgs if h.data.ndim == 2 or (h.data.ndim == 3 and h.data.shape[0] == 1)]
        if not ok:
            found = [f"{h.name}:{h.data.shape}" for h in imgs] or ["no image HDUs"]
            raise InputFileError(f"{p}: expected one single-band image (H, W) of counts; found "
                                 f"{', '.join(found)}")
        hdu = ok[0]
        _check_units(hdu.header, p, hdu.name)
        img = np.asarray(hdu.data, dtype=np.float32).reshape(hdu.data.shape[-2:])
        header = hdu.header.copy()
    if not np.all(np.isfinite(img)) or img.min() < 0:
        raise InputFileError(f"{p}: image must hold finite, non-negative counts")
    return img, _celestial_wcs(header), header


#: TUNIT values of a channel column that mean "channel number" (FITS/OGIP usage).
CHANNEL_UNITS = ("", "chan", "channel", "channels", "adu")


def _channel_masks(table, path: Path) -> tuple[list[np.ndarray], np.ndarray, str]:
    """Band masks of the events, the mask of rows with an invalid PI, and a band description.

    The PI (or PHA) column is read in its ``TUNIT``: channels (no unit or ``chan``) are binned
    by :data:`EROSITA_PI_BANDS`, ``eV`` or ``keV`` by :data:`EROSITA_ENERGY_BANDS_KEV`. A
    negative or non-finite value is invalid. Any other unit is refused.
    """
    names = [n.upper() for n in table.columns.names]
    col = "PI" if "PI" in names else ("PHA" if "PHA" in names else None)
    if col is None:
        raise InputFileError(f"{path}: EVENTS table has no PI (or PHA) column; found {names}")
    column = table.columns[names.index(col)]
    chan = np.asarray(table[column.name], dtype=np.float64)
    unit = (column.unit or "").strip().lower()
    invalid = ~np.isfinite(chan) | (chan < 0)
    if unit in ("ev", "kev"):
        kev = chan / 1000.0 if unit == "ev" else chan
        log.info("%s: %s is in %s; binning by energy %s keV", path, col, column.unit,
                 EROSITA_ENERGY_BANDS_KEV)
        masks = [(kev >= lo) & (kev < hi) & ~invalid for lo, hi in EROSITA_ENERGY_BANDS_KEV]
        return masks, invalid, f"{EROSITA_ENERGY_BANDS_KEV[0][0]}-" \
                               f"{EROSITA_ENERGY_BANDS_KEV[-1][1]} keV"
    if unit not in CHANNEL_UNITS:
        raise InputFileError(f"{path}: {col} has TUNIT = {column.unit!r}; expected channels "
                             "(no unit or 'chan'), 'eV' or 'keV'. Fix the TUNIT keyword.")
    valid = chan[~invalid]
    if valid.size and valid.max() >= EROSITA_N_CHANNELS + 1:
        raise InputFileError(
            f"{path}: {col} values reach {valid.max():g}, beyond the {EROSITA_N_CHANNELS} "
            f"eROSITA channels. If {col} is in eV, set its TUNIT to 'eV'.")
    masks = [(chan >= lo) & (chan <= hi) & ~invalid for lo, hi in EROSITA_PI_BANDS]
    return masks, invalid, f"{col} {EROSITA_PI_BANDS[0][0]}-{EROSITA_PI_BANDS[-1][1]}"


def _sky_center(header, sky_center, path: Path) -> tuple[float, float]:
    if sky_center is not None:
        if hasattr(sky_center, "icrs"):
            c = sky_center.icrs
            return float(c.ra.deg), float(c.dec.deg)
        ra, dec = (float(v) for v in sky_center)
        if not (0.0 <= ra < 360.0 and -90.0 <= dec <= 90.0):
            raise InputFileError(f"sky_center = ({ra}, {dec}): expected RA in [0, 360) and "
                                 "Dec in [-90, 90] degrees")
        return ra, dec
    for ra_key, dec_key in (("RA_PNT", "DEC_PNT"), ("RA_NOM", "DEC_NOM"), ("RA_OBJ", "DEC_OBJ")):
        if ra_key in header and dec_key in header:
            return float(header[ra_key]), float(header[dec_key])
    raise InputFileError(f"{path}: no sky position given and none in the EVENTS header "
                         "(RA_PNT/DEC_PNT, RA_NOM/DEC_NOM); pass sky_center=(ra_deg, dec_deg)")


def bin_event_list(path: str | Path, sky_center=None, image_pixels: int = 256,
                   pixel_arcsec: float = EROSITA_PIXEL_ARCSEC):
    """Bin an eROSITA event list into soft/medium/hard count images on a TAN grid.

    Parameters
    ----------
    path : path
        FITS file with an ``EVENTS`` table holding ``RA``, ``DEC`` (deg) and ``PI``
        (channels, or energies when ``TUNIT`` is ``'eV'`` or ``'keV'``) columns. Rows with NaN
        RA/DEC, a negative or non-finite PI, outside the bands or outside the image are
        dropped and counted in one log line (a warning for the first two); a list with no
        event left in any band is refused.
    sky_center : (ra_deg, dec_deg) or SkyCoord, optional
        Image centre; defaults to the header's pointing (``RA_PNT``/``DEC_PNT``).
    image_pixels : int
        Side of the square image, pixels (paper 000: 256).
    pixel_arcsec : float
        Pixel size, arcsec (paper 000: 9.6).

    Returns
    -------
    cube : numpy.ndarray
        ``(3, image_pixels, image_pixels)`` float32 counts.
    wcs : astropy.wcs.WCS
        The TAN WCS of the image.
    header : astropy.io.fits.Header
        The EVENTS header (exposure, instrument).
    """
    p = Path(path)
    with _open_fits(p, "event list") as hdul:
        if "EVENTS" not in hdul:
            raise InputFileError(f"{p}: no EVENTS extension (HDUs: "
                                 f"{[h.name for h in hdul]}); is this an image? Then use --image "
                                 "(event_list=False)")
        table = hdul["EVENTS"].data
        header = hdul["EVENTS"].header.copy()
        names = [n.upper() for n in table.columns.names]
        missing = [c for c in ("RA", "DEC") if c not in names]
        if missing:
            raise InputFileError(f"{p}: EVENTS table lacks column(s) {missing}; found {names}")
        ra = np.asarray(table[table.columns.names[names.index("RA")]], dtype=np.float64)
        dec = np.asarray(table[table.columns.names[names.index("DEC")]], dtype=np.float64)
        masks, bad_pi, band_text = _channel_masks(table, p)
    ra0, dec0 = _sky_center(header, sky_center, p)
    from ..images.grid import bin_events, image_wcs

    # the grid and histogram of the simulated images (xclusters.images.grid)
    wcs = image_wcs((ra0, dec0), int(image_pixels), float(pixel_arcsec))
    bad_pos = ~np.isfinite(ra) | ~np.isfinite(dec)
    px, py = np.full(ra.shape, np.nan), np.full(ra.shape, np.nan)
    if (~bad_pos).any():
        px[~bad_pos], py[~bad_pos] = wcs.wcs_world2pix(ra[~bad_pos], dec[~bad_pos], 0)
    inside = ((px >= -0.5) & (px < int(image_pixels) - 0.5) & (py >= -0.5)
              & (py < int(image_pixels) - 0.5))
    in_band = np.any(masks, axis=0) if masks else np.zeros(ra.shape, bool)
    dropped = {"NaN RA/DEC": int(bad_pos.sum()),
               "negative or non-finite PI": int((bad_pi & ~bad_pos).sum()),
               f"outside the bands ({band_text})": int((~in_band & ~bad_pi & ~bad_pos).sum()),
               f"outside the {image_pixels}x{image_pixels} px image": int(
                   (in_band & ~bad_pos & ~inside).sum())}
    cube = bin_events(ra, dec, [m & inside & ~bad_pos for m in masks], wcs, int(image_pixels))
    used = int(cube.sum())
    summary = ", ".join(f"{n} {why}" for why, n in dropped.items() if n) or "none"
    if ra.size == 0 or used == 0:
        if ra.size and not (inside & ~bad_pos).any() and (~bad_pos).any():
            half = 0.5 * int(image_pixels) * float(pixel_arcsec) / 3600.0
            raise InputFileError(
                f"{p}: none of its {ra.size} events falls in the {image_pixels}x{image_pixels} "
                f"px image centred on (RA, Dec) = ({ra0:.4f}, {dec0:.4f}) deg (half-width "
                f"{half:.3f} deg); the events span RA {np.nanmin(ra):.4f}..{np.nanmax(ra):.4f},"
                f" Dec {np.nanmin(dec):.4f}..{np.nanmax(dec):.4f} deg. Give the cluster centre "
                "inside the observed field (--ra/--dec, sky_center=...).")
        raise InputFileError(f"{p}: no event left in any band: {ra.size} rows, dropped "
                             f"{summary}. Check the PI column and its TUNIT (channels, 'eV' "
                             "or 'keV') and the RA/DEC columns.")
    level = logging.WARNING if dropped["NaN RA/DEC"] or dropped["negative or non-finite PI"] \
        else logging.INFO
    log.log(level, "%s: binned %d of %d events into %d^2 px of %.2f arcsec; dropped: %s", p,
            used, ra.size, image_pixels, pixel_arcsec, summary)
    return cube.astype(np.float32), wcs, header


def write_prediction_fits(out_path: str | Path, prediction: np.ndarray, wcs, *,
                          extra: Sequence[tuple[str, np.ndarray]] = (),
                          header_cards: dict | None = None, provenance: dict | None = None,
                          band_names: Sequence[str] = BAND_NAMES) -> Path:
    """Write ``(bands, H, W)`` arrays as FITS: primary = prediction, then named extensions.

    Every HDU carries the celestial WCS plus a linear ``BAND`` third axis (``WCSAXES = 3``,
    the layout of :mod:`xclusters.images`; ``WCS(header).celestial`` is the sky WCS), BUNIT
    ``count``, ``BAND<i>`` names and the provenance record (``HIERARCH XC ...``). Written
    atomically.
    """
    from astropy.io import fits

    from xclusters.io import atomic_path
    from xclusters.provenance import to_fits_header

    def hdr(name: str):
        h = fits.Header()
        if wcs is not None:
            h = wcs.celestial.to_header()
            # same layout as the image stage (xclusters.images): a linear BAND third axis
            h["WCSAXES"] = 3
            h["CTYPE3"] = ("BAND", "band index 1..n")
            h["CRPIX3"], h["CRVAL3"], h["CDELT3"] = 1.0, 1.0, 1.0
        h["BUNIT"] = "count"
        h["NBANDS"] = len(band_names)
        for i, b in enumerate(band_names, start=1):
            h[f"BAND{i}"] = b
        h["EXTNAME"] = name
        for k, v in (header_cards or {}).items():
            h[k] = v
        if provenance:
            to_fits_header(provenance, h)
        return h

    hdus = [fits.PrimaryHDU(np.asarray(prediction, np.float32), header=hdr("PREDICTION"))]
    for name, arr in extra:
        hdus.append(fits.ImageHDU(np.asarray(arr, np.float32), header=hdr(name)))
    out = Path(out_path)
    out.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(out) as tmp:
        fits.HDUList(hdus).writeto(tmp, overwrite=True)
    return out
