"""The sample step: halo catalogue -> ``sample.ecsv``."""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Mapping

import numpy as np

log = logging.getLogger("xclusters.pipeline")

__all__ = ["build_sample"]


def build_sample(config: Mapping[str, Any], out: str | Path,
                 neighbours_out: str | Path | None = None) -> Path:
    """Load the configured halo catalogue, draw the sample and write it as ECSV.

    Also writes the sample's light-cone neighbours (``neighbours.ecsv`` beside ``out`` unless
    ``neighbours_out`` is given; no rows when ``sources.include_neighbours`` is false), see
    :mod:`xclusters.catalogs.neighbours`.
    """
    from ..catalogs.load import load_catalog
    from ..catalogs.neighbours import neighbours_for_sample, write_neighbours
    from ..catalogs.sample import draw_sample, write_sample

    table = load_catalog(config["catalog"])
    log.info("catalogue: %d halos (%s)", len(table), config["catalog"]["source"])
    sample = draw_sample(table, config["sample"], int(config["seed"]))
    logm = np.log10(np.asarray(sample["m500c"], dtype=float))
    z = np.asarray(sample["redshift"], dtype=float)
    log.info("sample: %d clusters, log M500c %.2f-%.2f, z %.3f-%.3f", len(sample),
             logm.min(), logm.max(), z.min(), z.max())
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    neighbours = neighbours_for_sample(table, sample, config)
    write_neighbours(neighbours, neighbours_out or Path(out).with_name("neighbours.ecsv"))
    return write_sample(sample, out, config)
