"""Resolution a source needs: nested core grids and cutout sizes from the instruments' images.

A uniform ``grid_cells``^3 grid over ``box_r500c`` R500c has cells of 33-60 kpc at z = 0.05,
while a Chandra 128^2 image pixel (20' / 128 = 9.4") is 9 kpc there: cool cores are blocks.
Photons are placed uniformly inside each cell (``pyxsim.project_photons``, DESIGN.md "More
facts"), so a cell larger than an image pixel shows as a flat block. Resolution is spent only
where the image can see it:

* :func:`finest_pixel_kpc`: the smallest image pixel of the enabled instruments, in physical
  kpc at the cluster's redshift (``sources.reference_cosmology``; pyXSIM's distance may differ
  by a few per cent);
* :func:`core_patches`: nested grids (refinement factor 2 per level, each aligned to its
  parent's cells) covering r < ``sources.core_refinement.radius_r500c`` x R500c, down to the
  first level whose cells are no larger than that pixel (at most ``max_levels``);
* :func:`cutout_side_kpc`: the side of a simulation cutout, ``box_r500c`` x R500c but no more
  than the largest simulated field at the cluster's redshift.
"""
from __future__ import annotations

import logging
import math
from typing import Any, Mapping

import numpy as np

from .profiles import reference_cosmology

__all__ = ["image_pixel_arcsec", "finest_pixel_kpc", "largest_field_kpc", "core_patches",
           "cutout_side_kpc", "kpc_per_arcsec"]

log = logging.getLogger("xclusters.sources")

def _enabled(instruments_cfg: Mapping[str, Any]) -> list[str]:
    """The enabled instruments whose sections are given here, in build order
    (:func:`xclusters.instruments.setup.observed_instruments`: each section read exactly)."""
    from ..instruments.setup import observed_instruments

    return observed_instruments(instruments_cfg)


def image_pixel_arcsec(name: str, instrument_cfg: Mapping[str, Any]) -> float:
    """Image pixel of one instrument, arcsec (``erosita``/``ideal``: ``pixel_arcsec``;
    ``chandra_acisi``: ``field_arcmin`` x 60 / ``image_pixels``, as the images stage bins)."""
    if name == "chandra_acisi":
        return float(instrument_cfg["field_arcmin"]) * 60.0 / float(instrument_cfg["image_pixels"])
    return float(instrument_cfg["pixel_arcsec"])


def kpc_per_arcsec(redshift: float, sources_cfg: Mapping[str, Any]) -> float:
    """Physical kpc per arcsec at ``redshift`` (``sources.reference_cosmology``)."""
    import astropy.units as u

    d_a = reference_cosmology(sources_cfg).angular_diameter_distance(redshift)
    return float((d_a * (1.0 * u.arcsec).to_value(u.rad)).to_value(u.kpc))


def finest_pixel_kpc(instruments_cfg: Mapping[str, Any], redshift: float,
                     sources_cfg: Mapping[str, Any]) -> float:
    """Smallest image pixel of the enabled instruments at ``redshift``, physical kpc."""
    names = _enabled(instruments_cfg)
    if not names:
        raise ValueError("instruments: no enabled instrument to size the source resolution")
    pix = min(image_pixel_arcsec(n, instruments_cfg[n]) for n in names)
    return pix * kpc_per_arcsec(redshift, sources_cfg)


def largest_field_kpc(instruments_cfg: Mapping[str, Any], redshift: float,
                      sources_cfg: Mapping[str, Any]) -> float:
    """Side of the largest simulated field of the enabled instruments at ``redshift``, kpc."""
    from ..instruments import field_side_arcmin

    names = _enabled(instruments_cfg)
    side_arcmin = max(field_side_arcmin(n, instruments_cfg[n]) for n in names)
    return side_arcmin * 60.0 * kpc_per_arcsec(redshift, sources_cfg)


def cutout_side_kpc(r500c_kpc: float, redshift: float, sources_cfg: Mapping[str, Any],
                    instruments_cfg: Mapping[str, Any] | None) -> float:
    """Side of a cubic simulation cutout, physical kpc.

    ``sources.box_r500c`` x R500c, capped at the largest simulated field (gas projected
    outside every field is never observed); without an instruments section, the R500c size.
    """
    side = float(sources_cfg["box_r500c"]) * float(r500c_kpc)
    if instruments_cfg:
        field = largest_field_kpc(instruments_cfg, redshift, sources_cfg)
        if field < side:
            log.info("cutout side %.0f kpc (%.2f R500c) capped at the largest field, %.0f kpc",
                     side, float(sources_cfg["box_r500c"]), field)
            side = field
    return side


def core_patches(n0: int, side_kpc: float, r500c_kpc: float, pixel_kpc: float,
                 sources_cfg: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Nested grids that resolve the core of a ``n0``^3 grid of side ``side_kpc`` (centred on 0).

    Parameters
    ----------
    n0 : int
        Cells per side of the level-0 grid.
    side_kpc : float
        Side of the level-0 grid [kpc]; its cells are ``side_kpc / n0``.
    r500c_kpc : float
        R500c [kpc].
    pixel_kpc : float
        Finest image pixel at the cluster's redshift [kpc] (:func:`finest_pixel_kpc`).
    sources_cfg : SourcesSettings or mapping
        ``core_refinement``: ``radius_r500c`` (config/config.yaml: 0.15, the cool-core region
        paper 004's gradient maps show the mass CNN relies on, issue 17) and ``max_levels``
        (``0`` turns refinement off).

    Returns
    -------
    list of dict
        One per level 1..L: ``level``, ``left_edge_kpc``, ``right_edge_kpc`` (3,),
        ``dimensions`` (3 ints), ``dx_kpc``. Every patch covers the cube of half-side
        ``radius_r500c`` x R500c, snapped outwards to its parent's cells (so each patch nests
        inside the previous one), and L is the first level with ``dx <= pixel_kpc`` (capped at
        ``max_levels``, logged).
    """
    cfg = sources_cfg["core_refinement"]
    max_levels = int(cfg["max_levels"])
    dx0 = side_kpc / n0
    if max_levels <= 0 or dx0 <= pixel_kpc:
        return []
    need = math.ceil(math.log2(dx0 / pixel_kpc) - 1e-9)
    if need > max_levels:
        log.warning("core cells %.1f kpc after %d levels are coarser than the %.1f kpc image "
                    "pixel; raise sources.core_refinement.max_levels to %d to resolve it",
                    dx0 / 2**max_levels, max_levels, pixel_kpc, need)
    half = 0.5 * side_kpc
    radius = min(float(cfg["radius_r500c"]) * r500c_kpc, half)
    out = []
    for level in range(1, min(need, max_levels) + 1):
        dxp = dx0 / 2 ** (level - 1)  # parent cells: snap the patch edges to them
        lo = math.floor((half - radius) / dxp + 1e-9)
        hi = math.ceil((half + radius) / dxp - 1e-9)
        lo, hi = max(lo, 0), min(hi, int(round(side_kpc / dxp)))
        dims = [2 * (hi - lo)] * 3
        out.append({"level": level, "left_edge_kpc": np.full(3, -half + lo * dxp),
                    "right_edge_kpc": np.full(3, -half + hi * dxp), "dimensions": dims,
                    "dx_kpc": dxp / 2.0})
    return out
