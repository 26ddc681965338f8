"""The layout of ``dataset.h5`` (docs/architecture.md) and checked access to it.

Readers call :func:`check_dataset` first: it refuses files without the ``complete = 1``
attribute (a build that was killed) and lists every missing dataset or meta column at once.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Iterable

import numpy as np
from astropy.table import Table

__all__ = ["SUPEROBS_INPUTS", "SUPEROBS_BKG", "SUPEROBS_TARGETS", "CHANDRA_IMAGES", "META",
           "META_COLUMNS", "META_UNITS", "DatasetError", "check_complete", "check_dataset",
           "read_meta", "chandra_observation_redshift"]

SUPEROBS_INPUTS = "superobs/inputs"
SUPEROBS_BKG = "superobs/inputs_full_annulus_bkg"
SUPEROBS_TARGETS = "superobs/targets"
CHANDRA_IMAGES = "chandra/images"
META = "meta"

META_COLUMNS = ("cluster_id", "halo_id", "projection", "augmentation", "m500c", "log_m500c",
                "r500c_kpc", "r500c_pix_erosita", "r500c_pix_chandra", "redshift",
                "chandra_redshift", "fold", "split")
META_UNITS = {"m500c": "Msun", "log_m500c": "dex(Msun)", "r500c_kpc": "kpc",
              "r500c_pix_erosita": "pixel", "r500c_pix_chandra": "pixel"}

NEEDS = {
    "superobs": (SUPEROBS_INPUTS, SUPEROBS_TARGETS, SUPEROBS_BKG),
    "mass": (CHANDRA_IMAGES,),
}


class DatasetError(RuntimeError):
    """``dataset.h5`` is incomplete or lacks what a reader needs."""


def check_complete(path: str | Path) -> None:
    """Raise :class:`DatasetError` unless ``path`` is a readable HDF5 file with ``complete=1``.

    A missing file, a file HDF5 cannot open (truncated, corrupt, not HDF5) and a file without
    the ``complete = 1`` attribute (a killed build) each get a message naming the file and
    the fix.
    """
    import h5py

    path = Path(path)
    if not path.is_file():
        raise DatasetError(f"{path} does not exist; build it with the `dataset` rule "
                           "(snakemake ... dataset, or `xclusters dataset`)")
    try:
        fh = h5py.File(path, "r")
    except OSError as exc:
        raise DatasetError(
            f"{path} is not a readable HDF5 file ({exc}): it is truncated, corrupt or not a "
            "dataset.h5. Delete it and rerun the `dataset` rule.") from exc
    with fh:
        if int(fh.attrs.get("complete", 0)) != 1:
            raise DatasetError(
                f"{path} has no complete=1 attribute: it was not finished (killed build or "
                "another writer). Delete it and rerun the `dataset` rule.")


def check_dataset(path: str | Path, what: Iterable[str] = ()) -> None:
    """Raise :class:`DatasetError` unless ``path`` is a complete dataset with ``what``.

    Parameters
    ----------
    path : path
        ``dataset.h5``.
    what : iterable of {"superobs", "mass"}
        The parts the reader needs (datasets listed in ``NEEDS``), besides ``/meta``.
    """
    import h5py

    path = Path(path)
    check_complete(path)
    with h5py.File(path, "r") as fh:
        missing = []
        for part in what:
            if part not in NEEDS:
                raise ValueError(f"unknown dataset part {part!r}; use one of {list(NEEDS)}")
            missing += [f"/{name}" for name in NEEDS[part] if name not in fh]
        if META not in fh:
            missing.append(f"/{META}")
        else:
            names = fh[META].dtype.names or ()
            missing += [f"/{META}:{c}" for c in META_COLUMNS if c not in names]
        if missing:
            hint = (" (/chandra/images is written only when instruments.chandra_acisi.enabled "
                    "is true)" if f"/{CHANDRA_IMAGES}" in missing else "")
            raise DatasetError(f"{path} lacks {missing}{hint}; rebuild it with the `dataset` "
                               "rule of this version of xclusters")


def chandra_observation_redshift(meta) -> np.ndarray:
    """Redshift at which each row's Chandra image was observed, ``(N,)`` float64.

    ``meta["chandra_redshift"]`` when the dataset has it (Chandra observations placed at one
    redshift, paper 004 sec. 2.1.2), else the cluster's light-cone ``meta["redshift"]``. The
    mass CNN's redshift input (``train.mass.redshift_input``) and the L_X baseline's
    luminosity distance use it.
    """
    names = meta.colnames if hasattr(meta, "colnames") else meta.dtype.names
    name = "chandra_redshift" if "chandra_redshift" in names else "redshift"
    if name not in names:
        raise DatasetError("/meta has neither 'chandra_redshift' nor 'redshift'; rebuild "
                           "dataset.h5 with the `dataset` rule")
    return np.asarray(meta[name], dtype=np.float64)


def read_meta(path: str | Path, check: bool = True, units: bool = True) -> Table:
    """The ``/meta`` table of ``dataset.h5`` (strings decoded; units attached unless
    ``units=False``, which gives plain columns, as the evaluation uses them).

    The one reader of ``/meta`` (training, prediction and evaluation use it).
    """
    import h5py

    if check:
        check_dataset(path)
    with h5py.File(path, "r") as fh:
        if META not in fh:
            raise DatasetError(f"{path}: no '/{META}' table; was it written by "
                               "xclusters.dataset? Rebuild it with the `dataset` rule")
        raw = fh[META][...]
        col_units = json.loads(fh[META].attrs.get("units", "{}"))
    table = Table()
    for name in raw.dtype.names:
        col = raw[name]
        if col.dtype.kind == "S":
            col = np.char.decode(col, "utf-8")
        table[name] = col
        if units and name in col_units and not col_units[name].startswith("dex"):
            table[name].unit = col_units[name]
    return table
