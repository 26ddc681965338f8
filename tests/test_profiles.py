"""The Snakemake profiles (config/profiles/{local,slurm,pbs}) and ``snakemake --lint``.

Each profile must load (executor plugin present, every key known to this Snakemake) and plan
the whole test workflow in a dry run, including the ``build_shard`` jobs that appear after the
``shards`` checkpoint. Dry runs submit nothing, so neither ``sbatch`` nor ``qsub`` is needed:
the tests hide any real one from PATH to prove it.

Lint policy ("serious" lints fail the test): every lint except "Specify a conda environment or
container for each rule". That one is a deliberate choice: all rules run the ``xclusters`` CLI
of one environment (the Makefile's venv or ``envs/xclusters.yaml``), documented in README.md.
Anything else (hard-coded path prefixes, missing log directives, absolute paths, mixed
rules/functions, ...) must be fixed in the ``.smk`` files.
"""
from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PROFILES = ("local", "slurm", "pbs")
ALLOWED_LINTS = ("Specify a conda environment or container for each rule.",)


BATCH_TOOLS = ("sbatch", "qsub", "squeue", "qstat", "sacct", "sinfo", "scancel", "srun")


def _env_without_batch_tools(tmp_path: Path) -> dict:
    """Environment whose PATH has the venv first and no sbatch/qsub/squeue/qstat/sacct/...:
    a directory holding one of them (e.g. /usr/bin with a real Slurm installed) is replaced by
    a directory of links to everything else in it."""
    bindir = Path(sys.executable).parent
    keep = [bindir]
    for i, d in enumerate(os.environ.get("PATH", "").split(os.pathsep)):
        if not d or not Path(d).is_dir():
            continue
        if not any((Path(d) / tool).exists() for tool in BATCH_TOOLS):
            keep.append(Path(d))
            continue
        shadow = tmp_path / "path" / str(i)
        if not shadow.is_dir():
            shadow.mkdir(parents=True)
            for entry in Path(d).iterdir():
                if entry.name not in BATCH_TOOLS:
                    (shadow / entry.name).symlink_to(entry)
        keep.append(shadow)
    return dict(os.environ, PATH=os.pathsep.join(str(d) for d in keep),
                HOME=str(tmp_path / "home"))


def _snakemake(args, tmp_path: Path, timeout: int = 600,
               env: dict | None = None) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "snakemake", "--snakefile", str(REPO / "Snakefile"), *args]
    full_env = dict(_env_without_batch_tools(tmp_path), **(env or {}))
    return subprocess.run(cmd, cwd=REPO, env=full_env, capture_output=True, text=True,
                          timeout=timeout)


@pytest.fixture(scope="module")
def test_run(tmp_path_factory):
    """config/test.yaml in a temporary results dir, with sample and shards already made."""
    tmp = tmp_path_factory.mktemp("profiles")
    cfg = ["--configfile", "config/test.yaml", "--config", f"results_dir={tmp / 'results'}"]
    proc = _snakemake(["--cores", "1", "shards", *cfg], tmp)  # target before --config
    assert proc.returncode == 0, proc.stderr[-4000:]
    shards = sorted((tmp / "results" / "test" / "shards").glob("shard_*.ecsv"))
    assert len(shards) == 2, shards  # 4 clusters, shard_size 2
    return {"tmp": tmp, "cfg": cfg, "n_shards": len(shards)}


def _job_counts(text: str) -> dict[str, int]:
    """The 'Job stats' table of a dry run as {rule: count}."""
    counts = {}
    for line in text.splitlines():
        m = re.match(r"^(\w+)\s+(\d+)$", line.strip())
        if m:
            counts[m.group(1)] = int(m.group(2))
    return counts


@pytest.mark.parametrize("profile", PROFILES)
def test_profile_dry_run(profile, test_run):
    # the slurm profile reads partition and account from Slurm's own sbatch variables
    proc = _snakemake(["-n", "--profile", f"config/profiles/{profile}", *test_run["cfg"]],
                      test_run["tmp"],
                      env={"SBATCH_PARTITION": "compute", "SBATCH_ACCOUNT": "myproject"})
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, f"dry run with profile {profile} failed:\n{out[-6000:]}"
    assert f"Using profile config/profiles/{profile}" in out
    counts = _job_counts(out)
    assert counts.get("build_shard") == test_run["n_shards"], counts
    for rule in ("dataset", "train_superobs", "train_mass", "evaluate_superobs",
                 "evaluate_mass", "all"):
        assert counts.get(rule) == 1, (rule, counts)
    assert "xclusters build-shard" in out  # printshellcmds is on in every profile
    if profile == "slurm":
        # default-resources and set-resources of the profile reach the jobs
        assert "slurm_partition=compute" in out and "slurm_account=myproject" in out
        train = out[out.index("rule train_superobs:"):]
        train = train[:train.index("Shell command")]
        assert "slurm_partition=gpu" in train and "--gres=gpu:1" in train


def _slurm_resources(out: str, rule: str) -> dict[str, str]:
    """slurm_* resources of the first job of ``rule`` in a dry run's output."""
    block = out[out.index(f"rule {rule}:"):]
    line = next(ln for ln in block.splitlines() if ln.strip().startswith("resources:"))
    pairs = (item.strip().split("=", 1) for item in line.split(":", 1)[1].split(", "))
    return {k: v for k, v in pairs if k.startswith("slurm_")}


def test_slurm_partition_and_account_without_editing_the_profile(test_run):
    """Unset: empty (the plugin then takes the default partition and account); from the
    environment (SBATCH_PARTITION / SBATCH_ACCOUNT); from the command line."""
    base = ["-n", "--profile", "config/profiles/slurm", *test_run["cfg"]]
    unset = {"SBATCH_PARTITION": "", "SBATCH_ACCOUNT": ""}
    cases = [
        (base, unset, {"slurm_partition": "", "slurm_account": ""}),
        (base, {"SBATCH_PARTITION": "short", "SBATCH_ACCOUNT": "proj42"},
         {"slurm_partition": "short", "slurm_account": "proj42"}),
        ([*base, "--default-resources", "slurm_partition=long", "slurm_account=proj7"], unset,
         {"slurm_partition": "long", "slurm_account": "proj7"}),
    ]
    for args, env, want in cases:
        proc = _snakemake(args, test_run["tmp"], env=env)
        out = proc.stdout + proc.stderr
        assert proc.returncode == 0, out[-4000:]
        assert _slurm_resources(out, "dataset") == want, (env, args[-3:])


def test_lint_has_no_serious_problems(tmp_path):
    proc = _snakemake(["--lint", "--configfile", "config/test.yaml", "--config",
                       f"results_dir={tmp_path / 'results'}"], tmp_path)
    out = proc.stdout + proc.stderr
    print(out)  # shown with pytest -s or on failure
    assert proc.returncode in (0, 1), out[-4000:]  # 1 = lints found
    if proc.returncode == 0:
        return
    blocks = re.split(r"^(?=Lints for )", out, flags=re.M)
    serious = []
    n_blocks = 0
    for block in blocks:
        if not block.startswith("Lints for "):
            continue
        n_blocks += 1
        header = block.splitlines()[0]
        for item in re.findall(r"^    \* (.+?):?$", block, flags=re.M):
            if item.rstrip(":") not in ALLOWED_LINTS:
                serious.append(f"{header} {item}")
    assert n_blocks > 0, f"snakemake --lint failed without printing lints:\n{out[-4000:]}"
    assert not serious, "serious lints:\n" + "\n".join(serious)


PBS_SUBMIT = REPO / "config" / "profiles" / "pbs" / "qsub-submit.sh"


def _fake_qsub(tmp_path: Path, run_job: bool) -> tuple[dict, Path]:
    """A ``qsub`` on PATH that records its arguments (one line per call) and prints a job id;
    with ``run_job`` it also runs the job script in the background, like a scheduler would."""
    bindir = tmp_path / "fakebin"
    bindir.mkdir()
    calls = tmp_path / "qsub_calls.txt"
    run = 'nohup bash "${@: -1}" >/dev/null 2>&1 &\n' if run_job else ""
    (bindir / "qsub").write_text(
        f'#!/usr/bin/env bash\necho "$@" >> {calls}\n{run}echo 4242.fakepbs\n')
    (bindir / "qsub").chmod(0o755)
    env = _env_without_batch_tools(tmp_path)
    env["PATH"] = f"{bindir}{os.pathsep}{env['PATH']}"
    env["XCLUSTERS_PBS_LOG_DIR"] = str(tmp_path / "pbs_logs")
    return env, calls


@pytest.mark.parametrize("runtime_min, walltime", [("5", "00:05:00"), ("59", "00:59:00"),
                                                   ("60", "01:00:00"), ("240", "04:00:00"),
                                                   ("1500", "25:00:00"), ("08", "00:08:00")])
def test_pbs_submit_writes_walltime_as_hh_mm_ss(tmp_path, runtime_min, walltime):
    env, calls = _fake_qsub(tmp_path, run_job=False)
    proc = subprocess.run(["bash", str(PBS_SUBMIT), "train_mass", "2", "3000", runtime_min,
                           "/x/snakejob.sh"], env=env, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "4242.fakepbs"          # the job id goes back to Snakemake
    args = calls.read_text().split()
    assert args[args.index("-l") + 1] == "select=1:ncpus=2:mem=3000mb"
    assert f"walltime={walltime}" in args
    assert args[-1] == "/x/snakejob.sh" and "smk.train_mass" in args
    assert (tmp_path / "pbs_logs").is_dir()


@pytest.mark.parametrize("bad", ["", "1.5", "abc", "-3"])
def test_pbs_submit_refuses_a_non_integer_runtime(tmp_path, bad):
    env, calls = _fake_qsub(tmp_path, run_job=False)
    proc = subprocess.run(["bash", str(PBS_SUBMIT), "dataset", "1", "4000", bad, "/x/job.sh"],
                          env=env, capture_output=True, text=True)
    assert proc.returncode == 2
    assert "runtime" in proc.stderr and "dataset" in proc.stderr and "whole number" in proc.stderr
    assert not calls.exists()                             # nothing submitted


def test_pbs_profile_submits_jobs_through_qsub(tmp_path):
    """Not a dry run: the pbs profile submits the sample and shards jobs to a fake qsub that
    runs them, and Snakemake picks up their outputs."""
    env, calls = _fake_qsub(tmp_path, run_job=True)
    cmd = [sys.executable, "-m", "snakemake", "--snakefile", str(REPO / "Snakefile"),
           "--profile", "config/profiles/pbs", "--latency-wait", "5", "shards",
           "--configfile", "config/test.yaml", "--config", f"results_dir={tmp_path / 'results'}"]
    proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-6000:]
    assert "external jobid '4242.fakepbs'" in out
    lines = calls.read_text().splitlines()
    assert [line.split()[2] for line in lines] == ["smk.sample", "smk.shards"]
    assert "walltime=00:10:00" in lines[0]                # sample: runtime=10 (minutes)
    assert len(list((tmp_path / "results" / "test" / "shards").glob("shard_*.ecsv"))) == 2
