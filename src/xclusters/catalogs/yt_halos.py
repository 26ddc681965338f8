"""A simulation halo catalogue loaded with yt (ytHaloCatalog, Gadget FoF/Subfind, OWLS Subfind,
Rockstar, ...).

yt exposes halos as a particle type (``halos``, ``Group``, ``FOF``, ...) with
``particle_position_{x,y,z}`` and mass fields. M500c is taken from the first field found in
:data:`M500C_FIELDS` (case-insensitive), or from ``catalog.mass_field`` when given; R500c from
:data:`R500C_FIELDS` when present, else from M500c and z with the catalogue's cosmology.
"""
from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
from astropy.cosmology import FlatLambdaCDM

from .schema import CatalogError, r500c_kpc_from_m500c

__all__ = ["read_yt_halo_catalog", "M500C_FIELDS", "R500C_FIELDS"]

log = logging.getLogger("xclusters.catalogs")

#: field names holding M500c in yt's halo-catalogue frontends (gadget_fof, owls_subfind,
#: yt halo catalogues written with an ``m500c`` field)
M500C_FIELDS = ("Group_M_Crit500", "Halo_M_Crit500", "m500c", "M500c", "m500", "M500")
R500C_FIELDS = ("Group_R_Crit500", "Halo_R_Crit500", "r500c", "R500c", "r500", "R500")
_ID_FIELDS = ("particle_identifier", "ID", "id", "halo_id")


def _find(fields: list[tuple[str, str]], names: tuple[str, ...]) -> tuple[str, str] | None:
    lower = {fname.lower(): (ptype, fname) for ptype, fname in fields}
    for name in names:
        if name.lower() in lower:
            return lower[name.lower()]
    return None


def read_yt_halo_catalog(path: str | Path, mass_field: str | None = None) -> dict:
    """Read a yt-loadable halo catalogue into standard columns.

    Parameters
    ----------
    path : str or Path
        Halo catalogue file that ``yt.load`` recognises.
    mass_field : str, optional
        Name of the M500c field when it is not one of :data:`M500C_FIELDS`.

    Returns
    -------
    dict
        ``columns`` (halo_id, m500c [Msun], r500c [kpc physical], redshift, x_c, y_c, z_c
        [comoving kpc/h], source), ``meta`` (incl. the box edges), ``origin``.
    """
    import yt

    path = Path(path)
    if not path.exists():
        raise CatalogError(f"catalog.path = {path}: halo catalogue not found; set catalog.path "
                           "to a file yt.load can read")
    try:
        ds = yt.load(str(path))
    except Exception as exc:
        raise CatalogError(f"{path}: yt cannot load this halo catalogue ({exc}); give a "
                           "ytHaloCatalog, Gadget FoF/Subfind or Rockstar file") from exc
    fields = list(ds.field_list) + list(ds.derived_field_list)
    if mass_field is not None:
        mfield = _find(fields, (mass_field,))
        if mfield is None:
            raise CatalogError(f"{path}: catalog.mass_field {mass_field!r} not among the "
                               f"fields {sorted({f for _, f in ds.field_list})}")
    else:
        mfield = _find(fields, M500C_FIELDS)
    if mfield is None:
        raise CatalogError(
            f"{path}: no M500c field found (looked for {', '.join(M500C_FIELDS)}; available: "
            f"{', '.join(sorted({f for _, f in ds.field_list}))}). Name the field with "
            "catalog.mass_field or add M500c to the catalogue (virial masses are not M500c).")
    ptype = mfield[0]
    ad = ds.all_data()
    m = ad[mfield].to_value("Msun")
    n = m.size
    pos = [ad[(ptype, f"particle_position_{a}")].to("kpccm/h").d for a in "xyz"]
    idf = _find([f for f in fields if f[0] == ptype], _ID_FIELDS)
    ids = ad[idf].d.astype(np.int64) if idf is not None else np.arange(n, dtype=np.int64)
    z = float(ds.current_redshift)
    h = float(ds.hubble_constant)
    cosmo = FlatLambdaCDM(H0=100.0 * h, Om0=float(ds.omega_matter))
    rfield = _find([f for f in fields if f[0] == ptype], R500C_FIELDS)
    src = f"yt:{path.name}:{mfield[1]}"
    if rfield is not None:
        r500 = ad[rfield].to_value("kpc")  # physical kpc at the catalogue redshift
        src += f"; r500c from {rfield[1]}"
    else:
        r500 = r500c_kpc_from_m500c(m, np.full(n, z), cosmo)
        src += f"; r500c from FlatLambdaCDM(H0={cosmo.H0.value:g},Om0={cosmo.Om0:g})"
    left = ds.domain_left_edge.to("kpccm/h").d
    right = ds.domain_right_edge.to("kpccm/h").d
    log.info("read %d halos from %s (mass field %s)", n, path, mfield)
    return {
        "columns": {"halo_id": ids, "m500c": m, "r500c": r500, "redshift": np.full(n, z),
                    "x_c": pos[0], "y_c": pos[1], "z_c": pos[2], "source": np.full(n, src)},
        "meta": {"catalog": "yt", "catalog_path": str(path), "cosmology_H0": cosmo.H0.value,
                 "cosmology_Om0": cosmo.Om0, "box_left_kpccm_h": left.tolist(),
                 "box_right_kpccm_h": right.tolist()},
        "origin": str(path),
        "box": (left, right),
    }
