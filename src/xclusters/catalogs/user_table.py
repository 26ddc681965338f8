"""A user halo table (ECSV, FITS or CSV) following the documented schema.

Schema: ``workflow/schemas/catalog_table.schema.yaml``.
"""
from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
from astropy.cosmology import FlatLambdaCDM, Planck18
from astropy.table import Table

from .schema import (SCHEMA_FILE, CatalogError, check_columns, convert_units,
                     r500c_kpc_from_m500c)

__all__ = ["read_user_table", "table_format"]

log = logging.getLogger("xclusters.catalogs")

_FORMATS = {".ecsv": "ascii.ecsv", ".csv": "ascii.csv", ".fits": "fits", ".fit": "fits",
            ".fits.gz": "fits"}


def table_format(path: Path) -> str:
    """astropy format name from the file suffix; raise naming the allowed suffixes."""
    name = path.name.lower()
    for suffix, fmt in sorted(_FORMATS.items(), key=lambda kv: -len(kv[0])):
        if name.endswith(suffix):
            return fmt
    raise CatalogError(f"{path}: unknown table format; use one of "
                       f"{', '.join(sorted(_FORMATS))} (see {SCHEMA_FILE})")


def read_user_table(path: str | Path) -> dict:
    """Read a user table, check columns and units, compute missing R500c.

    Parameters
    ----------
    path : str or Path
        ECSV, FITS or CSV file.

    Returns
    -------
    dict
        ``columns`` in the units of :data:`xclusters.catalogs.schema.COLUMNS`, ``meta``,
        ``origin``.
    """
    path = Path(path)
    if not path.is_file():
        raise CatalogError(f"catalog.path = {path}: file not found; set catalog.path to an "
                           f"ECSV/FITS/CSV table following {SCHEMA_FILE}")
    fmt = table_format(path)
    try:
        raw = Table.read(path, format=fmt)
    except Exception as exc:  # astropy raises many types for malformed files
        raise CatalogError(f"{path}: cannot be read as {fmt}: {exc}. Check that the file is "
                           f"complete (not truncated) and a valid {fmt} table following "
                           f"{SCHEMA_FILE}") from exc
    origin = str(path)
    check_columns(raw, origin)
    ids = raw["halo_id"]
    if ids.dtype.kind not in "iu":
        raise CatalogError(f"{origin}: column 'halo_id' has type {ids.dtype}; it must hold "
                           f"integers (see {SCHEMA_FILE})")
    t = convert_units(raw, origin)
    cols = {c: np.asarray(t[c]) for c in t.colnames
            if c in ("halo_id", "m500c", "r500c", "redshift", "ra", "dec", "x_c", "y_c", "z_c")}
    meta = {k: v for k, v in raw.meta.items() if isinstance(v, (str, int, float, bool))}
    if "H0" in raw.meta and "Om0" in raw.meta:
        cosmo = FlatLambdaCDM(H0=float(raw.meta["H0"]), Om0=float(raw.meta["Om0"]))
        cname = f"FlatLambdaCDM(H0={cosmo.H0.value:g},Om0={cosmo.Om0:g}) from table meta"
    else:
        cosmo = Planck18
        cname = "Planck18"
    src = f"table:{path.name}"
    if "r500c" not in cols:
        m = np.where(cols["m500c"] > 0, cols["m500c"], np.nan)  # bad rows are judged later
        cols["r500c"] = r500c_kpc_from_m500c(m, np.clip(cols["redshift"], 0, None), cosmo)
        src += f"; r500c from {cname}"
        log.info("%s: computed r500c from m500c and redshift with %s", origin, cname)
    cols["source"] = np.full(len(t), src)
    meta.update({"catalog": "table", "catalog_path": str(path), "cosmology": cname,
                 "cosmology_H0": float(cosmo.H0.value), "cosmology_Om0": float(cosmo.Om0)})
    return {"columns": cols, "meta": meta, "origin": origin}
