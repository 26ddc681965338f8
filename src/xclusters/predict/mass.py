"""Predict log10 M500c (paper 004) from Chandra images."""
from __future__ import annotations

from pathlib import Path

import numpy as np

__all__ = ["predict_mass", "predict_mass_arrays"]


def predict_mass_arrays(model, images: np.ndarray, batch_size: int = 64) -> np.ndarray:
    """Predict log10(M500c / Msun) for ``(N, H, W)`` or ``(N, H, W, 1)`` count images.

    ``model`` is a keras.Model or a ``.keras`` path. Returns ``(N,)`` float64.
    """
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
    return np.asarray(model.predict(x, batch_size=int(batch_size), verbose=0),
                      dtype=np.float64).reshape(-1)


def predict_mass(model_path: str | Path, fits_image: str | Path, *,
                 allow_mismatch: bool = False) -> float:
    """log10(M500c / Msun) for one Chandra image (FITS, 128x128 counts, 0.5-7 keV).

    The image is compared with the model's training record
    (:func:`xclusters.predict.checks.check_input`): another instrument or pixel scale is an
    error unless ``allow_mismatch``; another exposure is a warning; an all-zero image is an
    error.

    Raises
    ------
    xclusters.predict.fitsio.InputFileError
        When the image size does not match the model (naming both), the image is empty, or
        (:class:`~xclusters.predict.checks.InputMismatchError`) it was observed differently.
    """
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
    return float(predict_mass_arrays(model, img[None])[0])
