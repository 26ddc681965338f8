"""Load trained ``.keras`` models safely and check they are the expected network."""
from __future__ import annotations

import logging
import zipfile
from pathlib import Path

__all__ = ["load_trained_model", "ModelFileError", "custom_objects"]

log = logging.getLogger("xclusters.predict")

_KINDS = {"superobs": "the paper-000 super-observation CNN, input (H, W, 3) counts",
          "mass": "the paper-004 mass CNN, input (H, W, 1) counts, output (1,) log10 M500c"}


class ModelFileError(ValueError):
    """A model file is missing, not a Keras model, or not the expected network."""


def custom_objects() -> dict:
    """Custom classes of this package that saved models may reference."""
    from xclusters.models import mass, morphology

    return {**morphology.custom_objects(), **mass.custom_objects()}


def load_trained_model(path: str | Path, kind: str):
    """Load a ``.keras`` model with ``safe_mode=True`` and check its input/output shapes.

    Parameters
    ----------
    path : path
        A file written by :mod:`xclusters.train` (or any compatible ``.keras`` file).
    kind : {"superobs", "mass"}
        Which network is expected.

    Returns
    -------
    keras.Model

    Raises
    ------
    ModelFileError
        Naming the file and what was expected.
    """
    import keras

    if kind not in _KINDS:
        raise ValueError(f"kind = {kind!r}: expected one of {sorted(_KINDS)}")
    p = Path(path)
    expected = _KINDS[kind]
    if not p.is_file():
        raise ModelFileError(f"{p}: model file not found (expected {expected}, a .keras file "
                             "written by `xclusters train`)")
    if p.suffix != ".keras" or not zipfile.is_zipfile(p):
        raise ModelFileError(f"{p}: not a Keras '.keras' model archive (expected {expected})")
    try:
        model = keras.models.load_model(p, safe_mode=True, compile=False,
                                        custom_objects=custom_objects())
    except Exception as exc:
        raise ModelFileError(f"{p}: could not be loaded as a Keras model ({exc}); expected "
                             f"{expected}") from exc
    in_shape = tuple(model.inputs[0].shape)
    out_shape = tuple(model.outputs[0].shape)
    if kind == "superobs":
        ok = len(in_shape) == 4 and len(out_shape) == 4 and in_shape[-1] == out_shape[-1] == 3
    else:
        ok = len(in_shape) == 4 and in_shape[-1] == 1 and out_shape[1:] == (1,)
    if not ok:
        raise ModelFileError(f"{p}: model has input {in_shape[1:]} and output {out_shape[1:]}; "
                             f"expected {expected}. Is this the other paper's model?")
    log.info("loaded %s model %s (input %s)", kind, p, in_shape[1:])
    return model
