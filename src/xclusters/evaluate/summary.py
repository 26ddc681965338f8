"""``summary.json``: the headline numbers of one evaluation directory, in a stable layout.

Written by both evaluations (:mod:`.run`) next to their tables so that a script can compare
runs without parsing Markdown. Every number comes from the tables the evaluation already
computed (Table 3 of paper 000, the paper-004 mass summary); nothing is recomputed here.
Non-finite values are written as ``null``. :func:`read_summary` reads one file back and
:func:`find_summaries` the summaries of a run directory (``<run>/evaluation/<kind>/summary.json``);
``xclusters compare-runs`` (:mod:`.compare`) uses them.

Layout (``schema_version`` 1)::

    {"schema_version": 1, "kind": "superobs" | "mass", "run": "<run name>",
     "git_commit": "<sha>" | null, "provenance": {...flat provenance record...},
     # kind "superobs":
     "split": "test",
     "superobs": {"<prediction|erosita|erosita_nr>": {"<band>": {"<metric>":
                  {"median": .., "p16": .., "p84": .., "n": ..}}}},
     "truth": {"<band>": {"<C|A|S|flux|background>": {"median": .., "p16": .., "p84": .., "n": ..}}},
     # kind "mass":
     "mass": {"cnn": {"sigma_dex", "mu_dex", "slope", "n", ...},
              "cnn_mid_mass": {...}, "cnn_folds": {"<k>": {...}},
              "lx_baseline": {...},             # exact aperture (error 0), else the first
              "lx_baseline_aperture_error": {"<frac>": {...}}}}

Super-observation metrics are the differences observation - truth of paper 000 Table 3:
``dC``, ``dA``, ``dS`` (R500c morphology), ``dflux`` (counts/s) and ``background`` (counts on
the zero pixels of the smoothed truth; the truth has none there, so the difference is the
value). Mass entries: ``sigma_dex`` and ``mu_dex`` of the Gaussian fit of
delta = log M_pred - log M_true (paper 004 Fig. 4, ``evaluate.gaussian_fit``), ``slope`` the
least-squares slope of log M_pred on log M_true, ``n`` the number of images.
"""
from __future__ import annotations

import json
import logging
import math
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from ..io import atomic_write_text
from ..settings import setting

__all__ = ["SCHEMA_VERSION", "SUMMARY_NAME", "SUMMARY_KINDS", "EVALUATION_DIR",
           "SUPEROBS_SUMMARY_METRICS", "superobs_summary", "mass_entry", "git_commit",
           "write_summary", "summary_path", "read_summary", "find_summaries"]

log = logging.getLogger("xclusters.evaluate")

SCHEMA_VERSION = 1
#: File name inside each evaluation directory.
SUMMARY_NAME = "summary.json"
#: Evaluation kinds with a summary; each is the name of its directory under
#: ``<run>/evaluation/`` (workflow/rules/common.smk, ``evaluation_outputs``).
SUMMARY_KINDS = ("superobs", "mass")
#: Directory of a run holding the evaluation directories.
EVALUATION_DIR = "evaluation"
#: Table-3 metric -> summary key (differences observation - truth; background is a value).
SUPEROBS_SUMMARY_METRICS = {"C": "dC", "A": "dA", "S": "dS", "flux": "dflux",
                            "background": "background"}
#: Keys of a mass entry taken from a mass-summary row (see :func:`mass_entry`).
_MASS_KEYS = ("n", "mu_dex", "sigma_dex", "scatter_percent", "median_dex", "mu_mle_dex",
              "sigma_mle_dex", "slope", "fit")


def _clean(value: Any) -> Any:
    """JSON-safe: numpy scalars to Python, non-finite floats to None, recursively."""
    if isinstance(value, Mapping):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    if isinstance(value, (bytes, np.bytes_)):
        return value.decode()
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        v = float(value)
        return v if math.isfinite(v) else None
    return value


def _interval(median, p16, p84, n) -> dict:
    return {"median": median, "p16": p16, "p84": p84, "n": n}


def superobs_summary(table3, per_image, bands: Sequence[str], kind_labels: Mapping[str, str]
                     ) -> dict:
    """The ``superobs`` and ``truth`` blocks from the evaluation's Table 3 and per-image table.

    Parameters
    ----------
    table3 : astropy.table.Table
        :func:`xclusters.evaluate.superobs.evaluate_superobs` ``table3`` (``kind`` holds the
        display labels, ``<metric>_median``/``_p16``/``_p84``/``_n`` per Table-3 metric).
    per_image : astropy.table.Table
        Its ``per_image`` table (``<metric>_<band>_truth`` columns).
    bands : sequence of str
        Band names.
    kind_labels : mapping
        Internal kind name -> label used in ``table3["kind"]``.

    Returns
    -------
    dict
        ``{"superobs": {kind: {band: {metric: interval}}}, "truth": {band: {metric: ...}}}``.
    """
    from .stats import median_interval

    label_to_kind = {v: k for k, v in kind_labels.items()}
    out: dict[str, dict] = {}
    for row in table3:
        kind = label_to_kind.get(str(row["kind"]), str(row["kind"]))
        band = str(row["band"])
        out.setdefault(kind, {})[band] = {
            key: _interval(row[f"{m}_median"], row[f"{m}_p16"], row[f"{m}_p84"], row[f"{m}_n"])
            for m, key in SUPEROBS_SUMMARY_METRICS.items()}
    truth = {band: {m: _interval(*median_interval(per_image[f"{m}_{band}_truth"],
                                                  f"truth {band} {m}"))
                    for m in SUPEROBS_SUMMARY_METRICS}
             for band in bands}
    return {"superobs": out, "truth": truth}


def mass_entry(row: Mapping[str, Any]) -> dict:
    """One mass entry (``sigma_dex``, ``mu_dex``, ``slope``, ``n``, ...) from a summary row."""
    return {k: row[k] for k in _MASS_KEYS if k in row}


def git_commit(start: str | Path | None = None) -> str | None:
    """The commit of the source checkout holding this package (None outside a checkout)."""
    import subprocess

    where = Path(start) if start is not None else Path(__file__).resolve().parent
    try:
        res = subprocess.run(["git", "-C", str(where), "rev-parse", "HEAD"],
                             capture_output=True, text=True, timeout=5, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    sha = res.stdout.strip()
    return sha if res.returncode == 0 and len(sha) == 40 else None


def write_summary(path: str | Path, kind: str, *, config: Mapping[str, Any],
                  provenance: Mapping[str, Any], body: Mapping[str, Any]) -> Path:
    """Write ``summary.json`` (layout in the module docstring) atomically.

    Parameters
    ----------
    path : path-like
        Output file.
    kind : {"superobs", "mass"}
        Which evaluation.
    config : mapping
        The validated run config; its ``run`` name is recorded.
    provenance : mapping
        Flat provenance record of the evaluation.
    body : mapping
        The kind-specific blocks (``superobs``/``truth``/``split`` or ``mass``).
    """
    if kind not in SUMMARY_KINDS:
        raise ValueError(f"kind = {kind!r}: expected 'superobs' or 'mass'")
    doc = {"schema_version": SCHEMA_VERSION, "kind": kind,
           "run": setting(config, "run"), "git_commit": git_commit(),
           "provenance": dict(provenance), **body}
    text = json.dumps(_clean(doc), indent=1, sort_keys=False, allow_nan=False)
    log.info("summary written to %s", path)
    return atomic_write_text(path, text + "\n")


def summary_path(run_dir: str | Path, kind: str) -> Path:
    """``<run_dir>/evaluation/<kind>/summary.json`` (the test-split evaluation of ``kind``)."""
    if kind not in SUMMARY_KINDS:
        raise ValueError(f"kind = {kind!r}: expected one of {SUMMARY_KINDS}")
    return Path(run_dir) / EVALUATION_DIR / kind / SUMMARY_NAME


def read_summary(path: str | Path) -> dict:
    """Read one ``summary.json`` and check its ``schema_version`` and ``kind``.

    Raises
    ------
    ValueError
        Not JSON, another schema version or an unknown kind (the message names the file).
    """
    path = Path(path)
    try:
        doc = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path}: not a valid summary.json ({exc})") from None
    if not isinstance(doc, dict) or doc.get("schema_version") != SCHEMA_VERSION:
        found = doc.get("schema_version") if isinstance(doc, dict) else None
        raise ValueError(f"{path}: schema_version {found!r}, expected {SCHEMA_VERSION} "
                         f"(xclusters.evaluate.summary); rerun the evaluation with this version.")
    if doc.get("kind") not in SUMMARY_KINDS:
        raise ValueError(f"{path}: kind {doc.get('kind')!r}, expected one of {SUMMARY_KINDS}")
    return doc


def find_summaries(path: str | Path) -> dict[str, tuple[Path, dict]]:
    """The summaries at ``path``: ``{kind: (file, document)}`` for those that exist.

    ``path`` is a run directory (``results/<run>``: ``evaluation/superobs`` and
    ``evaluation/mass`` are read), its ``evaluation`` directory, one evaluation directory, or a
    ``summary.json`` file. Returns an empty dict when nothing is found.
    """
    path = Path(path)
    if path.is_file():
        candidates = [path]
    elif (path / SUMMARY_NAME).is_file():
        candidates = [path / SUMMARY_NAME]
    elif path.name == EVALUATION_DIR:
        candidates = [path / kind / SUMMARY_NAME for kind in SUMMARY_KINDS]
    else:
        candidates = [summary_path(path, kind) for kind in SUMMARY_KINDS]
    found: dict[str, tuple[Path, dict]] = {}
    for file in candidates:
        if file.is_file():
            doc = read_summary(file)
            found[doc["kind"]] = (file, doc)
    return found
