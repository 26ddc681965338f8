"""Model definitions: the papers' parameter counts and the fixed morphology parameters."""
import os

os.environ.setdefault("TF_NUM_INTRAOP_THREADS", "1")
os.environ.setdefault("TF_NUM_INTEROP_THREADS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import pytest  # noqa: E402

tf = pytest.importorskip("tensorflow")

from xclusters.models import morphology as M  # noqa: E402
from xclusters.models.mass import build_mass_model  # noqa: E402
from xclusters.models.params import count_trainable  # noqa: E402
from xclusters.models.superobs import build_superobs_model  # noqa: E402


def test_superobs_parameter_count_matches_paper_table2():
    # paper 000 section 2.2: 48,687 trainable parameters, independent of image size
    assert count_trainable(build_superobs_model(3, 256)) == 48687
    assert count_trainable(build_superobs_model(3, None)) == 48687


def test_superobs_keeps_image_size_and_bands():
    model = build_superobs_model(3, None)
    out = model(np.zeros((1, 32, 40, 3), np.float32))
    assert out.shape == (1, 32, 40, 3)


def test_mass_parameter_count_matches_paper():
    # paper 004 section 2.2: 58,437 trainable parameters, invariant to the image size
    assert count_trainable(build_mass_model(128)) == 58437
    assert count_trainable(build_mass_model(64, input_scaling="none")) == 58437


def test_mass_output_bias_and_shape():
    model = build_mass_model(32, output_bias=14.2)
    y = model(np.zeros((2, 32, 32, 1), np.float32), training=False)
    assert y.shape == (2, 1)
    assert model.get_layer("log_m500c").bias.numpy()[0] == pytest.approx(14.2)


def _blob(n=64, sigma=4.0, amp=50.0, dx=0.0):
    yy, xx = np.mgrid[:n, :n] - (n - 1) / 2.0
    return amp * np.exp(-((xx - dx) ** 2 + yy ** 2) / (2 * sigma ** 2))


def _tf_morph(img):
    """TF fixed morphology of one (H, W) image -> {name: float}."""
    x = tf.constant(np.asarray(img, np.float32)[None, :, :, None])
    return {k: float(v.numpy()[0, 0]) for k, v in M.morphology(x).items()}


def test_fixed_morphology_physical_values():
    # point source at the centre: C = 1; symmetric: A = 0; flat image: S ~ edge effect only
    img = np.zeros((64, 64))
    img[31:33, 31:33] = 10.0
    assert _tf_morph(img)["concentration"] == pytest.approx(1.0)
    assert _tf_morph(_blob())["asymmetry"] == pytest.approx(0.0, abs=1e-6)
    assert _tf_morph(_blob(dx=8.0))["asymmetry"] > 0.5
    # a broad blob is smoother (smaller S) than a narrow one
    assert _tf_morph(_blob(sigma=12))["smoothness"] < _tf_morph(_blob(sigma=1.5))["smoothness"]
    # empty image: the loss's denominators are floored, so zero, not NaN (loss guard only; the
    # evaluation reports NaN, tests/test_evaluate.py)
    for v in M.morphology(tf.zeros((1, 32, 32, 3))).values():
        assert np.all(v.numpy() == 0.0)


def test_tensorflow_loss_morphology_matches_evaluation():
    """The loss's fixed C, A, S are the evaluation's with R500c = 100 px (C) and an aperture
    covering the image (A, S): one definition, two frameworks."""
    from xclusters.evaluate.morphology import morphology_r500c

    rng = np.random.default_rng(1)
    x = (rng.poisson(_blob(40, 3.0, 20.0, 2.0)[None, :, :, None] * np.ones((2, 1, 1, 3)))
         .astype(np.float32))
    tf_vals = {k: v.numpy() for k, v in M.morphology(tf.constant(x)).items()}
    c100 = morphology_r500c(x, np.full(2, 100.0))
    whole = morphology_r500c(x, np.full(2, 1.0e4))
    np.testing.assert_allclose(tf_vals["concentration"], c100["C"], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(tf_vals["asymmetry"], whole["A"], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(tf_vals["smoothness"], whole["S"], rtol=1e-5, atol=1e-6)


def test_loss_is_zero_for_perfect_prediction_and_finite_for_empty():
    loss = M.SuperobsLoss(1.0, 1.0, 1.0, 1.0)
    y = tf.constant(np.random.default_rng(0).poisson(2.0, (2, 24, 24, 3)).astype(np.float32))
    assert float(loss(y, y)) == pytest.approx(0.0, abs=1e-6)
    z = tf.zeros((2, 24, 24, 3))
    assert np.isfinite(float(loss(z, -1.0 + z)))
    cfg = M.SuperobsLoss.from_config(loss.get_config()).get_config()
    assert cfg["smoothness_weight"] == 1.0


def test_negative_pixel_penalty():
    """Issue 16 item 4: 0 for non-negative predictions, positive otherwise, pushes pixels up."""
    y = tf.constant(np.random.default_rng(1).poisson(2.0, (2, 24, 24, 3)).astype(np.float32))
    assert np.all(M.negative_penalty(y).numpy() == 0.0)
    pred = np.array(y.numpy())
    pred[0, 3, 4, 1] = -2.0
    pred[1, 0, 0, 0] = -0.5
    pen = M.negative_penalty(tf.constant(pred)).numpy()
    np.testing.assert_allclose(pen, [2.0 / (24 * 24 * 3), 0.5 / (24 * 24 * 3)], rtol=1e-6)
    w = 3.0
    weights = {"mae_weight": 1.0, "concentration_weight": 1.0, "asymmetry_weight": 1.0,
               "smoothness_weight": 1.0}
    with_neg = M.SuperobsLoss.from_train_config({**weights, "negative_weight": w})
    without = M.SuperobsLoss.from_train_config({**weights, "negative_weight": 0.0})
    assert without.negative_weight == 0.0
    assert float(with_neg(y, y)) == pytest.approx(0.0, abs=1e-6)  # no negatives: no penalty
    # the penalty adds w * mean over the batch of the per-image penalty
    assert float(with_neg(y, pred)) - float(without(y, pred)) == pytest.approx(
        w * pen.mean(), rel=1e-4)
    x = tf.Variable(pred)
    with tf.GradientTape() as tape:
        val = tf.reduce_sum(M.negative_penalty(x))
    g = tape.gradient(val, x).numpy()
    assert g[0, 3, 4, 1] < 0 and g[1, 0, 0, 0] < 0  # gradient descent raises them
    assert np.count_nonzero(g) == 2
    assert M.SuperobsLoss.from_config(with_neg.get_config()).negative_weight == w
    with pytest.raises(ValueError, match="negative_weight"):
        M.SuperobsLoss(negative_weight=-1.0)


def test_describe_models_reports_counts():
    from xclusters.models.describe import describe_models

    text = describe_models(64, 128)
    assert "trainable parameters: 48,687 (paper: 48,687)" in text
    assert "trainable parameters: 58,437 (paper: 58,437)" in text
