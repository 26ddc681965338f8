"""Compare an inference input with the training record of the model that will read it.

The record (:mod:`xclusters.models.record`) says which instrument, pixel scale, image size
and exposure a model was trained on. An input from another instrument or at another pixel
scale gives a number that looks like an answer and is not one, so it is refused unless the
caller says it knows (``allow_mismatch``, ``--allow-mismatch``). Another exposure is a
warning: counts scale with exposure, the network does not rescale them; so is a ``REDSHIFT``
other than the one every training cluster of a mass model was observed at
(``instruments.chandra_acisi.fixed_redshift``). An all-zero input
carries no information and is refused. Images larger than the training size are refused from
their header, before their pixels are read.
"""
from __future__ import annotations

import logging
import math
import re
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from .fitsio import InputFileError

__all__ = ["InputMismatchError", "PIXEL_SCALE_RTOL", "EXPOSURE_RTOL", "REDSHIFT_RTOL",
           "instrument_of",
           "pixel_arcsec_of", "check_input", "check_not_empty", "check_image_size",
           "max_image_pixels", "DEFAULT_MAX_IMAGE_PIXELS"]

log = logging.getLogger("xclusters.predict")

#: Relative pixel-scale difference tolerated: the eROSITA 9.6" and the Chandra 20'/128
#: = 9.375" grids differ by 2.4 %, which must count as different.
PIXEL_SCALE_RTOL = 0.01
#: Relative exposure difference below which no warning is given (header rounding).
EXPOSURE_RTOL = 0.01
#: Relative redshift difference below which no warning is given (header rounding).
REDSHIFT_RTOL = 1e-3
#: Largest image side (pixels) accepted by a model without a training record: the paper's
#: eROSITA image size (paper 000 Table 1, 256 px).
DEFAULT_MAX_IMAGE_PIXELS = 256


class InputMismatchError(InputFileError):
    """The input was observed differently from the model's training data."""


def instrument_of(header) -> str | None:
    """The xclusters instrument name of a FITS header (``INSTRUME``/``TELESCOP``), or None.

    ``erosita`` for eROSITA (``TELESCOP = eROSITA``, ``INSTRUME = TM1`` ... or ``erosita``),
    ``chandra_acisi`` for Chandra (``TELESCOP = CHANDRA``, ``INSTRUME = ACIS``), ``ideal``
    for the ideal super-observation instrument; other values are returned lower-cased.
    """
    inst = str(header.get("INSTRUME", "") or "").strip().lower()
    tel = str(header.get("TELESCOP", "") or "").strip().lower()
    text = f"{inst} {tel}"
    if "erosita" in text or re.fullmatch(r"tm\d+", inst):
        return "erosita"
    if "chandra" in text or inst.startswith("acis"):
        return "chandra_acisi"
    if "ideal" in text:
        return "ideal"
    return inst or None


def pixel_arcsec_of(wcs) -> float | None:
    """Mean pixel side of a celestial WCS, arcsec (None without a WCS)."""
    if wcs is None:
        return None
    from astropy.wcs.utils import proj_plane_pixel_scales

    try:
        scales = proj_plane_pixel_scales(wcs.celestial)
    except Exception:  # noqa: BLE001 - a degenerate WCS is "unknown"
        return None
    value = float(np.mean(np.abs(scales))) * 3600.0
    return value if np.isfinite(value) and value > 0 else None


def max_image_pixels(record: Mapping[str, Any] | None) -> int:
    """The largest image side accepted: the training size, else the paper's 256 px."""
    if record and record.get("image_pixels"):
        return int(record["image_pixels"])
    return DEFAULT_MAX_IMAGE_PIXELS


def check_image_size(path: str | Path, limit: int, model_path: str | Path) -> None:
    """Refuse an image file whose image HDUs are larger than ``limit`` pixels on a side.

    Reads only the headers, so a 10000x10000 cube is refused before its pixels are loaded.
    """
    from astropy.io import fits

    try:
        with fits.open(path, memmap=False, lazy_load_hdus=True) as hdul:
            sizes = [(int(h.header.get("NAXIS1", 0)), int(h.header.get("NAXIS2", 0)))
                     for h in hdul if int(h.header.get("NAXIS", 0)) >= 2
                     and h.header.get("XTENSION", "IMAGE").strip() == "IMAGE"]
    except OSError:
        return  # the reader names the unreadable file
    for nx, ny in sizes:
        if max(nx, ny) > limit:
            raise InputFileError(
                f"{path}: image is {nx}x{ny} px but {model_path} expects {limit}x{limit} px at "
                "most (its training size); rebin or cut out the cluster at the model's pixel "
                "scale and predict on that.")


def check_not_empty(data: np.ndarray, path: str | Path) -> None:
    """Refuse an input whose pixels are all zero: nothing to predict from."""
    if not np.any(np.asarray(data)):
        raise InputFileError(f"{path}: every pixel of the input is 0, so there is nothing to "
                             "predict from; check the file (exposure, band, selection) or the "
                             "event binning.")


def check_input(record: Mapping[str, Any] | None, *, path: str | Path, header, wcs,
                model_path: str | Path, allow_mismatch: bool = False) -> list[str]:
    """Compare one input with the model's training record.

    Parameters
    ----------
    record : mapping or None
        :func:`xclusters.models.record.read_training_record` (None: nothing is checked).
    path : path
        The input, for messages.
    header : astropy.io.fits.Header
        Its header (``INSTRUME``, ``TELESCOP``, ``EXPOSURE``, ``REDSHIFT``).
    wcs : astropy.wcs.WCS or None
        Its celestial WCS (pixel scale); for event lists, the binning grid.
    model_path : path
        The model, for messages.
    allow_mismatch : bool
        Turn instrument and pixel-scale mismatches into warnings.

    Returns
    -------
    list of str
        The warnings logged.

    Raises
    ------
    InputMismatchError
        Another instrument or pixel scale than the training data, without ``allow_mismatch``.
    """
    if not record:
        return []
    warnings: list[str] = []
    errors: list[str] = []
    want_inst = record.get("instrument")
    inst = instrument_of(header)
    if want_inst and inst is None:
        warnings.append(f"{path}: no INSTRUME/TELESCOP in the header; assuming {want_inst}, "
                        f"which {model_path} was trained on")
    elif want_inst and inst != want_inst:
        errors.append(f"{path}: instrument {inst!r} (INSTRUME = "
                      f"{header.get('INSTRUME')!r}), but {model_path} was trained on "
                      f"{want_inst!r} images")
    want_pix = record.get("pixel_arcsec")
    pix = pixel_arcsec_of(wcs)
    if want_pix and pix is None:
        warnings.append(f"{path}: no celestial WCS, so the pixel scale cannot be checked; "
                        f"{model_path} expects {want_pix:.4g} arcsec pixels")
    elif want_pix and abs(pix - want_pix) > PIXEL_SCALE_RTOL * want_pix:
        errors.append(f"{path}: pixels of {pix:.4g} arcsec, but {model_path} was trained on "
                      f"{want_pix:.4g} arcsec pixels (rebin the image to that scale)")
    want_exp = record.get("exposure_s")
    exposure = header.get("EXPOSURE")
    if want_exp and exposure is None:
        warnings.append(f"{path}: no EXPOSURE keyword; {model_path} was trained on "
                        f"{want_exp:g} s observations, so the input is taken as {want_exp:g} s")
    elif want_exp and abs(float(exposure) - want_exp) > EXPOSURE_RTOL * want_exp:
        warnings.append(
            f"{path}: EXPOSURE = {float(exposure):g} s, but {model_path} was trained on "
            f"{want_exp:g} s observations. Counts are NOT rescaled: the network sees "
            f"{float(exposure) / want_exp:.3g}x the counts (and a different noise level) of "
            "its training images, so the result is biased. Use a "
            f"{want_exp:g} s observation, or scale the counts by "
            f"{want_exp / float(exposure):.3g} knowing the noise differs")
    want_z = record.get("redshift")  # mass models trained at one redshift (paper 004)
    z = header.get("REDSHIFT")
    if want_z is not None and z is not None and not math.isclose(float(z), float(want_z),
                                                                 rel_tol=REDSHIFT_RTOL):
        warnings.append(
            f"{path}: REDSHIFT = {float(z):g}, but {model_path} was trained on clusters all "
            f"observed at z = {float(want_z):g} (instruments.chandra_acisi.fixed_redshift): "
            "angular size and flux differ from its training images, so the mass is biased")
    for w in warnings:
        log.warning("%s", w)
    if errors:
        if not allow_mismatch:
            raise InputMismatchError("; ".join(errors) + ". The prediction would be wrong; "
                                     "pass --allow-mismatch (allow_mismatch=True) only if you "
                                     "know the difference does not matter.")
        for e in errors:
            log.warning("%s (accepted: --allow-mismatch)", e)
        warnings += errors
    return warnings
