"""Run the workflow's Snakemake in a subprocess, as tests/test_workflow.py and
tests/test_slurm.py do (the venv's interpreter first on PATH, the checkout's Snakefile)."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
#: The end-to-end configuration: config/test.yaml in a results directory given by the test.
TEST_CONFIG = ("--configfile", "config/test.yaml")


def snakemake(*args: str, cwd: Path = REPO, check: bool = True, timeout: float = 1800,
              env: dict | None = None, cores: int | None = 2) -> subprocess.CompletedProcess:
    """``python -m snakemake --snakefile Snakefile [--cores N] ARGS`` in ``cwd``.

    Parameters
    ----------
    *args : str
        Further Snakemake arguments.
    cwd : Path
        Working directory (the checkout).
    check : bool
        Raise ``AssertionError`` with the end of stdout/stderr when Snakemake fails.
    timeout : float
        Seconds before the run is killed.
    env : dict, optional
        Extra environment variables (on top of ``os.environ``).
    cores : int or None
        ``--cores``; ``None`` leaves it out (a profile with an executor sets ``jobs``).
    """
    full_env = dict(os.environ, **(env or {}))
    full_env["PATH"] = f"{Path(sys.executable).parent}:{full_env.get('PATH', '')}"
    cmd = [sys.executable, "-m", "snakemake", "--snakefile", str(REPO / "Snakefile")]
    if cores is not None:
        cmd += ["--cores", str(cores)]
    cmd += list(args)
    proc = subprocess.run(cmd, cwd=cwd, env=full_env, capture_output=True, text=True,
                          timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError(f"snakemake {' '.join(args)} failed:\n{proc.stdout[-4000:]}\n"
                             f"{proc.stderr[-6000:]}")
    return proc


def run_test_config(results: Path, *extra: str, **kwargs) -> tuple[Path, list[str]]:
    """Run config/test.yaml with ``results_dir=results``; return the run directory and the
    config arguments (for later Snakemake calls on the same run)."""
    cfg = [*TEST_CONFIG, "--config", f"results_dir={results}"]
    snakemake(*cfg, *extra, **kwargs)
    return results / "test", cfg
