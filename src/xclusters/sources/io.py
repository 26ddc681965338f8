"""``source.h5``: write, read, and load as a yt dataset (docs/architecture.md).

Layout: group ``/grid`` with ``density`` (g/cm^3), ``temperature`` (keV), ``metallicity``
(Zsun), ``velocity_x/y/z`` (km/s), each (N, N, N) float64, attrs ``bbox_kpc`` (3x2),
``redshift``, ``m500c_msun``, ``r500c_kpc``, ``cluster_id`` and provenance; group
``/point_sources`` with ``x_kpc``, ``y_kpc``, ``z_kpc``, ``luminosity_erg_s`` (0.5-2 keV
rest frame), ``photon_index`` (possibly empty).

Two optional extensions (issue 17), both loaded by :func:`load_source`:

``/levels/<k>`` (nested refinement, analytic cores and AMR cutouts)
    Finer grids, each with the six fields above and attrs ``level`` (>= 1, refinement factor
    2 per level), ``left_edge_kpc`` / ``right_edge_kpc``; ``/grid`` is level 0. Loaded with
    ``yt.load_amr_grids``: yt's AMR selection hands pyXSIM only the leaf cells, each with its
    own ``dx``.
``/particles`` (simulation gas at native resolution: SPH particles or moving-mesh cells)
    1-D arrays :data:`PARTICLE_FIELDS` (positions relative to the halo centre, physical kpc;
    mass Msun; density g/cm^3; kT keV; Zsun; km/s; SPH smoothing length = kernel support
    radius, kpc); attr ``kernel`` (yt kernel name). ``/grid`` then holds the attrs only.
    Loaded with ``yt.load_particles`` as the SPH particle type ``io``.

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

__all__ = ["GRID_FIELDS", "POINT_SOURCE_FIELDS", "PARTICLE_FIELDS", "write_source",
           "read_source", "load_source", "source_layout", "particles_dataset",
           "SourceFileError"]

log = logging.getLogger("xclusters.sources")

GRID_FIELDS = {"density": "g/cm**3", "temperature": "keV", "metallicity": "Zsun",
               "velocity_x": "km/s", "velocity_y": "km/s", "velocity_z": "km/s"}
POINT_SOURCE_FIELDS = ("x_kpc", "y_kpc", "z_kpc", "luminosity_erg_s", "photon_index")
#: ``/particles`` datasets of a particle source and their units
PARTICLE_FIELDS = {"x_kpc": "kpc", "y_kpc": "kpc", "z_kpc": "kpc", "mass_msun": "Msun",
                   "density_g_cm3": "g/cm**3", "temperature_keV": "keV",
                   "metallicity_zsun": "Zsun", "velocity_x_km_s": "km/s",
                   "velocity_y_km_s": "km/s", "velocity_z_km_s": "km/s",
                   "smoothing_length_kpc": "kpc"}
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
    particles = source.get("particles")
    if particles is not None:
        _check_particles(path, particles)
    else:
        _check_grid(path, source, "grid")
        for k, lev in enumerate(source.get("levels") or ()):
            _check_grid(path, lev, f"levels[{k}]")
    attrs = dict(source.get("attrs", {}))
    for key in ("redshift", "m500c_msun", "r500c_kpc", "cluster_id"):
        if key not in attrs:
            raise SourceFileError(f"write_source({path}): attrs['{key}'] missing")
    prov = provenance_record(config, seed=seed, stage="sources", **dict(provenance or {}))
    with atomic_path(path) as tmp:
        with h5py.File(tmp, "w") as f:
            g = f.create_group("grid")
            if particles is None:
                _write_fields(g, source)
                for k, lev in enumerate(source.get("levels") or ()):
                    lg = f.create_group(f"levels/{k}")
                    _write_fields(lg, lev)
                    lg.attrs["level"] = int(lev["level"])
                    for key in ("left_edge_kpc", "right_edge_kpc"):
                        lg.attrs[key] = np.asarray(lev[key], dtype=np.float64)
            else:
                pg = f.create_group("particles")
                for name, unit in PARTICLE_FIELDS.items():
                    d = pg.create_dataset(name, data=np.asarray(particles[name],
                                                                dtype=np.float64))
                    d.attrs["units"] = unit
                pg.attrs["kernel"] = str(particles.get("kernel", "cubic"))
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


def _check_grid(path: Path, grid: Mapping[str, Any], where: str) -> None:
    missing = [f for f in GRID_FIELDS if f not in grid]
    if missing:
        raise SourceFileError(f"write_source({path}): {where} fields {missing} missing")
    shape = np.shape(grid["density"])
    if len(shape) != 3 or any(np.shape(grid[f]) != shape for f in GRID_FIELDS):
        raise SourceFileError(f"write_source({path}): {where} fields must share one 3-D shape, "
                              f"got {[np.shape(grid[f]) for f in GRID_FIELDS]}")
    rho = np.asarray(grid["density"])
    if not np.all(np.isfinite(rho)) or np.any(rho < 0):
        raise SourceFileError(f"write_source({path}): {where} density has NaN or negative "
                              "values")


def _check_particles(path: Path, particles: Mapping[str, Any]) -> None:
    missing = [f for f in PARTICLE_FIELDS if f not in particles]
    if missing:
        raise SourceFileError(f"write_source({path}): particle fields {missing} missing")
    n = {np.shape(particles[f]) for f in PARTICLE_FIELDS}
    if len(n) != 1 or len(next(iter(n))) != 1:
        raise SourceFileError(f"write_source({path}): particle fields must be 1-D arrays of "
                              f"one length, got shapes {sorted(n)}")
    for f in ("mass_msun", "density_g_cm3", "smoothing_length_kpc"):
        v = np.asarray(particles[f])
        if not np.all(np.isfinite(v)) or np.any(v <= 0):
            raise SourceFileError(f"write_source({path}): particle {f} must be finite and > 0")


def _write_fields(group, grid: Mapping[str, Any]) -> None:
    for name, unit in GRID_FIELDS.items():
        d = group.create_dataset(name, data=np.asarray(grid[name], dtype=np.float64))
        d.attrs["units"] = unit


def source_layout(path: str | Path) -> str:
    """``"particles"``, ``"nested"`` (``/levels`` present) or ``"grid"`` for a ``source.h5``."""
    with h5py.File(path, "r") as f:
        if "particles" in f:
            return "particles"
        return "nested" if "levels" in f and len(f["levels"]) else "grid"


def read_source(path: str | Path) -> dict[str, Any]:
    """Read ``source.h5`` back into the dict layout of :func:`write_source`."""
    path = Path(path)
    if not path.is_file():
        raise SourceFileError(f"source file {path} not found; run the sources stage first")
    with h5py.File(path, "r") as f:
        if "grid" not in f:
            raise SourceFileError(f"{path}: group /grid missing; not a source.h5")
        g = f["grid"]
        out: dict[str, Any] = {}
        if "particles" in f:
            pg = f["particles"]
            missing = [k for k in PARTICLE_FIELDS if k not in pg]
            if missing:
                raise SourceFileError(f"{path}: /particles lacks {missing}")
            out["particles"] = {k: pg[k][()] for k in PARTICLE_FIELDS}
            out["particles"]["kernel"] = str(pg.attrs.get("kernel", "cubic"))
        else:
            missing = [k for k in GRID_FIELDS if k not in g]
            if missing:
                raise SourceFileError(f"{path}: /grid lacks {missing}")
            out.update({k: g[k][()] for k in GRID_FIELDS})
            levels = []
            for key in sorted(f.get("levels", {}), key=int):
                lg = f["levels"][key]
                lev = {k: lg[k][()] for k in GRID_FIELDS}
                lev.update(level=int(lg.attrs["level"]),
                           left_edge_kpc=lg.attrs["left_edge_kpc"][()],
                           right_edge_kpc=lg.attrs["right_edge_kpc"][()])
                levels.append(lev)
            if levels:
                out["levels"] = levels
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
    bbox = np.asarray(src["bbox_kpc"], dtype=float)
    if "particles" in src:
        ds = particles_dataset(src["particles"], bbox)
    elif "levels" in src:
        grids = [dict(_yt_fields(src), left_edge=bbox[:, 0], right_edge=bbox[:, 1], level=0,
                      dimensions=np.shape(src["density"]))]
        for lev in src["levels"]:
            grids.append(dict(_yt_fields(lev), left_edge=np.asarray(lev["left_edge_kpc"]),
                              right_edge=np.asarray(lev["right_edge_kpc"]),
                              level=int(lev["level"]), dimensions=np.shape(lev["density"])))
        ds = yt.load_amr_grids(grids, np.shape(src["density"]), bbox=bbox, length_unit="kpc",
                               refine_by=2, default_species_fields="ionized",
                               periodicity=(False, False, False))
    else:
        ds = yt.load_uniform_grid(_yt_fields(src), src["density"].shape, length_unit="kpc",
                                  bbox=bbox, nprocs=1, default_species_fields="ionized")
    ds.current_redshift = float(src["attrs"].get("redshift", 0.0))
    ds.parameters.update({k: src["attrs"][k] for k in
                          ("redshift", "m500c_msun", "r500c_kpc", "cluster_id")
                          if k in src["attrs"]})
    ds.parameters["source_path"] = str(path)
    return ds


def _yt_fields(grid: Mapping[str, Any]) -> dict[str, tuple[np.ndarray, str]]:
    """The six grid fields as yt ``(array, unit)`` pairs, empty cells floored."""
    rho = np.asarray(grid["density"], dtype=float)
    if np.any(rho <= 0):
        # yt's ionized species fields divide by density: empty cells would give NaN emission
        # measures. A floor ~1e-11 cm^-3, 7 orders of magnitude below cluster outskirts
        # (~1e-4 cm^-3), emits ~1e-14 of their emission per volume.
        rho = np.where(rho > 0, rho, EMPTY_CELL_DENSITY_G_CM3)
    return {
        "density": (rho, "g/cm**3"),
        "temperature": (np.asarray(grid["temperature"]) * _KEV_TO_K, "K"),
        "metallicity": (np.asarray(grid["metallicity"]), "Zsun"),
        "velocity_x": (np.asarray(grid["velocity_x"]), "km/s"),
        "velocity_y": (np.asarray(grid["velocity_y"]), "km/s"),
        "velocity_z": (np.asarray(grid["velocity_z"]), "km/s"),
    }


def particles_dataset(particles: Mapping[str, np.ndarray], bbox_kpc: np.ndarray,
                      index: slice | None = None):
    """A yt SPH particle dataset (particle type ``io``) from ``/particles`` arrays.

    Parameters
    ----------
    particles : mapping
        :data:`PARTICLE_FIELDS` arrays (an open ``h5py`` group works: only ``index`` is read).
    bbox_kpc : array (3, 2)
        Domain of the dataset [kpc]; every particle centre must lie inside.
    index : slice, optional
        The particles to load (a chunk); all by default.

    Returns
    -------
    yt Dataset
        Fields ``("io", "particle_position_*")``, ``particle_mass``, ``density``,
        ``smoothing_length``, ``temperature`` (K), ``metallicity``, ``particle_velocity_*``;
        ``("gas", "emission_measure")`` exists (ionized species).
    """
    import yt

    sl = slice(None) if index is None else index

    def col(name):
        return np.asarray(particles[name][sl], dtype=np.float64)

    data = {("io", f"particle_position_{a}"): (col(f"{a}_kpc"), "kpc") for a in "xyz"}
    data.update({
        ("io", "particle_mass"): (col("mass_msun"), "Msun"),
        ("io", "density"): (col("density_g_cm3"), "g/cm**3"),
        ("io", "smoothing_length"): (col("smoothing_length_kpc"), "kpc"),
        ("io", "temperature"): (col("temperature_keV") * _KEV_TO_K, "K"),
        ("io", "metallicity"): (col("metallicity_zsun"), "Zsun"),
    })
    data.update({("io", f"particle_velocity_{a}"): (col(f"velocity_{a}_km_s"), "km/s")
                 for a in "xyz"})
    return yt.load_particles(data, length_unit="kpc", mass_unit="Msun",
                             bbox=np.asarray(bbox_kpc, dtype=float),
                             periodicity=(False, False, False),
                             default_species_fields="ionized")
