"""The values a datacube store marks as missing (`geodino.data.cube_grid` re-exports these): its nodata value (the
configured one, else _FillValue/nodata/missing_value, else the sensor's; one value for a store of per-band
variables), and the lazy decodings at open that keep that one value meaningful: `_Unsigned` integers read as the
unsigned values they store (fill values and integer range bounds too), and CF `missing_value`s other than the fill
read as the fill.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from geodino.data.sensors import Sensor
from geodino.errors import InputError

__all__ = ["fill_value", "missing_as_fill", "stacked_fill_value", "unsigned_decoded"]


_FILL_KEYS = ("_FillValue", "nodata", "missing_value")


_RANGE_KEYS = ("valid_min", "valid_max", "valid_range")


def unsigned_decoded(ds: Any) -> Any:
    """The dataset with its `_Unsigned = "true"` integer variables read as the unsigned integers they store, lazily
    (a view per read), their fill values too. NetCDF3 has no uint16, so xarray and GDAL write Sentinel-2 DN as int16
    with that attribute (the NUG convention); opened raw (`mask_and_scale=False`, which also skips xarray's
    _Unsigned decoding) DN 40000 read as -25536 and the fill 65535 as -1. valid_min/valid_max/valid_range of an
    integer type are converted as the fill values are (float ones are unpacked values, `declared_valid_range`)."""
    names = [
        v for v in ds.data_vars if str(ds[v].attrs.get("_Unsigned", "")).lower() == "true" and ds[v].dtype.kind == "i"
    ]
    if not names:
        return ds
    import xarray as xr
    from xarray.coding.common import lazy_elemwise_func

    out = ds.copy()
    for name in names:
        var = ds[name].variable
        unsigned = np.dtype(f"u{var.dtype.itemsize}")
        attrs = {k: val for k, val in var.attrs.items() if k != "_Unsigned"}
        for key in _FILL_KEYS + _RANGE_KEYS:  # NUG: the valid range of an _Unsigned variable is unsigned too
            if key in attrs and attrs[key] is not None and _integral(attrs[key], key in _RANGE_KEYS):
                attrs[key] = np.asarray(attrs[key]).astype(var.dtype).astype(unsigned)[()]
        data = lazy_elemwise_func(var._data, lambda a, u=unsigned: np.asarray(a).view(u), unsigned)
        out[name] = xr.Variable(var.dims, data, attrs, var.encoding)
    return out


def missing_as_fill(ds: Any, nodata: float | None = None) -> Any:
    """The dataset with each variable's CF `missing_value`s other than its fill value read as that fill value
    (`nodata` when given, else its _FillValue/nodata attribute, else its first missing_value), lazily. CF calls both
    missing, and xarray's own decoding masks both, but one nodata value marks a store's invalid pixels here
    (`fill_value`): a store of _FillValue -9999 and missing_value -1 fed its -1 pixels to the model as data."""
    out = None
    for name in ds.data_vars:
        var = ds[name].variable
        missing = [float(m) for m in _numbers(var.attrs.get("missing_value")) if not math.isnan(m)]
        declared = [var.attrs.get(k) for k in ("_FillValue", "nodata") if var.attrs.get(k) is not None]
        target = nodata if nodata is not None else (float(np.asarray(declared[0]).ravel()[0]) if declared else None)
        if target is None and missing:
            target = missing[0]
        extra = [m for m in missing if m != target]
        if not extra or target is None or math.isnan(target) or var.dtype.kind not in "iuf":
            continue
        import xarray as xr
        from xarray.coding.common import lazy_elemwise_func

        def as_fill(a: Any, extra: list[float] = extra, fill: float = target, dtype: Any = var.dtype) -> Any:
            a = np.asarray(a)
            return np.where(np.isin(a, np.asarray(extra, dtype=np.float64)), fill, a).astype(dtype, copy=False)

        out = ds.copy() if out is None else out
        out[name] = xr.Variable(var.dims, lazy_elemwise_func(var._data, as_fill, var.dtype), var.attrs, var.encoding)
    return ds if out is None else out


def _integral(value: Any, is_range: bool) -> bool:
    """Whether an _Unsigned variable's attribute is to be read unsigned: fill values always (they are of the
    variable's type), range bounds only when of an integer type (a float bound is unpacked, CF: casting 0.5 to int16
    made it 0)."""
    if not is_range:
        return True
    try:
        return np.asarray(value).dtype.kind in "iu"
    except (TypeError, ValueError):
        return False


def _declared_fill(var: Any) -> float | None:
    for src in (var.attrs, var.encoding):
        for key in _FILL_KEYS:
            if src.get(key) is not None:
                return float(np.asarray(src[key]).ravel()[0])
    return None


def fill_value(da: Any, nodata: float | None, sensor: Sensor | None) -> float | None:
    """The nodata value: the configured one, else _FillValue/nodata/missing_value, else the sensor's."""
    if nodata is not None:
        return nodata
    found = _declared_fill(da)
    if found is not None:
        return found
    return sensor.nodata if sensor is not None else None


def stacked_fill_value(ds: Any, names: Sequence[str], path: str) -> float | None:
    """The nodata value the per-band variables `names` declare (stacking them drops their attributes): the one
    value they give, None when none gives one; variables giving different values are refused (one nodata per
    source), unless `nodata:` is set (the caller does not ask then)."""
    found = {v: f for v in names if (f := _declared_fill(ds[v])) is not None}
    values = set(found.values())
    if len(values) > 1:
        listed = ", ".join(f"{v}: {f:g}" for v, f in found.items())
        raise InputError(
            f"datacube {path}: its band variables declare different nodata values ({listed}); set `nodata:` to "
            "the one value that marks missing pixels in every band"
        )
    return values.pop() if values else None


def _numbers(value: Any) -> np.ndarray:
    """An attribute's values as float64 (empty when absent or not numbers: a malformed attribute is no bound)."""
    try:
        return np.asarray(value, dtype=np.float64).ravel() if value is not None else np.empty(0)
    except (TypeError, ValueError):
        return np.empty(0)
