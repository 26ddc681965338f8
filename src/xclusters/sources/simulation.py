"""Simulation cutouts (``sources.kind: simulation``): the hot gas of a snapshot around a halo.

Around the halo centre (``x_c, y_c, z_c``, comoving kpc/h as in the snapshot), refined by a
shrinking sphere on the total matter (``sources.recentre``, :mod:`xclusters.sources.centre`;
the shift is logged and recorded), a cube of side ``sources.box_r500c`` x R500c (physical),
capped at the largest instrument field (:func:`xclusters.sources.refine.cutout_side_kpc`), is
cut from a yt-loadable particle snapshot (Gadget, AREPO, GIZMO, OWLS/EAGLE, ...). Only hot,
non-star-forming gas is kept: kT > ``sources.min_kT_keV`` (0.1 keV) and zero star-formation
rate (paper 004 sec. 2.1.2).

``sources.deposit: native`` (default) keeps the particles (SPH particles, or moving-mesh cells
with their volumes) at the snapshot's own resolution and pyXSIM uses them directly
(:mod:`xclusters.sources.particles`); for grid and AMR codes (Enzo, RAMSES, ...) it keeps the
snapshot's cells as nested grids (:mod:`xclusters.sources.mesh`). The other values put
particles on the uniform grid of ``source.h5`` (recorded as ``attrs["deposit_method"]``):

``sph_kernel`` (``auto`` when the gas has smoothing lengths)
    For an SPH particle type of the dataset with smoothing lengths (Gadget ``SmoothingLength``;
    the k-d-tree lengths yt writes for Gadget files without them; yt's cell-volume lengths for
    AREPO cells), every hot particle is spread with yt's SPH kernel (the dataset's
    ``kernel_name``, cubic spline by default; ``pixelize_sph_kernel_arbitrary_grid``, the routine
    behind ``ds.arbitrary_grid`` for SPH data). A cell gets the SPH density
    sum_j m_j W(|x_cell - x_j|, h_j) at its centre (no Shepard normalisation, so the result
    does not depend on the particles' own density field); temperature, metallicity and velocity
    are mass-weighted, sum_j m_j W Q_j / sum_j m_j W. Particles just outside the cube
    contribute through their kernels.

    The kernel is sampled at cell centres, so a particle with h below the cell size deposits
    a mass that scatters around m_j (zero or several times m_j) and cuspy cores lose mass.
    Smoothing lengths are therefore raised to :data:`SPH_MIN_SMOOTHING_CELLS` cells: the grid
    cannot resolve smaller scales anyway, and the deposited mass of one particle then scatters
    by 4 % instead of 50 % (h = 1 cell). ``deposited_gas_mass_msun`` and
    ``sph_floored_fraction`` in the attrs record the outcome.

    ``ds.arbitrary_grid`` itself is not used: it does work on a yt particle filter of the gas
    type (yt adds the filtered type to the SPH types), but it samples the kernel with the raw
    smoothing lengths, which lost 3-8 % of the hot gas mass on a tiny test halo (more in cuspy
    cores), and it cannot floor them without overriding yt's ``smoothing_length`` field.
``nearest_grid_point`` (fallback without smoothing lengths)
    Density = sum of the masses of the hot particles in a cell / cell volume (exactly mass
    conserving); temperature, metallicity and velocity mass-weighted.

Cells without hot gas get zero density (and kT 0), so pyXSIM ignores them. Positions are
wrapped periodically around the halo centre before depositing.
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from ..paths import safe_id
from ..settings import SourcesSettings
from .analytic import _MSUN_PER_KPC3_IN_G_CM3, draw_agn_empty
from .particles import METAL_FIELDS, SFR_FIELDS

__all__ = ["build_simulation_source", "SimulationSourceError", "GAS_TYPE_CANDIDATES",
           "DEPOSIT_METHODS", "RECENTRE_METHODS", "SPH_MIN_SMOOTHING_CELLS",
           "SPH_MASS_WARN_FRACTION",
           "sph_smoothing_source"]

log = logging.getLogger("xclusters.sources")

GAS_TYPE_CANDIDATES = ("PartType0", "Gas", "gas")
#: ``sources.deposit`` values: ``native`` keeps the particles for pyXSIM; the others grid them
#: (``auto`` uses the SPH kernel when smoothing lengths exist)
DEPOSIT_METHODS = ("native", "auto", "sph_kernel", "nearest_grid_point")
#: ``sources.recentre`` values
RECENTRE_METHODS = ("shrinking_sphere", "none")
#: floor of the SPH smoothing length (kernel support radius) in grid cells. Sampling yt's cubic
#: kernel at cell centres, one particle's deposited mass / m_j has a scatter of 49 % for
#: h = 1 cell, 17 % for 1.25, 3.6 % for 1.5 and 0.07 % for 2 cells (2000 random positions each,
#: measured with yt 4's pixelize_sph_kernel_arbitrary_grid); 1.5 keeps the smoothing close to
#: the grid scale at a per-particle mass error of a few per cent (unbiased on average)
SPH_MIN_SMOOTHING_CELLS = 1.5
#: relative difference between SPH-deposited and particle hot-gas mass that triggers a warning
#: (kernels carrying mass across the cube faces)
SPH_MASS_WARN_FRACTION = 0.1


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


def sph_smoothing_source(ds, ptype: str) -> str | None:
    """Where the smoothing lengths of ``ptype`` come from, or None when there are none.

    Parameters
    ----------
    ds : yt Dataset
        Loaded snapshot (index built).
    ptype : str
        Gas particle type.

    Returns
    -------
    str or None
        ``"snapshot"`` (on disk), ``"yt_generated"`` (yt's k-d tree estimate for Gadget files
        without ``SmoothingLength``), ``"arepo_cell_volume"`` (yt's lengths for AREPO cells), or
        None when ``ptype`` is not an SPH type of the dataset or lacks smoothing length or
        density fields.
    """
    fields = set(ds.field_list) | set(ds.derived_field_list)
    if ptype not in getattr(ds, "_sph_ptypes", ()):
        return None
    if (ptype, "smoothing_length") not in fields or (ptype, "density") not in fields:
        return None
    if type(ds).__name__.lower().startswith("arepo"):
        return "arepo_cell_volume"
    if getattr(ds, "gen_hsmls", False):
        return "yt_generated"
    return "snapshot"


def _deposit_ngp(d_kpc: np.ndarray, mass_msun: np.ndarray, values: Mapping[str, np.ndarray],
                 n: int, side_kpc: float) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Nearest-grid-point deposit: density [g/cm^3] and mass-weighted ``values``."""
    half = 0.5 * side_kpc
    dx = side_kpc / n
    idx = np.clip(np.floor((d_kpc + half) / dx).astype(np.int64), 0, n - 1)
    flat = np.ravel_multi_index(idx.T, (n, n, n))
    msum = np.bincount(flat, weights=mass_msun, minlength=n**3)
    out = {}
    for name, v in values.items():
        acc = np.bincount(flat, weights=mass_msun * v, minlength=n**3)
        with np.errstate(invalid="ignore", divide="ignore"):
            out[name] = np.where(msum > 0, acc / msum, 0.0).reshape(n, n, n)
    rho = (msum / dx**3).reshape(n, n, n) * _MSUN_PER_KPC3_IN_G_CM3
    return rho, out


def _deposit_sph(d_kpc: np.ndarray, h_kpc: np.ndarray, mass_msun: np.ndarray,
                 values: Mapping[str, np.ndarray], n: int, side_kpc: float,
                 kernel_name: str = "cubic") -> tuple[np.ndarray, dict[str, np.ndarray], float]:
    """SPH-kernel deposit with yt's kernel: density [g/cm^3] and mass-weighted ``values``.

    Parameters
    ----------
    d_kpc : array (N, 3)
        Particle offsets from the cube centre [physical kpc], periodically wrapped.
    h_kpc : array (N,)
        Smoothing lengths (kernel support radius, yt/Gadget convention) [physical kpc].
    mass_msun : array (N,)
        Particle masses [Msun].
    values : mapping of name -> array (N,)
        Quantities to mass-weight (kT, metallicity, velocities).
    n : int
        Cells per side.
    side_kpc : float
        Cube side [physical kpc].
    kernel_name : str
        yt kernel (the dataset's ``kernel_name``).

    Returns
    -------
    rho : array (n, n, n)
        Density [g/cm^3]: sum_j m_j W(|x_cell - x_j|, h_eff_j) at the cell centres.
    weighted : dict
        Mass-weighted ``values`` (0 where rho = 0).
    h_floor_fraction : float
        Fraction of particles whose smoothing length was raised to the floor.
    """
    from yt.utilities.lib.pixelization_routines import pixelize_sph_kernel_arbitrary_grid

    half = 0.5 * side_kpc
    dx = side_kpc / n
    h_floor = SPH_MIN_SMOOTHING_CELLS * dx
    h_eff = np.maximum(h_kpc, h_floor).astype(np.float64)
    bounds = np.array([-half, half, -half, half, -half, half], dtype=np.float64)
    px, py, pz = (np.ascontiguousarray(d_kpc[:, k], dtype=np.float64) for k in range(3))
    m = np.ascontiguousarray(mass_msun, dtype=np.float64)
    ones = np.ones_like(m)

    def kernel_sum(quantity: np.ndarray) -> np.ndarray:
        # the routine adds m_j / rho_j / h_j^3 W(q) Q_j at every cell centre; with rho_j = 1
        # this is sum_j m_j W Q_j / h_j^3 [Msun/kpc^3 x Q]. Offsets are already wrapped.
        buff = np.zeros((n, n, n), dtype=np.float64)
        pixelize_sph_kernel_arbitrary_grid(buff, px, py, pz, h_eff, m, ones,
                                           np.ascontiguousarray(quantity, dtype=np.float64),
                                           bounds, kernel_name=kernel_name,
                                           check_period=False, period=None)
        return buff

    msum = kernel_sum(ones)
    filled = msum > 0
    out = {}
    for name, v in values.items():
        acc = kernel_sum(v)
        with np.errstate(invalid="ignore", divide="ignore"):
            out[name] = np.where(filled, acc / np.where(filled, msum, 1.0), 0.0)
    return msum * _MSUN_PER_KPC3_IN_G_CM3, out, float(np.mean(h_kpc < h_floor))


def build_simulation_source(row: Mapping[str, Any],
                            sources_cfg: SourcesSettings | Mapping[str, Any],
                            snapshot_path: str | Path, seed: int,
                            instruments_cfg: Mapping[str, Any] | None = None,
                            memory_mb: float | None = None,
                            observed_redshift: float | None = None) -> dict[str, Any]:
    """Cut the hot gas around one halo out of a snapshot (particles, or on a uniform grid).

    Parameters
    ----------
    row : mapping
        Sample row with ``halo_id``, ``m500c`` [Msun], ``r500c`` [kpc, physical],
        ``redshift``, ``x_c``, ``y_c``, ``z_c`` [comoving kpc/h].
    sources_cfg : SourcesSettings or mapping
        :class:`xclusters.settings.SourcesSettings` (or a validated config / its ``sources``
        section): ``grid_cells``, ``box_r500c``, ``min_kT_keV``,
        ``default_metallicity_zsun``, ``deposit`` (one of :data:`DEPOSIT_METHODS`: ``native``,
        the particles themselves; ``auto``, SPH kernel on the grid when the gas has smoothing
        lengths, else nearest grid point) and ``recentre`` (:data:`RECENTRE_METHODS`).
    snapshot_path : str or Path
        Snapshot file that ``yt.load`` reads.
    seed : int
        Run seed (unused: the cutout is deterministic; kept for a uniform signature).
    instruments_cfg : mapping, optional
        The ``instruments`` section: caps the cutout at the largest field.
    memory_mb : float, optional
        ``parallel.memory_per_worker_mb``: a larger native cutout is refused, naming the halo.
    observed_redshift : float, optional
        Redshift the cutout is observed at (``instruments.chandra_acisi.fixed_redshift``):
        sizes the cutout and the mesh refinement; default the row's redshift.

    Returns
    -------
    dict
        ``native``: ``particles`` (:data:`xclusters.sources.io.PARTICLE_FIELDS`),
        ``bbox_kpc``, ``point_sources`` (empty), ``attrs``. Otherwise the layout of
        :func:`xclusters.sources.build_analytic_source` (no point sources). ``attrs`` record
        ``deposit_method``, ``n_particles`` and ``hot_gas_mass_msun`` (hot particles with
        centres in the cube), ``deposited_gas_mass_msun`` (grids), ``centre_ckpc_h``,
        ``catalogue_centre_ckpc_h`` and ``centre_shift_kpc``.
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
    settings = SourcesSettings.from_config(sources_cfg)
    method = settings.deposit
    if method not in DEPOSIT_METHODS:
        raise SimulationSourceError(f"sources.deposit = {method!r}; use one of "
                                    f"{', '.join(DEPOSIT_METHODS)}")
    snapshot_path = Path(snapshot_path)
    if not snapshot_path.exists():
        raise SimulationSourceError(f"snapshot {snapshot_path} not found (catalog.snapshot)")
    recentre = settings.recentre
    if recentre not in RECENTRE_METHODS:
        raise SimulationSourceError(f"sources.recentre = {recentre!r}; use one of "
                                    f"{', '.join(RECENTRE_METHODS)}")
    ds = yt.load(str(snapshot_path))
    from .mesh import is_mesh_dataset

    mesh = is_mesh_dataset(ds)
    if mesh and method != "native":
        raise SimulationSourceError(
            f"{snapshot_path}: a grid/AMR snapshot ({type(ds).__name__}) has no gas particles "
            f"to deposit; sources.deposit = {method!r} needs particles, use native")
    ptype = None if mesh else _gas_type(ds)
    r500 = float(row["r500c"])
    label = f"halo {halo_id} ({cid})"
    z = float(row["redshift"]) if "redshift" in keys else float(ds.current_redshift)
    centre_cat = centre_v.copy()
    shift_kpc = 0.0
    if recentre == "shrinking_sphere":
        from .particles import refine_centre

        centre_v, shift_kpc, _ = refine_centre(ds, centre_v, r500, label)
    from .refine import cutout_side_kpc

    z_obs = z if observed_redshift is None else float(observed_redshift)
    side_kpc = cutout_side_kpc(r500, z_obs, settings, instruments_cfg)
    half = 0.5 * side_kpc
    common = {"redshift": z, "m500c_msun": float(row["m500c"]), "r500c_kpc": r500,
              "cluster_id": cid, "halo_id": halo_id, "source_kind": "simulation",
              "snapshot": str(snapshot_path), "min_kT_keV": settings.min_kT_keV,
              "centre_ckpc_h": centre_v.tolist(),
              "catalogue_centre_ckpc_h": centre_cat.tolist(), "centre_shift_kpc": shift_kpc,
              "recentre": recentre, "cutout_side_kpc": side_kpc}
    if mesh:
        from .mesh import mesh_cutout
        from .refine import finest_pixel_kpc

        pixel = finest_pixel_kpc(instruments_cfg, z_obs, settings) if instruments_cfg else None
        out = mesh_cutout(ds, centre_v, side_kpc, r500, settings, label, pixel_kpc=pixel,
                          memory_mb=memory_mb)
        out["attrs"] = dict(common, deposit_method="native_mesh", **out["attrs"])
        out["point_sources"] = draw_agn_empty()
        return out
    if method == "native":
        from .particles import particle_cutout

        particles, extra = particle_cutout(ds, ptype, centre_v, side_kpc, settings, label,
                                           memory_mb=memory_mb)
        attrs = dict(common, deposit_method="native", **extra)
        log.info("%s: %d hot gas particles (%.3g Msun) at native resolution, median "
                 "smoothing length %.1f kpc", label, extra["n_particles"],
                 extra["hot_gas_mass_msun"], extra["median_smoothing_length_kpc"])
        return {"particles": particles, "bbox_kpc": np.array([[-half, half]] * 3),
                "point_sources": draw_agn_empty(), "attrs": attrs}
    n = settings.grid_cells
    min_kt = settings.min_kT_keV
    default_z = settings.default_metallicity_zsun
    dx = side_kpc / n
    hsml_source = sph_smoothing_source(ds, ptype)
    if method == "auto":
        method = "sph_kernel" if hsml_source is not None else "nearest_grid_point"
        if hsml_source is None:
            log.info("%s: %s has no smoothing lengths; depositing by nearest grid point",
                     snapshot_path, ptype)
    elif method == "sph_kernel" and hsml_source is None:
        raise SimulationSourceError(
            f"{snapshot_path}: sources.deposit = sph_kernel but {ptype} has no smoothing "
            "lengths (or density) in yt; use auto or nearest_grid_point")
    centre = ds.arr(centre_v, "kpccm/h")
    # read a slightly larger comoving cube (for SPH also every particle whose floored kernel
    # reaches into the cube; yt adds those whose own kernel does); wrap positions periodically
    pad_kpc = SPH_MIN_SMOOTHING_CELLS * dx if method == "sph_kernel" else 0.0
    half_code = ds.quan(max(half * 1.01, half + pad_kpc), "kpc").to("code_length")
    reg = ds.box(centre - half_code, centre + half_code)
    pos = reg[(ptype, "particle_position")].to("kpccm/h").d
    width = ds.domain_width.to("kpccm/h").d
    d = pos - centre_v
    d -= width * np.round(d / width)
    d_kpc = ds.arr(d, "kpccm/h").to("kpc").d
    mass = reg[(ptype, "particle_mass")].to("Msun").d
    kt = reg[(ptype, "temperature")].to("keV", "thermal").d
    hot = kt > min_kt
    sfr_f = _first(ds, ptype, SFR_FIELDS)
    if sfr_f is not None:
        hot &= reg[sfr_f].d <= 0
    else:
        log.warning("%s: no star-formation-rate field; star-forming gas cannot be excluded",
                    snapshot_path)
    keep = hot & np.all(np.abs(d_kpc) < half, axis=1)
    if not keep.any():
        raise SimulationSourceError(
            f"halo {halo_id} ({cid}): the cutout of {snapshot_path} (side {side_kpc:.0f} kpc "
            f"around {centre_v.tolist()} kpccm/h) holds no emitting gas (kT > "
            f"{min_kt} keV, not star-forming); check the centre "
            "units (comoving kpc/h) or drop the halo from the sample")
    # SPH: every hot particle read contributes through its kernel; NGP: those in the cube
    use = hot if method == "sph_kernel" else keep
    met_f = _first(ds, ptype, METAL_FIELDS)
    if met_f is not None:
        zmet = reg[met_f][use].to("Zsun").d
    else:
        zmet = np.full(use.sum(), default_z)
        log.info("%s: no metallicity field; using %.2f Zsun", snapshot_path, default_z)
    values = {"temperature": kt[use], "metallicity": zmet}
    for a in "xyz":
        values[f"velocity_{a}"] = reg[(ptype, f"particle_velocity_{a}")][use].to("km/s").d
    hot_mass = float(mass[keep].sum())
    extra: dict[str, Any] = {}
    if method == "sph_kernel":
        h_kpc = reg[(ptype, "smoothing_length")][use].to("kpc").d
        kernel = str(getattr(ds, "kernel_name", "cubic"))
        rho, q, floored = _deposit_sph(d_kpc[use], h_kpc, mass[use], values, n, side_kpc,
                                       kernel)
        extra = {"smoothing_length_source": hsml_source, "sph_kernel": kernel,
                 "sph_min_smoothing_cells": SPH_MIN_SMOOTHING_CELLS,
                 "sph_floored_fraction": floored,
                 "median_smoothing_length_over_cell": float(np.median(h_kpc[keep[use]]) / dx)}
    else:
        rho, q = _deposit_ngp(d_kpc[use], mass[use], values, n, side_kpc)
    deposited = float(rho.sum() * dx**3 / _MSUN_PER_KPC3_IN_G_CM3)
    attrs = dict(common, n_particles=int(keep.sum()), hot_gas_mass_msun=hot_mass,
                 deposited_gas_mass_msun=deposited, deposit_method=method)
    attrs.update(extra)
    if method == "sph_kernel" and abs(deposited / hot_mass - 1.0) > SPH_MASS_WARN_FRACTION:
        log.warning(
            "halo %d: SPH-deposited hot gas mass %.3g Msun differs from the %.3g Msun of hot "
            "particles in the cube by %+.0f%% (kernels crossing the cube faces carry mass in "
            "or out); a larger sources.box_r500c or sources.deposit: nearest_grid_point "
            "keeps the particle mass exactly", halo_id, deposited, hot_mass,
            100 * (deposited / hot_mass - 1.0))
    log.info("halo %d: %d hot gas particles (%.3g Msun), %.3g Msun deposited on %d^3 cells "
             "(%s)", halo_id, int(keep.sum()), hot_mass, deposited, n, method)
    return {"density": rho, "temperature": q["temperature"], "metallicity": q["metallicity"],
            "velocity_x": q["velocity_x"], "velocity_y": q["velocity_y"],
            "velocity_z": q["velocity_z"],
            "bbox_kpc": np.array([[-half, half]] * 3), "point_sources": draw_agn_empty(),
            "attrs": attrs}
