"""One frozen, typed settings object per training stage, built once from a validated config.

The config loader (:func:`xclusters.config.load_config`) merges config/config.yaml under every
user config and validates it against workflow/schemas/config.schema.yaml, so a validated
config holds every ``train`` key. These classes read those keys exactly (the generic reader
of :mod:`xclusters.settings`) -- there are no
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
from dataclasses import dataclass, field
from typing import ClassVar, Literal

from ..settings import MissingSetting, Settings

__all__ = ["MissingTrainSetting", "SuperobsTrainSettings", "MassTrainSettings"]

log = logging.getLogger("xclusters.train")


#: the one missing-key error of :mod:`xclusters.settings` (a KeyError naming the dotted key)
MissingTrainSetting = MissingSetting


#: the keys both trainings share, read from ``train`` itself (not ``train.<model>``)
_SHARED = {"metadata": {"section": "train"}}


@dataclass(frozen=True)
class SuperobsTrainSettings(Settings):
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
    epoch_definition: Literal["paper", "pass"] = field(**_SHARED)
    mixed_precision: bool = field(**_SHARED)
    strategy: Literal["default", "mirrored"] = field(**_SHARED)

    SECTION: ClassVar[str] = "train.superobs"


    def loss_weights(self) -> dict[str, float]:
        """Keyword arguments of :class:`xclusters.models.morphology.SuperobsLoss`."""
        from xclusters.models.morphology import LOSS_WEIGHT_KEYS

        return {k: getattr(self, k) for k in LOSS_WEIGHT_KEYS}


@dataclass(frozen=True)
class MassTrainSettings(Settings):
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
    input_scaling: Literal["log1p", "log1p_standardized", "none"]
    redshift_input: bool
    epoch_definition: Literal["paper", "pass"] = field(**_SHARED)
    mixed_precision: bool = field(**_SHARED)
    strategy: Literal["default", "mirrored"] = field(**_SHARED)

    SECTION: ClassVar[str] = "train.mass"

