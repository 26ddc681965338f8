"""Typed training settings (issue 15 item 4): exact values, no defaults, frozen."""
import copy
import dataclasses
from pathlib import Path

import pytest

from xclusters.config import load_config
from xclusters.stages import STAGE_KEYS
from xclusters.train.settings import (MassTrainSettings, MissingTrainSetting,
                                      SuperobsTrainSettings)

TEST_CONFIG = Path(__file__).resolve().parents[1] / "config" / "test.yaml"


@pytest.fixture(scope="module")
def config():
    return load_config(TEST_CONFIG)


def test_superobs_settings_from_the_test_config(config):
    """config/test.yaml sets batch_size 2 and epoch_definition pass; the rest is the default."""
    s = SuperobsTrainSettings.from_config(config)
    assert s == SuperobsTrainSettings(
        epochs=1, batch_size=2, learning_rate=1.0e-3, patience=100, mae_weight=1.0,
        concentration_weight=1.0, asymmetry_weight=1.0, smoothness_weight=1.0,
        negative_weight=3.0, epoch_definition="pass", mixed_precision=False,
        strategy="default")
    assert type(s.epochs) is int and type(s.learning_rate) is float
    # the train section alone gives the same object; a settings object passes through
    assert SuperobsTrainSettings.from_config(config["train"]) == s
    assert SuperobsTrainSettings.from_config(s) is s
    assert s.loss_weights() == {"mae_weight": 1.0, "concentration_weight": 1.0,
                                "asymmetry_weight": 1.0, "smoothness_weight": 1.0,
                                "negative_weight": 3.0}


def test_mass_settings_from_the_test_config(config):
    """config/test.yaml: max_epochs 1, batch_size 8, folds [0]."""
    m = MassTrainSettings.from_config(config)
    assert m == MassTrainSettings(
        max_epochs=1, batch_size=8, learning_rate=5.0e-4, folds=(0,),
        input_scaling="log1p_standardized", redshift_input=False, epoch_definition="pass",
        mixed_precision=False, strategy="default")
    assert MassTrainSettings.from_config(config["train"]) == m


@pytest.mark.parametrize("cls, path", [
    (SuperobsTrainSettings, ("superobs", "patience")),
    (SuperobsTrainSettings, ("superobs", "negative_weight")),
    (SuperobsTrainSettings, ("epoch_definition",)),
    (SuperobsTrainSettings, ("superobs",)),
    (MassTrainSettings, ("mass", "max_epochs")),
    (MassTrainSettings, ("mass", "input_scaling")),
    (MassTrainSettings, ("strategy",)),
])
def test_a_missing_key_is_an_error_naming_it(config, cls, path):
    cfg = copy.deepcopy(config)
    section = cfg["train"]
    for key in path[:-1]:
        section = section[key]
    del section[path[-1]]
    dotted = ".".join(("train",) + path)
    with pytest.raises(MissingTrainSetting, match=f"^{dotted} is missing") as err:
        cls.from_config(cfg)
    assert isinstance(err.value, KeyError)
    with pytest.raises(KeyError, match=f"^{dotted} is missing"):  # train section alone
        cls.from_config(cfg["train"])


def test_a_non_boolean_flag_is_refused(config):
    cfg = copy.deepcopy(config)
    cfg["train"]["mass"]["redshift_input"] = "false"
    with pytest.raises(TypeError, match="train.mass.redshift_input"):
        MassTrainSettings.from_config(cfg)


def test_settings_are_frozen(config):
    s = SuperobsTrainSettings.from_config(config)
    m = MassTrainSettings.from_config(config)
    with pytest.raises(dataclasses.FrozenInstanceError):
        s.epochs = 5
    with pytest.raises(dataclasses.FrozenInstanceError):
        m.max_epochs = 5
    # built once: later edits of the config dict do not reach the settings
    config["train"]["mass"]["folds"].append(1)
    assert m.folds == (0,)
    config["train"]["mass"]["folds"].pop()


@pytest.mark.parametrize("cls, stage, prefix, exempt", [
    (SuperobsTrainSettings, "train_superobs", "superobs", set()),
    (MassTrainSettings, "train_mass", "mass", {"folds"}),  # picks folds, not how one trains
])
def test_every_setting_is_in_the_stage_fingerprint(cls, stage, prefix, exempt):
    """A setting that changes the trained model must rerun its stage (STAGE_KEYS)."""
    keys = STAGE_KEYS[stage]
    for f in dataclasses.fields(cls):
        if f.name in exempt:
            continue
        shared = f"train.{f.name}"
        own = f"train.{prefix}.{f.name}"
        assert any(k in (shared, own, f"train.{prefix}") for k in keys), (stage, f.name)
