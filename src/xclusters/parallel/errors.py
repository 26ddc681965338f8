"""Errors of per-cluster work and the stage they happened in.

A per-cluster function marks its stages with :func:`stage_context`; an exception raised inside
becomes a :class:`StageError` that carries the stage name back from the Dask worker, so the
failures table says where a cluster failed (``photons``, ``events``, ``images`` ...).
"""
from __future__ import annotations

import contextlib
from typing import Iterator

__all__ = ["StageError", "ClusterFailure", "stage_context"]


class StageError(RuntimeError):
    """A per-cluster failure in a named stage (picklable, so it crosses process boundaries).

    Parameters
    ----------
    stage : str
        The stage that failed (``sources``, ``photons``, ``events``, ``images``, ...).
    message : str
        What went wrong, including the original exception type.
    cluster_id : str, optional
        The cluster, when known.
    """

    def __init__(self, stage: str, message: str, cluster_id: str | None = None):
        super().__init__(f"[{stage}] {message}")
        self.stage = stage
        self.message = message
        self.cluster_id = cluster_id

    def __reduce__(self):
        return (StageError, (self.stage, self.message, self.cluster_id))


class ClusterFailure(RuntimeError):
    """Raised by ``on_error: fail`` with the cluster id, stage and error of the first failure."""

    def __init__(self, cluster_id: str, stage: str, error: str):
        super().__init__(
            f"cluster {cluster_id!r} failed in stage {stage!r}: {error} "
            "(parallel.on_error is 'fail'; set it to 'skip' to record failures in the shard "
            "manifest and continue)")
        self.cluster_id = cluster_id
        self.stage = stage
        self.error = error

    def __reduce__(self):
        return (ClusterFailure, (self.cluster_id, self.stage, self.error))


@contextlib.contextmanager
def stage_context(stage: str, cluster_id: str | None = None) -> Iterator[None]:
    """Re-raise any exception inside the block as :class:`StageError` naming ``stage``.

    Examples
    --------
    >>> with stage_context("photons", "c0001"):      # doctest: +SKIP
    ...     make_photons(...)
    """
    try:
        yield
    except StageError:
        raise
    except Exception as exc:  # noqa: BLE001 - wrapped with its type and message
        raise StageError(stage, f"{type(exc).__name__}: {exc}", cluster_id) from exc
