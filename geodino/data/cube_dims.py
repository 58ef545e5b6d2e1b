"""How a datacube array's dims are read: which are time, band, y and x (the array transposed to (time?, band, y, x)),
its band names, and its bands in a sensor's order; for `cubes.open_cube` (split out of `geodino.data.cubes`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from geodino.data.archive_bands import sensor_order
from geodino.data.cube_times import holds_cftime
from geodino.data.sensors import Sensor
from geodino.errors import InputError

__all__ = ["TIME_DIMS", "band_names_of", "in_sensor_order", "order_dims"]

_BAND_DIMS = ("band", "bands", "channel", "channels", "spectral", "wavelength")
_Y_DIMS = ("y", "lat", "latitude", "northing")
_X_DIMS = ("x", "lon", "longitude", "easting")
TIME_DIMS = ("time", "t", "date", "dates", "datetime", "times")  # dims taken for time by name (any case)


def _find_dim(dims: Sequence[str], names: Sequence[str]) -> str | None:
    low = {d.lower(): d for d in dims}
    return next((low[n] for n in names if n in low), None)


def _dated(da: Any, dim: str) -> bool:
    """Whether `dim`'s coordinate holds dates: datetime64, or cftime dates of a CF calendar (noleap, 360_day: an
    object array, whose `valid_time` axis was read as bands named after its dates)."""
    if dim not in da.coords or da[dim].ndim != 1:
        return False
    return da[dim].dtype.kind == "M" or (da[dim].dtype.kind == "O" and holds_cftime(da[dim].values))


def _time_like(da: Any, dims: Sequence[str], skip: Sequence[str | None]) -> str | None:
    """The one dim (not in `skip`) that holds dates: a datetime64 or cftime coordinate, or a time name
    (`TIME_DIMS`, any case: openEO's `t`, `Time`); None when there is none or more than one."""
    found = [d for d in dims if d not in skip and (_dated(da, d) or d.lower() in TIME_DIMS)]
    return found[0] if len(found) == 1 else None


def order_dims(da: Any, path: str, band_dim: str | None, time_dim: str) -> tuple[Any, tuple[str | None, str, str, str]]:
    """The array transposed to (time?, band, y, x) (a band dim added when there is none) and those dim names.

    The time dim is `time_dim`, else the one dim holding dates (`_time_like`): a (t, y, x) openEO cube, or one
    whose dim is `Time`, had its dates read as bands b1..bN, silently (a lone unknown dim is taken as bands). An
    explicit `band_dim` naming that dim keeps it as bands."""
    dims = list(map(str, da.dims))
    ydim, xdim = _find_dim(dims, _Y_DIMS), _find_dim(dims, _X_DIMS)
    if ydim is None or xdim is None:
        raise InputError(
            f"datacube {path}: its variable's dims ({', '.join(dims)}) hold no y/x (or lat/lon) dimension; name the "
            "row and column dims y and x (xarray: ds.rename({'row': 'y', 'col': 'x'})) and write the store again"
        )
    tdim = time_dim if time_dim in dims else _time_like(da, dims, (ydim, xdim, band_dim))
    bdim = band_dim or _find_dim([d for d in dims if d not in (ydim, xdim, tdim)], _BAND_DIMS)
    rest = [d for d in dims if d not in (ydim, xdim, tdim, bdim)]
    if bdim is None and len(rest) == 1:
        bdim = rest[0]
        rest = []
    if rest:
        known = ", ".join(d for d in dims if d not in rest)
        raise InputError(
            f"datacube {path}: cannot tell what dims {', '.join(rest)} are (beside {known}); set `band_dim:` or "
            "`time_dim:` to one of them"
        )
    if bdim is None:
        da = da.expand_dims("band")
        bdim = "band"
    return da.transpose(*([tdim] if tdim else []), bdim, ydim, xdim), (tdim, bdim, ydim, xdim)


def band_names_of(da: Any, bdim: str, sensor: Sensor | None) -> tuple[str, ...]:
    """Band names from the band coordinate, else the sensor's (when the count matches), else b1, b2, ..."""
    if bdim in da.coords and da[bdim].dtype.kind in "USO":
        return tuple(str(v) for v in da[bdim].values)
    if sensor is not None and sensor.n_bands == da.sizes[bdim]:
        return sensor.bands
    return tuple(f"b{i}" for i in range(1, da.sizes[bdim] + 1))


def in_sensor_order(
    da: Any, bdim: str, names: tuple[str, ...], sensor: Sensor, path: str
) -> tuple[Any, tuple[str, ...]]:
    """The array's bands in the sensor's band order, by the store's names (`sensor_order`: aliases such as `nir`,
    any case), so a store of B08, B04, B03, B02 feeds each band on the sensor's channel. Names of none of the
    sensor's bands are left to positional reading; naming some but not all (or one twice) is refused in one line."""
    order = sensor_order(names, sensor)
    if order is not None:
        perm, canon = order
        return (da if perm == sorted(perm) else da.isel({bdim: perm})), canon
    resolved = [sensor.resolve_band(n, strict=False) for n in names]
    if not any(resolved):
        return da, names
    other = [n for n, c in zip(names, resolved, strict=True) if c is None]
    twice = sorted({c for c in resolved if c and resolved.count(c) > 1})
    why = f"{', '.join(other)} not the sensor's" if other else f"{', '.join(twice)} named twice"
    raise InputError(
        f"datacube {path} has bands {', '.join(names)} but sensor {sensor.name!r} has {', '.join(sensor.bands)} "
        f"({why}); name the store's bands with `band_names:`, pick some with `bands:`, or use a matching sensor"
    )
