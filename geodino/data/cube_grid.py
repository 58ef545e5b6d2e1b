"""What a datacube store says about its grid: CRS (or lon/lat assumed from degree coordinates), affine, rows read
north-up and dates in time order, for `cubes.open_cube` and `cubes.CubeSource`. What it says about its values is
read by `geodino.data.cube_fill` (nodata), `geodino.data.cube_rule` (CF scale_factor/add_offset) and
`geodino.data.cube_valid_range` (CF valid range); their public names are re-exported here.

The affine comes from a `transform` attribute (GeoZarr/stackstac style) or from the x/y coordinates, which CF and
rioxarray store as cell centres; rioxarray derives one step from the first and last coordinate, so coordinates that
are unsorted or unevenly spaced are refused here instead of being placed on a grid they do not describe.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from geodino.data.cube_fill import fill_value, missing_as_fill, stacked_fill_value, unsigned_decoded
from geodino.data.cube_rule import check_declared_rule, declared_rule
from geodino.data.cube_valid_range import declared_valid_range, in_valid_range
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
