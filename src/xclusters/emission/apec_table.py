"""APEC from yt's emissivity table ``apec_emissivity_v3.h5`` (500 energy bins, 100 temperatures).

The table (computed with APEC 3.0.9 by J. ZuHone for yt's X-ray fields,
``yt.fields.xray_emission_fields``) holds datasets ``E`` (501 log-spaced bin edges, 0.05-100 keV,
rest frame), ``log_T`` (100 values of log10(T/K), 5.0-8.85), and ``emissivity_primordial`` /
``emissivity_metals`` (100 x 500, erg cm^3 s^-1 keV^-1 per n_e n_H; metals for solar abundances).
Its resolution (~1.5 % in energy) is coarse for spectroscopy but enough for imaging in broad bands.

Where the file is looked for, in order (:func:`locate_apec_table`):

1. ``emission.apec_table_path`` in the config (an error if it is set but missing);
2. yt's supplementary data directory (``yt.config.ytcfg["yt", "supp_data_dir"]``);
3. the working directory;
4. a download from yt's data server into that directory (or ``~/.cache/xclusters``), only when
   ``emission.allow_download`` is true (default) and the server answers within a few seconds.
"""
from __future__ import annotations

import logging
import socket
import urllib.request
from pathlib import Path
from typing import Any, Mapping

import h5py
import numpy as np
from astropy import constants as const
from astropy import units as u

from ..settings import EmissionSettings
from .tabulated import TabulatedThermalSpectrum

__all__ = ["APEC_TABLE_NAME", "APEC_TABLE_URL", "ApecTableSpectrum", "locate_apec_table",
           "read_apec_table"]

log = logging.getLogger("xclusters.emission")

APEC_TABLE_NAME = "apec_emissivity_v3.h5"
#: yt's data server (``yt.fields.xray_emission_fields.data_url``).
APEC_TABLE_URL = f"http://yt-project.org/data/{APEC_TABLE_NAME}"
_TABLE_VERSION = 3
_CONNECT_TIMEOUT_S = 5.0
_KEV_ERG = (1.0 * u.keV).to_value(u.erg)
_K_PER_KEV = (1.0 * u.keV / const.k_B).to_value(u.K)


def _yt_supp_dir() -> Path | None:
    try:
        from yt.config import ytcfg

        d = Path(str(ytcfg.get("yt", "supp_data_dir")))
    except Exception:  # noqa: BLE001 - yt config problems just mean "no yt data dir"
        return None
    return d if d.is_dir() else None


def _server_reachable(url: str, timeout_s: float = _CONNECT_TIMEOUT_S) -> bool:
    """Cheap reachability probe: resolve and connect to the host with a short timeout."""
    from urllib.parse import urlparse

    parts = urlparse(url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        with socket.create_connection((parts.hostname, port), timeout=timeout_s):
            return True
    except OSError:
        return False


def _download(url: str, dest: Path, timeout_s: float = 60.0) -> Path:
    from ..io import atomic_path

    with atomic_path(dest) as tmp:
        with urllib.request.urlopen(url, timeout=timeout_s) as resp, open(tmp, "wb") as out:
            while block := resp.read(1 << 20):
                out.write(block)
    return dest


def locate_apec_table(emission_cfg: EmissionSettings | Mapping[str, Any]
                      ) -> tuple[Path | None, str]:
    """Find (or fetch) yt's APEC emissivity table.

    Parameters
    ----------
    emission_cfg : EmissionSettings or mapping
        :class:`xclusters.settings.EmissionSettings` (or a validated config / its
        ``emission`` section): ``apec_table_path``, ``allow_download``.

    Returns
    -------
    path : pathlib.Path or None
        The table, or None when it is not available.
    reason : str
        Where it was found, or why it is unavailable.

    Raises
    ------
    FileNotFoundError
        When ``emission.apec_table_path`` is set but does not exist.
    """
    settings = EmissionSettings.from_config(emission_cfg)
    explicit = settings.apec_table_path
    if explicit:
        p = Path(str(explicit)).expanduser()
        if not p.is_file():
            raise FileNotFoundError(
                f"emission.apec_table_path={explicit!r} does not exist. Point it at yt's "
                f"{APEC_TABLE_NAME} (download: {APEC_TABLE_URL}) or set it to null.")
        return p, "emission.apec_table_path"
    supp = _yt_supp_dir()
    candidates = ([supp / APEC_TABLE_NAME] if supp else []) + [Path.cwd() / APEC_TABLE_NAME]
    for cand in candidates:
        if cand.is_file():
            return cand, f"found at {cand}"
    if not settings.allow_download:
        return None, "not found and emission.allow_download is false"
    if not _server_reachable(APEC_TABLE_URL):
        return None, f"not found locally and {APEC_TABLE_URL} is unreachable (offline?)"
    dest = (supp or Path.home() / ".cache" / "xclusters") / APEC_TABLE_NAME
    try:
        _download(APEC_TABLE_URL, dest)
    except OSError as err:
        return None, f"download of {APEC_TABLE_URL} failed: {err}"
    log.info("downloaded %s to %s", APEC_TABLE_URL, dest)
    return dest, f"downloaded to {dest}"


def read_apec_table(path: str | Path) -> dict[str, np.ndarray]:
    """Read and check the table; returns ``E_keV`` (501), ``kT_keV`` (100), ``prim``, ``metal``.

    Raises
    ------
    ValueError
        When the file is not a version-3 yt APEC emissivity table.
    """
    with h5py.File(path, "r") as fh:
        missing = [k for k in ("E", "log_T", "emissivity_primordial", "emissivity_metals")
                   if k not in fh]
        if missing:
            raise ValueError(f"{path}: not a yt APEC emissivity table (missing {missing}).")
        version = int(np.asarray(fh.attrs.get("version", -1)))
        if version != _TABLE_VERSION:
            raise ValueError(f"{path}: table version {version}, expected {_TABLE_VERSION} "
                             f"({APEC_TABLE_NAME}).")
        out = {
            "E_keV": fh["E"][()].astype("float64"),
            "kT_keV": 10.0 ** fh["log_T"][()].astype("float64") / _K_PER_KEV,
            "prim": fh["emissivity_primordial"][()].astype("float64"),
            "metal": fh["emissivity_metals"][()].astype("float64"),
            "info": str(fh.attrs.get("info", "")),
        }
    nT, nE = out["kT_keV"].size, out["E_keV"].size - 1
    if out["prim"].shape != (nT, nE) or out["metal"].shape != (nT, nE):
        raise ValueError(f"{path}: emissivity shape {out['prim'].shape}, expected {(nT, nE)}.")
    return out


def _cumulative_at(edges: np.ndarray, table_edges: np.ndarray, cum: np.ndarray) -> np.ndarray:
    """Cumulative counts ``cum`` (nT, nE+1) at ``edges``, linear within table bins, clamped."""
    fidx = np.interp(edges, table_edges, np.arange(table_edges.size, dtype="float64"))
    k = np.clip(np.floor(fidx).astype(int), 0, table_edges.size - 2)
    frac = fidx - k
    return cum[:, k] * (1.0 - frac) + cum[:, k + 1] * frac


class ApecTableSpectrum(TabulatedThermalSpectrum):
    """pyXSIM spectral model built from yt's APEC emissivity table.

    Temperatures are the table's 100 nodes (kT = 0.0086-61 keV, 9 % steps), interpolated
    linearly in kT by pyXSIM. Rebinning to the observed bins keeps photon numbers: the table's
    photon counts per bin are accumulated and the cumulative sum is interpolated linearly at the
    rest-frame edges (1+z) * E_obs.

    Parameters
    ----------
    path : str or pathlib.Path
        The ``apec_emissivity_v3.h5`` file.
    emin_keV, emax_keV : float
        Observed-frame band in keV.
    nbins : int
        Number of observed-frame energy bins.
    """

    def __init__(self, path: str | Path, emin_keV: float, emax_keV: float, nbins: int,
                 binscale: str = "linear"):
        tab = read_apec_table(path)
        super().__init__(emin_keV, emax_keV, nbins, tab["kT_keV"],
                         model_vers=f"yt-apec-table-v{_TABLE_VERSION}", binscale=binscale)
        self.path = Path(path)
        self.info = tab["info"]
        self.table_edges_keV = tab["E_keV"]
        de = np.diff(tab["E_keV"])
        emid_erg = 0.5 * (tab["E_keV"][1:] + tab["E_keV"][:-1]) * _KEV_ERG
        # erg cm^3 s^-1 keV^-1  ->  photons cm^3 s^-1 per table bin
        zeros = np.zeros((self.nT, 1))
        self._cum_prim = np.hstack([zeros, np.cumsum(tab["prim"] * de / emid_erg, axis=1)])
        self._cum_metal = np.hstack([zeros, np.cumsum(tab["metal"] * de / emid_erg, axis=1)])

    def rest_bin_photons(self, rest_edges_keV: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Photons per rest-frame bin from the table (zero outside 0.05-100 keV)."""
        edges = np.asarray(rest_edges_keV, dtype="float64")
        lo, hi = self.table_edges_keV[0], self.table_edges_keV[-1]
        if edges[0] < lo * (1 - 1e-6) or edges[-1] > hi * (1 + 1e-6):
            log.warning("rest-frame band %.3g-%.3g keV extends beyond the APEC table "
                        "(%.3g-%.3g keV); no emission is assigned outside it",
                        edges[0], edges[-1], lo, hi)
        cp = _cumulative_at(edges, self.table_edges_keV, self._cum_prim)
        cm = _cumulative_at(edges, self.table_edges_keV, self._cum_metal)
        return np.diff(cp, axis=1), np.diff(cm, axis=1)
