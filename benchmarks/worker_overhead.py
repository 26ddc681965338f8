"""Where the 1 -> 2 worker speed-up goes: the same clusters serially, in plain processes, in Dask.

Builds the first ``--n-clusters`` clusters of the configuration (``build_cluster``, no
light-cone neighbours) in each of these modes, interleaved ``--repeats`` times, each run after
waiting for idle CPUs and into an empty directory:

* ``serial``: one after another in this process (the 1-core reference);
* ``processes``: two plain processes (``concurrent.futures.ProcessPoolExecutor``, spawn);
* ``dask``: two single-thread Dask workers made by :func:`xclusters.parallel.make_cluster`
  (the workflow's ``local`` backend, with this package's Dask settings);
* ``dask-defaults``: two workers of a ``distributed.LocalCluster`` with Dask's own settings.

Per mode it prints the wall time, the speed-up over ``serial``, the CPU seconds per cluster
(the building process's user + system time), the off-CPU seconds per cluster (the task's wall
time minus its process's CPU time: time the task was runnable but pre-empted, or waiting) and
the CPU this process used meanwhile (with Dask: the scheduler and the nannies). Every mode
runs with one BLAS/OpenMP thread per process. Comparing ``processes`` with ``dask`` separates
what two busy cores cost from what Dask costs.

Usage::

    python benchmarks/worker_overhead.py [--n-clusters 10] [--repeats 1]
        [--modes serial,processes,dask,dask-defaults] [--config config/config.yaml]

Prints a table; not a pass/fail test.
"""
from __future__ import annotations

import argparse
import multiprocessing
import os
import shutil
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
MODES = ("serial", "processes", "dask", "dask-defaults")


def build_one(row: dict, config: dict, outdir: str) -> dict:
    """Build one cluster; its CPU and wall seconds as seen from the building process."""
    from xclusters.pipeline.cluster import build_cluster

    t0, w0 = os.times(), time.perf_counter()
    build_cluster(row, config, outdir)
    t1 = os.times()
    return {"cpu": (t1.user + t1.system) - (t0.user + t0.system),
            "wall": time.perf_counter() - w0}


def _dask_run(rows, config, outdir: str, package_settings: bool) -> list[dict]:
    from distributed import Client, LocalCluster

    n = len(rows)
    mem_per_worker_mb = float(config["parallel"]["memory_per_worker_mb"])
    if package_settings:
        from xclusters.parallel.client import make_cluster

        cluster = make_cluster(dict(config["parallel"], backend="local", n_workers=2,
                                    threads_per_worker=1), threads=2,
                               mem_mb=2 * mem_per_worker_mb)
    else:
        cluster = LocalCluster(n_workers=2, threads_per_worker=1,
                               memory_limit=f"{mem_per_worker_mb:.0f}MB", processes=True,
                               dashboard_address=None)
    try:
        with Client(cluster) as client:
            return client.gather(client.map(build_one, rows, [config] * n, [outdir] * n,
                                            pure=False))
    finally:
        cluster.close()


def run_mode(mode: str, rows, config, outdir: Path) -> dict:
    """Build ``rows`` in ``mode``; wall, per-task records and this process's CPU."""
    if mode not in MODES:
        raise ValueError(f"unknown mode {mode!r}; choose from {list(MODES)}")
    shutil.rmtree(outdir, ignore_errors=True)
    outdir.mkdir(parents=True)
    n = len(rows)
    t0, w0 = os.times(), time.perf_counter()
    if mode == "serial":
        tasks = [build_one(r, config, str(outdir)) for r in rows]
    elif mode == "processes":
        with ProcessPoolExecutor(2, mp_context=multiprocessing.get_context("spawn")) as ex:
            tasks = list(ex.map(build_one, rows, [config] * n, [str(outdir)] * n))
    else:
        tasks = _dask_run(rows, config, str(outdir), package_settings=(mode == "dask"))
    t1 = os.times()
    own = (t1.user + t1.system) - (t0.user + t0.system)
    if mode == "serial":
        own -= sum(t["cpu"] for t in tasks)  # the builds ran here
    return {"mode": mode, "wall": time.perf_counter() - w0, "tasks": tasks, "own_cpu": own}


def print_table(runs: list[dict]) -> None:
    """Mean over repeats per mode, speed-ups against the mean ``serial`` wall time."""
    by = {}
    for r in runs:
        by.setdefault(r["mode"], []).append(r)

    def mean(xs):
        return sum(xs) / len(xs)

    serial = mean([r["wall"] for r in by["serial"]]) if "serial" in by else float("nan")
    print(f"{'mode':<14} {'runs':>4} {'wall s':>7} {'speed-up':>8} {'CPU s/cl':>8} "
          f"{'off-CPU s/cl':>12} {'this process CPU s':>18}")
    for mode, rs in by.items():
        wall = mean([r["wall"] for r in rs])
        cpu = mean([mean([t["cpu"] for t in r["tasks"]]) for r in rs])
        off = mean([mean([t["wall"] - t["cpu"] for t in r["tasks"]]) for r in rs])
        own = mean([r["own_cpu"] for r in rs])
        print(f"{mode:<14} {len(rs):>4d} {wall:>7.1f} {serial / wall:>7.2f}x {cpu:>8.2f} "
              f"{off:>12.2f} {own:>18.1f}")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", default=str(REPO / "config" / "config.yaml"))
    ap.add_argument("--n-clusters", type=int, default=10)
    ap.add_argument("--repeats", type=int, default=1)
    ap.add_argument("--modes", default=",".join(MODES),
                    help=f"comma-separated, in run order (default {','.join(MODES)})")
    ap.add_argument("--wait-quiet", type=float, default=60.0,
                    help="wait up to this many seconds for idle CPUs before each run")
    ap.add_argument("--workdir", default=None, help="scratch dir (default: a temporary one)")
    args = ap.parse_args(argv)
    modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    unknown = sorted(set(modes) - set(MODES))
    if unknown:
        ap.error(f"--modes: unknown {unknown}; choose from {list(MODES)}")
    os.environ.setdefault("DASK_LOGGING__DISTRIBUTED", "warning")
    # One BLAS/OpenMP thread in every mode, as Dask's nannies give their workers (set before
    # NumPy loads; the plain processes inherit it), so that ``serial`` is a one-core reference.
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ.setdefault(var, "1")

    from xclusters.instruments import default_response_dir, register_instruments
    from xclusters.pipeline.sample import build_sample

    # the sibling script (its directory is sys.path[0]): config loading, sample rows, idle wait
    import build_images as bench

    work = Path(args.workdir or tempfile.mkdtemp(prefix="xc-overhead-"))
    cfg = bench._load_config(Path(args.config), work / "results", max(args.n_clusters, 1))
    sample = build_sample(cfg, work / "results" / cfg["run"] / "sample.ecsv")
    rows = bench._rows(sample)[:args.n_clusters]
    register_instruments(cfg, default_response_dir(cfg))
    build_one(rows[0], cfg, str(work / "warmup"))  # imports, emission tables, responses
    print(f"# {len(rows)} clusters, {os.cpu_count()} CPUs, {time.strftime('%Y-%m-%d %H:%M')}",
          flush=True)
    runs = []
    for rep in range(max(1, args.repeats)):
        for mode in modes:
            if args.wait_quiet > 0:
                bench._wait_quiet(args.wait_quiet)
            r = run_mode(mode, rows, cfg, work / f"{mode}_{rep}")
            runs.append(r)
            print(f"# {mode}, run {rep + 1}: {r['wall']:.1f} s", flush=True)
    print_table(runs)
    print(f"scratch {work}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
