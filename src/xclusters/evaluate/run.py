"""Stage entry points: read the dataset and predictions, evaluate, write tables and figures.

See :mod:`xclusters.evaluate` for the list of output files.
"""
from __future__ import annotations

import functools
import logging
import re
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
from astropy.table import Table, vstack

from ..dataset.layout import chandra_observation_redshift, read_meta
from ..predict.superobs import clip_negative_counts
from ..provenance import provenance_record
from ..seeds import rng_for
from ..settings import EvaluateSettings, InstrumentsSettings, setting
from .mass import (MASS_RANGE_MID, annulus_counts, count_luminosity,
                   cross_validated_power_law, fit_gaussian, mass_residual)
from .superobs import (BANDS, KIND_LABELS, METRIC_NAMES, METRIC_UNITS, METRICS, erosita_nr,
                       evaluate_superobs, psf_sigma_pix)
from .stats import regression_slope
from .summary import SUMMARY_NAME, mass_entry, superobs_summary, write_summary
from .tables import format_interval, write_ecsv, write_markdown

__all__ = ["read_rows", "run_superobs_evaluation", "run_mass_evaluation", "table3_display",
           "mass_table_display"]

log = logging.getLogger("xclusters.evaluate")

_CHUNK = 256


def _run_config(config: Mapping[str, Any] | None) -> Mapping[str, Any]:
    """The validated config of an evaluation: ``config``, or for ``None`` (evaluating files
    outside a run) the validated defaults, :func:`xclusters.config.load_config` of
    ``config/config.yaml``. Every key is then present; nothing here has a default of its own."""
    if config is not None:
        return config
    from ..config import load_config

    log.info("evaluation without a run config: using the defaults of config/config.yaml")
    return load_config()


def read_rows(dataset_h5: str | Path, key: str, rows: np.ndarray) -> np.ndarray:
    """Read ``dataset_h5[key][rows]`` for any (unsorted, repeated) row indices."""
    import h5py

    rows = np.asarray(rows, dtype=np.int64)
    with h5py.File(dataset_h5, "r") as f:
        if key not in f:
            raise KeyError(f"{dataset_h5}: dataset '/{key}' is missing (see "
                           f"docs/architecture.md, dataset file).")
        ds = f[key]
        if rows.size and (rows.min() < 0 or rows.max() >= ds.shape[0]):
            raise IndexError(f"{dataset_h5}:/{key} has {ds.shape[0]} rows; requested rows "
                             f"{rows.min()}..{rows.max()}.")
        if rows.size == 0:
            return np.zeros((0,) + ds.shape[1:], dtype=ds.dtype)
        uniq, inv = np.unique(rows, return_inverse=True)
        return ds[uniq.tolist()][inv]


def _exposure(dataset_h5: str | Path, attr: str, insts: InstrumentsSettings,
              instrument: str) -> float:
    """Exposure [s] of ``instrument``: the dataset's attribute ``attr``, else (datasets
    written without it) ``instruments.<instrument>.exposure_ks`` of the run config."""
    import h5py

    with h5py.File(dataset_h5, "r") as f:
        if attr in f.attrs:
            return float(f.attrs[attr])
    ks = getattr(insts, instrument).exposure_ks
    log.warning("%s: attribute %s missing; using instruments.%s.exposure_ks = %s ks from the "
                "config.", dataset_h5, attr, instrument, ks)
    return float(ks) * 1000.0


def table3_display(table3: Table) -> Table:
    """Table 3 of paper 000 as strings: ``median +(p84-median)/-(median-p16)`` per metric."""
    out = Table()
    out["Observation"] = table3["kind"]
    out["Band"] = table3["band"]
    for m in METRICS:
        unit = f" [{METRIC_UNITS[m]}]" if METRIC_UNITS[m] else ""
        digits = 3 if m == "flux" else 2
        out[f"{METRIC_NAMES[m]}{unit}"] = [
            format_interval(r[f"{m}_median"], r[f"{m}_p16"], r[f"{m}_p84"], digits)
            for r in table3]
    out["N"] = table3["C_n"]
    return out


def _provenance(config, **extra) -> dict:
    rec = provenance_record(config, stage="evaluate", **extra)
    return {k: v for k, v in rec.items() if isinstance(v, (str, int, float, bool))}


def _grid_choice(log_m: np.ndarray, n: int) -> np.ndarray:
    order = np.argsort(np.where(np.isfinite(log_m), log_m, np.inf), kind="stable")
    n = min(n, len(order))
    if n == 0:
        return np.zeros(0, dtype=int)
    return order[np.unique(np.linspace(0, len(order) - 1, n).round().astype(int))]


_SPLIT_LABEL = {"trainval": "train + validation", "val": "validation", "all": "whole"}


def run_superobs_evaluation(dataset_h5: str | Path, predictions_h5: str | Path,
                            out_dir: str | Path, *, config: Mapping[str, Any] | None
                            ) -> list[Path]:
    """Evaluate super-observation predictions of the test split (paper 000 §3, §4.1).

    Parameters
    ----------
    dataset_h5 : path-like
        ``dataset.h5`` (``/superobs/inputs``, ``/superobs/targets``,
        ``/superobs/inputs_full_annulus_bkg``, ``/meta``, exposure attributes).
    predictions_h5 : path-like
        ``/prediction`` (N, H, W, 3) float32 and ``/index`` (N,) dataset rows.
    out_dir : path-like
        Output directory (created).
    config : mapping or None
        The validated run config (:func:`xclusters.config.load_config`): its ``evaluate``
        section (:class:`~xclusters.settings.EvaluateSettings`), ``seed`` and the
        ``instruments`` exposures (used when the dataset lacks them) and eROSITA PSF and pixel
        size (the background metric's sigma when ``evaluate.background_sigma_pix`` is null).
        ``None``: the validated defaults of ``config/config.yaml``.

    Returns
    -------
    list of Path
        The files written (see :mod:`xclusters.evaluate`).
    """
    import h5py

    from ..dataset.layout import check_complete

    check_complete(dataset_h5)  # a killed or truncated dataset.h5: name it and the fix
    config = _run_config(config)
    ev = EvaluateSettings.from_config(config)
    insts = InstrumentsSettings.from_config(config)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    with h5py.File(predictions_h5, "r") as f:
        for key in ("prediction", "index"):
            if key not in f:
                raise KeyError(f"{predictions_h5}: dataset '/{key}' missing (expected "
                               f"/prediction (N,H,W,3) and /index (N,)).")
        prediction = np.asarray(f["prediction"][()], dtype=np.float32)
        index = np.asarray(f["index"][()], dtype=np.int64).ravel()
        split_name = f.attrs.get("split", "test")
        split_name = split_name.decode() if isinstance(split_name, bytes) else str(split_name)
    if prediction.ndim != 4 or prediction.shape[0] != index.size:
        raise ValueError(f"{predictions_h5}: /prediction {prediction.shape} must be (N,H,W,B) "
                         f"with N = len(/index) = {index.size}.")
    # counts are never negative: files of `xclusters predict-dataset` are clipped already; this
    # covers older or hand-made prediction files (the one clipping function)
    prediction, _ = clip_negative_counts(prediction, what=str(predictions_h5))
    inputs = read_rows(dataset_h5, "superobs/inputs", index)
    targets = read_rows(dataset_h5, "superobs/targets", index)
    bkg = read_rows(dataset_h5, "superobs/inputs_full_annulus_bkg", index)
    meta = read_meta(dataset_h5, check=False, units=False)[index]
    for col in ("r500c_pix_erosita", "log_m500c"):
        if col not in meta.colnames:
            raise KeyError(f"{dataset_h5}:/meta lacks column '{col}'.")
    ero_exp = _exposure(dataset_h5, "erosita_exposure_s", insts, "erosita")
    ideal_exp = _exposure(dataset_h5, "ideal_exposure_s", insts, "ideal")
    sigma = ev.background_sigma_pix
    if sigma is None:  # the eROSITA PSF HEW as a Gaussian, in pixels
        sigma = psf_sigma_pix(insts.erosita.psf_hew_arcsec, insts.erosita.pixel_arcsec)
    nr = erosita_nr(inputs, bkg)
    r500 = np.asarray(meta["r500c_pix_erosita"], dtype=float)
    log_m = np.asarray(meta["log_m500c"], dtype=float)
    tables = evaluate_superobs(
        inputs, nr, prediction, targets, r500, log_m,
        erosita_exposure_s=ero_exp, ideal_exposure_s=ideal_exp,
        percentile=ev.classification_percentile, background_sigma_pix=float(sigma),
        n_mass_bins=ev.n_mass_bins, boundary=ev.smoothness_boundary, ids=index)
    per = tables["per_image"]
    if "cluster_id" in meta.colnames:
        per.add_column(meta["cluster_id"].astype(str), name="cluster_id", index=1)
    prov = _provenance(config)
    for t in tables.values():
        t.meta.update(prov)

    from .plots_superobs import (plot_background, plot_binned_differences, plot_image_grid,
                                 plot_mass_dependence)

    written = [
        write_ecsv(per, out / "superobs_per_image.ecsv"),
        write_ecsv(tables["table3"], out / "superobs_table3.ecsv"),
        write_markdown(table3_display(tables["table3"]), out / "superobs_table3.md",
                       title=f"Super-observation evaluation ({_SPLIT_LABEL.get(split_name, split_name)} split)",
                       note=("Median and 16th/84th percentiles of observation − truth "
                             "(paper 000 Table 3). Total flux in counts/s; background in "
                             "counts on the zero pixels of the Gaussian-smoothed truth "
                             f"(sigma = {float(sigma):.2f} px).")),
        write_ecsv(tables["classification"], out / "superobs_classification.ecsv"),
        write_markdown(tables["classification"], out / "superobs_classification.md",
                       title=(f"Top {100 - ev.classification_percentile:g} % "
                              f"classification (paper 000 sec. 4.1)")),
        write_ecsv(tables["mass_dependence"], out / "superobs_mass_dependence.ecsv"),
        write_summary(out / SUMMARY_NAME, "superobs", config=config, provenance=prov,
                      body={"split": split_name,
                            **superobs_summary(tables["table3"], per, BANDS, KIND_LABELS)}),
    ]
    pick = _grid_choice(log_m, ev.n_grid_clusters)
    labels = ([str(meta["cluster_id"][i]) for i in pick] if "cluster_id" in meta.colnames
              else [str(index[i]) for i in pick])
    written.append(plot_image_grid({"erosita": inputs[pick], "erosita_nr": nr[pick],
                                    "prediction": prediction[pick], "truth": targets[pick]},
                                   r500[pick], out / "fig_superobs_grid.png", labels=labels))
    nbins = ev.n_value_bins
    for metric, name in (("C", "concentration"), ("A", "asymmetry"), ("S", "smoothness"),
                         ("flux", "flux")):
        written.append(plot_binned_differences(per, metric, out / f"fig_{name}.png",
                                               n_bins=nbins))
    written.append(plot_background(per, out / "fig_background.png", n_bins=nbins))
    written.append(plot_mass_dependence(tables["mass_dependence"],
                                        out / "fig_mass_dependence.png"))
    log.info("super-observation evaluation of %d image(s) written to %s", index.size, out)
    return written


# --------------------------------------------------------------------------- mass


def _summary_row(method: str, selection: str, log_m_true: np.ndarray,
                 log_m_pred: np.ndarray, how: str) -> dict:
    """Gaussian fit of delta (paper 004 Fig. 4) and the slope of log M_pred on log M_true."""
    delta = mass_residual(log_m_pred, log_m_true)
    fit = fit_gaussian(delta, method=how)
    return {"method": method, "selection": selection, "n": fit["n"], "mu_dex": fit["mu"],
            "sigma_dex": fit["sigma"], "scatter_percent": fit["scatter_percent"],
            "mu_mle_dex": fit["mu_mle"], "sigma_mle_dex": fit["sigma_mle"],
            "median_dex": fit["median"], "slope": regression_slope(log_m_true, log_m_pred),
            "fit": fit["method"]}


def mass_table_display(rows: Sequence[Mapping[str, Any]]) -> Table:
    """The paper-004 comparison as a compact table: sigma, mu, scatter and slope per method.

    ``rows`` are mass-summary rows (:func:`_summary_row`); the CNN over all folds and in
    14 < log M < 14.5, and each L_X baseline, are shown (not the per-fold rows).
    """
    keep = [r for r in rows if not str(r["selection"]).startswith("fold ")]
    out = Table()
    out["Method"] = [r["method"] for r in keep]
    out["Selection"] = [r["selection"] for r in keep]
    out["N"] = [int(r["n"]) for r in keep]
    out["sigma [dex]"] = [r["sigma_dex"] for r in keep]
    out["mu [dex]"] = [r["mu_dex"] for r in keep]
    out["scatter [%]"] = [r["scatter_percent"] for r in keep]
    out["slope"] = [r["slope"] for r in keep]
    return out


def _lx_baseline(dataset_h5, meta: Table, test_folds: Sequence[int],
                 config: Mapping[str, Any], ev: EvaluateSettings
                 ) -> tuple[Table, list[dict]]:
    import h5py

    for col in ("r500c_pix_chandra", "log_m500c", "fold", "redshift"):
        if col not in meta.colnames:
            raise KeyError(f"{dataset_h5}:/meta lacks column '{col}' needed by the L_X "
                           f"baseline.")
    exposure = _exposure(dataset_h5, "chandra_exposure_s",
                         InstrumentsSettings.from_config(config), "chandra_acisi")
    n = len(meta)
    r500 = np.asarray(meta["r500c_pix_chandra"], dtype=float)
    fracs = list(ev.lx_aperture_error_frac)
    seed = int(setting(config, "seed"))
    scales = {}
    for frac in fracs:
        rng = rng_for(seed, "evaluate", "lx_aperture", f"{frac:.6g}")
        scales[frac] = np.clip(1.0 + rng.normal(0.0, frac, n), 1e-3, None) if frac > 0 \
            else np.ones(n)
    counts = {f: np.zeros(n) for f in fracs}
    covered = {f: np.zeros(n) for f in fracs}
    with h5py.File(dataset_h5, "r") as fh:
        if "chandra/images" not in fh:
            raise KeyError(f"{dataset_h5}: '/chandra/images' missing; the L_X baseline needs "
                           f"the Chandra images.")
        ds = fh["chandra/images"]
        for start in range(0, n, _CHUNK):
            stop = min(n, start + _CHUNK)
            block = np.asarray(ds[start:stop], dtype=np.float64)
            for f in fracs:
                c, cov = annulus_counts(block, r500[start:stop], scale=scales[f][start:stop])
                counts[f][start:stop], covered[f][start:stop] = c, cov
    # the redshift the Chandra images were observed at (instruments.chandra_acisi.
    # fixed_redshift, paper 004 sec. 2.1.2); datasets without the column: the light cone
    z = chandra_observation_redshift(meta)
    log_m = np.asarray(meta["log_m500c"], dtype=float)
    folds = np.asarray(meta["fold"], dtype=int)
    tabs, fits_all = [], []
    for f in fracs:
        with np.errstate(divide="ignore"):
            log_l = np.log10(count_luminosity(counts[f], exposure, z))
        bad = ~np.isfinite(log_l)
        if np.any(bad):
            log.warning("L_X baseline: %d image(s) with no counts in the 0.15-1 R500c annulus; "
                        "excluded (NaN).", int(bad.sum()))
            log_l[bad] = np.nan
        low_cov = np.sum(covered[f] < 0.5)
        if low_cov:
            log.info("L_X baseline: %d image(s) cover less than half of the annulus (R500c "
                     "beyond the field, paper 004 sec. 2.1.2).", int(low_cov))
        pred, fits = cross_validated_power_law(log_l, log_m, folds, test_folds)
        sel = np.isin(folds, list(test_folds))
        t = Table()
        t["row"] = np.nonzero(sel)[0]
        if "cluster_id" in meta.colnames:
            t["cluster_id"] = meta["cluster_id"][sel].astype(str)
        t["fold"] = folds[sel]
        t["aperture_error_frac"] = np.full(sel.sum(), f)
        t["annulus_counts"] = counts[f][sel]
        t["annulus_covered_frac"] = covered[f][sel]
        t["log_lx"] = log_l[sel]
        t["log_lx"].description = "log10 photon-count luminosity [ct s^-1 cm^2]"
        t["log_m500c_true"] = log_m[sel]
        t["log_m500c_pred_lx"] = pred[sel]
        t["delta"] = pred[sel] - log_m[sel]
        tabs.append(t)
        fits_all += [{"aperture_error_frac": f, **fit} for fit in fits]
    table = vstack(tabs) if tabs else Table()
    table.meta["fits"] = fits_all
    table.meta["chandra_exposure_s"] = exposure
    table.meta["aperture_r500c"] = [0.15, 1.0]
    table.meta["reference"] = "paper 004 sec. 3 (core-excised L_X baseline)"
    return table, fits_all


def _model_map(model_paths) -> dict[int | None, Path]:
    if model_paths is None:
        return {}
    if isinstance(model_paths, Mapping):
        return {int(k): Path(v) for k, v in model_paths.items()}
    paths = [Path(p) for p in ([model_paths] if isinstance(model_paths, (str, Path))
                               else model_paths)]
    out: dict[int | None, Path] = {}
    for p in paths:
        m = re.search(r"fold[_-]?(\d+)", p.name)
        out[int(m.group(1)) if m else None] = p
    return out


def _call_with_redshift(model, z, x, training=False):
    """``model([x, z])``: a redshift-input mass CNN as a function of the image only."""
    return model([x, z], training=training)


def _gradient_outputs(dataset_h5, pred: Table, meta: Table, models: dict, out: Path,
                      ev: EvaluateSettings) -> list[Path]:
    import os

    os.environ.setdefault("TF_NUM_INTRAOP_THREADS", "1")
    os.environ.setdefault("TF_NUM_INTEROP_THREADS", "1")
    from ..predict.loading import load_trained_model

    from .gradients import PROFILE_EDGES_R500C, deepdream_iterations, radial_fractional_change
    from .plots_mass import plot_gradient_maps, plot_gradient_profiles

    folds_avail = {k for k in models if k is not None}
    usable = np.array([(int(f) in folds_avail) or (None in models) for f in pred["fold"]])
    if not np.any(usable):
        log.warning("gradient interpretation: no model for folds %s; skipped.",
                    sorted(set(int(f) for f in pred["fold"])))
        return []
    cand = pred[usable]
    _, first = np.unique(np.asarray(cand["cluster_id"]).astype(str), return_index=True)
    cand = cand[np.sort(first)]
    pick = _grid_choice(np.asarray(cand["log_m500c_true"], dtype=float),
                        ev.gradient_n_clusters)
    cand = cand[pick]
    rows = np.asarray(cand["row"], dtype=np.int64)
    images = read_rows(dataset_h5, "chandra/images", rows).astype(np.float32)
    r500 = np.asarray(meta["r500c_pix_chandra"][rows], dtype=float)
    n_iter = ev.gradient_iterations
    states = [np.zeros_like(images) for _ in range(n_iter + 1)]
    loaded: dict = {}
    redshift = chandra_observation_redshift(meta)[rows].astype(np.float32)
    for i, fold in enumerate(np.asarray(cand["fold"], dtype=int)):
        key = fold if fold in models else None
        if key not in loaded:
            loaded[key] = load_trained_model(models[key], "mass")
        net = loaded[key]
        if len(net.inputs) == 2:  # redshift input: gradients w.r.t. the image at fixed z
            z_i = np.array([[redshift[i]]], dtype=np.float32)
            net = functools.partial(_call_with_redshift, loaded[key], z_i)
        st, _ = deepdream_iterations(net, images[i:i + 1], n_iter=n_iter,
                                     step_counts=ev.gradient_step_counts)
        for j in range(n_iter + 1):
            states[j][i] = st[j][0]
    profiles = [radial_fractional_change(states[j], states[j + 1], r500)
                for j in range(n_iter)]
    labels = [str(c) for c in cand["cluster_id"]]
    prof_tab = Table()
    prof_tab["cluster_id"] = np.repeat(labels, n_iter)
    prof_tab["row"] = np.repeat(rows, n_iter)
    prof_tab["iteration"] = np.tile(np.arange(1, n_iter + 1), len(rows))
    prof_tab["dn_over_n"] = np.stack([profiles[j][i] for i in range(len(rows))
                                      for j in range(n_iter)])
    prof_tab.meta["r_edges_r500c"] = PROFILE_EDGES_R500C.tolist()
    prof_tab.meta["step_counts"] = ev.gradient_step_counts
    return [plot_gradient_maps(states, r500, out / "fig_mass_gradients.png", labels=labels),
            plot_gradient_profiles(profiles, out / "fig_mass_gradient_profile.png",
                                   labels=labels),
            write_ecsv(prof_tab, out / "mass_gradient_profile.ecsv")]


def run_mass_evaluation(dataset_h5: str | Path, predictions_ecsv: str | Path,
                        out_dir: str | Path, *, config: Mapping[str, Any] | None,
                        model_paths: Mapping[int, str | Path] | Sequence[str | Path] | None
                        = None) -> list[Path]:
    """Evaluate CNN mass predictions and the core-excised L_X baseline (paper 004 §3–4).

    Parameters
    ----------
    dataset_h5 : path-like
        ``dataset.h5`` (``/chandra/images``, ``/meta``, ``chandra_exposure_s`` attribute).
    predictions_ecsv : path-like
        Columns ``row``, ``cluster_id``, ``fold``, ``log_m500c_true``, ``log_m500c_pred``.
    out_dir : path-like
        Output directory.
    config : mapping or None
        The validated run config (:func:`xclusters.config.load_config`): its ``evaluate``
        section (:class:`~xclusters.settings.EvaluateSettings`), ``seed`` (the L_X aperture
        errors) and ``instruments.chandra_acisi.exposure_ks`` (used when the dataset lacks
        ``chandra_exposure_s``). ``None``: the validated defaults of ``config/config.yaml``.
    model_paths : mapping or sequence, optional
        Trained mass models, ``{fold: path}`` or paths named ``*fold<k>*.keras``; when given,
        the gradient interpretation (Figs. 5–6) is made with the model of each image's fold.

    Returns
    -------
    list of Path
        Files written.
    """
    from ..dataset.layout import check_complete

    check_complete(dataset_h5)  # a killed or truncated dataset.h5: name it and the fix
    config = _run_config(config)
    ev = EvaluateSettings.from_config(config)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    pred = Table.read(predictions_ecsv, format="ascii.ecsv")
    need = ("row", "cluster_id", "fold", "log_m500c_true", "log_m500c_pred")
    missing = [c for c in need if c not in pred.colnames]
    if missing:
        raise KeyError(f"{predictions_ecsv}: missing column(s) {missing}; expected {need}.")
    how = ev.gaussian_fit
    m_true = np.asarray(pred["log_m500c_true"], dtype=float)
    m_pred = np.asarray(pred["log_m500c_pred"], dtype=float)
    delta = mass_residual(m_pred, m_true)
    folds = np.asarray(pred["fold"], dtype=int)
    test_folds = sorted(set(folds.tolist()))
    rows = [_summary_row("cnn", "all folds", m_true, m_pred, how)]
    lo, hi = MASS_RANGE_MID
    mid = (m_true > lo) & (m_true < hi)
    rows.append(_summary_row("cnn", f"all folds, {lo} < log M < {hi}", m_true[mid],
                             m_pred[mid], how))
    fold_fits = {}
    for k in test_folds:
        r = _summary_row("cnn", f"fold {k}", m_true[folds == k], m_pred[folds == k], how)
        fold_fits[k] = r
        rows.append(r)
    finite = {k: r["sigma_dex"] for k, r in fold_fits.items() if np.isfinite(r["sigma_dex"])}
    best = min(finite, key=finite.get) if finite else None

    meta = read_meta(dataset_h5, check=False, units=False)
    lx_table, fits = _lx_baseline(dataset_h5, meta, test_folds, config, ev)
    lx_scatter, lx_rows = [], {}
    for frac in ev.lx_aperture_error_frac:
        sel = np.asarray(lx_table["aperture_error_frac"]) == frac
        r = _summary_row(f"lx_baseline (aperture error {100 * frac:g}%)", "all folds",
                         np.asarray(lx_table["log_m500c_true"], dtype=float)[sel],
                         np.asarray(lx_table["log_m500c_pred_lx"], dtype=float)[sel], how)
        lx_scatter.append(r["scatter_percent"])
        lx_rows[frac] = r
        rows.append(r)
    summary = Table(rows=rows)
    summary["best_fold"] = [r["selection"] == f"fold {best}" for r in rows]
    for c in ("mu_dex", "sigma_dex", "mu_mle_dex", "sigma_mle_dex", "median_dex"):
        summary[c].unit = "dex"
    prov = _provenance(config)
    summary.meta.update(prov)
    summary.meta["scatter_percent"] = "100 ln(10) sigma_dex"
    summary.meta["reference"] = "paper 004 sec. 3, Fig. 4"
    lx_table.meta.update(prov)

    from .plots_mass import plot_delta_histogram, plot_true_vs_pred

    written = [
        write_ecsv(summary, out / "mass_summary.ecsv"),
        write_markdown(summary, out / "mass_summary.md", title="Mass residuals (paper 004)",
                       note=("delta = log M_pred - log M_true; Gaussian fit "
                             f"({how}); scatter_percent = 100 ln(10) sigma; slope = "
                             "least-squares slope of log M_pred on log M_true.")),
        write_markdown(mass_table_display(rows), out / "mass_table.md",
                       title="CNN and core-excised L_X masses (paper 004 sec. 3)",
                       note=("sigma, mu: Gaussian fit of delta = log M_pred - log M_true "
                             f"({how}); scatter = 100 ln(10) sigma; slope: least squares of "
                             "log M_pred on log M_true (1 = no regression toward the mean). "
                             "Test folds only; L_X power law fitted on the other folds.")),
        write_summary(out / SUMMARY_NAME, "mass", config=config, provenance=prov,
                      body={"mass": _mass_summary_body(rows, fold_fits, lx_rows)}),
        write_ecsv(lx_table, out / "lx_baseline.ecsv"),
        plot_true_vs_pred(pred["log_m500c_true"], pred["log_m500c_pred"], folds,
                          out / "fig_mass_true_pred.png"),
        plot_delta_histogram(delta, _fit_dict(rows[0]),
                             out / "fig_mass_delta.png",
                             best_fold=(None if best is None else
                                        (best, delta[folds == best],
                                         _fit_dict(fold_fits[best]))),
                             lx_scatter_percent=lx_scatter),
    ]
    models = _model_map(model_paths)
    if models:
        written += _gradient_outputs(dataset_h5, pred, meta, models, out, ev)
    else:
        log.info("no model paths given; gradient interpretation figures skipped.")
    log.info("mass evaluation (%d predictions, folds %s) written to %s", len(pred),
             test_folds, out)
    return written


def _mass_summary_body(rows: list[dict], fold_fits: dict[int, dict],
                       lx_rows: dict[float, dict]) -> dict:
    """The ``mass`` block of ``summary.json`` (:mod:`.summary`) from the summary rows."""
    body = {"cnn": mass_entry(rows[0]), "cnn_mid_mass": mass_entry(rows[1]),
            "cnn_mid_mass_range": list(MASS_RANGE_MID),
            "cnn_folds": {str(k): mass_entry(r) for k, r in fold_fits.items()}}
    if lx_rows:
        exact = lx_rows.get(0.0, next(iter(lx_rows.values())))
        body["lx_baseline"] = {**mass_entry(exact), "aperture_error_frac":
                               0.0 if 0.0 in lx_rows else next(iter(lx_rows))}
        body["lx_baseline_aperture_error"] = {f"{f:g}": mass_entry(r)
                                              for f, r in lx_rows.items()}
    return body


def _fit_dict(row: dict) -> dict:
    return {"mu": row["mu_dex"], "sigma": row["sigma_dex"]}
