"""Tiny, format-correct halo catalogues for the yt catalogue reader tests.

* :func:`write_gadget_fof` - an Arepo / IllustrisTNG style Subfind group catalogue
  ``fof_subhalo_tab_NNN.0.hdf5`` (the layout yt's ``gadget_fof`` frontend reads: Header with
  ``Ngroups_*``, ``Nsubgroups_*``, ``Nids_*``, ``NumFiles``, cosmology; ``Group``, ``Subhalo``
  and ``IDs`` groups), optionally with the code units in a ``Parameters`` group as Arepo and
  Gadget-4 write them.
* :func:`write_rockstar` - a Rockstar binary halo file ``halos_N.0.bin`` (256-byte header with
  the magic number, halo records of ``yt.frontends.rockstar.definitions.halo_dts[2]``, then the
  member particle ids, as in Rockstar's ``io/io_internal.c``).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np

#: Gadget's default code units (Gadget-2 user guide sec. 6.2; Arepo / Gadget-4 defaults):
#: length 1 kpc/h [cm], mass 1e10 Msun/h [g], velocity 1 km/s [cm/s]
GADGET_UNIT_LENGTH_CM = 3.085678e21
GADGET_UNIT_MASS_G = 1.989e43
GADGET_UNIT_VELOCITY_CM_S = 1e5
#: Rockstar's header magic (ROCKSTAR_MAGIC in io/io_internal.h; yt checks it in _is_valid)
ROCKSTAR_MAGIC = 0xFADEDACEC0C0D0D0
#: bytes of the Rockstar binary header (BINARY_HEADER_SIZE in io/io_internal.h)
ROCKSTAR_HEADER_BYTES = 256


@dataclass
class HaloTruth:
    """What was written, in the file's code units, for the tests to compare against."""

    redshift: float
    hubble: float
    ids: np.ndarray
    pos_code: np.ndarray          # (n, 3)
    m500c_code: np.ndarray
    r500c_code: np.ndarray | None  # comoving, code length (None: not in the file)
    box_code: float


def write_gadget_fof(path: Path, n_groups: int = 5, redshift: float = 0.2,
                     hubble: float = 0.6774, box_ckpc_h: float = 75000.0,
                     with_units: bool = True, seed: int = 4) -> HaloTruth:
    """Write a one-file Subfind catalogue in ckpc/h and 1e10 Msun/h.

    Parameters
    ----------
    path : Path
        Output ``fof_subhalo_tab_NNN.0.hdf5``.
    n_groups : int
        FoF groups; each has one central subhalo, the first two one satellite more.
    redshift, hubble, box_ckpc_h : float
        Catalogue redshift, little h and comoving box side [ckpc/h].
    with_units : bool
        Write ``Parameters/UnitLength_in_cm`` etc. (Arepo, Gadget-4). Without them yt's
        gadget_fof frontend assumes Mpc/h comoving lengths; the positions are then written in
        cMpc/h so that the file is consistent with that assumption.
    seed : int
        Random seed of the halo properties.
    """
    rng = np.random.default_rng(seed)
    scale = 1.0 if with_units else 1e-3  # ckpc/h -> cMpc/h when yt must assume Mpc/h
    n_sub = n_groups + 2
    m500 = 10 ** rng.uniform(3.5, 5.0, n_groups)          # 1e10 Msun/h: 3e13..1e15 Msun/h
    m200 = 1.4 * m500
    # Group_R_Crit500 is comoving: R500c [ckpc/h] for a plausible physical R500c
    r500_phys_kpc = 600.0 * (m500 / 1e4) ** (1 / 3)
    r500 = r500_phys_kpc * (1 + redshift) * hubble * scale
    pos = rng.uniform(0.05, 0.95, (n_groups, 3)) * box_ckpc_h * scale
    glen = rng.integers(50, 200, n_groups).astype(np.int32)
    nsubs = np.ones(n_groups, np.int32)
    nsubs[:2] = 2
    first = np.concatenate([[0], np.cumsum(nsubs)[:-1]]).astype(np.int32)
    grnr = np.repeat(np.arange(n_groups), nsubs).astype(np.int32)
    sublen = np.empty(n_sub, np.int32)
    for g in range(n_groups):
        s = slice(first[g], first[g] + nsubs[g])
        sublen[s] = glen[g] // nsubs[g]
    nids = int(sublen.sum())
    with h5py.File(path, "w") as f:
        h = f.create_group("Header")
        h.attrs.update({
            "BoxSize": box_ckpc_h * scale, "HubbleParam": hubble, "Omega0": 0.3089,
            "OmegaLambda": 0.6911, "Redshift": redshift, "Time": 1.0 / (1.0 + redshift),
            "NumFiles": np.int32(1), "FlagDoubleprecision": np.int32(0),
            "Ngroups_ThisFile": np.int32(n_groups), "Ngroups_Total": np.int32(n_groups),
            "Nsubgroups_ThisFile": np.int32(n_sub), "Nsubgroups_Total": np.int32(n_sub),
            "Nids_ThisFile": np.int32(nids), "Nids_Total": np.int32(nids)})
        if with_units:
            p = f.create_group("Parameters")
            p.attrs.update({"UnitLength_in_cm": GADGET_UNIT_LENGTH_CM,
                            "UnitMass_in_g": GADGET_UNIT_MASS_G,
                            "UnitVelocity_in_cm_per_s": GADGET_UNIT_VELOCITY_CM_S,
                            "ComovingIntegrationOn": np.int32(1)})
        g = f.create_group("Group")
        g["GroupPos"] = pos.astype(np.float32)
        g["GroupVel"] = rng.normal(0, 300, (n_groups, 3)).astype(np.float32)
        g["GroupMass"] = (1.6 * m500).astype(np.float32)
        g["GroupLen"] = glen
        g["GroupLenType"] = np.stack([glen] + [np.zeros_like(glen)] * 5, axis=1)
        g["GroupMassType"] = np.stack([1.6 * m500] + [np.zeros(n_groups)] * 5,
                                      axis=1).astype(np.float32)
        g["GroupNsubs"] = nsubs
        g["GroupFirstSub"] = first
        g["Group_M_Crit200"] = m200.astype(np.float32)
        g["Group_M_Crit500"] = m500.astype(np.float32)
        g["Group_M_Mean200"] = (1.8 * m500).astype(np.float32)
        g["Group_R_Crit200"] = (1.5 * r500).astype(np.float32)
        g["Group_R_Crit500"] = r500.astype(np.float32)
        g["Group_R_Mean200"] = (2.0 * r500).astype(np.float32)
        s = f.create_group("Subhalo")
        spos = pos[grnr] + rng.normal(0, 20 * scale, (n_sub, 3)) * (sublen[:, None] < 60)
        s["SubhaloPos"] = spos.astype(np.float32)
        s["SubhaloVel"] = rng.normal(0, 300, (n_sub, 3)).astype(np.float32)
        s["SubhaloMass"] = (1.6 * m500[grnr] / nsubs[grnr]).astype(np.float32)
        s["SubhaloLen"] = sublen
        s["SubhaloGrNr"] = grnr
        s["SubhaloHalfmassRad"] = (0.3 * r500[grnr]).astype(np.float32)
        s["SubhaloIDMostbound"] = np.arange(n_sub, dtype=np.uint64)
        ids = f.create_group("IDs")
        ids["ID"] = np.arange(nids, dtype=np.uint64)
    return HaloTruth(redshift, hubble, np.arange(n_groups), pos.astype(np.float32)
                     .astype(float), m500.astype(np.float32).astype(float),
                     r500.astype(np.float32).astype(float), box_ckpc_h * scale)


def write_rockstar(path: Path, n_halos: int = 6, redshift: float = 0.1, hubble: float = 0.7,
                   box_cmpc_h: float = 100.0, seed: int = 5) -> HaloTruth:
    """Write a Rockstar binary halo file (format revision 2) with ``n_halos`` halos.

    Rockstar's units: positions cMpc/h, masses Msun/h, radii ckpc/h. With the default
    ``MASS_DEFINITION = vir`` the alternate masses ``alt_m1..alt_m4`` are M200b, M200c, M500c
    and M2500c (Rockstar README, "Mass definitions"); ``alt_m3`` is therefore M500c.

    Parameters
    ----------
    path : Path
        Output file; yt needs the ``<prefix>.<chunk>.bin`` name (e.g. ``halos_0.0.bin``).
    n_halos : int
        Number of halos.
    redshift, hubble, box_cmpc_h : float
        Scale factor 1/(1+z), little h, comoving box side [cMpc/h].
    seed : int
        Random seed of the halo properties.
    """
    from yt.frontends.rockstar.definitions import halo_dts

    rng = np.random.default_rng(seed)
    dt = halo_dts[2]
    halos = np.zeros(n_halos, dtype=dt)
    ids = np.arange(n_halos, dtype=np.int64) + 100
    pos = rng.uniform(0.05, 0.95, (n_halos, 3)) * box_cmpc_h
    mvir = 10 ** rng.uniform(13.5, 15.0, n_halos)
    m500 = mvir / 1.9
    nump = rng.integers(20, 60, n_halos).astype(np.int64)
    halos["particle_identifier"] = ids
    for i, ax in enumerate("xyz"):
        halos[f"particle_position_{ax}"] = pos[:, i]
        halos[f"particle_velocity_{ax}"] = rng.normal(0, 300, n_halos)
    halos["particle_mass"] = mvir
    halos["virial_radius"] = 1000.0 * (mvir / 1e14) ** (1 / 3)
    halos["alt_m1"] = 1.2 * mvir
    halos["alt_m2"] = 0.8 * mvir
    halos["alt_m3"] = m500
    halos["alt_m4"] = 0.25 * mvir
    halos["num_p"] = nump
    halos["p_start"] = np.concatenate([[0], np.cumsum(nump)[:-1]])
    halos["desc"] = -1
    # header: magic, snap, chunk, scale, Om, Ol, h0, bounds[6], num_halos, num_particles,
    # box_size, particle_mass, particle_type, format_revision, rockstar_version[12], unused
    head = bytearray(ROCKSTAR_HEADER_BYTES)
    off = 0
    for fmt, val in (("<Q", ROCKSTAR_MAGIC), ("<q", 0), ("<q", 0),
                     ("<f", 1.0 / (1.0 + redshift)), ("<f", 0.3), ("<f", 0.7), ("<f", hubble)):
        b = np.array(val, dtype=np.dtype(fmt)).tobytes()
        head[off:off + len(b)] = b
        off += len(b)
    for b in (np.array([0, 0, 0] + [box_cmpc_h] * 3, "<f4").tobytes(),
              np.array([n_halos, nump.sum()], "<i8").tobytes(),
              np.array([box_cmpc_h, 1e9], "<f4").tobytes(),
              np.array([0], "<i8").tobytes(), np.array([2], "<i4").tobytes(),
              b"0.99.9-RC3\0\0"):
        head[off:off + len(b)] = b
        off += len(b)
    with open(path, "wb") as f:
        f.write(bytes(head))
        f.write(halos.tobytes())
        f.write(np.arange(nump.sum(), dtype=np.int64).tobytes())
    return HaloTruth(redshift, hubble, ids, pos.astype(np.float32).astype(float),
                     m500.astype(np.float32).astype(float), None, box_cmpc_h)
