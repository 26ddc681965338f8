"""CPU time and peak memory of a native particle cutout: the sources and photons stages.

Writes a Gadget HDF5 snapshot of one cool-core cluster with ``--n-gas`` gas particles (and as
many dark-matter particles) with ``tests/_xc_sim_snapshots.py``, then runs, each stage in a
fresh subprocess so that its peak RSS is its own:

* ``sources``: :func:`xclusters.sources.build_simulation_source` (``deposit: native``:
  shrinking-sphere centre, hot-gas filter, cutout) + ``write_source``;
* ``photons``: :func:`xclusters.observe.photons.make_photon_list` of that ``source.h5`` with
  ``photons.chunk_particles`` = each ``--chunks`` value (the default run's photon budget:
  eROSITA, ideal and Chandra ACIS-I, ``area_margin`` 1.5);
* ``grid``: the same cutout deposited on the 64^3 grid (``deposit: auto``, SPH kernel) and its
  photons, the pre-issue-17 path, for comparison.

Per stage it prints CPU seconds (user + sys of the subprocess), wall seconds and the peak RSS
growth over the process after imports (``ru_maxrss``), and, per gas particle of the cutout,
the bytes behind :data:`xclusters.sources.particles.SOURCE_BYTES_PER_PARTICLE` and
:data:`xclusters.observe.particle_photons.PHOTON_BYTES_PER_PARTICLE`.

Usage::

    python benchmarks/particle_cutout.py [--n-gas 1000000] [--chunks 1000000 250000]
        [--workdir DIR] [--skip-grid]

Prints a table; not a pass/fail test. The machine's other load inflates wall times, not CPU.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

_STAGE = r'''
import json, os, resource, sys, time
sys.path.insert(0, {tests!r})
os.environ.setdefault("OMP_NUM_THREADS", "1")
import numpy as np, yaml
import yt, pyxsim  # noqa: F401  (imports before the baseline)
from xclusters.sources import build_simulation_source, write_source
from xclusters.observe.photons import make_photon_list
yt.set_log_level(40)
args = json.loads({args!r})
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
t0, c0 = time.perf_counter(), time.process_time()
out = {{}}
if args["stage"] == "sources":
    src = build_simulation_source(args["row"], args["sources"], args["snapshot"], 1,
                                  memory_mb=args.get("memory_mb"))
    write_source(args["source"], src)
    out["n_particles"] = int(src["attrs"]["n_particles"])
else:
    make_photon_list(args["source"], args["photons"], emission_cfg=args["emission"],
                     area_cm2=args["area"], exposure_s=args["exposure"], seed=3,
                     cluster_id="bench", chunk_particles=args.get("chunk"))
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
out.update(cpu_s=time.process_time() - c0, wall_s=time.perf_counter() - t0,
           peak_mb=(peak - base) / 1024.0, base_mb=base / 1024.0)
print("RESULT " + json.dumps(out))
'''


def _run(args: dict) -> dict:
    code = _STAGE.format(tests=str(REPO / "tests"), args=json.dumps(args))
    env = dict(os.environ, PYTHONPATH=str(REPO / "src") + os.pathsep
               + os.environ.get("PYTHONPATH", ""))
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env=env, check=False)
    line = [ln for ln in res.stdout.splitlines() if ln.startswith("RESULT ")]
    if res.returncode != 0 or not line:
        raise RuntimeError(f"stage {args['stage']} failed:\n{res.stderr[-3000:]}")
    return json.loads(line[-1][7:])


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n-gas", type=int, default=1_000_000)
    ap.add_argument("--chunks", type=int, nargs="+", default=[1_000_000, 250_000])
    ap.add_argument("--workdir", default=None)
    ap.add_argument("--skip-grid", action="store_true")
    a = ap.parse_args(argv)
    import yaml

    sys.path.insert(0, str(REPO / "tests"))
    from _xc_sim_snapshots import ClusterModel, write_gadget_hdf5

    work = Path(a.workdir or tempfile.mkdtemp(prefix="xc_particle_bench_"))
    work.mkdir(parents=True, exist_ok=True)
    model = ClusterModel(n_gas=a.n_gas, n_dm=a.n_gas, gas_mass_msun=1.5e13, r_max_kpc=1100.0,
                         rc_kpc=40.0, alpha=0.9)
    snap = work / "snap_000.hdf5"
    if not snap.exists():
        write_gadget_hdf5(snap, model)
    cfg = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    shared = REPO.parent / "shared" / "data" / "emission" / "apec_emissivity_v3.h5"
    emission = dict(cfg["emission"], apec_table_path=str(shared), allow_download=False)
    c = model.centre_ckpc_h
    row = {"halo_id": 1, "cluster_id": "h00000001", "m500c": model.m500c_msun,
           "r500c": model.r500c_kpc, "redshift": model.redshift, "x_c": c[0], "y_c": c[1],
           "z_c": c[2]}
    # the default run's photon budget (eROSITA 2 ks, ideal 10 ks, Chandra 100 ks; margin 1.5)
    from xclusters.observe.photons import photon_budget
    from xclusters.pipeline.cluster import enabled_instruments, peak_areas_cm2

    cfg["instruments"]["response_dir"] = str(work / "responses")
    area, exposure = photon_budget({k: cfg["instruments"][k] for k in enabled_instruments(cfg)},
                                   peak_areas_cm2(cfg, work / "responses"),
                                   area_margin=float(cfg["photons"]["area_margin"]))
    rows = []
    src = work / "source_native.h5"
    r = _run({"stage": "sources", "row": row, "sources": dict(cfg["sources"], kind="simulation"),
              "snapshot": str(snap), "source": str(src)})
    n = r["n_particles"]
    rows.append(("sources (native cutout)", r))
    for ch in a.chunks:
        rows.append((f"photons, chunk {ch:,}",
                     _run({"stage": "photons", "source": str(src), "emission": emission,
                           "area": area, "exposure": exposure, "chunk": ch,
                           "photons": str(work / f"photons_{ch}.h5")})))
    if not a.skip_grid:
        gsrc = work / "source_grid.h5"
        rows.append(("sources (64^3 SPH deposit)",
                     _run({"stage": "sources", "row": row,
                           "sources": dict(cfg["sources"], kind="simulation", deposit="auto"),
                           "snapshot": str(snap), "source": str(gsrc)})))
        rows.append(("photons (64^3 grid)",
                     _run({"stage": "photons", "source": str(gsrc), "emission": emission,
                           "area": area, "exposure": exposure,
                           "photons": str(work / "photons_grid.h5")})))
    print(f"\nGadget HDF5, {a.n_gas:,} gas + {a.n_gas:,} DM particles; {n:,} hot gas particles "
          f"in the cutout; workdir {work}")
    print(f"{'stage':32s} {'CPU s':>8s} {'wall s':>8s} {'peak MB':>9s} {'B/particle':>11s}")
    for name, r in rows:
        per = r["peak_mb"] * 2**20 / n
        print(f"{name:32s} {r['cpu_s']:8.1f} {r['wall_s']:8.1f} {r['peak_mb']:9.0f} {per:11.0f}")


if __name__ == "__main__":
    main()
