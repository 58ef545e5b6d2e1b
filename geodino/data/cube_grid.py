"""What a datacube store says about its grid and values: CRS, affine, nodata and the DN -> physical rule it
declares (CF `scale_factor`/`add_offset`), for `cubes.open_cube` and `cubes.CubeSource`.

The affine comes from a `transform` attribute (GeoZarr/stackstac style) or from the x/y coordinates, which CF and
rioxarray store as cell centres; rioxarray derives one step from the first and last coordinate, so coordinates that
are unsorted or unevenly spaced are refused here instead of being placed on a grid they do not describe.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from geodino.data.sensors import Sensor
from geodino.errors import InputError

__all__ = [
    "assumed_lonlat",
    "check_declared_rule",
    "cube_crs",
    "cube_transform",
    "declared_rule",
    "declared_valid_range",
    "fill_value",
    "in_time_order",
    "in_valid_range",
    "missing_as_fill",
    "north_up",
    "stacked_fill_value",
    "unsigned_decoded",
]

_FILL_KEYS = ("_FillValue", "nodata", "missing_value")
_RANGE_KEYS = ("valid_min", "valid_max", "valid_range")


def cube_crs(da: Any, ds: Any) -> Any:
    """The CRS from rioxarray, a grid-mapping variable's WKT, or a crs/EPSG attribute; None when there is none.

    A grid mapping rioxarray cannot parse (pyproj's CRSError: WKT or an EPSG code PROJ does not know; ValueError: CF
    parameters that are not numbers) falls through to the attributes; any other error is a bug and propagates. An
    attribute that is not a CRS is skipped for the next one; when none gives a CRS but one was malformed, the store
    is refused in one line naming it (it was rasterio's bare 'The WKT could not be parsed', no store named)."""
    from pyproj.exceptions import CRSError as ProjCRSError
    from rasterio.crs import CRS
    from rasterio.errors import CRSError

    try:
        crs = da.rio.crs or ds.rio.crs
    except (ProjCRSError, ValueError):  # a malformed grid mapping: try the attributes below
        crs = None
    if crs is not None:
        return crs
    bad: list[str] = []

    def parse(value: Any, what: str, read: Any) -> Any:
        try:
            return read(value)
        except (CRSError, ProjCRSError, ValueError, TypeError) as exc:  # pyproj's and rasterio's are one line
            bad.append(f"{what} {str(value)[:60]!r} ({str(exc).splitlines()[0] if str(exc) else type(exc).__name__})")
            return None

    for gm in ("spatial_ref", "crs"):  # a grid-mapping variable not linked from the data variable (encoding lost)
        if gm in ds.variables:
            for key in ("crs_wkt", "spatial_ref"):
                wkt = ds[gm].attrs.get(key)
                if wkt and (crs := parse(wkt, f"grid mapping {gm}'s {key}", CRS.from_wkt)) is not None:
                    return crs
    for key in ("crs", "crs_wkt", "spatial_ref", "proj:epsg", "proj:code", "proj:wkt2"):  # proj:*: GeoZarr/STAC
        val = da.attrs.get(key, ds.attrs.get(key))
        if val is not None:
            user = f"EPSG:{val}" if isinstance(val, (int, np.integer)) else val
            if (crs := parse(user, f"attribute {key}", CRS.from_user_input)) is not None:
                return crs
    if bad:
        name = ds.encoding.get("source") or da.encoding.get("source") or f"(an in-memory {type(ds).__name__})"
        raise InputError(
            f"datacube {name} declares no CRS geodino can read: {'; '.join(bad)}; fix the attribute (e.g. "
            "rioxarray's .rio.write_crs('EPSG:32633')) or remove it"
        )
    return None


_LON_NAMES = ("lon", "longitude")
_LAT_NAMES = ("lat", "latitude")


def assumed_lonlat(da: Any, path: str, xdim: str, ydim: str) -> tuple[Any, str]:
    """(EPSG:4326, the warning to give) for a store without any CRS whose x/y coordinates are named lon/longitude
    and lat/latitude AND hold degree values (lon within [-180, 360], lat within [-90, 90]), as GDAL and rioxarray
    read such grids; (None, "") otherwise: x/y-named grids, or lat/lon names over values no degree grid has (metres
    of a projected grid mislabelled), stay without a CRS (refused where one is needed)."""
    if xdim.lower() not in _LON_NAMES or ydim.lower() not in _LAT_NAMES:
        return None, ""
    ranges = []
    for dim in (xdim, ydim):
        if dim not in da.coords or da[dim].ndim != 1 or da[dim].dtype.kind not in "iuf" or da[dim].size == 0:
            return None, ""
        v = np.asarray(da[dim].values, dtype=np.float64)
        if not np.all(np.isfinite(v)):
            return None, ""
        ranges.append((float(v.min()), float(v.max())))
    (x0, x1), (y0, y1) = ranges
    if not (-180.0 <= x0 and x1 <= 360.0 and x1 - x0 <= 360.0 and -90.0 <= y0 and y1 <= 90.0):
        return None, ""
    from rasterio.crs import CRS

    return CRS.from_epsg(4326), (
        f"datacube {path} declares no CRS; its {ydim}/{xdim} coordinates are degrees, so it is read in EPSG:4326 "
        "(WGS 84 lat/lon), as GDAL and rioxarray do; if it is on another datum, write its CRS into the store "
        "(a grid_mapping variable or crs attribute, e.g. rioxarray's .rio.write_crs('EPSG:4258'))"
    )


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


def in_time_order(da: Any, tdim: str | None) -> Any:
    """The array with its dates in ascending order (a lazy re-index; a sorted store is returned as it is), so time
    step 0 is the earliest date: time_sampling first/last, their fallback to the next-earliest/latest date and an
    embed `time` index count in time, not in the order a store was concatenated in (newest first, say). Dates of a
    non-standard CF calendar (noleap, 360_day: cftime objects, an object array) are ordered too; text is left."""
    if tdim is None or tdim not in da.coords or da[tdim].ndim != 1:
        return da
    from geodino.data.cube_times import holds_cftime

    values = np.asarray(da[tdim].values)
    if values.dtype.kind not in "Mmiuf" and not holds_cftime(values):  # cftime: noleap, 360_day, ... dates
        return da
    if values.size < 2 or bool(np.all(values[1:] > values[:-1])):
        return da
    return da.isel({tdim: np.argsort(values, kind="stable")})


def _uneven(da: Any, path: str, dim: str) -> str:
    """Why a coordinate describes no regular grid ("" when it does): unsorted, or not evenly spaced, so the affine
    rioxarray derives from its first and last value would misplace the pixels between (by up to the largest
    deviation). A tenth of a step (plus a few float ulps of the stored values, for float32 lat/lon) is tolerated."""
    if dim not in da.coords or da[dim].ndim != 1 or da[dim].size < 3 or da[dim].dtype.kind not in "iuf":
        return ""
    raw = np.asarray(da[dim].values)
    v = raw.astype(np.float64)
    n = v.size
    step = (v[-1] - v[0]) / (n - 1)
    diffs = np.diff(v)
    slack = 4.0 * float(np.spacing(np.abs(raw).max())) if raw.dtype.kind == "f" else 0.0
    if step != 0 and np.abs(v - (v[0] + step * np.arange(n))).max() <= 0.1 * abs(step) + slack:
        return ""
    if not (np.all(diffs > 0) or np.all(diffs < 0)):
        up = np.count_nonzero(diffs > 0) >= np.count_nonzero(diffs < 0)  # the way most steps go, not the ends'
        k = int(np.argmax(diffs <= 0) if up else np.argmax(diffs >= 0))
        pair = f"{dim}[{k}]={raw[k]:g}, {dim}[{k + 1}]={raw[k + 1]:g}"
        turned = np.mod(v, 360.0)  # longitudes across the antimeridian (179.9, -179.9): sorting would cut the image
        if np.abs(v).max() <= 180 and np.abs(turned - (turned[0] + np.diff(turned).mean() * np.arange(n))).max() <= (
            0.1 * abs(diffs[0]) + slack
        ):
            return (
                f"datacube {path}: its {dim} coordinates cross the antimeridian ({pair}), so they describe no grid "
                f"as stored; write them as 0..360 (ds.assign_coords({dim}=ds[{dim!r}] % 360)) and embed that"
            )
        return (
            f"datacube {path}: its {dim} coordinates are not sorted ({pair}), so they describe no grid; sort the "
            f"store first (ds.sortby({dim!r}))"
        )
    return (
        f"datacube {path}: its {dim} coordinates are not evenly spaced (steps from {np.abs(diffs).min():g} to "
        f"{np.abs(diffs).max():g}), so no affine places every pixel; resample it onto a regular grid first "
        f"(e.g. rioxarray's .rio.reproject, or .interp onto an even {dim}), or write the store's true `transform` "
        "attribute (a, b, c, d, e, f) if its coordinates are wrong"
    )


IDENTITY = (1.0, 0.0, 0.0, 0.0, 1.0, 0.0)


def cube_transform(da: Any, ds: Any, path: str, xdim: str, ydim: str, has_crs: bool) -> tuple[tuple[float, ...], str]:
    """(affine, why its pixels cannot be placed: "" when they can). The affine comes from a `transform` or
    `spatial:transform` attribute (GeoZarr-style, a, b, c, d, e, f), else from the x/y coordinates (cell centres) or
    the grid mapping's GeoTransform. Unsorted or unevenly spaced coordinates, and a store with a CRS but none of these
    (rioxarray's identity fallback put pixel (0, 0) at the CRS's origin with 1-unit pixels, silently), give the
    identity and the reason: callers that place pixels refuse it, the others read in pixel coordinates."""
    for key in ("transform", "spatial:transform"):
        tr = da.attrs.get(key, ds.attrs.get(key))
        if tr is not None and len(tr) >= 6:
            return tuple(float(v) for v in tr[:6]), ""
    why = _uneven(da, path, xdim) or _uneven(da, path, ydim)
    if why:
        return IDENTITY, why
    try:
        out = tuple(da.rio.set_spatial_dims(x_dim=xdim, y_dim=ydim).rio.transform(recalc=True))[:6]
    except Exception as exc:
        raise InputError(f"datacube {path} has no usable x/y coordinates or transform attribute ({exc})") from exc
    missing = [d for d in (xdim, ydim) if d not in da.coords]
    if not has_crs or not missing or out != IDENTITY:
        return out, ""
    return out, (
        f"datacube {path} has a CRS but no {'/'.join(missing)} coordinates and no transform (attribute "
        "`transform`/`spatial:transform` or a GeoTransform on its grid mapping), so its pixels cannot be placed; "
        "write the cell-centre x/y coordinates, or the affine with rioxarray (.rio.write_transform)"
    )


def north_up(da: Any, transform: tuple[float, ...], xdim: str, ydim: str) -> tuple[Any, tuple[float, ...]]:
    """(the array, its affine) with rows north to south and columns west to east: a store whose y coordinates
    ascend (south-up, as many CF/NetCDF lat grids are written) or whose x descend is reversed along that dim (a lazy
    re-index: a window read touches the same chunks) and its affine mirrored to match. Read as stored, such a store
    fed the backbone the scene upside down (a ViT's features are not flip-invariant) and embed wrote a south-up
    raster (positive pixel height) that many GIS tools misdraw. Rotated grids (b, d != 0) are returned as they are;
    call it only for a store placed in a CRS (in pixel coordinates an ascending y is the image's own row order)."""
    a, b, c, d, e, f = (float(v) for v in transform[:6])
    if b != 0 or d != 0:
        return da, transform
    if e > 0:
        da = da.isel({ydim: slice(None, None, -1)})
        f, e = f + e * da.sizes[ydim], -e
    if a < 0:
        da = da.isel({xdim: slice(None, None, -1)})
        c, a = c + a * da.sizes[xdim], -a
    return da, (a, b, c, d, e, f)


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


def _scalar(value: Any, default: float) -> float:
    arr = np.asarray(value, dtype=np.float64).ravel()
    return float(arr[0]) if arr.size and math.isfinite(float(arr[0])) else default


def declared_rule(variables: Sequence[Any]) -> tuple[tuple[float, ...], tuple[float, ...]] | None:
    """(scales, offsets), one per band, that variables declare by CF `scale_factor`/`add_offset` (physical value =
    DN * scale_factor + add_offset), or None when every one declares 1/0 or nothing. `variables` gives one xarray
    variable per band (a variable of several bands is repeated: CF's attributes cover the whole variable). Attributes
    only: stores are opened undecoded, and an in-memory array xarray decoded keeps its rule in `encoding` (applied)."""
    scales = tuple(_scalar(v.attrs.get("scale_factor", 1.0), 1.0) for v in variables)
    offsets = tuple(_scalar(v.attrs.get("add_offset", 0.0), 0.0) for v in variables)
    if all(s == 1.0 for s in scales) and all(o == 0.0 for o in offsets):
        return None
    return scales, offsets


def _numbers(value: Any) -> np.ndarray:
    """An attribute's values as float64 (empty when absent or not numbers: a malformed attribute is no bound)."""
    try:
        return np.asarray(value, dtype=np.float64).ravel() if value is not None else np.empty(0)
    except (TypeError, ValueError):
        return np.empty(0)


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
    return inside.all(axis=band_axis)


def check_declared_rule(scenes: Sequence[Any], sensor: Sensor) -> None:
    """Refuse stores declaring a DN -> physical rule other than the sensor's, as raster archives refuse GDAL
    scale/offset tags: pixels are read raw and scaled by the sensor, so a store of DN * 0.0001 - 0.1 (Sentinel-2
    L2A, baseline >= 04.00) read with a sensor of DN * 0.0001 would be 0.1 too bright in every band, silently."""
    from geodino.data.rasters import format_rule

    n = sensor.n_bands

    def per_band(value: Any) -> tuple[float, ...]:
        return tuple(float(v) for v in value) if isinstance(value, tuple) else (float(value),) * n

    want_s, want_o = per_band(sensor.scale), per_band(sensor.offset)
    for sc in scenes:
        if not sc.scales:
            continue
        same = all(math.isclose(a, b, rel_tol=1e-6) for a, b in zip(sc.scales, want_s, strict=True)) and all(
            math.isclose(a, b, rel_tol=1e-6, abs_tol=1e-9) for a, b in zip(sc.offsets, want_o, strict=True)
        )
        if same:
            continue
        yaml_s = f"{sc.scales[0]:g}" if len(set(sc.scales)) == 1 else "[" + ", ".join(f"{v:g}" for v in sc.scales) + "]"
        yaml_o = (
            f"{sc.offsets[0]:g}" if len(set(sc.offsets)) == 1 else "[" + ", ".join(f"{v:g}" for v in sc.offsets) + "]"
        )
        uniform = len(set(sc.scales)) == 1 and len(set(sc.offsets)) == 1
        flags = f" (in data stats: --scale {yaml_s} --offset {yaml_o})" if uniform else ""
        raise InputError(
            f"datacube {sc.path} declares physical value = {format_rule(sc.scales, sc.offsets)} (CF scale_factor/"
            f"add_offset of bands {', '.join(sc.band_names)}; pixels are read raw) but sensor {sensor.name!r} reads "
            f"{format_rule(want_s, want_o)}; if the store's rule is right, read it with a sensor YAML (`sensor:`) "
            f"of scale: {yaml_s} and offset: {yaml_o}{flags}; if its attributes are wrong, drop scale_factor/"
            "add_offset from the variable's attributes"
        )
