"""Simulation cutouts (``sources.kind: simulation``): hot gas of a snapshot on the source grid.

Around the halo centre (``x_c, y_c, z_c``, comoving kpc/h as in the snapshot) a cube of side
``sources.box_r500c`` x R500c (physical) is cut from a yt-loadable particle snapshot (Gadget,
AREPO, GIZMO, ...). Only hot, non-star-forming gas is kept: kT > ``sources.min_kT_keV``
(0.1 keV) and zero star-formation rate (paper 004 sec. 2.1.2). The particles are deposited
onto the uniform grid of ``source.h5`` by nearest grid point: density = sum of masses / cell
volume; temperature, metallicity and velocity mass-weighted. Cells without hot gas get zero
density (and kT 0), so pyXSIM ignores them. Positions are wrapped periodically.
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from ..paths import safe_id
from .analytic import draw_agn_empty

__all__ = ["build_simulation_source", "SimulationSourceError", "GAS_TYPE_CANDIDATES"]

log = logging.getLogger("xclusters.sources")

GAS_TYPE_CANDIDATES = ("PartType0", "Gas", "gas")
_SFR_FIELDS = ("StarFormationRate", "star_formation_rate")
_METAL_FIELDS = ("metallicity", "GFM_Metallicity", "Metallicity")


class SimulationSourceError(ValueError):
    """A snapshot cutout cannot be built (missing fields, no emitting gas, bad centre)."""


def _gas_type(ds) -> str:
    ds.index  # particle types are known only once the index exists
    for pt in GAS_TYPE_CANDIDATES:
        if pt in ds.particle_types_raw:
            return pt
    raise SimulationSourceError(f"{ds}: no gas particle type among {GAS_TYPE_CANDIDATES} "
                                f"(found {ds.particle_types_raw})")


def _first(ds, ptype: str, names) -> tuple[str, str] | None:
    fields = set(ds.field_list) | set(ds.derived_field_list)
    for name in names:
        if (ptype, name) in fields:
            return (ptype, name)
    return None


def build_simulation_source(row: Mapping[str, Any], sources_cfg: Mapping[str, Any],
                            snapshot_path: str | Path, seed: int) -> dict[str, Any]:
    """Cut the hot gas around one halo out of a snapshot and deposit it on a uniform grid.

    Parameters
    ----------
    row : mapping
        Sample row with ``halo_id``, ``m500c`` [Msun], ``r500c`` [kpc, physical],
        ``redshift``, ``x_c``, ``y_c``, ``z_c`` [comoving kpc/h].
    sources_cfg : mapping
        ``grid_cells``, ``box_r500c``, ``min_kT_keV``, ``default_metallicity_zsun``.
    snapshot_path : str or Path
        Snapshot file that ``yt.load`` reads.
    seed : int
        Run seed (unused: the cutout is deterministic; kept for a uniform signature).

    Returns
    -------
    dict
        Same layout as :func:`xclusters.sources.build_analytic_source` (no point sources).
    """
    import yt

    halo_id = int(row["halo_id"])
    keys = row.colnames if hasattr(row, "colnames") else list(row.keys())
    cid = str(row["cluster_id"]) if "cluster_id" in keys else safe_id(halo_id)
    centre_v = np.array([float(row[c]) if c in keys else np.nan for c in ("x_c", "y_c", "z_c")])
    if not np.all(np.isfinite(centre_v)):
        raise SimulationSourceError(
            f"halo {halo_id} ({cid}): no snapshot centre (x_c, y_c, z_c = {centre_v.tolist()}); "
            "sources.kind: simulation needs a catalogue with centres (catalog.source: yt or a "
            "table with x_c, y_c, z_c)")
    snapshot_path = Path(snapshot_path)
    if not snapshot_path.exists():
        raise SimulationSourceError(f"snapshot {snapshot_path} not found (catalog.snapshot)")
    ds = yt.load(str(snapshot_path))
    ptype = _gas_type(ds)
    r500 = float(row["r500c"])
    n = int(sources_cfg["grid_cells"])
    side_kpc = float(sources_cfg["box_r500c"]) * r500
    half = 0.5 * side_kpc
    centre = ds.arr(centre_v, "kpccm/h")
    # read a slightly larger comoving cube; wrap positions across periodic boundaries
    half_code = ds.quan(half * 1.01, "kpc").to("code_length")
    reg = ds.box(centre - half_code, centre + half_code)
    pos = reg[(ptype, "particle_position")].to("kpccm/h").d
    width = ds.domain_width.to("kpccm/h").d
    d = pos - centre_v
    d -= width * np.round(d / width)
    d_kpc = ds.arr(d, "kpccm/h").to("kpc").d
    mass = reg[(ptype, "particle_mass")].to("Msun").d
    kt = reg[(ptype, "temperature")].to("keV", "thermal").d
    keep = kt > float(sources_cfg.get("min_kT_keV", 0.1))
    sfr_f = _first(ds, ptype, _SFR_FIELDS)
    if sfr_f is not None:
        keep &= reg[sfr_f].d <= 0
    else:
        log.warning("%s: no star-formation-rate field; star-forming gas cannot be excluded",
                    snapshot_path)
    inside = np.all(np.abs(d_kpc) < half, axis=1)
    keep &= inside
    if not keep.any():
        raise SimulationSourceError(
            f"halo {halo_id} ({cid}): the cutout of {snapshot_path} (side {side_kpc:.0f} kpc "
            f"around {centre_v.tolist()} kpccm/h) holds no emitting gas (kT > "
            f"{sources_cfg.get('min_kT_keV', 0.1)} keV, not star-forming); check the centre "
            "units (comoving kpc/h) or drop the halo from the sample")
    met_f = _first(ds, ptype, _METAL_FIELDS)
    if met_f is not None:
        zmet = reg[met_f][keep].to("Zsun").d
    else:
        zmet = np.full(keep.sum(), float(sources_cfg.get("default_metallicity_zsun", 0.3)))
        log.info("%s: no metallicity field; using %.2f Zsun", snapshot_path, zmet[0])
    vel = np.stack([reg[(ptype, f"particle_velocity_{a}")][keep].to("km/s").d for a in "xyz"])
    d_kpc, mass, kt = d_kpc[keep], mass[keep], kt[keep]
    dx = side_kpc / n
    idx = np.clip(np.floor((d_kpc + half) / dx).astype(np.int64), 0, n - 1)
    flat = np.ravel_multi_index(idx.T, (n, n, n))
    msum = np.bincount(flat, weights=mass, minlength=n**3)

    def mw(values):
        acc = np.bincount(flat, weights=mass * values, minlength=n**3)
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(msum > 0, acc / msum, 0.0).reshape(n, n, n)

    from .analytic import _MSUN_PER_KPC3_IN_G_CM3

    rho = (msum / dx**3).reshape(n, n, n) * _MSUN_PER_KPC3_IN_G_CM3
    z = float(row["redshift"]) if "redshift" in keys else float(ds.current_redshift)
    attrs = {"redshift": z, "m500c_msun": float(row["m500c"]), "r500c_kpc": r500,
             "cluster_id": cid, "halo_id": halo_id, "source_kind": "simulation",
             "snapshot": str(snapshot_path), "n_particles": int(mass.size),
             "hot_gas_mass_msun": float(mass.sum()), "deposit": "nearest_grid_point"}
    log.info("halo %d: %d hot gas particles, %.3g Msun deposited on %d^3 cells", halo_id,
             mass.size, mass.sum(), n)
    return {"density": rho, "temperature": mw(kt), "metallicity": mw(zmet),
            "velocity_x": mw(vel[0]), "velocity_y": mw(vel[1]), "velocity_z": mw(vel[2]),
            "bbox_kpc": np.array([[-half, half]] * 3), "point_sources": draw_agn_empty(),
            "attrs": attrs}
