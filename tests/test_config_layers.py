"""Layered configs (issue 15): the defaults live in config/config.yaml; a user config holds only
its changes; `xclusters run --config` and `snakemake --configfile` resolve it the same way."""
from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import yaml

from xclusters.config import (ConfigError, differences, load_config, load_defaults,
                              merge_config)

REPO = Path(__file__).resolve().parents[1]


def _flat_keys(d: dict, prefix: str = "") -> set[str]:
    out = set()
    for k, v in d.items():
        if isinstance(v, dict) and v:
            out |= _flat_keys(v, f"{prefix}{k}.")
        else:
            out.add(f"{prefix}{k}")
    return out


@pytest.mark.parametrize("name", ["test.yaml", "paper.yaml"])
def test_shipped_configs_hold_only_their_differences(name):
    user = yaml.safe_load((REPO / "config" / name).read_text())
    assert set(differences(load_config(REPO / "config" / name))) == _flat_keys(user)


def test_defaults_alone_differ_from_nothing():
    assert differences(load_config()) == {}
    assert load_config() == load_config(REPO / "config" / "config.yaml")


def test_partial_config_merges_nested_keys(tmp_path):
    path = tmp_path / "mine.yaml"
    path.write_text("instruments:\n  erosita:\n    exposure_ks: 4.0\ntrain:\n  mass: {folds: [3]}\n")
    cfg = load_config(path)
    assert cfg["instruments"]["erosita"]["exposure_ks"] == 4.0
    assert cfg["instruments"]["erosita"]["image_pixels"] == 128  # the default, kept
    assert cfg["train"]["mass"]["folds"] == [3]  # lists are replaced, not merged
    assert set(differences(cfg)) == {"instruments.erosita.exposure_ks", "train.mass.folds"}


def test_unknown_key_in_a_partial_config_names_it(tmp_path):
    path = tmp_path / "mine.yaml"
    path.write_text("instruments:\n  erosita:\n    exposure_kss: 4.0\n")
    with pytest.raises(ConfigError, match=r"instruments\.erosita\.exposure_kss"):
        load_config(path)
    path.write_text("evaluat:\n  n_value_bins: 3\n")
    with pytest.raises(ConfigError, match=r"evaluat"):
        load_config(path)


def test_merge_is_snakemakes_merge():
    from snakemake.utils import update_config

    base = load_defaults()
    changes = {"sample": {"n_clusters": 3}, "parallel": {"jobqueue": {"queue": "q"}},
               "train": {"mass": {"folds": [1]}}, "projections": ["z"], "seed": 5,
               "evaluate": {}, "new_section": {"a": {"b": 1}}}
    ours = merge_config(base, changes)
    theirs = yaml.safe_load(yaml.safe_dump(base))
    update_config(theirs, changes)
    assert ours == theirs


def test_check_config_prints_the_differences(tmp_path, capsys):
    from xclusters.cli.main import main

    path = tmp_path / "mine.yaml"
    path.write_text("instruments:\n  erosita:\n    exposure_ks: 4.0\n")
    assert main(["check-config", "--config", str(path)]) == 0
    out = capsys.readouterr().out
    assert "1 setting(s) differ" in out
    assert "instruments.erosita.exposure_ks: 4.0  (default 2.0)" in out
    assert "events.erosita:" in out  # stage fingerprints


@pytest.mark.slow
def test_snakemake_resolves_a_user_config_like_load_config(tmp_path):
    """The resolved config the workflow's jobs read equals :func:`load_config` of the file."""
    path = tmp_path / "mine.yaml"
    path.write_text("run: mine\ninstruments:\n  erosita:\n    exposure_ks: 4.0\n"
                    f"results_dir: {tmp_path / 'results'}\n")
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}:{os.environ.get('PATH', '')}")
    # the resolved config is written when a run starts (onstart), here one of the sample step
    target = tmp_path / "results" / "mine" / "sample.ecsv"
    proc = subprocess.run([sys.executable, "-m", "snakemake", str(target), "--snakefile",
                           str(REPO / "Snakefile"), "--configfile", str(path), "--cores", "1"],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    resolved = yaml.safe_load((tmp_path / "results" / "mine" / "config.resolved.yaml")
                              .read_text())
    assert resolved == load_config(path)


@pytest.mark.slow
def test_wheel_has_schema_and_defaults(tmp_path):
    """A non-editable install works from any directory: check-config and predict --help."""
    wheels = tmp_path / "wheels"
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
                    "-q", "-w", str(wheels), str(REPO)], check=True, timeout=900,
                   capture_output=True)
    (wheel,) = wheels.glob("xclusters-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    assert {"xclusters/data/config.schema.yaml", "xclusters/data/config.defaults.yaml"} <= names
    target = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target",
                    str(target), str(wheel)], check=True, timeout=900, capture_output=True)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = dict(os.environ, PYTHONPATH=str(target))
    for args in (["check-config"], ["predict", "--help"]):
        proc = subprocess.run([sys.executable, "-m", "xclusters.cli.main", *args],
                              cwd=elsewhere, env=env, capture_output=True, text=True,
                              timeout=300)
        assert proc.returncode == 0, proc.stderr[-3000:]
    proc = subprocess.run([sys.executable, "-c", "import xclusters.config as c; "
                           "print(c.schema_path()); print(c.defaults_path())"],
                          cwd=elsewhere, env=env, capture_output=True, text=True)
    assert str(target) in proc.stdout and "config.defaults.yaml" in proc.stdout, proc.stdout
    assert "0 setting(s) differ" in subprocess.run(
        [sys.executable, "-m", "xclusters.cli.main", "check-config"], cwd=elsewhere, env=env,
        capture_output=True, text=True).stdout


def test_unknown_sources_key_is_an_error(tmp_path):
    """sources.* is closed too: a misspelt key in a partial config is not silently dropped."""
    path = tmp_path / "mine.yaml"
    path.write_text("sources:\n  cool_core_fractoin: 0.5\n")
    with pytest.raises(ConfigError, match=r"sources\.cool_core_fractoin"):
        load_config(path)
    path.write_text("sources:\n  density_cool_core: {rc: [0.1]}\n")
    with pytest.raises(ConfigError, match=r"sources\.density_cool_core\.rc"):
        load_config(path)
