"""Simulation cutouts at native resolution (issue 17), on small files in real formats.

Gadget-2 binary, Gadget HDF5 and Arepo-style HDF5 snapshots written by
``_xc_sim_snapshots`` are read through yt's own frontends; the hot, non-star-forming gas
particles (or moving-mesh cells) go to ``source.h5`` and to pyXSIM without a grid.
"""
from __future__ import annotations

import logging
import os

import h5py
import numpy as np
import pytest
from _xc_sim_snapshots import (ClusterModel, write_arepo_hdf5, write_gadget2_binary,
                               write_gadget_hdf5)

from xclusters.config import load_config, load_defaults
from xclusters.sources import (SimulationSourceError, build_simulation_source, load_source,
                               read_source, write_source)

os.environ.setdefault("OMP_NUM_THREADS", "1")

MODEL = ClusterModel(n_gas=8000, n_dm=8000)
CFG = dict(load_config()["sources"], grid_cells=32, box_r500c=3.0, min_kT_keV=0.1,
           default_metallicity_zsun=0.25)
#: the catalogue centre is off by (20, -15, 10) kpccm/h = 26 physical kpc
OFFSET = np.array([20.0, -15.0, 10.0])
ROW = {"halo_id": 7, "cluster_id": "h00000007", "m500c": MODEL.m500c_msun,
       "r500c": MODEL.r500c_kpc, "redshift": MODEL.redshift,
       **{k: c + o for k, c, o in zip(("x_c", "y_c", "z_c"), MODEL.centre_ckpc_h, OFFSET)}}
KPC_PER_CKPC_H = 1 / (1 + MODEL.redshift) / MODEL.hubble


@pytest.fixture(scope="module")
def snapshots(tmp_path_factory):
    d = tmp_path_factory.mktemp("snaps")
    return {"gadget2": (d / "snap_000", *write_gadget2_binary(d / "snap_000", MODEL)[1:]),
            "gadget_hdf5": (d / "snap_001.hdf5",
                            *write_gadget_hdf5(d / "snap_001.hdf5", MODEL)[1:]),
            "arepo": (d / "snap_002.hdf5", *write_arepo_hdf5(d / "snap_002.hdf5", MODEL)[1:])}


def _truth_in_cube(gas, centre_ckpc_h, side_kpc, use_sfr):
    d = gas["pos"] - centre_ckpc_h
    d -= MODEL.box_ckpc_h * np.round(d / MODEL.box_ckpc_h)
    inside = np.all(np.abs(d * KPC_PER_CKPC_H) < side_kpc / 2, axis=1)
    hot = gas["kT"] > 0.1
    if use_sfr:
        hot &= gas["sfr"] == 0
    return inside & hot


@pytest.mark.parametrize("fmt,frontend,sfr,met_field", [
    ("gadget2", "GadgetDataset", False, "none"),
    # Gadget HDF5 with a Metallicity block: yt reads it with its GIZMO frontend
    ("gadget_hdf5", "GizmoDataset", True, "metallicity"),
    ("arepo", "ArepoHDF5Dataset", True, "metallicity")])  # yt aliases GFM_Metallicity
def test_native_cutout_through_yt_frontends(snapshots, fmt, frontend, sfr, met_field, caplog):
    import yt

    path, gas, _ = snapshots[fmt]
    assert type(yt.load(str(path))).__name__ == frontend
    with caplog.at_level(logging.INFO, logger="xclusters.sources"):
        src = build_simulation_source(ROW, CFG, path, seed=1)
    a, p = src["attrs"], src["particles"]
    assert a["deposit_method"] == "native" and "density" not in src
    # shrinking sphere on all matter: back to the true centre (within 3 kpc), shift logged
    true_off = np.asarray(a["centre_ckpc_h"]) - np.asarray(MODEL.centre_ckpc_h)
    assert np.linalg.norm(true_off) * KPC_PER_CKPC_H < 3.0
    assert a["centre_shift_kpc"] == pytest.approx(np.linalg.norm(OFFSET) * KPC_PER_CKPC_H,
                                                  abs=3.0)
    assert "shrinking-sphere centre" in caplog.text
    # the hot (and, when the snapshot says so, non-star-forming) particles of the cube
    sel = _truth_in_cube(gas, np.asarray(a["centre_ckpc_h"]), a["cutout_side_kpc"], sfr)
    assert a["n_particles"] == int(sel.sum())
    # (Gadget's mass unit is 1.989e43 g = 1.0003e10 yt Msun per h)
    np.testing.assert_allclose(a["hot_gas_mass_msun"], gas["mass"][sel].sum() * 1e10
                               / MODEL.hubble, rtol=1e-3)
    assert a["star_forming_excluded"] == int(sfr)
    assert (("no star-formation-rate field" in caplog.text) != sfr)
    # temperatures from InternalEnergy (yt's mean molecular weight: 1.5 % from ours)
    np.testing.assert_allclose(np.sort(p["temperature_keV"]), np.sort(gas["kT"][sel]),
                               rtol=0.03)
    assert p["temperature_keV"].min() > 0.1                     # the cold clump is cut
    # metallicity from the snapshot when there is one
    assert a["metallicity_field"] == met_field
    np.testing.assert_allclose(p["metallicity_zsun"], 0.25 if met_field == "none" else 0.3,
                               rtol=1e-3)
    # positions are halo-centred physical kpc inside the cube
    r = np.sqrt(p["x_kpc"] ** 2 + p["y_kpc"] ** 2 + p["z_kpc"] ** 2)
    assert np.all(np.abs(np.stack([p["x_kpc"], p["y_kpc"], p["z_kpc"]])) < 1020.0 + 1e-6)
    r_true = np.linalg.norm(gas["offset_kpc"][sel], axis=1)
    assert abs(np.median(r) - np.median(r_true)) < 5.0       # centred on the true centre
    if fmt == "arepo":  # cells: radius of the sphere of their volume, spread as such
        assert a["smoothing_length_source"] == "arepo_cell_volume"
        assert p["kernel"] == "voronoi_cell"
        import astropy.units as u

        rho_msun_kpc3 = p["density_g_cm3"] / (1 * u.Msun / u.kpc**3).to_value(u.g / u.cm**3)
        r_cell = (3 * p["mass_msun"] / (4 * np.pi * rho_msun_kpc3)) ** (1 / 3)
        np.testing.assert_allclose(p["smoothing_length_kpc"], r_cell, rtol=1e-3)
    else:  # SPH lengths from the snapshot, in physical kpc
        assert a["smoothing_length_source"] == "snapshot" and p["kernel"] == "cubic"
        np.testing.assert_allclose(np.sort(p["smoothing_length_kpc"]),
                                   np.sort(gas["hsml"][sel] * KPC_PER_CKPC_H), rtol=1e-5)


def test_densest_gas_is_not_the_centre(snapshots):
    # the cold clump 1.3 Mpc away holds the densest gas; the centre follows the total matter
    path, gas, _ = snapshots["gadget_hdf5"]
    densest = gas["pos"][np.argmax(gas["rho"])]
    assert np.linalg.norm(densest - MODEL.centre_ckpc_h) * KPC_PER_CKPC_H > 1000.0
    a = build_simulation_source(ROW, CFG, path, seed=1)["attrs"]
    off = np.asarray(a["centre_ckpc_h"]) - np.asarray(MODEL.centre_ckpc_h)
    assert np.linalg.norm(off) * KPC_PER_CKPC_H < 3.0
    none = build_simulation_source(ROW, dict(CFG, recentre="none"), path, seed=1)["attrs"]
    assert none["centre_shift_kpc"] == 0.0
    assert none["centre_ckpc_h"] == pytest.approx([ROW["x_c"], ROW["y_c"], ROW["z_c"]])


def test_cutout_sized_by_the_instrument_field(snapshots):
    path = snapshots["gadget_hdf5"][0]
    # only the instruments given are sized for (eROSITA and ideal always observe, so a run
    # passes all three; here Chandra alone, its whole section as the run config holds it)
    inst = {"chandra_acisi": dict(load_defaults()["instruments"]["chandra_acisi"],
                                  enabled=True, field_arcmin=20.0, image_pixels=128)}
    # angular sizes use the sources' reference cosmology (a key of the defaults)
    cfg = dict(CFG, reference_cosmology=load_defaults()["sources"]["reference_cosmology"])
    # 3 R500c = 2040 kpc; Chandra's 20' field at z = 0.05 is ~1180 kpc
    a = build_simulation_source(ROW, cfg, path, seed=1, instruments_cfg=inst)["attrs"]
    assert 1100.0 < a["cutout_side_kpc"] < 1250.0
    big = dict(inst, chandra_acisi=dict(inst["chandra_acisi"], field_arcmin=60.0))
    assert build_simulation_source(ROW, cfg, path, seed=1, instruments_cfg=big)[
        "attrs"]["cutout_side_kpc"] == pytest.approx(3 * MODEL.r500c_kpc)


def test_memory_guard_names_the_halo(snapshots):
    path = snapshots["gadget2"][0]
    with pytest.raises(SimulationSourceError,
                       match=r"halo 7 \(h00000007\).*gas particles.*parallel\."
                             r"memory_per_worker_mb = 1"):
        build_simulation_source(ROW, CFG, path, seed=1, memory_mb=1)


def test_grid_deposit_stays_an_explicit_option(snapshots):
    path, gas, _ = snapshots["gadget2"]
    src = build_simulation_source(ROW, dict(CFG, deposit="nearest_grid_point"), path, seed=1)
    a = src["attrs"]
    assert a["deposit_method"] == "nearest_grid_point" and src["density"].shape == (32,) * 3
    native = build_simulation_source(ROW, CFG, path, seed=1)["attrs"]
    assert a["hot_gas_mass_msun"] == pytest.approx(native["hot_gas_mass_msun"], rel=1e-6)
    with pytest.raises(SimulationSourceError, match="sources.recentre = 'densest'"):
        build_simulation_source(ROW, dict(CFG, recentre="densest"), path, seed=1)


@pytest.fixture(scope="module")
def native_source(snapshots, tmp_path_factory):
    d = tmp_path_factory.mktemp("native")
    out = {}
    for fmt in ("gadget_hdf5", "arepo"):
        src = build_simulation_source(ROW, CFG, snapshots[fmt][0], seed=1)
        out[fmt] = (write_source(d / f"{fmt}_source.h5", src), src)
    return out


def test_particle_source_file_roundtrip(native_source):
    path, src = native_source["gadget_hdf5"]
    back = read_source(path)
    for k, v in src["particles"].items():
        if k != "kernel":
            np.testing.assert_array_equal(back["particles"][k], v)
    assert back["particles"]["kernel"] == "cubic"
    assert back["attrs"]["deposit_method"] == "native"
    ds = load_source(path)
    ad = ds.all_data()
    assert ad["io", "particle_mass"].size == src["attrs"]["n_particles"]
    np.testing.assert_allclose(float(ad["io", "particle_mass"].sum().to("Msun")),
                               src["attrs"]["hot_gas_mass_msun"], rtol=1e-10)
    assert float(ad["gas", "emission_measure"].sum()) > 0


@pytest.mark.parametrize("fmt,sigma_over_h", [("gadget_hdf5", 0.27386),
                                              ("arepo", 0.44721)])
def test_particle_photons_in_chunks(native_source, tmp_path, fmt, sigma_over_h):
    from _xc_settings import emission_settings
    from xclusters.observe.photons import make_photon_list, project_to_simput

    path, src = native_source[fmt]
    emission = emission_settings(model="bremsstrahlung", emin_keV=0.1, emax_keV=10.0, nbins=200)
    kw = dict(emission_cfg=emission, area_cm2=500.0, exposure_s=2e5, seed=4,
              cluster_id="h00000007")
    one = make_photon_list(path, tmp_path / "one.h5", chunk_particles=10**7, **kw)
    many = make_photon_list(path, tmp_path / "many.h5", chunk_particles=1000, **kw)
    n = src["attrs"]["n_particles"]
    with h5py.File(one) as f1, h5py.File(many) as fm:
        assert int(fm["info"].attrs["xclusters_n_chunks"]) == -(-n // 1000) > 1
        assert int(f1["info"].attrs["xclusters_n_chunks"]) == 1
        n1, nm = f1["data"]["energy"].size, fm["data"]["energy"].size
        assert abs(n1 - nm) < 5 * np.sqrt(n1)               # same source, same expectation
        assert np.sum(fm["data"]["num_photons"][()]) == nm
        assert fm["parameters"]["data_type"][()] == b"particles"
        # dx = the kernel's 1-D standard deviation (pyXSIM's gaussian kernel uses sigma = dx)
        h = np.sort(src["particles"]["smoothing_length_kpc"])
        v = fm["data"]["dx"][()] / sigma_over_h          # one per emitting particle
        i = np.clip(np.searchsorted(h, v), 1, h.size - 1)
        nearest = np.where(np.abs(h[i] - v) < np.abs(h[i - 1] - v), h[i], h[i - 1])
        np.testing.assert_allclose(v, nearest, rtol=1e-6)
    simput = project_to_simput(many, "z", tmp_path / "simput", nh_1e22=0.0,
                               sky_center_deg=(30.0, 10.0), seed=2)
    assert simput.is_file()
    # a chunk that does not fit half the worker budget is an error naming both keys, never
    # lowered silently (the photon draws depend on the chunking, the memory is fingerprinted
    # nowhere)
    from xclusters.observe.particle_photons import PHOTON_BYTES_PER_PARTICLE as per
    from xclusters.observe.particle_photons import particle_chunk_size

    fits = int(0.5 * 3000 * 2**20 / per)
    assert particle_chunk_size(fits, 3000.0) == fits
    assert particle_chunk_size(5000, None) == 5000
    with pytest.raises(ValueError, match=rf"photons.chunk_particles = {fits + 1} .*"
                                         rf"parallel.memory_per_worker_mb = 3000; set "
                                         rf"photons.chunk_particles <= {fits}"):
        particle_chunk_size(fits + 1, 3000.0)


def _amr_snapshot():
    """A 3-level AMR dataset (yt AMR loader, 4 Mpc box): 3 keV beta model, cold beyond 900 kpc."""
    import yt

    def grid(lo, hi, m, level):
        x = lo + (np.arange(m) + 0.5) / m * (hi - lo)
        g = np.meshgrid(x, x, x, indexing="ij")
        r = np.sqrt(sum((gg - 2000.0) ** 2 for gg in g))
        zero = np.zeros_like(r)
        return {"left_edge": [lo] * 3, "right_edge": [hi] * 3, "dimensions": [m] * 3,
                "level": level, "density": (1e-26 / (1 + (r / 100.0) ** 2) ** 1.5, "g/cm**3"),
                "temperature": (np.where(r < 900.0, 3.5e7, 1e5), "K"),
                "velocity_x": (zero, "km/s"), "velocity_y": (zero, "km/s"),
                "velocity_z": (zero, "km/s")}

    grids = [grid(0.0, 4000.0, 64, 0), grid(1500.0, 2500.0, 32, 1), grid(1750.0, 2250.0, 32, 2)]
    return yt.load_amr_grids(grids, [64] * 3, bbox=np.array([[0.0, 4000.0]] * 3),
                             length_unit="kpc")


def test_amr_snapshot_becomes_nested_grids(tmp_path, monkeypatch):
    import yt

    ds = _amr_snapshot()
    monkeypatch.setattr(yt, "load", lambda *a, **k: ds)    # an AMR code's snapshot via yt
    snap = tmp_path / "DD0010"
    snap.touch()
    row = dict(ROW, x_c=2010.0, y_c=1990.0, z_c=2000.0)      # kpc (not a comoving dataset)
    inst = {"chandra_acisi": dict(load_defaults()["instruments"]["chandra_acisi"],
                                  enabled=True, field_arcmin=20.0, image_pixels=128)}
    cfg = dict(CFG, reference_cosmology=load_defaults()["sources"]["reference_cosmology"])
    src = build_simulation_source(row, cfg, snap, seed=1, instruments_cfg=inst)
    a = src["attrs"]
    # the cutout (Chandra's 20' field, 1180 kpc) / 32 cells: snapshot level 1 (31 kpc); one
    # core level (16 kpc), since the snapshot has no finer cells (the pixel is 8.9 kpc)
    assert a["deposit_method"] == "native_mesh" and a["mesh_base_level"] == 1
    assert a["n_levels"] == 1 and a["finest_cell_kpc"] == pytest.approx(15.625)
    assert a["mesh_centre_snap_kpc"] == pytest.approx(np.hypot(10.0, 10.0))  # onto (2000,)*3
    assert src["density"][0, 0, 0] == 0.0                     # cold gas cut (kT 0.009 keV)
    ds_src = load_source(write_source(tmp_path / "source.h5", src))
    ad = ds_src.all_data()
    assert ad["index", "dx"].to_value("kpc").min() == pytest.approx(15.625)
    # the nested source holds the snapshot's hot gas in the cube (cell averages: 1 %)
    half = src["bbox_kpc"][0, 1]
    hot = ds.box(ds.arr([2000.0 - half] * 3, "kpc"), ds.arr([2000.0 + half] * 3, "kpc"))
    m_hot = hot["gas", "cell_mass"][hot["gas", "temperature"] > 1.2e6].sum()
    assert float(ad["gas", "cell_mass"].sum() / m_hot) == pytest.approx(1.0, rel=0.02)
    with pytest.raises(SimulationSourceError, match="grid/AMR snapshot.*use native"):
        build_simulation_source(row, dict(CFG, deposit="auto"), snap, seed=1)
