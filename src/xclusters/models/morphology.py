"""Fixed morphology parameters of paper 000 (section 2.3, eqs. 1-3) and the training loss.

For an image X of one band (counts per pixel), with F the summed flux:

* concentration  C = F(r <= 10 px) / F(r <= 100 px), r from the image centre     (eq. 1)
* asymmetry      A = F(|X - X_180|) / F(X), X_180 the image rotated by 180 deg    (eq. 2)
* smoothness     S = F(|X - boxcar_11(X)|) / F(X)                                 (eq. 3)

The image centre is at pixel coordinate ((N - 1) / 2, (N - 1) / 2), the point a 180-degree
rotation (reversal of both axes) maps onto itself. The 11-pixel boxcar pads with zeros
outside the image (the default ``boundary='fill', fill_value=0`` of
``astropy.convolution.convolve``; the paper does not state the edge treatment).
Denominators are floored at ``eps`` counts so that an empty image gives 0, not NaN: a
guard of the loss only (its gradient must stay finite). The evaluation
(:mod:`xclusters.evaluate.morphology`, the NumPy implementation of the same definitions with
R500c apertures) reports empty images as NaN.

The functions work on batches ``(B, H, W, C)`` and return ``(B, C)``.

The loss (paper 000 section 2.3) is ``mae_weight * MAE + sum_i w_i * |P_i(pred) - P_i(true)|``
averaged over bands, with the weights of ``train.superobs.*_weight``. The morphology of the
prediction is computed on its non-negative part ``max(pred, 0)``: the output layer is linear
and can go negative early in training, which would otherwise make the ratios unbounded
(the paper is silent on this; the MAE term still acts on negative pixels).

Counts are never negative (issue 16): ``negative_weight * mean(max(-pred, 0))`` (counts per
pixel, ``train.superobs.negative_weight``) adds a penalty on negative predicted pixels, on
top of the MAE's; it is 0 for a non-negative prediction. Not in paper 000, which keeps a
linear output layer (Table 2, kept here too); predictions are also clipped at inference
(:func:`xclusters.predict.superobs.clip_negative_counts`).
"""
from __future__ import annotations

from typing import Any, Mapping


__all__ = [
    "CONC_R_INNER_PX", "CONC_R_OUTER_PX", "BOXCAR_PX", "EPS_COUNTS",
    "concentration", "asymmetry", "smoothness", "morphology",
    "negative_penalty", "SuperobsLoss", "LOSS_WEIGHT_KEYS", "custom_objects",
]

#: Radii of the fixed concentration (paper 000 eq. 1), pixels.
CONC_R_INNER_PX = 10.0
CONC_R_OUTER_PX = 100.0
#: Boxcar width of the fixed smoothness (paper 000 eq. 3), pixels.
BOXCAR_PX = 11
#: Floor of the flux denominators, counts (numerical safety for empty images).
EPS_COUNTS = 1.0e-6
#: ``train.superobs`` keys holding the :class:`SuperobsLoss` weights.
LOSS_WEIGHT_KEYS = ("mae_weight", "concentration_weight", "asymmetry_weight",
                    "smoothness_weight", "negative_weight")


# --------------------------------------------------------------------------- TensorFlow
def _tf():
    import tensorflow as tf

    return tf


def _radius_tf(x):
    """Pixel distances from the image centre, shape (H, W)."""
    tf = _tf()
    h = tf.shape(x)[1]
    w = tf.shape(x)[2]
    yy = tf.cast(tf.range(h), x.dtype) - (tf.cast(h, x.dtype) - 1.0) / 2.0
    xx = tf.cast(tf.range(w), x.dtype) - (tf.cast(w, x.dtype) - 1.0) / 2.0
    return tf.sqrt(yy[:, None] ** 2 + xx[None, :] ** 2)


def _safe_div(num, den, eps):
    tf = _tf()
    return num / tf.maximum(den, tf.cast(eps, den.dtype))


def concentration(x, r_inner_px: float = CONC_R_INNER_PX,
                  r_outer_px: float = CONC_R_OUTER_PX, eps: float = EPS_COUNTS):
    """Fixed concentration F(r <= r_inner) / F(r <= r_outer) (paper 000 eq. 1).

    Parameters
    ----------
    x : tf.Tensor
        Images ``(B, H, W, C)``, counts per pixel.
    r_inner_px, r_outer_px : float
        Aperture radii in pixels (paper: 10 and 100).
    eps : float
        Floor of the denominator, counts.

    Returns
    -------
    tf.Tensor
        ``(B, C)``, dimensionless in [0, 1] for non-negative images.
    """
    tf = _tf()
    r = _radius_tf(x)[None, :, :, None]
    inner = tf.reduce_sum(tf.where(r <= r_inner_px, x, tf.zeros_like(x)), axis=(1, 2))
    outer = tf.reduce_sum(tf.where(r <= r_outer_px, x, tf.zeros_like(x)), axis=(1, 2))
    return _safe_div(inner, outer, eps)


def asymmetry(x, eps: float = EPS_COUNTS):
    """Fixed asymmetry sum|X - X_180| / sum X (paper 000 eq. 2); ``(B, H, W, C) -> (B, C)``."""
    tf = _tf()
    rot = tf.reverse(x, axis=[1, 2])
    return _safe_div(tf.reduce_sum(tf.abs(x - rot), axis=(1, 2)),
                     tf.reduce_sum(x, axis=(1, 2)), eps)


def _boxcar_tf(x, width: int):
    tf = _tf()
    n_bands = x.shape[-1]
    if n_bands is None:
        raise ValueError("the band axis of the image batch must have a static size")
    kernel = tf.ones((width, width, n_bands, 1), dtype=x.dtype) / float(width * width)
    return tf.nn.depthwise_conv2d(x, kernel, strides=[1, 1, 1, 1], padding="SAME")


def smoothness(x, width: int = BOXCAR_PX, eps: float = EPS_COUNTS):
    """Fixed smoothness sum|X - boxcar(X)| / sum X (paper 000 eq. 3); ``(B,H,W,C) -> (B,C)``."""
    tf = _tf()
    return _safe_div(tf.reduce_sum(tf.abs(x - _boxcar_tf(x, width)), axis=(1, 2)),
                     tf.reduce_sum(x, axis=(1, 2)), eps)


def morphology(x, eps: float = EPS_COUNTS) -> dict:
    """All three fixed parameters, ``{"concentration", "asymmetry", "smoothness"}`` -> (B, C)."""
    return {"concentration": concentration(x, eps=eps), "asymmetry": asymmetry(x, eps=eps),
            "smoothness": smoothness(x, eps=eps)}


def negative_penalty(x):
    """Mean over pixels and bands of ``max(-x, 0)``, counts: ``(B, H, W, C) -> (B,)``.

    0 for a non-negative image; its gradient is ``-1 / (H W C)`` on each negative pixel, so
    minimising it raises negative pixels towards 0.
    """
    tf = _tf()
    return tf.reduce_mean(tf.nn.relu(-x), axis=(1, 2, 3))


# --------------------------------------------------------------------------- loss
import keras  # noqa: E402  (registration of the loss needs keras at import time)


@keras.saving.register_keras_serializable(package="xclusters")
class SuperobsLoss(keras.losses.Loss):
    """MAE + weighted fixed-morphology loss of paper 000 (section 2.3).

    Parameters
    ----------
    mae_weight : float
        Weight of the pixel mean absolute error (counts).
    concentration_weight, asymmetry_weight, smoothness_weight : float
        Weights of the mean (over bands) absolute differences of the fixed parameters.
    negative_weight : float
        Weight of the mean over pixels and bands of ``max(-pred, 0)`` (counts): penalises
        negative predicted counts; 0 switches it off.
    eps : float
        Floor of the flux denominators, counts.
    """

    def __init__(self, mae_weight: float = 1.0, concentration_weight: float = 1.0,
                 asymmetry_weight: float = 1.0, smoothness_weight: float = 1.0,
                 negative_weight: float = 0.0,
                 eps: float = EPS_COUNTS, name: str = "superobs_loss",
                 reduction: str = "sum_over_batch_size", dtype=None):
        super().__init__(name=name, reduction=reduction, dtype=dtype)
        self.mae_weight = float(mae_weight)
        self.concentration_weight = float(concentration_weight)
        self.asymmetry_weight = float(asymmetry_weight)
        self.smoothness_weight = float(smoothness_weight)
        self.negative_weight = float(negative_weight)
        if self.negative_weight < 0:
            raise ValueError(f"negative_weight = {negative_weight}: must be >= 0")
        self.eps = float(eps)

    def call(self, y_true, y_pred):
        tf = _tf()
        y_true = tf.cast(y_true, "float32")
        y_pred = tf.cast(y_pred, "float32")
        loss = self.mae_weight * tf.reduce_mean(tf.abs(y_pred - y_true), axis=(1, 2, 3))
        if self.negative_weight:
            loss = loss + self.negative_weight * negative_penalty(y_pred)
        pos = tf.nn.relu(y_pred)
        for w, fn in ((self.concentration_weight, concentration),
                      (self.asymmetry_weight, asymmetry),
                      (self.smoothness_weight, smoothness)):
            if w:
                diff = tf.abs(fn(pos, eps=self.eps) - fn(y_true, eps=self.eps))
                loss = loss + w * tf.reduce_mean(diff, axis=-1)
        return loss

    def get_config(self) -> dict:
        cfg = super().get_config()
        cfg.update(mae_weight=self.mae_weight, concentration_weight=self.concentration_weight,
                   asymmetry_weight=self.asymmetry_weight,
                   smoothness_weight=self.smoothness_weight,
                   negative_weight=self.negative_weight, eps=self.eps)
        return cfg

    @classmethod
    def from_config(cls, config: dict) -> "SuperobsLoss":
        return cls(**config)

    @classmethod
    def from_train_config(cls, superobs_cfg: Any) -> "SuperobsLoss":
        """Build from the training settings or the ``train.superobs`` config section.

        Parameters
        ----------
        superobs_cfg : SuperobsTrainSettings or mapping
            :class:`xclusters.train.settings.SuperobsTrainSettings`, or a mapping holding
            every weight key (``mae_weight``, ``concentration_weight``, ``asymmetry_weight``,
            ``smoothness_weight``, ``negative_weight``), e.g. the validated
            ``train.superobs`` section. There are no defaults: config/config.yaml sets them.

        Raises
        ------
        KeyError
            A weight is missing from the mapping (the message names it).
        """
        if not isinstance(superobs_cfg, Mapping):
            return cls(**superobs_cfg.loss_weights())
        missing = [k for k in LOSS_WEIGHT_KEYS if k not in superobs_cfg]
        if missing:
            raise KeyError(f"train.superobs.{missing[0]} is missing (SuperobsLoss needs "
                           f"{', '.join(LOSS_WEIGHT_KEYS)})")
        return cls(**{k: superobs_cfg[k] for k in LOSS_WEIGHT_KEYS})


def custom_objects() -> dict:
    """Objects to pass to ``keras.models.load_model`` for compiled superobs models."""
    return {"SuperobsLoss": SuperobsLoss}
