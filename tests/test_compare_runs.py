"""``xclusters compare-runs``: the side-by-side table and the issue-16 target decisions."""
from __future__ import annotations

import json
import logging
import re

import pytest

from xclusters.cli.main import main
from xclusters.evaluate.summary import SCHEMA_VERSION, read_summary, summary_path

METRICS = ("dC", "dA", "dS", "dflux", "background")


def _interval(median):
    return {"median": median, "p16": None if median is None else median - 0.01,
            "p84": None if median is None else median + 0.01, "n": 9}


def _superobs(run, medians, truth_flux):
    """Schema-1 superobs summary; ``medians[kind][band]`` = (dC, dA, dS, dflux, background)."""
    return {"schema_version": SCHEMA_VERSION, "kind": "superobs", "run": run,
            "git_commit": "0123456789abcdef0123456789abcdef01234567", "provenance": {},
            "split": "test",
            "superobs": {kind: {band: dict(zip(METRICS, map(_interval, vals)))
                                for band, vals in bands.items()}
                         for kind, bands in medians.items()},
            "truth": {band: {m: _interval(flux if m == "flux" else 0.5)
                             for m in ("C", "A", "S", "flux", "background")}
                      for band, flux in truth_flux.items()}}


def _mass_entry(sigma, mu, slope, n=90):
    return {"n": n, "mu_dex": mu, "sigma_dex": sigma, "scatter_percent": 230.26 * sigma,
            "slope": slope, "fit": "histogram"}


def _mass(run, cnn, lx, lx_5pc):
    return {"schema_version": SCHEMA_VERSION, "kind": "mass", "run": run, "git_commit": None,
            "provenance": {},
            "mass": {"cnn": cnn, "cnn_mid_mass": cnn, "cnn_folds": {"0": cnn},
                     "lx_baseline": {**lx, "aperture_error_frac": 0.0},
                     "lx_baseline_aperture_error": {"0": lx, "0.05": lx_5pc}}}


def _write(path, doc):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(doc))
    return path


# eROSITA and eROSITA-NR medians shared by both runs: (dC, dA, dS, dflux, background)
EROSITA = (0.05, 0.2, 0.3, 0.5, 20.0)
EROSITA_NR = (0.04, 0.1, 0.2, -0.1, -3.0)
TRUTH_FLUX = {"soft": 2.5, "medium": 1.0, "hard": 0.2}


@pytest.fixture()
def runs(tmp_path):
    good = tmp_path / "good"
    # every target met, three of them exactly on the boundary: slope 0.8, |mu| 0.03,
    # |dflux| = 10 % of the truth flux (0.25 of 2.5)
    _write(summary_path(good, "superobs"), _superobs("good", {
        "prediction": {"soft": (0.01, 0.02, 0.03, -0.25, 1.0),
                       "medium": (-0.02, 0.05, 0.1, 0.05, 0.5)},
        "erosita": {"soft": EROSITA, "medium": EROSITA},
        "erosita_nr": {"soft": EROSITA_NR, "medium": EROSITA_NR}}, TRUTH_FLUX))
    _write(summary_path(good, "mass"), _mass("good", _mass_entry(0.05, -0.03, 0.8),
                                             _mass_entry(0.06, 0.01, 0.95),
                                             _mass_entry(0.09, 0.02, 0.9)))
    bad = tmp_path / "bad"
    # soft: |dC| 0.031 > 0.03; |dA| equal to eROSITA's (not below); background exactly
    # 0.1 x eROSITA's (not below); |dflux| 12 % of the truth; medium: eROSITA-NR dS null
    _write(summary_path(bad, "superobs"), _superobs("bad", {
        "prediction": {"soft": (-0.031, 0.2, 0.1, 0.3, 2.0),
                       "medium": (0.0, 0.01, 0.01, 0.0, 0.1)},
        "erosita": {"soft": EROSITA, "medium": EROSITA},
        "erosita_nr": {"soft": EROSITA_NR, "medium": (0.04, 0.1, None, -0.1, -3.0)}},
        TRUTH_FLUX))
    _write(summary_path(bad, "mass"), _mass("bad", _mass_entry(0.44, 0.1, 0.1),
                                            _mass_entry(0.15, 0.0, 1.0),
                                            _mass_entry(0.2, 0.0, 1.0)))
    return good, bad


def _tables(text):
    """Markdown tables of the output: heading -> {first cell: [other cells]}."""
    tables, current = {}, None
    for line in text.splitlines():
        if line.startswith("## "):
            current = tables.setdefault(line[3:], {})
        elif line.startswith("| ") and current is not None and not line.startswith("| ---"):
            cells = [c.strip().replace("\\|", "|")
                     for c in re.split(r"(?<!\\)\|", line.strip()[1:-1])]
            current[cells[0]] = cells[1:]
    return tables


def test_table_and_targets(runs, tmp_path, capsys):
    good, bad = runs
    out_json = tmp_path / "cmp.json"
    assert main(["compare-runs", str(good), str(bad), "--json", str(out_json)]) == 0
    tables = _tables(capsys.readouterr().out)
    side = tables["Runs side by side (test split)"]
    assert side["quantity"] == [str(good), str(bad)]
    assert side["run name"] == ["good", "bad"]
    assert side["git commit"] == ["0123456789", "0123456789"]
    assert side["soft · truth · median flux [ct/s]"] == ["2.5", "2.5"]
    assert side["soft · Prediction · median dC"] == ["0.01", "-0.031"]
    assert side["soft · eROSITA · median background [ct]"] == ["20", "20"]
    assert side["soft · Prediction · median dflux / truth flux [%]"] == ["-10", "12"]
    assert side["medium · eROSITA-NR · median dS"] == ["0.2", "n/a"]
    assert side["mass · CNN · sigma [dex]"] == ["0.05", "0.44"]
    assert side["mass · CNN · n"] == ["90", "90"]
    # the L_X column is the baseline without aperture error, not the 5 % one
    assert side["mass · L_X (no aperture error) · sigma [dex]"] == ["0.06", "0.15"]
    assert not any(k.startswith("hard") for k in side)

    g = tables[f"Issue-16 targets: {good}"]
    assert all(cells[1] == "met" for cells in g.values() if cells[1] != "met/not met")
    assert g["mass: slope >= 0.8"] == ["slope 0.8", "met"]  # borderline
    assert g["mass: |mu| <= 0.03 dex"] == ["|mu| 0.03 dex", "met"]  # borderline
    assert g["mass: sigma <= L_X sigma (aim 0.8x)"][0] == (
        "sigma 0.05 vs L_X 0.06 dex; ratio 0.833 (aim 0.8: not met)")
    assert g["soft: |median dflux| <= 10 % of the truth's median flux"] == [
        "0.25 ct/s = 10 % of 2.5 ct/s", "met"]  # borderline

    b = tables[f"Issue-16 targets: {bad}"]
    assert b["mass: slope >= 0.8"][1] == "not met"
    assert b["mass: |mu| <= 0.03 dex"][1] == "not met"
    assert b["mass: sigma <= L_X sigma (aim 0.8x)"][1] == "not met"
    assert b["soft: |median dC| <= 0.03"] == ["0.031", "not met"]
    assert b["soft: |median dA| below eROSITA's and eROSITA-NR's"] == [
        "0.2 vs 0.2 (eROSITA), 0.1 (eROSITA-NR)", "not met"]  # equal is not below
    assert b["soft: |median dS| below eROSITA's and eROSITA-NR's"][1] == "met"
    assert b["soft: |median background| < 0.1 x eROSITA's"] == [
        "2 ct vs 0.1 x 20 = 2 ct", "not met"]  # borderline: strict
    assert b["soft: |median dflux| <= 10 % of the truth's median flux"][1] == "not met"
    assert b["medium: |median dS| below eROSITA's and eROSITA-NR's"][1] == "n/a"
    assert b["medium: |median dC| <= 0.03"][1] == "met"

    doc = json.loads(out_json.read_text())
    assert [r["label"] for r in doc["runs"]] == [str(good), str(bad)]
    assert doc["runs"][0]["n_met"] == doc["runs"][0]["n_targets"] == 13
    bad_doc = {t["target"]: t for t in doc["runs"][1]["targets"]}
    assert bad_doc["soft: |median background| < 0.1 x eROSITA's"]["met"] is False
    assert bad_doc["medium: |median dS| below eROSITA's and eROSITA-NR's"]["met"] is None
    assert doc["runs"][1]["table"]["mass · CNN · slope"] == pytest.approx(0.1)


def test_single_summary_file(runs, capsys):
    good, _ = runs
    file = summary_path(good, "superobs")
    assert read_summary(file)["kind"] == "superobs"
    assert main(["compare-runs", str(file)]) == 0
    tables = _tables(capsys.readouterr().out)
    side = tables["Runs side by side (test split)"]
    assert side["soft · Prediction · median dA"] == ["0.02"]
    assert side["mass · CNN · sigma [dex]"] == ["n/a"]
    t = tables[f"Issue-16 targets: {file}"]
    assert t["mass: slope >= 0.8"] == ["missing (n/a)", "n/a"]
    assert t["soft: |median dC| <= 0.03"][1] == "met"


def test_directory_without_summaries(runs, tmp_path, capsys, caplog):
    good, _ = runs
    empty = tmp_path / "results" / "never_evaluated"
    empty.mkdir(parents=True)
    with caplog.at_level(logging.ERROR, logger="xclusters"):
        assert main(["compare-runs", str(good), str(empty)]) == 1
    message = caplog.text
    assert str(empty) in message and "Run the evaluation" in message
    assert "evaluation/superobs/summary.json" in message
    assert capsys.readouterr().out == ""  # nothing printed before every path is loaded


def test_reader_round_trip_and_schema_check(tmp_path):
    from xclusters.evaluate.summary import find_summaries, write_summary

    run = tmp_path / "run"
    entry = _mass_entry(0.1, 0.02, 0.85)
    write_summary(summary_path(run, "mass"), "mass", config={"run": "run"}, provenance={},
                  body={"mass": {"cnn": entry}})
    found = find_summaries(run)
    assert list(found) == ["mass"]
    assert found["mass"][1]["mass"]["cnn"]["slope"] == 0.85
    # an evaluation directory and the evaluation/ directory find the same file
    assert find_summaries(run / "evaluation" / "mass")["mass"][0] == found["mass"][0]
    assert find_summaries(run / "evaluation")["mass"][0] == found["mass"][0]
    future = _write(tmp_path / "future.json", {"schema_version": SCHEMA_VERSION + 1,
                                               "kind": "mass"})
    with pytest.raises(ValueError, match="schema_version 2"):
        read_summary(future)
