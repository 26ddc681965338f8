"""Training: losses fall on tiny synthetic sets, stopping rules, resume after a kill."""
import copy
import json
import os

os.environ.setdefault("TF_NUM_INTRAOP_THREADS", "1")
os.environ.setdefault("TF_NUM_INTEROP_THREADS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import pytest  # noqa: E402

tf = pytest.importorskip("tensorflow")
keras = pytest.importorskip("keras")

from xclusters.config import load_config  # noqa: E402
from xclusters.seeds import rng_for  # noqa: E402
from xclusters.train import mass as tmass  # noqa: E402
from xclusters.train.callbacks import (MinimumHeldStop, convergence_stats,  # noqa: E402
                                       read_history, resume_state)
from xclusters.train.mass import fold_splits, train_mass_fold  # noqa: E402
from xclusters.train.superobs import train_superobs  # noqa: E402

SEED = 7


def _blob(n, sigma, amp, cx=0.0, cy=0.0):
    yy, xx = np.mgrid[:n, :n] - (n - 1) / 2.0
    return amp * np.exp(-((xx - cx) ** 2 + (yy - cy) ** 2) / (2 * sigma ** 2))


def superobs_arrays(n_img=16, n=32, seed=SEED):
    """eROSITA-like input (2 ks, blurred, background) and ideal target (10 ks, no background)."""
    rng = rng_for(seed, 0, "test_superobs")
    x = np.empty((n_img, n, n, 3), np.float32)
    y = np.empty_like(x)
    for i in range(n_img):
        sigma, amp = rng.uniform(2.0, 5.0), rng.uniform(2.0, 6.0)
        cx, cy = rng.uniform(-3, 3, 2)
        for b, frac in enumerate((1.0, 0.6, 0.3)):
            truth = _blob(n, sigma, amp * frac, cx, cy)
            y[i, :, :, b] = rng.poisson(5.0 * truth)
            x[i, :, :, b] = rng.poisson(_blob(n, sigma + 1.0, amp * frac, cx, cy) + 0.05)
    return x, y


def mass_arrays(n_img=48, n=32, seed=SEED):
    """Blobs whose size and brightness grow with log M (13.7..15)."""
    rng = rng_for(seed, 0, "test_mass")
    log_m = rng.uniform(13.7, 15.0, n_img).astype(np.float32)
    x = np.stack([rng.poisson(_blob(n, 1.5 + 3.0 * (m - 13.7), 20.0 * (m - 13.0)))
                  for m in log_m]).astype(np.float32)[..., None]
    return x, log_m


def ds(x, y, batch):
    return tf.data.Dataset.from_tensor_slices((x, y)).batch(batch)


#: The validated default ``train`` section (the trainers read every key, no defaults).
DEFAULT_TRAIN = load_config()["train"]


def train_cfg(superobs=None, mass=None):
    """The default ``train`` section with ``superobs``/``mass`` keys replaced."""
    t = copy.deepcopy(DEFAULT_TRAIN)
    t["superobs"].update(superobs or {})
    t["mass"].update(mass or {})
    return t


def cfg_superobs(epochs, patience=100):
    return train_cfg(superobs={"epochs": epochs, "batch_size": 4, "learning_rate": 1e-3,
                               "patience": patience, "mae_weight": 1.0,
                               "concentration_weight": 1.0, "asymmetry_weight": 1.0,
                               "smoothness_weight": 1.0, "negative_weight": 0.0})


def test_fold_splits_rotate_through_all_folds():
    tests, vals = set(), set()
    for k in range(10):
        s = fold_splits(k)
        assert len(s["train"]) == 8 and s["test"] not in s["train"] and s["val"] not in s["train"]
        tests.add(s["test"])
        vals.add(s["val"])
    assert tests == vals == set(range(10))
    with pytest.raises(ValueError, match="0 <= k < 10"):
        fold_splits(10)


def test_convergence_stats():
    t = np.linspace(14, 15, 11)
    s = convergence_stats(t, t + 0.01)
    assert s["max_abs_delta"] == pytest.approx(0.01)
    assert s["median_delta"] == pytest.approx(0.01)
    assert s["slope"] == pytest.approx(1.0)
    # regression toward the mean lowers the slope
    assert convergence_stats(t, 14.5 + 0.5 * (t - 14.5))["slope"] == pytest.approx(0.5)
    assert convergence_stats(t, 14.5 + 0.5 * (t - 14.5), "true_on_pred")["slope"] == \
        pytest.approx(2.0)
    assert convergence_stats(t, t * np.nan)["max_abs_delta"] == np.inf


def test_runtime_ignores_gpu_options_without_gpu(caplog):
    from xclusters.train.runtime import configure_runtime, gpu_count

    if gpu_count():
        pytest.skip("a GPU is visible")
    assert configure_runtime(1, mixed_precision=True, strategy="mirrored") is None
    assert keras.mixed_precision.global_policy().name == "float32"
    assert "no GPU" in caplog.text
    with pytest.raises(ValueError, match="train.strategy"):
        configure_runtime(1, strategy="tpu")


def test_superobs_training_lowers_loss_and_writes_outputs(tmp_path):
    x, y = superobs_arrays(16, 24)
    out = tmp_path / "models" / "superobs.keras"
    summary = train_superobs(ds(x[:12], y[:12], 4), ds(x[12:], y[12:], 4), out,
                             cfg=cfg_superobs(4), seed=SEED, workdir=tmp_path / "work")
    hist = read_history(out.with_name("superobs.history.csv"))
    assert len(hist) == 4 and summary["epochs_run"] == 4
    assert hist[-1]["loss"] < hist[0]["loss"]
    assert summary["best_val_loss"] == pytest.approx(min(h["val_loss"] for h in hist))
    assert summary["stop_reason"] == "max_epochs"
    assert summary["images_per_s"] > 0
    # a dataset not built by xclusters.dataset.tfdata: steps from its cardinality
    assert summary["epoch_definition"] is None and summary["steps_per_epoch"] == 3
    on_disk = json.loads(out.with_name("superobs.summary.json").read_text())
    assert on_disk["best_epoch"] == summary["best_epoch"]
    model = keras.models.load_model(out, safe_mode=True, compile=False)
    assert model.count_params() == 48687
    assert not (tmp_path / "work" / "backup_superobs").exists()


def test_minimum_held_stop_and_resume_state():
    stop = MinimumHeldStop(patience=2)
    stop.set_model(keras.Sequential([keras.Input((1,)), keras.layers.Dense(1)]))
    stop.model.stop_training = False
    for epoch, v in enumerate([3.0, 2.0, 2.5, 2.4, 2.1]):
        stop.on_epoch_end(epoch, {"val_loss": v})
        if stop.model.stop_training:
            break
    assert stop.stopped_epoch == 4 and stop.best == 2.0
    hist = [{"epoch": 0, "val_loss": 3.0}, {"epoch": 1, "val_loss": 2.0},
            {"epoch": 2, "val_loss": 2.5}]
    assert resume_state(hist) == (2.0, 1, 2)


class Kill(keras.callbacks.Callback):
    """Simulate a preempted job: raise at the end of the first epoch (after the backup)."""

    def on_epoch_end(self, epoch, logs=None):
        if epoch == 0:
            raise KeyboardInterrupt("simulated kill")


def test_backup_and_restore_resumes_superobs(tmp_path):
    x, y = superobs_arrays(8, 16)
    args = dict(cfg=cfg_superobs(2), seed=SEED, workdir=tmp_path / "work")
    out = tmp_path / "superobs.keras"
    with pytest.raises(KeyboardInterrupt):
        train_superobs(ds(x, y, 4), ds(x, y, 4), out, extra_callbacks=[Kill()], **args)
    assert (tmp_path / "work" / "backup_superobs").is_dir()
    assert len(read_history(tmp_path / "superobs.history.csv")) == 1
    summary = train_superobs(ds(x, y, 4), ds(x, y, 4), out, **args)
    hist = read_history(tmp_path / "superobs.history.csv")
    assert [int(h["epoch"]) for h in hist] == [0, 1]  # continued at epoch 2, not from scratch
    assert summary["resumed"] and summary["epochs_run"] == 2


def test_mass_training_lowers_loss_and_keeps_last_model(tmp_path):
    x, log_m = mass_arrays()
    cfg = train_cfg(mass={"max_epochs": 6, "batch_size": 8, "learning_rate": 5e-4})
    out = tmp_path / "mass_fold0.keras"
    summary = train_mass_fold(ds(x[:40], log_m[:40], 8), ds(x[40:], log_m[40:], 8), out,
                              cfg=cfg, seed=SEED, workdir=tmp_path / "w")
    hist = read_history(tmp_path / "mass_fold0.history.csv")
    assert hist[-1]["loss"] < hist[0]["loss"]
    assert "val_slope" in hist[0] and "val_max_abs_delta" in hist[0]
    assert summary["stop_reason"] in ("converged", "max_epochs")
    assert summary["kept_epoch"] == summary["epochs_run"]
    assert summary["epoch_definition"] is None and summary["steps_per_epoch"] == 5
    model = keras.models.load_model(out, safe_mode=True, compile=False)
    assert model.count_params() == 58437


def test_mass_training_is_reproducible(tmp_path):
    x, log_m = mass_arrays(16)
    cfg = train_cfg(mass={"max_epochs": 2, "batch_size": 8})
    runs = [train_mass_fold(ds(x, log_m, 8), ds(x, log_m, 8), tmp_path / f"r{i}" / "m.keras",
                            cfg=cfg, seed=SEED, workdir=tmp_path / f"w{i}",
                            val_arrays=(x, log_m)) for i in range(2)]
    hists = [read_history(tmp_path / f"r{i}" / "m.history.csv") for i in range(2)]
    assert [h["loss"] for h in hists[0]] == [h["loss"] for h in hists[1]]
    assert runs[0]["validation"] == runs[1]["validation"]


def test_mass_convergence_rule_stops_and_keeps_that_model(tmp_path, monkeypatch):
    monkeypatch.setattr(tmass, "STOP_MAX_ABS_DELTA", 100.0)
    monkeypatch.setattr(tmass, "STOP_MAX_ABS_MEDIAN", 100.0)
    monkeypatch.setattr(tmass, "STOP_MIN_SLOPE", -1e9)
    x, log_m = mass_arrays(16)
    summary = train_mass_fold(ds(x, log_m, 8), ds(x, log_m, 8), tmp_path / "m.keras",
                              cfg=train_cfg(mass={"max_epochs": 5, "batch_size": 8}), seed=SEED,
                              workdir=tmp_path / "w", val_arrays=(x, log_m))
    assert summary["stop_reason"] == "converged" and summary["epochs_run"] == 1


def test_weights_identical_for_same_seed_and_differ_for_another(tmp_path):
    """Issue 8: same config and seed give identical weights on CPU; a changed seed changes them."""
    x, log_m = mass_arrays(16)
    cfg = train_cfg(mass={"max_epochs": 2, "batch_size": 8})
    weights = []
    for i, seed in enumerate((SEED, SEED, SEED + 1)):
        out = tmp_path / f"s{i}" / "m.keras"
        train_mass_fold(ds(x, log_m, 8), ds(x, log_m, 8), out, cfg=cfg, seed=seed,
                        workdir=tmp_path / f"ws{i}", val_arrays=(x, log_m))
        model = keras.models.load_model(out, safe_mode=True, compile=False)
        weights.append([np.asarray(w) for w in model.get_weights()])
    assert all(np.array_equal(a, b) for a, b in zip(weights[0], weights[1]))
    assert not all(np.array_equal(a, b) for a, b in zip(weights[0], weights[2]))


@pytest.mark.slow
def test_paper_epochs_from_dataset_file_recorded_in_summary(tmp_path):
    """Issue 16 item 3: one epoch = each training image under the 8 dihedral transforms."""
    from test_dataset import _config, make_run

    from xclusters.dataset import build_dataset
    from xclusters.train.superobs import train_superobs_from_file

    sample, manifests = make_run(tmp_path)
    h5 = build_dataset(sample, manifests, tmp_path / "dataset.h5", config=_config())
    cfg = cfg_superobs(1)
    s = train_superobs_from_file(h5, tmp_path / "superobs.keras", cfg=cfg, seed=SEED,
                                 workdir=tmp_path / "w")
    # 2 training clusters x 2 projections x 8 transforms, batches of 4
    assert (s["epoch_definition"], s["variants_per_epoch"], s["steps_per_epoch"]) == \
        ("paper", 32, 8)
    assert json.loads((tmp_path / "superobs.summary.json").read_text())[
        "variants_per_epoch"] == 32
