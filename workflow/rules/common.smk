# Shared helpers: resolved config, output paths, input functions, resources.
import json
from pathlib import Path

import yaml

# The package re-validates with its own loader, which names key, value and expectation.
from xclusters.config import validate_config
from xclusters.provenance import config_hash

XC = validate_config(config, source="snakemake config")
RUN = str(Path(XC["results_dir"]) / XC["run"])
CONFIG_HASH = config_hash(XC)


def _freeze_config():
    """Write the resolved config once per content; rules read it (params carry the hash)."""
    path = Path(RUN) / "config.resolved.yaml"
    text = yaml.safe_dump(XC, sort_keys=True)
    if not path.is_file() or path.read_text() != text:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return str(path)


RESOLVED = _freeze_config()
MASS_FOLDS = XC["train"]["mass"]["folds"]
CHANDRA = XC["instruments"]["chandra_acisi"].get("enabled", True)


wildcard_constraints:
    shard=r"\d{3}",
    fold=r"\d+",


def get_mem_mb(base_mb):
    """Memory that grows with each retry: base, 2x base, ..."""

    def _mem(wildcards, attempt):
        return int(base_mb * attempt)

    return _mem


def shard_manifests(wildcards):
    """Input function: one manifest per shard written by the `shards` checkpoint."""
    shard_dir = checkpoints.shards.get().output[0]
    ids = sorted(p.stem.split("_")[1] for p in Path(shard_dir).glob("shard_*.ecsv"))
    return [f"{RUN}/manifests/shard_{i}.ecsv" for i in ids]


SUPEROBS_EVAL = [
    "superobs_table3.ecsv",
    "superobs_table3.md",
    "superobs_classification.md",
    "fig_superobs_grid.png",
    "fig_concentration.png",
    "fig_asymmetry.png",
    "fig_smoothness.png",
    "fig_flux.png",
    "fig_mass_dependence.png",
]
MASS_EVAL = [
    "mass_summary.md",
    "fig_mass_true_pred.png",
    "fig_mass_delta.png",
    "lx_baseline.ecsv",
]


def all_targets():
    targets = [f"{RUN}/evaluation/superobs/{name}" for name in SUPEROBS_EVAL]
    if CHANDRA:
        targets += [f"{RUN}/evaluation/mass/{name}" for name in MASS_EVAL]
    return targets
