"""Evaluation of super-observation predictions against the ideal images (paper 000 §3, §4.1).

For each band and each observation kind (eROSITA, eROSITA-NR, Prediction) the difference
(observation - truth) of

* the R500c concentration, asymmetry and smoothness (eqs. 4–6, :mod:`.morphology`),
* the total flux in counts/s (§3.4: eROSITA and eROSITA-NR normalised by the eROSITA exposure,
  2000 s in the paper; prediction and truth by the super-observation exposure, 10,000 s),
* the background (§3.5): the truth image is smoothed with a Gaussian, its zero pixels are
  catalogued, and the background of an image is its total counts on those pixels (the truth
  has zero background there by construction, so the difference equals the value),

is summarised as median with 16th/84th percentiles (Table 3), binned by mass (Fig. 9), and the
90th-percentile classification rates are computed (§4.1).

The Gaussian width of the background metric is not given in the paper; the smoothing is meant
"to mimic the effects of both the point-spread function and the difference in the random
realization of photons". The default here is the eROSITA survey PSF expressed as a Gaussian
sigma: HEW 26 arcsec (DESIGN.md, instruments) is the FWHM of a circular Gaussian (the circle
holding half the energy of a 2-D Gaussian has radius sigma*sqrt(2 ln 2)), so
sigma = 26 / 2.3548 / 9.6 = 1.15 pixels. Override it with ``evaluate.background_sigma_pix``.
"""
from __future__ import annotations

import logging
import math
from typing import Sequence

import numpy as np
from astropy.table import Table
from scipy import ndimage

from .morphology import morphology_r500c
from .stats import binned_median, median_interval, quantile_edges

__all__ = [
    "BANDS",
    "KINDS",
    "KIND_LABELS",
    "PARAMS",
    "METRICS",
    "psf_sigma_pix",
    "erosita_nr",
    "total_flux",
    "background_mask",
    "background_metric",
    "classification_rates",
    "evaluate_superobs",
]

log = logging.getLogger("xclusters.evaluate")

#: Band names, in the order of the last image axis (paper 000 §2.1).
BANDS = ("soft", "medium", "hard")
#: Observation kinds compared with the truth (paper 000 §3, Table 3).
KINDS = ("erosita", "erosita_nr", "prediction")
KIND_LABELS = {"erosita": "eROSITA", "erosita_nr": "eROSITA-NR", "prediction": "Prediction",
               "truth": "Super observation"}
#: Morphology parameters (paper 000 eqs. 4–6).
PARAMS = ("C", "A", "S")
#: All Table-3 metrics: morphology, total flux (counts/s) and background (counts).
METRICS = ("C", "A", "S", "flux", "background")
METRIC_UNITS = {"C": "", "A": "", "S": "", "flux": "ct / s", "background": "ct"}
METRIC_NAMES = {"C": "Concentration", "A": "Asymmetry", "S": "Smoothness",
                "flux": "Total flux", "background": "Background"}

#: eROSITA survey PSF half-energy width (DESIGN.md instruments table, "survey ~26 arcsec").
EROSITA_PSF_HEW_ARCSEC = 26.0
#: eROSITA / super-observation pixel size (paper 000 Table 1).
EROSITA_PIXEL_ARCSEC = 9.6
_FWHM_PER_SIGMA = 2.0 * math.sqrt(2.0 * math.log(2.0))


def psf_sigma_pix(hew_arcsec: float = EROSITA_PSF_HEW_ARCSEC,
                  pixel_arcsec: float = EROSITA_PIXEL_ARCSEC) -> float:
    """Gaussian sigma in pixels of a circular Gaussian PSF with the given half-energy width.

    For a 2-D circular Gaussian the half-energy diameter equals the FWHM, so
    ``sigma = HEW / (2 sqrt(2 ln 2)) / pixel``.
    """
    if hew_arcsec <= 0 or pixel_arcsec <= 0:
        raise ValueError(f"PSF HEW ({hew_arcsec} arcsec) and pixel size ({pixel_arcsec} "
                         f"arcsec) must be positive.")
    return float(hew_arcsec / _FWHM_PER_SIGMA / pixel_arcsec)


def erosita_nr(erosita: np.ndarray, annulus_bkg_per_pixel: np.ndarray) -> np.ndarray:
    """Background-subtracted eROSITA images ("eROSITA-NR", paper 000 §2.1).

    Parameters
    ----------
    erosita : ndarray
        ``(N, H, W, B)`` eROSITA counts.
    annulus_bkg_per_pixel : ndarray
        ``(N, B)`` per-pixel background in counts, the mean of the non-zero pixels in the
        140–145 px annulus of the full field (dataset ``/superobs/inputs_full_annulus_bkg``).

    Returns
    -------
    ndarray
        ``(N, H, W, B)`` float32 counts, ``max(erosita - background, 0)``.
    """
    ero = np.asarray(erosita, dtype=np.float32)
    bkg = np.asarray(annulus_bkg_per_pixel, dtype=np.float32)
    if ero.ndim != 4 or bkg.shape != (ero.shape[0], ero.shape[3]):
        raise ValueError(f"erosita must be (N, H, W, B) and annulus_bkg_per_pixel (N, B); got "
                         f"{ero.shape} and {bkg.shape}.")
    if not np.all(np.isfinite(bkg)):
        log.warning("eROSITA-NR: %d non-finite annulus background value(s) treated as 0.",
                    int(np.sum(~np.isfinite(bkg))))
        bkg = np.where(np.isfinite(bkg), bkg, 0.0).astype(np.float32)
    return np.clip(ero - bkg[:, None, None, :], 0.0, None)


def total_flux(cube: np.ndarray, exposure_s: float) -> np.ndarray:
    """Total counts per band divided by the exposure, ``(N, B)`` counts/s (paper 000 §3.4)."""
    if not exposure_s > 0:
        raise ValueError(f"exposure_s must be positive seconds, got {exposure_s}.")
    return np.asarray(cube, dtype=np.float64).sum(axis=(1, 2)) / float(exposure_s)


def background_mask(truth: np.ndarray, sigma_pix: float) -> np.ndarray:
    """Pixels where the Gaussian-smoothed truth is exactly zero (paper 000 §3.5).

    Parameters
    ----------
    truth : ndarray
        ``(N, H, W, B)`` super-observation counts.
    sigma_pix : float
        Gaussian sigma in pixels (kernel truncated at 4 sigma, scipy's default), so a pixel is
        "zero" when no truth count lies within about 4 sigma of it.

    Returns
    -------
    ndarray of bool
        ``(N, H, W, B)``.
    """
    t = np.asarray(truth, dtype=np.float64)
    if sigma_pix < 0:
        raise ValueError(f"background sigma must be >= 0 pixels, got {sigma_pix}.")
    smooth = ndimage.gaussian_filter(t, sigma=(0, sigma_pix, sigma_pix, 0), mode="constant")
    # A sum of non-negative terms is exactly zero only where every term is; guard against
    # round-off of negative inputs anyway.
    return smooth <= 0.0


def background_metric(image: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Total counts of ``image`` on the background mask, ``(N, B)`` counts (paper 000 §3.5)."""
    img = np.asarray(image, dtype=np.float64)
    if img.shape != mask.shape:
        raise ValueError(f"image shape {img.shape} does not match mask shape {mask.shape}.")
    return np.where(mask, img, 0.0).sum(axis=(1, 2))


def classification_rates(predicted: np.ndarray, true: np.ndarray,
                         percentile: float = 90.0) -> dict[str, float]:
    """True- and false-positive rates of selecting the top (100 - percentile) % (§4.1).

    A cluster is "positive" when its value is at or above the ``percentile``-th percentile of
    its own distribution; predicted positives use the predicted values, true positives the
    true values.

    Parameters
    ----------
    predicted, true : array_like
        One value per cluster (pairs with a non-finite member are dropped).
    percentile : float
        Paper 000: 90.

    Returns
    -------
    dict
        ``tpr`` = |P and T| / |T|, ``fpr`` = |P and not T| / |not T| (NaN when a denominator is
        zero), ``n`` used, ``n_true_top``, ``n_pred_top``.
    """
    p = np.asarray(predicted, dtype=np.float64).ravel()
    t = np.asarray(true, dtype=np.float64).ravel()
    if p.shape != t.shape:
        raise ValueError(f"predicted and true must have the same length, got {p.shape} and "
                         f"{t.shape}.")
    if not 0.0 < percentile < 100.0:
        raise ValueError(f"percentile must lie in (0, 100), got {percentile}.")
    ok = np.isfinite(p) & np.isfinite(t)
    p, t = p[ok], t[ok]
    res = {"tpr": np.nan, "fpr": np.nan, "n": int(p.size), "n_true_top": 0, "n_pred_top": 0}
    if p.size < 2:
        log.warning("classification: %d usable value(s); TPR/FPR are NaN.", p.size)
        return res
    pos_p = p >= np.percentile(p, percentile)
    pos_t = t >= np.percentile(t, percentile)
    res["n_true_top"], res["n_pred_top"] = int(pos_t.sum()), int(pos_p.sum())
    if pos_t.any():
        res["tpr"] = float(np.sum(pos_p & pos_t) / pos_t.sum())
    if (~pos_t).any():
        res["fpr"] = float(np.sum(pos_p & ~pos_t) / (~pos_t).sum())
    else:
        log.warning("classification: all %d values tie at the top; FPR is NaN.", p.size)
    return res


def _check_cubes(**cubes: np.ndarray) -> tuple[int, int, int, int]:
    shapes = {k: np.shape(v) for k, v in cubes.items()}
    ref = shapes["truth"]
    if len(ref) != 4:
        raise ValueError(f"truth must be an (N, H, W, B) cube, got shape {ref}.")
    bad = {k: s for k, s in shapes.items() if s != ref}
    if bad:
        raise ValueError(f"image cubes must all have the truth's shape {ref}; got {bad}.")
    return ref  # type: ignore[return-value]


def evaluate_superobs(erosita: np.ndarray, erosita_nr: np.ndarray, prediction: np.ndarray,
                      truth: np.ndarray, r500c_pix: np.ndarray, log_m500c: np.ndarray, *,
                      erosita_exposure_s: float, ideal_exposure_s: float,
                      percentile: float = 90.0, background_sigma_pix: float | None = None,
                      n_mass_bins: int = 5, boundary: str = "zero",
                      bands: Sequence[str] = BANDS, ids: Sequence | None = None
                      ) -> dict[str, Table]:
    """Compare eROSITA, eROSITA-NR and predicted images with the super observations.

    Parameters
    ----------
    erosita, erosita_nr, prediction, truth : ndarray
        ``(N, H, W, B)`` counts; eROSITA and eROSITA-NR over ``erosita_exposure_s``,
        prediction and truth over ``ideal_exposure_s``.
    r500c_pix : ndarray
        ``(N,)`` R500c in pixels of each image.
    log_m500c : ndarray
        ``(N,)`` log10(M500c / Msun).
    erosita_exposure_s, ideal_exposure_s : float
        Exposures in seconds (paper 000: 2000 and 10,000).
    percentile : float
        Classification percentile (paper 000 §4.1: 90).
    background_sigma_pix : float, optional
        Gaussian sigma (pixels) of the background metric; default :func:`psf_sigma_pix`.
    n_mass_bins : int
        Number of equal-population mass bins (Fig. 9).
    boundary : str
        Boxcar boundary treatment of the smoothness (see :mod:`.morphology`).
    bands : sequence of str
        Band names, one per last-axis plane.
    ids : sequence, optional
        An identifier per image (e.g. dataset row), copied into the per-image table.

    Returns
    -------
    dict of astropy.table.Table
        ``per_image`` (one row per image, columns ``<metric>_<band>_<kind>`` with kind in
        truth/erosita/erosita_nr/prediction and ``d<metric>_<band>_<kind>`` differences),
        ``table3`` (median, p16, p84 of each difference per kind and band),
        ``classification`` (TPR/FPR per kind, band and morphology parameter) and
        ``mass_dependence`` (binned differences and true values vs log M500c).
    """
    n, _, _, nb = _check_cubes(erosita=erosita, erosita_nr=erosita_nr, prediction=prediction,
                               truth=truth)
    bands = tuple(bands)
    if len(bands) != nb:
        raise ValueError(f"got {len(bands)} band names {bands} for {nb} image planes.")
    r500c_pix = np.asarray(r500c_pix, dtype=np.float64).ravel()
    log_m = np.asarray(log_m500c, dtype=np.float64).ravel()
    if r500c_pix.shape != (n,) or log_m.shape != (n,):
        raise ValueError(f"r500c_pix and log_m500c need one value per image ({n}); got "
                         f"{r500c_pix.shape} and {log_m.shape}.")
    sigma = psf_sigma_pix() if background_sigma_pix is None else float(background_sigma_pix)
    if n < 3:
        log.warning("super-observation evaluation on only %d image(s): percentiles and "
                    "classification rates are not meaningful.", n)

    cubes = {"truth": truth, "erosita": erosita, "erosita_nr": erosita_nr,
             "prediction": prediction}
    exposure = {"truth": ideal_exposure_s, "prediction": ideal_exposure_s,
                "erosita": erosita_exposure_s, "erosita_nr": erosita_exposure_s}
    mask = background_mask(truth, sigma)
    values: dict[str, dict[str, np.ndarray]] = {}
    for kind, cube in cubes.items():
        morph = morphology_r500c(cube, r500c_pix, boundary=boundary)
        morph["flux"] = total_flux(cube, exposure[kind])
        morph["background"] = background_metric(cube, mask)
        values[kind] = morph
        log.info("evaluated %s: %d image(s), %d band(s)", kind, n, nb)

    per_image = Table()
    per_image["index"] = np.asarray(ids) if ids is not None else np.arange(n)
    per_image["log_m500c"] = log_m
    per_image["r500c_pix"] = r500c_pix
    for metric in METRICS:
        for b, band in enumerate(bands):
            for kind in ("truth",) + KINDS:
                per_image[f"{metric}_{band}_{kind}"] = values[kind][metric][:, b]
            for kind in KINDS:
                per_image[f"d{metric}_{band}_{kind}"] = (values[kind][metric][:, b]
                                                         - values["truth"][metric][:, b])
    for name in per_image.colnames:
        for metric, unit in METRIC_UNITS.items():
            if unit and (name.startswith(f"{metric}_") or name.startswith(f"d{metric}_")):
                per_image[name].unit = unit

    rows3 = []
    for kind in KINDS:
        for band in bands:
            row = {"kind": KIND_LABELS[kind], "band": band}
            for metric in METRICS:
                med, p16, p84, cnt = median_interval(per_image[f"d{metric}_{band}_{kind}"],
                                                     f"{kind} {band} {metric} difference")
                row[f"{metric}_median"], row[f"{metric}_p16"], row[f"{metric}_p84"] = (
                    med, p16, p84)
                row[f"{metric}_n"] = cnt
            rows3.append(row)
    table3 = Table(rows=rows3)
    for metric, unit in METRIC_UNITS.items():
        for suffix in ("median", "p16", "p84"):
            if unit:
                table3[f"{metric}_{suffix}"].unit = unit

    rows_c = []
    for kind in KINDS:
        for band in bands:
            for param in PARAMS:
                r = classification_rates(per_image[f"{param}_{band}_{kind}"],
                                         per_image[f"{param}_{band}_truth"], percentile)
                rows_c.append({"kind": KIND_LABELS[kind], "band": band, "parameter": param,
                               **r})
    classification = Table(rows=rows_c)

    edges = quantile_edges(log_m, n_mass_bins)
    rows_m = []
    for band in bands:
        for param in PARAMS:
            for kind in ("truth",) + KINDS:
                y = (per_image[f"{param}_{band}_truth"] if kind == "truth"
                     else per_image[f"d{param}_{band}_{kind}"])
                stats = binned_median(log_m, y, edges)
                for i in range(n_mass_bins):
                    rows_m.append({
                        "kind": KIND_LABELS[kind], "band": band, "parameter": param,
                        "quantity": "true value" if kind == "truth" else "difference",
                        "log_m500c_lo": stats["lo"][i], "log_m500c_hi": stats["hi"][i],
                        "n": int(stats["n"][i]), "median": stats["median"][i],
                        "p16": stats["p16"][i], "p84": stats["p84"][i]})
    mass_dependence = Table(rows=rows_m)

    meta = {"erosita_exposure_s": float(erosita_exposure_s),
            "ideal_exposure_s": float(ideal_exposure_s),
            "background_sigma_pix": sigma, "classification_percentile": float(percentile),
            "n_images": int(n), "bands": list(bands), "centre": "image centre ((H-1)/2, (W-1)/2)",
            "smoothness_boundary": boundary,
            "reference": "paper 000 (super observations) sec. 3, sec. 4.1, Table 3"}
    for t in (per_image, table3, classification, mass_dependence):
        t.meta.update(meta)
    return {"per_image": per_image, "table3": table3, "classification": classification,
            "mass_dependence": mass_dependence}
