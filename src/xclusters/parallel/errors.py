"""Errors of per-cluster work and the stage they happened in.

A per-cluster function marks its stages with :func:`stage_context`; an exception raised inside
becomes a :class:`StageError` that carries the stage name back from the Dask worker, so the
failures table says where a cluster failed (``photons``, ``events``, ``images`` ...).
"""
from __future__ import annotations

import contextlib
import errno
import os
import re
import shutil
from pathlib import Path
from typing import Iterator

__all__ = ["StageError", "ClusterFailure", "DiskFullError", "stage_context", "disk_full_from",
           "probe_disk_full", "PROBE_BYTES"]

#: Bytes written by :func:`probe_disk_full`: far less than any per-cluster file (one band
#: image of 128x128 float32 pixels with headers is already 64 KiB), so a file system that
#: cannot take it cannot take the next output either.
PROBE_BYTES = 65536


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


class DiskFullError(OSError):
    """No space left on the device of ``path``: stops the whole job (every cluster would fail).

    Parameters
    ----------
    path : str
        The file being written (or the directory probed).
    cluster_id : str, optional
        The cluster being built.
    detail : str
        The original error message.
    """

    def __init__(self, path: str, cluster_id: str | None = None, detail: str = ""):
        where = f" (cluster {cluster_id})" if cluster_id else ""
        free = _free_text(path)
        cleaned = ", this cluster's temporary files were removed" if cluster_id else ""
        super().__init__(errno.ENOSPC,
                         f"no space left on device writing {path}{where}{free}; free space on "
                         "that file system (or point results_dir elsewhere) and rerun: "
                         f"finished clusters are kept{cleaned}"
                         f"{f' [{detail}]' if detail else ''}")
        self.path = str(path)
        self.cluster_id = cluster_id
        self.detail = detail

    def __str__(self) -> str:
        return str(self.strerror)

    def __reduce__(self):
        return (DiskFullError, (self.path, self.cluster_id, self.detail))


def _free_text(path: str) -> str:
    p = Path(path)
    while not p.exists() and p != p.parent:
        p = p.parent
    try:
        return f", {shutil.disk_usage(p).free / 2**20:.1f} MiB free there"
    except OSError:
        return ""


_ENOSPC_TEXT = re.compile(r"no space left on device|errno\s*=?\s*28\b|\[errno 28\]", re.I)
_QUOTED_PATH = re.compile(r"'(/[^']+)'")


def disk_full_from(exc: BaseException, default_path: str | Path,
                   cluster_id: str | None = None) -> DiskFullError | None:
    """A :class:`DiskFullError` when ``exc`` (or its cause/context chain) is ENOSPC, else None.

    Recognises ``OSError(errno.ENOSPC)`` and libraries that report it only in text (HDF5:
    ``errno = 28, error message = 'No space left on device'``).
    """
    seen = set()
    e: BaseException | None = exc
    while e is not None and id(e) not in seen:
        seen.add(id(e))
        if isinstance(e, DiskFullError):
            return e
        text = str(e)
        if (isinstance(e, OSError) and e.errno == errno.ENOSPC) or _ENOSPC_TEXT.search(text):
            path = getattr(e, "filename", None)
            if not path:
                m = _QUOTED_PATH.search(text)
                path = m.group(1) if m else str(default_path)
            return DiskFullError(str(path), cluster_id, " ".join(text.split())[:300])
        e = e.__cause__ or e.__context__
    return None


def probe_disk_full(directory: str | Path) -> DiskFullError | None:
    """Write :data:`PROBE_BYTES` (fsync'ed) in ``directory``; a DiskFullError if that fails.

    Used after a worker died without a Python error (``KilledWorker``), which a full disk can
    cause inside native libraries.
    """
    directory = Path(directory)
    probe = directory / f".disk-probe.tmp-{os.getpid()}"
    try:
        with open(probe, "wb") as fh:
            fh.write(b"\0" * PROBE_BYTES)
            fh.flush()
            os.fsync(fh.fileno())
    except OSError as exc:
        if disk_full_from(exc, directory) is not None:
            return DiskFullError(str(directory), None, f"a {PROBE_BYTES}-byte test write failed")
        return None
    finally:
        with contextlib.suppress(OSError):
            probe.unlink()
    return None


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
