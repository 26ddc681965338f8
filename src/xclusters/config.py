"""Load and validate a run configuration against ``workflow/schemas/config.schema.yaml``.

Configs are layered: the defaults live in one file, ``config/config.yaml`` (installed as
``xclusters/data/config.defaults.yaml``), and a user config holds only the keys it changes.
:func:`load_config` merges the user file over the defaults the way Snakemake merges
``--configfile`` over the Snakefile's ``configfile:`` (nested mappings merged key by key, any
other value, lists included, replaced), so ``xclusters run --config mine.yaml`` and
``snakemake --configfile mine.yaml`` resolve to the same config.

Errors name the key, the value and what was expected, e.g.::

    ConfigError: config/config.yaml: instruments.erosita.image_pixls: unknown key
    (allowed: exposure_ks, arf, ...). Fix the spelling or remove the key.
"""
from __future__ import annotations

import copy
from pathlib import Path
from typing import Any, Mapping

import yaml

__all__ = ["ConfigError", "schema_path", "defaults_path", "load_defaults", "merge_config",
           "differences", "load_config", "validate_config", "run_dir", "check_results_dir"]


class ConfigError(ValueError):
    """A configuration value is missing, misspelt or out of range."""


def schema_path() -> Path:
    """Path of the config JSON schema (YAML), in the repository or installed alongside."""
    here = Path(__file__).resolve()
    candidates = [here.parents[2] / "workflow" / "schemas" / "config.schema.yaml",
                  here.parent / "data" / "config.schema.yaml"]
    for cand in candidates:
        if cand.is_file():
            return cand
    raise FileNotFoundError(f"config schema not found in {candidates}")


def defaults_path() -> Path:
    """Path of the defaults file: ``config/config.yaml`` in a checkout, else the installed copy."""
    here = Path(__file__).resolve()
    candidates = [here.parents[2] / "config" / "config.yaml",
                  here.parent / "data" / "config.defaults.yaml"]
    for cand in candidates:
        if cand.is_file():
            return cand
    raise FileNotFoundError(f"config defaults not found in {candidates}")


def load_defaults() -> dict:
    """The default config (not validated; :func:`load_config` validates the merged result)."""
    with open(defaults_path()) as fh:
        return yaml.safe_load(fh) or {}


def merge_config(base: Mapping[str, Any], changes: Mapping[str, Any]) -> dict:
    """``changes`` over ``base``: mappings merged key by key, other values replaced.

    The same rule as Snakemake's ``update_config`` (``--configfile`` over ``configfile:``).
    """
    out = copy.deepcopy(dict(base))
    for key, value in changes.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = merge_config(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def differences(config: Mapping[str, Any], base: Mapping[str, Any] | None = None,
                prefix: str = "") -> dict[str, tuple[Any, Any]]:
    """``{dotted key: (default, value)}`` of every setting of ``config`` that differs from
    ``base`` (default: the validated defaults)."""
    if base is None:
        base = validate_config(load_defaults(), source=str(defaults_path()))
    out: dict[str, tuple[Any, Any]] = {}
    for key in sorted(set(config) | set(base)):
        a, b = base.get(key), config.get(key)
        name = f"{prefix}{key}"
        if isinstance(a, Mapping) and isinstance(b, Mapping):
            out.update(differences(b, a, f"{name}."))
        elif a != b:
            out[name] = (a, b)
    return out


def _load_schema() -> dict:
    with open(schema_path()) as fh:
        schema = yaml.safe_load(fh)
    _require_all(schema)
    return schema


def _format_error(err, source: str) -> str:
    import jsonschema  # noqa: F401

    key = ".".join(str(p) for p in err.absolute_path) or "<top level>"
    if err.validator == "additionalProperties":
        allowed = sorted(err.schema.get("properties", {}))
        extra = [k for k in err.instance if k not in err.schema.get("properties", {})]
        where = f"{key}." if key != "<top level>" else ""
        return (f"{source}: unknown key(s) {', '.join(where + k for k in extra)} "
                f"(allowed under {key}: {', '.join(allowed)}). Fix the spelling or remove it.")
    if err.validator == "required":
        return f"{source}: {key}: {err.message}. Add it (see config/README.md)."
    expected = {k: err.schema[k] for k in ("type", "enum", "minimum", "maximum",
                                            "exclusiveMinimum", "exclusiveMaximum", "pattern")
                if k in err.schema}
    return (f"{source}: {key} = {err.instance!r} is invalid: {err.message}; "
            f"expected {expected}. See config/README.md.")


def _require_all(schema: Any) -> None:
    """Require every property of every object of ``schema`` (in place): a merged config holds
    every key of config/config.yaml, and the code reads them without defaults
    (:mod:`xclusters.settings`)."""
    if isinstance(schema, dict):
        if isinstance(schema.get("properties"), dict):
            schema["required"] = sorted(set(schema.get("required", [])) | set(schema["properties"]))
        for value in schema.values():
            _require_all(value)
    elif isinstance(schema, list):
        for value in schema:
            _require_all(value)


def validate_config(config: Mapping[str, Any], source: str = "config") -> dict:
    """Validate a merged config (every key present, no unknown key) and return a copy.

    The schema holds no defaults (config/config.yaml does, :func:`load_config` merges it), so
    a missing key is an error naming it.

    Raises
    ------
    ConfigError
        Naming the key, the value and what was expected.
    """
    import jsonschema

    schema = _load_schema()
    cfg = copy.deepcopy(dict(config))
    validator = jsonschema.Draft202012Validator(schema)
    errors = sorted(validator.iter_errors(cfg), key=lambda e: list(e.absolute_path))
    if errors:
        raise ConfigError("\n".join(_format_error(e, source) for e in errors))
    s = cfg["sample"]
    if s["log_m500c_min"] >= s["log_m500c_max"]:
        raise ConfigError(f"{source}: sample.log_m500c_min ({s['log_m500c_min']}) must be "
                          f"below sample.log_m500c_max ({s['log_m500c_max']}).")
    if s["z_min"] >= s["z_max"]:
        raise ConfigError(f"{source}: sample.z_min ({s['z_min']}) must be below "
                          f"sample.z_max ({s['z_max']}).")
    ero = cfg["instruments"]["erosita"]
    if ero["image_pixels"] > ero["field_pixels"]:
        raise ConfigError(
            f"{source}: instruments.erosita.image_pixels ({ero['image_pixels']}) is larger "
            f"than the simulated field instruments.erosita.field_pixels "
            f"({ero['field_pixels']}). Lower the crop or enlarge the field.")
    if cfg["sources"]["kind"] == "simulation":  # particle chunks must fit the worker budget
        from .observe.particle_photons import particle_chunk_size

        try:
            particle_chunk_size(cfg["photons"]["chunk_particles"],
                                cfg["parallel"]["memory_per_worker_mb"])
        except ValueError as err:
            raise ConfigError(f"{source}: {err}") from None
    return cfg


def load_config(path: str | Path | None = None,
                overrides: Mapping[str, Any] | None = None) -> dict:
    """Read a YAML config, merge it over the defaults, apply top-level ``overrides`` and
    validate it. ``path=None`` gives the defaults alone."""
    if path is None:
        path = defaults_path()
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file {path} does not exist. Pass --config with a YAML file "
                          f"such as config/config.yaml.")
    from .yaml_strict import load_strict, truncate_lines

    with open(path) as fh:
        try:  # duplicate keys and alias bombs are errors (xclusters.yaml_strict)
            cfg = load_strict(fh) or {}
        except yaml.YAMLError as exc:
            raise ConfigError(truncate_lines(f"{path}: not valid YAML: {exc}")) from None
    if not isinstance(cfg, dict):
        raise ConfigError(f"{path}: the top level must be a mapping of keys, got {type(cfg)}.")
    cfg = merge_config(load_defaults(), cfg)
    cfg.update(overrides or {})
    try:
        cfg = validate_config(cfg, source=str(path))
    except ConfigError as exc:  # long values are cut in the message
        raise ConfigError(truncate_lines(str(exc))) from None
    check_results_dir(cfg, source=str(path))
    return cfg


def check_results_dir(config: Mapping[str, Any], source: str = "config") -> None:
    """Refuse a ``results_dir`` (or ``<results_dir>/<run>``) that exists and is not a directory.

    Also refuses a path below an existing file (``results_dir: notes.txt/out``).
    """
    for key, p in (("results_dir", Path(config["results_dir"])),
                   ("results_dir/run", Path(config["results_dir"]) / str(config["run"]))):
        for q in (p, *p.parents):
            if q.exists():
                if not q.is_dir():
                    raise ConfigError(f"{source}: {key} = {str(p)!r}: {q} exists and is not a "
                                      "directory. Point results_dir at a directory (new or "
                                      "existing).")
                break


def run_dir(config: Mapping[str, Any]) -> Path:
    """``<results_dir>/<run>`` for a validated config."""
    return Path(config["results_dir"]) / config["run"]
