"""Writers for evaluation tables: ECSV (machine-readable) and Markdown (for people).

Files are written atomically (:func:`xclusters.io.atomic_path`).
"""
from __future__ import annotations

import logging
import math
from pathlib import Path
from typing import Any

import numpy as np
from astropy.table import Table

from ..io import atomic_path, atomic_write_text

__all__ = ["write_ecsv", "write_markdown", "format_interval"]

log = logging.getLogger("xclusters.evaluate")


def write_ecsv(table: Table, path: str | Path) -> Path:
    """Write ``table`` (with its ``meta``) as ECSV."""
    with atomic_path(path, suffix=".ecsv") as tmp:
        table.write(tmp, format="ascii.ecsv")
    return Path(path)


def format_interval(median: float, p16: float, p84: float, digits: int = 2) -> str:
    """``"0.02 +0.05/-0.04"``: median with the distances to the 84th and 16th percentiles."""
    if not all(math.isfinite(v) for v in (median, p16, p84)):
        return "nan"
    if max(abs(median), abs(p16), abs(p84)) >= 100:
        return f"{median:.0f} +{p84 - median:.0f}/-{median - p16:.0f}"
    return (f"{median:.{digits}f} +{p84 - median:.{digits}f}/"
            f"-{median - p16:.{digits}f}")


def _cell(value: Any) -> str:
    if isinstance(value, (float, np.floating)):
        return "nan" if not np.isfinite(value) else f"{value:.4g}"
    if isinstance(value, bytes):
        return value.decode()
    return str(value)


def write_markdown(table: Table, path: str | Path, *, title: str | None = None,
                   note: str | None = None) -> Path:
    """Write ``table`` as a GitHub-flavoured Markdown table.

    Parameters
    ----------
    table : astropy.table.Table
        Columns become the header; units are shown in brackets.
    path : path-like
        Output ``.md`` file.
    title, note : str, optional
        A heading above and a paragraph below the table.
    """
    names = table.colnames
    header = [f"{n} [{table[n].unit}]" if table[n].unit not in (None, "") else n
              for n in names]
    lines = []
    if title:
        lines += [f"# {title}", ""]
    lines.append("| " + " | ".join(header) + " |")
    lines.append("|" + "|".join("---" for _ in names) + "|")
    for row in table:
        lines.append("| " + " | ".join(_cell(row[n]) for n in names) + " |")
    if note:
        lines += ["", note]
    text = "\n".join(lines) + "\n"
    return atomic_write_text(path, text)
