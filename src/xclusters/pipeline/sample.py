"""The sample step: halo catalogue -> ``sample.ecsv``."""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Mapping

import numpy as np

log = logging.getLogger("xclusters.pipeline")

__all__ = ["build_sample"]


def build_sample(config: Mapping[str, Any], out: str | Path) -> Path:
    """Load the configured halo catalogue, draw the sample and write it as ECSV."""
    from ..catalogs.load import load_catalog
    from ..catalogs.sample import draw_sample, write_sample

    table = load_catalog(config["catalog"])
    log.info("catalogue: %d halos (%s)", len(table), config["catalog"]["source"])
    sample = draw_sample(table, config["sample"], int(config["seed"]))
    logm = np.log10(np.asarray(sample["m500c"], dtype=float))
    z = np.asarray(sample["redshift"], dtype=float)
    log.info("sample: %d clusters, log M500c %.2f-%.2f, z %.3f-%.3f", len(sample),
             logm.min(), logm.max(), z.min(), z.max())
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    return write_sample(sample, out, config)
