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


def build_source(row, sources_cfg, seed, snapshot_path=None):
    """Dispatch on ``sources.kind`` (``analytic`` | ``simulation``)."""
    kind = sources_cfg["kind"]
    if kind == "analytic":
        return build_analytic_source(row, sources_cfg, seed)
    if kind == "simulation":
        if not snapshot_path:
            raise SimulationSourceError("sources.kind = simulation needs catalog.snapshot "
                                        "(a yt-loadable snapshot)")
        return build_simulation_source(row, sources_cfg, snapshot_path, seed)
    raise ValueError(f"sources.kind = {kind!r}; use analytic or simulation")
