"""Cluster images per core-hour: this project's build versus the pyXSIM/SOXS tutorial way.

On a few clusters of the default configuration (config/config.yaml: 64^3 grids, 3 projections,
eROSITA + ideal + Chandra ACIS-I, 128x128 images), all in one process:

(a) ``build_cluster``: one pyXSIM photon list per cluster with area x time enough for every
    instrument, projected once per axis, every instrument's events drawn from that SIMPUT;
(b) the baseline, the straightforward tutorial way: a separate ``make_photons`` for every
    instrument and axis (9 photon lists per cluster), each with the peak area x exposure of its
    own instrument (times the same ``photons.area_margin``), then project, SOXS and image.

Both start from the same ``source.h5`` build (included in both timings) and use the same
emission model, responses and image writer, so the difference is the photon strategy only. One
untimed ``build_cluster`` warms imports and caches first.
"Core-hours" are the process's CPU time (user + sys, all threads), which other processes on a
shared machine do not inflate; wall times are printed too.

Then ``build_shard`` on the same clusters with 1 worker (threads=1) and 2 workers (threads=2):
wall-clock speed-up and the peak RSS of each Dask worker process (VmHWM from /proc).

Usage::

    python benchmarks/build_images.py [--n-clusters 4] [--config config/config.yaml]
        [--workdir DIR] [--skip-baseline] [--skip-shard]

Prints a table; not a pass/fail test. Targets of the issue: (a)/(b) >= 3x images per
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
    apec = cfg["emission"].get("apec_table_path")
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
                       snapshot_path=config["catalog"].get("snapshot"))
    write_source(source_path, src, config=config, seed=seed)
    peaks = peak_areas_cm2(config, response_dir)
    margin = float(config["photons"].get("area_margin", 1.5))
    agn = source_path if config["sources"].get("include_agn", True) else None
    out = []
    for ax in config["projections"]:
        for inst in enabled_instruments(config):
            exposure_s = float(config["instruments"][inst]["exposure_ks"]) * 1e3
            photons = cdir / f"photons_{inst}_{ax}.h5"
            make_photon_list(source_path, photons, emission_cfg=config["emission"],
                             area_cm2=peaks[inst], exposure_s=margin * exposure_s,
                             redshift=float(row["redshift"]),
                             seed=int_seed_for(seed, halo_id, "photons", ax, inst),
                             cluster_id=cid)
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
    """Samples VmHWM (peak RSS) of this process's Dask worker children every 0.2 s."""

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
            self._stop.wait(0.2)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join(timeout=5)


def _time_shard(config, sample: Path, run: Path, n_workers: int) -> dict:
    from xclusters.parallel.shards import read_manifest, split_shards
    from xclusters.pipeline.shard import build_shard

    cfg = dict(config)
    cfg["parallel"] = dict(config["parallel"], backend="local", n_workers=n_workers,
                           threads_per_worker=1, retries=0)
    shard = split_shards(sample, 10_000, run / "shards")[0]
    with _WorkerMemory() as mem:
        wall0, cpu0 = time.perf_counter(), _cpu()
        manifest = build_shard(shard, cfg, clusters_dir=run / "clusters",
                               manifest=run / "manifest.ecsv", threads=n_workers,
                               mem_mb=n_workers * float(config["parallel"]["memory_per_worker_mb"]))
        wall = time.perf_counter() - wall0
    table = read_manifest(manifest)
    n_ok = int(sum(s == "ok" for s in table["status"]))
    # the worker whose peak is largest; fewer entries than workers if one ended unseen
    peaks = sorted(mem.peak.values(), reverse=True)[:n_workers]
    return {"wall": wall, "n_ok": n_ok, "n": len(table), "peaks_mb": [p / 1024 for p in peaks],
            "parent_cpu": _cpu() - cpu0}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", default=str(REPO / "config" / "config.yaml"))
    ap.add_argument("--n-clusters", type=int, default=4)
    ap.add_argument("--workdir", default=None, help="scratch dir (default: a temporary one)")
    ap.add_argument("--skip-baseline", action="store_true")
    ap.add_argument("--skip-shard", action="store_true")
    ap.add_argument("-v", "--verbose", action="store_true")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(asctime)s %(name)s %(levelname)s %(message)s")
    for name in ("yt", "pyxsim", "soxs", "distributed"):
        logging.getLogger(name).setLevel(logging.WARNING)
    warnings.filterwarnings("ignore", message="Port .* is already in use")
    os.environ.setdefault("DASK_LOGGING__DISTRIBUTED", "warning")

    from xclusters.instruments import default_response_dir, register_instruments
    from xclusters.pipeline.cluster import build_cluster
    from xclusters.pipeline.sample import build_sample

    work = Path(args.workdir or tempfile.mkdtemp(prefix="xc-bench-"))
    cfg = _load_config(Path(args.config), work / "results", args.n_clusters)
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
          f"{load0[2]:.2f}", flush=True)

    # Untimed warm-up (imports, emission tables, SOXS response caches), shared by (a) and (b).
    build_cluster(rows[0], cfg, str(run / "warmup"))
    res = {}
    res["a"] = _time_serial(build_cluster, rows, cfg, run / "a_clusters")
    if not args.skip_baseline:
        res["b"] = _time_serial(baseline_cluster, rows, cfg, run / "b_clusters")
    shard = {}
    if not args.skip_shard:
        for nw in (1, 2):
            shard[nw] = _time_shard(cfg, sample, work / f"shard_{nw}w", nw)

    load1 = os.getloadavg()
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
    if shard:
        print()
        print(f"{'build_shard':<20} {'ok/n':>6} {'wall s':>8} {'clusters/h':>10} "
              f"{'peak RSS per worker (MB)':>26}")
        for nw, r in shard.items():
            peaks = ", ".join(f"{p:.0f}" for p in r["peaks_mb"]) or "n/a"
            print(f"{nw} worker(s){'':<9} {r['n_ok']:>2d}/{r['n']:<3d} {r['wall']:>8.1f} "
                  f"{3600 * r['n_ok'] / r['wall']:>10.1f} {peaks:>26}")
        if 1 in shard and 2 in shard:
            print(f"speed-up 1 -> 2 workers (wall): {shard[1]['wall'] / shard[2]['wall']:.2f}x "
                  f"(target >= 1.7x)")
    print(f"load average at end {load1[0]:.2f} {load1[1]:.2f} {load1[2]:.2f}; scratch {work}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
