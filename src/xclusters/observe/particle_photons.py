"""pyXSIM photons from the particles of a native simulation cutout, in bounded memory.

``source.h5`` with a ``/particles`` group (:mod:`xclusters.sources.particles`) is read
``photons.chunk_particles`` particles at a time (h5py slices); each chunk becomes a yt SPH
particle dataset (:func:`xclusters.sources.io.particles_dataset`) and goes through
``pyxsim.make_photons`` with the cluster's one source model (and random generator); the
chunks' photon lists are appended to one list, so peak memory grows with the chunk, not with
the cutout.

Kernel smoothing on the sky. pyXSIM keeps each particle's smoothing length as the photon
list's ``dx`` and ``project_photons(kernel="gaussian")`` scatters a particle's photons with a
2-D Gaussian of standard deviation ``dx``. yt's (and Gadget's) smoothing length is the kernel's
support radius h, and the 1-D spread of the cubic spline is only sqrt(<r^2>/3) = 0.274 h: with
``dx = h`` every particle would be smeared ~3.7 times too wide. :func:`make_particle_photon_list`
therefore stores ``dx = KERNEL_SIGMA_OVER_H[kernel] x h``, so the projected photons have the
second moment of the SPH kernel (attribute ``xclusters_dx_over_smoothing_length``), and the
projection uses ``kernel="gaussian"`` (:func:`xclusters.observe.photons.project_to_simput`).
"""
from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any, Mapping

import h5py
import numpy as np

__all__ = ["make_particle_photon_list", "KERNEL_SIGMA_OVER_H",
           "PHOTON_BYTES_PER_PARTICLE", "particle_chunk_size"]

log = logging.getLogger("xclusters.observe")

#: 1-D standard deviation / support radius h of yt's SPH kernels, sqrt(<r^2>/3) with
#: <r^2> = int r^2 W 4 pi r^2 dr / int W 4 pi r^2 dr (computed numerically from the kernels'
#: formulas; cubic: sqrt(3/40), wendland2: sqrt(1/15) exactly); ``voronoi_cell``: a uniform
#: sphere of radius h (a moving-mesh cell of volume 4 pi h^3 / 3), sqrt(1/5)
KERNEL_SIGMA_OVER_H = {"cubic": 0.27386, "quartic": 0.24766, "quintic": 0.22771,
                       "wendland2": 0.25820, "wendland4": 0.22646, "wendland6": 0.20412,
                       "voronoi_cell": 0.44721}
#: peak memory of the photons stage per particle of a chunk, bytes, an upper bound (yt
#: fields, pyXSIM's per-chunk arrays): benchmarks/particle_cutout.py measured peak RSS growth
#: of 189 MB for 1e6-particle chunks (198 B each) and 111 MB for 2.5e5 (465 B each: about
#: 60 MB fixed plus 130 B per particle), 2026-12-01
PHOTON_BYTES_PER_PARTICLE = 500


def particle_chunk_size(chunk_particles: int, memory_mb: float | None) -> int:
    """Particles per chunk: ``photons.chunk_particles``, checked against the worker budget.

    The photon draws depend on the chunking (one generator runs through the chunks in order),
    so the chunk is never lowered silently: a change of ``parallel.memory_per_worker_mb``
    (not part of any fingerprint) must not change a photon list's bytes.

    Raises
    ------
    ValueError
        A chunk needs more than half of ``memory_mb`` (at
        :data:`PHOTON_BYTES_PER_PARTICLE`); the message gives the largest chunk that fits.
    """
    n = int(chunk_particles)
    if n < 1:
        raise ValueError(f"photons.chunk_particles = {n}: must be at least 1")
    if memory_mb is not None:
        fits = int(0.5 * float(memory_mb) * 2**20 / PHOTON_BYTES_PER_PARTICLE)
        if n > fits:
            raise ValueError(
                f"photons.chunk_particles = {n} needs ~{n * PHOTON_BYTES_PER_PARTICLE / 2**20:.0f}"
                f" MB per chunk, more than half of parallel.memory_per_worker_mb = "
                f"{float(memory_mb):g}; set photons.chunk_particles <= {max(fits, 1)} or raise "
                "parallel.memory_per_worker_mb (the chunk is not lowered silently: the photon "
                "draws depend on it)")
    return n


def _append(dst: h5py.File, src_path: Path) -> None:
    with h5py.File(src_path, "r") as src:
        for name, d in src["data"].items():
            out = dst["data"][name]
            n0 = out.shape[0]
            out.resize((n0 + d.shape[0],))
            out[n0:] = d[()]


def make_particle_photon_list(source_path: str | Path, tmp_path: Path, *,
                              emission_cfg: Mapping[str, Any], area_cm2: float,
                              exposure_s: float, redshift: float, rng, cluster_id: str,
                              chunk_particles: int,
                              memory_mb: float | None = None,
                              cosmology=None) -> tuple[int, int, str, dict[str, Any]]:
    """Write the photon list of a particle source to ``tmp_path``, chunk by chunk.

    Parameters
    ----------
    source_path : str or Path
        ``source.h5`` with ``/particles``.
    tmp_path : Path
        Output file (the caller renames it atomically).
    emission_cfg : mapping
        ``emission`` config section.
    area_cm2, exposure_s, redshift : float
        Photon budget and redshift.
    rng : numpy.random.Generator
        The cluster's photon generator (one for all chunks).
    cluster_id : str
        For messages.
    chunk_particles : int
        ``photons.chunk_particles``.
    memory_mb : float, optional
        ``parallel.memory_per_worker_mb``: lowers the chunk size to fit
        (:func:`particle_chunk_size`).
    cosmology : optional
        Passed to ``pyxsim.make_photons`` (None: pyXSIM's default).

    Returns
    -------
    n_photons, n_particles_emitting : int
    model_name : str
    emission_provenance : dict
        Of :func:`xclusters.emission.make_source_model`, plus ``n_chunks``,
        ``chunk_particles`` and ``dx_over_smoothing_length``.
    """
    import pyxsim

    from ..emission import make_source_model
    from ..sources.io import particles_dataset
    from .photons import KT_FLOOR_KEV, EmptyPhotonListError

    with h5py.File(source_path, "r") as fh:
        pg = fh["particles"]
        kernel = str(pg.attrs.get("kernel", "cubic"))
        bbox = np.asarray(fh["grid"].attrs["bbox_kpc"], dtype=float)
        kt = pg["temperature_keV"][()]
        n = int(kt.size)
        hot = kt > KT_FLOOR_KEV
        if not hot.any():
            raise EmptyPhotonListError(f"cluster {cluster_id}: no gas particle above kT = "
                                       f"{KT_FLOOR_KEV} keV; no photons can be made.")
        kt_min = max(float(kt[hot].min()), KT_FLOOR_KEV) / 1.01
        kt_max = float(kt.max()) * 1.01
        del kt, hot
        if kernel not in KERNEL_SIGMA_OVER_H:
            raise ValueError(f"{source_path}: SPH kernel {kernel!r} unknown; known: "
                             f"{sorted(KERNEL_SIGMA_OVER_H)}")
        model, model_name, eprov = make_source_model(emission_cfg, kT_min_keV=kt_min,
                                                     kT_max_keV=kt_max, prng=rng)
        size = particle_chunk_size(chunk_particles, memory_mb)
        n_chunks = -(-n // size)
        log.info("cluster %s: photons from %d particles in %d chunk(s) of <= %d, %s, "
                 "area %.4g cm^2 x %.4g s, z=%.4g", cluster_id, n, n_chunks, size, model_name,
                 area_cm2, exposure_s, redshift)
        n_photons = n_cells = 0
        first = True
        for i in range(n_chunks):
            ds = particles_dataset(pg, bbox, slice(i * size, min((i + 1) * size, n)))
            # ".<name>.tmp-<pid>" + pyXSIM's ".h5": a temporary the shard runner recognises
            prefix = str(tmp_path.parent / f".{tmp_path.name.lstrip('.')}-chunk{i}"
                                            f".tmp-{os.getpid()}")
            kw = {"cosmology": cosmology} if cosmology is not None else {}
            nph, nc = pyxsim.make_photons(prefix, ds.all_data(), float(redshift),
                                          float(area_cm2), float(exposure_s), model,
                                          center=ds.arr([0.0, 0.0, 0.0], "kpc"), **kw)
            chunk_file = Path(f"{prefix}.h5")
            if first:
                os.replace(chunk_file, tmp_path)
                first = False
            else:
                with h5py.File(tmp_path, "a") as out:
                    _append(out, chunk_file)
                chunk_file.unlink(missing_ok=True)
            n_photons += int(nph)
            n_cells += int(nc)
            del ds
    factor = KERNEL_SIGMA_OVER_H[kernel]
    with h5py.File(tmp_path, "a") as out:
        out["data"]["dx"][...] = out["data"]["dx"][()] * factor
        out["info"].attrs["xclusters_dx_over_smoothing_length"] = factor
    eprov = dict(eprov, n_chunks=n_chunks, chunk_particles=size,
                 dx_over_smoothing_length=factor, sph_kernel=kernel)
    return n_photons, n_cells, model_name, eprov
