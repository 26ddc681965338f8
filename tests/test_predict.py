"""Inference: FITS images and event lists round-trip with their WCS; clear input errors."""
import os

os.environ.setdefault("TF_NUM_INTRAOP_THREADS", "1")
os.environ.setdefault("TF_NUM_INTEROP_THREADS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import pytest  # noqa: E402

pytest.importorskip("tensorflow")
from astropy.io import fits  # noqa: E402
from astropy.wcs import WCS  # noqa: E402

from xclusters.models.mass import build_mass_model  # noqa: E402
from xclusters.models.superobs import build_superobs_model  # noqa: E402
from xclusters.predict.baseline import annulus_background, nr_baseline  # noqa: E402
from xclusters.images.grid import image_wcs  # noqa: E402
from xclusters.predict.fitsio import InputFileError  # noqa: E402
from xclusters.predict.loading import ModelFileError, load_trained_model  # noqa: E402
from xclusters.predict.mass import predict_mass, predict_mass_arrays  # noqa: E402
from xclusters.predict.superobs import (clip_negative_counts, predict_superobs,  # noqa: E402
                                        predict_superobs_arrays)
from xclusters.seeds import rng_for  # noqa: E402

N = 32
RA0, DEC0 = 150.0, 2.2


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    d = tmp_path_factory.mktemp("models")
    import keras

    keras.utils.set_random_seed(3)
    s, m = d / "superobs.keras", d / "mass_fold0.keras"
    build_superobs_model(3, None).save(s)
    build_mass_model(N, output_bias=14.3).save(m)
    return s, m


def _cube(seed=1):
    return rng_for(seed, 0, "test_predict").poisson(2.0, (3, N, N)).astype(np.float32)


def test_predict_image_cube_roundtrip_keeps_wcs(models, tmp_path):
    wcs = image_wcs((RA0, DEC0), N, 9.6)
    cube = _cube()
    src = tmp_path / "erosita.fits"
    hdr = wcs.to_header()
    hdr["BUNIT"] = "count"
    hdr["EXPOSURE"] = 2000.0
    fits.PrimaryHDU(cube, header=hdr).writeto(src)
    out = tmp_path / "pred.fits"
    res = predict_superobs(models[0], src, out_fits=out)
    with fits.open(out) as hdul:
        assert hdul[0].data.shape == (3, N, N)
        w = WCS(hdul[0].header).celestial
        np.testing.assert_allclose(w.wcs.crval, [RA0, DEC0])
        np.testing.assert_allclose(w.wcs.cdelt, wcs.wcs.cdelt)
        np.testing.assert_array_equal(hdul["INPUT"].data, cube)
        assert hdul[0].header["EXPOSURE"] == 10000.0
        assert hdul[0].header["CTYPE3"] == "BAND" and hdul[0].header["BAND1"] == "soft"
        assert "HIERARCH XC MODEL_SHA256" in hdul[0].header or "XC MODEL_SHA256" in hdul[0].header
    # eROSITA-NR from the full-field annulus background written by the image stage
    hdr.update({"BKGANN1": 1.0, "BKGANN2": 0.5, "BKGANN3": 0.0})
    src2 = tmp_path / "erosita_bkg.fits"
    fits.PrimaryHDU(cube, header=hdr).writeto(src2)
    res2 = predict_superobs(models[0], src2, out_fits=tmp_path / "pred2.fits", nr_baseline=True)
    np.testing.assert_allclose(res2["background"], [1.0, 0.5, 0.0])
    np.testing.assert_allclose(res2["baseline"][0], np.clip(cube[0] - 1.0, 0, None))
    direct = predict_superobs_arrays(load_trained_model(models[0], "superobs"),
                                     np.moveaxis(cube, 0, -1)[None])
    np.testing.assert_allclose(res["prediction"], np.moveaxis(direct[0], -1, 0), rtol=1e-5)


def test_predict_three_hdu_image_and_bad_inputs(models, tmp_path):
    cube = _cube(2)
    src = tmp_path / "bands.fits"
    fits.HDUList([fits.PrimaryHDU()] + [fits.ImageHDU(p, name=n) for p, n in
                                        zip(cube, ("SOFT", "MEDIUM", "HARD"))]).writeto(src)
    res = predict_superobs(models[0], src, out_fits=tmp_path / "p.fits")
    assert res["prediction"].shape == (3, N, N)
    two = tmp_path / "two.fits"
    fits.PrimaryHDU(cube[:2]).writeto(two)
    with pytest.raises(InputFileError, match=r"3-band image.*\(2, 32, 32\)"):
        predict_superobs(models[0], two, out_fits=tmp_path / "x.fits")
    flux = tmp_path / "flux.fits"
    h = fits.Header()
    h["BUNIT"] = "erg/s/cm2"
    fits.PrimaryHDU(cube, header=h).writeto(flux)
    with pytest.raises(InputFileError, match="BUNIT"):
        predict_superobs(models[0], flux, out_fits=tmp_path / "x.fits")


def test_model_file_errors_name_the_file(models, tmp_path):
    junk = tmp_path / "junk.keras"
    junk.write_text("not a model")
    with pytest.raises(ModelFileError, match="junk.keras"):
        load_trained_model(junk, "superobs")
    with pytest.raises(ModelFileError, match="mass_fold0.keras.*super-observation"):
        load_trained_model(models[1], "superobs")
    with pytest.raises(ModelFileError, match="not found"):
        load_trained_model(tmp_path / "missing.keras", "mass")


def _events(path, n_per_band=(50, 30, 20), pi_unit="Chan", scale=1.0, seed=4):
    rng = rng_for(seed, 0, "events")
    ra, dec, pi = [], [], []
    for (lo, hi), n in zip(((74, 177), (178, 274), (275, 722)), n_per_band):
        ra.append(RA0 + rng.normal(0, 40 / 3600, n) / np.cos(np.radians(DEC0)))
        dec.append(DEC0 + rng.normal(0, 40 / 3600, n))
        pi.append(rng.integers(lo, hi + 1, n))
    pi.append(np.array([10, 900]))  # outside the bands
    ra.append(np.array([RA0, RA0]))
    dec.append(np.array([DEC0, DEC0]))
    cols = [fits.Column("RA", "D", "deg", array=np.concatenate(ra)),
            fits.Column("DEC", "D", "deg", array=np.concatenate(dec)),
            fits.Column("PI", "J", pi_unit, array=(np.concatenate(pi) * scale).astype(int))]
    t = fits.BinTableHDU.from_columns(cols, name="EVENTS")
    t.header["EXPOSURE"] = 2000.0
    fits.HDUList([fits.PrimaryHDU(), t]).writeto(path)
    return path


def test_predict_event_list_bins_bands_on_tan_wcs(models, tmp_path):
    ev = _events(tmp_path / "events.fits")
    out = tmp_path / "pred_ev.fits"
    res = predict_superobs(models[0], ev, out_fits=out, sky_center=(RA0, DEC0), event_list=True,
                           image_pixels=N, nr_baseline=True)
    assert res["input"].shape == (3, N, N)
    # 40" Gaussians on a 32 x 9.6" field: nearly all events land in the image, in their band
    sums = res["input"].sum(axis=(1, 2))
    assert sums[0] <= 50 and sums[0] >= 48 and sums[1] >= 28 and sums[2] >= 18
    with fits.open(out) as hdul:
        w = WCS(hdul["PREDICTION"].header).celestial
        x, y = w.world_to_pixel_values(RA0, DEC0)
        assert (x, y) == pytest.approx(((N - 1) / 2, (N - 1) / 2))
        assert hdul["EROSITA_NR"].data.shape == (3, N, N)
        assert np.all(hdul["EROSITA_NR"].data >= 0)
    # no sky position and none in the header -> clear error
    with pytest.raises(InputFileError, match="sky_center"):
        predict_superobs(models[0], ev, out_fits=tmp_path / "x.fits", event_list=True,
                         image_pixels=N)


def test_event_list_pi_units(models, tmp_path):
    ev_ev = _events(tmp_path / "ev_ev.fits", pi_unit="eV", scale=10.0)  # 10 eV per channel
    res = predict_superobs(models[0], ev_ev, out_fits=tmp_path / "a.fits",
                           sky_center=(RA0, DEC0), event_list=True, image_pixels=N)
    assert res["input"].sum() > 90
    bad = _events(tmp_path / "bad.fits", pi_unit="", scale=10.0)
    with pytest.raises(InputFileError, match="TUNIT to 'eV'"):
        predict_superobs(models[0], bad, out_fits=tmp_path / "b.fits", sky_center=(RA0, DEC0),
                         event_list=True, image_pixels=N)


def test_nr_baseline_annulus_mean_of_nonzero_pixels():
    cube = np.zeros((3, 300, 300), np.float32)
    cube[:, ::2, :] = 2.0  # half the annulus pixels are zero: they must not dilute the mean
    cube[0, 150, 150] = 100.0
    bkg = annulus_background(cube)
    np.testing.assert_allclose(bkg, 2.0)
    base, used = nr_baseline(cube)
    assert base[0, 150, 150] == pytest.approx(98.0)
    assert base.min() == 0.0 and np.all(used == bkg)


def test_predict_mass(models, tmp_path):
    img = rng_for(5, 0, "mass").poisson(3.0, (N, N)).astype(np.float32)
    src = tmp_path / "chandra.fits"
    fits.PrimaryHDU(img).writeto(src)
    value = predict_mass(models[1], src)
    assert isinstance(value, float)
    assert value == pytest.approx(predict_mass_arrays(models[1], img[None])[0], rel=1e-6)
    big = tmp_path / "big.fits"
    fits.PrimaryHDU(np.zeros((N + 2, N + 2), np.float32)).writeto(big)
    with pytest.raises(InputFileError, match="34x34 px"):
        predict_mass(models[1], big)


def test_clip_negative_counts_statistics():
    x = np.array([[1.0, -2.0], [3.0, -0.5]], np.float32)
    clipped, stats = clip_negative_counts(x)
    np.testing.assert_array_equal(clipped, [[1.0, 0.0], [3.0, 0.0]])
    assert stats == {"clipped": True, "n_pixels": 2, "pixel_fraction": 0.5, "counts": 2.5,
                     "count_fraction": 2.5 / 4.0}
    assert clip_negative_counts(np.zeros(3))[1]["count_fraction"] == 0.0


@pytest.fixture(scope="module")
def negative_model(tmp_path_factory):
    """A superobs model whose soft band is pushed below 0 (output bias -50 counts)."""
    import keras

    keras.utils.set_random_seed(3)
    model = build_superobs_model(3, None)
    out_layer = model.layers[-1]
    kernel, bias = out_layer.get_weights()
    out_layer.set_weights([kernel, bias + np.array([-50.0, 0.0, 0.0], np.float32)])
    path = tmp_path_factory.mktemp("neg") / "superobs.keras"
    model.save(path)
    return path


def test_predict_writes_no_negative_counts(negative_model, tmp_path):
    """Issue 16 item 4: a model with negative raw output -> FITS >= 0 with NEGCLIP cards."""
    cube = _cube(3)
    src = tmp_path / "erosita.fits"
    hdr = image_wcs((RA0, DEC0), N, 9.6).to_header()
    hdr["BUNIT"] = "count"
    fits.PrimaryHDU(cube, header=hdr).writeto(src)
    raw = predict_superobs_arrays(load_trained_model(negative_model, "superobs"),
                                  np.moveaxis(cube, 0, -1)[None], clip=False)[0]
    raw = np.moveaxis(raw, -1, 0)
    n_neg = int(np.sum(raw < 0))
    assert n_neg >= N * N  # the whole soft band at least
    out = tmp_path / "pred.fits"
    res = predict_superobs(negative_model, src, out_fits=out)
    with fits.open(out) as hdul:
        data, h = hdul[0].data, hdul[0].header
    assert data.min() == 0.0
    np.testing.assert_allclose(data, np.where(raw < 0, 0.0, raw), rtol=1e-5, atol=1e-5)
    assert h["NEGCLIP"] is True and "set to 0" in h.comments["NEGCLIP"]
    assert h["NEGCLNPX"] == n_neg == res["negclip"]["n_pixels"]
    assert h["NEGCLFPX"] == pytest.approx(n_neg / raw.size)
    assert h["NEGCLCNT"] == pytest.approx(-raw[raw < 0].sum(), rel=1e-4)
    assert h["NEGCLFCT"] == pytest.approx(-raw[raw < 0].sum() / data.sum(), rel=1e-4)
    # the default of the array API clips too
    assert predict_superobs_arrays(load_trained_model(negative_model, "superobs"),
                                   np.moveaxis(cube, 0, -1)[None]).min() == 0.0


def test_predict_dataset_writes_no_negative_counts(negative_model, tmp_path):
    import h5py
    from test_dataset import _config, make_run

    from xclusters.dataset import build_dataset
    from xclusters.pipeline.predictions import predict_superobs_test_split

    sample, manifests = make_run(tmp_path)
    h5 = build_dataset(sample, manifests, tmp_path / "dataset.h5", config=_config())
    out = predict_superobs_test_split(negative_model, h5, tmp_path / "pred.h5", split="all")
    with h5py.File(out, "r") as f:
        pred = f["prediction"][()]
        attrs = dict(f.attrs)
    assert pred.min() == 0.0 and np.all(pred[..., 0] == 0.0)
    assert attrs["negclip"] and attrs["negclip_n_pixels"] >= pred[..., 0].size
    assert 0 < attrs["negclip_pixel_fraction"] <= 1
