"""Refuse what would give a wrong answer (issue 18).

Each case is something a careless user did that used to finish with exit 0 and a wrong or
destructive result, or a traceback:

1. outputs never replace inputs: ``--out`` naming an input, a model (even read-only or
   through a symbolic link), a device, a FIFO or a directory is refused, nothing changes;
2. inference checks its inputs against the model's training record (instrument, pixel scale,
   exposure, image size), refuses all-zero inputs and counts the event rows it drops;
3. ``xclusters run`` clears the Snakemake lock of a dead run, refuses a live one, ``--unlock``;
4. config loading refuses duplicate keys and alias bombs (fast, short message), truncates
   long values, refuses a ``results_dir`` that is a file;
5. a full disk stops the shard job with "no space left on device" naming the path, and the
   failed cluster's temporary files are removed (real 1 MiB tmpfs when root, and injected).
"""
from __future__ import annotations

import errno
import json
import logging
import os
import signal
import socket
import stat
import subprocess
import sys
import time
import zipfile
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import yaml  # noqa: E402
from astropy.io import fits  # noqa: E402
from astropy.table import Table  # noqa: E402

from test_bad_inputs import _restore_log_handlers, run_cli  # noqa: E402,F401 - shared CLI driver
from xclusters.cli.main import main  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
TEST_CONFIG = REPO / "config" / "test.yaml"
N = 32
RA0, DEC0 = 150.0, 2.2


def assert_failed(rc, text, *patterns, code=1):
    import re

    assert rc == code, f"exit code {rc}, expected {code}; output:\n{text}"
    for pat in patterns:
        assert re.search(pat, text, flags=re.I | re.S), f"{pat!r} not in:\n{text}"
    assert "Traceback" not in text


def snapshot(*paths: Path) -> dict:
    return {p: (p.read_bytes(), p.stat().st_ino) for p in paths}


def assert_unchanged(before: dict) -> None:
    for p, (data, ino) in before.items():
        assert p.is_file() and p.read_bytes() == data and p.stat().st_ino == ino, p


# --------------------------------------------------------------------------- fixtures

def _record_config(n=N, chandra_field_arcmin=N * 9.375 / 60):
    """The validated default config with these instruments (every key present)."""
    from xclusters.config import load_config, merge_config

    return merge_config(load_config(), {"instruments": {
        "erosita": {"image_pixels": n, "pixel_arcsec": 9.6, "exposure_ks": 2.0},
        "ideal": {"exposure_ks": 10.0},
        "chandra_acisi": {"image_pixels": n, "field_arcmin": chandra_field_arcmin,
                          "exposure_ks": 100.0}}})


def _image(path, data, pixel_arcsec, **cards):
    from xclusters.images.grid import image_wcs

    hdr = image_wcs((RA0, DEC0), data.shape[-1], pixel_arcsec).to_header()
    hdr["BUNIT"] = "count"
    hdr.update(cards)
    fits.PrimaryHDU(np.asarray(data, np.float32), header=hdr).writeto(path)
    return path


def _events(path, ra, dec, pi, unit="chan", telescope=("eROSITA", "TM0")):
    t = fits.BinTableHDU.from_columns([fits.Column("RA", "D", "deg", array=ra),
                                       fits.Column("DEC", "D", "deg", array=dec),
                                       fits.Column("PI", "E", unit, array=pi)], name="EVENTS")
    t.header.update({"EXPOSURE": 2000.0, "RA_PNT": RA0, "DEC_PNT": DEC0,
                     "TELESCOP": telescope[0], "INSTRUME": telescope[1]})
    fits.HDUList([fits.PrimaryHDU(), t]).writeto(path)
    return path


@pytest.fixture(scope="module")
def infer(tmp_path_factory):
    """Models with a training record (32 px) and without; good and bad inputs."""
    import keras

    from xclusters.models.mass import build_mass_model
    from xclusters.models.record import training_record, write_training_record
    from xclusters.models.superobs import build_superobs_model

    d = tmp_path_factory.mktemp("refuse")
    keras.utils.set_random_seed(18)
    build_superobs_model(3, None).save(d / "superobs.keras")
    write_training_record(d / "superobs.keras",
                          training_record(_record_config(), "superobs", d / "superobs.keras"))
    build_mass_model(N, output_bias=14.3).save(d / "mass.keras")
    write_training_record(d / "mass.keras",
                          training_record(_record_config(), "mass", d / "mass.keras"))
    build_mass_model(N, output_bias=14.3).save(d / "mass_old.keras")  # no record
    rng = np.random.default_rng(18)
    cube = rng.poisson(2.0, (3, N, N))
    img = rng.poisson(2.0, (N, N))
    _image(d / "erosita.fits", cube, 9.6, EXPOSURE=2000.0, INSTRUME="erosita")
    _image(d / "chandra_cube.fits", cube, 0.5, EXPOSURE=2000.0, INSTRUME="chandra")
    _image(d / "erosita_64.fits", rng.poisson(2.0, (3, 64, 64)), 9.6, EXPOSURE=2000.0,
           INSTRUME="erosita")
    _image(d / "chandra.fits", img, 9.375, EXPOSURE=1e5, INSTRUME="chandra_acisi")
    _image(d / "mass_erosita.fits", img, 9.6, EXPOSURE=2000.0, INSTRUME="erosita")
    _image(d / "mass_05arcsec.fits", img, 0.5, EXPOSURE=1e5, INSTRUME="chandra_acisi")
    _image(d / "mass_1ks.fits", img, 9.375, EXPOSURE=1e3, INSTRUME="chandra_acisi")
    _image(d / "mass_zero.fits", np.zeros((N, N)), 9.375, EXPOSURE=1e5,
           INSTRUME="chandra_acisi")
    _image(d / "erosita_zero.fits", np.zeros((3, N, N)), 9.6, EXPOSURE=2000.0,
           INSTRUME="erosita")
    # a header announcing a 10000x10000 cube (the data block is not even there): refused
    # from the header alone, before 1.2 GB of pixels would be read
    big = fits.Header({"SIMPLE": True, "BITPIX": -32, "NAXIS": 3, "NAXIS1": 10000,
                       "NAXIS2": 10000, "NAXIS3": 3})
    (d / "huge.fits").write_bytes(big.tostring().encode() + b"\0" * 2880)
    n = 400
    ra = RA0 + rng.normal(0, 60 / 3600, n) / np.cos(np.radians(DEC0))
    dec = DEC0 + rng.normal(0, 60 / 3600, n)
    pi = rng.integers(74, 723, n).astype(float)
    _events(d / "events.fits", ra, dec, pi)
    _events(d / "events_kev.fits", ra, dec, pi * 0.0146 + 0.1, unit="keV")
    pi_neg = pi.copy()
    pi_neg[:50] = -3.0
    _events(d / "events_negpi.fits", ra, dec, pi_neg)
    _events(d / "events_allneg.fits", ra, dec, -pi)
    ra_nan = ra.copy()
    ra_nan[:7] = np.nan
    _events(d / "events_nan.fits", ra_nan, dec, pi)
    _events(d / "events_empty.fits", ra[:0], dec[:0], pi[:0])
    _events(d / "events_chandra.fits", ra, dec, pi, telescope=("CHANDRA", "ACIS"))
    return d


def _predict(d, src, *more, out=None):
    kind = "--events" if "events" in Path(src).name else "--image"
    extra = ["--ra", RA0, "--dec", DEC0] if kind == "--events" else []
    return ["predict", "--model", d / "superobs.keras", kind, d / src, *extra, *more,
            "--out", out or d / "pred.fits"]


# --------------------------------------------------------------------------- 1. outputs

def test_predict_out_naming_the_input_image_or_model_is_refused(infer, tmp_path, capsys,
                                                               caplog):
    model = tmp_path / "ro.keras"
    model.write_bytes((infer / "superobs.keras").read_bytes())
    model.chmod(0o444)  # read-only: os.replace would still have replaced it
    link = tmp_path / "link.fits"
    link.symlink_to(model)
    hard = tmp_path / "hard.fits"
    os.link(infer / "erosita.fits", hard)
    before = snapshot(model, infer / "erosita.fits")
    for out, what in ((infer / "erosita.fits", "erosita.fits"), (model, "ro.keras"),
                      (link, "ro.keras"), (hard, "erosita.fits")):
        rc, text = run_cli(["predict", "--model", model, "--image", infer / "erosita.fits",
                            "--out", out], capsys, caplog)
        assert_failed(rc, text, rf"--out {out} is the input .*{what}; refusing to overwrite")
    assert_unchanged(before)
    from xclusters.predict.loading import load_trained_model

    load_trained_model(model, "superobs")  # still a model


def test_predict_out_naming_another_model_is_refused(infer, tmp_path, capsys, caplog):
    other = tmp_path / "other.keras"
    other.write_bytes((infer / "mass.keras").read_bytes())
    before = snapshot(other)
    rc, text = run_cli(_predict(infer, "erosita.fits", out=other), capsys, caplog)
    assert_failed(rc, text, rf"--out {other} is a trained Keras model; refusing")
    assert_unchanged(before)


@pytest.mark.parametrize("kind", ["directory", "fifo"])
def test_predict_out_that_is_not_a_regular_file_is_refused(infer, tmp_path, capsys, caplog,
                                                           kind):
    out = tmp_path / "target"
    out.mkdir() if kind == "directory" else os.mkfifo(out)
    rc, text = run_cli(_predict(infer, "erosita.fits", out=out), capsys, caplog)
    assert_failed(rc, text, rf"--out {out} is (a directory|not a regular file); refusing")
    assert (out.is_dir() if kind == "directory" else stat.S_ISFIFO(os.stat(out).st_mode))


def test_device_is_never_an_output():
    """``/dev/null`` is refused by the shared check (never written to, even as root)."""
    from xclusters.io import OutputPathError, check_output_path

    with pytest.raises(OutputPathError, match=r"--out /dev/null is a device; refusing"):
        check_output_path("/dev/null", [])
    assert stat.S_ISCHR(os.stat("/dev/null").st_mode)


def _write_commands(d: Path, t: Path) -> dict:
    """Writing commands with their output pointed at one of their inputs."""
    cfg, ds, model = t / "c.yaml", t / "dataset.h5", d / "mass.keras"
    return {
        "predict-dataset": ["predict-dataset", "--model", model, "--dataset", ds, "--out", ds],
        "predict-mass-dataset": ["predict-mass-dataset", "--dataset", ds, "--models", model,
                                 "--out", model],
        "train-mass": ["train-mass", "--config", cfg, "--dataset", ds, "--fold", 0, "--out",
                       ds, "--workdir", t / "w"],
        "dataset": ["dataset", "--config", cfg, "--sample", t / "s.ecsv", "--manifests",
                    t / "m.ecsv", "--out", t / "m.ecsv"],
        "sample": ["sample", "--config", cfg, "--out", cfg],
        "build-shard": ["build-shard", "--config", cfg, "--shard", t / "s.ecsv",
                        "--clusters-dir", t / "c", "--manifest", t / "s.ecsv"],
        "evaluate-mass": ["evaluate-mass", "--config", cfg, "--dataset", ds, "--predictions",
                          t / "m.ecsv", "--outdir", ds],
        "log file": ["predict-mass", "--model", model, "--image", d / "chandra.fits",
                     "--log", model],
    }


@pytest.mark.parametrize("command", list(_write_commands(Path("d"), Path("t"))))
def test_every_writing_command_refuses_to_replace_an_input(infer, tmp_path, capsys, caplog,
                                                           command):
    for name in ("c.yaml", "dataset.h5", "s.ecsv", "m.ecsv"):
        (tmp_path / name).write_text(f"{name}\n")
    files = [tmp_path / n for n in ("c.yaml", "dataset.h5", "s.ecsv", "m.ecsv")]
    before = snapshot(*files, infer / "mass.keras")
    rc, text = run_cli(_write_commands(infer, tmp_path)[command], capsys, caplog)
    assert_failed(rc, text, r"--(out|manifest|log|outdir) \S+ (is the input|exists and is "
                            r"not a directory)")
    assert_unchanged(before)


# --------------------------------------------------------------------------- 2. inference

def test_training_record_is_stored_in_the_model_and_old_models_still_load(infer, caplog):
    from xclusters.models.record import RECORD_NAME, read_training_record
    from xclusters.predict.loading import load_trained_model

    rec = read_training_record(infer / "mass.keras")
    assert rec["instrument"] == "chandra_acisi" and rec["image_pixels"] == N
    assert rec["pixel_arcsec"] == pytest.approx(9.375) and rec["exposure_s"] == 1e5
    assert rec["input_scaling"] == "log1p"  # the Log1pCounts layer of the saved network
    sup = read_training_record(infer / "superobs.keras")
    assert (sup["instrument"], sup["target_instrument"], sup["pixel_arcsec"]) == (
        "erosita", "ideal", 9.6)
    assert [b["lo"] for b in sup["bands"]] == [74, 178, 275]
    assert RECORD_NAME in zipfile.ZipFile(infer / "mass.keras").namelist()
    load_trained_model(infer / "mass.keras", "mass")  # Keras ignores the extra entry
    with caplog.at_level(logging.WARNING, logger="xclusters"):
        assert read_training_record(infer / "mass_old.keras") is None
    assert "has no training record" in caplog.text


def test_mass_record_holds_the_fixed_redshift_and_other_redshifts_are_warned(caplog):
    """instruments.chandra_acisi.fixed_redshift (paper 004 sec. 2.1.2) is in the mass model's
    record; an image at another REDSHIFT is predicted with a warning, a matching one without."""
    from astropy.io import fits

    from xclusters.models.record import training_record
    from xclusters.predict.checks import check_input

    cfg = _record_config()
    assert training_record(cfg, "mass")["redshift"] is None  # light cone: varies
    cfg["instruments"]["chandra_acisi"]["fixed_redshift"] = 0.05
    rec = training_record(cfg, "mass")
    assert rec["redshift"] == 0.05 and "redshift" not in training_record(cfg, "superobs")
    hdr = fits.Header({"INSTRUME": "chandra_acisi", "EXPOSURE": 1e5, "REDSHIFT": 0.3})
    kw = dict(path="img.fits", wcs=None, model_path="mass.keras")
    rec["pixel_arcsec"] = None  # no WCS here: check the redshift only
    with caplog.at_level(logging.WARNING, logger="xclusters"):
        warned = check_input(rec, header=hdr, **kw)
    assert len(warned) == 1 and "REDSHIFT = 0.3, but mass.keras was trained on clusters " \
        "all observed at z = 0.05" in warned[0]
    hdr["REDSHIFT"] = 0.05
    assert check_input(rec, header=hdr, **kw) == []


def test_the_training_step_writes_the_record(monkeypatch, tmp_path):
    """``train_mass_from_dataset`` adds the record to the model the trainer saved."""
    from xclusters.config import load_config
    from xclusters.models.mass import build_mass_model
    from xclusters.models.record import read_training_record
    from xclusters.pipeline import training
    from xclusters.train import mass as train_mass

    def fake_train(dataset, k, out, **kw):  # the trainer itself is tested in test_train
        build_mass_model(24).save(out)
        return {"epochs": 0}

    monkeypatch.setattr(train_mass, "train_mass_fold_from_file", fake_train)
    cfg = load_config(TEST_CONFIG)
    out = tmp_path / "mass_fold0.keras"
    training.train_mass_from_dataset(tmp_path / "d.h5", 0, out, config=cfg,
                                     workdir=tmp_path / "w")
    rec = read_training_record(out)
    ch = cfg["instruments"]["chandra_acisi"]
    assert rec["image_pixels"] == ch["image_pixels"]
    assert rec["pixel_arcsec"] == pytest.approx(ch["field_arcmin"] * 60 / ch["image_pixels"])
    assert rec["exposure_s"] == ch["exposure_ks"] * 1000


MASS_ERRORS = [
    ("eROSITA image", "mass_erosita.fits",
     [r"mass_erosita\.fits: instrument 'erosita' \(INSTRUME = 'erosita'\), but .*mass\.keras "
      r"was trained on 'chandra_acisi'", r"pixels of 9\.6 arcsec, but .*9\.375 arcsec",
      r"--allow-mismatch"]),
    ("0.5 arcsec pixels", "mass_05arcsec.fits",
     [r"pixels of 0\.5 arcsec, but .*mass\.keras was trained on 9\.375 arcsec pixels",
      r"rebin"]),
    ("all-zero image", "mass_zero.fits", [r"mass_zero\.fits: every pixel of the input is 0"]),
]


@pytest.mark.parametrize("case,image,patterns", MASS_ERRORS, ids=[c[0] for c in MASS_ERRORS])
def test_predict_mass_refuses_inputs_unlike_its_training_data(infer, capsys, caplog, case,
                                                              image, patterns):
    rc, text = run_cli(["predict-mass", "--model", infer / "mass.keras", "--image",
                        infer / image], capsys, caplog)
    assert_failed(rc, text, *patterns)
    assert "log10(M500c" not in text


def test_predict_mass_mismatch_accepted_with_the_flag_and_exposure_warned(infer, capsys,
                                                                          caplog):
    rc, text = run_cli(["predict-mass", "--model", infer / "mass.keras", "--image",
                        infer / "mass_05arcsec.fits", "--allow-mismatch"], capsys, caplog)
    assert rc == 0 and "log10(M500c/Msun) = " in text
    assert "pixels of 0.5 arcsec" in text and "(accepted: --allow-mismatch)" in text
    rc, text = run_cli(["predict-mass", "--model", infer / "mass.keras", "--image",
                        infer / "mass_1ks.fits"], capsys, caplog)
    assert rc == 0, text
    assert "EXPOSURE = 1000 s, but" in text and "trained on 100000 s" in text
    assert "Counts are NOT rescaled" in text and "scale the counts by 100" in text
    rc, text = run_cli(["predict-mass", "--model", infer / "mass.keras", "--image",
                        infer / "chandra.fits"], capsys, caplog)
    assert rc == 0 and "WARNING" not in text, text  # the matching image: no warning


PREDICT_ERRORS = [
    ("Chandra cube at 0.5 arcsec", lambda d: _predict(d, "chandra_cube.fits"),
     [r"instrument 'chandra_acisi' \(INSTRUME = 'chandra'\), but .*superobs\.keras was "
      r"trained on 'erosita'", r"pixels of 0\.5 arcsec"]),
    ("all-zero image", lambda d: _predict(d, "erosita_zero.fits"),
     [r"erosita_zero\.fits: every pixel of the input is 0"]),
    ("10000x10000 cube", lambda d: _predict(d, "huge.fits"),
     [r"huge\.fits: image is 10000x10000 px but .*superobs\.keras expects 32x32 px at most"]),
    ("image larger than trained", lambda d: _predict(d, "erosita_64.fits"),
     [r"image is 64x64 px but .* expects 32x32 px at most"]),
    ("--pixels above the trained size", lambda d: _predict(d, "events.fits", "--pixels", 64),
     [r"image_pixels = 64 \(--pixels\): .*superobs\.keras accepts at most 32x32 px"]),
    ("Chandra event list", lambda d: _predict(d, "events_chandra.fits"),
     [r"events_chandra\.fits: instrument 'chandra_acisi' \(INSTRUME = 'ACIS'\), but .*"
      r"superobs\.keras was trained on 'erosita'"]),
    ("zero-row event list", lambda d: _predict(d, "events_empty.fits"),
     [r"events_empty\.fits: no event left in any band: 0 rows"]),
    ("every PI negative", lambda d: _predict(d, "events_allneg.fits"),
     [r"events_allneg\.fits: no event left in any band: 400 rows, dropped 400 negative or "
      r"non-finite PI", r"TUNIT"]),
]


@pytest.mark.parametrize("case,argv,patterns", PREDICT_ERRORS, ids=[c[0] for c in PREDICT_ERRORS])
def test_predict_refuses_inputs_unlike_its_training_data(infer, capsys, caplog, case, argv,
                                                         patterns):
    out = infer / "pred.fits"
    out.unlink(missing_ok=True)
    rc, text = run_cli(argv(infer), capsys, caplog)
    assert_failed(rc, text, *patterns)
    assert not out.exists()


@pytest.mark.parametrize("value,message", [("-5", "-5 must be a positive number of pixels"),
                                           ("0", "0 must be a positive number of pixels"),
                                           ("x", "'x' is not an integer")])
def test_pixels_must_be_positive(infer, capsys, value, message):
    with pytest.raises(SystemExit) as exc:
        main([str(a) for a in _predict(infer, "events.fits", "--pixels", value)])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert f"argument --pixels: {message}" in err and "Traceback" not in err


def test_event_rows_dropped_are_counted(infer, tmp_path, capsys, caplog):
    """keV PI is binned by energy; NaN positions and negative PI are counted and warned."""
    counts = {}
    for name in ("events.fits", "events_kev.fits", "events_nan.fits", "events_negpi.fits"):
        out = tmp_path / f"{name}.pred.fits"
        rc, text = run_cli(_predict(infer, name, out=out), capsys, caplog)
        assert rc == 0, text
        with fits.open(out) as hdul:
            counts[name] = float(hdul["INPUT"].data.sum())
        if name == "events_nan.fits":
            assert "WARNING" in text and "7 NaN RA/DEC" in text
        if name == "events_negpi.fits":
            assert "WARNING" in text and "50 negative or non-finite PI" in text
        if name == "events_kev.fits":
            assert "PI is in keV; binning by energy" in text
    assert counts["events_kev.fits"] > 0.5 * counts["events.fits"] > 0
    assert counts["events_nan.fits"] <= counts["events.fits"] - 7 + 7  # never more
    assert counts["events_negpi.fits"] < counts["events.fits"]


def test_model_without_record_predicts_with_a_warning(infer, tmp_path, capsys, caplog):
    rc, text = run_cli(["predict-mass", "--model", infer / "mass_old.keras", "--image",
                        infer / "mass_05arcsec.fits"], capsys, caplog)
    assert rc == 0 and "has no training record" in text and "log10(M500c" in text


# --------------------------------------------------------------------------- 3. run lock

def _run_config(d: Path) -> Path:
    from xclusters.config import load_defaults, merge_config

    cfg = merge_config(load_defaults(), yaml.safe_load(TEST_CONFIG.read_text()))
    cfg["results_dir"] = str(d / "results")
    table = Path(cfg["emission"]["apec_table_path"] or "")
    if cfg["emission"]["apec_table_path"] and not table.is_absolute():  # relative to the repo
        cfg["emission"]["apec_table_path"] = str((REPO / table).resolve())
    path = d / "cfg.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def _xclusters(d: Path, *args, **kw) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    return subprocess.run([sys.executable, "-m", "xclusters.cli.main", *map(str, args)],
                          cwd=d, env=env, capture_output=True, text=True, timeout=300, **kw)


def _fake_lock(d: Path, pid: int) -> Path:
    locks = d / ".snakemake" / "locks"
    locks.mkdir(parents=True, exist_ok=True)
    (locks / "0.input.lock").write_text(str(d / "results" / "x") + "\n")
    (d / ".snakemake" / "xclusters-run-owner.json").write_text(json.dumps(
        {"pid": pid, "host": socket.gethostname(), "started": time.time(),
         "argv": ["xclusters", "run"]}))
    return locks


def test_lock_of_a_dead_run_is_cleared_and_a_live_one_refused(tmp_path):
    cfg = _run_config(tmp_path)
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    locks = _fake_lock(tmp_path, dead.pid)
    res = _xclusters(tmp_path, "run", "--config", cfg, "-n")
    assert res.returncode == 0, res.stderr
    assert "removed the Snakemake lock" in res.stderr and f"pid {dead.pid}" in res.stderr
    assert _no_locks(locks)
    # a live run: a process in the directory with snakemake in its command line
    live = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)",
                             "snakemake"], cwd=tmp_path)
    try:
        _fake_lock(tmp_path, live.pid)
        res = _xclusters(tmp_path, "run", "--config", cfg, "-n")
        assert res.returncode == 1
        assert "is locked by a running workflow" in res.stderr
        assert f"pid {live.pid}" in res.stderr and "Traceback" not in res.stderr
        assert not _no_locks(locks), "a live run's lock was removed"
        res = _xclusters(tmp_path, "run", "--config", cfg, "--unlock")
        assert res.returncode == 1 and "not unlocking" in res.stderr
    finally:
        live.kill()
        live.wait()
    res = _xclusters(tmp_path, "run", "--config", cfg, "--unlock")
    assert res.returncode == 0, res.stderr
    assert _no_locks(locks)


def test_live_run_check_reads_program_names_not_paths():
    """A checkout in a folder called xclusters must not make pytest look like a live run."""
    from xclusters.cli.runlock import _program_names

    assert not _program_names("/ci/xclusters/.venv/bin/python -m pytest tests") & {
        "xclusters", "snakemake"}
    assert "xclusters" in _program_names("/ci/.venv/bin/python /ci/.venv/bin/xclusters run")
    assert "snakemake" in _program_names("/ci/.venv/bin/python -m snakemake --cores 2")
    assert "xclusters" in _program_names("/bin/bash -c set -euo pipefail;  xclusters build-shard")


@pytest.mark.slow
def test_kill_9_of_a_whole_run_then_rerun_recovers(tmp_path):
    """SIGKILL the process group of a real ``xclusters run`` once Snakemake holds its lock."""
    cfg = _run_config(tmp_path)
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    proc = subprocess.Popen([sys.executable, "-m", "xclusters.cli.main", "run", "--config",
                             str(cfg), "--cores", "1"], cwd=tmp_path, env=env,
                            start_new_session=True, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    locks = tmp_path / ".snakemake" / "locks"
    deadline = time.time() + 240
    while time.time() < deadline and not (locks.is_dir() and list(locks.iterdir())):
        assert proc.poll() is None, "the run ended before it locked"
        time.sleep(0.5)
    assert list(locks.iterdir()), "Snakemake never locked"
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    time.sleep(1)
    assert list(locks.iterdir()), "the kill left no lock: nothing tested"
    res = _xclusters(tmp_path, "run", "--config", cfg, "-n")
    assert res.returncode == 0, res.stderr
    assert "removed the Snakemake lock" in res.stderr
    assert _no_locks(locks)


# --------------------------------------------------------------------------- 4. config

def _cfg_text(raw: str = "", **replace) -> str:
    """config/test.yaml with top-level keys replaced (``None`` drops one), plus raw YAML."""
    cfg = yaml.safe_load(TEST_CONFIG.read_text())
    cfg["results_dir"] = "results-refuse-test"
    for key, value in replace.items():
        if value is None:
            cfg.pop(key, None)
        else:
            cfg[key] = value
    return yaml.safe_dump(cfg, sort_keys=False) + raw


def _no_locks(locks: Path) -> bool:
    return not locks.is_dir() or not list(locks.iterdir())


BOMB = "".join([f"l0: &l0 [{', '.join(['lol'] * 9)}]\n"] + [
    f"l{i}: &l{i} [{', '.join([f'*l{i - 1}'] * 9)}]\n" for i in range(1, 9)])


def test_duplicate_key_is_a_config_error(tmp_path, capsys, caplog):
    cfg = tmp_path / "dup.yaml"
    cfg.write_text(_cfg_text() + "run: again\n")
    rc, text = run_cli(["check-config", "--config", cfg], capsys, caplog)
    assert_failed(rc, text, r"dup\.yaml: not valid YAML: duplicate key 'run' at line \d+ "
                            r"\(first at line \d+\)", code=2)


def test_alias_bomb_fails_fast_and_small(tmp_path, capsys, caplog):
    cfg = tmp_path / "bomb.yaml"
    cfg.write_text(_cfg_text(BOMB + "projections: *l8\n", projections=None))
    t0 = time.perf_counter()
    rc, text = run_cli(["check-config", "--config", cfg], capsys, caplog)
    elapsed = time.perf_counter() - t0
    assert_failed(rc, text, r"expands to more than 100000 values through its aliases", code=2)
    assert elapsed < 5.0 and len(text) < 2000, (elapsed, len(text))


def test_long_values_are_truncated_in_messages(tmp_path, capsys, caplog):
    cfg = tmp_path / "long.yaml"
    cfg.write_text(_cfg_text(projections=["q"] * 20000))
    rc, text = run_cli(["check-config", "--config", cfg], capsys, caplog)
    assert_failed(rc, text, r"projections", r"\.\.\. \(\d+ characters\)",
                  r"\.\.\. and \d+ more lines", code=2)
    assert len(text) < 20 * 1000


@pytest.mark.parametrize("where", ["file", "below a file"])
def test_results_dir_that_is_a_file_is_an_error(tmp_path, capsys, caplog, where):
    f = tmp_path / "notes.txt"
    f.write_text("not a directory\n")
    rd = f if where == "file" else f / "out"
    cfg = tmp_path / "c.yaml"
    cfg.write_text(_cfg_text(results_dir=str(rd)))
    rc, text = run_cli(["check-config", "--config", cfg], capsys, caplog)
    assert_failed(rc, text, rf"results_dir = '{rd}': {f} exists and is not a directory",
                  code=2)
    assert f.read_text() == "not a directory\n"


def test_snakemake_configfile_duplicate_key_is_refused(tmp_path):
    cfg = tmp_path / "dup.yaml"
    cfg.write_text(_cfg_text(results_dir=str(tmp_path / "r")) + "run: again\n")
    res = subprocess.run([sys.executable, "-m", "snakemake", "--snakefile", str(REPO / "Snakefile"),
                          "--configfile", str(cfg), "-n", "--cores", "1"], cwd=REPO,
                         env={**os.environ, "PYTHONPATH": str(REPO / "src")},
                         capture_output=True, text=True, timeout=300)
    assert res.returncode != 0
    assert "duplicate key 'run'" in res.stdout + res.stderr


# --------------------------------------------------------------------------- 5. disk full

def disk_build(row: dict, config: dict, outdir: str) -> dict:
    """Stand-in cluster build that writes a photon list the way pyXSIM does (temporary name)."""
    from xclusters.parallel.errors import stage_context

    cdir = Path(outdir) / row["cluster_id"]
    cdir.mkdir(parents=True, exist_ok=True)
    tmp = cdir / f".photons_z.h5.tmp-{os.getpid()}.h5"
    opts = config["_test"]
    with stage_context("photons", row["cluster_id"]):
        with open(tmp, "wb") as fh:
            fh.write(b"\1" * 4096)
            if opts["mode"] == "inject":
                fh.flush()
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(tmp))
            for _ in range(opts["mib"]):
                fh.write(b"\1" * 2**20)
                fh.flush()
                os.fsync(fh.fileno())
    raise AssertionError("the disk did not fill")


def _disk_shard(d: Path) -> Path:
    from xclusters.parallel import split_shards

    t = Table({"cluster_id": ["c000", "c001", "c002"], "halo_id": [1, 2, 3],
               "m500c": [1e14, 2e14, 3e14], "redshift": [0.1, 0.2, 0.3]})
    return split_shards(t, 3, d / "shards")[0]


def _disk_config(mode, mib=0):
    from xclusters.config import load_config, merge_config

    cfg = merge_config(load_config(), {"seed": 1, "projections": ["z"], "parallel": {
        "backend": "none", "retries": 1, "on_error": "skip"}})
    cfg["_test"] = {"mode": mode, "mib": mib}
    return cfg


@pytest.fixture
def small_fs(tmp_path):
    """A 1 MiB tmpfs (root only)."""
    mnt = tmp_path / "small"
    mnt.mkdir()
    if os.geteuid() != 0 or subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs",
                                            str(mnt)], capture_output=True).returncode:
        pytest.skip("needs root to mount a small tmpfs")
    yield mnt
    subprocess.run(["umount", str(mnt)], check=True)


@pytest.mark.parametrize("mode", ["real 1 MiB tmpfs", "injected ENOSPC"])
def test_disk_full_stops_the_shard_naming_the_path_and_removes_temporaries(
        tmp_path, request, mode):
    from xclusters.io import is_temporary
    from xclusters.parallel import run_shard
    from xclusters.parallel.errors import DiskFullError

    if mode.startswith("real"):
        clusters = request.getfixturevalue("small_fs") / "clusters"
        config = _disk_config("fill", mib=4)
    else:
        clusters = tmp_path / "clusters"
        config = _disk_config("inject")
    shard = _disk_shard(tmp_path)
    manifest = tmp_path / "manifest.ecsv"
    with pytest.raises(DiskFullError) as exc:
        run_shard(shard, disk_build, config=config, clusters_dir=clusters,
                  expected_outputs=lambda row, d: [Path(d) / row["cluster_id"] / "img.fits"],
                  manifest_path=manifest)
    msg = str(exc.value)
    assert msg.startswith("no space left on device writing ") and "c000" in msg
    assert str(clusters / "c000") in msg and "MiB free there" in msg
    assert exc.value.errno == errno.ENOSPC
    assert not [p for p in clusters.rglob("*") if is_temporary(p)], "temporaries left"
    assert not manifest.exists()  # the job stops: the next clusters are not tried
    assert not (clusters / "c001").exists()


def test_disk_full_error_crosses_process_boundaries_and_reaches_the_cli(tmp_path, capsys,
                                                                       caplog, monkeypatch):
    import pickle  # noqa: S403 - round trip of our own exception, as Dask does

    from xclusters.parallel.errors import DiskFullError, disk_full_from

    e = DiskFullError(str(tmp_path / "x.h5"), "c007", "detail")
    back = pickle.loads(pickle.dumps(e))
    assert str(back) == str(e) and back.errno == errno.ENOSPC and back.cluster_id == "c007"
    h5 = OSError("Unable to synchronously write data (file write failed: time = Tue, "
                 "filename = '/r/c/photons.h5', errno = 28, error message = 'No space left on "
                 "device')")
    assert disk_full_from(h5, tmp_path).path == "/r/c/photons.h5"
    assert disk_full_from(ValueError("bad"), tmp_path) is None
    # the job's own message: one line, no traceback
    from xclusters.pipeline import shard as shard_mod

    def full(*a, **k):
        raise DiskFullError(str(tmp_path / "clusters" / "c000" / "photons_z.h5"), "c000")

    monkeypatch.setattr(shard_mod, "build_shard", full)
    cfg = tmp_path / "c.yaml"
    cfg.write_text(_cfg_text(results_dir=str(tmp_path / "r")))
    (tmp_path / "s.ecsv").write_text("x\n")
    rc, text = run_cli(["build-shard", "--config", cfg, "--shard", tmp_path / "s.ecsv",
                        "--clusters-dir", tmp_path / "clusters", "--manifest",
                        tmp_path / "m.ecsv"], capsys, caplog)
    assert_failed(rc, text, r"build-shard failed: no space left on device writing .*"
                            r"photons_z\.h5 \(cluster c000\)")


def test_xclusters_run_repeats_the_disk_full_line(tmp_path, capsys, caplog):
    from xclusters.cli.main import _report_disk_full

    logs = tmp_path / "run" / "logs"
    logs.mkdir(parents=True)
    (logs / "build_shard_000.log").write_text(
        "x ERROR: build-shard failed: no space left on device writing /r/c000/p.h5\n")
    with caplog.at_level(logging.ERROR, logger="xclusters"):
        _report_disk_full(tmp_path / "run", since=0.0)
    assert "run failed: no space left on device" in caplog.text
    assert "build_shard_000.log" in caplog.text and "/r/c000/p.h5" in caplog.text


def test_probe_finds_a_full_disk(small_fs):
    """After a KilledWorker (no Python error) the shard job probes the clusters directory."""
    from xclusters.parallel.errors import probe_disk_full

    assert probe_disk_full(small_fs) is None
    (small_fs / "fill").write_bytes(b"\0" * (2**20 - 4096 * 2))
    full = probe_disk_full(small_fs)
    assert full is not None and str(full).startswith(f"no space left on device writing "
                                                     f"{small_fs}")
    assert not [p for p in small_fs.iterdir() if p.name != "fill"]
