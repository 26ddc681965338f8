"""Predict super observations (paper 000) from eROSITA images or event lists.

Counts are never negative (issue 16): the output layer of paper 000's CNN (Table 2) is linear
and can give negative pixels, so every prediction this package writes or evaluates goes
through :func:`clip_negative_counts` (negative pixels set to 0). The FITS header of a
prediction records it (``NEGCLIP = T`` and the number and fraction of clipped pixels and
counts, :data:`NEGCLIP_CARDS`); ``xclusters predict-dataset`` writes the same as HDF5
attributes. Training also penalises negative pixels (``train.superobs.negative_weight``,
:class:`xclusters.models.morphology.SuperobsLoss`).
"""
from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

__all__ = ["predict_superobs", "predict_superobs_arrays", "clip_negative_counts",
           "negclip_header_cards", "EROSITA_EXPOSURE_S", "SUPEROBS_EXPOSURE_S", "NEGCLIP_CARDS"]

log = logging.getLogger("xclusters.predict")

#: Exposure of the model's input and output, s (paper 000 Table 1).
EROSITA_EXPOSURE_S = 2000.0
SUPEROBS_EXPOSURE_S = 10000.0

#: FITS keywords (and comments) of :func:`negclip_header_cards`, keyed by the
#: :func:`clip_negative_counts` statistic they hold.
NEGCLIP_CARDS = {
    "clipped": ("NEGCLIP", "negative predicted counts set to 0"),
    "n_pixels": ("NEGCLNPX", "number of predicted pixels < 0 set to 0"),
    "pixel_fraction": ("NEGCLFPX", "fraction of predicted pixels set to 0"),
    "counts": ("NEGCLCNT", "sum of the negative predicted counts removed"),
    "count_fraction": ("NEGCLFCT", "removed counts / predicted counts after clipping"),
}


def clip_negative_counts(counts: np.ndarray, *, what: str = "prediction"
                         ) -> tuple[np.ndarray, dict]:
    """Set negative predicted counts to 0 (the one clipping of predictions, issue 16).

    Parameters
    ----------
    counts : numpy.ndarray
        Predicted counts per pixel, any shape.
    what : str
        Name used in the log line.

    Returns
    -------
    (clipped, stats) : (numpy.ndarray, dict)
        ``clipped`` float32 ``>= 0`` (non-finite values are left for the caller's checks);
        ``stats``: ``clipped`` (True), ``n_pixels`` clipped, ``pixel_fraction`` of all pixels,
        ``counts`` (sum of the removed negative counts, >= 0) and ``count_fraction`` (removed
        counts over the clipped prediction's total counts; 0 when that total is 0).
    """
    x = np.asarray(counts, dtype=np.float32)
    neg = x < 0
    n_neg = int(np.count_nonzero(neg))
    removed = float(-np.sum(x[neg], dtype=np.float64))
    clipped = np.where(neg, np.float32(0.0), x)
    total = float(np.sum(clipped[np.isfinite(clipped)], dtype=np.float64))
    stats = {"clipped": True, "n_pixels": n_neg,
             "pixel_fraction": n_neg / x.size if x.size else 0.0,
             "counts": removed, "count_fraction": removed / total if total > 0 else 0.0}
    if n_neg:
        log.info("%s: %d of %d pixels (%.3g %%) predicted negative, set to 0 (%.4g counts, "
                 "%.3g %% of the clipped total)", what, n_neg, x.size,
                 100.0 * stats["pixel_fraction"], removed, 100.0 * stats["count_fraction"])
    return clipped, stats


def negclip_header_cards(stats: dict) -> dict:
    """FITS ``{keyword: (value, comment)}`` cards of :func:`clip_negative_counts` ``stats``."""
    return {key: (stats[name], comment) for name, (key, comment) in NEGCLIP_CARDS.items()}


def _model(model_or_path, kind: str):
    if isinstance(model_or_path, (str, Path)):
        from xclusters.predict.loading import load_trained_model

        return load_trained_model(model_or_path, kind)
    return model_or_path


def predict_superobs_arrays(model, inputs: np.ndarray, batch_size: int = 4, *,
                            clip: bool = True) -> np.ndarray:
    """Predict super observations for a batch of eROSITA images.

    Parameters
    ----------
    model : keras.Model or path
        A superobs model (or its ``.keras`` file).
    inputs : numpy.ndarray
        ``(N, H, W, 3)`` counts per pixel (2 ks eROSITA).
    batch_size : int
        Images per forward pass.
    clip : bool
        Set negative counts to 0 (:func:`clip_negative_counts`). ``False`` returns the raw
        network output, for callers that clip themselves to record the statistics.

    Returns
    -------
    numpy.ndarray
        ``(N, H, W, 3)`` float32 predicted counts per pixel of the 10 ks ideal observation.
    """
    model = _model(model, "superobs")
    x = np.asarray(inputs, dtype=np.float32)
    want = tuple(model.inputs[0].shape[1:])
    if x.ndim != 4 or x.shape[-1] != want[-1]:
        raise ValueError(f"inputs shape {x.shape}: expected (N, H, W, {want[-1]}) counts")
    if want[0] is not None and x.shape[1:3] != want[:2]:
        raise ValueError(f"inputs are {x.shape[1]}x{x.shape[2]} px but the model expects "
                         f"{want[0]}x{want[1]} px")
    raw = np.asarray(model.predict(x, batch_size=int(batch_size), verbose=0), dtype=np.float32)
    return clip_negative_counts(raw)[0] if clip else raw


def predict_superobs(model_path: str | Path, input: str | Path, *, out_fits: str | Path,
                     sky_center=None, event_list: bool = False, nr_baseline: bool = False,
                     image_pixels: int | None = None, field_pixels: int = 300,
                     pixel_arcsec: float | None = None, allow_mismatch: bool = False) -> dict:
    """Predict the 10 ks super observation for one eROSITA observation and write FITS.

    Parameters
    ----------
    model_path : path
        Trained superobs ``.keras`` model.
    input : path
        A 3-band eROSITA image (cube ``(3, H, W)`` or three 2-D HDUs, counts in 2 ks) or,
        with ``event_list=True``, an event file with an ``EVENTS`` table (``RA``, ``DEC``, ``PI``).
    out_fits : path
        Output FITS: primary HDU ``PREDICTION`` ``(3, H, W)`` (negative counts set to 0,
        recorded by ``NEGCLIP`` and the ``NEGCL*`` keywords), extension ``INPUT`` (the
        image fed to the model) and, with ``nr_baseline``, ``EROSITA_NR``; all with the WCS
        of the input (a TAN WCS centred on ``sky_center`` for event lists).
    sky_center : (ra_deg, dec_deg) or SkyCoord, optional
        Centre of the binned image for event lists (default: the header pointing).
    event_list : bool
        ``input`` is an event list.
    nr_baseline : bool
        Also write the eROSITA-NR baseline (paper 000 §2.1). The annulus background comes from
        the image's ``BKGANN1..3`` keywords (measured on the full field by the image stage);
        for event lists it is measured on a ``field_pixels`` field binned from the same
        events; otherwise on the image itself (with a warning).
    image_pixels : int, optional
        Side of the binned image for event lists, pixels; default the model's training size
        (its training record, :mod:`xclusters.models.record`), else 256 (paper 000). Larger
        than the training size is refused.
    field_pixels : int
        Side of the full field for the background annulus, pixels
        (``instruments.erosita.field_pixels``).
    pixel_arcsec : float, optional
        Pixel size for event lists, arcsec; default the training record's, else 9.6 (paper
        000 Table 1).
    allow_mismatch : bool
        Accept an input from another instrument or at another pixel scale than the model's
        training data (logged as a warning); otherwise that is an error
        (:func:`xclusters.predict.checks.check_input`).

    Returns
    -------
    dict
        ``out_fits``, ``prediction`` ``(3, H, W)`` (>= 0), ``input`` ``(3, H, W)``,
        ``baseline`` (or None), ``background`` (per band counts/pixel, or None) and
        ``negclip`` (the :func:`clip_negative_counts` statistics).
    """
    from xclusters.io import check_output_path
    from xclusters.models.record import read_training_record
    from xclusters.predict import checks, fitsio
    from xclusters.predict.baseline import annulus_background
    from xclusters.predict.baseline import nr_baseline as make_nr
    from xclusters.provenance import provenance_record, sha256_file

    is_path = isinstance(model_path, (str, Path))
    check_output_path(out_fits, [model_path if is_path else None, input], option="out_fits")
    model = _model(model_path, "superobs")
    record = read_training_record(model_path) if is_path else None
    limit = checks.max_image_pixels(record)
    if image_pixels is None:
        image_pixels = limit
    if pixel_arcsec is None:
        pixel_arcsec = float((record or {}).get("pixel_arcsec") or fitsio.EROSITA_PIXEL_ARCSEC)
    if int(image_pixels) < 1:
        raise ValueError(f"image_pixels = {image_pixels}: must be a positive number of pixels")
    if int(image_pixels) > limit:
        raise fitsio.InputFileError(
            f"image_pixels = {image_pixels} (--pixels): {model_path} accepts at most "
            f"{limit}x{limit} px (its training size); bin a smaller image")
    background = None
    if event_list:
        cube, wcs, header = fitsio.bin_event_list(input, sky_center, image_pixels, pixel_arcsec)
        if nr_baseline:
            field, _, _ = fitsio.bin_event_list(input, sky_center, max(field_pixels, image_pixels),
                                            pixel_arcsec)
            background = annulus_background(field)
    else:
        checks.check_image_size(input, limit, model_path)
        cube, wcs, header = fitsio.read_band_image(input)
        if wcs is None:
            log.warning("%s: no celestial WCS in the header; the prediction has none", input)
        keys = [f"BKGANN{i}" for i in range(1, cube.shape[0] + 1)]
        if nr_baseline and all(k in header for k in keys):
            # full-field annulus background written by the image stage (xclusters.images)
            background = np.array([float(header[k]) for k in keys])
        elif nr_baseline:
            log.warning("%s: no BKGANN1..%d keywords (full-field annulus background); measuring "
                        "the annulus on the image itself, which may not reach r = 140-145 px",
                        input, cube.shape[0])
    checks.check_not_empty(cube, input)
    checks.check_input(record, path=input, header=header, wcs=wcs, model_path=model_path,
                       allow_mismatch=allow_mismatch)
    exposure = header.get("EXPOSURE")
    if record is None and exposure is not None and \
            abs(float(exposure) - EROSITA_EXPOSURE_S) > 0.01 * EROSITA_EXPOSURE_S:
        log.warning("%s: EXPOSURE = %s s, but the model was trained on %g s eROSITA images; "
                    "predictions scale with the counts", input, exposure, EROSITA_EXPOSURE_S)
    raw = predict_superobs_arrays(model, np.moveaxis(cube, 0, -1)[None], batch_size=1,
                                  clip=False)[0]
    pred, clip_stats = clip_negative_counts(np.moveaxis(raw, -1, 0), what=str(out_fits))
    extra = [("INPUT", cube)]
    baseline = None
    if nr_baseline:
        baseline, background = make_nr(cube, background)
        extra.append(("EROSITA_NR", baseline))
    prov = provenance_record(
        model_file=Path(model_path).name if isinstance(model_path, (str, Path)) else "in-memory",
        model_sha256=(sha256_file(model_path) if isinstance(model_path, (str, Path)) else "n/a"),
        input_file=Path(input).name, input_kind="event_list" if event_list else "image")
    if background is not None:
        prov.update({f"bkg_{b}": float(v) for b, v in zip(fitsio.BAND_NAMES, background)})
    cards = {"EXPOSURE": SUPEROBS_EXPOSURE_S, **negclip_header_cards(clip_stats)}
    out = fitsio.write_prediction_fits(out_fits, pred, wcs, extra=extra, header_cards=cards,
                                       provenance=prov)
    log.info("wrote %s", out)
    return {"out_fits": out, "prediction": pred, "input": cube, "baseline": baseline,
            "background": background, "negclip": clip_stats}
