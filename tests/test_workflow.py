"""End-to-end: the whole Snakemake graph on config/test.yaml (4 clusters, 32x32, one epoch).

The run is the session fixture ``run_dir`` of conftest.py (tests/test_slurm.py compares the same
run on Slurm with it)."""
from __future__ import annotations

import h5py
import numpy as np
import pytest
from astropy.io import fits
from astropy.table import Table
from astropy.wcs import WCS

from _xc_snakemake import snakemake as _snakemake


@pytest.mark.slow
def test_images_have_counts_and_wcs(run_dir):
    run, _ = run_dir
    sample = Table.read(run / "sample.ecsv", format="ascii.ecsv")
    assert len(sample) == 4
    neighbours = Table.read(run / "neighbours.ecsv", format="ascii.ecsv")
    assert len(neighbours) > 0, "config/test.yaml includes light-cone neighbours"
    for cid in sample["cluster_id"]:
        n_nb = int(np.sum(neighbours["cluster_id"] == cid))
        assert n_nb <= 2  # neighbour_max_number of config/test.yaml
        for path in (run / "clusters" / cid).glob("image_*.fits"):
            assert fits.getheader(path)["HIERARCH XC N_NEIGHBOURS"] == n_nb, path
        # intermediates are cleaned once the images exist
        assert not (run / "clusters" / cid / "neighbours").exists()
        assert not (run / "clusters" / cid / "photons.h5").exists()
        for inst, nb in (("erosita", 3), ("ideal", 3), ("chandra_acisi", 1)):
            path = run / "clusters" / cid / f"image_{inst}_z.fits"
            with fits.open(path) as hdul:
                data = hdul[0].data
                assert data.shape == (nb, 32, 32), (path, data.shape)
                assert data.sum() > 0, f"{path} holds no counts"
                w = WCS(hdul[0].header).celestial
                assert w.wcs.ctype[0].startswith("RA---TAN")
                ra, dec = w.wcs_pix2world([[15.5, 15.5]], 0)[0]
                assert abs(ra - sample["ra"][sample["cluster_id"] == cid][0]) < 0.01
                assert "HIERARCH XC CONFIG_HASH" in hdul[0].header or \
                    "XC CONFIG_HASH" in hdul[0].header


@pytest.mark.slow
def test_dataset_and_models(run_dir):
    run, _ = run_dir
    with h5py.File(run / "dataset.h5", "r") as h5:
        x = h5["superobs/inputs"]
        y = h5["superobs/targets"]
        c = h5["chandra/images"]
        assert x.shape[1:] == (32, 32, 3) and y.shape == x.shape
        assert c.shape[1:] == (32, 32, 1)
        assert np.asarray(y).sum() > np.asarray(x).sum() * 0.5  # 10 ks ideal vs 2 ks eROSITA
        assert int(h5.attrs["complete"]) == 1
    assert (run / "models" / "superobs.keras").stat().st_size > 0
    assert (run / "models" / "mass_fold0.keras").stat().st_size > 0
    hist = Table.read(run / "models" / "superobs.history.csv", format="ascii.csv")
    assert len(hist) >= 1 and np.isfinite(hist["loss"]).all()


@pytest.mark.slow
def test_evaluation_and_report(run_dir):
    run, _ = run_dir
    table3 = (run / "evaluation" / "superobs" / "superobs_table3.md").read_text()
    assert "Prediction" in table3 and "eROSITA" in table3
    preds = Table.read(run / "predictions" / "mass.ecsv", format="ascii.ecsv")
    assert len(preds) > 0 and np.isfinite(preds["log_m500c_pred"]).all()
    report = run / "report.html"
    assert report.stat().st_size > 10_000


@pytest.mark.slow
def test_rerun_is_a_no_op(run_dir):
    run, cfg = run_dir
    proc = _snakemake(*cfg, "-n")
    assert "Nothing to be done" in proc.stdout + proc.stderr
