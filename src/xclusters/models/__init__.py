"""Model definitions of the two papers: pure functions that build a ``keras.Model``.

* :func:`xclusters.models.superobs.build_superobs_model` -- the multi-path image-to-image CNN
  of paper 000 (Table 2, 48,687 trainable parameters for 3 bands).
* :mod:`xclusters.models.morphology` -- the fixed concentration / asymmetry / smoothness
  (paper 000 eqs. 1-3) in TensorFlow and NumPy, and the MAE + morphology loss.
* :func:`xclusters.models.mass.build_mass_model` -- the mass-regression CNN of paper 004
  (section 2.2, 58,437 trainable parameters).
* :func:`xclusters.models.describe.describe_models` -- text summaries for ``xclusters models``.

TensorFlow is imported lazily by the submodules, so ``import xclusters.models`` stays cheap.
"""
__all__ = ["superobs", "morphology", "mass", "describe"]
