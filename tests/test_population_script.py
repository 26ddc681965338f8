"""scripts/population_figures.py: runs end to end, conserves flux, fits slopes correctly."""
from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "scripts" / "population_figures.py"


@pytest.fixture(scope="module")
def pf():
    spec = importlib.util.spec_from_file_location("population_figures", SCRIPT)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.mark.slow
def test_script_writes_figures_and_summary(tmp_path):
    env = dict(os.environ, OMP_NUM_THREADS="1", MPLBACKEND="Agg")
    res = subprocess.run([sys.executable, str(SCRIPT), "--n-clusters", "6", "--grid-cells", "32",
                          "--image-pixels", "128", "--out-dir", str(tmp_path)],
                         capture_output=True, text=True, env=env, timeout=300, cwd=tmp_path)
    assert res.returncode == 0, res.stderr[-2000:]
    for name in ("population_images", "population_lm", "population_morphology"):
        png = tmp_path / f"{name}.png"
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert 5_000 < png.stat().st_size < 300_000
    assert "clusters: 6 " in res.stdout
    slope = float(re.search(r"ln\(L E\(z\)\^-1\.85\) = [-\d.]+ \+ ([-\d.]+) ln M500",
                            res.stdout).group(1))
    assert 0.5 < slope < 3.0, res.stdout
    for name in ("concentration", "asymmetry", "smoothness"):
        assert re.search(rf"^{name}\s+min \d", res.stdout, re.M), res.stdout


def test_help_names_the_options():
    res = subprocess.run([sys.executable, str(SCRIPT), "--help"], capture_output=True,
                         text=True, timeout=60)
    assert res.returncode == 0
    for opt in ("--out-dir", "--n-clusters", "--seed", "--grid-cells"):
        assert opt in res.stdout


def test_rebinning_conserves_counts(pf):
    """The ideal-like image holds every count of the grid when it covers the whole box,
    and the Poisson image has that mean."""
    from xclusters.catalogs.soxs_lightcone import lightcone_cosmology
    from xclusters.sources import build_analytic_source

    cfg = yaml.safe_load((ROOT / "config" / "config.yaml").read_text())
    src_cfg = dict(cfg["sources"], grid_cells=24, subsample=1, include_agn=False)
    src = build_analytic_source({"halo_id": 5, "m500c": 3e14, "redshift": 0.2}, src_cfg, 3)
    spec, _ = pf.soft_band_model(cfg["emission"])
    area = pf.ideal_area(spec.emid)
    kw = dict(exposure_s=1e4, pixel_arcsec=9.6, nh_1e22=0.04, cosmo=lightcone_cosmology(),
              agn=False)
    big = pf.ideal_soft_image(src, spec, area, n_pixels=256, rng=np.random.default_rng(1), **kw)
    # 3 R500c box at z = 0.2 is ~ 2.9 Mpc ~ 170 px: inside 256 px
    assert big["r500c_pix"] * 3 < 256
    small = pf.ideal_soft_image(src, spec, area, n_pixels=64, rng=np.random.default_rng(1), **kw)
    total = big["expected"].sum()
    assert total > 100
    assert small["expected"].sum() < total  # the 64-px image crops the box
    # odd pixel count: the grid maps onto a different pixel lattice, the total is the same
    odd = pf.ideal_soft_image(src, spec, area, n_pixels=255, rng=np.random.default_rng(1), **kw)
    np.testing.assert_allclose(odd["expected"].sum(), total, rtol=1e-10)
    assert abs(big["counts"].sum() - total) < 5 * np.sqrt(total)
    # counts scale with exposure
    half = pf.ideal_soft_image(src, spec, area, n_pixels=256, rng=np.random.default_rng(1),
                               **dict(kw, exposure_s=5e3))
    np.testing.assert_allclose(half["expected"].sum(), total / 2, rtol=1e-12)


def test_lm_fit_recovers_a_known_relation(pf):
    rng = np.random.default_rng(0)
    m = 10 ** rng.uniform(13.7, 15.0, 200)
    ez = 1 + rng.uniform(0, 0.3, 200)
    lx = np.exp(47.0 + 1.5 * np.log(m) + 1.85 * np.log(ez) + rng.normal(0, 0.1, 200))
    fit = pf.fit_lm({"m500c": m, "lx": lx, "ez": ez}, n_boot=200)
    assert abs(fit["slope"] - 1.5) < 3 * fit["slope_err"] and fit["slope_err"] < 0.05
    assert abs(fit["scatter_lnL"] - 0.1) < 0.02
    expected_offset = ((47.0 + 1.5 * np.log(2e14)) - (47.392 + 1.61 * np.log(2e14))) / np.log(10)
    assert abs(fit["offset_dex"] - expected_offset) < 0.02
