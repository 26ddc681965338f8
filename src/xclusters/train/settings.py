"""One frozen, typed settings object per training stage, built once from a validated config.

The config loader (:func:`xclusters.config.load_config`) merges config/config.yaml under every
user config and validates it against workflow/schemas/config.schema.yaml, so a validated
config holds every ``train`` key. These classes read those keys exactly -- there are no
defaults here -- and raise :class:`MissingTrainSetting` naming the dotted key
(``train.superobs.patience``) when one is absent, so a default can never disagree with the
schema or config/config.yaml.

* :class:`SuperobsTrainSettings` -- ``train.superobs.*`` plus the shared ``train`` keys
  (paper 000 section 2.3), read by :func:`xclusters.train.superobs.train_superobs`.
* :class:`MassTrainSettings` -- ``train.mass.*`` plus the shared ``train`` keys
  (paper 004 section 2.2), read by :func:`xclusters.train.mass.train_mass_fold`.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Mapping

__all__ = ["MissingTrainSetting", "SuperobsTrainSettings", "MassTrainSettings",
           "train_section"]

log = logging.getLogger("xclusters.train")


class MissingTrainSetting(KeyError):
    """A ``train`` config key is absent; the message names the dotted key."""

    def __str__(self) -> str:  # KeyError would print the message quoted
        return str(self.args[0]) if self.args else ""


def train_section(cfg: Mapping[str, Any]) -> Mapping[str, Any]:
    """The ``train`` section of a full config, or ``cfg`` itself when it is that section.

    Parameters
    ----------
    cfg : mapping
        A validated config (with a ``train`` mapping) or its ``train`` section.

    Returns
    -------
    mapping
        The ``train`` section (not copied).
    """
    if "train" in cfg and isinstance(cfg["train"], Mapping):
        return cfg["train"]
    return cfg


def _require(section: Mapping[str, Any], key: str, where: str) -> Any:
    """``section[key]``, or :class:`MissingTrainSetting` naming ``<where>.<key>``."""
    if not isinstance(section, Mapping):
        raise TypeError(f"{where}: expected a mapping of keys, got {type(section).__name__}")
    if key not in section:
        raise MissingTrainSetting(
            f"{where}.{key} is missing from the config. Load the config with "
            "xclusters.config.load_config (it merges config/config.yaml under the user config "
            "and validates it), or pass every key of workflow/schemas/config.schema.yaml.")
    return section[key]


def _bool(value: Any, key: str) -> bool:
    if not isinstance(value, bool):
        raise TypeError(f"{key} = {value!r}: expected true or false")
    return value


def _shared(tcfg: Mapping[str, Any]) -> dict:
    """The ``train`` keys both stages read."""
    return {"epoch_definition": str(_require(tcfg, "epoch_definition", "train")),
            "mixed_precision": _bool(_require(tcfg, "mixed_precision", "train"),
                                     "train.mixed_precision"),
            "strategy": str(_require(tcfg, "strategy", "train"))}


@dataclass(frozen=True)
class SuperobsTrainSettings:
    """Settings of the super-observation CNN training (paper 000 section 2.3).

    Attributes
    ----------
    epochs : int
        ``train.superobs.epochs``: most epochs (of ``epoch_definition``) to run.
    batch_size : int
        ``train.superobs.batch_size``: images per batch.
    learning_rate : float
        ``train.superobs.learning_rate``: Adam learning rate.
    patience : int
        ``train.superobs.patience``: epochs the validation-loss minimum must hold
        (paper 000: 100).
    mae_weight, concentration_weight, asymmetry_weight, smoothness_weight : float
        ``train.superobs.*_weight``: weights of the loss terms
        (:class:`xclusters.models.morphology.SuperobsLoss`).
    negative_weight : float
        ``train.superobs.negative_weight``: weight of the negative-count penalty (0 = off).
    epoch_definition : str
        ``train.epoch_definition``: ``paper`` (every image x 8 dihedral transforms) or
        ``pass``.
    mixed_precision : bool
        ``train.mixed_precision``.
    strategy : str
        ``train.strategy``: ``default`` or ``mirrored``.
    """

    epochs: int
    batch_size: int
    learning_rate: float
    patience: int
    mae_weight: float
    concentration_weight: float
    asymmetry_weight: float
    smoothness_weight: float
    negative_weight: float
    epoch_definition: str
    mixed_precision: bool
    strategy: str

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> "SuperobsTrainSettings":
        """Read ``train.superobs`` and the shared ``train`` keys, exactly.

        Parameters
        ----------
        config : mapping
            A validated config or its ``train`` section.

        Raises
        ------
        MissingTrainSetting
            A key is absent (the message names it, e.g. ``train.superobs.patience``).
        """
        if isinstance(config, cls):
            return config
        tcfg = train_section(config)
        s = _require(tcfg, "superobs", "train")
        w = "train.superobs"
        return cls(epochs=int(_require(s, "epochs", w)),
                   batch_size=int(_require(s, "batch_size", w)),
                   learning_rate=float(_require(s, "learning_rate", w)),
                   patience=int(_require(s, "patience", w)),
                   mae_weight=float(_require(s, "mae_weight", w)),
                   concentration_weight=float(_require(s, "concentration_weight", w)),
                   asymmetry_weight=float(_require(s, "asymmetry_weight", w)),
                   smoothness_weight=float(_require(s, "smoothness_weight", w)),
                   negative_weight=float(_require(s, "negative_weight", w)),
                   **_shared(tcfg))

    def loss_weights(self) -> dict[str, float]:
        """Keyword arguments of :class:`xclusters.models.morphology.SuperobsLoss`."""
        from xclusters.models.morphology import LOSS_WEIGHT_KEYS

        return {k: getattr(self, k) for k in LOSS_WEIGHT_KEYS}


@dataclass(frozen=True)
class MassTrainSettings:
    """Settings of the mass CNN training (paper 004 section 2.2).

    Attributes
    ----------
    max_epochs : int
        ``train.mass.max_epochs``: epochs before the last model is kept (paper 004: 400).
    batch_size : int
        ``train.mass.batch_size``: images per batch.
    learning_rate : float
        ``train.mass.learning_rate``: Adam learning rate (paper 004: 5e-4).
    folds : tuple of int
        ``train.mass.folds``: test folds to train.
    input_scaling : str
        ``train.mass.input_scaling``: ``log1p``, ``log1p_standardized`` or ``none``.
    redshift_input : bool
        ``train.mass.redshift_input``: the observation's redshift as a second input.
    epoch_definition : str
        ``train.epoch_definition``.
    mixed_precision : bool
        ``train.mixed_precision``.
    strategy : str
        ``train.strategy``.
    """

    max_epochs: int
    batch_size: int
    learning_rate: float
    folds: tuple[int, ...]
    input_scaling: str
    redshift_input: bool
    epoch_definition: str
    mixed_precision: bool
    strategy: str

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> "MassTrainSettings":
        """Read ``train.mass`` and the shared ``train`` keys, exactly.

        Parameters
        ----------
        config : mapping
            A validated config or its ``train`` section.

        Raises
        ------
        MissingTrainSetting
            A key is absent (the message names it, e.g. ``train.mass.max_epochs``).
        """
        if isinstance(config, cls):
            return config
        tcfg = train_section(config)
        m = _require(tcfg, "mass", "train")
        w = "train.mass"
        return cls(max_epochs=int(_require(m, "max_epochs", w)),
                   batch_size=int(_require(m, "batch_size", w)),
                   learning_rate=float(_require(m, "learning_rate", w)),
                   folds=tuple(int(f) for f in _require(m, "folds", w)),
                   input_scaling=str(_require(m, "input_scaling", w)),
                   redshift_input=_bool(_require(m, "redshift_input", w),
                                        "train.mass.redshift_input"),
                   **_shared(tcfg))
