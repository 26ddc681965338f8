"""The mass-regression CNN of paper 004 (section 2.2, Figure 2).

Sequential: Conv 3x3 x16 -> MaxPool 2x2/2 -> Conv 3x3 x32 -> MaxPool -> Conv 3x3 x64 ->
MaxPool -> GlobalAveragePooling -> Dropout 0.1 -> Dense 200 -> Dropout 0.1 -> Dense 100 ->
Dense 20 -> Dense 1 (linear), ReLU elsewhere; 58,437 trainable parameters for any input size.
The paper does not state the convolution padding; Keras' default ``'valid'`` is used (the
parameter count does not depend on it).

Input scaling (documented deviation, no trainable parameters): the paper feeds counts per
pixel and states that CNNs need "very little preprocessing". Chandra 100 ks images span
0 to >10^3 counts per pixel, so the model starts with a fixed ``log(1 + counts)`` layer
(:class:`Log1pCounts`), stored inside the ``.keras`` file so that prediction cannot apply a
different scaling. ``input_scaling="log1p_standardized"`` (the training default) also
subtracts the mean and divides by the standard deviation of ``log1p(counts)`` over the
training pixels: the 20' field is dominated by a ~uniform background, so plain ``log1p``
gives every image nearly the same pooled features and training sat at the mean log M for
~500 optimizer steps; standardised, it learned within ~200 (config/README.md, measurement).
``input_scaling="none"`` gives the raw-counts network. The target stays log10(M500c / Msun) as in the paper; the output bias is
initialised to ``output_bias`` (the training-set mean in :func:`xclusters.train.mass`),
which shortens the walk of the last bias from 0 to ~14.

Redshift input (beyond paper 004, ``redshift_input=True``): for light-cone samples, where the
flux and angular size of a cluster of given mass change with redshift, the observation's
redshift enters as a second input ``(1,)`` concatenated to the 64 globally pooled
convolutional features, before the first dropout and Dense 200 (as in Krippendorf et al.
2024, who append the redshift after the flattened convolutional features); Dense 200 then
has 200 more weights (58,637 trainable parameters).
"""
from __future__ import annotations

import keras

__all__ = ["build_mass_model", "needs_redshift", "log1p_pixel_stats", "Log1pCounts", "INPUT_SCALINGS", "DROPOUT",
           "custom_objects"]

#: Dropout fraction after global pooling and after Dense 200 (paper 004 section 2.2).
DROPOUT = 0.1
#: Accepted values of ``input_scaling``.
INPUT_SCALINGS = ("log1p", "log1p_standardized", "none")


@keras.saving.register_keras_serializable(package="xclusters")
class Log1pCounts(keras.layers.Layer):
    """Parameter-free ``(log(1 + max(counts, 0)) - offset) / scale`` input scaling.

    ``offset = 0, scale = 1`` is plain ``log1p``. ``log1p_standardized`` sets them to the
    mean and standard deviation of ``log1p(counts)`` over the training pixels (fixed
    constants saved with the model, not trained), so the first convolution sees zero-mean,
    unit-variance inputs instead of a ~constant background level.
    """

    def __init__(self, offset: float = 0.0, scale: float = 1.0, **kwargs):
        super().__init__(**kwargs)
        if not scale > 0:
            raise ValueError(f"Log1pCounts scale = {scale!r}: must be > 0")
        self.offset, self.scale = float(offset), float(scale)

    def call(self, inputs):
        return (keras.ops.log1p(keras.ops.maximum(inputs, 0.0)) - self.offset) / self.scale

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "offset": self.offset, "scale": self.scale}


def build_mass_model(image_pixels: int = 128, *, input_scaling: str = "log1p",
                     output_bias: float = 0.0, redshift_input: bool = False,
                     log1p_mean_std: tuple[float, float] = (0.0, 1.0)):
    """Build the paper-004 mass CNN.

    Parameters
    ----------
    image_pixels : int
        Side of the square single-band input image (paper: 128).
    input_scaling : {"log1p", "log1p_standardized", "none"}
        Parameter-free scaling of the counts inside the model (see module docstring).
    log1p_mean_std : (float, float)
        ``log1p_standardized`` only: mean and standard deviation of ``log1p(counts)`` over
        the training pixels (:func:`log1p_pixel_stats`).
    output_bias : float
        Initial bias of the output neuron, log10(M500c / Msun).
    redshift_input : bool
        Add a second input, the observation's redshift ``(1,)``, concatenated to the pooled
        convolutional features (module docstring).

    Returns
    -------
    keras.Model
        Input ``(image_pixels, image_pixels, 1)`` counts per pixel (0.5-7 keV, 100 ks ACIS-I)
        named ``counts`` (and, with ``redshift_input``, ``redshift`` of shape ``(1,)``: the
        model is called with ``[images, redshifts]``); output ``(1,)`` log10(M500c / Msun),
        float32.
    """
    from keras import layers

    if input_scaling not in INPUT_SCALINGS:
        raise ValueError(f"input_scaling = {input_scaling!r}: expected one of {INPUT_SCALINGS}")
    side = int(image_pixels)
    if side < 22:  # three valid 3x3 convolutions and three 2x2 poolings need >= 22 px
        raise ValueError(f"image_pixels = {image_pixels!r}: the mass CNN needs >= 22 pixels")
    inp = keras.Input(shape=(side, side, 1), name="counts")
    if input_scaling == "log1p":
        x = Log1pCounts(name="log1p_counts")(inp)
    elif input_scaling == "log1p_standardized":
        x = Log1pCounts(*(float(v) for v in log1p_mean_std), name="log1p_counts")(inp)
    else:
        x = inp
    for i, n in enumerate((16, 32, 64), start=1):
        x = layers.Conv2D(n, 3, activation="relu", name=f"conv{i}")(x)
        x = layers.MaxPooling2D(pool_size=2, strides=2, name=f"pool{i}")(x)
    x = layers.GlobalAveragePooling2D(name="gap")(x)
    inputs = [inp]
    if redshift_input:
        z = keras.Input(shape=(1,), name="redshift")
        inputs.append(z)
        x = layers.Concatenate(name="features_redshift")([x, z])
    x = layers.Dropout(DROPOUT, name="dropout1")(x)
    x = layers.Dense(200, activation="relu", name="dense200")(x)
    x = layers.Dropout(DROPOUT, name="dropout2")(x)
    x = layers.Dense(100, activation="relu", name="dense100")(x)
    x = layers.Dense(20, activation="relu", name="dense20")(x)
    out = layers.Dense(1, name="log_m500c", dtype="float32",
                       bias_initializer=keras.initializers.Constant(float(output_bias)))(x)
    return keras.Model(inputs if redshift_input else inp, out, name="mass_cnn")


def log1p_pixel_stats(images) -> tuple[float, float]:
    """Mean and standard deviation of ``log(1 + max(counts, 0))`` over all pixels given."""
    import numpy as np

    v = np.log1p(np.maximum(np.asarray(images, dtype=np.float64), 0.0))
    std = float(v.std())
    return float(v.mean()), std if std > 0 else 1.0


def needs_redshift(model) -> bool:
    """True for a mass CNN built with ``redshift_input`` (two inputs: counts, redshift)."""
    return len(model.inputs) == 2


def custom_objects() -> dict:
    """Objects to pass to ``keras.models.load_model`` for mass models."""
    return {"Log1pCounts": Log1pCounts}
