"""Tests of xclusters.dataset: dataset.h5 building, folds, augmentation, tf.data readers.

Band images are written here with astropy in the images stage's format (a primary-HDU cube
(nbands, ny, nx) float32, CDELT2 in deg, BKGANN1..3 on eROSITA images); tiny sizes.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import h5py
import numpy as np
import pytest
from astropy import units as u
from astropy.cosmology import Planck18
from astropy.io import fits
from astropy.table import Table

from xclusters.dataset import (N_DIHEDRAL, DatasetError, assign_folds, build_dataset,
                               check_dataset, dihedral, fold_roles, load_split_arrays,
                               mass_dataset, read_meta, superobs_dataset)
from xclusters.dataset.tfdata import epoch_plan
from xclusters.dataset import build as build_mod
from xclusters.dataset.folds import dealing_order
from xclusters.seeds import rng_for

NPIX, NCH = 32, 16
ERO_ARCSEC, CH_ARCSEC = 9.6, 20 * 60 / 128  # paper 000 Table 1; paper 004 §2.1.3
AXES = ["x", "z"]


def _tf():
    import tensorflow as tf
    try:
        tf.config.threading.set_inter_op_parallelism_threads(1)
        tf.config.threading.set_intra_op_parallelism_threads(1)
    except RuntimeError:
        pass
    return tf


def _write_image(path, cube, arcsec, bkg=None, cards=None):
    hdu = fits.PrimaryHDU(cube.astype(np.float32))
    for key, value in (cards or {}).items():
        hdu.header[key] = value
    hdu.header["CDELT1"] = -arcsec / 3600.0
    hdu.header["CDELT2"] = arcsec / 3600.0
    hdu.header["CUNIT1"] = hdu.header["CUNIT2"] = "deg"
    for b, v in enumerate(bkg or []):
        hdu.header[f"BKGANN{b + 1}"] = v
    path.parent.mkdir(parents=True, exist_ok=True)
    hdu.writeto(path)


def _config(augmentation="on_the_fly", chandra=True, fixed_redshift=None):
    """The validated default config with this file's settings (every key present)."""
    from xclusters.config import load_config, merge_config, validate_config

    return validate_config(merge_config(load_config(), {
        "seed": 7, "projections": AXES,
        "instruments": {"erosita": {"exposure_ks": 2.0}, "ideal": {"exposure_ks": 10.0},
                        "chandra_acisi": {"enabled": chandra, "exposure_ks": 100.0,
                                          "fixed_redshift": fixed_redshift}},
        "dataset": {"augmentation": augmentation, "n_folds": 10, "val_folds": [8],
                    "test_folds": [9]}}))


def make_run(root, n=5, failed=("c004",), chandra=True, chandra_z=None):
    """Sample of n clusters (z = 0.1), images of all but ``failed``, one manifest; Chandra
    images observed at ``chandra_z`` (header cards as build_cluster writes them) if given."""
    ids = [f"c{i:03d}" for i in range(n)]
    mass = np.array([3e14, 1e14, 8e14, 2e14, 5e14, 6e14, 7e14][:n])
    sample = Table({"cluster_id": ids, "halo_id": np.arange(n) + 10, "m500c": mass,
                    "r500c": 900.0 * (mass / 3e14) ** (1 / 3), "redshift": np.full(n, 0.1)})
    sample["m500c"].unit = u.Msun
    sample["r500c"].unit = u.kpc
    sample.write(root / "sample.ecsv", format="ascii.ecsv")
    status = []
    for i, cid in enumerate(ids):
        if cid in failed:
            status.append(("failed", "photons", "ValueError: boom", ""))
            continue
        for axis in AXES:
            rng = rng_for(1, i, axis)
            ero = rng.poisson(2.0, (3, NPIX, NPIX)).astype(np.float32)
            ero[0, :4, :8] += 50  # asymmetric blob: the 8 transforms differ
            _write_image(root / "clusters" / cid / f"image_erosita_{axis}.fits", ero,
                         ERO_ARCSEC, bkg=[0.02, 0.02, 0.1])
            _write_image(root / "clusters" / cid / f"image_ideal_{axis}.fits", 2 * ero,
                         ERO_ARCSEC)
            if chandra:
                cards = None if chandra_z is None else {
                    "REDSHIFT": chandra_z, "ZLCONE": 0.1, "ZFIXED": True}
                _write_image(root / "clusters" / cid / f"image_chandra_acisi_{axis}.fits",
                             rng.poisson(5.0, (1, NCH, NCH)), CH_ARCSEC, cards=cards)
        status.append(("ok" if i % 2 else "skipped-existing", "", "", ""))
    man = Table(rows=[(cid, *s) for cid, s in zip(ids, status)],
                names=("cluster_id", "status", "stage", "error", "outputs"),
                dtype=[str] * 5)
    man.write(root / "shard_000.manifest.ecsv", format="ascii.ecsv")
    return root / "sample.ecsv", [root / "shard_000.manifest.ecsv"]


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    root = tmp_path_factory.mktemp("run")
    sample, manifests = make_run(root)
    out = build_dataset(sample, manifests, root / "dataset.h5", config=_config())
    return out


# --------------------------------------------------------------------------- folds


def test_folds_mass_ordered_cyclic():
    ids = [f"h{i:02d}" for i in range(25)]
    mass = np.random.default_rng(0).permutation(np.logspace(14, 15, 25))
    folds = assign_folds(ids, mass)
    by_mass = [folds[ids[i]] for i in np.argsort(mass)]
    assert by_mass[:10] == dealing_order() == [9, 8, 0, 1, 2, 3, 4, 5, 6, 7]
    assert by_mass[10:20] == by_mass[:10]
    sizes = np.bincount(list(folds.values()), minlength=10)
    assert sizes.max() - sizes.min() <= 1
    assert fold_roles(3) == {"train": [0, 1, 2, 5, 6, 7, 8, 9], "val": [4], "test": [3]}
    assert fold_roles(9)["val"] == [0]
    few = assign_folds(["a", "b", "c", "d"], [1e14, 2e14, 3e14, 4e14])
    assert sorted(few.values()) == [0, 1, 8, 9]  # train, train, val, test
    with pytest.raises(ValueError, match="overlap"):
        dealing_order(10, [9], [9])


def test_dihedral_group():
    img = np.arange(2 * 4 * 4 * 3, dtype=np.float32).reshape(2, 4, 4, 3)
    outs = [dihedral(img, a) for a in range(N_DIHEDRAL)]
    assert len({o.tobytes() for o in outs}) == 8
    assert all(np.isclose(o.sum(), img.sum()) for o in outs)
    assert np.array_equal(outs[0], img)


# --------------------------------------------------------------------------- build


def test_build_layout_and_meta(built):
    check_dataset(built, ["superobs", "mass"])
    meta = read_meta(built)
    assert len(meta) == 4 * len(AXES)  # c004 failed upstream
    assert "c004" not in set(meta["cluster_id"])
    with h5py.File(built, "r") as fh:
        assert fh["superobs/inputs"].shape == (8, NPIX, NPIX, 3)
        assert fh["superobs/targets"].dtype == np.float32
        assert fh["chandra/images"].shape == (8, NCH, NCH, 1)
        np.testing.assert_allclose(fh["superobs/inputs_full_annulus_bkg"][0], [.02, .02, .1],
                                   rtol=1e-6)
        assert fh.attrs["complete"] == 1 and fh.attrs["erosita_exposure_s"] == 2000.0
        assert fh.attrs["chandra_exposure_s"] == 1e5 and fh.attrs["augmentation"] == "on_the_fly"
        assert json.loads(fh.attrs["failed_clusters"])[0]["cluster_id"] == "c004"
        assert "config_hash" in json.loads(fh.attrs["provenance"])
        # the stored image is the FITS cube, channels last
        ero = fits.getdata(built.parent / "clusters/c001/image_erosita_z.fits")
        row = int(np.nonzero((meta["cluster_id"] == "c001") & (meta["projection"] == "z"))[0][0])
        np.testing.assert_array_equal(fh["superobs/inputs"][row], np.moveaxis(ero, 0, -1))
    # folds over the 4 built clusters by mass: c001 (1e14) -> 9, c003 -> 8, c000 -> 0, c002 -> 1
    fold = {c: f for c, f in zip(meta["cluster_id"], meta["fold"])}
    assert fold == {"c001": 9, "c003": 8, "c000": 0, "c002": 1}
    split = {c: s for c, s in zip(meta["cluster_id"], meta["split"])}
    assert split == {"c001": "test", "c003": "val", "c000": "train", "c002": "train"}
    # R500c in pixels from r500c, z and the header's CDELT2
    r = meta[0]
    theta = (r["r500c_kpc"] * u.kpc / Planck18.angular_diameter_distance(0.1)).to(
        u.arcsec, u.dimensionless_angles()).value
    assert r["r500c_pix_erosita"] == pytest.approx(theta / ERO_ARCSEC)
    assert r["r500c_pix_chandra"] == pytest.approx(theta / CH_ARCSEC)
    assert np.allclose(meta["log_m500c"], np.log10(meta["m500c"]))
    # Chandra observed at the light-cone redshift (no fixed_redshift)
    np.testing.assert_array_equal(meta["chandra_redshift"], meta["redshift"])
    with h5py.File(built, "r") as fh:
        assert json.loads(fh.attrs["chandra_fixed_redshift"]) is None


def test_fixed_chandra_redshift_recorded_and_used(tmp_path):
    """instruments.chandra_acisi.fixed_redshift (paper 004 sec. 2.1.2): meta chandra_redshift
    and r500c_pix_chandra follow the Chandra images' redshift, eROSITA the light cone's."""
    sample, manifests = make_run(tmp_path, chandra_z=0.05)
    out = build_dataset(sample, manifests, tmp_path / "d.h5",
                        config=_config(fixed_redshift=0.05))
    meta = read_meta(out)
    assert np.all(meta["redshift"] == 0.1) and np.all(meta["chandra_redshift"] == 0.05)
    with h5py.File(out, "r") as fh:
        assert json.loads(fh.attrs["chandra_fixed_redshift"]) == 0.05
    r = meta[0]
    for z, col, arcsec in ((0.1, "r500c_pix_erosita", ERO_ARCSEC),
                           (0.05, "r500c_pix_chandra", CH_ARCSEC)):
        theta = (r["r500c_kpc"] * u.kpc / Planck18.angular_diameter_distance(z)).to(
            u.arcsec, u.dimensionless_angles()).value
        assert r[col] == pytest.approx(theta / arcsec), col
    # images made at the light cone while the config asks for z = 0.05: refused
    other = tmp_path / "lightcone"
    other.mkdir()
    sample, manifests = make_run(other)
    with pytest.raises(ValueError, match="fixed_redshift"):
        build_dataset(sample, manifests, other / "d.h5", config=_config(fixed_redshift=0.05))


def test_build_stored_augmentation(tmp_path):
    sample, manifests = make_run(tmp_path, n=3, failed=())
    out = build_dataset(sample, manifests, tmp_path / "d.h5", config=_config("stored"))
    meta = read_meta(out)
    assert len(meta) == 3 * len(AXES) * N_DIHEDRAL  # 3 clusters x 2 projections x 8
    with h5py.File(out, "r") as fh:
        x = fh["superobs/inputs"][:N_DIHEDRAL]
        c = fh["chandra/images"][:N_DIHEDRAL]
    assert list(meta["augmentation"][:8]) == list(range(8))
    for a in range(N_DIHEDRAL):
        np.testing.assert_array_equal(x[a], dihedral(x[0], a))
        np.testing.assert_array_equal(c[a], dihedral(c[0], a))
    arrays = load_split_arrays(out, folds=[9], what="mass", all_augmentations=True)
    assert arrays["images"].shape[0] == len(AXES) * N_DIHEDRAL


def test_killed_build_leaves_nothing_and_incomplete_refused(tmp_path, monkeypatch):
    sample, manifests = make_run(tmp_path, n=3, failed=())
    calls = {"n": 0}
    real = build_mod.read_cluster_image

    def dying(path, nbands=None):
        calls["n"] += 1
        if calls["n"] > 5:
            raise MemoryError("killed")
        return real(path, nbands)

    monkeypatch.setattr(build_mod, "read_cluster_image", dying)
    out = tmp_path / "dataset.h5"
    with pytest.raises(MemoryError):
        build_dataset(sample, manifests, out, config=_config())
    assert not out.exists() and not list(tmp_path.glob(".dataset.h5.tmp-*"))
    with h5py.File(out, "w") as fh:  # a file from an interrupted writer
        fh.create_dataset("meta", data=np.zeros(1))
    with pytest.raises(DatasetError, match=r"dataset\.h5.*complete=1.*rerun"):
        superobs_dataset(out, "train", 2)


def test_missing_parts_listed(tmp_path):
    sample, manifests = make_run(tmp_path, n=3, failed=(), chandra=False)
    out = build_dataset(sample, manifests, tmp_path / "d.h5", config=_config(chandra=False))
    with pytest.raises(DatasetError, match=r"/chandra/images.*chandra_acisi.enabled"):
        mass_dataset(out, [0], 2)
    assert np.isnan(read_meta(out)["r500c_pix_chandra"]).all()


def test_missing_bkg_keyword(tmp_path):
    sample, manifests = make_run(tmp_path, n=3, failed=())
    p = tmp_path / "clusters/c001/image_erosita_x.fits"
    with fits.open(p, mode="update") as hdul:
        del hdul[0].header["BKGANN2"]
    with pytest.raises(ValueError, match="BKGANN2"):
        build_dataset(sample, manifests, tmp_path / "d.h5", config=_config())


# --------------------------------------------------------------------------- tf.data


def _collect(ds):
    xs, ys = [], []
    for x, y in ds:
        xs.append(x.numpy())
        ys.append(y.numpy())
    return np.concatenate(xs), np.concatenate(ys)


def test_superobs_stream_seeded_and_paired(built):
    _tf()
    ds = superobs_dataset(built, "train", batch_size=3, augment=True, seed=5,
                          epoch_definition="pass")
    assert ds.element_spec[0].shape.as_list() == [None, NPIX, NPIX, 3]
    x1, y1 = _collect(ds)
    x2, _ = _collect(ds)  # second epoch: other order / transforms
    x1b, _ = _collect(superobs_dataset(built, "train", 3, True, seed=5,
                                       epoch_definition="pass"))
    assert x1.shape == (4, NPIX, NPIX, 3)  # 2 train clusters x 2 projections
    np.testing.assert_array_equal(y1, 2 * x1)  # the same transform on input and target
    np.testing.assert_array_equal(x1, x1b)  # same seed, same epoch -> same examples
    assert not np.array_equal(x1, x2)
    arrays = load_split_arrays(built, "train")
    stored = {a.tobytes() for img in arrays["inputs"] for a in
              (dihedral(img, k) for k in range(N_DIHEDRAL))}
    assert all(img.tobytes() in stored for img in x1)
    xt, _ = _collect(superobs_dataset(built, "test", 8, augment=False, shuffle=False))
    np.testing.assert_array_equal(xt, load_split_arrays(built, "test")["inputs"])


def _pairs(ds, images):
    """(image index, transform) of every example of one pass over ``ds``."""
    lookup = {dihedral(img, k).tobytes(): (i, k) for i, img in enumerate(images)
              for k in range(N_DIHEDRAL)}
    assert len(lookup) == len(images) * N_DIHEDRAL  # the 8 transforms are distinguishable
    x, y = _collect(ds)
    np.testing.assert_array_equal(y, 2 * x)  # input and target transformed together
    return [lookup[img.tobytes()] for img in x]


def test_paper_epoch_enumerates_every_row_and_transform_once(built):
    """Issue 16 item 3: one (paper) epoch = every (image, dihedral transform) pair once."""
    _tf()
    images = load_split_arrays(built, "train")["inputs"]
    ds = superobs_dataset(built, "train", batch_size=5, augment=True, seed=5)
    plan = epoch_plan(ds)
    assert plan["epoch_definition"] == "paper" and plan["rows"] == len(images) == 4
    assert plan["variants_per_epoch"] == 32 and plan["steps_per_epoch"] == 7
    assert int(ds.cardinality()) == 7
    want = sorted((i, k) for i in range(len(images)) for k in range(N_DIHEDRAL))
    e0, e1 = _pairs(ds, images), _pairs(ds, images)
    assert sorted(e0) == want and sorted(e1) == want  # each pair exactly once per epoch
    assert e0 != e1  # reshuffled each epoch
    assert _pairs(superobs_dataset(built, "train", 5, True, seed=5), images) == e0  # seeded
    assert _pairs(superobs_dataset(built, "train", 5, True, seed=6), images) != e0
    # "pass": each image once per epoch with one random transform
    one = _pairs(superobs_dataset(built, "train", 5, True, seed=5, epoch_definition="pass"),
                 images)
    assert sorted(i for i, _ in one) == [0, 1, 2, 3]
    # un-augmented (validation): each image once, identity
    assert _pairs(superobs_dataset(built, "train", 5, False, seed=5), images) and \
        sorted(_pairs(superobs_dataset(built, "train", 5, False, seed=5), images)) == \
        [(i, 0) for i in range(4)]
    with pytest.raises(ValueError, match="epoch_definition"):
        superobs_dataset(built, "train", 5, epoch_definition="epoch")


def test_mass_stream_labels(built):
    _tf()
    roles = fold_roles(0)
    ds = mass_dataset(built, roles["train"], batch_size=4, augment=True, seed=1)
    x, y = _collect(ds)  # one paper epoch: 4 images x 8 transforms
    assert x.shape == (4 * N_DIHEDRAL, NCH, NCH, 1) and y.shape == (32, 1)
    assert y.dtype == np.float32
    meta = read_meta(built)
    want = np.sort(np.log10(meta["m500c"][np.isin(meta["fold"], roles["train"])]))
    np.testing.assert_allclose(np.sort(y[:, 0]),
                               np.repeat(want, N_DIHEDRAL).astype(np.float32))
    assert epoch_plan(ds)["steps_per_epoch"] == 8 == int(ds.cardinality())
    xv, _ = _collect(mass_dataset(built, roles["val"], 4, False, shuffle=False))
    assert epoch_plan(mass_dataset(built, roles["val"], 4, False))["variants_per_epoch"] \
        == len(xv) == int(np.sum(np.isin(meta["fold"], roles["val"])))  # validation: un-augmented
    with pytest.raises(DatasetError, match="no rows"):
        mass_dataset(built, [5], 4)
    ev = load_split_arrays(built, folds=[9], what="mass", all_augmentations=True)
    assert ev["images"].shape == (len(AXES) * 8, NCH, NCH, 1)
    assert list(ev["meta"]["augmentation"][:8]) == list(range(8))
    np.testing.assert_array_equal(ev["images"][3], dihedral(ev["images"][0], 3))


def test_dataset_bytes_reproducible(tmp_path):
    """Issue 8: the same images and config give a byte-identical dataset.h5."""
    sample, manifests = make_run(tmp_path)
    a = build_dataset(sample, manifests, tmp_path / "a.h5", config=_config())
    b = build_dataset(sample, manifests, tmp_path / "b.h5", config=_config())
    assert Path(a).read_bytes() == Path(b).read_bytes()
