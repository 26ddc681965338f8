"""Tabulated published instrument figures shipped with the package (``xclusters/data/*.ecsv``).

Each table carries its citation in the ECSV metadata (``description``, ``citation``). The
built-in responses and backgrounds of :mod:`xclusters.instruments.responses` and
:mod:`xclusters.instruments.backgrounds` are generated from these tables at run time.
"""
from __future__ import annotations

import hashlib
from importlib import resources

from astropy.table import QTable

__all__ = ["TABLES", "load_table", "table_digest"]

#: Logical name -> file in ``xclusters/data``.
TABLES = {
    "erosita_area": "erosita_tm0_onaxis_area.ecsv",
    "erosita_fwhm": "erosita_energy_resolution.ecsv",
    "chandra_area": "chandra_acisi_cy22_area.ecsv",
    "chandra_fwhm": "chandra_acisi_energy_resolution.ecsv",
    "chandra_particle": "chandra_acisi_particle_background.ecsv",
    "foreground": "galactic_foreground.ecsv",
}


def _path(name: str):
    if name not in TABLES:
        raise KeyError(f"unknown instrument table {name!r}; known: {sorted(TABLES)}")
    return resources.files("xclusters") / "data" / TABLES[name]


def load_table(name: str) -> QTable:
    """Read one tabulated figure (columns carry astropy units; citation in ``meta``)."""
    with resources.as_file(_path(name)) as p:
        return QTable.read(p, format="ascii.ecsv")


def table_digest(*names: str) -> str:
    """First 10 hex digits of the SHA-256 of the named tables (names generated files uniquely)."""
    h = hashlib.sha256()
    for name in names:
        h.update(_path(name).read_bytes())
    return h.hexdigest()[:10]
