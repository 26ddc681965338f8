"""What a trained model was trained on, stored inside its ``.keras`` file.

Training (:mod:`xclusters.pipeline.training`) adds ``xclusters_record.json`` to the ``.keras``
zip archive (Keras ignores entries it does not know). Inference
(:mod:`xclusters.predict.checks`) compares each input with it: instrument, bands, pixel scale,
image size, exposure and the input scaling inside the network. Models saved before the record
existed still load; inference then warns that their inputs cannot be checked.

Example record (super-observation model of ``config/config.yaml``)::

    {"format": 1, "kind": "superobs", "instrument": "erosita", "target_instrument": "ideal",
     "bands": [{"name": "soft", "lo": 74, "hi": 177, "unit": "chan"}, ...],
     "pixel_arcsec": 9.6, "image_pixels": 128, "exposure_s": 2000.0, "input_scaling": "none"}
"""
from __future__ import annotations

import json
import logging
import zipfile
from pathlib import Path
from typing import Any, Mapping

__all__ = ["RECORD_NAME", "training_record", "write_training_record", "read_training_record"]

log = logging.getLogger("xclusters.models")

#: Name of the record inside the ``.keras`` zip archive.
RECORD_NAME = "xclusters_record.json"
_FORMAT = 1
#: Instrument of the network's input and (super observation) target, per model kind.
_INSTRUMENTS = {"superobs": ("erosita", "ideal"), "mass": ("chandra_acisi", None)}


def _input_scaling(model_path: Path | None) -> str:
    """``log1p`` when the saved network starts with :class:`~xclusters.models.mass.Log1pCounts`."""
    if model_path is None or not zipfile.is_zipfile(model_path):
        return "unknown"
    with zipfile.ZipFile(model_path) as z:
        cfg = z.read("config.json").decode("utf-8", "replace")
    if "Log1pCounts" not in cfg:
        return "none"
    layer = next(lyr for lyr in json.loads(cfg)["config"]["layers"]
                 if lyr.get("class_name") == "Log1pCounts")
    lcfg = layer.get("config", {})
    plain = float(lcfg.get("offset", 0.0)) == 0.0 and float(lcfg.get("scale", 1.0)) == 1.0
    return "log1p" if plain else "log1p_standardized"


def _redshift_input(model_path: Path | None, config: Mapping[str, Any]) -> bool:
    """True when the saved mass network has the redshift input (its ``features_redshift``
    layer); without a model file, ``train.mass.redshift_input`` of the validated run config
    (:class:`~xclusters.train.settings.MassTrainSettings`; a missing key is named)."""
    if model_path is not None and zipfile.is_zipfile(model_path):
        with zipfile.ZipFile(model_path) as z:
            return "features_redshift" in z.read("config.json").decode("utf-8", "replace")
    from ..train.settings import MassTrainSettings

    return MassTrainSettings.from_config(config).redshift_input


def training_record(config: Mapping[str, Any], kind: str,
                    model_path: str | Path | None = None) -> dict:
    """The record of a model of ``kind`` trained with the validated run ``config``.

    Parameters
    ----------
    config : mapping
        Validated run configuration (:func:`xclusters.config.load_config`): the
        ``instruments`` section and, for ``mass`` without a model file,
        ``train.mass.redshift_input``.
    kind : {"superobs", "mass"}
        Which network.
    model_path : path, optional
        The saved model, to read its input scaling (a ``Log1pCounts`` first layer).

    Returns
    -------
    dict
        JSON-serialisable: ``kind``, ``instrument``, ``bands``, ``pixel_arcsec``,
        ``image_pixels``, ``exposure_s``, ``input_scaling`` (and ``target_instrument``; for
        ``mass``, ``redshift``: ``instruments.chandra_acisi.fixed_redshift``, None for
        light-cone redshifts, and ``redshift_input``: whether it needs the observation's
        redshift).
    """
    from ..images.bands import BANDS

    if kind not in _INSTRUMENTS:
        raise ValueError(f"kind = {kind!r}: expected one of {sorted(_INSTRUMENTS)}")
    inst, target = _INSTRUMENTS[kind]
    icfg = config["instruments"][inst]
    pixels = int(icfg["image_pixels"])
    if kind == "mass":  # the 20' field rebinned to image_pixels (paper 004 sec. 2.1.3)
        pixel_arcsec = float(icfg["field_arcmin"]) * 60.0 / pixels
    else:
        pixel_arcsec = float(icfg["pixel_arcsec"])
    from .. import __version__

    rec = {"format": _FORMAT, "kind": kind, "instrument": inst,
           "bands": [{"name": b.name, "lo": b.lo, "hi": b.hi, "unit": b.unit}
                     for b in BANDS[inst]],
           "pixel_arcsec": pixel_arcsec, "image_pixels": pixels,
           "exposure_s": float(icfg["exposure_ks"]) * 1000.0,
           "input_scaling": _input_scaling(Path(model_path) if model_path else None),
           "xclusters_version": __version__}
    if kind == "mass":  # every training cluster at one redshift, or None (the light cone)
        from ..stages import chandra_fixed_redshift

        rec["redshift"] = chandra_fixed_redshift(config)
        # a second input: inference must supply the observation's redshift
        rec["redshift_input"] = _redshift_input(Path(model_path) if model_path else None,
                                                config)
    if target:
        rec["target_instrument"] = target
        rec["target_exposure_s"] = float(config["instruments"][target]["exposure_ks"]) * 1000.0
    return rec


def write_training_record(model_path: str | Path, record: Mapping[str, Any]) -> Path:
    """Add (or replace) :data:`RECORD_NAME` in the ``.keras`` archive, atomically."""
    from ..io import atomic_path

    model_path = Path(model_path)
    text = json.dumps(dict(record), indent=1, sort_keys=True)
    with atomic_path(model_path) as tmp:
        with zipfile.ZipFile(model_path) as src, zipfile.ZipFile(tmp, "w") as dst:
            for info in src.infolist():
                if info.filename != RECORD_NAME:
                    dst.writestr(info, src.read(info.filename))
            dst.writestr(RECORD_NAME, text)
    log.info("%s: training record written (%s, %s px of %.4g arcsec, %g s)", model_path,
             record.get("instrument"), record.get("image_pixels"), record.get("pixel_arcsec"),
             record.get("exposure_s"))
    return model_path


def read_training_record(model_path: str | Path) -> dict | None:
    """The record stored in a ``.keras`` file, or ``None`` (with a warning) for older models."""
    model_path = Path(model_path)
    try:
        with zipfile.ZipFile(model_path) as z:
            if RECORD_NAME not in z.namelist():
                log.warning("%s has no training record (%s; saved before xclusters recorded "
                            "instrument, pixel scale and exposure): inputs are not checked "
                            "against what it was trained on. Retrain, or add one with "
                            "xclusters.models.record.write_training_record.", model_path,
                            RECORD_NAME)
                return None
            rec = json.loads(z.read(RECORD_NAME).decode("utf-8"))
    except (zipfile.BadZipFile, json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ValueError(f"{model_path}: unreadable training record {RECORD_NAME} ({exc})") \
            from exc
    if not isinstance(rec, dict):
        raise ValueError(f"{model_path}: training record {RECORD_NAME} is not a JSON object")
    return rec
