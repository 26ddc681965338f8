"""End-to-end: the whole Snakemake graph on config/test.yaml (4 clusters, 32x32, one epoch).

The run is the session fixture ``run_dir`` of conftest.py (tests/test_slurm.py compares the same
run on Slurm with it)."""
from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
import pytest
from astropy.io import fits
from astropy.table import Table
from astropy.wcs import WCS

from _xc_snakemake import REPO
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
                assert "HIERARCH XC FINGERPRINTS" in hdul[0].header


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
    for kind in ("superobs", "mass"):  # issue 16 item 5
        assert (run / "evaluation" / kind / "fig_learning_curves.png").stat().st_size > 0
    report = run / "report.html"
    assert report.stat().st_size > 10_000


@pytest.mark.slow
def test_rerun_is_a_no_op(run_dir):
    run, cfg = run_dir
    proc = _snakemake(*cfg, "-n")
    assert "Nothing to be done" in proc.stdout + proc.stderr


def _tree(root: Path) -> dict[str, tuple[int, int]]:
    """``{relative path: (mtime_ns, size)}`` of every file under ``root``."""
    return {str(p.relative_to(root)): (p.stat().st_mtime_ns, p.stat().st_size)
            for p in sorted(root.rglob("*")) if p.is_file()}


def _with(tmp_path: Path, dotted: str, value) -> Path:
    """config/test.yaml with one key changed, as a new file."""
    import yaml

    cfg = yaml.safe_load((REPO / "config" / "test.yaml").read_text())
    node = cfg
    *parents, last = dotted.split(".")
    for part in parents:
        node = node.setdefault(part, {})
    node[last] = value
    path = tmp_path / f"{dotted}.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def _jobs(proc) -> set[str]:
    """Rule names in the "Job stats" table of a dry run (empty when nothing is to be done)."""
    out, rows = proc.stdout + proc.stderr, set()
    if "Job stats:" not in out:
        return rows
    table = out.split("Job stats:", 1)[1].splitlines()
    for line in table[3:]:
        parts = line.split()
        if not parts or parts[0] == "total":
            break
        rows.add(parts[0])
    return rows - {"all"}


_DOWNSTREAM_OF_IMAGES = {"build_shard", "dataset", "train_superobs", "train_mass",
                         "predict_superobs", "predict_mass", "evaluate_superobs",
                         "evaluate_superobs_trainval", "evaluate_mass",
                         "learning_curves_superobs", "learning_curves_mass"}
# key -> rules a dry run must list (issue 15: a change reruns its stage and what depends on
# it, nothing upstream)
_RERUNS = {
    "instruments.erosita.exposure_ks": (4.0, _DOWNSTREAM_OF_IMAGES),
    "sources.cool_core_fraction": (0.9, _DOWNSTREAM_OF_IMAGES),
    "emission.model": ("bremsstrahlung", _DOWNSTREAM_OF_IMAGES),
    "instruments.erosita.image_pixels": (16, _DOWNSTREAM_OF_IMAGES),
    "train.superobs.epochs": (3, {"train_superobs", "predict_superobs", "evaluate_superobs",
                                  "evaluate_superobs_trainval", "learning_curves_superobs"}),
    "evaluate.n_value_bins": (4, {"evaluate_superobs", "evaluate_superobs_trainval",
                                  "evaluate_mass"}),
    # the sample changes: everything after it (the shards checkpoint hides build_shard)
    "seed": (7, {"sample", "shards", "dataset", "train_superobs", "train_mass",
                 "predict_superobs", "predict_mass", "evaluate_superobs",
                 "evaluate_superobs_trainval", "evaluate_mass", "learning_curves_superobs",
                 "learning_curves_mass"}),
}


@pytest.mark.slow
def test_a_changed_key_reruns_its_stage_and_downstream_only(run_dir, tmp_path):
    run, _ = run_dir
    results = str(run.parent)
    for key, (value, expected) in _RERUNS.items():
        proc = _snakemake("--configfile", str(_with(tmp_path, key, value)), "--config",
                          f"results_dir={results}", "-n")
        assert _jobs(proc) == expected, key


@pytest.mark.slow
def test_parsing_writes_nothing(run_dir, tmp_path):
    """``-n``, ``--lint`` and ``--report`` with an edited config leave results/ untouched
    (the resolved config is written when a real run starts, after Snakemake takes its lock)."""
    run, _ = run_dir
    before = _tree(run.parent)
    cfg = ["--configfile", str(_with(tmp_path, "train.superobs.epochs", 3)), "--config",
           f"results_dir={run.parent}"]
    _snakemake(*cfg, "-n")
    _snakemake(*cfg, "--lint", check=False)
    _snakemake(*cfg, "--report", str(tmp_path / "report.html"))
    assert _tree(run.parent) == before
    assert (tmp_path / "report.html").is_file()
