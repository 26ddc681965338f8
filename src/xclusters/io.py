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
    "OutputPathError",
    "check_output_path",
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


class OutputPathError(ValueError):
    """An output path would replace an input, a model, a device or a directory."""


def _same_file(a: Path, b: Path) -> bool:
    """True when ``a`` and ``b`` are one file (same inode, or the same resolved path)."""
    try:
        if os.path.samefile(a, b):
            return True
    except OSError:  # one of them does not exist (yet)
        pass
    return os.path.realpath(a) == os.path.realpath(b)


def _is_keras_model(path: Path) -> bool:
    """True for a ``.keras`` archive (a zip holding Keras's ``config.json``)."""
    import zipfile

    try:
        if not zipfile.is_zipfile(path):
            return False
        with zipfile.ZipFile(path) as z:
            names = set(z.namelist())
    except OSError:
        return False
    return {"config.json", "metadata.json"} <= names


def check_output_path(out: str | Path, inputs=(), *, option: str = "--out",
                      directory: bool = False, protect_models: bool = False) -> Path:
    """Refuse an output path that would destroy something the command reads or needs.

    An output may be a new path or an existing regular file (replaced atomically by the
    writer); with ``directory=True`` a new path or an existing directory. It is refused when
    it resolves (symbolic links followed, same inode for hard links) to one of ``inputs``
    (input files, models, configs), when it exists and is something else: a device such
    as ``/dev/null``, a directory where a file is written, a FIFO or socket, and (with
    ``protect_models``) when it is a trained model.

    Parameters
    ----------
    out : str or Path
        The output path given by the user.
    inputs : iterable of str or Path
        Files the command reads (``None`` entries are ignored).
    option : str
        The option that named ``out``, for the message.
    directory : bool
        ``out`` is an output directory rather than a file.
    protect_models : bool
        Also refuse an existing trained model (a ``.keras`` archive), for commands that do
        not write models.

    Returns
    -------
    Path
        ``out`` unchanged.

    Raises
    ------
    OutputPathError
        One line naming the path and why it is refused.
    """
    import stat

    out = Path(out)
    for inp in inputs:
        if inp is None:
            continue
        inp = Path(inp)
        if inp.exists() and _same_file(out, inp):
            raise OutputPathError(f"{option} {out} is the input {inp}; refusing to overwrite "
                                  "it. Choose a new output path.")
    try:
        mode = os.stat(out).st_mode
    except FileNotFoundError:
        return out
    except OSError as exc:
        raise OutputPathError(f"{option} {out}: cannot be checked ({exc})") from exc
    if directory:
        if not stat.S_ISDIR(mode):
            raise OutputPathError(f"{option} {out} exists and is not a directory; choose a "
                                  "new or existing directory.")
    elif not stat.S_ISREG(mode):
        kind = ("a directory" if stat.S_ISDIR(mode) else "a device" if
                (stat.S_ISCHR(mode) or stat.S_ISBLK(mode)) else "not a regular file")
        raise OutputPathError(f"{option} {out} is {kind}; refusing to replace it. Give a file "
                              "path (new or a regular file).")
    elif protect_models and _is_keras_model(out):
        raise OutputPathError(f"{option} {out} is a trained Keras model; refusing to replace "
                              "it. Choose a new output path.")
    return out
