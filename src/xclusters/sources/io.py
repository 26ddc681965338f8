"""``source.h5``: write, read, and load as a yt uniform-grid dataset (docs/architecture.md).

Layout: group ``/grid`` with ``density`` (g/cm^3), ``temperature`` (keV), ``metallicity``
(Zsun), ``velocity_x/y/z`` (km/s), each (N, N, N) float64, attrs ``bbox_kpc`` (3x2),
``redshift``, ``m500c_msun``, ``r500c_kpc``, ``cluster_id`` and provenance; group
``/point_sources`` with ``x_kpc``, ``y_kpc``, ``z_kpc``, ``luminosity_erg_s`` (0.5-2 keV
rest frame), ``photon_index`` (possibly empty).

Temperature is stored as kT in keV. :func:`load_source` gives yt ``("gas", "temperature")``
in K (kT / k_B), the field yt and pyXSIM's ``ThermalSourceModel`` use by default (pyXSIM
converts it to keV with the thermal equivalence); pass ``temperature_field=("gas",
"temperature")`` and ``emission_measure_field=("gas", "emission_measure")`` explicitly.
"""
from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any, Mapping

import astropy.constants as const
import astropy.units as u
import h5py
import numpy as np

from ..io import atomic_path
from ..provenance import provenance_record

__all__ = ["GRID_FIELDS", "POINT_SOURCE_FIELDS", "write_source", "read_source",
           "load_source", "SourceFileError"]

log = logging.getLogger("xclusters.sources")

GRID_FIELDS = {"density": "g/cm**3", "temperature": "keV", "metallicity": "Zsun",
               "velocity_x": "km/s", "velocity_y": "km/s", "velocity_z": "km/s"}
POINT_SOURCE_FIELDS = ("x_kpc", "y_kpc", "z_kpc", "luminosity_erg_s", "photon_index")
#: density given to empty cells (e.g. outside the hot gas of a cutout) when loaded into yt
EMPTY_CELL_DENSITY_G_CM3 = 1.0e-35
_KEV_TO_K = (1.0 * u.keV / const.k_B).to_value(u.K)


class SourceFileError(ValueError):
    """A source file is missing fields or holds invalid values."""


def _attr(value: Any) -> Any:
    if isinstance(value, (dict, list, tuple)) and not isinstance(value, np.ndarray):
        try:
            return np.asarray(value, dtype=float)
        except (TypeError, ValueError):
            return json.dumps(value, default=str)
    return value


def write_source(path: str | Path, source: Mapping[str, Any],
                 config: Mapping[str, Any] | None = None, seed: int | None = None,
                 provenance: Mapping[str, Any] | None = None) -> Path:
    """Write a source dict (from ``build_*_source``) to ``source.h5`` atomically.

    Parameters
    ----------
    path : str or Path
        Destination file.
    source : mapping
        The six grid fields, ``bbox_kpc``, ``point_sources`` and ``attrs`` (must include
        ``redshift``, ``m500c_msun``, ``r500c_kpc``, ``cluster_id``).
    config : mapping, optional
        Run config for the provenance hash.
    seed : int, optional
        Run seed for the provenance.
    provenance : mapping, optional
        Extra provenance (e.g. the stage ``fingerprints``), stored as ``provenance_<key>``
        attributes of ``/grid``.

    Returns
    -------
    Path
    """
    path = Path(path)
    missing = [f for f in GRID_FIELDS if f not in source]
    if missing:
        raise SourceFileError(f"write_source({path}): grid fields {missing} missing")
    shape = np.shape(source["density"])
    if len(shape) != 3 or any(np.shape(source[f]) != shape for f in GRID_FIELDS):
        raise SourceFileError(f"write_source({path}): grid fields must share one 3-D shape, "
                              f"got {[np.shape(source[f]) for f in GRID_FIELDS]}")
    rho = np.asarray(source["density"])
    if not np.all(np.isfinite(rho)) or np.any(rho < 0):
        raise SourceFileError(f"write_source({path}): density has NaN or negative values")
    attrs = dict(source.get("attrs", {}))
    for key in ("redshift", "m500c_msun", "r500c_kpc", "cluster_id"):
        if key not in attrs:
            raise SourceFileError(f"write_source({path}): attrs['{key}'] missing")
    prov = provenance_record(config, seed=seed, stage="sources", **dict(provenance or {}))
    with atomic_path(path) as tmp:
        with h5py.File(tmp, "w") as f:
            g = f.create_group("grid")
            for name, unit in GRID_FIELDS.items():
                d = g.create_dataset(name, data=np.asarray(source[name], dtype=np.float64))
                d.attrs["units"] = unit
            g.attrs["bbox_kpc"] = np.asarray(source["bbox_kpc"], dtype=np.float64)
            for key, value in attrs.items():
                g.attrs[key] = _attr(value)
            for key, value in prov.items():
                g.attrs[f"provenance_{key}"] = _attr(value)
            p = f.create_group("point_sources")
            ps = source.get("point_sources") or {}
            for name in POINT_SOURCE_FIELDS:
                p.create_dataset(name, data=np.asarray(ps.get(name, np.zeros(0)),
                                                       dtype=np.float64))
    return path


def read_source(path: str | Path) -> dict[str, Any]:
    """Read ``source.h5`` back into the dict layout of :func:`write_source`."""
    path = Path(path)
    if not path.is_file():
        raise SourceFileError(f"source file {path} not found; run the sources stage first")
    with h5py.File(path, "r") as f:
        if "grid" not in f:
            raise SourceFileError(f"{path}: group /grid missing; not a source.h5")
        g = f["grid"]
        missing = [k for k in GRID_FIELDS if k not in g]
        if missing:
            raise SourceFileError(f"{path}: /grid lacks {missing}")
        out: dict[str, Any] = {k: g[k][()] for k in GRID_FIELDS}
        out["bbox_kpc"] = g.attrs["bbox_kpc"][()]
        out["attrs"] = {k: (v.decode() if isinstance(v, bytes) else v)
                        for k, v in g.attrs.items() if k != "bbox_kpc"}
        ps = f.get("point_sources")
        out["point_sources"] = {k: (ps[k][()] if ps is not None and k in ps else np.zeros(0))
                                for k in POINT_SOURCE_FIELDS}
    return out


def load_source(path: str | Path):
    """Load ``source.h5`` as a yt uniform-grid dataset.

    Fields: ``("gas", "density")`` g/cm^3, ``("gas", "temperature")`` K, ``("gas",
    "metallicity")`` Zsun, ``("gas", "velocity_x/y/z")`` km/s; species fields ``ionized``
    (so ``("gas", "emission_measure")`` exists). ``ds.current_redshift`` and
    ``ds.parameters`` carry the file's attrs (``redshift``, ``m500c_msun``, ``r500c_kpc``,
    ``cluster_id``).

    Parameters
    ----------
    path : str or Path
        A ``source.h5`` file.

    Returns
    -------
    yt.data_objects.static_output.Dataset
    """
    import yt

    src = read_source(path)
    rho = np.asarray(src["density"], dtype=float)
    if np.any(rho <= 0):
        # yt's ionized species fields divide by density: empty cells would give NaN emission
        # measures. A floor ~1e-11 cm^-3, 7 orders of magnitude below cluster outskirts
        # (~1e-4 cm^-3), emits ~1e-14 of their emission per volume.
        rho = np.where(rho > 0, rho, EMPTY_CELL_DENSITY_G_CM3)
    data = {
        "density": (rho, "g/cm**3"),
        "temperature": (src["temperature"] * _KEV_TO_K, "K"),
        "metallicity": (src["metallicity"], "Zsun"),
        "velocity_x": (src["velocity_x"], "km/s"),
        "velocity_y": (src["velocity_y"], "km/s"),
        "velocity_z": (src["velocity_z"], "km/s"),
    }
    ds = yt.load_uniform_grid(data, src["density"].shape, length_unit="kpc",
                              bbox=np.asarray(src["bbox_kpc"], dtype=float), nprocs=1,
                              default_species_fields="ionized")
    ds.current_redshift = float(src["attrs"].get("redshift", 0.0))
    ds.parameters.update({k: src["attrs"][k] for k in
                          ("redshift", "m500c_msun", "r500c_kpc", "cluster_id")
                          if k in src["attrs"]})
    ds.parameters["source_path"] = str(path)
    return ds
