"""Emission models: thermal X-ray spectra of the intracluster gas for pyXSIM.

Public API: :func:`make_source_model` (see :mod:`xclusters.emission.models`) and the spectral
model classes :class:`BremsstrahlungSpectrum` (no data needed) and :class:`ApecTableSpectrum`
(yt's ``apec_emissivity_v3.h5``); full APEC goes through :class:`pyxsim.CIESourceModel`.
"""
from .apec import locate_atomdb
from .apec_table import ApecTableSpectrum, locate_apec_table
from .bremsstrahlung import BremsstrahlungSpectrum
from .models import MODEL_NAMES, EmissionModelUnavailable, make_source_model

__all__ = ["make_source_model", "EmissionModelUnavailable", "MODEL_NAMES",
           "BremsstrahlungSpectrum", "ApecTableSpectrum", "locate_apec_table", "locate_atomdb"]
