"""Band luminosity of a source grid with a thermal bremsstrahlung emissivity (diagnostics).

Rybicki & Lightman 1979, eq. 5.14b: eps_nu = 6.8e-38 Z^2 n_e n_i T^-1/2 exp(-h nu/kT) g_ff
erg/s/cm^3/Hz, integrated over the band; velocity-averaged Gaunt factor g_ff = 1.2 (R&L
sec. 5.2: "1.2 is accurate to within 20 %"). Fully ionised H+He with hydrogen mass fraction
X = 0.76 (primordial): n_e = (X + Y/2) rho/m_p, sum Z^2 n_i = (X + Y) rho/m_p. Lines are not
included (they add to the 0.5-2 keV band below a few keV).
"""
from __future__ import annotations

from typing import Any, Mapping

import astropy.constants as const
import astropy.units as u
import numpy as np

__all__ = ["bremsstrahlung_luminosity"]

_RL_COEFF = 6.8e-38      # erg s^-1 cm^3 Hz^-1 K^1/2, Rybicki & Lightman eq. 5.14b
_GAUNT = 1.2             # Rybicki & Lightman sec. 5.2
_X_H = 0.76              # primordial hydrogen mass fraction
_KEV_K = (1.0 * u.keV / const.k_B).to_value(u.K)
_KEV_HZ = (1.0 * u.keV / const.h).to_value(u.Hz)
_MP = const.m_p.to_value(u.g)
_KPC_CM = (1.0 * u.kpc).to_value(u.cm)


def bremsstrahlung_luminosity(source: Mapping[str, Any], emin_keV: float = 0.5,
                              emax_keV: float = 2.0, radius_kpc: float | None = None) -> float:
    """Rest-frame band luminosity (erg/s) of a source grid, optionally within a sphere.

    Parameters
    ----------
    source : mapping
        ``density`` [g/cm^3], ``temperature`` [keV] (N, N, N) and ``bbox_kpc``.
    emin_keV, emax_keV : float
        Band edges (rest frame, keV).
    radius_kpc : float, optional
        Only cells whose centre lies within this radius of the box centre.

    Returns
    -------
    float
        Luminosity in erg/s.
    """
    rho = np.asarray(source["density"], dtype=float)
    kt = np.asarray(source["temperature"], dtype=float)
    bbox = np.asarray(source["bbox_kpc"], dtype=float)
    n = rho.shape
    dxs = (bbox[:, 1] - bbox[:, 0]) / np.asarray(n)
    vol = float(np.prod(dxs)) * _KPC_CM**3
    y = 1.0 - _X_H
    ne = (_X_H + y / 2) * rho / _MP
    ni_z2 = (_X_H + y) * rho / _MP
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        t_k = kt * _KEV_K
        band = kt * _KEV_HZ * (np.exp(-emin_keV / kt) - np.exp(-emax_keV / kt))
        eps = _RL_COEFF * _GAUNT * ne * ni_z2 / np.sqrt(t_k) * band
    eps = np.where((kt > 0) & np.isfinite(eps), eps, 0.0)
    if radius_kpc is not None:
        axes = [bbox[i, 0] + dxs[i] * (np.arange(n[i]) + 0.5) for i in range(3)]
        cx, cy, cz = (0.5 * (bbox[i, 0] + bbox[i, 1]) for i in range(3))
        gx, gy, gz = np.meshgrid(axes[0] - cx, axes[1] - cy, axes[2] - cz, indexing="ij")
        eps = np.where(gx**2 + gy**2 + gz**2 <= radius_kpc**2, eps, 0.0)
    return float(eps.sum() * vol)
