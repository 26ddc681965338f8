# The two commands of the README. Each first creates/reuses .venv (scripts/env.sh).
CONFIG ?= config/config.yaml
CORES ?= 2
VENV ?= .venv
export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)
export TF_CPP_MIN_LOG_LEVEL ?= 2

.PHONY: env run test lint dry-run clean-run

env:
	@XCLUSTERS_VENV=$(CURDIR)/$(VENV) bash scripts/env.sh

run: env  ## run the embedded default workflow and write the HTML report
	$(VENV)/bin/xclusters run --config $(CONFIG) --cores $(CORES)

test: env  ## run the test suite (slow and shared-data tests included)
	$(VENV)/bin/python -m pytest tests

dry-run: env
	$(VENV)/bin/snakemake -n --cores $(CORES) --configfile $(CONFIG)

lint: env
	$(VENV)/bin/snakemake --lint --configfile $(CONFIG)
