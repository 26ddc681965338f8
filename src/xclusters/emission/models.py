"""Choose and build the pyXSIM source model from the ``emission`` config section.

``emission.model``:

* ``apec``: pyXSIM's :class:`pyxsim.CIESourceModel` with the full AtomDB APEC tables;
* ``apec_table``: :class:`~xclusters.emission.apec_table.ApecTableSpectrum` from yt's table;
* ``bremsstrahlung``: :class:`~xclusters.emission.bremsstrahlung.BremsstrahlungSpectrum`,
  needs no data;
* ``auto``: the first available of the three, in that order (DESIGN.md "Emission"); the choice
  and the reasons for skipping the others go into the provenance.
"""
from __future__ import annotations

import logging
from typing import Any, Mapping

from pyxsim.source_models.thermal_sources.base import ThermalSourceModel

from ..provenance import sha256_file
from ..settings import EmissionSettings
from .apec import locate_atomdb
from .apec_table import ApecTableSpectrum, locate_apec_table
from .bremsstrahlung import BremsstrahlungSpectrum

__all__ = ["MODEL_NAMES", "EmissionModelUnavailable", "make_source_model"]

log = logging.getLogger("xclusters.emission")

MODEL_NAMES = ("apec", "apec_table", "bremsstrahlung")

TEMPERATURE_FIELD = ("gas", "temperature")
EMISSION_MEASURE_FIELD = ("gas", "emission_measure")
METALLICITY_FIELD = ("gas", "metallicity")


class EmissionModelUnavailable(RuntimeError):
    """The requested emission model cannot run here (missing data, offline)."""


def _band(settings: EmissionSettings) -> tuple[float, float, int]:
    emin, emax, nbins = settings.emin_keV, settings.emax_keV, settings.nbins
    if not (0.0 < emin < emax):
        raise ValueError(f"emission.emin_keV={emin}, emission.emax_keV={emax}: "
                         "need 0 < emin_keV < emax_keV.")
    if nbins < 10:
        raise ValueError(f"emission.nbins={nbins}: use at least 10 energy bins.")
    return emin, emax, nbins


def _thermal(spectral_model, settings: EmissionSettings, Zmet, kT_min, kT_max,
             prng) -> ThermalSourceModel:
    emin, emax, nbins = _band(settings)
    return ThermalSourceModel(spectral_model, emin, emax, nbins, Zmet, kT_min=kT_min,
                              kT_max=kT_max, prng=prng, temperature_field=TEMPERATURE_FIELD,
                              emission_measure_field=EMISSION_MEASURE_FIELD)


def _build(name: str, settings: EmissionSettings, kT_min, kT_max, Zmet, prng):
    """Return ``(source_model, provenance)`` or raise :class:`EmissionModelUnavailable`."""
    emin, emax, nbins = _band(settings)
    if name == "apec":
        ok, root, vers, reason = locate_atomdb(settings)
        if not ok:
            raise EmissionModelUnavailable(f"apec: {reason}")
        from pyxsim import CIESourceModel

        model = CIESourceModel("apec", emin, emax, nbins, Zmet, kT_min=kT_min, kT_max=kT_max,
                               model_root=root, model_vers=vers, prng=prng,
                               temperature_field=TEMPERATURE_FIELD,
                               emission_measure_field=EMISSION_MEASURE_FIELD)
        return model, {"emission_model_version": f"apec {vers}", "emission_data": reason}
    if name == "apec_table":
        path, reason = locate_apec_table(settings)
        if path is None:
            raise EmissionModelUnavailable(f"apec_table: {reason}")
        spec = ApecTableSpectrum(path, emin, emax, nbins)
        if not spec.covers(kT_min, kT_max):
            raise ValueError(f"apec_table covers kT = {spec.Tvals[0]:.4g}-{spec.Tvals[-1]:.4g} "
                             f"keV, but the source spans {kT_min:.4g}-{kT_max:.4g} keV; "
                             "clip the source temperatures or use emission.model: apec.")
        prov = {"emission_model_version": spec.model_vers, "emission_data": str(path),
                "emission_data_sha256": sha256_file(path)}
        return _thermal(spec, settings, Zmet, kT_min, kT_max, prng), prov
    if name == "bremsstrahlung":
        spec = BremsstrahlungSpectrum(emin, emax, nbins, kT_min, kT_max)
        prov = {"emission_model_version": spec.model_vers,
                "emission_data": "builtin (Rybicki & Lightman 1979 eq. 5.14a, Born Gaunt)"}
        return _thermal(spec, settings, Zmet, kT_min, kT_max, prng), prov
    raise ValueError(f"emission.model={name!r}: choose one of auto, {', '.join(MODEL_NAMES)}.")


def make_source_model(emission_cfg: EmissionSettings | Mapping[str, Any], *, kT_min_keV: float,
                      kT_max_keV: float, Zmet: float | tuple[str, str] = METALLICITY_FIELD,
                      prng=None) -> tuple[ThermalSourceModel, str, dict[str, Any]]:
    """Build the pyXSIM thermal source model named by ``emission_cfg["model"]``.

    Parameters
    ----------
    emission_cfg : EmissionSettings or mapping
        :class:`xclusters.settings.EmissionSettings` (or a validated config / its
        ``emission`` section): ``model`` (auto | apec | apec_table | bremsstrahlung),
        ``emin_keV``, ``emax_keV`` (observed band, keV), ``nbins``, ``apec_table_path``,
        ``apec_root``, ``apec_version``, ``allow_download``.
    kT_min_keV, kT_max_keV : float
        Temperature range of the gas in keV; cells outside it emit nothing (pyXSIM's cut).
    Zmet : float or (str, str)
        Metallicity in Zsun, or the yt field holding it (default ``("gas", "metallicity")``).
    prng : int or numpy.random.Generator, optional
        Random generator used by pyXSIM to draw photons; pass one derived with
        :mod:`xclusters.seeds`.

    Returns
    -------
    source_model : pyxsim ThermalSourceModel
        Uses the ``("gas", "temperature")`` and ``("gas", "emission_measure")`` fields.
    model_name : str
        The model actually used (``apec``, ``apec_table`` or ``bremsstrahlung``).
    provenance : dict
        ``emission_model``, ``emission_model_version``, ``emission_data`` (path or
        ``builtin``), ``emission_data_sha256`` when a table is used, ``emission_requested`` and,
        for ``auto``, ``emission_auto_skipped`` (why better models were not used).

    Raises
    ------
    EmissionModelUnavailable
        An explicitly requested model cannot run here.
    ValueError
        Unknown model name, bad band, or a temperature range outside the model's table.
    """
    if not (0.0 < kT_min_keV < kT_max_keV):
        raise ValueError(f"kT range [{kT_min_keV}, {kT_max_keV}] keV: need 0 < kT_min < kT_max.")
    settings = EmissionSettings.from_config(emission_cfg)
    requested = settings.model
    names = MODEL_NAMES if requested == "auto" else (requested,)
    skipped: list[str] = []
    for name in names:
        try:
            model, prov = _build(name, settings, kT_min_keV, kT_max_keV, Zmet, prng)
        except EmissionModelUnavailable as err:
            if requested != "auto":
                raise
            skipped.append(str(err))
            log.info("emission auto: skipping %s", err)
            continue
        prov = {"emission_model": name, "emission_requested": requested, **prov}
        if skipped:
            prov["emission_auto_skipped"] = "; ".join(skipped)
        log.info("emission model: %s (%s)", name, prov.get("emission_data"))
        return model, name, prov
    raise EmissionModelUnavailable("no emission model available: " + "; ".join(skipped))
