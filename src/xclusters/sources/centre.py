"""Halo centres of simulation cutouts: a shrinking sphere on the total matter.

A catalogue centre can be approximate (a user table, a friends-of-friends centre of mass, a
centre rounded to a few kpc), and "centre = densest gas" is wrong on real data (a real Gadget-2
zoom snapshot's densest gas is a cold clump far from the cluster, DESIGN.md "More facts").
:func:`shrinking_sphere_centre` follows Power et al. 2003 (MNRAS 338, 14, sec. 2.2.2): start
from the catalogue centre with a sphere of radius ``start_radius``, move to the centre of mass
of all particles (every particle type: dark matter, gas, stars) inside, shrink the radius by
2.5 % and repeat until fewer than max(1000, 0.5 % of the first sphere's) particles remain.
"""
from __future__ import annotations

import logging

import numpy as np

__all__ = ["shrinking_sphere_centre", "catalogue_length_unit", "SHRINK_FACTOR",
           "MIN_PARTICLES", "MIN_FRACTION"]

log = logging.getLogger("xclusters.sources")

#: radius factor per iteration (Power et al. 2003, sec. 2.2.2: "reduced by 2.5 per cent")
SHRINK_FACTOR = 0.975
#: stop when fewer particles than this remain (Power et al. 2003: 1000 particles)
MIN_PARTICLES = 1000
#: ... or fewer than this fraction of the initial sphere's particles (Power et al.: 0.5 %)
MIN_FRACTION = 0.005


def catalogue_length_unit(ds) -> str:
    """Unit of catalogue centres for ``ds``: comoving kpc/h, or kpc for a dataset without
    comoving units (a non-cosmological snapshot, where the two coincide up to h)."""
    try:
        ds.quan(1.0, "kpccm/h")
    except Exception:  # noqa: BLE001 - unyt raises UnitParseError for unknown symbols
        return "kpc"
    return "kpccm/h"


def shrinking_sphere_centre(pos: np.ndarray, mass: np.ndarray, centre: np.ndarray,
                            start_radius: float, *, box: float | None = None,
                            min_particles: int = MIN_PARTICLES) -> tuple[np.ndarray, int]:
    """Iterated centre of mass in a shrinking sphere.

    Parameters
    ----------
    pos : array (N, 3)
        Positions of all matter particles near the halo (any length unit).
    mass : array (N,)
        Their masses (any unit).
    centre : array (3,)
        Starting (catalogue) centre, same unit as ``pos``.
    start_radius : float
        Radius of the first sphere, same unit.
    box : float, optional
        Periodic box side (same unit); positions are wrapped around the current centre.
    min_particles : int
        Stop below this many particles (or :data:`MIN_FRACTION` of the first sphere's).

    Returns
    -------
    centre : array (3,)
        The refined centre.
    n_iter : int
        Iterations done (0: too few particles in the first sphere; the input is returned).
    """
    c = np.asarray(centre, dtype=float).copy()
    pos = np.asarray(pos, dtype=float)
    mass = np.asarray(mass, dtype=float)
    r = float(start_radius)

    def offsets(c):
        d = pos - c
        if box:
            d -= box * np.round(d / box)
        return d

    d = offsets(c)
    inside = np.einsum("ij,ij->i", d, d) < r * r
    n0 = int(inside.sum())
    stop = max(int(min_particles), int(MIN_FRACTION * n0))
    n_iter = 0
    while True:
        d = offsets(c)
        r2 = np.einsum("ij,ij->i", d, d)
        inside = r2 < r * r
        if int(inside.sum()) < stop:
            break
        m = mass[inside]
        shift = (m[:, None] * d[inside]).sum(0) / m.sum()
        c = c + shift
        if box:
            c %= box
        r *= SHRINK_FACTOR
        n_iter += 1
        # the next sphere lies inside ball(old centre, r_new + |shift|): carry only those
        keep = r2 < (r + float(np.linalg.norm(shift))) ** 2
        pos, mass = pos[keep], mass[keep]
    return c, n_iter
