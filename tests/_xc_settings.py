"""Typed settings for tests: the defaults (config/config.yaml) with a few fields changed."""
from __future__ import annotations

import dataclasses
from functools import lru_cache
from typing import Any

from xclusters.config import load_config
from xclusters.settings import CatalogSettings, EmissionSettings


@lru_cache(maxsize=1)
def _defaults() -> dict:
    return load_config()


def default_settings(cls: type, **changes: Any) -> Any:
    """``cls`` read from the validated defaults, with ``changes`` replaced."""
    return dataclasses.replace(cls.from_config(_defaults()), **changes)


def catalog_settings(**changes: Any) -> CatalogSettings:
    """:class:`CatalogSettings` of the defaults with ``changes`` (e.g. ``source="table"``)."""
    return default_settings(CatalogSettings, **changes)


def emission_settings(**changes: Any) -> EmissionSettings:
    """:class:`EmissionSettings` of the defaults with ``changes`` (e.g. ``model="apec"``)."""
    return default_settings(EmissionSettings, **changes)
