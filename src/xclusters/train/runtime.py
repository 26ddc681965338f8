"""Seeds, determinism, mixed precision and distribution strategy for a training run."""
from __future__ import annotations

import contextlib
import logging

__all__ = ["configure_runtime", "gpu_count"]

log = logging.getLogger("xclusters.train")


def gpu_count() -> int:
    """Number of GPUs TensorFlow can see."""
    import tensorflow as tf

    return len(tf.config.list_physical_devices("GPU"))


def configure_runtime(seed: int, *, mixed_precision: bool = False,
                      strategy: str = "default"):
    """Seed every generator, make ops deterministic, pick precision and strategy.

    Parameters
    ----------
    seed : int
        Integer seed for Python, NumPy and TensorFlow (``keras.utils.set_random_seed``).
    mixed_precision : bool
        ``train.mixed_precision``: use ``mixed_float16`` -- only when a GPU exists, otherwise
        ignored with a warning (float16 is slower on CPUs).
    strategy : {"default", "mirrored"}
        ``train.strategy``: ``MirroredStrategy`` over all local GPUs when a GPU exists.

    Returns
    -------
    tf.distribute.Strategy or None
        The strategy whose ``scope()`` must wrap model building and compilation, or ``None``.
    """
    import keras
    import tensorflow as tf

    keras.utils.set_random_seed(int(seed))
    try:
        tf.config.experimental.enable_op_determinism()
    except Exception as exc:  # pragma: no cover - depends on TF build
        log.warning("could not enable op determinism: %s", exc)
    n_gpu = gpu_count()
    policy = "float32"
    if mixed_precision:
        if n_gpu:
            policy = "mixed_float16"
        else:
            log.warning("train.mixed_precision is true but no GPU is visible; using float32")
    keras.mixed_precision.set_global_policy(policy)
    strat = None
    if strategy not in ("default", "mirrored"):
        raise ValueError(f"train.strategy = {strategy!r}: expected 'default' or 'mirrored'")
    if strategy == "mirrored":
        if n_gpu:
            strat = tf.distribute.MirroredStrategy()
        else:
            log.warning("train.strategy = mirrored but no GPU is visible; using the default")
    log.info("runtime: seed=%d, precision=%s, strategy=%s, GPUs=%d", seed, policy,
             "mirrored" if strat else "default", n_gpu)
    return strat


def scope(strategy):
    """``strategy.scope()`` or a no-op context."""
    return strategy.scope() if strategy is not None else contextlib.nullcontext()
