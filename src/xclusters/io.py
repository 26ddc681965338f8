"""Atomic file writes: a killed job never leaves a file that a later stage would accept.

Every per-cluster output and every table is written under a temporary name in the same
directory (``.<name>.tmp-<pid>``), flushed to disk and renamed over the final name with
:func:`os.replace` (atomic on POSIX within one file system). On an exception the temporary
file is removed. Leftovers of killed processes are recognised by :func:`is_temporary` and
removed by :func:`remove_stale_temporaries`. Writers that cannot use :func:`atomic_path` follow
the same naming: a library that appends an extension (``.<name>.tmp-<pid>.h5``, as pyXSIM does;
``.<name>.tmp-<pid>.fits``) or a scratch directory whose name ends in ``.tmp-<pid>``.
"""
from __future__ import annotations

import contextlib
import logging
import os
import re
import shutil
from pathlib import Path
from typing import Iterator

__all__ = [
    "atomic_path",
    "atomic_write_bytes",
    "atomic_write_text",
    "temporary_name",
    "is_temporary",
    "remove_stale_temporaries",
]

log = logging.getLogger("xclusters.io")

# ``.<name>.tmp-<pid>``, optionally followed by one extension a library appends.
_TMP_RE = re.compile(r"^\..+\.tmp-\d+(\.[A-Za-z0-9]+)?$")


def temporary_name(final_path: str | Path, pid: int | None = None, suffix: str = "") -> Path:
    """The temporary path used for ``final_path``: ``<dir>/.<name>.tmp-<pid><suffix>``.

    ``suffix`` (e.g. ``".keras"``) is for writers that infer the format from the extension.
    """
    final = Path(final_path)
    return final.with_name(f".{final.name}.tmp-{os.getpid() if pid is None else pid}{suffix}")


def is_temporary(path: str | Path) -> bool:
    """True when ``path`` is named like a temporary file or scratch directory of a writer.

    ``.<name>.tmp-<pid>`` (:func:`atomic_path`), ``.<name>.tmp-<pid>.<ext>`` (a library that
    appends an extension) or a directory ``.<prefix><random>.tmp-<pid>``.
    """
    return bool(_TMP_RE.match(Path(path).name))


def _fsync_path(path: Path) -> None:
    """Flush a file (or a directory entry) to disk; directories may refuse on some systems."""
    flags = os.O_RDONLY
    try:
        fd = os.open(path, flags)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


@contextlib.contextmanager
def atomic_path(final_path: str | Path, suffix: str = "") -> Iterator[Path]:
    """Yield a temporary path next to ``final_path``; rename it into place on success.

    The one atomic writer of the package: every output (FITS, HDF5, ECSV, figures, models,
    response files, downloads) goes through it or :func:`atomic_write_bytes` /
    :func:`atomic_write_text`.

    The caller writes the whole file to the yielded path (any library that takes a file name).
    On normal exit the file is fsync'ed and renamed over ``final_path`` with :func:`os.replace`;
    on an exception it is removed and the exception propagates. Parent directories are created.

    Parameters
    ----------
    final_path : str or Path
        Where the file should end up.
    suffix : str
        Appended to the temporary name (``".keras"``, ``".png"``) for writers that infer the
        format from the extension.

    Yields
    ------
    Path
        ``<dir>/.<name>.tmp-<pid><suffix>``, not existing yet.

    Examples
    --------
    >>> with atomic_path("out/image.fits") as tmp:          # doctest: +SKIP
    ...     hdu.writeto(tmp)
    """
    final = Path(final_path)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = temporary_name(final, suffix=suffix)
    if tmp.exists() or tmp.is_symlink():
        tmp.unlink()
    try:
        yield tmp
        if not (tmp.exists() or tmp.is_symlink()):
            raise FileNotFoundError(
                f"atomic_path: nothing was written to {tmp} for {final}; the writer must create "
                "the yielded temporary path")
        _fsync_path(tmp)
        os.replace(tmp, final)
        _fsync_path(final.parent)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise


def atomic_write_bytes(final_path: str | Path, data: bytes) -> Path:
    """Write ``data`` to ``final_path`` atomically; return the final path."""
    with atomic_path(final_path) as tmp:
        with open(tmp, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
    return Path(final_path)


def atomic_write_text(final_path: str | Path, text: str, encoding: str = "utf-8") -> Path:
    """Write ``text`` to ``final_path`` atomically; return the final path."""
    return atomic_write_bytes(final_path, text.encode(encoding))


def remove_stale_temporaries(directory: str | Path) -> list[Path]:
    """Remove temporary files and scratch directories (:func:`is_temporary`) of killed jobs.

    Only call this where no other live process writes (e.g. a cluster's own directory at the
    start of its task). Returns the removed paths.
    """
    directory = Path(directory)
    removed: list[Path] = []
    if not directory.is_dir():
        return removed
    for p in sorted(directory.iterdir()):
        if not is_temporary(p):
            continue
        if p.is_dir() and not p.is_symlink():
            shutil.rmtree(p, ignore_errors=True)
        else:
            with contextlib.suppress(FileNotFoundError):
                p.unlink()
        removed.append(p)
        log.info("removed stale temporary %s", p)
    return removed
