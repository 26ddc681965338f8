"""xclusters: mock X-ray observations of galaxy clusters and the CNNs trained on them.

The data flow is ``catalogs -> sources -> emission/instruments -> observe -> images ->
dataset -> models -> train -> evaluate``; each stage is a subpackage of the same name.
"""
import logging

__version__ = "0.1.0"

logger = logging.getLogger("xclusters")
logger.addHandler(logging.NullHandler())

__all__ = ["__version__", "logger"]
