"""The one validity rule for pixels, used by every reader (training tiles, probes and feature rasters).

A pixel is invalid where every band equals the nodata value (GDAL's dataset-mask rule for a declared nodata) or
where any band is NaN (a NaN cannot go into a model). Outside the raster is invalid too; the readers mark that.
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["valid_pixels"]


def valid_pixels(data: np.ndarray, nodata: float | None = None, band_axis: int = -3) -> np.ndarray:
    """Bool mask of the valid pixels of `data` (bands on `band_axis`, default channel-first [..., C, H, W])."""
    shape = list(data.shape)
    del shape[band_axis]
    valid = np.ones(shape, dtype=bool)
    if nodata is not None and not math.isnan(float(nodata)):
        if nodata == 0 and data.dtype.kind in "ub":  # the common case: one max-reduction, no C x H x W temporary
            valid &= data.max(axis=band_axis) > 0
        else:
            valid &= (data != np.asarray(nodata, dtype=data.dtype)).any(axis=band_axis)
    if data.dtype.kind == "f":
        valid &= ~np.isnan(data).any(axis=band_axis)
    return valid
