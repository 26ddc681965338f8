"""Predict log10 M500c (paper 004) from Chandra images."""
from __future__ import annotations

from pathlib import Path

import numpy as np

__all__ = ["predict_mass", "predict_mass_arrays"]


def predict_mass_arrays(model, images: np.ndarray, batch_size: int = 64, *,
                        redshift: np.ndarray | float | None = None) -> np.ndarray:
    """Predict log10(M500c / Msun) for ``(N, H, W)`` or ``(N, H, W, 1)`` count images.

    ``model`` is a keras.Model or a ``.keras`` path. ``redshift`` (one value, or one per
    image) is passed to a model with the redshift input (``train.mass.redshift_input``) and
    required by it; an image-only model ignores it. Returns ``(N,)`` float64.
    """
    from xclusters.models.mass import needs_redshift

    if isinstance(model, (str, Path)):
        from xclusters.predict.loading import load_trained_model

        model = load_trained_model(model, "mass")
    x = np.asarray(images, dtype=np.float32)
    if x.ndim == 3:
        x = x[..., None]
    want = tuple(model.inputs[0].shape[1:3])
    if x.ndim != 4 or x.shape[-1] != 1 or x.shape[1:3] != want:
        raise ValueError(f"images shape {x.shape}: the mass model expects (N, {want[0]}, "
                         f"{want[1]}, 1) counts (0.5-7 keV Chandra image)")
    if needs_redshift(model):
        if redshift is None:
            raise ValueError("this mass model was trained with the redshift as a second input "
                             "(train.mass.redshift_input: true); give the observation's "
                             "redshift")
        z = np.broadcast_to(np.asarray(redshift, dtype=np.float32).reshape(-1, 1)
                            if np.ndim(redshift) else np.float32(redshift),
                            (x.shape[0], 1)).astype(np.float32)
        if not np.all(np.isfinite(z)) or np.any(z < 0):
            raise ValueError(f"redshift must be finite and >= 0, got {np.unique(z)[:5]}")
        inputs = [x, z]
    else:
        inputs = x
    return np.asarray(model.predict(inputs, batch_size=int(batch_size), verbose=0),
                      dtype=np.float64).reshape(-1)


def predict_mass(model_path: str | Path, fits_image: str | Path, *,
                 allow_mismatch: bool = False, redshift: float | None = None) -> float:
    """log10(M500c / Msun) for one Chandra image (FITS, 128x128 counts, 0.5-7 keV).

    The image is compared with the model's training record
    (:func:`xclusters.predict.checks.check_input`): another instrument or pixel scale is an
    error unless ``allow_mismatch``; another exposure is a warning; an all-zero image is an
    error. A model trained with the redshift input needs the observation's redshift:
    ``redshift`` if given, else the FITS header keyword ``REDSHIFT``; neither is an error.

    Raises
    ------
    xclusters.predict.fitsio.InputFileError
        When the image size does not match the model (naming both), the image is empty, or
        (:class:`~xclusters.predict.checks.InputMismatchError`) it was observed differently.
    """
    from xclusters.models.mass import needs_redshift
    from xclusters.models.record import read_training_record
    from xclusters.predict import checks
    from xclusters.predict.fitsio import InputFileError, read_single_image
    from xclusters.predict.loading import load_trained_model

    model = load_trained_model(model_path, "mass")
    record = read_training_record(model_path)
    want = tuple(model.inputs[0].shape[1:3])
    checks.check_image_size(fits_image, max(want), model_path)
    img, wcs, header = read_single_image(fits_image)
    if img.shape != want:
        raise InputFileError(f"{fits_image}: image is {img.shape[0]}x{img.shape[1]} px but "
                             f"{model_path} expects {want[0]}x{want[1]} px (rebin the 20 arcmin "
                             "field to that size)")
    checks.check_not_empty(img, fits_image)
    checks.check_input(record, path=fits_image, header=header, wcs=wcs, model_path=model_path,
                       allow_mismatch=allow_mismatch)
    z = None
    if needs_redshift(model) or (record or {}).get("redshift_input"):
        z = redshift if redshift is not None else header.get("REDSHIFT")
        if z is None:
            raise InputFileError(f"{model_path} was trained with the redshift as a second "
                                 f"input (record redshift_input: true) but {fits_image} has no "
                                 "REDSHIFT header keyword; give it with --redshift")
    return float(predict_mass_arrays(model, img[None], redshift=z)[0])
