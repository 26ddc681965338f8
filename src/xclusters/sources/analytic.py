"""Analytic ICM model on a uniform grid: the offline default source (``sources.kind: analytic``).

A main halo (V06 density with mass-dependent core radii after Croston et al. 2008, V06
temperature shape scaled by the V09 M-T relation, metallicity gradient, triaxial with random
orientation, gas mass f_gas(M500c) M500c within R500c), an optional infalling subcluster, a few
gas clumps and AGN point sources. Every distribution
parameter lives in the ``sources:`` config block with its literature source.
"""
from __future__ import annotations

import logging
from typing import Any, Mapping

import astropy.constants as const
import astropy.units as u
import numpy as np

from ..catalogs.schema import r500c_kpc_from_m500c
from ..paths import safe_id
from ..seeds import rng_for
from .profiles import (fgas_500, gas_mass_shape, kT_from_m500c, metallicity_profile,
                       reference_cosmology, v06_density_shape, v06_temperature_shape)

__all__ = ["build_analytic_source", "random_rotation", "draw_agn", "core_radius_factor"]

log = logging.getLogger("xclusters.sources")

_MSUN_PER_KPC3_IN_G_CM3 = (1.0 * u.Msun / u.kpc**3).to_value(u.g / u.cm**3)
_G_KPC_KMS2_PER_MSUN = const.G.to_value(u.kpc * u.km**2 / u.s**2 / u.Msun)


def _uniform(rng: np.random.Generator, bounds) -> float:
    lo, hi = (float(b) for b in bounds)
    return float(lo if hi == lo else rng.uniform(lo, hi))


def random_rotation(rng: np.random.Generator) -> np.ndarray:
    """A rotation matrix uniform on SO(3) (QR of a Gaussian matrix, sign-fixed)."""
    q, r = np.linalg.qr(rng.standard_normal((3, 3)))
    q = q @ np.diag(np.sign(np.diag(r)))
    if np.linalg.det(q) < 0:
        q[:, 0] = -q[:, 0]
    return q


def _draw_density_params(rng, cfg: Mapping[str, Any], cool_core: bool) -> dict[str, float]:
    block = cfg["density_cool_core" if cool_core else "density_non_cool_core"]
    return {k: _uniform(rng, block[k]) for k in
            ("rc", "alpha", "beta", "rs", "epsilon", "n02", "rc2", "beta2")}


def core_radius_factor(m500c: float, cfg: Mapping[str, Any]) -> float:
    """Factor on the drawn core radii ``rc``: ``(M500c / pivot_msun)^-slope``.

    ``sources.core_radius_mass_scaling`` (``slope``, ``pivot_msun``); ``slope: 0`` keeps the
    drawn ``rc`` (self-similar shapes). A positive slope gives groups
    larger cores, i.e. lower densities at intermediate radii for the same gas mass within
    R500c, as observed (Croston et al. 2008, A&A 487, 431: the scaled density at 0.3 R500
    grows as T^1/2, while near R500 the profiles of kT > 3 keV clusters are self-similar).
    """
    block = cfg["core_radius_mass_scaling"]
    slope = float(block["slope"])
    if slope == 0.0:
        return 1.0
    return float((m500c / float(block["pivot_msun"])) ** (-slope))


def _halo_component(m500c: float, redshift: float, cfg, rng, cool_core: bool) -> dict:
    """Parameters of one V06 halo: R500c, density shape, normalisation, kT."""
    cosmo = reference_cosmology(cfg)
    r500 = float(r500c_kpc_from_m500c(np.array([m500c]), np.array([redshift]), cosmo)[0])
    p = _draw_density_params(rng, cfg, cool_core)
    p["rc"] *= core_radius_factor(m500c, cfg)
    mgas = fgas_500(m500c, cfg) * m500c
    rho0 = mgas / (gas_mass_shape(p) * r500**3)  # Msun/kpc^3 per unit shape
    return {"r500": r500, "p": p, "rho0": rho0, "kT": kT_from_m500c(m500c, redshift, cfg),
            "cool_core": cool_core, "mgas": mgas, "m500c": m500c}


def draw_agn(rng: np.random.Generator, cfg: Mapping[str, Any], half_side_kpc: float) -> dict:
    """AGN point sources uniform in the box, luminosities from a double power-law XLF.

    dPhi/dlogL ∝ 1 / ((L/L*)^g1 + (L/L*)^g2) (Hasinger et al. 2005 form), sampled by
    inverse-CDF on a fine log L grid between ``sources.agn_log_lum_range``.
    """
    n = int(rng.poisson(float(cfg["agn_mean_number"])))
    g1, g2 = (float(v) for v in cfg["agn_xlf_slopes"])
    lbreak = float(cfg["agn_xlf_log_break"])
    lo, hi = (float(v) for v in cfg["agn_log_lum_range"])
    logl = np.linspace(lo, hi, 512)
    pdf = 1.0 / (10 ** (g1 * (logl - lbreak)) + 10 ** (g2 * (logl - lbreak)))
    cdf = np.concatenate([[0.0], np.cumsum(0.5 * (pdf[1:] + pdf[:-1]) * np.diff(logl))])
    cdf /= cdf[-1]
    lum = 10 ** np.interp(rng.uniform(size=n), cdf, logl)
    pos = rng.uniform(-half_side_kpc, half_side_kpc, size=(3, n))
    return {"x_kpc": pos[0], "y_kpc": pos[1], "z_kpc": pos[2], "luminosity_erg_s": lum,
            "photon_index": np.full(n, float(cfg["agn_photon_index"]))}


def build_analytic_source(row: Mapping[str, Any], sources_cfg: Mapping[str, Any],
                          seed: int, finest_pixel_kpc: float | None = None) -> dict[str, Any]:
    """Build the gas of one cluster on a uniform grid centred on the halo.

    Parameters
    ----------
    row : mapping
        A sample row: ``halo_id``, ``m500c`` [Msun], ``redshift``, optional ``r500c``
        [kpc] and ``cluster_id``.
    sources_cfg : mapping
        The ``sources:`` config block.
    seed : int
        The run seed; draws use ``rng_for(seed, halo_id, "sources")``.
    finest_pixel_kpc : float, optional
        The finest image pixel the cluster is observed with, in physical kpc at its
        redshift (:func:`xclusters.sources.refine.finest_pixel_kpc`). When given, nested
        grids refine the core (``sources.core_refinement``) until the cells are no larger
        than this pixel (``levels`` in the result; :mod:`xclusters.sources.refine`).

    Returns
    -------
    dict
        ``density`` [g/cm^3], ``temperature`` [keV], ``metallicity`` [Zsun],
        ``velocity_x/y/z`` [km/s] (N, N, N) float64 arrays; ``bbox_kpc`` (3, 2);
        ``point_sources`` (dict of arrays, see :func:`draw_agn`); ``attrs`` (redshift,
        m500c_msun, r500c_kpc, cluster_id and the drawn physical parameters).
    """
    cfg = sources_cfg
    halo_id = int(row["halo_id"])
    m500 = float(row["m500c"])
    z = float(row["redshift"])
    rng = rng_for(seed, halo_id, "sources")
    cool_core = bool(rng.uniform() < float(cfg["cool_core_fraction"]))
    main = _halo_component(m500, z, cfg, rng, cool_core)
    r500 = float(row["r500c"]) if "r500c" in _keys(row) and np.isfinite(row["r500c"]) \
        else main["r500"]
    if abs(r500 / main["r500"] - 1) > 0.05:
        log.info("halo %d: catalogue R500c %.0f kpc differs from the reference-cosmology value "
                 "%.0f kpc; using the catalogue value", halo_id, r500, main["r500"])
        main["rho0"] = main["mgas"] / (gas_mass_shape(main["p"]) * r500**3)
        main["r500"] = r500
    n = int(cfg["grid_cells"])
    side = float(cfg["box_r500c"]) * r500
    half = 0.5 * side
    dx = side / n
    centres = -half + dx * (np.arange(n) + 0.5)
    ns = int(cfg["subsample"])  # >= 1 (schema)

    # Main halo geometry: triaxial, volume-preserving axes, random orientation.
    q = _uniform(rng, cfg["axis_ratio_b_a"])
    s = q * _uniform(rng, cfg["axis_ratio_c_b"])
    axes = np.array([1.0, q, s]) / (q * s) ** (1.0 / 3.0)
    rot = random_rotation(rng)

    comps = [dict(main, centre=np.zeros(3), vel=np.zeros(3), axes=axes, rot=rot, kind="main")]
    merger = bool(rng.uniform() < float(cfg["merger_probability"]))
    if merger:
        msub = m500 * _uniform(rng, cfg["merger_mass_ratio"])
        subc = _halo_component(msub, z, cfg, rng, cool_core=False)
        d = _uniform(rng, cfg["merger_distance_r500c"]) * r500
        direction = _unit(rng)
        v = np.sqrt(2.0 * _G_KPC_KMS2_PER_MSUN * (m500 + msub) / d)  # free fall from infinity
        comps.append(dict(subc, centre=d * direction, vel=-v * direction, axes=np.ones(3),
                          rot=np.eye(3), kind="subcluster"))
    n_clumps = int(rng.poisson(float(cfg["clumps_mean_number"])))
    for _ in range(n_clumps):
        mg = main["mgas"] * _uniform(rng, cfg["clump_gas_fraction"])
        sig = _uniform(rng, cfg["clump_sigma_r500c"]) * r500
        d = _uniform(rng, cfg["clump_distance_r500c"]) * r500
        direction = _unit(rng)
        mtot = mg / fgas_500(m500, cfg)
        v = np.sqrt(2.0 * _G_KPC_KMS2_PER_MSUN * m500 / d)
        comps.append({"kind": "clump", "mgas": mg, "sigma": sig, "centre": d * direction,
                      "vel": -v * direction, "kT": kT_from_m500c(mtot, z, cfg)})

    mc = cfg["metallicity"]
    fields = _fields_on_grid(comps, main, mc, centres, centres, centres, dx, ns)
    levels = []
    if finest_pixel_kpc is not None:
        from .refine import core_patches

        for lev in core_patches(n, side, r500, float(finest_pixel_kpc), cfg):
            axes_c = [lo + lev["dx_kpc"] * (np.arange(m) + 0.5)
                      for lo, m in zip(lev["left_edge_kpc"], lev["dimensions"])]
            lev.update(_fields_on_grid(comps, main, mc, *axes_c, lev["dx_kpc"], ns))
            levels.append(lev)
    bbox = np.array([[-half, half]] * 3)
    ps = draw_agn(rng, cfg, half) if cfg["include_agn"] else draw_agn_empty()
    cid = str(row["cluster_id"]) if "cluster_id" in _keys(row) else safe_id(halo_id)
    attrs = {"redshift": z, "m500c_msun": m500, "r500c_kpc": r500, "cluster_id": cid,
             "halo_id": halo_id, "source_kind": "analytic", "cool_core": int(cool_core),
             "kT500_keV": main["kT"], "fgas500": main["mgas"] / m500,
             "axis_ratios": [1.0, q, s], "merger": int(merger),
             "n_clumps": n_clumps, "n_agn": int(ps["luminosity_erg_s"].size),
             "density_params": ",".join(f"{k}={v:.4g}" for k, v in main["p"].items())}
    if levels:
        attrs.update(n_levels=len(levels), finest_cell_kpc=levels[-1]["dx_kpc"],
                     finest_pixel_kpc=float(finest_pixel_kpc),
                     refined_cells=int(sum(np.prod(lev["dimensions"]) for lev in levels)))
    log.info("halo %d: %s, kT500 %.2f keV, merger %s, %d clumps, %d AGN, %d core levels",
             halo_id, "cool core" if cool_core else "non-cool core", main["kT"], merger,
             n_clumps, attrs["n_agn"], len(levels))
    out = dict(fields, bbox_kpc=bbox, point_sources=ps, attrs=attrs)
    if levels:
        out["levels"] = levels
    return out


def _fields_on_grid(comps, main, mc, cx, cy, cz, dx: float, ns: int) -> dict[str, np.ndarray]:
    """Gas fields of all components on the grid of cell centres ``cx x cy x cz`` [kpc].

    Density [g/cm^3] is the mean over ``ns^3`` sub-points per cell of side ``dx`` (mass
    conserving on coarse grids); temperature [keV], metallicity [Zsun] and velocity [km/s]
    are density-weighted over the components at the cell centres.
    """
    sub = (np.arange(ns) + 0.5) / ns - 0.5
    gx, gy, gz = np.meshgrid(cx, cy, cz, indexing="ij")
    rho = np.zeros(gx.shape)
    rho_parts = []
    for c in comps:
        acc = np.zeros(gx.shape)
        for ox in sub:
            for oy in sub:
                for oz in sub:
                    acc += _component_density(c, gx + ox * dx, gy + oy * dx, gz + oz * dx)
        part = acc / ns**3
        rho_parts.append(part)
        rho += part
    kt = np.zeros_like(rho)
    zmet = np.zeros_like(rho)
    vel = np.zeros((3,) + rho.shape)
    for c, part in zip(comps, rho_parts):
        if c["kind"] == "clump":
            t_c = np.full_like(rho, c["kT"])
            z_c = np.full_like(rho, float(mc["outer"]))
        else:
            x = _ell_radius(c, gx, gy, gz) / c["r500"]
            t_c = c["kT"] * v06_temperature_shape(x, c["cool_core"])
            zc = mc["center_cool_core"] if c["cool_core"] else mc["center_non_cool_core"]
            z_c = metallicity_profile(x, float(zc), float(mc["outer"]), float(mc["scale_r500c"]))
        kt += part * t_c
        zmet += part * z_c
        vel += part[None] * np.asarray(c["vel"])[:, None, None, None]
    with np.errstate(invalid="ignore", divide="ignore"):
        kt = np.where(rho > 0, kt / rho, main["kT"])
        zmet = np.where(rho > 0, zmet / rho, float(mc["outer"]))
        vel = np.where(rho[None] > 0, vel / rho[None], 0.0)
    return {"density": rho * _MSUN_PER_KPC3_IN_G_CM3, "temperature": kt, "metallicity": zmet,
            "velocity_x": vel[0], "velocity_y": vel[1], "velocity_z": vel[2]}


def draw_agn_empty() -> dict:
    """An empty point-source table."""
    e = np.zeros(0)
    return {"x_kpc": e, "y_kpc": e, "z_kpc": e, "luminosity_erg_s": e, "photon_index": e}


def _keys(row) -> list[str]:
    if hasattr(row, "colnames"):
        return list(row.colnames)
    return list(row.keys())


def _unit(rng: np.random.Generator) -> np.ndarray:
    v = rng.standard_normal(3)
    return v / np.linalg.norm(v)


def _ell_radius(c: Mapping[str, Any], x, y, z) -> np.ndarray:
    """Ellipsoidal radius (kpc) of points relative to a component's centre and axes."""
    dx, dy, dz = x - c["centre"][0], y - c["centre"][1], z - c["centre"][2]
    r = c["rot"]
    # body-frame coordinates: rot columns are the body axes in the box frame
    bx = r[0, 0] * dx + r[1, 0] * dy + r[2, 0] * dz
    by = r[0, 1] * dx + r[1, 1] * dy + r[2, 1] * dz
    bz = r[0, 2] * dx + r[1, 2] * dy + r[2, 2] * dz
    a = c["axes"]
    return np.sqrt((bx / a[0]) ** 2 + (by / a[1]) ** 2 + (bz / a[2]) ** 2)


def _component_density(c: Mapping[str, Any], x, y, z) -> np.ndarray:
    """Gas density (Msun/kpc^3) of one component at points (kpc)."""
    if c["kind"] == "clump":
        r2 = ((x - c["centre"][0]) ** 2 + (y - c["centre"][1]) ** 2
              + (z - c["centre"][2]) ** 2)
        sig = c["sigma"]
        return c["mgas"] / ((2 * np.pi) ** 1.5 * sig**3) * np.exp(-0.5 * r2 / sig**2)
    return c["rho0"] * v06_density_shape(_ell_radius(c, x, y, z) / c["r500"], c["p"])
