"""Config validation: every shipped config is valid; errors name key, value and expectation."""
from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml

from xclusters.config import ConfigError, load_config, validate_config

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("name", ["config.yaml", "test.yaml", "paper.yaml"])
def test_shipped_configs_are_valid(name):
    cfg = load_config(REPO / "config" / name)
    assert cfg["seed"] >= 0


@pytest.fixture
def base():
    return yaml.safe_load((REPO / "config" / "config.yaml").read_text())


def test_typo_names_the_key(base):
    cfg = copy.deepcopy(base)
    cfg["instruments"]["erosita"]["image_pixls"] = 64
    with pytest.raises(ConfigError, match=r"instruments\.erosita\.image_pixls"):
        validate_config(cfg)


def test_unknown_instrument_is_rejected(base):
    cfg = copy.deepcopy(base)
    cfg["instruments"]["xmm"] = {"exposure_ks": 10}
    with pytest.raises(ConfigError, match="xmm"):
        validate_config(cfg)


def test_bad_value_names_value_and_expectation(base):
    cfg = copy.deepcopy(base)
    cfg["emission"]["model"] = "apex"
    with pytest.raises(ConfigError, match=r"emission\.model = 'apex'.*apec_table"):
        validate_config(cfg)


def test_crop_larger_than_field(base):
    cfg = copy.deepcopy(base)
    cfg["instruments"]["erosita"]["image_pixels"] = 512
    with pytest.raises(ConfigError, match="field_pixels"):
        validate_config(cfg)


def test_inverted_ranges(base):
    cfg = copy.deepcopy(base)
    cfg["sample"]["z_min"], cfg["sample"]["z_max"] = 0.5, 0.1
    with pytest.raises(ConfigError, match="z_min"):
        validate_config(cfg)


def test_missing_file_and_bad_yaml(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("seed: [1, 2\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(bad)


def test_particle_chunk_that_does_not_fit_the_worker_is_a_config_error():
    """sources.kind: simulation with a photons.chunk_particles too large for half of
    parallel.memory_per_worker_mb is refused before anything is built (the chunk is never
    lowered silently: the photon draws depend on it); analytic sources have no chunks."""
    import copy

    from xclusters.config import ConfigError, load_config, validate_config

    cfg = copy.deepcopy(load_config())
    cfg["parallel"]["memory_per_worker_mb"] = 500
    validate_config(cfg)  # analytic
    cfg["sources"]["kind"] = "simulation"
    with pytest.raises(ConfigError, match=r"photons.chunk_particles = 1000000 .*"
                                          r"memory_per_worker_mb = 500; set "
                                          r"photons.chunk_particles <= 524288"):
        validate_config(cfg)
    cfg["photons"]["chunk_particles"] = 500_000
    validate_config(cfg)
