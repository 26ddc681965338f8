"""Parameter counting shared by the model builders."""
from __future__ import annotations

__all__ = ["count_trainable"]


def count_trainable(model) -> int:
    """Number of trainable parameters (weights and biases) of a Keras model."""
    import numpy as np

    return int(sum(int(np.prod(w.shape)) for w in model.trainable_weights))
