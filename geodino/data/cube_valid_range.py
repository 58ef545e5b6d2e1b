"""The valid range a datacube store declares by CF `valid_range`/`valid_min`/`valid_max` (or netCDF's default
range beside an explicit `_FillValue`), in the units the values are read in (`declared_valid_range`), and the mask
of pixels whose every band lies in it (`in_valid_range`). `geodino.data.cube_grid` re-exports these.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from geodino.data.cube_fill import _numbers
from geodino.data.cube_rule import _scalar

__all__ = ["declared_valid_range", "in_valid_range"]


def _bound(value: Any, default: float) -> float:
    """One CF bound as a float; a missing, empty, malformed or NaN value is no bound (`default`, +/-inf)."""
    arr = _numbers(value)
    return float(arr[0]) if arr.size and not math.isnan(float(arr[0])) else default


def _unpacked_bound(value: Any, packed: np.dtype, packs: bool) -> bool:
    """Whether a CF bound attribute is in unpacked (physical) units: CF says valid_min/valid_max/valid_range are of
    the packed type, unless they are of the type of scale_factor/add_offset; so a float bound on a variable packed
    as integers (`packs`: it declares scale_factor/add_offset) is unpacked, e.g. valid_range [0.0, 1.0] of int16 DN
    * 0.0001. (Zarr's JSON attributes keep only int vs float, which is enough for this test.)"""
    if not packs or packed.kind not in "iu" or value is None:
        return False
    try:
        return np.asarray(value).dtype.kind == "f"
    except (TypeError, ValueError):
        return False


def _packed(bound: float, scale: float, offset: float) -> float:
    """An unpacked bound in packed units, (bound - offset) / scale, snapped to the integer it misses by float
    rounding (1.0 / float32(1e-4) is 10000.0003, which would leave DN 10000 out)."""
    if not math.isfinite(bound) or scale == 0:
        return bound
    v = (bound - offset) / scale
    r = round(v)
    return float(r) if abs(v - r) <= 1e-6 * max(1.0, abs(v)) else v


def _fill_range(v: Any) -> tuple[float, float]:
    """The valid range netCDF's attribute conventions (NUG) derive from an explicit `_FillValue` when a variable
    declares none, as netCDF4-python applies it: a positive fill is a valid maximum (values above it are invalid),
    any other a valid minimum (values below it); the fill itself stays nodata (`fill_value`). (-inf, inf) without
    a _FillValue attribute, for a NaN fill, and for a decoded object (its fill moved to `encoding`). A fill of 0 is
    left exact (no range; netCDF4-python would make it a valid minimum): 0 is the common "no data" of unsigned and
    signed data alike, and as a minimum it would mask every negative value of, say, a dB backscatter cube."""
    f = _bound(v.attrs.get("_FillValue"), math.nan)
    if math.isnan(f) or f == 0:
        return -math.inf, math.inf
    return (-math.inf, f) if f > 0 else (f, math.inf)


def declared_valid_range(variables: Sequence[Any]) -> tuple[tuple[float, float], ...]:
    """((lo, hi), one per band) that variables declare by CF `valid_range` (two values) or `valid_min`/`valid_max`
    (an absent bound is -inf/+inf), in the units the values are read in (raw, packed, for stores opened undecoded);
    () when no variable declares one. `variables` as for `declared_rule` (one per band, a variable of several bands
    repeated). xarray applies none of these attributes, even when it decodes.

    Units (CF): a bound of the packed type is packed; a float bound on a variable packed as integers with
    scale_factor/add_offset is unpacked (`_unpacked_bound`) and is packed here to compare with raw values. An object
    xarray decoded (scale_factor/add_offset moved to `encoding`, values unpacked) gets its packed bounds unpacked
    instead. A variable declaring no bound but an explicit `_FillValue` gets the NUG default range (`_fill_range`:
    values beyond the fill, on the far side from the data, are invalid)."""
    out = []
    for v in variables:
        enc = getattr(v, "encoding", None) or {}
        decoded = any(k in enc and k not in v.attrs for k in ("scale_factor", "add_offset"))
        rule = enc if decoded else v.attrs
        packs = any(k in rule for k in ("scale_factor", "add_offset"))
        scale, offset = _scalar(rule.get("scale_factor", 1.0), 1.0), _scalar(rule.get("add_offset", 0.0), 0.0)
        packed = np.dtype(enc.get("dtype", v.dtype)) if decoded else np.dtype(v.dtype)
        pair = _numbers(v.attrs.get("valid_range"))
        if pair.size >= 2:  # CF: valid_range wins over valid_min/valid_max (it must not be given with them)
            raw = v.attrs.get("valid_range")
            bounds = [(_bound(pair[0], -math.inf), raw), (_bound(pair[1], math.inf), raw)]
        else:
            bounds = [(_bound(v.attrs.get(k), d), v.attrs.get(k)) for k, d in (("valid_min", -math.inf),
                                                                               ("valid_max", math.inf))]  # fmt: skip
        if all(math.isinf(b) for b, _ in bounds):
            lo, hi = (-math.inf, math.inf) if decoded else _fill_range(v)
        else:
            converted = []
            for b, attr in bounds:
                unpacked = _unpacked_bound(attr, packed, packs)
                if decoded and not unpacked:  # packed bound, unpacked values: unpack it
                    b = b * scale + offset
                elif not decoded and unpacked:  # unpacked bound, raw values: pack it
                    b = _packed(b, scale, offset)
                converted.append(b)
            lo, hi = sorted(converted)  # inf stays inf (a negative scale swaps)
            if bounds[0][0] > bounds[1][0]:  # an inverted declaration stays empty (every value outside)
                lo, hi = hi, lo
        out.append((lo, hi))
    if all(lo == -math.inf and hi == math.inf for lo, hi in out):
        return ()
    return tuple(out)


def in_valid_range(data: np.ndarray, ranges: Sequence[tuple[float, float]], band_axis: int = -3) -> np.ndarray:
    """Bool mask of the pixels whose every band lies in its declared valid range (`declared_valid_range`), `data`
    raw with bands on `band_axis` ([C,h,w] or [T,C,h,w]). CF calls a value outside the range missing; the pixel is
    then invalid as a whole, as for a NaN in any band (`validity.valid_pixels`), not only when every band is out
    (the all-bands rule of a nodata value): an out-of-range value is a flag (saturation, an error code), never a
    measurement, and a model fed the rest of the pixel would still see that band's flag as reflectance."""
    shape = [1] * data.ndim
    shape[band_axis] = len(ranges)
    lo = np.asarray([r[0] for r in ranges], dtype=np.float64).reshape(shape)
    hi = np.asarray([r[1] for r in ranges], dtype=np.float64).reshape(shape)
    inside = (data >= lo) & (data <= hi)  # NaN is outside; `valid_pixels` marks it invalid anyway
    return np.asarray(inside.all(axis=band_axis))  # an array (data has 3 or 4 axes); the stubs allow a scalar
