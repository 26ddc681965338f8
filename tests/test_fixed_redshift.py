"""Paper 004's geometry: ``instruments.chandra_acisi.fixed_redshift`` (issue 16 item 2).

One real cluster (config/test.yaml, projection x, 32x32 images) at light-cone z = 0.3:

* with ``fixed_redshift: 0.05`` the Chandra image says ``REDSHIFT`` 0.05, ``ZLCONE`` 0.3,
  ``ZFIXED`` T, and has many more counts than at z = 0.3 (the cluster moved closer);
* switching the key rebuilds only the Chandra image (and its own source): eROSITA, ideal and
  the light-cone source keep inode, mtime and bytes, and a fresh run at 0.05 makes the same
  bytes for every image as the switched one;
* a light-cone neighbour shows in the eROSITA image but leaves the fixed-z Chandra image's
  bytes alone.

The dataset side (``chandra_redshift``) is in tests/test_dataset.py.
"""
from __future__ import annotations

import copy
import logging
from pathlib import Path

import pytest
from astropy.io import fits

from xclusters.config import load_config, validate_config

REPO = Path(__file__).resolve().parents[1]
ROW = dict(cluster_id="h00000042", halo_id=42, m500c=3e14, r500c=900.0, redshift=0.3,
           ra=150.0, dec=2.2, seed=5)
IMAGES = ("image_erosita_x.fits", "image_ideal_x.fits", "image_chandra_acisi_x.fits")

pytestmark = pytest.mark.slow


def _config(results: Path, fixed_redshift: float | None) -> dict:
    cfg = load_config(REPO / "config" / "test.yaml")
    cfg["results_dir"] = str(results)
    cfg["projections"] = ["x"]
    table = Path(cfg["emission"]["apec_table_path"] or "")
    if cfg["emission"]["apec_table_path"] and not table.is_absolute():
        cfg["emission"]["apec_table_path"] = str((REPO / table).resolve())
    cfg = copy.deepcopy(cfg)
    cfg["instruments"]["chandra_acisi"]["fixed_redshift"] = fixed_redshift
    return validate_config(cfg)


def _state(cdir: Path) -> dict[str, tuple]:
    return {p.name: (p.stat().st_ino, p.stat().st_mtime_ns, p.read_bytes())
            for p in sorted(cdir.iterdir()) if p.is_file()}


def _chandra(cdir: Path) -> tuple[float, fits.Header]:
    with fits.open(cdir / "image_chandra_acisi_x.fits") as hdul:
        return float(hdul[0].data.sum()), hdul[0].header.copy()


def test_chandra_at_fixed_redshift_rebuilds_only_chandra(tmp_path, caplog):
    from xclusters.instruments import default_response_dir
    from xclusters.pipeline.cluster import build_cluster, cluster_budget, images_current
    from xclusters.stages import build_stages

    clusters = tmp_path / "a" / "clusters"
    cdir = clusters / ROW["cluster_id"]
    light = _config(tmp_path / "a", None)
    build_cluster(ROW, light, str(clusters))
    before = _state(cdir)
    assert set(before) == {*IMAGES, "source.h5"}
    counts_lc, hdr = _chandra(cdir)
    assert (hdr["REDSHIFT"], hdr["ZLCONE"], hdr["ZFIXED"]) == (0.3, 0.3, False)

    fixed = _config(tmp_path / "a", 0.05)
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="xclusters"):
        res = build_cluster(ROW, fixed, str(clusters))
    after = _state(cdir)
    # the fixed-z source stays (as source.h5 does); photon list, SIMPUT, events are cleaned
    assert set(after) == {*IMAGES, "source.h5", "source_zfixed.h5"}
    assert not any(p.is_dir() for p in cdir.iterdir())
    for name in ("image_erosita_x.fits", "image_ideal_x.fits", "source.h5"):
        assert after[name] == before[name], f"{name} was rewritten"
    assert after["image_chandra_acisi_x.fits"][0] != before["image_chandra_acisi_x.fits"][0]
    assert "fixed_redshift None -> 0.05" in caplog.text, caplog.text
    counts_fz, hdr = _chandra(cdir)
    assert (hdr["REDSHIFT"], hdr["ZLCONE"], hdr["ZFIXED"]) == (0.05, 0.3, True)
    assert hdr["HIERARCH XC REDSHIFT"] == 0.05 and hdr["HIERARCH XC N_NEIGHBOURS"] == 0
    # the cluster moved from z = 0.3 to 0.05: D_L^2 is ~46x smaller (the 20' field holds less
    # of the cluster and the background is unchanged, so the counts grow by less)
    assert counts_fz > 3.0 * counts_lc, (counts_fz, counts_lc)
    assert not res.get("skipped", False)

    budget = cluster_budget(fixed, default_response_dir(fixed))
    assert images_current(fixed, ROW, clusters, stages=build_stages(fixed), budget=budget)
    assert not images_current(light, ROW, clusters, stages=build_stages(light), budget=budget)
    assert build_cluster(ROW, fixed, str(clusters))["skipped"]

    # a fresh run at z = 0.05 makes the same bytes: eROSITA/ideal as without fixed_redshift
    fresh = tmp_path / "b" / "clusters"
    build_cluster(ROW, _config(tmp_path / "b", 0.05), str(fresh))
    made = _state(fresh / ROW["cluster_id"])
    for name in IMAGES:
        assert made[name][2] == after[name][2], f"{name} differs between the two runs"

    # light-cone neighbours belong to the light-cone observations only: with one, eROSITA
    # sees it and the fixed-z Chandra image keeps its bytes
    from astropy.table import Table

    from xclusters.catalogs.neighbours import NEIGHBOUR_COLUMNS

    nb = Table(rows=[(ROW["cluster_id"], 7, 3e14, 900.0, 0.25, ROW["ra"] + 0.03, ROW["dec"],
                      1.8, -100.0)], names=list(NEIGHBOUR_COLUMNS))
    nb.write(tmp_path / "neighbours.ecsv", format="ascii.ecsv")
    with_nb = tmp_path / "c" / "clusters"
    build_cluster(ROW, _config(tmp_path / "c", 0.05), str(with_nb),
                  neighbours_file=str(tmp_path / "neighbours.ecsv"))
    made = _state(with_nb / ROW["cluster_id"])
    assert made["image_chandra_acisi_x.fits"][2] == after["image_chandra_acisi_x.fits"][2]
    assert made["image_erosita_x.fits"][2] != after["image_erosita_x.fits"][2]
    with fits.open(with_nb / ROW["cluster_id"] / "image_erosita_x.fits") as hdul:
        assert hdul[0].header["HIERARCH XC N_NEIGHBOURS"] == 1

    # another fixed redshift: the Chandra image and its source again, nothing else
    again = _config(tmp_path / "a", 0.1)
    build_cluster(ROW, again, str(clusters))
    last = _state(cdir)
    for name in ("image_erosita_x.fits", "image_ideal_x.fits", "source.h5"):
        assert last[name] == before[name], f"{name} was rewritten"
    for name in ("image_chandra_acisi_x.fits", "source_zfixed.h5"):
        assert last[name][0] != after[name][0], f"{name} not rebuilt"
    counts_01, hdr = _chandra(cdir)
    assert hdr["REDSHIFT"] == 0.1 and counts_lc < counts_01 < counts_fz
