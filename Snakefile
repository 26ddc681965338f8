# xclusters: mock X-ray cluster observations and the CNNs of two papers.
# The Snakefile only wires: config + validation, includes (one .smk per stage), rule all.
from pathlib import Path

from snakemake.utils import min_version, validate

min_version("8.0")


# The defaults, in one place; --configfile mine.yaml is merged over them (nested keys one by
# one), exactly as `xclusters run --config mine.yaml` resolves it (xclusters.config).
configfile: str(Path(workflow.basedir) / "config" / "config.yaml")


# Snakemake's YAML loader keeps the last of duplicate keys and expands aliases without limit:
# re-read the config files with the package's strict loader before validating.
from xclusters.yaml_strict import check_files

check_files(workflow.configfiles)


validate(config, schema=str(Path(workflow.basedir) / "workflow/schemas/config.schema.yaml"))


include: "workflow/rules/common.smk"
include: "workflow/rules/catalog.smk"
include: "workflow/rules/images.smk"
include: "workflow/rules/dataset.smk"
include: "workflow/rules/train.smk"
include: "workflow/rules/evaluate.smk"


rule all:
    default_target: True
    input:
        all_targets(),
