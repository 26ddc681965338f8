"""Per-cluster CPU time and peak memory of ``build_cluster``: two source trees, interleaved.

Builds the configuration's sample (``sample.ecsv`` + ``neighbours.ecsv``, as the workflow's
sample step does), picks ``--n-clusters`` clusters spread in redshift (always including the
lowest redshift, where nested core grids cost most), and builds each cluster's images
(every instrument and projection, with its light-cone neighbours) once per source tree and
repeat, in a fresh subprocess each time, alternating the trees (A, B, A, B, ...) so that a
noisy machine slows both alike. Per run it records the subprocess's CPU time (user + sys, all
threads; other processes do not inflate it), wall time and peak RSS (``ru_maxrss``: the peak
memory one worker needs for that cluster).

Usage::

    python benchmarks/cluster_cost.py --before /path/to/old/src [--after src]
        [--n-clusters 4] [--repeats 1] [--config config/config.yaml] [--workdir DIR]
        [--add-cluster 1e14 0.05 ...]

``--before``: e.g. ``git archive <commit> src | tar -x -C /tmp/base`` then ``/tmp/base/src``.
Prints a table and the after/before ratios of the mean CPU time and peak RSS; not a pass/fail
test.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

_RUN = r'''
import json, os, resource, sys, time
os.environ.setdefault("OMP_NUM_THREADS", "1")
import yaml
from xclusters.pipeline.cluster import build_cluster
a = json.loads({args!r})
cfg = yaml.safe_load(open(a["config"]))
t0, c0 = time.perf_counter(), time.process_time()
build_cluster(a["row"], cfg, a["outdir"], neighbours_file=a["neighbours"])
print("RESULT " + json.dumps({{"cpu_s": time.process_time() - c0,
                              "wall_s": time.perf_counter() - t0,
                              "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
                              / 1024.0}}))
'''


def _run(src: Path, args: dict) -> dict:
    env = dict(os.environ, PYTHONPATH=str(src), OMP_NUM_THREADS="1")
    res = subprocess.run([sys.executable, "-c", _RUN.format(args=json.dumps(args))],
                         capture_output=True, text=True, env=env, check=False,
                         cwd=args["cwd"])
    line = [ln for ln in res.stdout.splitlines() if ln.startswith("RESULT ")]
    if res.returncode != 0 or not line:
        raise RuntimeError(f"{src}: build_cluster failed:\n{res.stderr[-3000:]}")
    return json.loads(line[-1][7:])


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--before", required=True, type=Path)
    ap.add_argument("--after", type=Path, default=REPO / "src")
    ap.add_argument("--n-clusters", type=int, default=4)
    ap.add_argument("--repeats", type=int, default=1)
    ap.add_argument("--config", type=Path, default=REPO / "config" / "config.yaml")
    ap.add_argument("--workdir", type=Path, default=None)
    ap.add_argument("--add-cluster", nargs=2, type=float, action="append", default=[],
                    metavar=("M500C", "Z"),
                    help="also build a cluster of this M500c [Msun] and redshift (e.g. paper "
                         "004's 1e14 at 0.05; the default sample starts at z ~ 0.08)")
    a = ap.parse_args(argv)
    import numpy as np
    import yaml
    from astropy.table import Table

    sys.path.insert(0, str(a.after))
    from xclusters.pipeline.sample import build_sample

    work = a.workdir or Path(tempfile.mkdtemp(prefix="xc_cluster_cost_"))
    work.mkdir(parents=True, exist_ok=True)
    cfg = yaml.safe_load(a.config.read_text())
    cfg["results_dir"] = str(work / "results")
    cfg["emission"]["apec_table_path"] = str((REPO / cfg["emission"]["apec_table_path"])
                                             if not Path(cfg["emission"]["apec_table_path"])
                                             .is_absolute() else cfg["emission"]
                                             ["apec_table_path"])
    cfg["instruments"]["response_dir"] = str(work / "responses")
    cfg_path = work / "config.yaml"
    cfg_path.write_text(yaml.safe_dump(cfg))
    sample = build_sample(cfg, work / "sample.ecsv")
    rows = [{k: (v.item() if hasattr(v, "item") else v) for k, v in zip(r.colnames, r)}
            for r in Table.read(sample, format="ascii.ecsv")]
    rows.sort(key=lambda r: r["redshift"])
    pick = sorted({int(i) for i in np.linspace(0, len(rows) - 1, a.n_clusters).round()})
    from xclusters.catalogs.schema import r500c_kpc_from_m500c
    from xclusters.sources.profiles import reference_cosmology

    extra = []
    for k, (m, z) in enumerate(a.add_cluster):
        r500 = float(r500c_kpc_from_m500c(np.array([m]), np.array([z]),
                                          reference_cosmology(cfg["sources"]))[0])
        extra.append(dict(rows[0], cluster_id=f"h{90000000 + k:08d}", halo_id=90000000 + k,
                          m500c=m, redshift=z, r500c=r500))
    pick_rows = [rows[i] for i in pick] + extra
    nb = work / "neighbours.ecsv"
    trees = {"before": a.before.resolve(), "after": a.after.resolve()}
    results = {k: [] for k in trees}
    for row in pick_rows:
        for rep in range(a.repeats):
            for name, src in trees.items():
                out = work / f"clusters_{name}"
                shutil.rmtree(out / str(row["cluster_id"]), ignore_errors=True)
                r = _run(src, {"config": str(cfg_path), "row": row, "outdir": str(out),
                               "neighbours": str(nb) if nb.is_file() else None,
                               "cwd": str(work)})
                r.update(cluster=row["cluster_id"], z=row["redshift"], m500c=row["m500c"])
                results[name].append(r)
                print(f"{name:6s} {row['cluster_id']} z={row['redshift']:.3f} "
                      f"M={row['m500c']:.2e}  CPU {r['cpu_s']:6.1f} s  wall "
                      f"{r['wall_s']:6.1f} s  peak {r['peak_mb']:6.0f} MB", flush=True)
    cpu = {k: np.array([r["cpu_s"] for r in v]) for k, v in results.items()}
    mem = {k: np.array([r["peak_mb"] for r in v]) for k, v in results.items()}
    print(f"\nmean CPU per cluster: before {cpu['before'].mean():.1f} s, after "
          f"{cpu['after'].mean():.1f} s, ratio {cpu['after'].mean() / cpu['before'].mean():.2f}"
          f" (per cluster: {np.round(cpu['after'] / cpu['before'], 2).tolist()})")
    print(f"mean peak RSS: before {mem['before'].mean():.0f} MB, after "
          f"{mem['after'].mean():.0f} MB, ratio {mem['after'].mean() / mem['before'].mean():.2f}")


if __name__ == "__main__":
    main()
