"""Cluster images per core-hour (photon reuse) and the 1 -> 2 Dask worker speed-up.

Part 1, photon reuse, on the first ``--reuse-clusters`` clusters of the configuration
(config/config.yaml: 64^3 grids, 3 projections, eROSITA + ideal + Chandra ACIS-I, 128x128
images), all in one process:

(a) ``build_cluster``: one pyXSIM photon list per cluster with area x time enough for every
    instrument, projected once per axis, every instrument's events drawn from that SIMPUT;
(b) the baseline, the straightforward tutorial way: a separate ``make_photons`` for every
    instrument and axis (9 photon lists per cluster), each with the peak area x exposure of its
    own instrument (times the same ``photons.area_margin``), then project, SOXS and image.

Both start from the same ``source.h5`` build (included in both timings) and use the same
emission model, responses and image writer, so the difference is the photon strategy only. One
untimed ``build_cluster`` warms imports and caches first. ``--no-rmf-cache`` measures both
without :mod:`xclusters.instruments.rmf_cache` (SOXS's own RMF handling).
"Core-hours" are the process's CPU time (user + sys, all threads), which other processes on a
shared machine do not inflate; wall times are printed too.

Part 2, ``build_shard`` on the whole sample (``--n-clusters``, default the configuration's
``sample.n_clusters``) as one shard, with 1 worker (threads=1) and 2 workers (threads=2),
repeated ``--repeats`` times interleaved (1w, 2w, 1w, 2w, ...) so that slow phases of a noisy
machine hit both, each after waiting (``--wait-quiet``) for other processes to leave the CPUs
idle. Like the workflow, it passes the sample step's ``neighbours.ecsv`` when the config
includes light-cone neighbours (``--no-neighbours``: leave them out). Each run starts from an
empty output directory. Per run it prints:

* wall: ``build_shard`` from call to return (LocalCluster start, worker set-up, all clusters,
  manifest, shut-down);
* start-up: call to the first cluster's start; work: first cluster start to last cluster end
  (what more workers can divide); close: last cluster end to return;
* tail: last end minus the earliest moment a worker ran out of clusters (load imbalance);
* busy: the workers' share of (workers x work) spent inside clusters;
* CPU s per cluster (worker process CPU while it built the cluster);
* peak RSS of each Dask worker process (VmHWM from /proc);
* other load: CPU used by processes outside this benchmark during the run, in cores (from
  /proc/stat), and steal time: a run with other load > 0.2 cores is flagged ``*``.

Speed-ups 1 -> 2 workers are the ratio of mean wall times (and of the best, least disturbed,
run of each), and the same for the work span alone (start-up and close excluded).

Usage::

    python benchmarks/build_images.py [--n-clusters 30] [--reuse-clusters 4] [--repeats 2]
        [--config config/config.yaml] [--workdir DIR] [--wait-quiet 90] [--no-neighbours]
        [--skip-reuse] [--skip-baseline] [--skip-shard] [--no-rmf-cache]

Prints tables; not a pass/fail test. Targets of the issue: (a)/(b) >= 3x images per
core-hour, >= 1.7x build_shard speed-up from 1 to 2 workers.
"""
from __future__ import annotations

import argparse
import logging
import os
import shutil
import sys
import tempfile
import threading
import time
import warnings
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _cpu() -> float:
    t = os.times()
    return t.user + t.system


def _load_config(path: Path, results: Path, n_clusters: int) -> dict:
    from xclusters.config import load_config

    cfg = load_config(path)
    cfg["results_dir"] = str(results)
    cfg["sample"]["n_clusters"] = int(n_clusters)
    apec = cfg["emission"]["apec_table_path"]
    if apec and not Path(apec).is_absolute():
        cfg["emission"]["apec_table_path"] = str((REPO / apec).resolve())
    return cfg


def _rows(sample: Path) -> list[dict]:
    from astropy.table import Table

    from xclusters.parallel.shards import row_to_dict

    return [row_to_dict(r) for r in Table.read(sample, format="ascii.ecsv")]


def baseline_cluster(row: dict, config: dict, outdir: str) -> list[Path]:
    """The tutorial way: one make_photons per instrument and axis, each sized for its instrument.

    Same source, emission model, seeds family, SOXS set-up and image writer as
    :func:`xclusters.pipeline.cluster.build_cluster`.
    """
    from xclusters.images import make_band_images
    from xclusters.instruments import default_response_dir, register_instruments
    from xclusters.observe.events import simulate_events
    from xclusters.observe.photons import make_photon_list, project_to_simput
    from xclusters.pipeline.cluster import enabled_instruments, image_path, peak_areas_cm2
    from xclusters.provenance import provenance_record
    from xclusters.seeds import int_seed_for
    from xclusters.sources import build_source, write_source

    cid = row["cluster_id"]
    cdir = Path(outdir) / cid
    cdir.mkdir(parents=True, exist_ok=True)
    seed, halo_id = int(config["seed"]), int(row["halo_id"])
    sky = (float(row["ra"]), float(row["dec"]))
    response_dir = default_response_dir(config)
    register_instruments(config, response_dir)
    source_path = cdir / "source.h5"
    src = build_source(dict(row), config["sources"], seed,
                       snapshot_path=config["catalog"]["snapshot"],
                       instruments_cfg={k: config["instruments"][k]
                                        for k in enabled_instruments(config)},
                       memory_mb=config["parallel"]["memory_per_worker_mb"])
    write_source(source_path, src, config=config, seed=seed)
    peaks = peak_areas_cm2(config, response_dir)
    margin = float(config["photons"]["area_margin"])
    agn = source_path if config["sources"]["include_agn"] else None
    out = []
    for ax in config["projections"]:
        for inst in enabled_instruments(config):
            exposure_s = float(config["instruments"][inst]["exposure_ks"]) * 1e3
            photons = cdir / f"photons_{inst}_{ax}.h5"
            make_photon_list(source_path, photons, emission_cfg=config["emission"],
                             area_cm2=peaks[inst], exposure_s=margin * exposure_s,
                             redshift=float(row["redshift"]),
                             seed=int_seed_for(seed, halo_id, "photons", ax, inst),
                             cluster_id=cid,
                             chunk_particles=config["photons"]["chunk_particles"],
                             memory_mb=config["parallel"]["memory_per_worker_mb"])
            simput = project_to_simput(photons, ax, cdir / f"simput_{inst}_{ax}",
                                       nh_1e22=float(config["emission"]["nh_1e22"]),
                                       sky_center_deg=sky,
                                       seed=int_seed_for(seed, halo_id, "project", ax),
                                       cluster_id=cid, point_sources=agn)
            events = cdir / f"events_{inst}_{ax}.fits"
            simulate_events(simput, inst, events, config=config, sky_center_deg=sky,
                            seed=int_seed_for(seed, halo_id, "events", ax, inst),
                            response_dir=response_dir)
            final = image_path(outdir, cid, inst, ax)
            make_band_images(events, inst, final, config=config, sky_center_deg=sky,
                             provenance=provenance_record(config, cluster_id=cid),
                             response_dir=response_dir)
            events.unlink()
            photons.unlink()
            shutil.rmtree(cdir / f"simput_{inst}_{ax}")
            out.append(final)
    return out


def _time_serial(func, rows, config, outdir: Path) -> tuple[float, float, int, list[float]]:
    """Run ``func(row, config, outdir)`` for every row; (cpu s, wall s, n images, cpu/cluster)."""
    from xclusters.pipeline.cluster import image_path

    outdir.mkdir(parents=True, exist_ok=True)
    per = []
    cpu0, wall0 = _cpu(), time.perf_counter()
    for row in rows:
        c0 = _cpu()
        func(row, config, str(outdir))
        per.append(_cpu() - c0)
    cpu, wall = _cpu() - cpu0, time.perf_counter() - wall0
    n = sum(1 for row in rows for ax in config["projections"]
            for inst in ("erosita", "ideal", "chandra_acisi")
            if image_path(outdir, row["cluster_id"], inst, ax).is_file())
    return cpu, wall, n, per


class _WorkerMemory:
    """Samples VmHWM (peak RSS) of this process's Dask worker children every 0.5 s."""

    def __init__(self):
        self.peak: dict[int, int] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        import psutil

        me = psutil.Process()
        while not self._stop.is_set():
            for child in me.children(recursive=True):
                try:
                    cmd = " ".join(child.cmdline())
                    if "spawn_main" not in cmd:
                        continue  # not a multiprocessing worker (resource tracker etc.)
                    with open(f"/proc/{child.pid}/status") as fh:
                        for line in fh:
                            if line.startswith("VmHWM:"):
                                kb = int(line.split()[1])
                                self.peak[child.pid] = max(self.peak.get(child.pid, 0), kb)
                except (psutil.Error, OSError, ValueError):
                    continue
            self._stop.wait(0.5)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join(timeout=5)


def _proc_stat() -> tuple[float, float]:
    """(busy, steal) CPU seconds of the whole machine since boot, from /proc/stat."""
    try:
        with open("/proc/stat") as fh:
            f = [int(x) for x in fh.readline().split()[1:]]
    except (OSError, ValueError):
        return float("nan"), float("nan")
    tick = os.sysconf("SC_CLK_TCK")
    # user nice system idle iowait irq softirq steal guest guest_nice
    busy = f[0] + f[1] + f[2] + f[5] + f[6]
    return busy / tick, (f[7] if len(f) > 7 else 0) / tick


def _wait_quiet(max_wait_s: float, threshold: float = 0.15, window_s: float = 3.0) -> float:
    """Wait (at most ``max_wait_s``) for a ``window_s`` window in which the machine's busy CPU
    is below ``threshold`` cores (nothing of ours runs now, so that is other processes).
    Returns the busy cores of the last window; timed runs still report their own other load.
    """
    deadline = time.perf_counter() + max_wait_s
    while True:
        b0 = _proc_stat()[0]
        time.sleep(window_s)
        load = (_proc_stat()[0] - b0) / window_s
        if load < threshold or time.perf_counter() >= deadline or load != load:
            return load


def _own_cpu() -> float:
    """CPU seconds of this process and its reaped children (the Dask workers, once closed)."""
    t = os.times()
    return _cpu() + t.children_user + t.children_system


class _TimingRecords(logging.Handler):
    """Collects the per-cluster timing records that ``run_shard`` logs (``xc_timing``)."""

    def __init__(self):
        super().__init__(level=logging.DEBUG)
        self.timings: list[dict] = []

    def emit(self, record):
        t = getattr(record, "xc_timing", None)
        if t:
            self.timings.append(dict(t))


def _time_shard(config, sample: Path, run: Path, n_workers: int,
                neighbours: Path | None = None) -> dict:
    from xclusters.parallel.shards import read_manifest, split_shards, timing_summary
    from xclusters.pipeline.shard import build_shard

    cfg = dict(config)
    cfg["parallel"] = dict(config["parallel"], backend="local", n_workers=n_workers,
                           threads_per_worker=1, retries=0)
    shard = split_shards(sample, 10_000, run / "shards")[0]
    plog = logging.getLogger("xclusters.parallel")
    handler, old_level = _TimingRecords(), plog.level
    plog.addHandler(handler)
    plog.setLevel(logging.DEBUG)
    try:
        with _WorkerMemory() as mem:
            busy0, steal0 = _proc_stat()
            own0, wall0, t0 = _own_cpu(), time.perf_counter(), time.time()
            manifest = build_shard(shard, cfg, clusters_dir=run / "clusters",
                                   manifest=run / "manifest.ecsv", threads=n_workers,
                                   mem_mb=n_workers * float(config["parallel"]
                                                            ["memory_per_worker_mb"]),
                                   **({"neighbours": neighbours} if neighbours else {}))
            wall, t1 = time.perf_counter() - wall0, time.time()
            own = _own_cpu() - own0
            busy1, steal1 = _proc_stat()
    finally:
        plog.removeHandler(handler)
        plog.setLevel(old_level)
    table = read_manifest(manifest)
    n_ok = int(sum(s == "ok" for s in table["status"]))
    summ = timing_summary(handler.timings)
    # the workers whose peak is largest; fewer entries than workers if one ended unseen
    peaks = sorted(mem.peak.values(), reverse=True)[:n_workers]
    out = {"workers": n_workers, "wall": wall, "n_ok": n_ok, "n": len(table),
           "peaks_mb": [p / 1024 for p in peaks],
           "other_load": max(0.0, (busy1 - busy0) - own) / wall,
           "steal": (steal1 - steal0) / wall}
    if summ:
        out.update(startup=summ["first_start"] - t0, work=summ["span_s"],
                   close=t1 - summ["last_end"], tail=summ["tail_s"],
                   busy=summ["utilisation"], cpu_per=summ["cpu_s"] / summ["n"])
    return out


def _mean(values):
    values = [v for v in values if v == v]
    return sum(values) / len(values) if values else float("nan")


def _print_shard(runs: list[dict]) -> None:
    print()
    print(f"{'build_shard':<12} {'ok/n':>6} {'wall s':>7} {'start-up':>8} {'work s':>7} "
          f"{'close':>6} {'tail':>5} {'busy':>5} {'CPU s/cl':>8} {'other':>6} {'steal':>5} "
          f"{'peak RSS/worker MB':>19}")
    for r in runs:
        flag = "*" if r["other_load"] > 0.2 else " "
        peaks = ", ".join(f"{p:.0f}" for p in r["peaks_mb"]) or "n/a"
        print(f"{r['workers']} worker(s){flag} {r['n_ok']:>2d}/{r['n']:<3d} {r['wall']:>7.1f} "
              f"{r.get('startup', float('nan')):>8.1f} {r.get('work', float('nan')):>7.1f} "
              f"{r.get('close', float('nan')):>6.1f} {r.get('tail', float('nan')):>5.1f} "
              f"{100 * r.get('busy', float('nan')):>4.0f}% "
              f"{r.get('cpu_per', float('nan')):>8.2f} {r['other_load']:>6.2f} "
              f"{r['steal']:>5.2f} {peaks:>19}")
    by = {nw: [r for r in runs if r["workers"] == nw] for nw in (1, 2)}
    if not (by[1] and by[2]):
        return
    for nw in (1, 2):
        rs = by[nw]
        print(f"{nw} worker(s), mean of {len(rs)}: wall {_mean([r['wall'] for r in rs]):.1f} s, "
              f"work {_mean([r.get('work', float('nan')) for r in rs]):.1f} s, "
              f"{3600 * _mean([r['n_ok'] / r['wall'] for r in rs]):.0f} clusters/h")

    def ratio(key, pick):
        a = pick([r.get(key, float("nan")) for r in by[1]])
        b = pick([r.get(key, float("nan")) for r in by[2]])
        return a / b

    print(f"speed-up 1 -> 2 workers, wall (mean of runs): {ratio('wall', _mean):.2f}x; "
          f"best runs: {ratio('wall', min):.2f}x (target >= 1.7x)")
    print(f"speed-up 1 -> 2 workers, work only (start-up and close excluded): "
          f"{ratio('work', _mean):.2f}x; best runs: {ratio('work', min):.2f}x")
    pairs = [a["wall"] / b["wall"] for a, b in zip(by[1], by[2])]
    print("speed-up of each interleaved 1w/2w pair (wall): "
          + ", ".join(f"{x:.2f}x" for x in pairs))
    flagged = sum(r["other_load"] > 0.2 for r in runs)
    if flagged:
        print(f"* {flagged} run(s) shared the machine with other processes (> 0.2 cores): "
              "their times are pessimistic")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", default=str(REPO / "config" / "config.yaml"))
    ap.add_argument("--n-clusters", type=int, default=None,
                    help="clusters of the build_shard runs (default: the config's "
                         "sample.n_clusters)")
    ap.add_argument("--reuse-clusters", type=int, default=4,
                    help="clusters of the photon-reuse comparison (a)/(b) (default 4)")
    ap.add_argument("--repeats", type=int, default=2,
                    help="interleaved 1-worker / 2-worker build_shard pairs (default 2)")
    ap.add_argument("--wait-quiet", type=float, default=90.0,
                    help="before each timed run, wait up to this many seconds for other "
                         "processes to leave the CPUs idle (default 90; 0: do not wait)")
    ap.add_argument("--workdir", default=None, help="scratch dir (default: a temporary one)")
    ap.add_argument("--skip-baseline", action="store_true", help="skip (b)")
    ap.add_argument("--skip-reuse", action="store_true", help="skip (a) and (b)")
    ap.add_argument("--skip-shard", action="store_true")
    ap.add_argument("--no-neighbours", action="store_true",
                    help="build_shard without the light-cone neighbours of the config")
    ap.add_argument("--no-rmf-cache", action="store_true",
                    help="SOXS reads each RMF anew per observation, as it does by itself "
                         "(sets XCLUSTERS_RMF_CACHE=0 for this process and its Dask workers)")
    ap.add_argument("-v", "--verbose", action="store_true")
    args = ap.parse_args(argv)
    if args.no_rmf_cache:
        from xclusters.instruments.rmf_cache import ENV_SWITCH
        os.environ[ENV_SWITCH] = "0"
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(asctime)s %(name)s %(levelname)s %(message)s")
    for name in ("yt", "pyxsim", "soxs", "distributed"):
        logging.getLogger(name).setLevel(logging.WARNING)
    warnings.filterwarnings("ignore", message="Port .* is already in use")
    os.environ.setdefault("DASK_LOGGING__DISTRIBUTED", "warning")

    from xclusters.config import load_config
    from xclusters.instruments import default_response_dir, register_instruments
    from xclusters.pipeline.cluster import build_cluster
    from xclusters.pipeline.sample import build_sample

    n_clusters = args.n_clusters or int(load_config(Path(args.config))["sample"]["n_clusters"])
    work = Path(args.workdir or tempfile.mkdtemp(prefix="xc-bench-"))
    cfg = _load_config(Path(args.config), work / "results", n_clusters)
    run = work / "results" / cfg["run"]
    sample = build_sample(cfg, run / "sample.ecsv")
    rows = _rows(sample)
    register_instruments(cfg, default_response_dir(cfg))  # one-off response set-up, untimed
    load0 = os.getloadavg()
    print(f"# {len(rows)} clusters from {Path(args.config).name}: grid "
          f"{cfg['sources']['grid_cells']}^3, projections {cfg['projections']}, "
          f"images {cfg['instruments']['erosita']['image_pixels']} px, emission "
          f"{cfg['emission']['model']} ({cfg['emission']['nbins']} bins); "
          f"{os.cpu_count()} CPUs; load average at start {load0[0]:.2f} {load0[1]:.2f} "
          f"{load0[2]:.2f}; RMF cache {'off' if args.no_rmf_cache else 'on'}; "
          f"{time.strftime('%Y-%m-%d %H:%M')}", flush=True)

    res = {}
    if not args.skip_reuse:
        reuse = rows[:max(1, args.reuse_clusters)]
        # Untimed warm-up (imports, emission tables, SOXS response caches) for (a) and (b).
        build_cluster(reuse[0], cfg, str(run / "warmup"))
        if args.wait_quiet > 0:
            _wait_quiet(args.wait_quiet)
        res["a"] = _time_serial(build_cluster, reuse, cfg, run / "a_clusters")
        if not args.skip_baseline:
            if args.wait_quiet > 0:
                _wait_quiet(args.wait_quiet)
            res["b"] = _time_serial(baseline_cluster, reuse, cfg, run / "b_clusters")
    if res:
        print()
        print(f"{'method':<44} {'images':>6} {'CPU s':>8} {'wall s':>8} {'img/core-h':>10} "
              f"{'CPU s/cluster':>22}")
        names = {"a": "(a) build_cluster: 1 photon list/cluster",
                 "b": "(b) baseline: 9 photon lists/cluster"}
        rate = {}
        for key, (cpu, wall, n, per) in res.items():
            rate[key] = n / (cpu / 3600.0)
            per_s = " ".join(f"{p:.0f}" for p in per)
            print(f"{names[key]:<44} {n:>6d} {cpu:>8.1f} {wall:>8.1f} {rate[key]:>10.0f} "
                  f"{per_s:>22}")
        if "b" in res:
            print(f"ratio (a)/(b) images per core-hour: {rate['a'] / rate['b']:.2f}x "
                  f"(target >= 3x); per wall-hour: "
                  f"{(res['a'][2] / res['a'][1]) / (res['b'][2] / res['b'][1]):.2f}x")
        sys.stdout.flush()
    # build_shard as the workflow runs it: with the sample step's light-cone neighbours when
    # the config includes them ((a) and (b) above leave them out: the baseline has none).
    nb_file = run / "neighbours.ecsv"
    neighbours = (nb_file if cfg["sources"]["include_neighbours"] and nb_file.is_file()
                  and not args.no_neighbours else None)
    print(f"# build_shard {'with' if neighbours else 'without'} light-cone neighbours",
          flush=True)
    shard_runs = []
    if not args.skip_shard:
        for rep in range(max(1, args.repeats)):
            for nw in (1, 2):
                if args.wait_quiet > 0:
                    before = _wait_quiet(args.wait_quiet)
                    if before >= 0.15:
                        print(f"# machine not quiet after {args.wait_quiet:.0f} s "
                              f"({before:.2f} cores busy); running anyway", flush=True)
                r = _time_shard(cfg, sample, work / f"shard_{nw}w_{rep}", nw, neighbours)
                shard_runs.append(r)
                print(f"# build_shard {nw} worker(s), run {rep + 1}: {r['wall']:.1f} s "
                      f"(other load {r['other_load']:.2f} cores)", flush=True)

    load1 = os.getloadavg()
    if shard_runs:
        _print_shard(shard_runs)
    print(f"load average at end {load1[0]:.2f} {load1[1]:.2f} {load1[2]:.2f}; scratch {work}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
