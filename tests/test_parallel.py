"""Tests of xclusters.io atomic writes and xclusters.parallel (clients, mapping, shards).

The per-cluster function here is a small pure-numpy stand-in (test-only) for the pipeline's
``build_cluster``: it writes ``<cid>/image_test_z.npy`` from the cluster's seed.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from astropy.table import Table

from xclusters.config import load_config
from xclusters.io import atomic_path, atomic_write_bytes, is_temporary, temporary_name
from xclusters.parallel import (ClusterFailure, client_session, local_worker_layout,
                                make_cluster, map_clusters, read_manifest, run_shard,
                                split_shards, stage_context)
from xclusters.seeds import rng_for

SEED = 1234


def standin_build(row: dict, config: dict, outdir: str) -> dict:
    """Test stand-in for build_cluster: deterministic 32x32 image from the cluster seed."""
    cid = row["cluster_id"]
    cdir = Path(outdir) / cid
    cdir.mkdir(parents=True, exist_ok=True)
    with open(Path(outdir) / f"calls_{cid}_{os.getpid()}.log", "a") as fh:
        fh.write("call\n")
    opts = config.get("_test", {})
    if cid in opts.get("kill_once", []):
        marker = cdir / "killed.marker"
        if not marker.exists():
            marker.write_text("killed once")
            os._exit(1)  # simulate a worker killed mid-build (OOM killer, node failure)
    with stage_context("events", cid):
        if cid in opts.get("bad", []):
            raise ValueError(f"synthetic failure of {cid}")
    img = rng_for(config["seed"], row["halo_id"], "standin", "z").poisson(3.0, (32, 32))
    out = cdir / "image_test_z.npy"
    with atomic_path(out) as tmp:
        with open(tmp, "wb") as fh:
            np.save(fh, img.astype(np.float32))
    return {"outputs": [str(out)]}


def standin_expected(row: dict, clusters_dir: Path) -> list[Path]:
    return [Path(clusters_dir) / row["cluster_id"] / "image_test_z.npy"]


def _sample(n: int = 5) -> Table:
    return Table({"cluster_id": [f"c{i:03d}" for i in range(n)],
                  "halo_id": np.arange(100, 100 + n), "m500c": np.logspace(14, 15, n),
                  "redshift": np.linspace(0.05, 0.3, n)})


def _par(**changes) -> dict:
    """The validated default ``parallel`` section with ``changes`` (every key present)."""
    return {**load_config()["parallel"], **changes}


def _config(backend="none", n_workers=1, **test):
    cfg = load_config()
    cfg.update({"seed": SEED, "projections": ["z"], "_test": test,
                "parallel": _par(backend=backend, n_workers=n_workers, threads_per_worker=1,
                                 memory_per_worker_mb=500, retries=1, on_error="skip")})
    return cfg


def _calls(outdir: Path, cid: str) -> int:
    return sum(len(p.read_text().splitlines()) for p in outdir.glob(f"calls_{cid}_*.log"))


def _run_all(tmp: Path, shard_size: int, config: dict, threads: int) -> dict[str, bytes]:
    shards = split_shards(_sample(), shard_size, tmp / "shards")
    with client_session(config["parallel"], threads=threads, mem_mb=1000) as client:
        for sp in shards:
            run_shard(sp, standin_build, config=config, clusters_dir=tmp / "clusters",
                      client=client, expected_outputs=standin_expected)
    return {p.parent.name: p.read_bytes() for p in sorted((tmp / "clusters").glob("*/*.npy"))}


# --------------------------------------------------------------------------- io


def test_atomic_path_success_and_failure(tmp_path):
    final = tmp_path / "sub" / "a.bin"
    with atomic_path(final) as tmp:
        assert tmp == temporary_name(final) and is_temporary(tmp)
        tmp.write_bytes(b"abc")
        assert not final.exists()
    assert final.read_bytes() == b"abc"
    with pytest.raises(RuntimeError):
        with atomic_path(final) as tmp:
            tmp.write_bytes(b"partial")
            raise RuntimeError("killed")
    assert final.read_bytes() == b"abc"
    assert not any(is_temporary(p) for p in final.parent.iterdir())
    atomic_write_bytes(final, b"xyz")
    assert final.read_bytes() == b"xyz"


# --------------------------------------------------------------------------- client


def test_local_layout_follows_job_not_machine():
    cfg = _par(n_workers=8, threads_per_worker=1)
    lay = local_worker_layout(cfg, threads=2, mem_mb=3000)
    assert lay == {"n_workers": 2, "threads_per_worker": 1, "memory_limit_mb": 1500}
    lay = local_worker_layout(_par(n_workers=4, threads_per_worker=2, memory_per_worker_mb=700),
                              threads=4, mem_mb=None)
    assert lay == {"n_workers": 2, "threads_per_worker": 2, "memory_limit_mb": 700}


def test_parallel_settings_are_read_exactly():
    """A missing ``parallel`` key is named, not replaced by a default in the code."""
    from xclusters.settings import MissingSetting

    cfg = _par()
    del cfg["threads_per_worker"]
    with pytest.raises(MissingSetting, match="parallel.threads_per_worker is missing"):
        local_worker_layout(cfg, threads=2, mem_mb=None)


def test_bad_backend_and_missing_address():
    with pytest.raises(TypeError, match="parallel.backend = 'k8s': expected one of"):
        make_cluster(_par(backend="k8s"), threads=1, mem_mb=None)
    from xclusters.parallel import make_client
    with pytest.raises(ValueError, match="parallel.address"):
        make_client(_par(backend="address", address=None), threads=1, mem_mb=None)


@pytest.mark.parametrize("backend,directive", [("slurm", "#SBATCH"), ("pbs", "#PBS")])
def test_jobqueue_cluster_job_script(backend, directive):
    cfg = _par(backend=backend, n_workers=2,
               jobqueue={"cores": 2, "memory": "4GB", "walltime": "01:00:00",
                         "queue": "short"})
    cluster = make_cluster(cfg, threads=1, mem_mb=None)
    try:
        script = cluster.job_script()
    finally:
        cluster.close()
    assert directive in script and "short" in script


# --------------------------------------------------------------------------- shards


def test_split_shards_deterministic(tmp_path):
    paths = split_shards(_sample(5), 3, tmp_path)
    assert [p.name for p in paths] == ["shard_000.ecsv", "shard_001.ecsv"]
    first = [p.read_bytes() for p in paths]
    assert [len(Table.read(p)) for p in paths] == [3, 2]
    split_shards(_sample(5), 3, tmp_path)
    assert [p.read_bytes() for p in paths] == first
    split_shards(_sample(5), 5, tmp_path)  # fewer shards: stale shard_001 removed
    assert sorted(p.name for p in tmp_path.glob("shard_*.ecsv")) == ["shard_000.ecsv"]


def test_resume_recomputes_only_missing(tmp_path):
    config = _config()
    (sp,) = split_shards(_sample(4), 4, tmp_path / "shards")
    clusters = tmp_path / "clusters"
    for cid in ("c000", "c001"):  # half the outputs exist already
        standin_build({"cluster_id": cid, "halo_id": 100 + int(cid[1:])}, config, clusters)
    stale = clusters / "c002" / ".image_test_z.npy.tmp-99999"
    stale.parent.mkdir(parents=True)
    stale.write_bytes(b"half-written")
    before = {c: _calls(clusters, c) for c in ("c000", "c001", "c002", "c003")}
    manifest = read_manifest(run_shard(sp, standin_build, config=config, clusters_dir=clusters,
                                       expected_outputs=standin_expected))
    after = {c: _calls(clusters, c) for c in before}
    assert [after[c] - before[c] for c in ("c000", "c001", "c002", "c003")] == [0, 0, 1, 1]
    assert list(manifest["status"]) == ["skipped-existing"] * 2 + ["ok"] * 2
    assert list(manifest["outputs"]) == [f"c00{i}/image_test_z.npy" for i in range(4)]
    assert not stale.exists()
    assert sp.with_name("shard_000.manifest.ecsv").is_file()


def test_failure_skip_and_fail(tmp_path):
    (sp,) = split_shards(_sample(3), 3, tmp_path / "shards")
    config = _config(bad=["c001"])
    manifest = read_manifest(run_shard(sp, standin_build, config=config,
                                       clusters_dir=tmp_path / "clusters",
                                       expected_outputs=standin_expected))
    row = manifest[1]
    assert (row["status"], row["stage"]) == ("failed", "events")
    assert "synthetic failure of c001" in row["error"] and "ValueError" in row["error"]
    assert list(manifest["status"]) == ["ok", "failed", "ok"]
    assert _calls(tmp_path / "clusters", "c001") == 2  # retried once (parallel.retries=1)
    assert manifest.meta["n_failed"] == 1
    mpath = tmp_path / "m_fail.ecsv"
    with pytest.raises(ClusterFailure, match=r"c001.*'events'.*synthetic failure"):
        run_shard(sp, standin_build, config=config, clusters_dir=tmp_path / "clusters2",
                  expected_outputs=standin_expected, on_error="fail", manifest_path=mpath)
    assert not mpath.exists()


def test_map_clusters_serial_order():
    items = [{"cluster_id": f"x{i}"} for i in range(5)]
    res, fails = map_clusters(_square_or_fail, items, retries=0, on_error="skip")
    assert res == [0, 1, 9, 16] and [f.cluster_id for f in fails] == ["x2"]
    assert fails[0].stage == "clusters" and "ZeroDivisionError" in fails[0].error


def _square_or_fail(item):
    i = int(item["cluster_id"][1:])
    if i == 2:
        return 1 / 0
    return i * i


# --------------------------------------------------------------------------- dask


def test_same_bytes_any_workers_and_shards_and_killed_worker(tmp_path):
    """1 worker / shard size 1 vs 2 workers / shard size 3 (with a worker killed mid-build
    and a failing cluster): identical outputs; the killed task is rerun and completes."""
    serial = _run_all(tmp_path / "a", 1, _config("local", 1), threads=1)
    config = _config("local", 2, kill_once=["c003"], bad=["c001"])
    parallel = _run_all(tmp_path / "b", 3, config, threads=2)
    assert set(serial) == {f"c{i:03d}" for i in range(5)}
    assert set(parallel) == set(serial) - {"c001"}
    for cid, data in parallel.items():
        assert data == serial[cid], cid
    assert (tmp_path / "b" / "clusters" / "c003" / "killed.marker").exists()
    m0 = read_manifest(tmp_path / "b" / "shards" / "shard_000.manifest.ecsv")
    assert list(m0["status"]) == ["ok", "failed", "ok"] and m0["stage"][1] == "events"
    m1 = read_manifest(tmp_path / "b" / "shards" / "shard_001.manifest.ecsv")
    assert list(m1["status"]) == ["ok", "ok"]


def test_address_backend_and_worker_setup(tmp_path):
    """Connect to a running scheduler; the setup hook runs once in every worker."""
    import functools

    from distributed import LocalCluster
    setup = functools.partial(_touch_setup_marker, str(tmp_path))
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                      dashboard_address=None) as cluster:
        cfg = _par(backend="address", address=cluster.scheduler_address)
        with client_session(cfg, threads=1, mem_mb=None, worker_setup=setup) as client:
            pids = set(client.run(os.getpid).values())
            res, fails = map_clusters(_square_or_fail, [{"cluster_id": "x3"}], client=client)
        assert cluster.status.name == "running"  # an external cluster is left running
    assert res == [9] and not fails
    marks = {p.name for p in tmp_path.glob("setup_*")}
    assert marks == {f"setup_{p}" for p in pids} and len(pids) == 2


def _touch_setup_marker(directory: str) -> None:
    Path(directory, f"setup_{os.getpid()}").write_text("ok")


# --------------------------------------------------------------------------- cost order


def test_submission_order_expensive_first_stable_unknown_last():
    from xclusters.parallel import submission_order

    assert submission_order([1.0, 5.0, None, 5.0, 3.0, float("nan")]) == [1, 3, 4, 0, 2, 5]
    assert submission_order([]) == []
    assert submission_order([None, None]) == [0, 1]


def test_expected_cost_follows_flux():
    from xclusters.parallel import expected_cost
    from xclusters.parallel.cost import luminosity_distance_mpc

    # flat LCDM H0=70, Om=0.3: D_L(z=0.1) = 460.1 Mpc, D_L(z=1) = 6607 Mpc
    assert luminosity_distance_mpc(0.1) == pytest.approx(460.1, rel=2e-3)
    assert luminosity_distance_mpc(1.0) == pytest.approx(6607, rel=2e-3)
    near = expected_cost({"m500c": 2e14, "redshift": 0.05})
    far = expected_cost({"m500c": 2e14, "redshift": 0.3})
    heavy_far = expected_cost({"m500c": 8e14, "redshift": 0.3})
    assert near > far and heavy_far > far
    for bad in ({}, {"m500c": None, "redshift": 0.1}, {"m500c": -1.0, "redshift": 0.1},
                {"m500c": 1e14, "redshift": 0.0}, {"m500c": "x", "redshift": 0.1}):
        assert expected_cost(bad) is None


def test_map_clusters_costs_validated():
    with pytest.raises(ValueError, match="2 costs for 3 items"):
        map_clusters(_square_or_fail, [{"cluster_id": f"x{i}"} for i in (0, 1, 3)],
                     costs=[1.0, 2.0])


def _record_start(item):
    with open(item["log"], "a") as fh:
        fh.write(f"{item['cluster_id']}\n")
    return item["cluster_id"]


def test_dask_runs_most_expensive_first_results_in_item_order(tmp_path):
    """One worker: clusters run in decreasing cost (unknown last); results keep item order."""
    log_file = tmp_path / "order.log"
    items = [{"cluster_id": f"x{i}", "log": str(log_file)} for i in range(6)]
    costs = [1.0, 9.0, None, 4.0, 9.0, 2.0]
    with client_session(_par(backend="local", n_workers=1), threads=1, mem_mb=1000) as client:
        res, fails = map_clusters(_record_start, items, client=client, costs=costs)
    assert res == [f"x{i}" for i in range(6)] and not fails
    assert log_file.read_text().split() == ["x1", "x4", "x3", "x5", "x0", "x2"]


def test_run_shard_default_cost_order_keeps_manifest_order(tmp_path):
    """run_shard submits by expected photon count (nearest, heaviest first) on Dask; the
    manifest stays in shard order and every cluster logs its timing."""
    import logging

    sample = _sample(4)
    sample["redshift"] = [0.3, 0.05, 0.2, 0.1]  # flux order: c001, c003, c002, c000
    sample["m500c"] = [2e14] * 4
    (sp,) = split_shards(sample, 4, tmp_path / "shards")
    config = _config("local", 1)
    records = []

    class Grab(logging.Handler):
        def emit(self, record):
            if getattr(record, "xc_timing", None):
                records.append(record.xc_timing)

    plog = logging.getLogger("xclusters.parallel")
    handler, level = Grab(level=logging.DEBUG), plog.level
    plog.addHandler(handler)
    plog.setLevel(logging.DEBUG)
    try:
        with client_session(config["parallel"], threads=1, mem_mb=1000) as client:
            manifest = read_manifest(run_shard(sp, standin_build, config=config,
                                               clusters_dir=tmp_path / "clusters",
                                               client=client,
                                               expected_outputs=standin_expected))
    finally:
        plog.removeHandler(handler)
        plog.setLevel(level)
    assert list(manifest["cluster_id"]) == ["c000", "c001", "c002", "c003"]
    assert list(manifest["status"]) == ["ok"] * 4
    by_start = [t["cluster_id"] for t in sorted(records, key=lambda t: t["start"])]
    assert by_start == ["c001", "c003", "c002", "c000"]
    assert all(t["end"] >= t["start"] and t["cpu_s"] >= 0 for t in records)


def test_timing_summary_span_tail_utilisation():
    from xclusters.parallel import timing_summary

    timings = [{"start": 0.0, "end": 10.0, "cpu_s": 9.0, "worker": "a"},
               {"start": 10.0, "end": 14.0, "cpu_s": 4.0, "worker": "a"},
               {"start": 1.0, "end": 8.0, "cpu_s": 7.0, "worker": "b"}]
    s = timing_summary(timings)
    assert s["n"] == 3 and s["n_workers"] == 2
    assert s["span_s"] == 14.0 and s["busy_s"] == 21.0 and s["cpu_s"] == 20.0
    assert s["tail_s"] == 6.0  # worker b ran out at 8, the shard ended at 14
    assert s["utilisation"] == pytest.approx(21.0 / 28.0)
    assert timing_summary([]) == {}


def test_local_dask_config_keeps_user_settings():
    import dask

    from xclusters.parallel.client import local_dask_config

    cfg = local_dask_config()
    assert cfg["distributed.scheduler.worker-saturation"] == 1.0
    with dask.config.set({"distributed.scheduler.worker-saturation": 2.0}):
        assert "distributed.scheduler.worker-saturation" not in local_dask_config()


def _worker_wakeups():
    import dask

    return (dask.config.get("distributed.admin.tick.interval"),
            dask.config.get("distributed.worker.memory.monitor-interval"))


def test_local_workers_wake_up_less_often():
    """The slower watchdog tick and memory poll reach the worker processes (they read the
    config the nanny passes on), and apply only to clusters made here."""
    import dask

    with client_session(_par(backend="local", n_workers=1), threads=1, mem_mb=1000) as c:
        got = list(c.run(_worker_wakeups).values())
    assert got == [("1s", "2s")]
    assert dask.config.get("distributed.admin.tick.interval") == "20ms"  # caller unchanged


def _worker_env():
    return os.environ.get("MALLOC_TRIM_THRESHOLD_")


def test_local_workers_keep_glibc_dynamic_mmap_threshold(monkeypatch):
    """Dask's nanny would set MALLOC_TRIM_THRESHOLD_=65536 in each worker (and leave it in
    this process's environment): it turns every large NumPy temporary into fresh page faults.
    Local workers start without it, even after an earlier nanny leaked it here; the user's own
    value is kept."""
    import xclusters.parallel.client as client_mod

    monkeypatch.setenv("MALLOC_TRIM_THRESHOLD_", "65536")  # as left by an earlier nanny
    monkeypatch.setattr(client_mod, "_USER_MALLOC_TRIM", None)
    with client_session(_par(backend="local", n_workers=1), threads=1, mem_mb=1000) as c:
        envs = list(c.run(_worker_env).values())
    assert envs == [None]
    monkeypatch.setenv("MALLOC_TRIM_THRESHOLD_", "131072")
    monkeypatch.setattr(client_mod, "_USER_MALLOC_TRIM", "131072")  # the user's setting
    with client_session(_par(backend="local", n_workers=1), threads=1, mem_mb=1000) as c:
        envs = list(c.run(_worker_env).values())
    assert envs == ["131072"]
