"""``xclusters compare-runs``: runs side by side and the issue-16 targets, from ``summary.json``.

Reads the summaries written by the evaluations (layout and reader in :mod:`.summary`), prints
one Markdown table with a column per run (super observation: median dC, dA, dS, background
and dflux of eROSITA, eROSITA-NR and the prediction in the soft and medium bands, dflux as a
percentage of the truth's median flux; mass: sigma, mu, slope and n of the CNN and of the
core-excised L_X baseline without aperture error), then per run the issue-16 targets, each
as ``target | value | met/not met``. Nothing is recomputed from images.

Targets (issue 16, science run, test data only)
-----------------------------------------------
* mass: slope of log M_pred on log M_true >= 0.8; |mu| <= 0.03 dex; sigma <= the L_X
  baseline's sigma (the ratio sigma_CNN / sigma_LX is reported; aim 0.8);
* super observation, soft and medium bands, prediction: |median dA| and |median dS| below
  both eROSITA's and eROSITA-NR's; |median dC| <= 0.03; |median background| < 0.1 x
  eROSITA's; |median dflux| <= 10 % of the truth's median flux.

A target whose numbers are missing (no summary of that kind, ``null`` values) is ``n/a``.
"""
from __future__ import annotations

import json
import logging
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

from ..io import atomic_write_text
from .summary import (SUMMARY_KINDS, SUMMARY_NAME, SUPEROBS_SUMMARY_METRICS, find_summaries,
                      summary_path)
from .superobs import KIND_LABELS, KINDS

__all__ = ["TARGET_BANDS", "MASS_SLOPE_MIN", "MASS_ABS_MU_MAX_DEX", "MASS_SIGMA_RATIO_AIM",
           "SUPEROBS_ABS_DC_MAX", "BACKGROUND_FRACTION_MAX", "DFLUX_FRACTION_MAX",
           "RunSummaries", "load_run", "table_rows", "evaluate_targets", "compare_markdown",
           "compare_document", "compare_runs"]

log = logging.getLogger("xclusters.evaluate")

# Issue 16, "Targets" (science run, test data only).
#: Bands whose super-observation targets are checked.
TARGET_BANDS = ("soft", "medium")
#: Minimum slope of log M_pred on log M_true.
MASS_SLOPE_MIN = 0.8
#: Maximum |mu| of delta = log M_pred - log M_true (dex).
MASS_ABS_MU_MAX_DEX = 0.03
#: sigma_CNN / sigma_LX aimed at (the target itself is a ratio <= 1).
MASS_SIGMA_RATIO_AIM = 0.8
#: Maximum |median dC| of the prediction.
SUPEROBS_ABS_DC_MAX = 0.03
#: |median background| of the prediction must stay below this fraction of eROSITA's.
BACKGROUND_FRACTION_MAX = 0.1
#: Maximum |median dflux| as a fraction of the truth's median flux.
DFLUX_FRACTION_MAX = 0.10

#: Table metrics in display order (summary keys, :data:`.summary.SUPEROBS_SUMMARY_METRICS`).
_TABLE_METRICS = ("dC", "dA", "dS", "background", "dflux")
_UNITS = {"background": " [ct]", "dflux": " [ct/s]"}
#: Mass entries shown: summary key -> label.
_MASS_METHODS = {"cnn": "CNN", "lx_baseline": "L_X (no aperture error)"}
_MASS_FIELDS = (("sigma_dex", "sigma [dex]"), ("mu_dex", "mu [dex]"), ("slope", "slope"),
                ("n", "n"))
_NA = "n/a"


@dataclass
class RunSummaries:
    """The summaries of one run (or one ``summary.json``) given on the command line."""

    label: str
    path: Path
    docs: dict[str, dict] = field(default_factory=dict)
    files: dict[str, Path] = field(default_factory=dict)

    def get(self, kind: str, *keys: str) -> Any:
        """``docs[kind][k0][k1]...``, or None when any level is missing."""
        node: Any = self.docs.get(kind)
        for key in keys:
            if not isinstance(node, dict) or key not in node:
                return None
            node = node[key]
        return node


def load_run(path: str | Path, label: str | None = None) -> RunSummaries:
    """The superobs and mass summaries at ``path`` (see :func:`.summary.find_summaries`).

    Raises
    ------
    FileNotFoundError
        ``path`` holds no summary at all.
    """
    path = Path(path)
    found = find_summaries(path)
    if not found:
        if not path.exists():
            where = "does not exist"
        elif path.is_dir():
            where = ("holds no " + " or ".join(str(summary_path(path, k).relative_to(path))
                                               for k in SUMMARY_KINDS))
        else:
            where = "is not a summary"
        raise FileNotFoundError(
            f"{path}: {where}; no {SUMMARY_NAME} to compare. Run the evaluation first "
            f"(`xclusters run --config <config>` writes <results>/<run>/evaluation/"
            f"{{superobs,mass}}/{SUMMARY_NAME}).")
    run = RunSummaries(label or str(path), path)
    for kind, (file, doc) in found.items():
        run.docs[kind] = doc
        run.files[kind] = file
    return run


# --------------------------------------------------------------------------- numbers
def _num(value: Any) -> float | None:
    """A finite float, or None."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    v = float(value)
    return v if math.isfinite(v) else None


def _fmt(value: Any, digits: int = 4) -> str:
    if value is None:
        return _NA
    if isinstance(value, str):
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    v = _num(value)
    return _NA if v is None else f"{v:.{digits}g}"


def _median(run: RunSummaries, kind: str, band: str, metric: str) -> float | None:
    return _num(run.get("superobs", "superobs", kind, band, metric, "median"))


def _truth_flux(run: RunSummaries, band: str) -> float | None:
    return _num(run.get("superobs", "truth", band, "flux", "median"))


def _lx(run: RunSummaries) -> dict | None:
    """The L_X baseline without aperture error, or None."""
    exact = run.get("mass", "mass", "lx_baseline_aperture_error", "0")
    if isinstance(exact, dict):
        return exact
    lx = run.get("mass", "mass", "lx_baseline")
    if isinstance(lx, dict):
        frac = _num(lx.get("aperture_error_frac", 0.0))
        if frac == 0.0:
            return lx
        log.warning("%s: the L_X baseline has aperture error %s, not 0; not compared.",
                    run.files.get("mass"), lx.get("aperture_error_frac"))
    return None


def _mass_entry(run: RunSummaries, method: str) -> dict | None:
    if method == "lx_baseline":
        return _lx(run)
    entry = run.get("mass", "mass", method)
    return entry if isinstance(entry, dict) else None


def _percent(num: float | None, den: float | None) -> float | None:
    if num is None or den is None or den == 0:
        return None
    return 100.0 * num / den


def table_rows(run: RunSummaries) -> list[tuple[str, Any]]:
    """``(row label, value)`` of the comparison table for one run, in display order."""
    rows: list[tuple[str, Any]] = [
        ("run name", next((d.get("run") for d in run.docs.values() if d.get("run")), None)),
        ("git commit", next((str(d["git_commit"])[:10] for d in run.docs.values()
                             if d.get("git_commit")), None)),
        ("superobs split", run.get("superobs", "split")),
    ]
    for band in TARGET_BANDS:
        flux = _truth_flux(run, band)
        rows.append((f"{band} · truth · median flux [ct/s]", flux))
        for kind in KINDS:
            label = KIND_LABELS[kind]
            for metric in _TABLE_METRICS:
                rows.append((f"{band} · {label} · median {metric}{_UNITS.get(metric, '')}",
                             _median(run, kind, band, metric)))
            rows.append((f"{band} · {label} · median dflux / truth flux [%]",
                         _percent(_median(run, kind, band, "dflux"), flux)))
    for method, name in _MASS_METHODS.items():
        entry = _mass_entry(run, method) or {}
        for key, text in _MASS_FIELDS:
            value = entry.get(key)
            rows.append((f"mass · {name} · {text}",
                         int(value) if key == "n" and _num(value) is not None else _num(value)))
    return rows


# --------------------------------------------------------------------------- targets
def _target(name: str, value: str, met: bool | None) -> dict:
    return {"target": name, "value": value, "met": met,
            "status": _NA if met is None else ("met" if met else "not met")}


def _check(name: str, numbers: Sequence[float | None],
           rule: Callable[..., bool], text: Callable[..., str]) -> dict:
    """A target from its numbers: n/a when one is missing, else ``rule(*numbers)``."""
    if any(v is None for v in numbers):
        shown = ", ".join(_fmt(v) for v in numbers)
        return _target(name, f"missing ({shown})", None)
    return _target(name, text(*numbers), bool(rule(*numbers)))


def evaluate_targets(run: RunSummaries) -> list[dict]:
    """The issue-16 targets of one run: ``[{"target", "value", "met", "status"}, ...]``.

    ``met`` is True, False or None (numbers missing; ``status`` ``"n/a"``).
    """
    out = []
    cnn = _mass_entry(run, "cnn") or {}
    lx = _lx(run) or {}
    out.append(_check(f"mass: slope >= {MASS_SLOPE_MIN:g}", [_num(cnn.get("slope"))],
                      lambda s: s >= MASS_SLOPE_MIN, lambda s: f"slope {_fmt(s)}"))
    out.append(_check(f"mass: |mu| <= {MASS_ABS_MU_MAX_DEX:g} dex", [_num(cnn.get("mu_dex"))],
                      lambda m: abs(m) <= MASS_ABS_MU_MAX_DEX,
                      lambda m: f"|mu| {_fmt(abs(m))} dex"))

    def sigma_text(s_cnn: float, s_lx: float) -> str:
        ratio = s_cnn / s_lx if s_lx > 0 else math.inf
        return (f"sigma {_fmt(s_cnn)} vs L_X {_fmt(s_lx)} dex; ratio {ratio:.3g} "
                f"(aim {MASS_SIGMA_RATIO_AIM:g}: {'met' if ratio <= MASS_SIGMA_RATIO_AIM else 'not met'})")

    out.append(_check(f"mass: sigma <= L_X sigma (aim {MASS_SIGMA_RATIO_AIM:g}x)",
                      [_num(cnn.get("sigma_dex")), _num(lx.get("sigma_dex"))],
                      lambda a, b: a <= b, sigma_text))
    ero, nr = KIND_LABELS["erosita"], KIND_LABELS["erosita_nr"]
    for band in TARGET_BANDS:
        pred = {m: _median(run, "prediction", band, m) for m in _TABLE_METRICS}
        for metric in ("dA", "dS"):
            numbers = [pred[metric], _median(run, "erosita", band, metric),
                       _median(run, "erosita_nr", band, metric)]
            out.append(_check(
                f"{band}: |median {metric}| below {ero}'s and {nr}'s", numbers,
                lambda p, e, n: abs(p) < abs(e) and abs(p) < abs(n),
                lambda p, e, n: (f"{_fmt(abs(p))} vs {_fmt(abs(e))} ({ero}), "
                                 f"{_fmt(abs(n))} ({nr})")))
        out.append(_check(f"{band}: |median dC| <= {SUPEROBS_ABS_DC_MAX:g}", [pred["dC"]],
                          lambda c: abs(c) <= SUPEROBS_ABS_DC_MAX,
                          lambda c: f"{_fmt(abs(c))}"))
        out.append(_check(
            f"{band}: |median background| < {BACKGROUND_FRACTION_MAX:g} x {ero}'s",
            [pred["background"], _median(run, "erosita", band, "background")],
            lambda p, e: abs(p) < BACKGROUND_FRACTION_MAX * abs(e),
            lambda p, e: (f"{_fmt(abs(p))} ct vs {BACKGROUND_FRACTION_MAX:g} x {_fmt(abs(e))}"
                          f" = {_fmt(BACKGROUND_FRACTION_MAX * abs(e))} ct")))
        out.append(_check(
            f"{band}: |median dflux| <= {100 * DFLUX_FRACTION_MAX:g} % of the truth's median "
            f"flux", [pred["dflux"], _truth_flux(run, band)],
            lambda d, f: abs(d) <= DFLUX_FRACTION_MAX * abs(f),
            lambda d, f: (f"{_fmt(abs(d))} ct/s = "
                          f"{_fmt(_percent(abs(d), abs(f)), 3)} % of {_fmt(f)} ct/s")))
    return out


# --------------------------------------------------------------------------- output
def _md_row(cells: Sequence[str]) -> str:
    return "| " + " | ".join(str(c).replace("|", "\\|") for c in cells) + " |"


def compare_markdown(runs: Sequence[RunSummaries]) -> str:
    """The comparison table (one column per run) and one targets table per run."""
    lines = ["## Runs side by side (test split)", "",
             _md_row(["quantity"] + [r.label for r in runs]),
             _md_row(["---"] * (len(runs) + 1))]
    columns = [table_rows(r) for r in runs]
    for i, (name, _) in enumerate(columns[0]):
        lines.append(_md_row([name] + [_fmt(col[i][1]) for col in columns]))
    for run in runs:
        targets = evaluate_targets(run)
        n_met = sum(t["met"] is True for t in targets)
        lines += ["", f"## Issue-16 targets: {run.label}", "",
                  _md_row(["target", "value", "met/not met"]), _md_row(["---"] * 3)]
        lines += [_md_row([t["target"], t["value"], t["status"]]) for t in targets]
        lines += ["", f"{n_met} of {len(targets)} targets met"
                  + (f" ({sum(t['met'] is None for t in targets)} n/a)."
                     if any(t["met"] is None for t in targets) else ".")]
    return "\n".join(lines) + "\n"


def compare_document(runs: Sequence[RunSummaries]) -> dict:
    """The comparison as a JSON-ready dict (same content as :func:`compare_markdown`)."""
    out = []
    for run in runs:
        targets = evaluate_targets(run)
        out.append({"label": run.label, "path": str(run.path),
                    "files": {k: str(v) for k, v in run.files.items()},
                    "table": {name: value for name, value in table_rows(run)},
                    "targets": targets,
                    "n_met": sum(t["met"] is True for t in targets),
                    "n_targets": len(targets)})
    return {"summary_metrics": list(SUPEROBS_SUMMARY_METRICS.values()), "runs": out}


def compare_runs(paths: Sequence[str | Path], json_out: str | Path | None = None) -> str:
    """Load every path (all before any output), return the Markdown; optionally write JSON.

    Raises
    ------
    FileNotFoundError
        A path holds no summary (see :func:`load_run`).
    """
    runs = [load_run(p) for p in paths]
    text = compare_markdown(runs)
    if json_out is not None:
        from ..io import check_output_path

        check_output_path(json_out, [f for r in runs for f in r.files.values()],
                          option="--json")
        doc = compare_document(runs)
        atomic_write_text(json_out, json.dumps(doc, indent=1, allow_nan=False) + "\n")
        log.info("comparison written to %s", json_out)
    return text
