"""Energy bands of each instrument's images (DESIGN.md "Instruments"; papers 000 and 004).

* ``erosita``: observed PI channel 74-177 / 178-274 / 275-722 (paper 000 sec. 2.1).
* ``ideal``: true photon energy 0.5-1.2 / 1.2-2.0 / 2.0-7.0 keV (paper 000 sec. 2.1: "the
  frequency of the photons is known exactly for super observations").
* ``chandra_acisi``: observed energy 0.5-7 keV, one band (paper 004 sec. 2.1.3).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..instruments.backgrounds import EROSITA_BAND_CHANNELS

__all__ = ["Band", "BANDS", "band_masks"]


@dataclass(frozen=True)
class Band:
    """One image band: events with ``lo <= column <= hi`` (channels) or ``lo <= E < hi`` (keV)."""

    name: str
    column: str        # event column: "PI"/"PHA" (channel), "SOXS_ENERGY" or "ENERGY" (eV)
    lo: float
    hi: float
    unit: str          # "chan" or "keV"


_NAMES = ("soft", "medium", "hard")

BANDS: dict[str, tuple[Band, ...]] = {
    "erosita": tuple(Band(n, "PI", lo, hi, "chan")
                     for n, (lo, hi) in zip(_NAMES, EROSITA_BAND_CHANNELS)),
    "ideal": tuple(Band(n, "SOXS_ENERGY", lo, hi, "keV")
                   for n, (lo, hi) in zip(_NAMES, ((0.5, 1.2), (1.2, 2.0), (2.0, 7.0)))),
    "chandra_acisi": (Band("broad", "ENERGY", 0.5, 7.0, "keV"),),
}


def band_masks(events, instrument: str, chantype: str = "PI") -> list[np.ndarray]:
    """Boolean masks selecting the events of each band.

    Parameters
    ----------
    events : FITS_rec or mapping
        Event table with the columns named by :data:`BANDS` (energies in eV as SOXS writes).
    instrument : str
        Instrument name.
    chantype : str
        Channel column of channel bands (``PI`` or ``PHA``, the RMF's CHANTYPE).

    Returns
    -------
    list of ndarray
    """
    if instrument not in BANDS:
        raise ValueError(f"unknown instrument {instrument!r}; choose one of {list(BANDS)}")
    masks = []
    for band in BANDS[instrument]:
        if band.unit == "chan":
            col = np.asarray(events[chantype])
            masks.append((col >= band.lo) & (col <= band.hi))
        else:
            e_keV = np.asarray(events[band.column], dtype=float) * 1e-3
            masks.append((e_keV >= band.lo) & (e_keV < band.hi))
    return masks
