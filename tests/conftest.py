"""Shared fixtures and settings for the test suite."""
from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from _xc_snakemake import run_test_config

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("OMP_NUM_THREADS", "2")

REPO = Path(__file__).resolve().parents[1]


def shared_data_dir() -> Path | None:
    """``../shared/data`` beside the checkout (or ``$XCLUSTERS_SHARED_DATA``), if present."""
    env = os.environ.get("XCLUSTERS_SHARED_DATA")
    cand = Path(env) if env else REPO.parent / "shared" / "data"
    return cand if cand.is_dir() else None


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return REPO


@pytest.fixture(scope="session")
def shared_data() -> Path:
    d = shared_data_dir()
    if d is None:
        pytest.skip("../shared/data (real calibration files) is absent; set "
                    "XCLUSTERS_SHARED_DATA to run this test")
    return d


@pytest.fixture(scope="session")
def run_dir(tmp_path_factory):
    """config/test.yaml run end to end on this machine (Snakemake, 2 cores), with its report.

    One run per session, shared by tests/test_workflow.py and the comparison with the same
    run on Slurm (tests/test_slurm.py). Returns ``(run directory, config arguments)``.
    """
    results = tmp_path_factory.mktemp("results")
    run, cfg = run_test_config(results)
    from _xc_snakemake import snakemake

    snakemake(*cfg, "--report", str(run / "report.html"))
    return run, cfg


# --------------------------------------------------------------------------- Slurm
SLURM_TOOLS = ("sinfo", "sbatch", "squeue", "scancel", "sacct")
LOCAL_SLURM = REPO / "scripts" / "local-slurm.sh"


def _slurm_problem() -> str | None:
    """Why the Slurm tests cannot run here (None: sinfo shows a usable node, sacct answers)."""
    missing = [t for t in SLURM_TOOLS if shutil.which(t) is None]
    if missing:
        return f"{', '.join(missing)} not on PATH"
    try:
        states = subprocess.run(["sinfo", "-h", "-o", "%t"], capture_output=True, text=True,
                                timeout=30)
        if states.returncode != 0:
            return f"sinfo failed: {states.stderr.strip()[:300]}"
        if not any(s.strip().rstrip("*~#") in ("idle", "mix", "alloc")
                   for s in states.stdout.split()):
            return f"no node takes jobs (sinfo states: {states.stdout.split()})"
        acct = subprocess.run(["sacct", "-n", "-X", "-S", "now-1hours", "-o", "JobID"],
                              capture_output=True, text=True, timeout=30)
        if acct.returncode != 0 or "disabled" in acct.stderr:
            return f"sacct does not answer (accounting needed): {acct.stderr.strip()[:300]}"
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"{type(exc).__name__}: {exc}"
    return None


@pytest.fixture(scope="session")
def slurm() -> dict:
    """A working Slurm with accounting, or skip with the reason.

    Never installs anything. When the daemons are installed but not running and the tests run
    as root, starts them with ``scripts/local-slurm.sh --no-install`` (a few seconds; set
    ``XCLUSTERS_SLURM_AUTOSTART=0`` to forbid it). ``.ci/run`` installs and starts the
    one-node cluster before ``make test``.

    Returns
    -------
    dict
        ``partition`` (the default one), ``account`` (the user's default account, or "").
    """
    problem = _slurm_problem()
    if (problem and os.environ.get("XCLUSTERS_SLURM_AUTOSTART", "1") != "0"
            and hasattr(os, "geteuid") and os.geteuid() == 0
            and shutil.which("slurmctld") and LOCAL_SLURM.is_file()):
        proc = subprocess.run(["bash", str(LOCAL_SLURM), "--no-install"], capture_output=True,
                              text=True, timeout=300)
        problem = _slurm_problem() if proc.returncode == 0 else \
            f"{problem}; scripts/local-slurm.sh --no-install failed: {proc.stderr[-500:]}"
    if problem:
        pytest.skip(f"no usable Slurm ({problem}); install and start the one-node cluster "
                    "with `sudo scripts/local-slurm.sh`")
    out = subprocess.run(["sinfo", "-h", "-o", "%P"], capture_output=True, text=True).stdout
    default = [p.rstrip("*") for p in out.split() if p.endswith("*")]
    partition = default[0] if default else out.split()[0]
    user = os.environ.get("USER") or __import__("getpass").getuser()
    acct = subprocess.run(["sacctmgr", "-n", "-P", "show", "user", user,
                           "format=DefaultAccount"], capture_output=True, text=True)
    account = acct.stdout.strip().splitlines()[0] if acct.stdout.strip() else ""
    return {"partition": partition, "account": account}
