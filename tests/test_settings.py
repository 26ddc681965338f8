"""Typed per-stage settings (issue 15 item 4): every key read exactly, no defaults in code."""
import copy
import dataclasses
import pickle
from pathlib import Path

import pytest
import yaml

from xclusters import settings as S
from xclusters.config import load_config, schema_path
from xclusters.train.settings import MassTrainSettings, SuperobsTrainSettings

TEST_CONFIG = Path(__file__).resolve().parents[1] / "config" / "test.yaml"
CLASSES = [S.CatalogSettings, S.SampleSettings, S.SourcesSettings, S.EmissionSettings,
           S.PhotonsSettings, S.ErositaSettings, S.IdealSettings, S.ChandraSettings,
           S.InstrumentsSettings, S.ParallelSettings, S.DatasetSettings, S.EvaluateSettings,
           SuperobsTrainSettings, MassTrainSettings]


@pytest.fixture(scope="module")
def config():
    return load_config(TEST_CONFIG)


def _schema_keys(dotted: str) -> set[str]:
    with open(schema_path()) as fh:
        node = yaml.safe_load(fh)
    for part in dotted.split("."):
        node = node["properties"][part]
    return set(node["properties"])


@pytest.mark.parametrize("cls", CLASSES, ids=lambda c: c.__name__)
def test_every_schema_key_of_the_section_is_read(cls):
    """No key of the section is left to a ``.get(key, default)`` elsewhere."""
    own = {f.metadata.get("key", f.name) for f in dataclasses.fields(cls)
           if f.metadata.get("section", cls.SECTION) == cls.SECTION}
    assert own == _schema_keys(cls.SECTION)


@pytest.mark.parametrize("cls", CLASSES, ids=lambda c: c.__name__)
def test_values_are_the_configs_and_typed(config, cls):
    s = cls.from_config(config)
    assert cls.from_config(s) is s
    assert pickle.loads(pickle.dumps(s)) == s  # Dask workers receive them
    with pytest.raises(dataclasses.FrozenInstanceError):
        setattr(s, dataclasses.fields(s)[0].name, None)
    for f in dataclasses.fields(s):
        value = getattr(s, f.name)
        where = f.metadata.get("section", cls.SECTION)
        node = config
        for part in [p for p in where.split(".") if p]:
            node = node[part]
        raw = node[f.metadata.get("key", f.name)]
        if isinstance(value, S.Settings):
            assert value.as_dict() == raw
        elif isinstance(value, tuple):
            assert list(value) == raw
        else:
            assert value == raw and (raw is None or type(value) is type(raw)
                                     or (type(value), type(raw)) == (float, int))


def test_instruments_enabled_follows_chandra(config):
    cfg = copy.deepcopy(config)
    assert S.InstrumentsSettings.from_config(cfg).enabled == ["erosita", "ideal",
                                                              "chandra_acisi"]
    cfg["instruments"]["chandra_acisi"]["enabled"] = False
    assert S.InstrumentsSettings.from_config(cfg["instruments"]).enabled == ["erosita", "ideal"]


@pytest.mark.parametrize("cls, path", [
    (S.ParallelSettings, ("parallel", "retries")),
    (S.DatasetSettings, ("projections",)),
    (S.InstrumentsSettings, ("instruments", "chandra_acisi", "fixed_redshift")),
    (S.EmissionSettings, ("emission",)),
    (S.SourcesSettings, ("sources", "min_kT_keV")),
])
def test_a_missing_key_is_an_error_naming_it(config, cls, path):
    cfg = copy.deepcopy(config)
    node = cfg
    for part in path[:-1]:
        node = node[part]
    del node[path[-1]]
    with pytest.raises(S.MissingSetting, match=f"^{'.'.join(path)} is missing"):
        cls.from_config(cfg)


@pytest.mark.parametrize("path, value, text", [
    (("parallel", "n_workers"), "2", "parallel.n_workers = '2': expected an integer"),
    (("sample", "uniform_in_logm_z"), 1, "sample.uniform_in_logm_z = 1: expected true or false"),
    (("evaluate", "gaussian_fit"), "fit", "evaluate.gaussian_fit = 'fit': expected one of"),
    (("dataset", "val_folds"), 8, "dataset.val_folds = 8: expected a list"),
])
def test_a_wrong_type_is_an_error_naming_it(config, path, value, text):
    cfg = copy.deepcopy(config)
    node = cfg
    for part in path[:-1]:
        node = node[part]
    node[path[-1]] = value
    cls = {"parallel": S.ParallelSettings, "sample": S.SampleSettings,
           "evaluate": S.EvaluateSettings, "dataset": S.DatasetSettings}[path[0]]
    with pytest.raises(TypeError, match=text.replace("(", r"\(").replace(")", r"\)")):
        cls.from_config(cfg)


def test_built_once_later_edits_do_not_reach_them(config):
    cfg = copy.deepcopy(config)
    s = S.SourcesSettings.from_config(cfg)
    cfg["sources"]["core_refinement"]["max_levels"] = 99
    assert s.core_refinement["max_levels"] == config["sources"]["core_refinement"]["max_levels"]


def test_one_value_read_exactly(config):
    assert S.setting(config, "seed") == config["seed"]
    assert S.setting(config, "parallel.retries") == config["parallel"]["retries"]
    with pytest.raises(S.MissingSetting, match="^run is missing"):
        S.setting({k: v for k, v in config.items() if k != "run"}, "run")
    with pytest.raises(S.MissingSetting, match="^parallel.nope is missing"):
        S.setting(config, "parallel.nope")
