"""Logging for command-line runs: the package logger to stderr and, optionally, a log file."""
from __future__ import annotations

import logging
from pathlib import Path

FORMAT = "%(asctime)s %(name)s %(levelname)s: %(message)s"


def setup_logging(log_file: str | None = None, verbose: bool = False) -> logging.Logger:
    """Attach stderr (and file) handlers to the ``xclusters`` logger and return it."""
    logger = logging.getLogger("xclusters")
    logger.setLevel(logging.DEBUG if verbose else logging.INFO)
    fmt = logging.Formatter(FORMAT)
    if not any(isinstance(h, logging.StreamHandler) and not isinstance(h, logging.FileHandler)
               for h in logger.handlers):
        sh = logging.StreamHandler()
        sh.setFormatter(fmt)
        logger.addHandler(sh)
    if log_file:
        Path(log_file).parent.mkdir(parents=True, exist_ok=True)
        fh = logging.FileHandler(log_file, mode="a")
        fh.setFormatter(fmt)
        logger.addHandler(fh)
    return logger
