#!/usr/bin/env python
"""Train the mass CNN on some test folds with one setting and compare it with the L_X baseline.

The measurement behind ``train.mass.input_scaling`` (config/README.md, issue 16). Trains one
model per test fold with :func:`xclusters.pipeline.training.train_mass_from_dataset` (the
workflow's training step), predicts with :func:`xclusters.pipeline.predictions.predict_mass_folds`,
evaluates with :func:`xclusters.evaluate.run_mass_evaluation` and prints the CNN and L_X
entries of its ``summary.json``.

The dataset of the measurement (60 clusters, 64 x 64 Chandra pixels, ~10 min on 1 core)::

    cat > mass64.yaml <<EOF
    run: mass64
    sample: {n_clusters: 60, log_m500c_min: 13.7, z_min: 0.05, z_max: 0.3}
    sources: {grid_cells: 32, include_neighbours: false,
              core_refinement: {radius_r500c: 0.15, max_levels: 2}}
    emission: {nbins: 150}
    instruments:
      erosita: {image_pixels: 32}
      ideal: {image_pixels: 32}
      chandra_acisi: {image_pixels: 64}
    parallel: {n_workers: 1, memory_per_worker_mb: 3000, shard_size: 10}
    EOF
    python -m snakemake --configfile mass64.yaml --cores 1 results/mass64/dataset.h5

Then, e.g.::

    python scripts/measure_mass_cnn.py --run results/mass64 --name std_e20 --max-epochs 20 \\
        --batch-size 8 --input-scaling log1p_standardized --folds 0 3 6
"""
from __future__ import annotations

import argparse
import copy
import json
from pathlib import Path

import yaml


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--run", type=Path, required=True,
                    help="run directory holding dataset.h5 and config.resolved.yaml")
    ap.add_argument("--name", required=True, help="output sub-directory of --out-dir")
    ap.add_argument("--out-dir", type=Path, default=Path("mass_measurements"))
    ap.add_argument("--max-epochs", type=int, required=True)
    ap.add_argument("--batch-size", type=int, required=True)
    ap.add_argument("--input-scaling", default="log1p_standardized",
                    choices=["log1p", "log1p_standardized", "none"])
    ap.add_argument("--redshift-input", action="store_true")
    ap.add_argument("--folds", type=int, nargs="+", default=[0, 3, 6])
    a = ap.parse_args()

    from xclusters.config import validate_config
    from xclusters.evaluate import run_mass_evaluation
    from xclusters.pipeline.predictions import predict_mass_folds
    from xclusters.pipeline.training import train_mass_from_dataset

    cfg = copy.deepcopy(yaml.safe_load((a.run / "config.resolved.yaml").read_text()))
    cfg["train"]["mass"].update(max_epochs=a.max_epochs, batch_size=a.batch_size,
                                input_scaling=a.input_scaling,
                                redshift_input=bool(a.redshift_input))
    cfg = validate_config(cfg)
    out = a.out_dir / a.name
    out.mkdir(parents=True, exist_ok=True)
    dataset = a.run / "dataset.h5"
    models, folds = [], {}
    for k in a.folds:
        model = out / f"mass_fold{k}.keras"
        s = train_mass_from_dataset(dataset, k, model, config=cfg, workdir=out / "work")
        folds[k] = {"epochs": s["epochs_run"], "stop": s["stop_reason"],
                    "time_s": round(s["time_s"])}
        models.append(model)
    predict_mass_folds(models, dataset, out / "mass.ecsv")
    run_mass_evaluation(dataset, out / "mass.ecsv", out / "eval", config=cfg)
    mass = json.loads((out / "eval" / "summary.json").read_text())["mass"]
    keys = ("n", "sigma_dex", "sigma_mle_dex", "mu_dex", "slope")
    print(json.dumps({"name": a.name, "folds": folds,
                      "cnn": {k: mass["cnn"][k] for k in keys},
                      "lx_baseline": {k: mass["lx_baseline"][k] for k in keys}}, indent=1))


if __name__ == "__main__":
    main()
