"""Evaluation stage: metric tables and figures for both models.

Modules (one job each):

* :mod:`.morphology` – R500c and fixed concentration / asymmetry / smoothness (paper 000 eqs. 1–6)
* :mod:`.superobs` – eROSITA-NR, total flux, background metric, classification, Table 3
* :mod:`.mass` – mass residuals, Gaussian fit, core-excised L_X baseline (paper 004 §3)
* :mod:`.gradients` – DeepDream-style input gradients and Delta N / N profiles (paper 004 §4)
* :mod:`.stats`, :mod:`.tables` – percentile summaries, ECSV/Markdown writers
* :mod:`.summary` – ``summary.json`` of each evaluation directory
* :mod:`.compare` – ``xclusters compare-runs``: runs side by side from their summaries and
  the issue-16 targets
* :mod:`.plots_superobs`, :mod:`.plots_mass` – figures
* :mod:`.learning_curves` – training and validation loss per epoch from the training's
  ``<model>.history.csv`` (``xclusters learning-curves``; ``fig_learning_curves.png`` in the
  ``superobs`` and ``mass`` evaluation directories, one curve per fold for the mass CNN)
* :mod:`.run` – the entry points below

Entry points
------------
``run_superobs_evaluation(dataset_h5, predictions_h5, out_dir, *, config)`` writes, in
``out_dir`` (fixed names):

=============================== ==========================================================
``superobs_per_image.ecsv``     every metric of every test image, per band and kind
``superobs_table3.ecsv`` / .md  paper 000 Table 3: median, 16th, 84th percentile of
                                (observation − truth) per kind and band
``superobs_classification.ecsv`` / .md  90th-percentile TPR / FPR (paper 000 §4.1)
``superobs_mass_dependence.ecsv``  differences and true values in mass bins (Fig. 9)
``fig_superobs_grid.png``       Fig. 1: eROSITA / eROSITA-NR / prediction / ideal
``fig_concentration.png``       Fig. 4 (R500c concentration)
``fig_asymmetry.png``           Fig. 5
``fig_smoothness.png``          Fig. 6
``fig_flux.png``                Fig. 7 (total flux, counts/s)
``fig_background.png``          Fig. 8 (background counts vs eROSITA background)
``fig_mass_dependence.png``     Fig. 9
``summary.json``                headline numbers in a stable layout (:mod:`.summary`)
=============================== ==========================================================

``run_mass_evaluation(dataset_h5, predictions_ecsv, out_dir, *, config, model_paths=None)``
writes:

=================================== ======================================================
``mass_summary.ecsv`` / .md         Gaussian sigma, mu of delta and the slope of log M_pred
                                    on log M_true (all folds, 14 < log M < 14.5, each fold,
                                    best fold flagged) and L_X baselines
``mass_table.md``                   the paper-004 comparison: sigma, mu, scatter, slope of
                                    the CNN and each L_X baseline
``summary.json``                    headline numbers in a stable layout (:mod:`.summary`)
``lx_baseline.ecsv``                per-image core-excised L_X mass predictions; fits in meta
``fig_mass_true_pred.png``          paper 004 Fig. 3
``fig_mass_delta.png``              paper 004 Fig. 4
``fig_mass_gradients.png``          Fig. 5 (only with ``model_paths``)
``fig_mass_gradient_profile.png``   Fig. 6 (only with ``model_paths``)
``mass_gradient_profile.ecsv``      the Fig. 6 profiles (only with ``model_paths``)
=================================== ======================================================

Degenerate inputs (tiny test sets, all-zero images) give NaN values and logged warnings, never
an exception. TensorFlow is imported only for the gradient interpretation.
"""
from __future__ import annotations

__all__ = ["run_superobs_evaluation", "run_mass_evaluation"]


def __getattr__(name: str):
    if name in __all__:
        from . import run

        return getattr(run, name)
    raise AttributeError(f"module 'xclusters.evaluate' has no attribute {name!r}")
