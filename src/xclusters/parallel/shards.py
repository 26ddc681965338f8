"""Shards of the sample: the unit of one Snakemake ``build_shard`` job.

``split_shards`` cuts ``sample.ecsv`` into ``shard_NNN.ecsv`` files of ``parallel.shard_size``
rows (in sample order, so the same sample and size always give the same shards).
``run_shard`` builds every cluster of a shard with :func:`map_clusters`, skipping clusters
whose final outputs already exist (resume after a killed job), and writes the shard manifest
``shard_NNN.manifest.ecsv`` atomically, last: its existence means the shard is done.

Manifest columns: ``cluster_id``, ``status`` (``ok`` | ``failed`` | ``skipped-existing``),
``stage`` (failed stage, else empty), ``error`` (one line, else empty), ``outputs``
(``;``-separated paths relative to the clusters directory).
"""
from __future__ import annotations

import logging
import math
import os
import socket
import time
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import numpy as np
from astropy.table import Table

from ..io import atomic_path, remove_stale_temporaries
from ..settings import ParallelSettings
from ..stages import enabled_instruments
from .cost import costs_for, expected_cost
from .errors import StageError, disk_full_from, probe_disk_full
from .mapping import map_clusters

__all__ = ["split_shards", "run_shard", "read_manifest", "manifest_path_for", "enabled_instruments",
           "default_expected_outputs", "image_paths", "row_to_dict", "MANIFEST_STATUSES",
           "timing_summary"]

log = logging.getLogger("xclusters.parallel")

MANIFEST_STATUSES = ("ok", "failed", "skipped-existing")
_MANIFEST_COLUMNS = ("cluster_id", "status", "stage", "error", "outputs")


def _write_ecsv(table: Table, path: Path) -> Path:
    with atomic_path(path) as tmp:
        table.write(tmp, format="ascii.ecsv")
    return path


def split_shards(sample_table: Table | str | Path, shard_size: int,
                 out_dir: str | Path) -> list[Path]:
    """Write ``out_dir/shard_000.ecsv``, ``shard_001.ecsv``, ... of ``shard_size`` rows each.

    Rows keep the sample order, so the split is deterministic. Shard files of an earlier split
    with more shards are removed. Each file is written atomically.

    Parameters
    ----------
    sample_table : astropy.table.Table or path
        The sample (``sample.ecsv``); must have a unique ``cluster_id`` column.
    shard_size : int
        Clusters per shard (``parallel.shard_size``), >= 1.
    out_dir : path
        Directory for the shard files (created).

    Returns
    -------
    list of Path
    """
    table = sample_table if isinstance(sample_table, Table) else Table.read(
        sample_table, format="ascii.ecsv")
    shard_size = int(shard_size)
    if shard_size < 1:
        raise ValueError(f"parallel.shard_size={shard_size} must be >= 1")
    if "cluster_id" not in table.colnames:
        raise ValueError(f"sample table has no 'cluster_id' column (columns: {table.colnames})")
    ids = [str(c) for c in table["cluster_id"]]
    if len(set(ids)) != len(ids):
        dup = sorted({c for c in ids if ids.count(c) > 1})
        raise ValueError(f"sample table has duplicate cluster_id values {dup[:5]}; ids must "
                         "be unique")
    if len(table) == 0:
        raise ValueError("sample table is empty: nothing to shard")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    n = math.ceil(len(table) / shard_size)
    paths = []
    for k in range(n):
        part = table[k * shard_size:(k + 1) * shard_size]
        part.meta = dict(table.meta)
        part.meta["shard"] = k
        part.meta["n_shards"] = n
        paths.append(_write_ecsv(part, out_dir / f"shard_{k:03d}.ecsv"))
    for old in sorted(out_dir.glob("shard_[0-9][0-9][0-9].ecsv")):
        if int(old.stem.split("_")[1]) >= n:
            log.warning("removing shard %s left from an earlier split", old)
            old.unlink()
    log.info("split %d clusters into %d shards of <= %d", len(table), n, shard_size)
    return paths


def manifest_path_for(shard_path: str | Path) -> Path:
    """Default manifest of a shard: ``shard_NNN.ecsv`` -> ``shard_NNN.manifest.ecsv``."""
    shard_path = Path(shard_path)
    return shard_path.with_name(f"{shard_path.stem}.manifest.ecsv")


def _py(value: Any) -> Any:
    if np.ma.is_masked(value):
        return None
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, bytes):
        return value.decode()
    return value


def row_to_dict(row) -> dict[str, Any]:
    """A table row as a dict of plain Python scalars (what workers receive)."""
    return {name: _py(row[name]) for name in row.colnames}


def image_paths(cluster_id: str, clusters_dir: str | Path, instruments: Sequence[str],
                projections: Sequence[str]) -> list[Path]:
    """``clusters_dir/<cid>/image_<inst>_<axis>.fits`` for every instrument and axis."""
    base = Path(clusters_dir) / str(cluster_id)
    return [base / f"image_{inst}_{axis}.fits" for inst in instruments for axis in projections]


def default_expected_outputs(config: Mapping[str, Any]) -> Callable[[dict, Path], list[Path]]:
    """The final outputs of a cluster under ``config``: its band images (DESIGN.md)."""
    insts = enabled_instruments(config)
    projections = list(config["projections"])

    def expected(row: dict, clusters_dir: Path) -> list[Path]:
        return image_paths(row["cluster_id"], clusters_dir, insts, projections)

    return expected


class _ShardTask:
    """Picklable per-cluster task: clean stale temporaries, build, check outputs."""

    def __init__(self, cluster_func, config, clusters_dir, expected_outputs):
        self.cluster_func = cluster_func
        self.config = config
        self.clusters_dir = str(clusters_dir)
        self.expected_outputs = expected_outputs

    def __call__(self, row: dict) -> dict:
        start, cpu0 = time.time(), _process_cpu()
        cid = str(row["cluster_id"])
        cdir = Path(self.clusters_dir) / cid
        remove_stale_temporaries(cdir)
        try:
            result = self.cluster_func(row, self.config, self.clusters_dir) or {}
        except Exception as exc:
            # a failed cluster leaves no temporary files (a full disk most of all)
            remove_stale_temporaries(cdir)
            full = disk_full_from(exc, cdir, cid)
            if full is not None:
                raise full from exc
            raise
        expected = self.expected_outputs(row, Path(self.clusters_dir))
        missing = [str(p) for p in expected if not Path(p).is_file()]
        if missing:
            raise StageError("outputs", f"the cluster function returned but did not write "
                             f"{missing}", cid)
        outputs = result.get("outputs") if isinstance(result, dict) else None
        # cpu_s: the whole worker process (Dask's own threads included)
        timing = {"start": start, "end": time.time(), "cpu_s": _process_cpu() - cpu0,
                  "worker": f"{socket.gethostname()}:{os.getpid()}"}
        return {"cluster_id": cid, "outputs": [str(p) for p in (outputs or expected)],
                "timing": timing}


def _process_cpu() -> float:
    """CPU seconds (user + system, all threads) of this process so far."""
    t = os.times()
    return t.user + t.system


def timing_summary(timings: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Where a shard's worker time went, from the per-cluster ``timing`` records.

    Parameters
    ----------
    timings : sequence of mappings
        ``start``, ``end`` (epoch seconds), ``cpu_s`` and ``worker`` of every built cluster
        (what :func:`run_shard` logs with each cluster).

    Returns
    -------
    dict
        ``n``, ``n_workers``, ``first_start``, ``last_end``, ``span_s`` (first start to last
        end), ``busy_s`` (sum of cluster wall times), ``cpu_s`` (sum of their CPU times),
        ``tail_s`` (last end minus the earliest time a worker ran out of clusters) and
        ``utilisation`` (busy / (workers x span)); empty dict for no timings.
    """
    timings = [t for t in timings if t]
    if not timings:
        return {}
    by_worker: dict[str, list[Mapping[str, Any]]] = {}
    for t in timings:
        by_worker.setdefault(str(t.get("worker", "?")), []).append(t)
    first = min(float(t["start"]) for t in timings)
    last = max(float(t["end"]) for t in timings)
    busy = sum(float(t["end"]) - float(t["start"]) for t in timings)
    worker_ends = [max(float(t["end"]) for t in ts) for ts in by_worker.values()]
    span = last - first
    nw = len(by_worker)
    return {"n": len(timings), "n_workers": nw, "first_start": first, "last_end": last,
            "span_s": span, "busy_s": busy,
            "cpu_s": sum(float(t.get("cpu_s", 0.0)) for t in timings),
            "tail_s": last - min(worker_ends),
            "utilisation": busy / (nw * span) if span > 0 else 1.0}


def _relative(paths: Sequence[str], base: Path) -> str:
    rel = []
    for p in paths:
        try:
            rel.append(str(Path(p).resolve().relative_to(base.resolve())))
        except ValueError:
            rel.append(str(p))
    return ";".join(rel)


def run_shard(shard_path: str | Path, cluster_func: Callable[[dict, dict, str], dict], *,
              config: Mapping[str, Any], clusters_dir: str | Path, client=None,
              expected_outputs: Callable[[dict, Path], list[Path]] | None = None,
              manifest_path: str | Path | None = None, retries: int | None = None,
              on_error: str | None = None,
              cost: Callable[[dict], float | None] | None = expected_cost,
              is_current: Callable[[dict, Path], bool] | None = None) -> Path:
    """Build every cluster of a shard (resuming) and write its manifest atomically.

    Parameters
    ----------
    shard_path : path
        A ``shard_NNN.ecsv`` from :func:`split_shards`.
    cluster_func : callable
        ``cluster_func(cluster_row: dict, config: dict, outdir: str) -> dict`` (picklable,
        module-level), e.g. the pipeline's ``build_cluster``; writes the cluster's files under
        ``outdir/<cluster_id>/`` with :func:`xclusters.io.atomic_path`; may return
        ``{"outputs": [paths]}``.
    config : mapping
        The validated run configuration (passed to ``cluster_func``; its ``parallel`` section
        is read here as :class:`~xclusters.settings.ParallelSettings`).
    clusters_dir : path
        ``results/<run>/clusters``.
    client : distributed.Client or None
        From :func:`xclusters.parallel.make_client`; ``None`` runs serially.
    expected_outputs : callable, optional
        ``(row, clusters_dir) -> [paths]``: the final outputs of a cluster; clusters whose
        outputs all exist are ``skipped-existing``. Default: the band images of every enabled
        instrument and projection (:func:`default_expected_outputs`).
    manifest_path : path, optional
        Default :func:`manifest_path_for` (``shard_NNN.manifest.ecsv`` beside the shard).
    retries, on_error : optional
        Override ``parallel.retries`` / ``parallel.on_error``.
    cost : callable or None, optional
        ``cost(row) -> float | None``: expected relative cost of a cluster; on Dask the
        clusters are submitted most expensive first (:func:`map_clusters`). Default
        :func:`xclusters.parallel.cost.expected_cost` (expected photon count from ``m500c``
        and ``redshift``); ``None`` submits in shard order. Outputs and the manifest do not
        depend on it.
    is_current : callable, optional
        ``(row, clusters_dir) -> bool``: whether a cluster whose outputs all exist was made
        with the current settings (e.g. their recorded stage fingerprints match,
        :mod:`xclusters.stages`); a cluster for which it is false is built again. Default:
        existing outputs are current.

    Returns
    -------
    Path
        The manifest. With ``on_error='fail'`` a failure raises
        :class:`~xclusters.parallel.errors.ClusterFailure` and no manifest is written (the
        clusters already built stay on disk and are skipped on the next attempt).
    """
    shard_path = Path(shard_path)
    clusters_dir = Path(clusters_dir)
    par = ParallelSettings.from_config(config)
    retries = par.retries if retries is None else int(retries)
    on_error = par.on_error if on_error is None else str(on_error)
    expected_outputs = expected_outputs or default_expected_outputs(config)
    manifest_path = Path(manifest_path) if manifest_path else manifest_path_for(shard_path)

    table = Table.read(shard_path, format="ascii.ecsv")
    rows = [row_to_dict(r) for r in table]
    status: dict[str, dict[str, str]] = {}
    todo = []
    for row in rows:
        cid = str(row["cluster_id"])
        expected = expected_outputs(row, clusters_dir)
        if (expected and all(Path(p).is_file() for p in expected)
                and (is_current is None or is_current(row, clusters_dir))):
            status[cid] = {"status": "skipped-existing", "stage": "", "error": "",
                           "outputs": _relative([str(p) for p in expected], clusters_dir)}
        else:
            todo.append(row)
    log.info("%s: %d clusters, %d already built, %d to build", shard_path.name, len(rows),
             len(rows) - len(todo), len(todo))
    task = _ShardTask(cluster_func, dict(config), clusters_dir, expected_outputs)
    try:
        results, failures = map_clusters(task, todo, client=client, retries=retries,
                                         on_error=on_error, desc=shard_path.stem,
                                         default_stage="build", costs=costs_for(todo, cost))
    except BaseException:
        _remove_temporaries(clusters_dir, todo)
        raise
    if failures:
        _remove_temporaries(clusters_dir, [{"cluster_id": f.cluster_id} for f in failures])
    if any(f.stage == "worker" for f in failures):
        # a worker that died without a Python error: a full disk can do that in native code
        full = probe_disk_full(clusters_dir)
        if full is not None:
            raise full
    _log_timings(shard_path.name, results)
    for res in results:
        status[res["cluster_id"]] = {"status": "ok", "stage": "", "error": "",
                                     "outputs": _relative(res["outputs"], clusters_dir)}
    for fail in failures:
        status[fail.cluster_id] = {"status": "failed", "stage": fail.stage,
                                   "error": fail.error, "outputs": ""}
    ids = [str(r["cluster_id"]) for r in rows]
    manifest = Table({name: [status[c][name] if name != "cluster_id" else c for c in ids]
                      for name in _MANIFEST_COLUMNS},
                     names=_MANIFEST_COLUMNS, dtype=[str] * len(_MANIFEST_COLUMNS))
    manifest.meta = {"shard": shard_path.name,
                     "n_ok": sum(s["status"] == "ok" for s in status.values()),
                     "n_skipped_existing": sum(s["status"] == "skipped-existing"
                                               for s in status.values()),
                     "n_failed": len(failures)}
    _write_ecsv(manifest, manifest_path)
    if failures:
        log.warning("%s: %d clusters failed; see %s", shard_path.name, len(failures),
                    manifest_path)
    return manifest_path


def _remove_temporaries(clusters_dir: Path, rows: Sequence[Mapping[str, Any]]) -> None:
    """Remove temporary files of clusters no task is writing any more (failed or cancelled)."""
    for row in rows:
        remove_stale_temporaries(Path(clusters_dir) / str(row["cluster_id"]))


def _log_timings(name: str, results: Sequence[Mapping[str, Any]]) -> None:
    """One DEBUG record per cluster (``extra={"xc_timing": ...}``) and an INFO summary."""
    timings = []
    for res in results:
        t = res.get("timing") if isinstance(res, Mapping) else None
        if not t:
            continue
        timings.append(dict(t, cluster_id=res["cluster_id"]))
        log.debug("%s: cluster %s on %s: %.1f s, %.1f CPU s", name, res["cluster_id"],
                  t.get("worker"), float(t["end"]) - float(t["start"]),
                  float(t.get("cpu_s", 0.0)), extra={"xc_timing": timings[-1]})
    summary = timing_summary(timings)
    if summary:
        log.info("%s: %d clusters on %d workers in %.1f s from first start to last end; "
                 "workers busy %.0f %% of it, idle tail %.1f s, %.1f CPU s per cluster", name,
                 summary["n"], summary["n_workers"], summary["span_s"],
                 100 * summary["utilisation"], summary["tail_s"],
                 summary["cpu_s"] / summary["n"])


def read_manifest(path: str | Path) -> Table:
    """Read a shard manifest, checking its columns and status values."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"shard manifest {path} does not exist; run the build_shard "
                                "rule for this shard first")
    table = Table.read(path, format="ascii.ecsv")
    missing = [c for c in _MANIFEST_COLUMNS if c not in table.colnames]
    if missing:
        raise ValueError(f"shard manifest {path} lacks columns {missing}; rebuild the shard")
    bad = sorted({str(s) for s in table["status"]} - set(MANIFEST_STATUSES))
    if bad:
        raise ValueError(f"shard manifest {path} has unknown status values {bad}; expected "
                         f"{list(MANIFEST_STATUSES)}")
    return table
