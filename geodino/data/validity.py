"""The one validity rule for pixels, used by every reader (training tiles, probes, feature rasters and the stats),
and the checks of what input a model can take at all (a nodata value the data can hold, real-valued data).

A pixel is invalid where every band equals the nodata value (GDAL's dataset-mask rule for a declared nodata) or
where any band is not finite (NaN, +inf or -inf: a model cannot take one, and through attention a single one would
spread to every cell of its tile). Outside the raster is invalid too; the readers mark that. A nodata value the
data type cannot hold (300 or 2.5 for uint8) matches no pixel, as in GDAL's mask; a user who passes one is refused
(`check_nodata`).
"""

from __future__ import annotations

import functools
import math

import numpy as np

from geodino.errors import InputError

__all__ = ["check_nodata", "check_real", "dtype_range", "nodata_fits", "valid_pixels"]


def dtype_range(dtype: str | np.dtype) -> str:
    """What values a data type holds, as messages say it: "integers 0..255", "floats (any value, NaN included)"."""
    dt = np.dtype(dtype)
    if dt.kind in "ui":
        info = np.iinfo(dt)
        return f"integers {info.min}..{info.max}"
    if dt.kind == "b":
        return "0 or 1"
    return "any number, NaN included"


def nodata_fits(nodata: float, dtype: str | np.dtype) -> bool:
    """Whether a pixel of `dtype` can equal `nodata` (integer types: an integer in range; floats: any value)."""
    dt = np.dtype(dtype)
    value = float(nodata)
    if dt.kind in "ui":
        info = np.iinfo(dt)
        return value.is_integer() and info.min <= value <= info.max
    if dt.kind == "b":
        return value in (0.0, 1.0)
    if dt.kind == "f" and math.isfinite(value):
        return abs(value) <= float(np.finfo(dt).max)
    return True


def check_nodata(
    nodata: float | None, dtype: str | np.dtype, where: str, fix: str = "pass a --nodata (nodata= in Python)"
) -> None:
    """Refuse a user's nodata value that no pixel of `where` (e.g. "raster a.tif") can hold: out of the data type's
    range (-1 or 300 for uint8) or not an integer for integer data (2.5 would be read as 2 while the output
    records 2.5). Called before anything is written."""
    if nodata is None or math.isnan(float(nodata)) or nodata_fits(nodata, dtype):
        return  # NaN matches no pixel of any type: a way to switch off a wrong declared nodata value
    dt = np.dtype(dtype)
    why = "is not an integer" if dt.kind in "ui" and not float(nodata).is_integer() else "is out of range"
    raise InputError(
        f"nodata {float(nodata):g} {why} for {where}, whose data type {dt.name} holds {dtype_range(dt)}; {fix} "
        "in that range, or leave it out to use the file's own"
    )


def check_real(dtype: str | np.dtype, where: str) -> None:
    """Refuse complex data (SAR SLC, interferograms): a model takes real numbers, and casting would silently drop
    the imaginary part. `dtype` may be rasterio's name for GDAL's CInt16, 'complex_int16', which numpy has no
    dtype for (np.dtype raised a TypeError traceback)."""
    name = str(dtype)
    if not name.startswith("complex"):
        name = np.dtype(dtype).name
    if name.startswith("complex"):
        raise InputError(
            f"{where} holds complex numbers ({name}), which a model cannot take; write real-valued bands first "
            f"(e.g. the amplitude |z|, or the real and imaginary parts as two bands) and use that file"
        )


def valid_pixels(data: np.ndarray, nodata: float | None = None, band_axis: int = -3) -> np.ndarray:
    """Bool mask of the valid pixels of `data` (bands on `band_axis`, default channel-first [..., C, H, W]).

    Called on every tile read: the first rule's reduction is the mask (no all-True start to AND into) and whether
    the nodata value applies is cached per (value, dtype); this halved the mask's cost on 256 px uint8 tiles."""
    valid = None
    if nodata is not None and _nodata_applies(float(nodata), data.dtype.str):
        if nodata == 0 and data.dtype.kind in "ub":  # the common case: one max-reduction, no C x H x W temporary
            valid = data.max(axis=band_axis) > 0
        else:
            valid = (data != np.asarray(nodata, dtype=data.dtype)).any(axis=band_axis)
    if data.dtype.kind in "fc":
        finite = np.isfinite(data).all(axis=band_axis)
        valid = finite if valid is None else np.logical_and(valid, finite, out=valid)
    if valid is None:
        shape = list(data.shape)
        del shape[band_axis]
        valid = np.ones(shape, dtype=bool)
    return valid


@functools.lru_cache(maxsize=256)
def _nodata_applies(value: float, dtype: str) -> bool:
    """Whether nodata `value` marks pixels of `dtype` (not NaN, which only the finite check catches; in range)."""
    return not math.isnan(value) and nodata_fits(value, dtype)
