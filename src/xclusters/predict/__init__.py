"""Inference with trained models: FITS (image or event list) in, FITS / numbers out.

* :func:`xclusters.predict.superobs.predict_superobs` -- an eROSITA 3-band image or event
  list to the predicted 10 ks super observation (FITS with the input's WCS), optionally with
  the eROSITA-NR baseline (paper 000 §2.1).
* :func:`xclusters.predict.superobs.predict_superobs_arrays` -- batched arrays (workflow).
* :func:`xclusters.predict.mass.predict_mass` -- a Chandra 128x128 image to log10 M500c.
* :func:`xclusters.predict.loading.load_trained_model` -- safe loading with clear errors.
"""
__all__ = ["loading", "fitsio", "baseline", "superobs", "mass"]
