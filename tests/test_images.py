"""Band images: WCS round trip, no PSF in the ideal image, annulus background, layout."""
from __future__ import annotations

import numpy as np
import pytest
from astropy.io import fits
from astropy.wcs import WCS

from _xc_instrument_helpers import SKY, base_config, make_simput


@pytest.fixture(scope="module")
def rdir(tmp_path_factory):
    return tmp_path_factory.mktemp("responses")


def _offset_center(n_pixels_half: float, pixel_arcsec: float):
    """Sky position half a pixel from the centre in RA and Dec (the centre of a pixel)."""
    from xclusters.images import image_wcs

    w = image_wcs(SKY, 32, pixel_arcsec)
    ra, dec = w.wcs_pix2world([[16.0, 16.0]], 0)[0]   # 0-based centre of pixel (16, 16)
    return float(ra), float(dec)


def test_ideal_point_source_stays_in_one_pixel_and_wcs_round_trips(tmp_path, rdir):
    from xclusters.images import make_band_images
    from xclusters.observe.events import simulate_events
    from xclusters.provenance import provenance_record

    cfg = base_config(rdir)
    src = _offset_center(16, 9.6)
    simput = make_simput(tmp_path / "pt_simput.fits", *src, n_photons=400)
    ev = simulate_events(simput, "ideal", tmp_path / "ev.fits", config=cfg, sky_center_deg=SKY,
                         seed=2)
    out = make_band_images(ev, "ideal", tmp_path / "im.fits", config=cfg, sky_center_deg=SKY,
                           provenance=provenance_record(cfg, emission_model="test"))
    with fits.open(out) as f:
        data, h = f[0].data, f[0].header
    assert data.shape == (3, 32, 32) and data.dtype.kind == "f" and data.dtype.itemsize == 4
    total = data.sum(axis=0)
    assert total.sum() > 50
    assert total.max() == total.sum()                  # no PSF: every event in one pixel
    assert np.unravel_index(total.argmax(), total.shape) == (16, 16)
    w = WCS(h).celestial
    x, y = w.world_to_pixel_values(*SKY)
    assert (x, y) == pytest.approx((15.5, 15.5))       # sky centre = image centre (0-based)
    assert h["CTYPE1"] == "RA---TAN" and h["CTYPE2"] == "DEC--TAN" and h["CTYPE3"] == "BAND"
    assert h["CDELT2"] * 3600 == pytest.approx(9.6)
    assert h["HIERARCH XC RESPONSE_ARF_SHA256"]
    assert h["HIERARCH XC EMISSION_MODEL"] == "test"
    assert (h["BAND1LO"], h["BAND3HI"]) == (0.5, 7.0)


def test_erosita_image_has_bands_crop_and_annulus_keys(tmp_path, rdir):
    from xclusters.images import make_band_images
    from xclusters.observe.events import simulate_events

    cfg = base_config(rdir, erosita={"field_pixels": 300, "image_pixels": 32})
    ev = simulate_events(None, "erosita", tmp_path / "ev.fits", config=cfg, sky_center_deg=SKY,
                         seed=4)
    out = make_band_images(ev, "erosita", tmp_path / "im.fits", config=cfg, sky_center_deg=SKY)
    h = fits.getheader(out)
    assert fits.getdata(out).shape == (3, 32, 32)
    assert h["BKGANNOK"] and all(h[f"BKGANN{i}"] >= 1.0 for i in (1, 2, 3))
    assert (h["BAND1LO"], h["BAND1HI"], h["BAND3LO"], h["BAND3HI"]) == (74, 177, 275, 722)


def test_chandra_image_is_one_broad_band_on_the_rebinned_field(tmp_path, rdir):
    from xclusters.images import make_band_images
    from xclusters.observe.events import simulate_events

    cfg = base_config(rdir, chandra_acisi={"exposure_ks": 2.0, "field_arcmin": 4.0,
                                           "image_pixels": 32})
    ev = simulate_events(None, "chandra_acisi", tmp_path / "ev.fits", config=cfg,
                         sky_center_deg=SKY, seed=4)
    out = make_band_images(ev, "chandra_acisi", tmp_path / "im.fits", config=cfg,
                           sky_center_deg=SKY)
    h, d = fits.getheader(out), fits.getdata(out)
    assert d.shape == (1, 32, 32)
    assert h["CDELT2"] * 3600 == pytest.approx(4.0 * 60 / 32)
    with fits.open(ev) as f:
        e = f["EVENTS"].data["ENERGY"] * 1e-3
        assert d.sum() == ((e >= 0.5) & (e < 7.0)).sum()   # every in-band event is binned


def test_annulus_background_mean_of_nonzero_pixels():
    from xclusters.images import annulus_background

    cube = np.zeros((2, 300, 300), np.float32)
    yy, xx = np.indices((300, 300))
    r = np.hypot(xx - 149.5, yy - 149.5)
    ring = (r >= 140) & (r < 145)
    cube[0][ring] = 2.0
    cube[0][ring & (xx > 150)] = 0.0                   # zeros are ignored
    cube[1][~ring] = 7.0                              # outside the ring is ignored
    np.testing.assert_allclose(annulus_background(cube), [2.0, 0.0])
    assert annulus_background(np.zeros((1, 64, 64))) is None
