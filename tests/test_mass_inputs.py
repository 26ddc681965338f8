"""Inputs of the mass CNN (issue 16): the redshift as a second input (item 7, Krippendorf
et al. 2024) and the standardised log1p input scaling.

Model with two inputs, the ((image, z), log_m) pipeline, one epoch of training from a tiny
dataset.h5, dataset-level and single-image prediction, the model record demanding a
redshift at inference; the log1p_standardized constants saved with the model.
"""
from __future__ import annotations

import os

os.environ.setdefault("TF_NUM_INTRAOP_THREADS", "1")
os.environ.setdefault("TF_NUM_INTEROP_THREADS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import h5py  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from astropy.io import fits  # noqa: E402
from astropy.table import Table  # noqa: E402

keras = pytest.importorskip("keras")

from xclusters.models.mass import build_mass_model, needs_redshift  # noqa: E402
from xclusters.models.params import count_trainable  # noqa: E402

N = 32
N_CLUSTERS = 10


def _write_dataset(path, *, chandra_redshift: float | None = None):
    """10 clusters x 1 projection, 10 folds, 32x32 Chandra blobs; light-cone redshifts
    (Chandra observed at them unless ``chandra_redshift`` is given)."""
    rng = np.random.default_rng(16)
    log_m = np.linspace(13.8, 14.8, N_CLUSTERS)
    z = np.linspace(0.05, 0.3, N_CLUSTERS)
    yy, xx = np.mgrid[:N, :N] - (N - 1) / 2
    images = np.stack([rng.poisson(30 * (m - 13) * np.exp(-(xx**2 + yy**2) / (2 * 3.0**2)))
                       for m in log_m]).astype(np.float32)[..., None]
    cols = [("cluster_id", "S16"), ("halo_id", "i8"), ("projection", "S1"),
            ("augmentation", "i4"), ("m500c", "f8"), ("log_m500c", "f8"), ("r500c_kpc", "f8"),
            ("r500c_pix_erosita", "f8"), ("r500c_pix_chandra", "f8"), ("redshift", "f8"),
            ("fold", "i4"), ("split", "S8"), ("chandra_redshift", "f8")]
    meta = np.zeros(N_CLUSTERS, dtype=cols)
    meta["cluster_id"] = [f"c{i:03d}".encode() for i in range(N_CLUSTERS)]
    meta["halo_id"] = np.arange(N_CLUSTERS)
    meta["projection"] = b"x"
    meta["log_m500c"] = log_m
    meta["m500c"] = 10**log_m
    meta["r500c_kpc"] = 1000.0
    meta["r500c_pix_erosita"] = 5.0
    meta["r500c_pix_chandra"] = 10.0
    meta["redshift"] = z
    meta["fold"] = np.arange(N_CLUSTERS) % 10
    meta["split"] = b"train"
    meta["chandra_redshift"] = z if chandra_redshift is None else chandra_redshift
    with h5py.File(path, "w") as f:
        f["chandra/images"] = images
        f["meta"] = meta
        f.attrs["augmentation"] = "on_the_fly"
        f.attrs["chandra_exposure_s"] = 1e5
        f.attrs["complete"] = 1
    return log_m, z


def test_model_has_two_inputs_and_uses_the_redshift():
    keras.utils.set_random_seed(1)
    plain = build_mass_model(N)
    model = build_mass_model(N, redshift_input=True, output_bias=14.0)
    assert [tuple(i.shape[1:]) for i in model.inputs] == [(N, N, 1), (1,)]
    assert needs_redshift(model) and not needs_redshift(plain)
    # Dense 200 sees 64 pooled features + z: 200 more weights than the paper's 58,437
    assert count_trainable(plain) == 58437
    assert count_trainable(model) == 58437 + 200
    x = np.random.default_rng(0).poisson(5.0, (2, N, N, 1)).astype(np.float32)
    y0 = model.predict([x, np.zeros((2, 1), np.float32)], verbose=0)
    y1 = model.predict([x, np.full((2, 1), 5.0, np.float32)], verbose=0)
    assert not np.allclose(y0, y1)  # the output depends on the redshift input


def test_pipeline_yields_redshift_and_prefers_chandra_redshift(tmp_path):
    from xclusters.dataset.layout import chandra_observation_redshift, read_meta
    from xclusters.dataset.tfdata import mass_dataset

    ds_path = tmp_path / "d.h5"
    log_m, z = _write_dataset(ds_path)
    (x, zz), y = next(iter(mass_dataset(ds_path, list(range(10)), 10, False, 0,
                                        shuffle=False, redshift=True)))
    assert tuple(x.shape) == (10, N, N, 1) and tuple(zz.shape) == (10, 1)
    np.testing.assert_allclose(np.asarray(zz)[:, 0], z, rtol=1e-6)
    np.testing.assert_allclose(np.asarray(y)[:, 0], log_m, rtol=1e-6)
    x_only, _ = next(iter(mass_dataset(ds_path, [0], 4, False, 0)))
    assert tuple(x_only.shape) == (1, N, N, 1)  # redshift=False: images only, as before
    fixed = tmp_path / "fixed.h5"
    _write_dataset(fixed, chandra_redshift=0.05)
    np.testing.assert_allclose(chandra_observation_redshift(read_meta(fixed)), 0.05)
    np.testing.assert_allclose(chandra_observation_redshift(read_meta(ds_path)), z)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """One epoch with the redshift input from a tiny dataset.h5, via the workflow step."""
    from xclusters.config import load_config
    from xclusters.pipeline.training import train_mass_from_dataset

    d = tmp_path_factory.mktemp("zmass")
    log_m, z = _write_dataset(d / "dataset.h5")
    cfg = load_config(os.path.join(os.path.dirname(__file__), "..", "config", "test.yaml"))
    cfg["instruments"]["chandra_acisi"].update(image_pixels=N, field_arcmin=N * 9.375 / 60)
    cfg["train"]["mass"].update(max_epochs=1, batch_size=4, redshift_input=True)
    summary = train_mass_from_dataset(d / "dataset.h5", 0, d / "mass_fold0.keras", config=cfg,
                                      workdir=d / "work")
    return d, summary, log_m, z


def test_training_and_dataset_prediction_with_redshift(trained):
    from xclusters.models.record import read_training_record
    from xclusters.pipeline.predictions import predict_mass_folds
    from xclusters.predict.loading import load_trained_model

    d, summary, log_m, z = trained
    assert summary["epochs_run"] == 1 and summary["redshift_input"] is True
    model = load_trained_model(d / "mass_fold0.keras", "mass")
    assert needs_redshift(model)
    assert read_training_record(d / "mass_fold0.keras")["redshift_input"] is True
    predict_mass_folds([d / "mass_fold0.keras"], d / "dataset.h5", d / "mass.ecsv")
    t = Table.read(d / "mass.ecsv")
    assert list(t["fold"]) == [0] and np.isfinite(t["log_m500c_pred"][0])
    img = h5py.File(d / "dataset.h5")["chandra/images"][0:1]
    want = model.predict([img, np.array([[z[0]]], np.float32)], verbose=0)[0, 0]
    assert t["log_m500c_pred"][0] == pytest.approx(want, abs=1e-5)


def _chandra_fits(path, img, **cards):
    from xclusters.images.grid import image_wcs

    hdr = image_wcs((150.0, 2.2), N, 9.375).to_header()
    hdr.update(BUNIT="count", EXPOSURE=1e5, INSTRUME="chandra_acisi", **cards)
    fits.PrimaryHDU(np.asarray(img, np.float32), header=hdr).writeto(path)
    return path


def test_predict_mass_needs_the_redshift(trained, tmp_path):
    from xclusters.cli.main import main
    from xclusters.predict.fitsio import InputFileError
    from xclusters.predict.mass import predict_mass, predict_mass_arrays

    d, _, _, _ = trained
    model = d / "mass_fold0.keras"
    with h5py.File(d / "dataset.h5") as f:
        img = f["chandra/images"][3, :, :, 0]
    bare = _chandra_fits(tmp_path / "bare.fits", img)
    with pytest.raises(InputFileError, match=r"redshift_input: true.*no REDSHIFT header.*"
                                             r"--redshift"):
        predict_mass(model, bare)
    with pytest.raises(ValueError, match="give the observation's redshift"):
        predict_mass_arrays(model, img[None])
    a = predict_mass(model, bare, redshift=0.2)
    b = predict_mass(model, _chandra_fits(tmp_path / "z.fits", img, REDSHIFT=0.2))
    c = predict_mass(model, bare, redshift=0.05)
    assert a == pytest.approx(b) and a != pytest.approx(c, abs=1e-7)
    assert main(["predict-mass", "--model", str(model), "--image", str(bare),
                 "--redshift", "0.2"]) == 0


def test_log1p_standardized_scaling_is_saved_with_the_model(tmp_path):
    from pathlib import Path

    from xclusters.models.mass import log1p_pixel_stats
    from xclusters.models.record import _input_scaling
    from xclusters.predict.loading import load_trained_model

    x = np.random.default_rng(3).poisson(20.0, (4, N, N, 1)).astype(np.float32)
    mean, std = log1p_pixel_stats(x)
    v = np.log1p(x)
    assert mean == pytest.approx(v.mean()) and std == pytest.approx(v.std())
    model = build_mass_model(N, input_scaling="log1p_standardized", log1p_mean_std=(mean, std))
    scaled = model.get_layer("log1p_counts")(x)
    np.testing.assert_allclose(np.mean(scaled), 0.0, atol=1e-5)
    np.testing.assert_allclose(np.std(scaled), 1.0, rtol=1e-4)
    model.save(tmp_path / "m.keras")
    again = load_trained_model(tmp_path / "m.keras", "mass")
    np.testing.assert_allclose(again.predict(x, verbose=0), model.predict(x, verbose=0),
                               rtol=1e-6)
    assert _input_scaling(Path(tmp_path / "m.keras")) == "log1p_standardized"
    build_mass_model(N).save(tmp_path / "plain.keras")
    assert _input_scaling(Path(tmp_path / "plain.keras")) == "log1p"
    with pytest.raises(ValueError, match="input_scaling"):
        build_mass_model(N, input_scaling="sqrt")
