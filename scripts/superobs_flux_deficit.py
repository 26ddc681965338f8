#!/usr/bin/env python
"""Where the super-observation prediction loses flux: the deficit by predicted count level.

The measurement behind README "What limits the unmet targets" (issue 16): on the test split,
the prediction's summed counts against the truth's, split by the predicted counts per pixel.
MAE regression predicts each pixel's median, which for sparse Poisson-like counts lies below
the mean; if that drives the flux deficit, the faint pixels carry more of the deficit than of
the counts.

    python scripts/superobs_flux_deficit.py --dataset results/science/dataset.h5 \\
        --predictions results/science/predictions/superobs_test.h5
"""
from __future__ import annotations

import argparse
from itertools import pairwise

import h5py
import numpy as np

from xclusters.dataset.layout import SUPEROBS_TARGETS
from xclusters.evaluate.run import read_rows
from xclusters.evaluate.superobs import BANDS

#: predicted counts per pixel that bound the levels reported
LEVELS = (0.0, 0.5, 2.0, 10.0, np.inf)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--dataset", required=True, help="dataset.h5 of the run")
    ap.add_argument("--predictions", required=True,
                    help="predictions of predict-dataset (/prediction, /index)")
    a = ap.parse_args(argv)
    with h5py.File(a.predictions, "r") as f:
        pred = np.clip(f["prediction"][()], 0.0, None)
        index = f["index"][()]
    truth = read_rows(a.dataset, SUPEROBS_TARGETS, index)
    print(f"{len(index)} images; counts per band, truth / prediction by predicted level")
    for b, band in enumerate(BANDS):
        p, t = pred[..., b], truth[..., b]
        deficit = t.sum() - p.sum()
        print(f"{band}: prediction / truth total {p.sum() / t.sum():.3f}")
        for lo, hi in pairwise(LEVELS):
            m = (p >= lo) & (p < hi)
            share = (t[m].sum() - p[m].sum()) / deficit if deficit else np.nan
            print(f"  predicted [{lo:g}, {hi:g}) ct: {m.mean():6.1%} of pixels, "
                  f"{t[m].sum() / t.sum():6.1%} of the truth counts, truth / prediction "
                  f"{t[m].sum() / max(p[m].sum(), 1e-12):6.3f}, {share:6.1%} of the deficit")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
