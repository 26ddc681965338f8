"""Dispatch ``catalog.source`` to a reader and apply the common checks."""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Mapping

import numpy as np
from astropy.table import Table

from ..settings import CatalogSettings
from .schema import CatalogError, check_columns, clean_rows, finalize_table

__all__ = ["load_catalog", "snapshot_box"]

log = logging.getLogger("xclusters.catalogs")


def snapshot_box(snapshot: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """Left and right edges (comoving kpc/h) of a yt-loadable snapshot's domain."""
    import yt

    snapshot = Path(snapshot)
    if not snapshot.exists():
        raise CatalogError(f"catalog.snapshot = {snapshot}: file not found; set it to the "
                           "simulation snapshot the halo centres refer to, or to null")
    ds = yt.load(str(snapshot))
    return (ds.domain_left_edge.to("kpccm/h").d, ds.domain_right_edge.to("kpccm/h").d)


def load_catalog(catalog_cfg: CatalogSettings | Mapping[str, Any]) -> Table:
    """Load the halo catalogue named by the ``catalog:`` config block.

    Parameters
    ----------
    catalog_cfg : CatalogSettings or mapping
        :class:`xclusters.settings.CatalogSettings` (or a validated config / its ``catalog``
        section): ``source`` (``soxs_lightcone`` | ``table`` | ``yt``), ``path``,
        ``snapshot``, ``on_bad_row`` (``drop`` | ``error``), ``mass_field`` (``yt``).

    Returns
    -------
    astropy.table.Table
        Columns ``halo_id``, ``m500c`` [Msun], ``r500c`` [kpc, physical], ``redshift``,
        ``ra``, ``dec`` [deg], ``x_c``, ``y_c``, ``z_c`` [comoving kpc/h; NaN for a light
        cone], ``source``; bad rows dropped (logged) or reported as a :class:`CatalogError`.
    """
    settings = CatalogSettings.from_config(catalog_cfg)
    kind, on_bad = settings.source, settings.on_bad_row
    path, snapshot = settings.path, settings.snapshot
    if kind == "soxs_lightcone":
        from .soxs_lightcone import read_soxs_lightcone

        res = read_soxs_lightcone(path)
    elif kind == "table":
        if not path:
            raise CatalogError("catalog.source = table needs catalog.path (an ECSV/FITS/CSV "
                               "file, see workflow/schemas/catalog_table.schema.yaml)")
        from .user_table import read_user_table

        res = read_user_table(path)
    elif kind == "yt":
        if not path:
            raise CatalogError("catalog.source = yt needs catalog.path (a halo catalogue yt "
                               "can load)")
        from .yt_halos import read_yt_halo_catalog

        res = read_yt_halo_catalog(path, settings.mass_field)
    else:
        raise CatalogError(f"catalog.source = {kind!r}; use soxs_lightcone, table or yt")
    box = None
    if snapshot:
        box = snapshot_box(snapshot)
        cols = res["columns"]
        missing = [c for c in ("x_c", "y_c", "z_c") if c not in cols]
        if missing:
            check_columns(Table({k: [] for k in cols}), res["origin"],
                          required=("halo_id", "m500c", "redshift", "x_c", "y_c", "z_c"))
    elif "box" in res:
        box = res["box"]
    table = finalize_table(res["columns"], res["meta"])
    table = clean_rows(table, res["origin"], on_bad, box_kpc=box)
    log.info("catalogue %s: %d halos, log10 M500c %.2f..%.2f, z %.3f..%.3f", res["origin"],
             len(table), np.log10(table["m500c"].min()), np.log10(table["m500c"].max()),
             table["redshift"].min(), table["redshift"].max())
    return table
