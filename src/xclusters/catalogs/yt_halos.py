"""A simulation halo catalogue loaded with yt (ytHaloCatalog, Gadget FoF/Subfind, OWLS Subfind,
Rockstar, ...).

yt exposes halos as a particle type (``halos``, ``Group``, ``FOF``, ...) with
``particle_position_{x,y,z}`` and mass fields. M500c is taken from the first field found in
:data:`M500C_FIELDS` (case-insensitive), or from ``catalog.mass_field`` when given; R500c from
:data:`R500C_FIELDS` when present (converted from comoving code units to physical kpc at the
catalogue redshift), else from M500c and z with the catalogue's cosmology.

Frontend notes (yt 4.x):

* **Gadget FoF/Subfind** (``fof_subhalo_tab_NNN.0.hdf5``, Arepo / IllustrisTNG layout): yt's
  ``gadget_fof`` frontend ignores the code units stored in the file and assumes cMpc/h and
  1e10 Msun/h. Arepo, IllustrisTNG and Gadget-4 runs usually use ckpc/h, so the reader looks for
  ``UnitLength_in_cm``, ``UnitMass_in_g`` and ``UnitVelocity_in_cm_per_s`` in the ``Header``,
  ``Parameters`` and ``Units`` groups (as yt's Arepo snapshot frontend does) and hands them to
  ``yt.load(unit_base=...)``; without them yt's assumption stands and a warning says so. The
  ``Group`` (FoF halo) particle type carries ``Group_M_Crit500`` / ``Group_R_Crit500``; halo ids
  are the group numbers. Gadget-4's native names (``Nsubhalos_ThisFile``) are not read by yt 4.
* **Rockstar** (``halos_N.0.bin``): there is no field called M500c. With Rockstar's default
  ``MASS_DEFINITION2..5 = 200b, 200c, 500c, 2500c`` the alternate masses ``alt_m1..alt_m4``
  hold M200b, M200c, M500c, M2500c; the binary header does not record the definitions, so the
  field must be named explicitly (``catalog.mass_field: alt_m3``).
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
#: yt's particle unions: never the halo type itself when a raw type holds the field
_UNION_TYPES = ("all", "nbody")
#: Gadget/Arepo code-unit attributes and the HDF5 groups they may sit in (yt's Arepo frontend,
#: ``yt/frontends/arepo/data_structures.py``, ``_get_uvals``)
_GADGET_UNIT_ATTRS = ("UnitLength_in_cm", "UnitMass_in_g", "UnitVelocity_in_cm_per_s")
_GADGET_UNIT_GROUPS = ("Header", "Parameters", "Units")
#: Rockstar's alternate-mass fields and their default meaning (MASS_DEFINITION2..5)
_ROCKSTAR_ALT_MASSES = {"alt_m1": "M200b", "alt_m2": "M200c", "alt_m3": "M500c",
                        "alt_m4": "M2500c"}


def _find(fields: list[tuple[str, str]], names: tuple[str, ...]) -> tuple[str, str] | None:
    """First field whose name matches one of ``names`` (case-insensitive, in ``names`` order).

    Raw particle types win over yt's unions (``all``, ``nbody``); among raw types the first in
    ``fields`` wins.
    """
    lower: dict[str, tuple[str, str]] = {}
    for ptype, fname in fields:
        key = fname.lower()
        if key not in lower or (lower[key][0] in _UNION_TYPES and ptype not in _UNION_TYPES):
            lower[key] = (ptype, fname)
    for name in names:
        if name.lower() in lower:
            return lower[name.lower()]
    return None


def _gadget_fof_unit_base(path: Path) -> dict[str, float] | None:
    """Code units stored in a Gadget/Arepo group catalogue, or None when the file has none."""
    import h5py

    found: dict[str, float] = {}
    with h5py.File(path, "r") as f:
        for attr in _GADGET_UNIT_ATTRS:
            for grp in _GADGET_UNIT_GROUPS:
                if grp in f and attr in f[grp].attrs:
                    found[attr] = float(np.ravel(f[grp].attrs[attr])[0])
                    break
    return found or None


def _load(path: Path):
    """``yt.load`` the catalogue; Gadget FoF/Subfind files with the code units of the file."""
    import yt

    ds = yt.load(str(path))
    if type(ds).__name__ != "GadgetFOFDataset":
        ds.index  # yt reads the halo files only when the index is built
        return ds, None
    unit_base = _gadget_fof_unit_base(path)
    if unit_base is None:
        log.warning("%s: no %s in the %s groups; yt assumes comoving Mpc/h lengths and "
                    "1e10 Msun/h masses (if the run used kpc/h, positions and radii are off by "
                    "1000)", path, "/".join(_GADGET_UNIT_ATTRS), "/".join(_GADGET_UNIT_GROUPS))
        ds.index
        return ds, "yt default cMpc/h, 1e10 Msun/h"
    ds = yt.load(str(path), unit_base=dict(unit_base))
    ds.index
    note = "code units from the file (" + ", ".join(
        f"{k} = {v:.6g}" for k, v in unit_base.items()) + "; comoving, little-h)"
    log.info("%s: %s", path, note)
    return ds, note


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
    path = Path(path)
    if not path.exists():
        raise CatalogError(f"catalog.path = {path}: halo catalogue not found; set catalog.path "
                           "to a file yt.load can read")
    try:
        ds, unit_note = _load(path)
    except Exception as exc:
        hint = ""
        if "Nsubgroups" in str(exc):
            hint = (" yt's gadget_fof frontend needs the Arepo/IllustrisTNG header names "
                    "(Nsubgroups_ThisFile, Nsubgroups_Total); Gadget-4 writes Nsubhalos_*.")
        raise CatalogError(f"{path}: yt cannot load this halo catalogue ({exc!r}); give a "
                           "ytHaloCatalog, Gadget FoF/Subfind or Rockstar file." + hint) from exc
    fields = list(ds.field_list) + list(ds.derived_field_list)
    if mass_field is not None:
        mfield = _find(fields, (mass_field,))
        if mfield is None:
            raise CatalogError(f"{path}: catalog.mass_field {mass_field!r} not among the "
                               f"fields {sorted({f for _, f in ds.field_list})}")
    else:
        mfield = _find(fields, M500C_FIELDS)
    if mfield is None:
        hint = ""
        if any(f in _ROCKSTAR_ALT_MASSES for _, f in ds.field_list):
            hint = (" Rockstar stores spherical-overdensity masses in alt_m1..alt_m4 (by "
                    "default " + ", ".join(f"{k} = {v}" for k, v in _ROCKSTAR_ALT_MASSES.items())
                    + "; check MASS_DEFINITION2..5 of the run), e.g. catalog.mass_field: alt_m3.")
        raise CatalogError(
            f"{path}: no M500c field found (looked for {', '.join(M500C_FIELDS)}; available: "
            f"{', '.join(sorted({f for _, f in ds.field_list}))}). Name the field with "
            "catalog.mass_field or add M500c to the catalogue (virial masses are not M500c)."
            + hint)
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
        # halo finders store comoving radii (Group_R_Crit500: ckpc/h); yt's "kpc" is physical
        # at ds.current_redshift, so this is R500c [physical kpc]
        r500 = ad[rfield].to_value("kpc")
        src += f"; r500c from {rfield[1]}"
    else:
        r500 = r500c_kpc_from_m500c(m, np.full(n, z), cosmo)
        src += f"; r500c from FlatLambdaCDM(H0={cosmo.H0.value:g},Om0={cosmo.Om0:g})"
    left = ds.domain_left_edge.to("kpccm/h").d
    right = ds.domain_right_edge.to("kpccm/h").d
    if unit_note is not None:
        src += f"; {unit_note}"
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
