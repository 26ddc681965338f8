"""Per-stage settings and fingerprints: every output records the settings that made it.

A run has these stages (DESIGN.md "Data flow"): ``sample``, ``source``, ``photons``,
``events.<instrument>``, ``images.<instrument>``, ``dataset``, ``train_superobs``,
``train_mass`` and ``evaluate``. :func:`build_stages` takes a *validated* config once and
returns one frozen :class:`StageSettings` per stage: exactly the config keys that stage reads
(plus the SHA-256 of the input files it reads, e.g. the emission table or a real ARF).
:meth:`StageSettings.fingerprint` hashes them.

* Snakemake rules take only their own stage's fingerprint as a param
  (``workflow/rules/common.smk``), so a change reruns that stage and what depends on it and
  nothing upstream.
* Per-cluster files (``source.h5``, ``photons.h5``, neighbour photon lists, band-image FITS)
  record the fingerprints of their whole chain (e.g. an image: source, photons, events, images;
  :func:`chain`); :func:`xclusters.pipeline.cluster.build_cluster` reuses a file only when they
  match, else rebuilds it and logs one line naming the settings that changed
  (:func:`describe_change`, from the settings saved by :func:`remember`).

Keys that say where and how a run executes (``run``, ``results_dir``, ``parallel``,
``instruments.response_dir``, ``photons.keep``) belong to no fingerprint: they do not change
any output's bytes (tests/test_build_reliability.py).
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
from functools import lru_cache
from pathlib import Path
from typing import Any, Iterable, Mapping

from .settings import InstrumentsSettings

log = logging.getLogger("xclusters.stages")

__all__ = ["StageSettings", "build_stages", "chain", "chain_fingerprints", "describe_change",
           "remember", "enabled_instruments", "chandra_fixed_redshift", "file_digest",
           "STAGE_KEYS", "CLUSTER_STAGES"]

#: Files above this size are identified by size and modification time instead of SHA-256
#: (a multi-GB simulation snapshot would otherwise be read at every workflow parse).
_HASH_MAX_BYTES = 256 * 1024 ** 2

#: The config keys each stage reads (dotted paths; a section name takes the whole section).
#: ``{inst}`` is replaced by each enabled instrument.
STAGE_KEYS: dict[str, tuple[str, ...]] = {
    # halo catalogue -> sample.ecsv + neighbours.ecsv (the neighbour search uses the largest
    # field: catalogs.neighbours.field_radius_arcmin)
    "sample": ("seed", "catalog", "sample", "sources.kind", "sources.include_neighbours",
               "sources.neighbour_los_depth_mpc", "sources.neighbour_log_m500c_min",
               "sources.neighbour_max_number", "sources.box_r500c",
               "sources.reference_cosmology", "instruments.erosita.field_pixels",
               "instruments.erosita.pixel_arcsec", "instruments.ideal.image_pixels",
               "instruments.ideal.pixel_arcsec", "instruments.chandra_acisi.enabled",
               "instruments.chandra_acisi.field_arcmin"),
    # sample row -> source.h5 (and the analytic sources of light-cone neighbours); the finest
    # image pixel sizes the analytic core refinement (sources.refine); a simulation cutout is
    # also sized by the largest field (_SIMULATION_SOURCE_KEYS)
    "source": ("seed", "sources", "catalog.snapshot", "instruments.erosita.pixel_arcsec",
               "instruments.ideal.pixel_arcsec", "instruments.chandra_acisi.enabled",
               "instruments.chandra_acisi.field_arcmin",
               "instruments.chandra_acisi.image_pixels"),
    # source.h5 -> photons.h5 (the photon budget, area x time, is added per cluster)
    "photons": ("seed", "emission.model", "emission.apec_table_path", "emission.allow_download",
                "emission.apec_root", "emission.apec_version", "emission.emin_keV",
                "emission.emax_keV", "emission.nbins", "photons.area_margin",
                "photons.chunk_particles"),
    # photons -> SIMPUT (absorbed, projected) -> SOXS event list of one instrument; the
    # instrument's whole section, so instruments.chandra_acisi.fixed_redshift (the Chandra
    # observation's own source/photons chain, pipeline.cluster.observation_stages) reruns
    # the Chandra observation only
    "events.{inst}": ("seed", "emission.nh_1e22", "instruments.{inst}"),
    # event list -> band-image FITS
    "images.{inst}": ("instruments.{inst}",),
    # band images + sample -> dataset.h5 (the Chandra redshift is checked against
    # instruments.chandra_acisi.fixed_redshift and recorded)
    "dataset": ("seed", "dataset", "projections", "instruments.erosita.exposure_ks",
                "instruments.ideal.exposure_ks", "instruments.chandra_acisi.exposure_ks",
                "instruments.chandra_acisi.enabled", "instruments.chandra_acisi.fixed_redshift"),
    "train_superobs": ("seed", "train.superobs", "train.epoch_definition",
                       "train.mixed_precision", "train.strategy", "dataset.augmentation",
                       "dataset.n_folds", "dataset.val_folds", "dataset.test_folds"),
    # ``train.mass.folds`` picks which folds are trained, not how one fold is trained
    # (the training record of the model holds instruments.chandra_acisi.fixed_redshift)
    "train_mass": ("seed", "train.mass.max_epochs", "train.mass.batch_size",
                   "train.mass.learning_rate", "train.mass.input_scaling",
                   "train.mass.redshift_input", "train.epoch_definition",
                   "train.mixed_precision", "train.strategy",
                   "dataset.augmentation", "dataset.n_folds",
                   "instruments.chandra_acisi.fixed_redshift"),
    # exposures: a fallback when dataset.h5 lacks them (evaluate.run._exposure)
    "evaluate": ("seed", "evaluate", "instruments.erosita.exposure_ks",
                 "instruments.erosita.psf_hew_arcsec", "instruments.erosita.pixel_arcsec",
                 "instruments.ideal.exposure_ks", "instruments.chandra_acisi.exposure_ks",
                 "dataset.val_folds", "dataset.test_folds", "dataset.n_folds"),
}

#: Field sizes read by the source stage only for ``sources.kind: simulation`` (the cutout side,
#: :func:`xclusters.sources.refine.cutout_side_kpc`); analytic sources do not depend on them.
_SIMULATION_SOURCE_KEYS = ("instruments.erosita.field_pixels", "instruments.ideal.image_pixels")

#: Input files whose content matters, per stage: dotted config keys holding a path.
_STAGE_FILES: dict[str, tuple[str, ...]] = {
    "sample": ("catalog.path",),
    "source": ("catalog.snapshot",),
    "photons": ("emission.apec_table_path",),
    "events.{inst}": ("instruments.{inst}.arf", "instruments.{inst}.rmf",
                      "instruments.{inst}.particle_background_pha"),
}

#: The per-cluster stages run by ``build_shard`` (in order).
CLUSTER_STAGES = ("source", "photons", "events", "images")


def enabled_instruments(config: Mapping[str, Any] | InstrumentsSettings) -> list[str]:
    """Instruments observed in this run, in build order: ``erosita``, ``ideal`` and, unless
    ``instruments.chandra_acisi.enabled`` is false, ``chandra_acisi``.

    The one implementation (the pipeline, the dataset, the neighbour search and the instrument
    set-up use it): :attr:`xclusters.settings.InstrumentsSettings.enabled`. ``config`` is the
    run config, its ``instruments`` section or their typed settings; every ``instruments`` key
    is read exactly (a missing one raises :class:`xclusters.settings.MissingSetting` naming it).
    """
    return InstrumentsSettings.from_config(config).enabled


def chandra_fixed_redshift(config: Mapping[str, Any] | InstrumentsSettings) -> float | None:
    """``instruments.chandra_acisi.fixed_redshift``: the one redshift every Chandra ACIS-I
    observation is made at (paper 004 sec. 2.1.2: z = 0.05), or ``None`` (null in the config)
    for each cluster's light-cone redshift. ``config`` is the run config, its ``instruments``
    section or their typed settings (read exactly, :class:`xclusters.settings.InstrumentsSettings`).
    """
    return InstrumentsSettings.from_config(config).chandra_acisi.fixed_redshift


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)


def _get(config: Mapping[str, Any], dotted: str) -> Any:
    node: Any = config
    for part in dotted.split("."):
        if not isinstance(node, Mapping) or part not in node:
            return None
        node = node[part]
    return node


@lru_cache(maxsize=64)
def _digest(path: str, size: int, mtime_ns: int) -> str:
    if size > _HASH_MAX_BYTES:
        return f"size={size},mtime_ns={mtime_ns}"
    from .provenance import sha256_file

    return sha256_file(path)


def file_digest(path: str | Path | None) -> str | None:
    """SHA-256 of an input file (size and mtime above 256 MB); ``None`` for no/missing file."""
    if not path:
        return None
    p = Path(str(path))
    if not p.is_file():
        return None
    st = p.stat()
    return _digest(str(p.resolve()), st.st_size, st.st_mtime_ns)


@dataclasses.dataclass(frozen=True)
class StageSettings:
    """The settings one stage reads, frozen.

    Attributes
    ----------
    name : str
        ``sample``, ``source``, ``photons``, ``events.erosita``, ``images.ideal``, ``dataset``,
        ``train_superobs``, ``train_mass`` or ``evaluate``.
    settings_json : str
        Canonical JSON (sorted keys) of ``{dotted key: value}``, including the SHA-256 of the
        stage's input files as ``file:<key>``.
    """

    name: str
    settings_json: str

    @property
    def settings(self) -> dict[str, Any]:
        """``{dotted key: value}`` (a new dict each call)."""
        return json.loads(self.settings_json)

    def fingerprint(self) -> str:
        """SHA-256 (first 16 hex digits) of the stage name and its settings."""
        text = f"{self.name}\n{self.settings_json}"
        return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]

    def with_values(self, **extra: Any) -> "StageSettings":
        """A copy with per-cluster values added (e.g. the photon budget or the sample row)."""
        merged = self.settings
        for key in extra:  # a replaced value drops the old leaves
            for old in [k for k in merged if k == key or k.startswith(f"{key}.")]:
                del merged[old]
        _flatten("", dict(extra), merged)
        return StageSettings(self.name, _canonical(merged))


def _flatten(prefix: str, value: Any, out: dict[str, Any]) -> dict[str, Any]:
    """``{"a": {"b": 1}}`` -> ``{"a.b": 1}`` (lists stay whole), so changes name a leaf key."""
    if isinstance(value, Mapping) and value:
        for key, sub in value.items():
            _flatten(f"{prefix}.{key}" if prefix else str(key), sub, out)
    else:
        out[prefix] = value
    return out


def _select(config: Mapping[str, Any], keys: Iterable[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key in keys:
        _flatten(key, _get(config, key), out)
    return out


def build_stages(config: Mapping[str, Any]) -> dict[str, StageSettings]:
    """One :class:`StageSettings` per stage of a validated config.

    Instrument stages exist for the enabled instruments only
    (``events.erosita``, ``images.erosita``, ...).
    """
    out: dict[str, StageSettings] = {}
    insts = enabled_instruments(config)
    for template, keys in STAGE_KEYS.items():
        names = ([(template.format(inst=i), i) for i in insts] if "{inst}" in template
                 else [(template, None)])
        for name, inst in names:
            read = [k.format(inst=inst) for k in keys]
            if template == "source" and _get(config, "sources.kind") == "simulation":
                read += _SIMULATION_SOURCE_KEYS
            sel = _select(config, read)
            for fkey in _STAGE_FILES.get(template, ()):
                fkey = fkey.format(inst=inst)
                path = _get(config, fkey)
                if path:
                    sel[f"file:{fkey}"] = file_digest(path)
            out[name] = StageSettings(name, _canonical(sel))
    return out


def chain(stages: Mapping[str, StageSettings], last: str, instrument: str | None = None
          ) -> list[StageSettings]:
    """The per-cluster stages up to ``last`` (``source`` ... ``images``) for one instrument."""
    order = CLUSTER_STAGES[:CLUSTER_STAGES.index(last) + 1]
    return [stages[s if s in ("source", "photons") else f"{s}.{instrument}"] for s in order]


def chain_fingerprints(stages: Iterable[StageSettings]) -> dict[str, str]:
    """``{stage name: fingerprint}`` of a chain, as recorded in a per-cluster file."""
    return {s.name: s.fingerprint() for s in stages}


def combined_fingerprint(stages: Iterable[StageSettings]) -> str:
    """One fingerprint of several stages (e.g. everything ``build_shard`` does)."""
    text = _canonical(sorted((s.name, s.fingerprint()) for s in stages))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


# ----------------------------------------------------------------- previous settings, by hash
def _store_path(store: Path, fingerprint: str) -> Path:
    return Path(store) / f"{fingerprint}.json"


def remember(store: str | Path, stages: Iterable[StageSettings]) -> None:
    """Save each stage's settings as ``<store>/<fingerprint>.json`` (once; content-addressed).

    These let :func:`describe_change` name the keys that differ from a file's recorded
    fingerprint. Written atomically; concurrent writers write the same bytes.
    """
    from .io import atomic_write_text

    for stage in stages:
        path = _store_path(Path(store), stage.fingerprint())
        if not path.is_file():
            path.parent.mkdir(parents=True, exist_ok=True)
            atomic_write_text(path, _canonical({"stage": stage.name,
                                                "settings": stage.settings}) + "\n")


def describe_change(recorded: Mapping[str, str], current: Iterable[StageSettings],
                    store: str | Path | None) -> str | None:
    """Which settings differ between a file's recorded fingerprints and the current ones.

    Returns ``None`` when all match, else a short text such as
    ``"events.erosita: instruments.erosita.exposure_ks 2.0 -> 4.0"``.
    """
    parts = []
    named: set[str] = set()  # a key read by several stages is named once
    for stage in current:
        old_fp = recorded.get(stage.name)
        if old_fp == stage.fingerprint():
            continue
        if old_fp is None:
            parts.append(f"{stage.name}: no fingerprint recorded")
            continue
        old = None
        if store is not None and _store_path(Path(store), old_fp).is_file():
            try:
                old = json.loads(_store_path(Path(store), old_fp).read_text())["settings"]
            except (OSError, ValueError, KeyError):
                old = None
        if old is None:
            parts.append(f"{stage.name}: fingerprint {old_fp} -> {stage.fingerprint()} "
                         "(previous settings not recorded)")
            continue
        new = stage.settings
        keys = [k for k in sorted(set(old) | set(new)) if old.get(k) != new.get(k)]
        changed = [f"{k} {old.get(k)!r} -> {new.get(k)!r}" for k in keys if k not in named]
        named.update(keys)
        if changed or not keys:
            parts.append(f"{stage.name}: {'; '.join(changed) or 'settings differ'}")
    return "; ".join(parts) if parts else None
