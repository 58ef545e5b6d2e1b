"""One datacube store opened and described (`open_cube` -> `CubeScene`): its array with dims ordered (time?, band,
y, x), the bands chosen and named (a store of one variable per band stacked by name), dates in time order, the grid
(CRS, affine, north-up), nodata, and the CF scale/offset and valid range its variables declare. `geodino.data.cubes`
re-exports `open_cube`; its `CubeSource` reads tiles of the scenes.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

from geodino.data.cube_dims import band_names_of as _band_names
from geodino.data.cube_dims import in_sensor_order as _in_sensor_order
from geodino.data.cube_dims import order_dims as _order_dims
from geodino.data.cube_fill import fill_value, missing_as_fill, stacked_fill_value, unsigned_decoded
from geodino.data.cube_grid import assumed_lonlat, cube_crs, cube_transform, in_time_order, north_up
from geodino.data.cube_open import _REMOTE, open_dataset
from geodino.data.cube_rule import declared_rule
from geodino.data.cube_stack import stack_variables
from geodino.data.cube_times import date_labels
from geodino.data.cube_valid_range import declared_valid_range
from geodino.data.cube_variables import band_variables, data_variable
from geodino.data.rasters import SceneGrid
from geodino.data.sensors import Sensor
from geodino.errors import InputError, MissingBandError, plural

__all__ = ["CubeScene", "open_cube"]


_ASSUMED_SAID: set[str] = set()  # stores already warned of their assumed EPSG:4326 in this process


def _first_time(said: set[str], path: str, in_memory: bool) -> bool:
    """Whether a per-store warning is due: the first time in this process for the store at `path` (resolved, so
    `x.zarr` and `./x.zarr` are one store), every time for an unnamed in-memory object. `data stats`, the training
    source and `embed` each open the same store, and said it once each (three warnings of one fact)."""
    if in_memory:
        return True
    import os

    key = path if path.startswith(_REMOTE) else os.path.realpath(path)
    if key in said:
        return False
    said.add(key)
    return True


@dataclasses.dataclass
class CubeScene(SceneGrid):
    """One opened store: the array (dims ordered time?, band, y, x), its grid and metadata."""

    path: str
    array: Any  # xarray.DataArray (lazy, no dask)
    crs: str
    transform: tuple[float, ...]
    width: int
    height: int
    band_names: tuple[str, ...]
    time_dim: str | None
    times: list[str]
    nodata: float | None
    chunks: tuple[int, int] | None  # (y, x) chunk shape
    scales: tuple[float, ...] = ()  # per band, the CF scale_factor/add_offset the store declares; () for none
    offsets: tuple[float, ...] = ()
    unplaced: str = ""  # why a store's CRS was dropped: no regular grid places its pixels (`cube_transform`)
    valid_ranges: tuple[tuple[float, float], ...] = ()  # per band, CF valid_range/valid_min/valid_max (raw); ()
    mirrored: tuple[str, ...] = ()  # the dims read reversed to be north-up ("y": south-up store, "x": east-west)


def open_cube(
    path: str | Any,
    *,
    variable: str | None = None,
    bands: Sequence[str] | None = None,
    band_dim: str | None = None,
    time_dim: str = "time",
    nodata: float | None = None,
    require_crs: bool = True,
    warn_unplaced: bool = True,
    sensor: Sensor | None = None,
    band_names: Sequence[str] | None = None,
    name: str | None = None,
) -> CubeScene:
    """Open one store and describe it (array, grid, bands, times); errors name the store and what is missing.

    `band_names` names the array's bands in order (instead of its band coordinate's, the sensor's or b1..bN), before
    `bands` selects some (in the order given). Without `bands`, named bands are read in `sensor`'s order by name; a
    store naming none of the sensor's bands is read positionally (CubeSource: only with the sensor's band count).
    A store of one variable per band is stacked by variable name (`cube_variables.band_variables`), as rasters are
    read by band description: the variables `bands` names, else those naming the sensor's bands in its order.
    `path` may also be an in-memory xarray Dataset or DataArray (messages then name its type, or `name`: the path of
    a store the caller opened already, `cube_open.open_dataset`, to read it without opening it again). A store whose
    pixels no regular grid places (`cube_grid.cube_transform`) is refused with `require_crs`, else read without a
    CRS (warned)."""
    import rioxarray  # noqa: F401 - registers the .rio accessor
    import xarray as xr

    in_memory = isinstance(path, (xr.DataArray, xr.Dataset)) and name is None  # no path to say a warning once for
    if isinstance(path, xr.DataArray):
        ds, path = path.to_dataset(name=path.name or "data"), name or "DataArray"
    elif isinstance(path, xr.Dataset):
        ds, path = path, name or "Dataset"
    else:
        path = str(path)
        ds = open_dataset(path)
    ds = unsigned_decoded(ds)  # NetCDF3's int16 + _Unsigned: the uint16 DN it stores
    ds = missing_as_fill(ds, nodata)  # CF missing_value other than the fill: read as the fill (one nodata value)
    stacked = band_variables(ds, path, bands, sensor, time_dim) if variable is None else None
    per_band_variables = stacked is not None
    if stacked is not None:
        fill = stacked_fill_value(ds, stacked, path) if nodata is None else None
        # one variable per band (by name, in the sensor's order); unnamed, its band coordinate naming the variables
        # (`embed.cube_bands.read_variables`: what a resumed embed records)
        da = stack_variables(ds, stacked)  # lazily: a window read reads that window of each variable
        if fill is not None:  # stacking drops the variables' attributes
            da.attrs["_FillValue"] = fill
        band_dim = "band"
    else:
        da = ds[data_variable(ds, path, variable)]
    sources = [ds[v] for v in stacked] if stacked is not None else [da]  # whose CF scale/offset the bands carry
    da, (tdim, bdim, ydim, xdim) = _order_dims(da, path, band_dim, time_dim)
    da = in_time_order(da, tdim)  # time step 0: the earliest date, whatever the store's order
    names = _band_names(da, bdim, sensor)
    named = bool(band_names) or (bdim in da.coords and da[bdim].dtype.kind in "USO")
    if band_names:
        if len(band_names) != len(names):
            raise InputError(
                f"datacube {path} has {plural(len(names), 'band')} ({', '.join(names)}) but band_names lists "
                f"{plural(len(band_names), 'name')}; name each band of the store once, in order"
            )
        names = tuple(band_names)
    if bands and not per_band_variables:
        idx = []
        lookup = {n.lower(): i for i, n in enumerate(names)}
        for i, n in enumerate(names if sensor else ()):  # the store's names as the sensor reads them (B04_10m: B04)
            if (canon_n := sensor.resolve_band(n, strict=False)) is not None:  # type: ignore[union-attr]
                lookup.setdefault(canon_n.lower(), i)
        for b in bands:
            canon = sensor.resolve_band(b, strict=False) if sensor else None
            hit = next((lookup[c.lower()] for c in (b, canon) if c and c.lower() in lookup), None)
            if hit is None:
                raise MissingBandError(
                    f"datacube {path} has no band {b!r} (its bands: {', '.join(names)}); fix `bands:`",
                    source=f"datacube {path}",
                    band=b,
                    names=names,
                )
            idx.append(hit)
        da = da.isel({bdim: idx})
        names = tuple(names[i] for i in idx)
    elif sensor is not None and named and not bands:  # `bands:` (per-band variables too): in its order
        da, names = _in_sensor_order(da, bdim, names, sensor, path)
    crs = cube_crs(da, ds)
    if crs is None:  # a lat/lon grid without any CRS: EPSG:4326, as GDAL and rioxarray assume (warned once)
        crs, assumed = assumed_lonlat(da, path, xdim, ydim)
        if assumed and _first_time(_ASSUMED_SAID, path, in_memory):
            import warnings

            warnings.warn(assumed, stacklevel=2)
    transform, lost = cube_transform(da, ds, path, xdim, ydim, has_crs=crs is not None)
    mirrored: tuple[str, ...] = ()
    if crs is not None and not lost:  # rows north to south, columns west to east, as rasters are read
        stored = transform
        da, transform = north_up(da, transform, xdim, ydim)
        mirrored = tuple(d for d, i in (("y", 4), ("x", 0)) if transform[i] != stored[i])
    if lost and require_crs:
        raise InputError(lost)
    if lost:  # no regular grid places the pixels: read in pixel coordinates (data stats, allow_no_crs)
        crs = None
        if warn_unplaced:  # a caller that then asks for a CRS (embed) says only that there is none
            import warnings

            warnings.warn(f"{lost}; read without a CRS, in pixel coordinates", stacklevel=2)
    if crs is None and require_crs:
        raise InputError(
            f"datacube {path} has no CRS (no spatial_ref/grid_mapping or crs attribute); write one with rioxarray"
        )
    encoding = sources[0].encoding  # stacking per-band variables drops their encoding: the first one's chunks
    chunks = encoding.get("preferred_chunks") or {}
    enc = encoding.get("chunks")
    ychunk = chunks.get(ydim) or (enc[-2] if enc else None)
    xchunk = chunks.get(xdim) or (enc[-1] if enc else None)
    times = date_labels(da[tdim].values) if tdim and tdim in da.coords else []  # ISO, numpy and cftime alike
    if tdim and not times:
        times = [str(i) for i in range(da.sizes[tdim])]
    per_band = sources if stacked is not None else sources * len(names)  # stacked: in band order
    rule = declared_rule(per_band)
    return CubeScene(
        path=path,
        array=da,
        crs=crs.to_wkt() if crs is not None else "",
        transform=transform,
        width=int(da.sizes[xdim]),
        height=int(da.sizes[ydim]),
        band_names=names,
        time_dim=tdim,
        times=times,
        nodata=fill_value(da, nodata, sensor),
        chunks=(int(ychunk), int(xchunk)) if ychunk and xchunk else None,
        scales=rule[0] if rule else (),
        offsets=rule[1] if rule else (),
        unplaced=lost,
        valid_ranges=declared_valid_range(per_band),
        mirrored=mirrored,
    )
