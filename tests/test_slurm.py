"""The HPC path on a real Slurm scheduler (marked ``slurm``; skipped with the reason without one).

``sudo scripts/local-slurm.sh`` starts a one-node Slurm 22.05 with accounting (slurmdbd +
MariaDB) from Debian's packages; ``.ci/run`` does so before ``make test``. The fixture ``slurm``
(conftest.py) checks that ``sinfo`` shows a usable node and ``sacct`` answers.

1. ``snakemake --profile config/profiles/slurm`` runs config/test.yaml end to end, every rule a
   Slurm job in the partition and account given by ``SBATCH_PARTITION`` / ``SBATCH_ACCOUNT``
   (no profile edit); the images and ``dataset.h5`` are byte-identical to the local run of the
   same config (the session fixture ``run_dir``, which tests/test_workflow.py checks).
2. ``parallel.backend: slurm``: ``xclusters build-shard`` starts its Dask workers as Slurm jobs
   (dask-jobqueue), the shard completes with the local run's bytes, and no worker job is left
   in ``squeue`` afterwards.
3. The worker job is cancelled (``scancel``) while it builds a cluster: a new worker job is
   submitted, the task runs again and the shard completes with the same bytes.
4. A rule that overruns its ``runtime`` is killed by Slurm (state TIMEOUT, at the limit) and
   resubmitted by the profile's ``retries``; Snakemake names the rule and the TIMEOUT.

The shards here are taken from the local run (1-2 clusters of config/test.yaml, 32x32 images).
"""
from __future__ import annotations

import os
import re
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
import yaml

from _xc_snakemake import REPO, TEST_CONFIG, snakemake
from test_build_reliability import _assert_same_bytes

pytestmark = [pytest.mark.slurm, pytest.mark.slow]

PROFILE = REPO / "config" / "profiles" / "slurm"
XCLUSTERS = Path(sys.executable).parent / "xclusters"
#: Snakemake's Slurm plugin: first status check 2 s after a submission (plugin default 40 s).
FAST_STATUS = ("--slurm-init-seconds-before-status-checks", "2")
#: A 1-2 cluster shard of config/test.yaml takes 10-40 s here; generous for a loaded CI host.
SHARD_TIMEOUT_S = 600


# --------------------------------------------------------------------------- helpers
def _sacct(name: str) -> list[dict[str, str]]:
    """Accounting records (allocations, not steps) of the jobs called ``name``, by job id."""
    fields = ["JobID", "JobName", "Partition", "Account", "State", "Timelimit", "ElapsedRaw"]
    out = subprocess.run(["sacct", "-n", "-X", "-P", "-a", "-S", "now-3hours", "--name", name,
                          "-o", ",".join(fields)], capture_output=True, text=True, check=True,
                         timeout=60).stdout
    rows = [dict(zip(fields, line.split("|"))) for line in out.splitlines() if line.strip()]
    return sorted(rows, key=lambda r: int(r["JobID"].split("_")[0]))


def _queued(name: str) -> list[str]:
    """Ids of jobs called ``name`` that are still pending or running (``squeue``)."""
    out = subprocess.run(["squeue", "-h", "-n", name, "-o", "%i %T"], capture_output=True,
                         text=True, check=True, timeout=60).stdout
    return [line.split()[0] for line in out.splitlines() if line.strip()]


def _wait(predicate, timeout_s: float, what: str, poll_s: float = 0.5):
    deadline = time.monotonic() + timeout_s
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"{what}: not reached within {timeout_s:.0f} s")
        time.sleep(poll_s)


def _slurm_env(slurm: dict) -> dict[str, str]:
    """Partition and account through Slurm's own sbatch variables (read by the profile)."""
    return {"SBATCH_PARTITION": slurm["partition"], "SBATCH_ACCOUNT": slurm["account"]}


def _images(clusters: Path, ids=None) -> list[Path]:
    return sorted(p for p in clusters.glob("*/image_*.fits")
                  if ids is None or p.parent.name in ids)


# --------------------------------------------------------------------------- 1. profile
def test_profile_runs_test_config_as_slurm_jobs(slurm, run_dir, tmp_path):
    local_run, _ = run_dir
    results = tmp_path / "results"
    t0 = time.monotonic()
    proc = snakemake(*TEST_CONFIG, "--config", f"results_dir={results}",
                     "--profile", str(PROFILE), "--latency-wait", "5", *FAST_STATUS,
                     "--slurm-logdir", str(tmp_path / "slurm_logs"),
                     # no GPU partition here: train_superobs goes to the same partition
                     "--set-resources", f"train_superobs:slurm_partition={slurm['partition']}",
                     cores=None, env=_slurm_env(slurm), timeout=1800)
    elapsed = time.monotonic() - t0
    out = proc.stdout + proc.stderr
    run_id = re.search(r"SLURM run ID: (\S+)", out).group(1)
    # "Job 3 has been submitted with SLURM jobid 17 (log: <logdir>/rule_dataset/17.log)."
    submitted = dict(re.findall(r"submitted with SLURM jobid (\d+) \(log: \S*?/rule_(\w+?)/",
                                out))
    jobs = _sacct(run_id)
    print(f"{len(jobs)} Slurm jobs in {elapsed:.0f} s")  # shown with pytest -s
    assert sorted(j["JobID"] for j in jobs) == sorted(submitted), (submitted, jobs)
    assert {j["State"] for j in jobs} == {"COMPLETED"}, jobs
    assert {j["Partition"] for j in jobs} == {slurm["partition"]}, jobs
    if slurm["account"]:
        assert {j["Account"] for j in jobs} == {slurm["account"]}, jobs
    # every rule with a command ran as a Slurm job
    rules = set(submitted.values())
    for rule in ("sample", "shards", "build_shard", "dataset", "train_superobs", "train_mass",
                 "predict_superobs", "predict_mass", "evaluate_superobs", "evaluate_mass"):
        assert rule in rules, (rule, sorted(rules))
    assert not _queued(run_id)

    slurm_run = results / local_run.name
    local_images = _images(local_run / "clusters")
    slurm_images = _images(slurm_run / "clusters")
    assert [p.relative_to(local_run) for p in local_images] == \
        [p.relative_to(slurm_run) for p in slurm_images]
    _assert_same_bytes(local_images, slurm_images)
    assert (slurm_run / "dataset.h5").read_bytes() == (local_run / "dataset.h5").read_bytes(), \
        "dataset.h5 differs between the Slurm and the local run"


# --------------------------------------------------------------------------- 2./3. Dask
def _build_shard_cmd(local_run: Path, tmp: Path, slurm: dict, *, n_rows: int, n_workers: int
                     ) -> tuple[list[str], str, list[str]]:
    """An ``xclusters build-shard`` command on the first ``n_rows`` clusters of the local
    run's first shard, with ``parallel.backend: slurm``. Returns (command, worker job name,
    cluster ids)."""
    from astropy.table import Table

    name = f"xc-dask-{uuid.uuid4().hex[:8]}"
    cfg = yaml.safe_load((local_run / "config.resolved.yaml").read_text())
    cfg["results_dir"] = str(tmp / "results")
    cfg["parallel"].update(
        backend="slurm", n_workers=n_workers, threads_per_worker=1, retries=1,
        jobqueue={"job_name": name, "cores": 1, "processes": 1, "memory": "2GB",
                  "walltime": "00:15:00", "queue": slurm["partition"],
                  "account": slurm["account"] or None,
                  "log_directory": str(tmp / "dask_logs"),
                  "local_directory": str(tmp / "dask_scratch"), "death_timeout": 60})
    cfg_file = tmp / "config.yaml"
    cfg_file.write_text(yaml.safe_dump(cfg, sort_keys=True))
    rows = Table.read(local_run / "shards" / "shard_000.ecsv", format="ascii.ecsv")[:n_rows]
    shard = tmp / "shard_000.ecsv"
    rows.write(shard, format="ascii.ecsv")
    cmd = [str(XCLUSTERS), "build-shard", "--config", str(cfg_file), "--shard", str(shard),
           "--clusters-dir", str(tmp / "clusters"), "--manifest", str(tmp / "manifest.ecsv"),
           "--neighbours", str(local_run / "neighbours.ecsv"), "--threads", "1",
           "--mem-mb", "2000", "--log", str(tmp / "build.log")]
    return cmd, name, [str(c) for c in rows["cluster_id"]]


def _shard_env() -> dict[str, str]:
    # A lost worker job is replaced once the scheduler has missed it this long (Dask: 15 s).
    return dict(os.environ, PYTHONUNBUFFERED="1",
                DASK_DISTRIBUTED__DEPLOY__LOST_WORKER_TIMEOUT="2s")


def _check_manifest(tmp: Path, ids: list[str]) -> None:
    from xclusters.parallel.shards import read_manifest

    table = read_manifest(tmp / "manifest.ecsv")
    assert dict(zip(table["cluster_id"], table["status"])) == {c: "ok" for c in ids}, table


def test_dask_workers_are_slurm_jobs(slurm, run_dir, tmp_path):
    local_run, _ = run_dir
    cmd, name, ids = _build_shard_cmd(local_run, tmp_path, slurm, n_rows=2, n_workers=2)
    proc = subprocess.run(cmd, cwd=REPO, env=_shard_env(), capture_output=True, text=True,
                          timeout=900)
    assert proc.returncode == 0, proc.stderr[-4000:]
    _check_manifest(tmp_path, ids)
    jobs = _sacct(name)
    assert len(jobs) >= 2, jobs  # parallel.n_workers worker jobs
    assert {j["Partition"] for j in jobs} == {slurm["partition"]}, jobs
    # the client closed the cluster: the worker jobs were cancelled, none is left
    assert _wait(lambda: not _queued(name), 60, "worker jobs gone from squeue")
    assert all(j["State"] in ("CANCELLED", "COMPLETED") or j["State"].startswith("CANCELLED")
               for j in _sacct(name)), _sacct(name)
    _assert_same_bytes(_images(local_run / "clusters", ids), _images(tmp_path / "clusters"))


def test_cancelled_worker_job_is_replaced(slurm, run_dir, tmp_path):
    local_run, _ = run_dir
    cmd, name, ids = _build_shard_cmd(local_run, tmp_path, slurm, n_rows=1, n_workers=1)
    cdir = tmp_path / "clusters" / ids[0]
    proc = subprocess.Popen(cmd, cwd=REPO, env=_shard_env(), stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)
    try:
        # the worker job runs and has started the cluster (its first files appear) ...
        def ended():
            if proc.poll() is not None:
                pytest.fail(f"build-shard ended (rc {proc.returncode}) before the cancel:\n"
                            f"{proc.stderr.read()[-4000:]}")

        first = _wait(lambda: ended() or [j for j in _sacct(name) if j["State"] == "RUNNING"],
                      300, "worker job running")[0]["JobID"]
        _wait(lambda: ended() or cdir.is_dir() and any(cdir.iterdir()), 300,
              "cluster build started")
        assert not _images(cdir.parent), "the cluster was finished before the cancel"
        # ... and is cancelled, as a user or the batch system would
        subprocess.run(["scancel", first], check=True, timeout=60)
        try:
            rc = proc.wait(timeout=SHARD_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            pytest.fail(f"the shard did not complete within {SHARD_TIMEOUT_S} s after its worker "
                        f"job was cancelled (jobs: {_sacct(name)})")
        err = proc.stderr.read()
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.stderr.close()
    assert rc == 0, err[-4000:]
    _check_manifest(tmp_path, ids)
    jobs = _sacct(name)
    states = {j["JobID"]: j["State"] for j in jobs}
    assert states[first].startswith("CANCELLED"), jobs
    assert len(jobs) >= 2, f"no replacement worker job was submitted: {jobs}"
    assert _wait(lambda: not _queued(name), 60, "worker jobs gone from squeue")
    _assert_same_bytes(_images(local_run / "clusters", ids), _images(tmp_path / "clusters"))


# --------------------------------------------------------------------------- 4. runtime
OVERRUN_SNAKEFILE = """\
# A rule whose first attempt overruns its 1-minute runtime (the second one returns at once).
rule overrun:
    output: "done.txt"
    resources: runtime=1, mem_mb=100, attempt=lambda wildcards, attempt: attempt
    shell:
        "if [ {resources.attempt} -eq 1 ]; then sleep 600; fi; "
        "echo {resources.attempt} > {output}"
"""


def test_rule_over_its_runtime_is_killed_and_resubmitted(slurm, tmp_path):
    (tmp_path / "Snakefile").write_text(OVERRUN_SNAKEFILE)
    env = dict(os.environ, **_slurm_env(slurm),
               PATH=f"{Path(sys.executable).parent}:{os.environ.get('PATH', '')}")
    cmd = [sys.executable, "-m", "snakemake", "--profile", str(PROFILE), "--retries", "1",
           "--latency-wait", "5", *FAST_STATUS, "--slurm-keep-successful-logs"]
    proc = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=900)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-6000:]
    assert (tmp_path / "done.txt").read_text().strip() == "2"  # the second attempt made it
    assert "Error in rule overrun" in out and "SLURM status is: 'TIMEOUT'" in out, out[-6000:]
    assert "Trying to restart job" in out
    jobs = _sacct(re.search(r"SLURM run ID: (\S+)", out).group(1))
    assert [j["State"] for j in jobs] == ["TIMEOUT", "COMPLETED"], jobs
    killed = jobs[0]
    assert killed["Timelimit"] == "00:01:00", killed  # runtime=1 became sbatch -t 1
    # killed at the limit (slurmctld checks limits periodically), not at the end of the sleep
    assert 60 <= int(killed["ElapsedRaw"]) < 150, killed
