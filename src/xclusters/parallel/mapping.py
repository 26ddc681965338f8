"""Map a per-cluster function over clusters with retries, a failures table and progress.

Items are small: dicts of scalars (a sample row), paths or ids. Workers open their own files.
"""
from __future__ import annotations

import logging
import time
import uuid
from dataclasses import asdict, dataclass
from typing import Any, Callable, Sequence

from tqdm.auto import tqdm

from .cost import submission_order
from .errors import ClusterFailure, DiskFullError, StageError

__all__ = ["Failure", "map_clusters", "item_id"]

log = logging.getLogger("xclusters.parallel")

_MAX_ERROR_CHARS = 500


@dataclass(frozen=True)
class Failure:
    """One failed cluster: its id, the stage that failed and the error message."""

    cluster_id: str
    stage: str
    error: str

    def as_dict(self) -> dict[str, str]:
        return asdict(self)


def item_id(item: Any) -> str:
    """The cluster id of an item: ``item["cluster_id"]`` for mappings, else ``str(item)``."""
    if isinstance(item, dict):
        for key in ("cluster_id", "id"):
            if key in item:
                return str(item[key])
    return str(item)


def _one_line(text: str) -> str:
    text = " | ".join(line.strip() for line in str(text).splitlines() if line.strip())
    return text if len(text) <= _MAX_ERROR_CHARS else text[: _MAX_ERROR_CHARS - 3] + "..."


def _failure_from(cid: str, exc: BaseException, default_stage: str) -> Failure:
    if isinstance(exc, StageError):
        return Failure(cid, exc.stage, _one_line(exc.message))
    name = type(exc).__name__
    if name == "KilledWorker":
        return Failure(cid, "worker", _one_line(
            f"KilledWorker: the worker process died each time it ran this cluster ({exc}); "
            "often out of memory: raise parallel.memory_per_worker_mb or the job's mem_mb"))
    return Failure(cid, default_stage, _one_line(f"{name}: {exc}"))


def _serial(func, items, ids, retries, on_error, desc, default_stage, bar):
    results: list[Any] = []
    failures: list[Failure] = []
    for cid, item in zip(ids, items):
        for attempt in range(retries + 1):
            try:
                results.append(func(item))
                break
            except DiskFullError:
                raise  # every later cluster would fail the same way: stop the job
            except Exception as exc:  # noqa: BLE001 - recorded or re-raised below
                if attempt < retries:
                    log.warning("%s: cluster %s failed (attempt %d of %d), retrying: %s", desc,
                                cid, attempt + 1, retries + 1, exc)
                    continue
                fail = _failure_from(cid, exc, default_stage)
                log.error("%s: cluster %s failed in %s: %s", desc, cid, fail.stage, fail.error)
                if on_error == "fail":
                    raise ClusterFailure(fail.cluster_id, fail.stage, fail.error) from exc
                failures.append(fail)
        bar.update(1)
    return results, failures


def map_clusters(func: Callable[[Any], Any], items: Sequence[Any], *, client=None,
                 retries: int = 0, on_error: str = "skip", desc: str = "clusters",
                 default_stage: str | None = None,
                 costs: Sequence[float | None] | None = None
                 ) -> tuple[list[Any], list[Failure]]:
    """Run ``func(item)`` for every item on a Dask client (or serially) and collect failures.

    Parameters
    ----------
    func : callable
        Picklable function of one item (module-level function or picklable callable object).
    items : sequence
        Small items: dicts of scalars with a ``cluster_id`` key, paths or ids. Never open
        datasets or file handles.
    client : distributed.Client or None
        ``None`` runs in this process (``parallel.backend: none``).
    retries : int
        Extra attempts after an exception (``parallel.retries``). A worker process that dies
        (segfault, OOM kill) is handled by the scheduler, which reruns the task on another
        worker up to ``distributed.scheduler.allowed-failures`` times (default 3).
    on_error : {"skip", "fail"}
        ``skip``: record a :class:`Failure` and continue; ``fail``: cancel the rest and raise
        :class:`~xclusters.parallel.errors.ClusterFailure` naming cluster, stage and error.
    desc : str
        Progress-bar label (also used in Dask task keys).
    default_stage : str, optional
        Stage recorded for exceptions that are not :class:`StageError` (default ``desc``).
    costs : sequence of float or None, optional
        Expected relative cost of each item (:func:`xclusters.parallel.cost.expected_cost`).
        On a Dask client, items are submitted in decreasing cost with matching task
        priorities (longest first, so the last worker to finish waits on a cheap item); items
        without a cost keep their order, after the others. The serial backend runs in item
        order. Never changes results, their order or the failures.

    Returns
    -------
    results : list
        Return values of the successful items, in the order of ``items``.
    failures : list of Failure
        In the order of ``items``.
    """
    if on_error not in ("skip", "fail"):
        raise ValueError(f"on_error={on_error!r} must be 'skip' or 'fail' (parallel.on_error)")
    retries = int(retries)
    if retries < 0:
        raise ValueError(f"retries={retries} must be >= 0 (parallel.retries)")
    items = list(items)
    ids = [item_id(it) for it in items]
    if costs is not None and len(costs) != len(items):
        raise ValueError(f"{len(costs)} costs for {len(items)} items")
    stage = default_stage or desc
    t0 = time.perf_counter()
    bar = tqdm(total=len(items), desc=desc, unit="cluster", mininterval=1.0)
    try:
        if client is None:
            results, failures = _serial(func, items, ids, retries, on_error, desc, stage, bar)
        else:
            results, failures = _distributed(func, items, ids, client, retries, on_error, desc,
                                             stage, bar, costs)
    finally:
        bar.close()
    log.info("%s: %d ok, %d failed in %.1f s", desc, len(results), len(failures),
             time.perf_counter() - t0)
    return results, failures


def _distributed(func, items, ids, client, retries, on_error, desc, default_stage, bar,
                 costs=None):
    from distributed import as_completed

    token = uuid.uuid4().hex[:8]
    order = list(range(len(items))) if costs is None else submission_order(costs)
    n = len(order)
    # Higher priority runs first; submission order alone is only a tie-breaker in Dask.
    futures = [None] * n
    for rank, i in enumerate(order):
        futures[i] = client.submit(func, items[i], retries=retries, pure=False,
                                   key=f"{desc}-{ids[i]}-{token}", priority=n - rank)
    index = {fut.key: i for i, fut in enumerate(futures)}
    out: dict[int, Any] = {}
    fails: dict[int, Failure] = {}
    try:
        for fut in as_completed(futures):
            i = index[fut.key]
            if fut.status == "finished":
                out[i] = fut.result()
            else:
                try:
                    exc = fut.exception()
                except BaseException as err:  # noqa: BLE001 - e.g. CancelledError
                    exc = err
                if isinstance(exc, DiskFullError):
                    raise exc  # every later cluster would fail the same way: stop the job
                fail = _failure_from(ids[i], exc, default_stage)
                log.error("%s: cluster %s failed in %s: %s", desc, ids[i], fail.stage,
                          fail.error)
                if on_error == "fail":
                    raise ClusterFailure(fail.cluster_id, fail.stage, fail.error) from exc
                fails[i] = fail
            fut.release()
            bar.update(1)
    finally:
        client.cancel([f for f in futures if not f.done()])
    return ([out[i] for i in sorted(out)], [fails[i] for i in sorted(fails)])
