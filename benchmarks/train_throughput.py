"""Training throughput (images/s, CPU) of both CNNs: a few optimizer steps on random counts.

Prints a table; not a pass/fail test. The numbers size ``train.*.epochs`` for a run and the
``runtime`` of the Snakemake train rules. On a shared machine other processes lower them.

Usage::

    PYTHONPATH=src python benchmarks/train_throughput.py [--threads 1] [--steps 3]
"""
from __future__ import annotations

import argparse
import os
import sys
import time


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=1, help="TF intra-op threads")
    ap.add_argument("--steps", type=int, default=3, help="timed steps after one warm-up step")
    args = ap.parse_args(argv)
    os.environ["TF_NUM_INTRAOP_THREADS"] = str(args.threads)
    os.environ["TF_NUM_INTEROP_THREADS"] = "1"
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

    import keras
    import numpy as np

    from xclusters.models.mass import build_mass_model
    from xclusters.models.morphology import SuperobsLoss
    from xclusters.models.superobs import build_superobs_model
    from xclusters.seeds import rng_for

    rng = rng_for(0, 0, "benchmark")
    cases = [("superobs", 128, 4), ("superobs", 256, 2), ("mass", 128, 32)]
    rows = []
    for name, npix, batch in cases:
        keras.utils.set_random_seed(0)
        if name == "superobs":
            model = build_superobs_model(3, npix)
            model.compile(keras.optimizers.Adam(1e-3), loss=SuperobsLoss())
            x = rng.poisson(1.0, (batch, npix, npix, 3)).astype("float32")
            y = rng.poisson(5.0, x.shape).astype("float32")
        else:
            model = build_mass_model(npix, output_bias=14.3)
            model.compile(keras.optimizers.Adam(5e-4), loss="mse")
            x = rng.poisson(3.0, (batch, npix, npix, 1)).astype("float32")
            y = rng.uniform(13.7, 15.0, (batch, 1)).astype("float32")
        model.train_on_batch(x, y)  # trace and build
        t0 = time.perf_counter()
        for _ in range(args.steps):
            model.train_on_batch(x, y)
        dt = time.perf_counter() - t0
        rows.append((name, f"{npix}x{npix}", batch, args.steps * batch / dt, dt / args.steps))
    print(f"threads={args.threads} steps={args.steps} (CPU; shared machines report lower)")
    print(f"{'model':<9} {'image':>8} {'batch':>5} {'images/s':>9} {'s/step':>7}")
    for name, img, batch, ips, sps in rows:
        print(f"{name:<9} {img:>8} {batch:>5} {ips:>9.2f} {sps:>7.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
