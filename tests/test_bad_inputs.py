"""Bad inputs through the command line: each gives a clear error, nothing built is damaged.

Every case drives ``xclusters.cli.main.main([...])`` as a user (or a Snakemake rule) would and
checks three facts: the exit code is non-zero (1 for input errors, 2 for config errors), the
message names the input and the fix, and the outputs that already existed in the results
directory (``sample.ecsv``, ``dataset.h5``, models, images, predictions) are byte-identical
afterwards. A few inputs are accepted on purpose (units convertible to the expected ones, bad
rows with ``catalog.on_bad_row: drop``, an image without WCS): those cases check the logged
reason and the result. The library-level checks of the same rules live in test_catalogs,
test_config, test_dataset and test_predict; this file is the user-facing table.
"""
from __future__ import annotations

import logging
import os
import shutil
import zipfile
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import astropy.units as u  # noqa: E402
import h5py  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import yaml  # noqa: E402
from astropy.io import fits  # noqa: E402
from astropy.table import Table  # noqa: E402

from xclusters.cli.main import main  # noqa: E402
from xclusters.config import load_config  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
TEST_CONFIG = REPO / "config" / "test.yaml"


# --------------------------------------------------------------------------- helpers

@pytest.fixture(autouse=True)
def _restore_log_handlers():
    """``main`` attaches a stderr handler per call; keep the package logger as it was."""
    logger = logging.getLogger("xclusters")
    handlers, level = list(logger.handlers), logger.level
    yield
    logger.handlers[:] = handlers
    logger.setLevel(level)


def run_cli(argv, capsys, caplog) -> tuple[int, str]:
    """Run ``xclusters <argv>``; return the exit code and everything it printed or logged."""
    caplog.clear()
    logger = logging.getLogger("xclusters")
    # main() attaches a stderr handler once; one bound to an earlier (closed) capture stream
    # would fail, so let this call attach its own to the current sys.stderr
    logger.handlers[:] = [h for h in logger.handlers if type(h) is not logging.StreamHandler]
    with caplog.at_level(logging.INFO, logger="xclusters"):
        rc = main([str(a) for a in argv])
    out = capsys.readouterr()
    return rc, "\n".join([out.out, out.err, caplog.text])


def snapshot(*paths: Path) -> dict[Path, bytes]:
    """Bytes of every file under ``paths`` (files or directories)."""
    files = {}
    for p in paths:
        for f in ([p] if p.is_file() else sorted(q for q in p.rglob("*") if q.is_file())):
            files[f] = f.read_bytes()
    assert files, f"nothing to snapshot under {paths}"
    return files


def assert_unchanged(before: dict[Path, bytes]) -> None:
    for f, data in before.items():
        assert f.is_file(), f"{f} was removed by a failing command"
        assert f.read_bytes() == data, f"{f} was modified by a failing command"


def assert_failed(rc: int, text: str, *patterns: str, code: int = 1) -> None:
    """Non-zero exit ``code`` and every regex of ``patterns`` in the output (case-insensitive)."""
    import re

    assert rc == code, f"exit code {rc}, expected {code}; output:\n{text}"
    for pat in patterns:
        assert re.search(pat, text, flags=re.I | re.S), f"{pat!r} not in:\n{text}"
    assert "Traceback" not in text


def _halo_table(n: int = 12) -> Table:
    """Halos inside config/test.yaml's sample ranges (log M 14-15, z 0.05-0.3)."""
    t = Table()
    t["halo_id"] = np.arange(1, n + 1)
    t["m500c"] = np.logspace(14.05, 14.9, n) * u.Msun
    t["redshift"] = np.linspace(0.06, 0.29, n)
    t["ra"] = np.full(n, 150.0) * u.deg
    t["dec"] = np.full(n, 2.2) * u.deg
    return t


def _write_config(cfg_path: Path, results: Path, **catalog) -> Path:
    cfg = load_config(TEST_CONFIG)  # merged over the defaults
    cfg["results_dir"] = str(results)
    cfg["catalog"].update(catalog)
    cfg_path.write_text(yaml.safe_dump(cfg))
    return cfg_path


# --------------------------------------------------------------------------- catalogues

@pytest.fixture
def run(tmp_path, capsys, caplog):
    """A results dir with a good ``sample.ecsv`` made by ``xclusters sample``."""
    results = tmp_path / "results"
    good = tmp_path / "halos.ecsv"
    _halo_table().write(good)
    cfg = _write_config(tmp_path / "good.yaml", results, source="table", path=str(good))
    sample = results / "test" / "sample.ecsv"
    rc, text = run_cli(["sample", "--config", cfg, "--out", sample], capsys, caplog)
    assert rc == 0 and sample.is_file(), text
    return {"dir": tmp_path, "results": results, "sample": sample, "good": good}


def _truncated_mid_row(d: Path) -> Path:
    text = (d / "halos.ecsv").read_text()
    cut = text.rindex("\n", 0, len(text) // 2 + len(text) // 4) + 4  # a few chars into a row
    (d / "cut.ecsv").write_text(text[:cut])
    return d / "cut.ecsv"


def _truncated_header(d: Path) -> Path:
    (d / "cut_header.ecsv").write_text((d / "halos.ecsv").read_text()[:150])
    return d / "cut_header.ecsv"


def _csv_missing_column(d: Path) -> Path:
    t = _halo_table()
    del t["redshift"]
    t.write(d / "no_z.csv")
    return d / "no_z.csv"


def _not_fits(d: Path) -> Path:
    (d / "halos.fits").write_text("halo_id,m500c,redshift\n1,5e14,0.1\n")
    return d / "halos.fits"


def _unit(unit: str):
    def write(d: Path) -> Path:
        t = _halo_table()
        t["m500c"].unit = unit
        path = d / f"unit_{unit.replace('/', '_per_')}.ecsv"
        t.write(path)
        return path
    return write


def _string_ids(d: Path) -> Path:
    t = _halo_table()
    t["halo_id"] = [f"cl{i}" for i in range(len(t))]
    t.write(d / "str_ids.ecsv")
    return d / "str_ids.ecsv"


def _bad_rows(d: Path) -> Path:
    t = _halo_table()
    t["m500c"][1] = np.nan
    t["m500c"][2] = -3e14
    t["halo_id"][5] = t["halo_id"][4]
    t.write(d / "bad_rows.ecsv")
    return d / "bad_rows.ecsv"


def _duplicates_only(d: Path) -> Path:
    t = _halo_table()
    t["halo_id"][3] = t["halo_id"][0]
    t.write(d / "dups.ecsv")
    return d / "dups.ecsv"


def _out_of_range(d: Path) -> Path:
    t = _halo_table()
    t["m500c"] = np.full(len(t), 1e12) * u.Msun
    t.write(d / "groups.ecsv")
    return d / "groups.ecsv"


def _empty(d: Path) -> Path:
    _halo_table()[:0].write(d / "empty.ecsv")
    return d / "empty.ecsv"


def _all_bad(d: Path) -> Path:
    t = _halo_table()
    t["m500c"] = -np.abs(t["m500c"])
    t.write(d / "all_bad.ecsv")
    return d / "all_bad.ecsv"


def _xlsx(d: Path) -> Path:
    (d / "halos.xlsx").write_bytes(b"PK\x03\x04")
    return d / "halos.xlsx"


CATALOG_ERRORS = [
    # (case, writer, catalog overrides, patterns the message must contain)
    ("ecsv cut mid-row", _truncated_mid_row, {},
     [r"cut\.ecsv: cannot be read as ascii\.ecsv", r"not truncated"]),
    ("ecsv cut in the header", _truncated_header, {},
     [r"cut_header\.ecsv: cannot be read", r"not truncated"]),
    ("csv without redshift", _csv_missing_column, {},
     [r"no_z\.csv: missing required column\(s\) redshift", r"catalog_table\.schema\.yaml"]),
    ("text file named .fits", _not_fits, {},
     [r"halos\.fits: cannot be read as fits", r"valid fits table"]),
    ("mass unit Msun/h", _unit("solMass/h"), {},
     [r"column 'm500c' has unit 'solMass / h'", r"M\[Msun\] = M\[Msun/h\] / h"]),
    ("unparseable unit", _unit("solar_masses"), {},
     [r"'m500c' has unit 'solar_masses' which astropy cannot parse", r"Convert the column"]),
    ("mass in kpc", _unit("kpc"), {},
     [r"'m500c' has unit 'kpc' which cannot be converted.*solMass"]),
    ("string halo ids", _string_ids, {},
     [r"str_ids\.ecsv: column 'halo_id' has type", r"must hold integers"]),
    ("NaN/negative mass, on_bad_row error", _bad_rows, {"on_bad_row": "error"},
     [r"bad_rows\.ecsv: column 'm500c': NaN or non-positive mass in row 1 \(halo_id 2\), "
      r"row 2 \(halo_id 3\)", r"on_bad_row: drop"]),
    ("duplicate ids, on_bad_row error", _duplicates_only, {"on_bad_row": "error"},
     [r"dups\.ecsv: column 'halo_id': duplicate halo_id.*row 3 \(halo_id 1\)",
      r"make halo_id unique"]),
    ("no halo in the sample ranges", _out_of_range, {},
     [r"no halo with log10\(M500c/Msun\) in \[14\.0, 15\.0\)", r"groups\.ecsv",
      r"Adjust sample\.log_m500c"]),
    ("table without rows", _empty, {}, [r"empty\.ecsv: the catalogue has no rows"]),
    ("every row bad, on_bad_row drop", _all_bad, {},
     [r"all_bad\.ecsv: dropping 12 row", r"no usable rows left", r"fix the rows"]),
    ("unknown file format", _xlsx, {},
     [r"halos\.xlsx: unknown table format", r"\.csv, \.ecsv, \.fit"]),
    ("catalogue file missing", lambda d: d / "nope.ecsv", {},
     [r"catalog\.path = .*nope\.ecsv: file not found"]),
]


@pytest.mark.parametrize("case,writer,overrides,patterns", CATALOG_ERRORS,
                         ids=[c[0] for c in CATALOG_ERRORS])
def test_bad_catalogue_is_a_clear_error(run, capsys, caplog, case, writer, overrides,
                                        patterns):
    path = writer(run["dir"])
    cfg = _write_config(run["dir"] / "bad.yaml", run["results"], source="table",
                        path=str(path), **overrides)
    before = snapshot(run["sample"])
    rc, text = run_cli(["sample", "--config", cfg, "--out", run["sample"]], capsys, caplog)
    assert_failed(rc, text, *patterns)
    assert_unchanged(before)
    assert not list(run["sample"].parent.glob(".*tmp*")), "temporary file left behind"


def test_bad_rows_dropped_with_reasons(run, capsys, caplog):
    cfg = _write_config(run["dir"] / "drop.yaml", run["results"], source="table",
                        path=str(_bad_rows(run["dir"])), on_bad_row="drop")
    out = run["dir"] / "sample_drop.ecsv"
    rc, text = run_cli(["sample", "--config", cfg, "--out", out], capsys, caplog)
    assert rc == 0, text
    assert "dropping 2 row(s), column 'm500c': NaN or non-positive mass: row 1 (halo_id 2), " \
           "row 2 (halo_id 3)" in text
    assert "dropping 1 row(s), column 'halo_id': duplicate halo_id (first occurrence kept): " \
           "row 5 (halo_id 5)" in text
    sample = Table.read(out)
    assert not {2, 3} & set(sample["halo_id"].tolist())
    assert np.all(sample["m500c"] > 0)


def test_convertible_mass_unit_is_converted(run, capsys, caplog):
    t = _halo_table()
    t["m500c"] = t["m500c"].to(u.kg)
    t.write(run["dir"] / "kg.ecsv")
    cfg = _write_config(run["dir"] / "kg.yaml", run["results"], source="table",
                        path=str(run["dir"] / "kg.ecsv"))
    out = run["dir"] / "sample_kg.ecsv"
    rc, text = run_cli(["sample", "--config", cfg, "--out", out], capsys, caplog)
    assert rc == 0 and "converted column m500c from kg to solMass" in text, text
    # the same halos and masses as from the table in Msun
    ref, got = Table.read(run["sample"]), Table.read(out)
    assert list(ref["halo_id"]) == list(got["halo_id"])
    np.testing.assert_allclose(got["m500c"], ref["m500c"], rtol=1e-12)


def test_table_without_sky_position_gets_the_default_pointing(run, capsys, caplog):
    """Snapshot-style tables (no ra/dec) used to give NaN pointings that failed at the events
    stage ("nan values are not allowed in FITS headers"); now the sample records a default."""
    from xclusters.catalogs.sample import DEFAULT_SKY_DEG

    t = _halo_table()
    del t["ra"], t["dec"]
    t.write(run["dir"] / "nosky.ecsv")
    cfg = _write_config(run["dir"] / "nosky.yaml", run["results"], source="table",
                        path=str(run["dir"] / "nosky.ecsv"))
    out = run["dir"] / "sample_nosky.ecsv"
    rc, text = run_cli(["sample", "--config", cfg, "--out", out], capsys, caplog)
    assert rc == 0 and "default pointing" in text, text
    sample = Table.read(out)
    assert np.all(sample["ra"] == DEFAULT_SKY_DEG[0])
    assert np.all(sample["dec"] == DEFAULT_SKY_DEG[1])


def test_halos_outside_the_snapshot_box(run, capsys, caplog):
    from test_catalogs import _write_gadget_header  # a tiny Gadget HDF5 snapshot

    snap = run["dir"] / "snap.hdf5"
    _write_gadget_header(snap)  # box 0..10000 kpc/h comoving
    t = _halo_table(4)
    t["x_c"] = [100.0, 5000.0, 12000.0, 9000.0] * u.kpc
    t["y_c"] = [100.0, 5000.0, 500.0, 9000.0] * u.kpc
    t["z_c"] = [100.0, 5000.0, 500.0, -5.0] * u.kpc
    t.write(run["dir"] / "boxed.ecsv")
    common = dict(source="table", path=str(run["dir"] / "boxed.ecsv"), snapshot=str(snap))
    before = snapshot(run["sample"])
    cfg = _write_config(run["dir"] / "box_err.yaml", run["results"], on_bad_row="error",
                        **common)
    rc, text = run_cli(["sample", "--config", cfg, "--out", run["sample"]], capsys, caplog)
    assert_failed(rc, text, r"boxed\.ecsv: column 'x_c/y_c/z_c': centre outside the snapshot "
                  r"box.*row 2 \(halo_id 3\), row 3 \(halo_id 4\)",
                  r"comoving kpc/h or use the matching snapshot")
    assert_unchanged(before)
    cfg = _write_config(run["dir"] / "box_drop.yaml", run["results"], on_bad_row="drop",
                        **common)
    out = run["dir"] / "sample_box.ecsv"
    rc, text = run_cli(["sample", "--config", cfg, "--out", out], capsys, caplog)
    assert rc == 0 and "dropping 2 row(s), column 'x_c/y_c/z_c'" in text, text
    assert sorted(Table.read(out)["halo_id"]) == [1, 2]


# --------------------------------------------------------------------------- configs

def _edit(cfg: dict, case: str) -> None:
    if case == "typo":
        cfg["sample"]["n_cluster"] = cfg["sample"].pop("n_clusters")
    elif case == "unknown instrument":
        cfg["instruments"]["xmm_pn"] = {"exposure_ks": 10.0}
    elif case == "crop larger than field":
        cfg["instruments"]["erosita"]["image_pixels"] = 512
    elif case == "unknown emission model":
        cfg["emission"]["model"] = "mekal"
    elif case == "bad on_bad_row":
        cfg["catalog"]["on_bad_row"] = "skip"
    elif case == "unknown projection":
        cfg["projections"] = ["x", "w"]


CONFIG_ERRORS = [
    ("typo", [r"unknown key\(s\) sample\.n_cluster", r"n_clusters", r"Fix the spelling"]),
    ("unknown instrument", [r"instruments\.xmm_pn", r"chandra_acisi, erosita"]),
    ("crop larger than field", [r"image_pixels", r"512", r"field_pixels"]),
    ("unknown emission model", [r"emission\.model = 'mekal'", r"apec_table"]),
    ("bad on_bad_row", [r"catalog\.on_bad_row = 'skip'", r"drop"]),
    ("unknown projection", [r"projections\.1 = 'w'", r"'x', 'y', 'z'"]),
]


@pytest.mark.parametrize("case,patterns", CONFIG_ERRORS, ids=[c[0] for c in CONFIG_ERRORS])
def test_bad_config_is_a_clear_error(run, capsys, caplog, case, patterns):
    cfg = load_config(TEST_CONFIG)  # merged over the defaults
    cfg["results_dir"] = str(run["results"])
    _edit(cfg, case)
    path = run["dir"] / "bad_config.yaml"
    path.write_text(yaml.safe_dump(cfg))
    rc, text = run_cli(["check-config", "--config", path], capsys, caplog)
    assert_failed(rc, text, r"bad_config\.yaml", *patterns, code=2)
    before = snapshot(run["sample"])
    rc, text = run_cli(["sample", "--config", path, "--out", run["sample"]], capsys, caplog)
    assert_failed(rc, text, *patterns, code=2)
    assert_unchanged(before)


def test_unknown_instrument_or_band_in_the_image_stage():
    """Names reach the image stage only from code, but still fail with the allowed names."""
    from xclusters.images.bands import band_masks
    from xclusters.instruments import prepare_instrument

    with pytest.raises(ValueError, match=r"unknown instrument 'xmm'.*erosita"):
        band_masks({}, "xmm")
    cfg = load_config(TEST_CONFIG)  # merged over the defaults
    with pytest.raises(ValueError, match=r"unknown instrument 'xmm'.*erosita"):
        prepare_instrument("xmm", cfg)


# --------------------------------------------------------------------------- dataset files

@pytest.fixture(scope="module")
def dataset_run(tmp_path_factory):
    """A real dataset.h5 (test_dataset's tiny images), models and outputs that must survive."""
    from test_dataset import _config, make_run
    from xclusters.dataset import build_dataset

    root = tmp_path_factory.mktemp("ds_run")
    sample, manifests = make_run(root, n=5, failed=())
    good = build_dataset(sample, manifests, root / "dataset.h5", config=_config())
    data = good.read_bytes()
    bad = root / "bad"
    bad.mkdir()
    (bad / "truncated.h5").write_bytes(data[: len(data) // 2])
    shutil.copy(good, bad / "incomplete.h5")
    with h5py.File(bad / "incomplete.h5", "a") as fh:
        del fh.attrs["complete"]
    (bad / "not_hdf5.h5").write_text("sample.ecsv by mistake\n")
    # existing outputs of the run (their content does not matter, only that it survives)
    outs = root / "outputs"
    (outs / "models").mkdir(parents=True)
    (outs / "predictions").mkdir()
    (outs / "evaluation").mkdir()
    (outs / "models" / "superobs.keras").write_bytes(b"existing superobs model")
    (outs / "models" / "mass_fold0.keras").write_bytes(b"existing mass model")
    (outs / "predictions" / "superobs_test.h5").write_bytes(b"existing predictions")
    with h5py.File(outs / "predictions" / "ok_pred.h5", "w") as fh:  # a valid predictions file
        fh["prediction"] = np.zeros((1, 32, 32, 3), np.float32)
        fh["index"] = np.zeros(1, np.int64)
    Table({"row": [0], "cluster_id": ["c000"], "fold": [0], "log_m500c_true": [14.5],
           "log_m500c_pred": [14.4]}).write(outs / "predictions" / "mass.ecsv")
    (outs / "evaluation" / "table3.ecsv").write_text("existing evaluation\n")
    return {"root": root, "good": good, "bad": bad, "outs": outs}


def _dataset_commands(ds: Path, o: Path) -> dict[str, list]:
    cfg = TEST_CONFIG
    return {
        "train-superobs": ["train-superobs", "--config", cfg, "--dataset", ds, "--out",
                           o / "models/superobs.keras", "--workdir", o / "work_s"],
        "train-mass": ["train-mass", "--config", cfg, "--dataset", ds, "--fold", 0, "--out",
                       o / "models/mass_fold0.keras", "--workdir", o / "work_m"],
        "predict-dataset": ["predict-dataset", "--model", o / "models/superobs.keras",
                            "--dataset", ds, "--out", o / "predictions/superobs_test.h5"],
        "predict-mass-dataset": ["predict-mass-dataset", "--models",
                                 o / "models/mass_fold0.keras", "--dataset", ds, "--out",
                                 o / "predictions/mass.ecsv"],
        "evaluate-superobs": ["evaluate-superobs", "--config", cfg, "--dataset", ds,
                              "--predictions", o / "predictions/ok_pred.h5", "--outdir",
                              o / "evaluation"],
        "evaluate-mass": ["evaluate-mass", "--config", cfg, "--dataset", ds, "--predictions",
                          o / "predictions/mass.ecsv", "--outdir", o / "evaluation"],
    }


DATASET_PROBLEMS = {
    "truncated.h5": [r"truncated\.h5 is not a readable HDF5 file", r"truncated",
                     r"rerun the `dataset` rule"],
    "incomplete.h5": [r"incomplete\.h5 has no complete=1 attribute",
                      r"rerun the `dataset` rule"],
    "not_hdf5.h5": [r"not_hdf5\.h5 is not a readable HDF5 file", r"rerun the `dataset` rule"],
    "missing.h5": [r"missing\.h5 does not exist", r"`dataset` rule"],
}


@pytest.mark.parametrize("problem", list(DATASET_PROBLEMS))
@pytest.mark.parametrize("command", list(_dataset_commands(Path("d"), Path("o"))))
def test_bad_dataset_file_is_a_clear_error(dataset_run, capsys, caplog, command, problem):
    o = dataset_run["outs"]
    before = snapshot(o, dataset_run["good"])
    argv = _dataset_commands(dataset_run["bad"] / problem, o)[command]
    rc, text = run_cli(argv, capsys, caplog)
    assert_failed(rc, text, rf"{command} failed", *DATASET_PROBLEMS[problem])
    assert_unchanged(before)


def test_corrupt_image_given_to_the_dataset_step(tmp_path, capsys, caplog):
    from test_dataset import make_run

    sample, manifests = make_run(tmp_path, n=3, failed=())
    cfg = load_config(TEST_CONFIG)  # merged over the defaults
    cfg["projections"] = ["x", "z"]  # test_dataset's images
    cfg["instruments"]["chandra_acisi"]["enabled"] = False
    cfg_path = tmp_path / "cfg.yaml"
    cfg_path.write_text(yaml.safe_dump(cfg))
    out = tmp_path / "dataset.h5"
    rc, text = run_cli(["dataset", "--config", cfg_path, "--sample", sample, "--manifests",
                        *manifests, "--out", out], capsys, caplog)
    assert rc == 0, text
    before = snapshot(out)
    img = tmp_path / "clusters/c001/image_ideal_z.fits"
    img.write_bytes(img.read_bytes()[:2880 + 100])  # header and a sliver of the data
    rc, text = run_cli(["dataset", "--config", cfg_path, "--sample", sample, "--manifests",
                        *manifests, "--out", out], capsys, caplog)
    assert_failed(rc, text, r"dataset failed", r"c001/image_ideal_z\.fits",
                  r"truncated|corrupt", r"rerun")
    assert_unchanged(before)
    img.unlink()
    rc, text = run_cli(["dataset", "--config", cfg_path, "--sample", sample, "--manifests",
                        *manifests, "--out", out], capsys, caplog)
    assert_failed(rc, text, r"image .*c001/image_ideal_z\.fits is missing",
                  r"rerun that shard's build_shard rule")
    assert_unchanged(before)


# --------------------------------------------------------------------------- inference

N = 32
RA0, DEC0 = 150.0, 2.2


@pytest.fixture(scope="module")
def infer(tmp_path_factory):
    """Tiny trained-shape models, inputs good and bad, and an existing prediction."""
    import keras

    from xclusters.models.mass import build_mass_model
    from xclusters.models.superobs import build_superobs_model
    from xclusters.images.grid import image_wcs

    d = tmp_path_factory.mktemp("infer")
    keras.utils.set_random_seed(5)
    build_superobs_model(3, None).save(d / "superobs.keras")
    build_mass_model(N, output_bias=14.3).save(d / "mass_fold0.keras")
    (d / "text.keras").write_text("I am not a model\n")
    with zipfile.ZipFile(d / "zip.keras", "w") as z:
        z.writestr("readme.txt", "a zip, not a Keras archive")
    with h5py.File(d / "legacy.h5", "w") as fh:  # a legacy HDF5 model file
        fh.attrs["keras_version"] = "2.4.0"
    rng = np.random.default_rng(5)
    cube = rng.poisson(2.0, (3, N, N)).astype(np.float32)
    hdr = image_wcs((RA0, DEC0), N, 9.6).to_header()
    hdr["BUNIT"] = "count"
    hdr["EXPOSURE"] = 2000.0
    fits.PrimaryHDU(cube, header=hdr).writeto(d / "erosita.fits")
    fits.PrimaryHDU(cube, header=fits.Header({"BUNIT": "count"})).writeto(d / "no_wcs.fits")
    fits.PrimaryHDU(cube[0]).writeto(d / "chandra.fits")
    fits.PrimaryHDU(rng.poisson(1.0, (2 * N, 2 * N)).astype(np.float32)).writeto(
        d / "chandra_64.fits")
    (d / "not_fits.fits").write_text("SIMPLE? no.\n")
    n = 300
    ra = RA0 + rng.normal(0, 60 / 3600, n) / np.cos(np.radians(DEC0))
    dec = DEC0 + rng.normal(0, 60 / 3600, n)
    pi = rng.integers(74, 723, n)

    def events(name, cols):
        t = fits.BinTableHDU.from_columns(cols, name="EVENTS")
        t.header.update({"EXPOSURE": 2000.0, "RA_PNT": RA0, "DEC_PNT": DEC0})
        fits.HDUList([fits.PrimaryHDU(), t]).writeto(d / name)

    events("events.fits", [fits.Column("RA", "D", "deg", array=ra),
                           fits.Column("DEC", "D", "deg", array=dec),
                           fits.Column("PI", "J", "chan", array=pi)])
    events("events_no_pi.fits", [fits.Column("RA", "D", "deg", array=ra),
                                 fits.Column("DEC", "D", "deg", array=dec),
                                 fits.Column("ENERGY", "E", "eV", array=pi * 14.6)])
    events("events_no_radec.fits", [fits.Column("X", "D", array=ra),
                                    fits.Column("Y", "D", array=dec),
                                    fits.Column("PI", "J", array=pi)])
    out = d / "existing_prediction.fits"
    rc = main(["predict", "--model", str(d / "superobs.keras"), "--image",
               str(d / "erosita.fits"), "--out", str(out)])
    assert rc == 0 and out.is_file()
    return d


def _pred(d: Path, model: str, *src) -> list:
    return ["predict", "--model", d / model, *src, "--out", d / "existing_prediction.fits"]


PREDICT_ERRORS = [
    ("text file as model", lambda d: _pred(d, "text.keras", "--image", d / "erosita.fits"),
     [r"text\.keras: not a Keras '\.keras' model archive", r"super-observation CNN"]),
    ("zip without a model", lambda d: _pred(d, "zip.keras", "--image", d / "erosita.fits"),
     [r"zip\.keras: could not be loaded as a Keras model", r"super-observation CNN"]),
    ("legacy HDF5 model", lambda d: _pred(d, "legacy.h5", "--image", d / "erosita.fits"),
     [r"legacy\.h5: not a Keras '\.keras' model archive"]),
    ("mass model for predict", lambda d: _pred(d, "mass_fold0.keras", "--image",
                                               d / "erosita.fits"),
     [r"mass_fold0\.keras: model has input \(32, 32, 1\)", r"other paper's model"]),
    ("model missing", lambda d: _pred(d, "gone.keras", "--image", d / "erosita.fits"),
     [r"gone\.keras: model file not found", r"xclusters train"]),
    ("image not FITS", lambda d: _pred(d, "superobs.keras", "--image", d / "not_fits.fits"),
     [r"not_fits\.fits: not a readable FITS file"]),
    ("event list given as --image", lambda d: _pred(d, "superobs.keras", "--image",
                                                    d / "events.fits"),
     [r"events\.fits: expected a 3-band image", r"use --events"]),
    ("image given as --events", lambda d: _pred(d, "superobs.keras", "--events",
                                                d / "erosita.fits", "--ra", RA0, "--dec", DEC0),
     [r"erosita\.fits: no EVENTS extension", r"use --image"]),
    ("event list without PI", lambda d: _pred(d, "superobs.keras", "--events",
                                              d / "events_no_pi.fits", "--ra", RA0, "--dec",
                                              DEC0),
     [r"events_no_pi\.fits: EVENTS table has no PI \(or PHA\) column", r"ENERGY"]),
    ("event list without RA/DEC", lambda d: _pred(d, "superobs.keras", "--events",
                                                  d / "events_no_radec.fits", "--ra", RA0,
                                                  "--dec", DEC0),
     [r"events_no_radec\.fits: EVENTS table lacks column\(s\) \['RA', 'DEC'\]"]),
    ("cluster outside the field", lambda d: _pred(d, "superobs.keras", "--events",
                                                  d / "events.fits", "--ra", 10.0, "--dec",
                                                  -40.0, "--pixels", N),
     [r"events\.fits: none of its 300 events falls in the 32x32 px image centred on "
      r"\(RA, Dec\) = \(10\.0000, -40\.0000\)", r"events span RA 149\.9", r"--ra/--dec"]),
    ("sky position out of range", lambda d: _pred(d, "superobs.keras", "--events",
                                                  d / "events.fits", "--ra", 400.0, "--dec",
                                                  DEC0),
     [r"sky_center = \(400\.0, 2\.2\)", r"RA in \[0, 360\)"]),
    # predict-mass
    ("text file as mass model", lambda d: ["predict-mass", "--model", d / "text.keras",
                                           "--image", d / "chandra.fits"],
     [r"text\.keras: not a Keras '\.keras' model archive", r"paper-004 mass CNN"]),
    ("superobs model for predict-mass", lambda d: ["predict-mass", "--model",
                                                   d / "superobs.keras", "--image",
                                                   d / "chandra.fits"],
     [r"superobs\.keras: model has input \(None, None, 3\)", r"paper-004 mass CNN"]),
    ("3-band image for predict-mass", lambda d: ["predict-mass", "--model",
                                                 d / "mass_fold0.keras", "--image",
                                                 d / "erosita.fits"],
     [r"erosita\.fits: expected one single-band image \(H, W\)", r"\(3, 32, 32\)"]),
    ("wrong image size for predict-mass", lambda d: ["predict-mass", "--model",
                                                     d / "mass_fold0.keras", "--image",
                                                     d / "chandra_64.fits"],
     [r"chandra_64\.fits: image is 64x64 px but .*mass_fold0\.keras expects 32x32 px",
      r"rebin"]),
]


@pytest.mark.parametrize("case,argv,patterns", PREDICT_ERRORS, ids=[c[0] for c in PREDICT_ERRORS])
def test_bad_inference_input_is_a_clear_error(infer, capsys, caplog, case, argv, patterns):
    before = snapshot(infer / "existing_prediction.fits")
    rc, text = run_cli(argv(infer), capsys, caplog)
    assert_failed(rc, text, *patterns)
    assert_unchanged(before)


def test_events_without_sky_position_is_a_usage_error(infer, capsys):
    with pytest.raises(SystemExit, match=r"--events needs --ra and --dec"):
        main(["predict", "--model", str(infer / "superobs.keras"), "--events",
              str(infer / "events.fits"), "--out", str(infer / "x.fits")])
    assert not (infer / "x.fits").exists()


def test_image_without_wcs_is_predicted_with_a_warning(infer, tmp_path, capsys, caplog):
    """Accepted on purpose: the CNN needs no WCS; the user is told the output has none."""
    out = tmp_path / "pred.fits"
    rc, text = run_cli(_pred(infer, "superobs.keras", "--image", infer / "no_wcs.fits")[:-1]
                       + [out], capsys, caplog)
    assert rc == 0, text
    assert "no_wcs.fits: no celestial WCS in the header; the prediction has none" in text
    assert "prediction: shape (3, 32, 32)" in text and "[[" not in text  # no pixel dump
    with fits.open(out) as hdul:
        assert hdul[0].data.shape == (3, N, N) and "CTYPE1" not in hdul[0].header


def test_cli_prints_a_summary_not_pixels(infer, tmp_path, capsys, caplog):
    out = tmp_path / "pred.fits"
    rc, text = run_cli(["predict", "--model", infer / "superobs.keras", "--events",
                        infer / "events.fits", "--ra", RA0, "--dec", DEC0, "--pixels", N,
                        "--out", out, "--nr-baseline"], capsys, caplog)
    assert rc == 0, text
    assert f"out_fits: {out}" in text and "input: shape (3, 32, 32), counts per band" in text
    assert "background: " in text and "[[" not in text
