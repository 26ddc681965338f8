# Shared helpers: resolved config, stage fingerprints, output paths, input functions, resources.
# Parsing this file writes nothing (snakemake -n, --lint and --report leave results/ alone):
# the resolved config is written by the onstart handler below.
import json
from pathlib import Path

import yaml

# The package re-validates with its own loader, which names key, value and expectation.
from xclusters.config import validate_config
from xclusters.stages import build_stages, combined_fingerprint

XC = validate_config(config, source="snakemake config")
RUN = str(Path(XC["results_dir"]) / XC["run"])
RESOLVED = f"{RUN}/config.resolved.yaml"
# One fingerprint per stage (xclusters.stages): each rule's params carry only its own, so a
# changed key reruns its stage and what depends on it, nothing upstream.
STAGES = build_stages(XC)
FP = {name: stage.fingerprint() for name, stage in STAGES.items()}
FP["build_shard"] = combined_fingerprint(
    s for n, s in STAGES.items() if n.split(".")[0] in ("source", "photons", "events", "images"))
MASS_FOLDS = XC["train"]["mass"]["folds"]
CHANDRA = XC["instruments"]["chandra_acisi"]["enabled"]


onstart:
    # The resolved config every job reads (their params name its path and carry their own
    # stage fingerprint). Written here, once Snakemake holds its lock and only for a real run
    # (not -n, --lint, --report; jobs on a cluster run with --no-hooks), and only when the
    # content changed, so a refused second run cannot change what a running one reads.
    from xclusters.io import atomic_write_text

    _text = yaml.safe_dump(XC, sort_keys=True)
    if not Path(RESOLVED).is_file() or Path(RESOLVED).read_text() != _text:
        Path(RESOLVED).parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(RESOLVED, _text)


wildcard_constraints:
    shard=r"\d{3}",
    fold=r"\d+",
    split="test|trainval",


def get_mem_mb(base_mb):
    """Memory that grows with each retry: base, 2x base, ..."""

    def _mem(wildcards, attempt):
        return int(base_mb * attempt)

    return _mem


def output_dir(wildcards, output):
    """Params function: the directory of a rule's first output."""
    return str(Path(output[0]).parent)


def shard_manifests(wildcards):
    """Input function: one manifest per shard written by the `shards` checkpoint."""
    shard_dir = checkpoints.shards.get().output[0]
    ids = sorted(p.stem.split("_")[1] for p in Path(shard_dir).glob("shard_*.ecsv"))
    return [f"{RUN}/manifests/shard_{i}.ecsv" for i in ids]


# Evaluation outputs: (file name, caption file, subcategory); None = not shown in the report.
SUPEROBS_EVAL = [
    ("superobs_table3.md", "superobs_table3.rst", "Tables"),
    ("superobs_classification.md", "superobs_classification.rst", "Tables"),
    ("superobs_table3.ecsv", None, None),
    ("superobs_per_image.ecsv", None, None),
    ("summary.json", None, None),
    ("fig_superobs_grid.png", "superobs_grid.rst", "Images"),
    ("fig_concentration.png", "superobs_concentration.rst", "Morphology"),
    ("fig_asymmetry.png", "superobs_asymmetry.rst", "Morphology"),
    ("fig_smoothness.png", "superobs_smoothness.rst", "Morphology"),
    ("fig_flux.png", "superobs_flux.rst", "Flux and background"),
    ("fig_background.png", "superobs_background.rst", "Flux and background"),
    ("fig_mass_dependence.png", "superobs_mass_dependence.rst", "Morphology"),
]
MASS_EVAL = [
    ("mass_summary.md", "mass_summary.rst", "Tables"),
    ("mass_table.md", "mass_table.rst", "Tables"),
    ("summary.json", None, None),
    ("lx_baseline.ecsv", "lx_baseline.rst", "Tables"),
    ("fig_mass_true_pred.png", "mass_true_pred.rst", "Figures"),
    ("fig_mass_delta.png", "mass_delta.rst", "Figures"),
    ("fig_mass_gradients.png", "mass_gradients.rst", "Interpretation"),
    ("fig_mass_gradient_profile.png", "mass_gradient_profile.rst", "Interpretation"),
]
CATEGORIES = {"superobs": "Super observation (paper 000)", "mass": "Mass (paper 004)"}


def evaluation_outputs(kind):
    """Output list of an evaluation rule, figures and tables wrapped in report()."""
    table = SUPEROBS_EVAL if kind == "superobs" else MASS_EVAL
    outs = []
    for name, caption, sub in table:
        path = f"{RUN}/evaluation/{kind}/{name}"
        if caption is None:
            outs.append(path)
        else:
            outs.append(report(path, caption=f"../report/{caption}",
                               category=CATEGORIES[kind], subcategory=sub))
    return outs


def all_targets():
    targets = [f"{RUN}/evaluation/superobs/{name}" for name, _, _ in SUPEROBS_EVAL]
    targets.append(f"{RUN}/evaluation/superobs_trainval/superobs_table3.md")
    targets.append(f"{RUN}/evaluation/superobs/fig_learning_curves.png")
    if CHANDRA:
        targets += [f"{RUN}/evaluation/mass/{name}" for name, _, _ in MASS_EVAL]
        targets.append(f"{RUN}/evaluation/mass/fig_learning_curves.png")
    return targets
