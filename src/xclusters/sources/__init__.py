"""Cluster gas sources (stage ``sources``): analytic ICM or simulation cutouts -> ``source.h5``.

``build_analytic_source`` / ``build_simulation_source`` return a dict of grid arrays,
``write_source`` writes ``source.h5`` and ``load_source`` opens it as a yt dataset.
"""
from .analytic import build_analytic_source
from .io import GRID_FIELDS, SourceFileError, load_source, read_source, write_source
from .luminosity import bremsstrahlung_luminosity
from .simulation import SimulationSourceError, build_simulation_source

__all__ = ["build_analytic_source", "build_simulation_source", "write_source", "read_source",
           "load_source", "bremsstrahlung_luminosity", "GRID_FIELDS", "SourceFileError",
           "SimulationSourceError", "build_source"]


def build_source(row, sources_cfg, seed, snapshot_path=None, instruments_cfg=None,
                 memory_mb=None, observed_redshift=None):
    """Dispatch on ``sources.kind`` (``analytic`` | ``simulation``).

    Parameters
    ----------
    row, sources_cfg, seed, snapshot_path
        As for :func:`build_analytic_source` / :func:`build_simulation_source`.
    instruments_cfg : mapping, optional
        The ``instruments`` config section. When given, analytic cores are refined to the
        finest image pixel at the cluster's redshift and simulation cutouts are sized from
        the instrument fields (:mod:`xclusters.sources.refine`); neighbours omit it.
    memory_mb : float, optional
        ``parallel.memory_per_worker_mb``: a simulation cutout that would need more is refused.
    observed_redshift : float, optional
        The redshift the source is observed at when it is not the row's (light-cone) one:
        ``instruments.chandra_acisi.fixed_redshift``. Only the resolution (core refinement,
        cutout size) follows it; the gas (the row's mass, redshift and draws) is unchanged.
    """
    z_obs = float(row["redshift"]) if observed_redshift is None else float(observed_redshift)
    kind = sources_cfg["kind"]
    if kind == "analytic":
        pixel = None
        if instruments_cfg:
            from .refine import finest_pixel_kpc

            pixel = finest_pixel_kpc(instruments_cfg, z_obs, sources_cfg)
        return build_analytic_source(row, sources_cfg, seed, finest_pixel_kpc=pixel)
    if kind == "simulation":
        if not snapshot_path:
            raise SimulationSourceError("sources.kind = simulation needs catalog.snapshot "
                                        "(a yt-loadable snapshot)")
        return build_simulation_source(row, sources_cfg, snapshot_path, seed,
                                       instruments_cfg=instruments_cfg, memory_mb=memory_mb,
                                       observed_redshift=observed_redshift)
    raise ValueError(f"sources.kind = {kind!r}; use analytic or simulation")
