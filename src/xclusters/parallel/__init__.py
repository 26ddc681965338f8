"""Parallel per-cluster execution: Dask clients, mapping with retries/failures, shards.

Snakemake owns the coarse graph; inside one ``build_shard`` job, :func:`run_shard` maps the
per-cluster function over the shard's clusters on the client of :func:`make_client`.
"""
from .client import client_session, local_worker_layout, make_client, make_cluster
from .cost import expected_cost, submission_order
from .errors import ClusterFailure, StageError, stage_context
from .mapping import Failure, map_clusters
from .shards import (default_expected_outputs, enabled_instruments, image_paths,
                     manifest_path_for, read_manifest, row_to_dict, run_shard, split_shards,
                     timing_summary)

__all__ = [
    "make_client", "make_cluster", "client_session", "local_worker_layout",
    "map_clusters", "Failure", "StageError", "ClusterFailure", "stage_context",
    "split_shards", "run_shard", "read_manifest", "manifest_path_for",
    "default_expected_outputs", "enabled_instruments", "image_paths", "row_to_dict",
    "expected_cost", "submission_order", "timing_summary",
]
