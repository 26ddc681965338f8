"""Glue between stages: what one Snakemake rule (one CLI command) does.

``cluster``: one cluster from sample row to band images; ``shard``: a shard of clusters on
Dask; ``training`` and ``predictions``: dataset-level model runs.
"""
