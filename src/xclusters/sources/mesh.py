"""Simulation cutouts of grid codes (Enzo, RAMSES, other AMR or uniform meshes read by yt).

``sources.deposit: native`` on a mesh snapshot keeps the snapshot's own cells where the image
can see them: the cube around the halo becomes nested covering grids (``ds.covering_grid``)
at the snapshot's refinement levels, written as ``source.h5`` ``/grid`` + ``/levels``
(:mod:`xclusters.sources.io`) and loaded by the photons stage with ``yt.load_amr_grids``:

* level 0: the snapshot level whose cells are closest to (not finer than)
  ``box side / sources.grid_cells``, over the whole cutout;
* finer levels inside ``sources.core_refinement.radius_r500c`` x R500c, one per snapshot
  level, until the cells are no larger than the finest image pixel
  (:func:`xclusters.sources.refine.core_patches`), never finer than the snapshot's finest
  level (``ds.max_level``).

The centre is moved to the nearest node of the level-0 lattice (at most half a cell; recorded
as ``mesh_centre_snap_kpc``) so that every level's cells are the snapshot's own. Hot gas only,
as a cut: cells with kT <= ``sources.min_kT_keV`` get zero density (pyXSIM skips them).
"""
from __future__ import annotations

import logging
import math
from typing import Any, Mapping

import numpy as np

from ..settings import SourcesSettings

__all__ = ["is_mesh_dataset", "mesh_cutout", "MESH_BYTES_PER_CELL"]

log = logging.getLogger("xclusters.sources")

#: peak memory per covering-grid cell (six float64 output fields plus yt's per-field
#: temporaries, about twice that), bytes; an estimate, not measured
MESH_BYTES_PER_CELL = 200


def is_mesh_dataset(ds) -> bool:
    """True for grid or octree (AMR) datasets, False for particle datasets."""
    from yt.geometry.particle_geometry_handler import ParticleIndex

    return not isinstance(ds.index, ParticleIndex)


def _fields(ds, cg, min_kt: float, default_z: float) -> dict[str, np.ndarray]:
    kt = cg["gas", "temperature"].to_value("keV", "thermal")
    rho = cg["gas", "density"].to_value("g/cm**3")
    hot = kt > min_kt
    fields = set(ds.derived_field_list) | set(ds.field_list)
    if ("gas", "metallicity") in fields:
        zmet = cg["gas", "metallicity"].to_value("Zsun")
    else:
        zmet = np.full(rho.shape, default_z)
    out = {"density": np.where(hot, rho, 0.0), "temperature": np.where(hot, kt, 0.0),
           "metallicity": zmet}
    for a in "xyz":
        out[f"velocity_{a}"] = cg["gas", f"velocity_{a}"].to_value("km/s")
    return out


def mesh_cutout(ds, centre_ckpc_h: np.ndarray, side_kpc: float, r500c_kpc: float,
                sources_cfg: SourcesSettings | Mapping[str, Any], label: str,
                pixel_kpc: float | None = None,
                memory_mb: float | None = None) -> dict[str, Any]:
    """Nested covering grids of the hot gas around a halo in a mesh snapshot.

    Parameters
    ----------
    ds : yt Dataset
        Grid or octree snapshot.
    centre_ckpc_h : array (3,)
        Halo centre [comoving kpc/h].
    side_kpc : float
        Cutout side [physical kpc] (rounded up to whole level-0 cells).
    r500c_kpc : float
        R500c [physical kpc].
    sources_cfg : SourcesSettings or mapping
        :class:`xclusters.settings.SourcesSettings`: ``grid_cells``, ``min_kT_keV``,
        ``default_metallicity_zsun``, ``core_refinement``.
    label : str
        ``halo <id> (<cluster id>)`` for messages.
    pixel_kpc : float, optional
        Finest image pixel [kpc]; without it, no finer levels.
    memory_mb : float, optional
        ``parallel.memory_per_worker_mb``: more cells than fit are refused, naming the halo.

    Returns
    -------
    dict
        Level-0 fields, ``levels``, ``bbox_kpc`` (halo-centred, physical kpc) and ``attrs``
        (``mesh_base_level``, ``n_levels``, ``finest_cell_kpc``, ``n_cells``,
        ``mesh_centre_snap_kpc``, ``hot_gas_mass_msun``).
    """
    from .analytic import _MSUN_PER_KPC3_IN_G_CM3
    from .refine import core_patches
    from .simulation import SimulationSourceError

    settings = SourcesSettings.from_config(sources_cfg)
    n_target = settings.grid_cells
    min_kt = settings.min_kT_keV
    default_z = settings.default_metallicity_zsun
    refine_by = int(getattr(ds, "refine_by", 2))
    if refine_by != 2:
        raise SimulationSourceError(f"{label}: {ds} refines by {refine_by}; nested source "
                                    "grids need a factor of 2 (use sources.deposit: auto)")
    dl = ds.domain_left_edge.to("code_length").d
    dx_root = (ds.domain_width / ds.domain_dimensions).to("code_length").d[0]
    kpc_per_code = float(ds.quan(1.0, "code_length").to("kpc"))
    # level 0: the coarsest snapshot level with cells <= side / grid_cells, else the finest
    want = side_kpc / n_target / kpc_per_code
    base = min(max(0, math.ceil(math.log2(dx_root / want) - 1e-9)), int(ds.max_level))
    dx0 = dx_root / 2**base
    n0 = 2 * math.ceil(side_kpc / kpc_per_code / dx0 / 2)
    from .centre import catalogue_length_unit

    c_code = ds.arr(centre_ckpc_h, catalogue_length_unit(ds)).to("code_length").d
    c_snap = dl + np.round((c_code - dl) / dx0) * dx0
    half0 = 0.5 * n0 * dx0
    n_cells = n0**3
    patches = []
    if pixel_kpc is not None:
        side0_kpc = n0 * dx0 * kpc_per_code
        patches = core_patches(n0, side0_kpc, r500c_kpc, pixel_kpc, settings)
        patches = [p for p in patches if p["level"] <= int(ds.max_level) - base]
        n_cells += sum(int(np.prod(p["dimensions"])) for p in patches)
    need_mb = n_cells * MESH_BYTES_PER_CELL / 2**20
    if memory_mb is not None and need_mb > 0.8 * float(memory_mb):
        raise SimulationSourceError(
            f"{label}: the mesh cutout holds {n_cells:,} cells and needs ~{need_mb:,.0f} MB, "
            f"more than 80% of parallel.memory_per_worker_mb = {float(memory_mb):,.0f}; raise "
            "it or lower sources.grid_cells / sources.core_refinement.max_levels")
    cg = ds.covering_grid(base, left_edge=ds.arr(c_snap - half0, "code_length"),
                          dims=[n0] * 3)
    out = _fields(ds, cg, min_kt, default_z)
    levels = []
    for p in patches:
        le_code = c_snap + p["left_edge_kpc"] / kpc_per_code
        cgl = ds.covering_grid(base + p["level"], left_edge=ds.arr(le_code, "code_length"),
                               dims=p["dimensions"])
        levels.append(dict(p, **_fields(ds, cgl, min_kt, default_z)))
    if not np.any(out["density"] > 0):
        raise SimulationSourceError(
            f"{label}: the mesh cutout of {ds} holds no gas above kT = {min_kt} keV; check "
            "the centre units (comoving kpc/h) or drop the halo from the sample")
    half_kpc = half0 * kpc_per_code
    dx0_kpc = dx0 * kpc_per_code
    snap_kpc = float(np.linalg.norm(c_snap - c_code) * kpc_per_code)
    mass = float(out["density"].sum() * dx0_kpc**3 / _MSUN_PER_KPC3_IN_G_CM3)
    attrs = {"mesh_base_level": base, "n_levels": len(levels), "n_cells": n_cells,
             "finest_cell_kpc": levels[-1]["dx_kpc"] if levels else dx0_kpc,
             "mesh_centre_snap_kpc": snap_kpc, "hot_gas_mass_msun": mass}
    if pixel_kpc is not None:
        attrs["finest_pixel_kpc"] = float(pixel_kpc)
    log.info("%s: mesh cutout, %d^3 cells of %.1f kpc (snapshot level %d) + %d core level(s) "
             "down to %.1f kpc; centre moved %.1f kpc onto the level-%d lattice", label, n0,
             dx0_kpc, base, len(levels), attrs["finest_cell_kpc"], snap_kpc, base)
    out.update(levels=levels, bbox_kpc=np.array([[-half_kpc, half_kpc]] * 3), attrs=attrs)
    if not levels:
        out.pop("levels")
    return out
