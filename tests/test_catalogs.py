"""Catalogue readers, bad-row rules, sampling (xclusters.catalogs) and safe ids (paths)."""
from __future__ import annotations

import dataclasses
import logging
from pathlib import Path

import astropy.units as u
import h5py
import numpy as np
import pytest
import yaml
from astropy.cosmology import FlatLambdaCDM
from astropy.table import Table

from xclusters.catalogs import (COLUMNS, CatalogError, bin_quotas, draw_sample, load_catalog,
                                read_sample, write_sample)
from xclusters.catalogs.schema import schema_file
from xclusters.paths import safe_id

from _xc_settings import catalog_settings
from _xc_sim_halo_files import GADGET_UNIT_MASS_G, write_gadget_fof, write_rockstar

SAMPLE_CFG = dict(n_clusters=20, log_m500c_min=13.7, log_m500c_max=15.0, z_min=0.03,
                  z_max=0.5, uniform_in_logm_z=True, n_mass_bins=5, n_z_bins=4)


@pytest.fixture(scope="module")
def lightcone():
    return load_catalog(catalog_settings(source="soxs_lightcone", on_bad_row="drop"))


def _user_table(n=50, seed=0) -> Table:
    rng = np.random.default_rng(seed)
    t = Table()
    t["halo_id"] = np.arange(100, 100 + n)
    t["m500c"] = 10 ** rng.uniform(13.5, 15.0, n) * u.Msun
    t["redshift"] = rng.uniform(0.02, 0.6, n)
    t["ra"] = rng.uniform(0, 360, n) * u.deg
    t["dec"] = rng.uniform(-60, 60, n) * u.deg
    return t


# ---------------------------------------------------------------- SOXS light cone

def test_lightcone_columns_units_and_ranges(lightcone):
    t = lightcone
    assert t.colnames == list(COLUMNS)
    assert t["m500c"].unit == u.Msun and t["r500c"].unit == u.kpc and t["ra"].unit == u.deg
    assert len(t) == 252714
    logm = np.log10(t["m500c"])
    # M500c is stored in Msun/h (h = 0.7): 3.0e12/h .. 5.92e14/h
    assert 12.6 < logm.min() < 12.7 and 14.9 < logm.max() < 14.95
    assert 0.024 < t["redshift"].min() < 0.026 and t["redshift"].max() > 3.0
    assert np.all(np.isnan(t["x_c"]))
    # R500c of a 1e14 Msun halo at z ~ 0 is ~ 700 kpc
    i = np.argmin(np.abs(logm - 14.0) + np.abs(t["redshift"] - 0.05))
    assert 600 < t["r500c"][i] < 800
    # the 10x10 deg light cone around (180, 0)
    assert 174 < t["ra"].min() and t["ra"].max() < 186 and np.abs(t["dec"]).max() < 6


# ---------------------------------------------------------------- user tables

@pytest.mark.parametrize("suffix", [".ecsv", ".fits", ".csv"])
def test_user_table_formats(tmp_path, suffix):
    t = _user_table()
    path = tmp_path / f"halos{suffix}"
    t.write(path, overwrite=True)
    out = load_catalog(catalog_settings(source="table", path=str(path), on_bad_row="error"))
    assert len(out) == len(t)
    np.testing.assert_allclose(out["m500c"], t["m500c"].value, rtol=1e-10)
    assert np.all(out["r500c"] > 0) and np.all(np.isnan(out["x_c"]))
    assert "Planck18" in out["source"][0]


def test_user_table_converts_compatible_units(tmp_path):
    t = _user_table(5)
    t["m500c"] = t["m500c"].to(u.kg)
    t["r500c"] = np.full(5, 1.0) * u.Mpc
    path = tmp_path / "halos.ecsv"
    t.write(path)
    out = load_catalog(catalog_settings(source="table", path=str(path)))
    np.testing.assert_allclose(out["m500c"], _user_table(5)["m500c"].value, rtol=1e-6)
    np.testing.assert_allclose(out["r500c"], 1000.0)


def test_missing_columns_always_error(tmp_path):
    t = _user_table()
    del t["redshift"]
    path = tmp_path / "halos.ecsv"
    t.write(path)
    with pytest.raises(CatalogError) as err:
        load_catalog(catalog_settings(source="table", path=str(path), on_bad_row="drop"))
    msg = str(err.value)
    assert "redshift" in msg and "catalog_table.schema.yaml" in msg and str(path) in msg


def test_wrong_unit_names_column_unit_and_expected(tmp_path):
    t = _user_table()
    t["m500c"] = t["m500c"].value * u.kpc
    path = tmp_path / "halos.ecsv"
    t.write(path)
    with pytest.raises(CatalogError, match=r"'m500c'.*'kpc'.*solMass"):
        load_catalog(catalog_settings(source="table", path=str(path)))


@pytest.mark.parametrize("unit,pattern", [("Msun/h", r"'m500c'.*solMass / h.*little-h"),
                                          ("bogounit", r"'m500c'.*'bogounit'.*cannot parse")])
def test_unknown_unit_is_an_error(tmp_path, unit, pattern):
    path = tmp_path / "halos.ecsv"
    _user_table().write(path)
    text = path.read_text().replace("name: m500c, unit: solMass", f"name: m500c, unit: {unit}")
    path.write_text(text)
    with pytest.raises(CatalogError, match=pattern):
        load_catalog(catalog_settings(source="table", path=str(path)))


def _bad_table(tmp_path) -> Path:
    t = _user_table(10)
    t["m500c"][1] = np.nan
    t["m500c"][2] = -1.0
    t["halo_id"][5] = t["halo_id"][4]
    t["redshift"][7] = -0.1
    path = tmp_path / "bad.csv"
    t.write(path)
    return path


def test_bad_rows_dropped_with_logged_reason(tmp_path, caplog):
    path = _bad_table(tmp_path)
    with caplog.at_level(logging.WARNING, logger="xclusters.catalogs"):
        out = load_catalog(catalog_settings(source="table", path=str(path), on_bad_row="drop"))
    assert len(out) == 6
    assert sorted(set(out["halo_id"])) == sorted(out["halo_id"])
    text = caplog.text
    assert "non-positive mass" in text and "duplicate halo_id" in text and "redshift" in text
    assert "row 1 (halo_id 101)" in text and "row 5 (halo_id 104)" in text


@pytest.mark.parametrize("column,value,pattern", [
    ("m500c", np.nan, r"'m500c'.*row 3"),
    ("m500c", 0.0, r"'m500c'.*row 3"),
    ("halo_id", 100, r"duplicate halo_id.*row 3"),
])
def test_bad_rows_error_names_file_column_row(tmp_path, column, value, pattern):
    t = _user_table(6)
    t[column][3] = value
    path = tmp_path / "bad.ecsv"
    t.write(path)
    with pytest.raises(CatalogError, match=pattern) as err:
        load_catalog(catalog_settings(source="table", path=str(path), on_bad_row="error"))
    assert str(path) in str(err.value) and "Fix" in str(err.value)


def _write_gadget_header(path: Path, box: float = 10000.0) -> None:
    """Minimal Gadget HDF5 snapshot (one gas particle) so yt can read the box."""
    with h5py.File(path, "w") as f:
        h = f.create_group("Header")
        npart = np.array([1, 0, 0, 0, 0, 0], dtype=np.uint32)
        h.attrs.update({"NumPart_ThisFile": npart, "NumPart_Total": npart,
                        "NumPart_Total_HighWord": np.zeros(6, np.uint32),
                        "MassTable": np.zeros(6), "Time": 1.0, "Redshift": 0.0,
                        "BoxSize": box, "NumFilesPerSnapshot": 1, "Omega0": 0.3,
                        "OmegaLambda": 0.7, "HubbleParam": 0.7})
        g = f.create_group("PartType0")
        g["Coordinates"] = np.full((1, 3), box / 2)
        g["Masses"] = np.ones(1)
        g["ParticleIDs"] = np.arange(1, dtype=np.uint64)


def test_halos_outside_snapshot_box(tmp_path):
    snap = tmp_path / "snap.hdf5"
    _write_gadget_header(snap)
    t = _user_table(4)
    t["x_c"] = [100.0, 5000.0, 12000.0, 9000.0] * u.kpc
    t["y_c"] = [100.0, 5000.0, 500.0, 9000.0] * u.kpc
    t["z_c"] = [100.0, 5000.0, 500.0, -5.0] * u.kpc
    path = tmp_path / "halos.ecsv"
    t.write(path)
    cfg = catalog_settings(source="table", path=str(path), snapshot=str(snap), on_bad_row="drop")
    out = load_catalog(cfg)
    assert list(out["halo_id"]) == [100, 101]
    with pytest.raises(CatalogError, match=r"outside the snapshot box.*row 2"):
        load_catalog(dataclasses.replace(cfg, on_bad_row="error"))


def test_schema_file_matches_columns():
    schema = yaml.safe_load(schema_file().read_text())
    assert set(schema["required"]) == {"halo_id", "m500c", "redshift"}
    for name, unit in COLUMNS.items():
        if name == "source":
            continue
        expected = schema["properties"][name]["unit"]
        assert (unit is None and expected is None) or u.Unit(expected) == unit


# ---------------------------------------------------------------- yt halo catalogue

def _write_yt_halo_catalog(path: Path, n: int = 30) -> None:
    rng = np.random.default_rng(3)
    kpc_cm = (1 * u.kpc).to_value(u.cm)
    box = 50000.0 * kpc_cm / 0.7  # 50 Mpc/h comoving, z = 0
    with h5py.File(path, "w") as f:
        f.attrs.update({"data_type": "halo_catalog", "num_halos": n,
                        "current_redshift": 0.0, "current_time": 4.3e17,
                        "cosmological_simulation": 1, "hubble_constant": 0.7,
                        "omega_matter": 0.3, "omega_lambda": 0.7,
                        "domain_left_edge": np.zeros(3), "domain_right_edge": np.full(3, box),
                        "domain_left_edge_units": "cm", "domain_right_edge_units": "cm",
                        "current_time_units": "s"})
        for ax in "xyz":
            d = f.create_dataset(f"particle_position_{ax}", data=rng.uniform(0, box, n))
            d.attrs["units"] = "cm"
        m = 10 ** rng.uniform(13.5, 15.0, n) * (1 * u.Msun).to_value(u.g)
        f.create_dataset("particle_mass", data=m * 1.4).attrs["units"] = "g"
        f.create_dataset("m500c", data=m).attrs["units"] = "g"
        f.create_dataset("particle_identifier", data=np.arange(n) + 7).attrs["units"] = ""


def test_yt_halo_catalog(tmp_path):
    path = tmp_path / "halos.0.h5"
    _write_yt_halo_catalog(path)
    out = load_catalog(catalog_settings(source="yt", path=str(path), on_bad_row="error"))
    assert len(out) == 30 and out["halo_id"].min() == 7
    assert 13.5 <= np.log10(out["m500c"]).min() and np.log10(out["m500c"]).max() <= 15.0
    # positions in comoving kpc/h inside the 50 Mpc/h box
    assert 0 <= out["x_c"].min() and out["x_c"].max() <= 50000.0
    assert "m500c" in out["source"][0] and np.all(out["redshift"] == 0.0)


@pytest.mark.parametrize("with_units", [True, False])
def test_gadget_fof_subfind_catalog(tmp_path, caplog, with_units):
    # Arepo/TNG-style Subfind catalogue: masses 1e10 Msun/h, lengths ckpc/h (code units in
    # the Parameters group) or, without them, cMpc/h as yt's gadget_fof frontend assumes
    path = tmp_path / "fof_subhalo_tab_000.0.hdf5"
    truth = write_gadget_fof(path, with_units=with_units)
    h, z = truth.hubble, truth.redshift
    to_ckpc_h = 1.0 if with_units else 1000.0
    # code mass unit [Msun/h]: UnitMass_in_g of the file (1.989e43 g, 0.03 % above 1e10 Msun)
    # or yt's default 1e10 Msun/h
    mass_unit = GADGET_UNIT_MASS_G / u.Msun.to(u.g) if with_units else 1e10
    with caplog.at_level(logging.WARNING, logger="xclusters.catalogs"):
        out = load_catalog(catalog_settings(source="yt", path=str(path), on_bad_row="error"))
    assert ("yt assumes comoving Mpc/h" in caplog.text) is (not with_units)
    assert len(out) == 5 and list(out["halo_id"]) == list(truth.ids)  # group numbers
    np.testing.assert_allclose(out["redshift"], z, rtol=1e-12)
    # Group_M_Crit500 [code mass = ~1e10 Msun/h] -> Msun
    np.testing.assert_allclose(out["m500c"], truth.m500c_code * mass_unit / h, rtol=1e-5)
    assert 13.6 < np.log10(out["m500c"]).min() and np.log10(out["m500c"]).max() < 15.2
    # Group_R_Crit500 is comoving [ckpc/h]: physical kpc = R / h / (1 + z)
    np.testing.assert_allclose(out["r500c"], truth.r500c_code * to_ckpc_h / h / (1 + z),
                               rtol=1e-6)
    assert 400 < out["r500c"].min() and out["r500c"].max() < 1500
    # GroupPos [code length] -> comoving kpc/h (Group, not Subhalo, positions)
    for k, c in enumerate(("x_c", "y_c", "z_c")):
        np.testing.assert_allclose(out[c], truth.pos_code[:, k] * to_ckpc_h, rtol=1e-6)
    assert out["x_c"].max() < 75000.0
    assert "Group_M_Crit500" in out["source"][0] and "Group_R_Crit500" in out["source"][0]
    assert ("from the file" in out["source"][0]) is with_units
    assert out.meta["box_right_kpccm_h"] == pytest.approx([75000.0] * 3, rel=1e-6)


def test_gadget_fof_mass_field_and_bad_field(tmp_path):
    path = tmp_path / "fof_subhalo_tab_000.0.hdf5"
    truth = write_gadget_fof(path)
    out = load_catalog(catalog_settings(source="yt", path=str(path), mass_field="Group_M_Crit200"))
    mass_unit = GADGET_UNIT_MASS_G / u.Msun.to(u.g)
    np.testing.assert_allclose(out["m500c"], 1.4 * truth.m500c_code * mass_unit / truth.hubble,
                               rtol=1e-5)
    with pytest.raises(CatalogError, match=r"catalog.mass_field 'M_bogus'.*Group_M_Crit500"):
        load_catalog(catalog_settings(source="yt", path=str(path), mass_field="M_bogus"))


def test_gadget4_subfind_names_give_catalog_error(tmp_path):
    # Gadget-4 calls the subhalo counts Nsubhalos_*; yt 4's gadget_fof frontend cannot read it
    path = tmp_path / "fof_subhalo_tab_000.0.hdf5"
    write_gadget_fof(path)
    with h5py.File(path, "r+") as f:
        for k in ("ThisFile", "Total"):
            f["Header"].attrs[f"Nsubhalos_{k}"] = f["Header"].attrs[f"Nsubgroups_{k}"]
            del f["Header"].attrs[f"Nsubgroups_{k}"]
    with pytest.raises(CatalogError, match=r"yt cannot load.*Nsubhalos_"):
        load_catalog(catalog_settings(source="yt", path=str(path)))


def test_rockstar_catalog_alt_mass(tmp_path):
    path = tmp_path / "halos_0.0.bin"
    truth = write_rockstar(path)
    h, z = truth.hubble, truth.redshift
    out = load_catalog(catalog_settings(source="yt", path=str(path), mass_field="alt_m3",
                        on_bad_row="error"))
    assert list(out["halo_id"]) == list(truth.ids)
    np.testing.assert_allclose(out["redshift"], z, rtol=1e-6)  # from the float32 scale factor
    np.testing.assert_allclose(out["m500c"], truth.m500c_code / h, rtol=1e-6)  # Msun/h -> Msun
    for k, c in enumerate(("x_c", "y_c", "z_c")):                # cMpc/h -> ckpc/h
        np.testing.assert_allclose(out[c], truth.pos_code[:, k] * 1000.0, rtol=1e-6)
    # no R500c field: R500c from M500c = 500 rho_c(z) 4 pi R^3 / 3 (physical)
    rho_c = FlatLambdaCDM(H0=100 * h, Om0=0.3).critical_density(z)
    m = np.asarray(out["m500c"]) * u.Msun
    r_expected = ((3 * m / (4 * np.pi * 500 * rho_c)) ** (1 / 3)).to_value(u.kpc)
    np.testing.assert_allclose(out["r500c"], r_expected, rtol=1e-5)
    assert "alt_m3" in out["source"][0] and "FlatLambdaCDM" in out["source"][0]


def test_rockstar_without_mass_field_names_alt_masses(tmp_path):
    path = tmp_path / "halos_0.0.bin"
    write_rockstar(path)
    with pytest.raises(CatalogError) as err:
        load_catalog(catalog_settings(source="yt", path=str(path)))
    msg = str(err.value)
    assert "no M500c field" in msg and "catalog.mass_field" in msg
    assert "alt_m3 = M500c" in msg and "particle_mass" in msg and str(path) in msg


# ---------------------------------------------------------------- sampling

def test_bin_quotas_water_filling():
    q = bin_quotas(np.array([0, 1, 10, 10, 3]), 20)
    assert q.sum() == 20 and list(q[:2]) == [0, 1] and q[4] == 3 and np.all(q <= [0, 1, 10, 10, 3])
    assert bin_quotas(np.array([2, 2]), 10).tolist() == [2, 2]


def test_sample_reproducible_and_uniform(lightcone, tmp_path):
    a = draw_sample(lightcone, SAMPLE_CFG, seed=11)
    b = draw_sample(lightcone[::-1], SAMPLE_CFG, seed=11)  # input order does not matter
    c = draw_sample(lightcone, SAMPLE_CFG, seed=12)
    assert list(a["halo_id"]) == list(b["halo_id"]) and len(a) == 20
    assert list(a["halo_id"]) != list(c["halo_id"])
    assert list(a["cluster_id"]) == [f"h{i:08d}" for i in a["halo_id"]]
    assert len(set(a["seed"])) == 20
    # roughly uniform in (log M, z): random draws would give ~ 65% of halos in the lowest
    # mass bin of the light cone; the binned draw gives about one fifth per mass bin
    logm = np.log10(a["m500c"])
    in_range = lightcone[(np.log10(lightcone["m500c"]) >= 13.7) & (lightcone["redshift"] >= 0.03)
                         & (lightcone["redshift"] < 0.5)]
    frac_low_cat = np.mean(np.log10(in_range["m500c"]) < 13.96)
    frac_low_sample = np.mean(logm < 13.96)
    assert frac_low_cat > 0.6 and frac_low_sample <= 0.3
    assert np.all((logm >= 13.7) & (logm < 15.0))
    path = write_sample(a, tmp_path / "sample.ecsv", config={"seed": 11})
    back = read_sample(path)
    assert list(back["cluster_id"]) == list(a["cluster_id"])
    assert back["m500c"].unit == u.Msun and "provenance" in back.meta
    assert back.meta["provenance"]["seed"] == 11


def test_sample_uniform_in_bins_on_synthetic_table():
    rng = np.random.default_rng(5)
    n = 20000
    t = Table({"halo_id": np.arange(n),
               "m500c": 10 ** (13.0 + rng.exponential(0.3, n)),  # steep mass function
               "redshift": rng.uniform(0.0, 1.0, n) ** 2})
    cfg = dict(SAMPLE_CFG, n_clusters=200, log_m500c_min=13.0, log_m500c_max=14.0, z_min=0.0,
               z_max=1.0, n_mass_bins=4, n_z_bins=4)
    s = draw_sample(t, cfg, seed=1)
    mb = np.clip(((np.log10(s["m500c"]) - 13.0) * 4).astype(int), 0, 3)
    zb = np.clip((s["redshift"] * 4).astype(int), 0, 3)
    counts = np.bincount(mb * 4 + zb, minlength=16)
    assert len(s) == 200 and counts.min() >= 12 and counts.max() <= 13


def test_empty_selection_error_names_ranges(lightcone):
    cfg = dict(SAMPLE_CFG, log_m500c_min=15.5, log_m500c_max=16.0)
    with pytest.raises(CatalogError) as err:
        draw_sample(lightcone, cfg, seed=1)
    msg = str(err.value)
    assert "[15.5, 16.0)" in msg and "12.632" in msg and "14.927" in msg and "0.0247" in msg


# ---------------------------------------------------------------- ids

@pytest.mark.parametrize("value", ["../../etc/passwd", "/abs/path", "a b", "", ".", "..",
                                   "-rf", "x" * 300, "ü/ß"])
def test_safe_id_cannot_escape(value):
    sid = safe_id(value)
    assert sid.startswith("h") and "/" not in sid and "\\" not in sid and ".." not in sid
    assert 0 < len(sid) <= 64 and sid.replace("_", "").replace("-", "").isalnum()


def test_safe_id_ints_and_distinct_strings():
    assert safe_id(42) == "h00000042" and safe_id(np.int64(7)) == "h00000007"
    assert safe_id(-3) == "hm00000003"
    assert safe_id("a/b") != safe_id("a_b")
    assert safe_id("cluster-1") == "hcluster-1"
