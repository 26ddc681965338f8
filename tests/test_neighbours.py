"""Light-cone neighbours (issue 4): selection in field and depth, table I/O, SIMPUT placement."""
from __future__ import annotations

import astropy.units as u
import numpy as np
import pytest
from _xc_settings import emission_settings
from astropy.cosmology import FlatLambdaCDM, z_at_value
from astropy.table import Table

from xclusters.catalogs.neighbours import (
    NEIGHBOUR_COLUMNS,
    field_radius_arcmin,
    find_neighbours,
    neighbour_rows,
    neighbours_for_sample,
    read_neighbours,
    write_neighbours,
)
from xclusters.catalogs.schema import CatalogError
from xclusters.config import load_config

COSMO = FlatLambdaCDM(H0=70.0, Om0=0.3)
Z0 = 0.1
DC0 = COSMO.comoving_distance(Z0).to_value(u.Mpc)


def _z_at_offset(dmpc: float) -> float:
    return float(z_at_value(COSMO.comoving_distance, (DC0 + dmpc) * u.Mpc))


def _catalog() -> Table:
    """The cluster (id 1) at (180, 0), z = 0.1, and halos testing each cut."""
    rows = [
        # halo_id, m500c, ra offset (arcmin), LOS offset (Mpc)
        (1, 3e14, 0.0, 0.0),     # the cluster itself: never its own neighbour
        (2, 5e13, 5.0, 0.0),     # in field, same depth: kept
        (3, 5e13, 5.0, 20.0),    # 20 Mpc behind: out of depth
        (4, 8e13, 10.0, -8.0),   # 8 Mpc in front: kept
        (5, 5e13, 120.0, 0.0),   # 2 degrees away: out of field
        (6, 5e12, 5.0, 1.0),     # too light
        (7, 2e13, 36.0, 2.0),    # outside 33.9' but its half-box (3.9') reaches in: kept
    ]
    ids, m, ra, z = zip(*[(i, mm, 180.0 + off / 60.0, _z_at_offset(d) if d else Z0)
                          for i, mm, off, d in rows])
    t = Table({"halo_id": np.array(ids), "m500c": np.array(m), "redshift": np.array(z),
               "ra": np.array(ra), "dec": np.zeros(len(ids))})
    t["r500c"] = [700.0 * (mm / 3e14) ** (1 / 3) for mm in m]
    return t


def _sample(cat: Table) -> Table:
    s = cat[cat["halo_id"] == 1]
    s["cluster_id"] = ["h00000001"]
    return s


def _find(cat, **kw):
    args = dict(field_radius_arcmin=33.9, los_depth_mpc=10.0, log_m500c_min=13.0,
                box_r500c=3.0, cosmology=COSMO, max_per_cluster=10)
    args.update(kw)
    return find_neighbours(cat, _sample(cat), **args)


def test_selection_cuts_field_depth_mass_self():
    cat = _catalog()
    nb = _find(cat)
    assert list(nb["halo_id"]) == [2, 4, 7]
    assert list(nb.colnames) == list(NEIGHBOUR_COLUMNS)
    row4 = nb[nb["halo_id"] == 4][0]
    assert row4["los_offset_mpc"] == pytest.approx(-8.0, abs=0.01)
    assert row4["separation_arcmin"] == pytest.approx(10.0, rel=1e-3)
    assert nb["m500c"].unit == u.Msun and nb["separation_arcmin"].unit == u.arcmin
    # a shallower slab drops the 8 Mpc neighbour; a smaller box drops the edge halo 7
    assert list(_find(cat, los_depth_mpc=5.0)["halo_id"]) == [2, 7]
    assert list(_find(cat, box_r500c=0.5)["halo_id"]) == [2, 4]
    # a lower mass limit admits the light halo 6
    assert 6 in list(_find(cat, log_m500c_min=12.5)["halo_id"])


def test_cap_keeps_most_massive():
    nb = _find(_catalog(), max_per_cluster=2)
    assert sorted(nb["halo_id"]) == [2, 4]          # 8e13 and 5e13, not 2e13
    assert len(_find(_catalog(), max_per_cluster=0)) == 0


def test_no_sky_positions(repo_root, caplog):
    cat = _catalog()
    cat["ra"] = np.nan
    with pytest.raises(CatalogError, match="include_neighbours: false"):
        _find(cat)
    # the run goes on without neighbours (snapshot tables get the default pointing) and says so
    cfg = load_config(repo_root / "config" / "config.yaml")
    assert len(neighbours_for_sample(cat, _sample(cat), cfg)) == 0
    assert "no sky positions" in caplog.text and "include_neighbours: false" in caplog.text


def test_cluster_without_sky_position_gets_no_neighbours():
    """A sample row at the default pointing must not collect the halos around that pointing."""
    cat = _catalog()
    cat["ra"][0] = np.nan                         # the cluster itself has no catalogue position
    assert len(_find(cat)) == 0


def test_table_roundtrip_and_rows(tmp_path):
    nb = _find(_catalog())
    path = write_neighbours(nb, tmp_path / "neighbours.ecsv")
    back = read_neighbours(path)
    assert list(back["halo_id"]) == [2, 4, 7]
    rows = neighbour_rows(path, "h00000001")
    assert [r["halo_id"] for r in rows] == [2, 4, 7]
    assert all(isinstance(r["ra"], float) for r in rows)
    assert neighbour_rows(path, "h00000099") == []
    assert neighbour_rows(None, "h00000001") == []
    bad = tmp_path / "bad.ecsv"
    nb.copy()[["cluster_id", "halo_id"]].write(bad, format="ascii.ecsv")
    with pytest.raises(CatalogError, match="missing"):
        read_neighbours(bad)


def test_config_switches(repo_root):
    cfg = load_config(repo_root / "config" / "config.yaml")
    # eROSITA's simulated field (300 px x 9.6") is the largest: half-diagonal 33.9'
    assert field_radius_arcmin(cfg["instruments"]) == pytest.approx(
        0.5 * np.sqrt(2) * 300 * 9.6 / 60, rel=1e-9)
    cat = _catalog()
    cat.meta.update(cosmology_H0=70.0, cosmology_Om0=0.3)
    assert list(neighbours_for_sample(cat, _sample(cat), cfg)["halo_id"]) == [2, 4, 7]
    off = dict(cfg, sources=dict(cfg["sources"], include_neighbours=False))
    assert len(neighbours_for_sample(cat, _sample(cat), off)) == 0
    sim = dict(cfg, sources=dict(cfg["sources"], kind="simulation"))
    assert len(neighbours_for_sample(cat, _sample(cat), sim)) == 0


def test_neighbour_lands_at_its_sky_position(tmp_path, repo_root):
    """A neighbour's photons enter the SIMPUT as their own list, centred on its RA/Dec."""
    from astropy.io import fits

    from xclusters.observe.photons import make_photon_list, project_to_simput
    from xclusters.sources import build_analytic_source, write_source

    src_cfg = load_config(repo_root / "config" / "test.yaml")["sources"]
    src_cfg = dict(src_cfg, grid_cells=12, subsample=1, include_agn=False)
    emis = emission_settings(model="bremsstrahlung", emin_keV=0.5, emax_keV=7.0, nbins=50,
                             nh_1e22=0.0, allow_download=False, apec_table_path=None)
    lists = {}
    for hid, m, z in ((1, 3e14, 0.1), (2, 5e13, 0.105)):
        s = build_analytic_source({"halo_id": hid, "m500c": m, "redshift": z}, src_cfg, seed=5)
        write_source(tmp_path / f"s{hid}.h5", s)
        lists[hid] = make_photon_list(tmp_path / f"s{hid}.h5", tmp_path / f"p{hid}.h5",
                                      emission_cfg=emis, area_cm2=500.0, exposure_s=2.0e4,
                                      seed=hid)
    nb_pos = (180.1, 0.05)
    simput = project_to_simput(lists[1], "z", tmp_path / "simput", nh_1e22=0.0,
                               sky_center_deg=(180.0, 0.0), seed=1,
                               neighbours=[{"photons": lists[2], "ra": nb_pos[0],
                                            "dec": nb_pos[1], "name": "nb_h00000002"}])
    with fits.open(simput) as hl:
        assert list(hl["SRC_CAT"].data["SRC_NAME"]) == ["cluster", "nb_h00000002"]
    with fits.open(simput.parent / "nb_h00000002_phlist.fits") as hl:
        ra, dec = hl[1].data["RA"], hl[1].data["DEC"]
    with fits.open(simput.parent / "cluster_phlist.fits") as hl:
        ra0, dec0 = hl[1].data["RA"], hl[1].data["DEC"]
    assert np.median(ra) == pytest.approx(nb_pos[0], abs=0.01)
    assert np.median(dec) == pytest.approx(nb_pos[1], abs=0.01)
    assert np.median(ra0) == pytest.approx(180.0, abs=0.01)
    assert not list(simput.parent.glob("*_events.h5"))     # scratch event files removed
