"""Filesystem-safe identifiers for per-cluster outputs (``results/<run>/clusters/<cid>/``)."""
from __future__ import annotations

import hashlib
import re

import numpy as np

__all__ = ["safe_id", "checked_id"]

_ALLOWED = re.compile(r"[^A-Za-z0-9_-]")
_MAX_LEN = 64  # keeps <cid> plus file names well under the usual 255-byte name limit


def safe_id(value: object) -> str:
    """Return a filesystem-safe cluster id for a halo id.

    Integers map to ``h%08d`` (``h00000042``; negative values to ``hm%08d``). Anything
    else is turned into a string and every character outside ``[A-Za-z0-9_-]`` is replaced
    by ``_``; when that changed the string (or it had to be shortened) a short SHA-256
    suffix of the original keeps distinct inputs distinct. The result never contains a path
    separator, never starts with ``.`` or ``-`` and is never empty, so it cannot escape a
    directory.

    Parameters
    ----------
    value : int or str
        The halo id from a catalogue.

    Returns
    -------
    str
        At most 64 characters from ``[A-Za-z0-9_-]``, starting with ``h``.

    Examples
    --------
    >>> safe_id(42)
    'h00000042'
    >>> safe_id("../etc/passwd").startswith("h")
    True
    """
    if isinstance(value, (bool, np.bool_)):
        value = int(value)
    if isinstance(value, (int, np.integer)):
        v = int(value)
        return f"h{v:08d}" if v >= 0 else f"hm{-v:08d}"
    if isinstance(value, (float, np.floating)) and float(value).is_integer():
        return safe_id(int(value))
    text = str(value)
    cleaned = _ALLOWED.sub("_", text)
    out = "h" + cleaned
    if cleaned != text or len(out) > _MAX_LEN or not text:  # "" -> "h_<digest>", not "h"
        digest = hashlib.sha256(text.encode("utf-8")).hexdigest()[:8]
        out = out[: _MAX_LEN - 9] + "_" + digest
    return out


_SAFE = re.compile(r"^h[A-Za-z0-9_-]{1,63}$")


def checked_id(cluster_id: object) -> str:
    """Return ``cluster_id`` unchanged if it is already a :func:`safe_id` output, else raise.

    Per-cluster paths are built from the ``cluster_id`` column of ``sample.ecsv``; this guard
    keeps a hand-edited sample from writing outside ``results/<run>/clusters``.
    """
    text = str(cluster_id)
    if not _SAFE.match(text):
        raise ValueError(f"cluster_id {text!r} is not filesystem-safe (expected 'h' followed by "
                         f"[A-Za-z0-9_-]); regenerate sample.ecsv with `xclusters sample`.")
    return text
