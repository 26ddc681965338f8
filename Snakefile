# xclusters: mock X-ray cluster observations and the CNNs of two papers.
# The Snakefile only wires: config + validation, includes (one .smk per stage), rule all.
from snakemake.utils import min_version, validate

min_version("8.0")


configfile: "config/config.yaml"


# Snakemake's YAML loader keeps the last of duplicate keys and expands aliases without limit:
# re-read the config files with the package's strict loader before validating.
from xclusters.yaml_strict import check_files

check_files(workflow.configfiles)


validate(config, schema="workflow/schemas/config.schema.yaml")


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
