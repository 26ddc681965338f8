"""Reading the ``<stem>.history.csv`` files of Keras' ``CSVLogger`` (no TensorFlow import).

Used by the training (resume state) and by the evaluation's learning curves
(:mod:`xclusters.evaluate.learning_curves`).
"""
from __future__ import annotations

import csv
from pathlib import Path

__all__ = ["read_history"]


def read_history(path: str | Path) -> list[dict]:
    """Rows of a ``CSVLogger`` file as dicts of floats; repeated epochs keep the last row.

    ``epoch`` is Keras' 0-based epoch index; a missing or empty file gives ``[]``.
    """
    p = Path(path)
    if not p.is_file() or p.stat().st_size == 0:
        return []
    rows: dict[int, dict] = {}
    with open(p, newline="") as fh:
        for row in csv.DictReader(fh):
            try:
                rec = {k: float(v) for k, v in row.items() if k is not None and v not in ("", None)}
            except ValueError:
                continue
            if "epoch" in rec:
                rows[int(rec["epoch"])] = rec
    return [rows[k] for k in sorted(rows)]
