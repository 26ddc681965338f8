"""The super-observation CNN of paper 000 (section 2.2, Table 2, Figure 2).

Two layers, each split into three paths with 1x1, 3x3 and 5x5 filters (200 filters each,
'same' padding so the image size never changes). Path outputs are reduced to 3 bands with
1x1 ``Conv2DTranspose`` layers; the second layer's paths are concatenated with the
corresponding first-layer path *before* the 1x1 reduction; the three reduced 3-band images
and the input are concatenated (12 bands) and reduced to the 3-band linear output.
For 3 bands this has 48,687 trainable parameters, as quoted in the paper.
"""
from __future__ import annotations

import logging

__all__ = ["build_superobs_model", "N_FILTERS", "KERNEL_SIZES", "LEAKY_SLOPE"]

log = logging.getLogger("xclusters.models")

#: Filters per path (paper 000 section 2.2, Table 2).
N_FILTERS = 200
#: Filter sizes of the three paths (paper 000 section 2.2).
KERNEL_SIZES = (1, 3, 5)
#: Negative slope of LeakyReLU: the paper does not state it; 0.3 is the default of the
#: Keras ``LeakyReLU`` layer in the TensorFlow 2 releases the paper used.
LEAKY_SLOPE = 0.3


def build_superobs_model(n_bands: int = 3, image_pixels: int | None = None):
    """Build the paper-000 multi-path CNN (Table 2).

    Parameters
    ----------
    n_bands : int
        Energy bands of input and output images (paper: 3, soft/medium/hard).
    image_pixels : int or None
        Side of the square input image in pixels (paper: 256). ``None`` builds a fully
        convolutional model that accepts any image size (the parameter count does not depend
        on it).

    Returns
    -------
    keras.Model
        Input ``(H, W, n_bands)`` counts per pixel in a 2 ks eROSITA exposure; output
        ``(H, W, n_bands)`` predicted counts per pixel of the 10 ks ideal observation (linear
        activation, float32 even under mixed precision).
    """
    import keras
    from keras import layers

    from xclusters.models.params import count_trainable

    if int(n_bands) < 1:
        raise ValueError(f"n_bands = {n_bands!r}: need at least one energy band")
    if image_pixels is not None and int(image_pixels) < 5:
        raise ValueError(f"image_pixels = {image_pixels!r}: need >= 5 for the 5x5 path")
    side = None if image_pixels is None else int(image_pixels)

    def conv(x, k, name):
        y = layers.Conv2D(N_FILTERS, k, padding="same", name=name)(x)
        return layers.LeakyReLU(negative_slope=LEAKY_SLOPE, name=f"{name}_act")(y)

    def reduce(x, name, activation=True, dtype=None):
        y = layers.Conv2DTranspose(n_bands, 1, padding="same", name=name,
                                   dtype=dtype)(x)
        if activation:
            y = layers.LeakyReLU(negative_slope=LEAKY_SLOPE, name=f"{name}_act")(y)
        return y

    x0 = keras.Input(shape=(side, side, int(n_bands)), name="x0")
    xs = {k: conv(x0, k, f"x{k}") for k in KERNEL_SIZES}                   # x1, x3, x5
    xb = [reduce(xs[k], f"x{k}b") for k in KERNEL_SIZES]                   # x1b, x3b, x5b
    x_concat = layers.Concatenate(name="x_concat")(xb)
    z0 = reduce(x_concat, "z0")
    zs = {k: conv(z0, k, f"z{k}") for k in KERNEL_SIZES}                   # z1, z3, z5
    zb = {k: layers.Concatenate(name=f"z{k}b")([xs[k], zs[k]]) for k in KERNEL_SIZES}
    zc = [reduce(zb[k], f"z{k}c") for k in KERNEL_SIZES]                   # z1c, z3c, z5c
    z_concat = layers.Concatenate(name="z_concat")([x0, *zc])
    out = reduce(z_concat, "output", activation=False, dtype="float32")
    model = keras.Model(x0, out, name="superobs_cnn")
    log.debug("built %s with %d trainable parameters", model.name,
              count_trainable(model))
    return model
