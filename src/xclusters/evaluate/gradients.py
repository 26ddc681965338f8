"""DeepDream-style interpretation of the mass CNN (paper 004 §4, Figs. 5–6).

The "loss" is the network output (log M500c); its gradient with respect to the input pixels,
added to the image, makes the network see a more massive cluster. Each iteration:

1. ``g = d(output) / d(image)`` (:class:`tf.GradientTape`);
2. ``g`` is normalised by its mean absolute value and multiplied by ``step_counts`` (the
   normalisation of the Keras DeepDream example that paper 004 footnote 15 points to; the raw
   gradient of log M per photon is far below one count, so without it rounding would undo it);
3. the physical constraints of paper 004 §4: negative pixels are set to 0 and pixels rounded to
   the nearest integer count.

The radial profile (Fig. 6) is ``Delta N / N`` in annuli of ``R / R500c``: the counts added in
the annulus by one iteration divided by the counts in the annulus before that iteration.

TensorFlow is imported only inside these functions.
"""
from __future__ import annotations

import logging

import numpy as np

from .morphology import radius_map

__all__ = ["PROFILE_EDGES_R500C", "input_gradients", "deepdream_iterations",
           "radial_fractional_change"]

log = logging.getLogger("xclusters.evaluate")

#: Radial bins of the Delta N / N profile, in R500c (display choice covering Fig. 6's range).
PROFILE_EDGES_R500C = np.round(np.arange(0.0, 2.0001, 0.1), 10)


def input_gradients(model, images: np.ndarray) -> np.ndarray:
    """Gradient of the model output with respect to each input pixel.

    Parameters
    ----------
    model : keras.Model
        A trained mass CNN taking ``(N, H, W, 1)`` counts and returning ``(N, 1)`` log M.
    images : ndarray
        ``(N, H, W, 1)`` counts.

    Returns
    -------
    ndarray
        ``(N, H, W, 1)`` float32, d(log M) / d(counts).
    """
    import tensorflow as tf

    x = tf.convert_to_tensor(np.asarray(images, dtype=np.float32))
    with tf.GradientTape() as tape:
        tape.watch(x)
        y = model(x, training=False)
        total = tf.reduce_sum(y)
    grad = tape.gradient(total, x)
    if grad is None:
        raise RuntimeError("the model output does not depend on its input; cannot compute "
                           "input gradients (is this the trained mass CNN?).")
    return grad.numpy()


def deepdream_iterations(model, images: np.ndarray, *, n_iter: int = 2,
                         step_counts: float = 1.0) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Iteratively add the (normalised) input gradient to the images (paper 004 §4).

    Parameters
    ----------
    model : keras.Model
        Trained mass CNN.
    images : ndarray
        ``(N, H, W, 1)`` counts.
    n_iter : int
        Number of iterations (paper 004 Figs. 5–6: 2).
    step_counts : float
        Counts added per unit normalised gradient (see module docstring).

    Returns
    -------
    states : list of ndarray
        ``n_iter + 1`` images: the input and each iterated image (non-negative integers).
    gradients : list of ndarray
        ``n_iter`` raw gradients, d(log M)/d(counts).
    """
    cur = np.asarray(images, dtype=np.float32)
    if cur.ndim != 4 or cur.shape[-1] != 1:
        raise ValueError(f"images must be (N, H, W, 1) counts, got {cur.shape}.")
    states, grads = [cur], []
    for it in range(int(n_iter)):
        g = input_gradients(model, cur)
        norm = np.mean(np.abs(g), axis=(1, 2, 3), keepdims=True)
        if np.any(norm == 0):
            log.warning("DeepDream iteration %d: zero gradient for %d image(s); unchanged.",
                        it + 1, int(np.sum(norm == 0)))
        step = np.divide(g, norm, out=np.zeros_like(g), where=norm > 0) * float(step_counts)
        cur = np.clip(np.rint(cur + step), 0.0, None).astype(np.float32)
        states.append(cur)
        grads.append(g)
    return states, grads


def radial_fractional_change(before: np.ndarray, after: np.ndarray, r500c_pix: np.ndarray,
                             edges_r500c: np.ndarray = PROFILE_EDGES_R500C) -> np.ndarray:
    """``Delta N / N`` in annuli of R/R500c (paper 004 Fig. 6).

    Parameters
    ----------
    before, after : ndarray
        ``(N, H, W)`` or ``(N, H, W, 1)`` counts before and after an iteration.
    r500c_pix : ndarray
        ``(N,)`` R500c in pixels.
    edges_r500c : ndarray
        Bin edges in units of R500c.

    Returns
    -------
    ndarray
        ``(N, n_bins)``; NaN where the annulus holds no counts before the iteration or lies
        outside the image.
    """
    b = np.asarray(before, dtype=np.float64)
    a = np.asarray(after, dtype=np.float64)
    if b.ndim == 4:
        b, a = b[..., 0], a[..., 0]
    if a.shape != b.shape:
        raise ValueError(f"before {b.shape} and after {a.shape} differ in shape.")
    r = np.asarray(r500c_pix, dtype=np.float64).ravel()
    rmap = radius_map(b.shape)
    edges = np.asarray(edges_r500c, dtype=np.float64)
    out = np.full((b.shape[0], len(edges) - 1), np.nan)
    for i in range(b.shape[0]):
        if not r[i] > 0:
            continue
        idx = np.digitize(rmap / r[i], edges) - 1
        valid = (idx >= 0) & (idx < len(edges) - 1)
        n0 = np.bincount(idx[valid], weights=b[i][valid], minlength=len(edges) - 1)
        dn = np.bincount(idx[valid], weights=(a[i] - b[i])[valid], minlength=len(edges) - 1)
        np.divide(dn, n0, out=out[i], where=n0 > 0)
    return out
