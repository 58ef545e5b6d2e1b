"""Which variables of a datacube `geodino embed` stacks as its bands, for stores holding one variable per band (B02,
B03, B04, B08 each a (time?, y, x) array), as the training readers stack them (`geodino.data.cube_variables`).

With `--sensor`: the variables naming the sensor's bands, in the sensor's band order (the training rule). Without
one: every single-band variable, in the store's order, when `--bands` picks among them (by name, or by number in
that order); with neither, nothing says which variable is which channel of the backbone (a Zarr store lists its
variables alphabetically: B12 before B8A), so the run is refused in one line naming the variables and the flags.
Before, embed read the store's first variable alone (a 4-variable store was "1 band"). `open_embed_cube` opens the
store once for both (the variables' choice and the read).
"""

from __future__ import annotations

from typing import Any

from geodino.errors import InputError, plural

__all__ = ["open_embed_cube", "read_variables", "single_band_planes", "stacked_variables"]


def single_band_planes(ds: Any, time_dim: str = "time") -> list[str] | None:
    """The store's single-band variables ((time?, y, x), all on one grid), in its order, when it holds two or more
    and no variable with a band dimension; None otherwise (one array is read, as before)."""
    from geodino.data.cube_dims import TIME_DIMS  # the time dims `cube_dims.order_dims` knows
    from geodino.data.cube_variables import data_variables

    cands = data_variables(ds)
    if len(cands) < 2:
        return None

    def is_time(d: Any) -> bool:  # as `cube_dims.order_dims` finds it: openEO's `t`, any datetime64 coordinate
        return d == time_dim or str(d).lower() in TIME_DIMS or (d in ds.coords and ds[d].dtype.kind == "M")

    spatial = {v: [d for d in ds[v].dims if not is_time(d)] for v in cands}
    if any(len(dims) != 2 for dims in spatial.values()):
        return None
    widest = max(cands, key=lambda v: ds[v].ndim)
    planes = [v for v in cands if ds[v].dims == ds[widest].dims and ds[v].shape == ds[widest].shape]
    return planes if len(planes) >= 2 else None


def stacked_variables(obj: Any, where: str, *, variable: str | None, sensor: Any, listing: bool) -> list[str] | None:
    """The variables of cube `obj` to stack as bands, in order, or None to read one array (`variable`, a DataArray,
    or a store with a band dimension). `sensor` (a `Sensor`, or None): its bands' variables in its order. Without a
    sensor, `listing` (the caller picks bands by name or number among the store's) gives every single-band variable in
    the store's order; otherwise such a store is refused: nothing orders its variables as the backbone's channels."""
    import xarray as xr

    from geodino.data.cube_open import open_dataset
    from geodino.data.cube_variables import band_variables, shown

    if variable is not None or isinstance(obj, xr.DataArray):
        return None
    ds = obj if isinstance(obj, xr.Dataset) else open_dataset(str(obj))
    if sensor is not None:
        return band_variables(ds, where, None, sensor, "time")
    planes = single_band_planes(ds)
    if planes is None or listing:
        return planes
    raise InputError(
        f"datacube {where} holds {plural(len(planes), 'single-band variable')} ({shown(planes)}) and nothing says "
        f"their band order: pass --sensor NAME (stacks the variables naming its bands, in its order), --bands "
        f"{','.join(planes[:3])},... (those variables, in the backbone's band order), or variable=NAME (one "
        f"of them); in Python sensor=, bands=[...] or variable="
    )


def open_embed_cube(
    obj: Any, where: str, *, variable: str | None, sensor: Any, listing: bool, nodata: float | None
) -> Any:
    """The `CubeScene` embed reads from cube `obj` (a store's path, or an in-memory Dataset/DataArray; `where`
    names it in messages): its variables chosen by `stacked_variables`, then read by `cubes.open_cube`, from one
    open of the store (each open reads its metadata again: on a remote Zarr, requests)."""
    import xarray as xr

    from geodino.data.cube_open import open_dataset
    from geodino.data.cubes import open_cube

    ds = obj if isinstance(obj, (xr.Dataset, xr.DataArray)) else open_dataset(str(obj))
    stack = stacked_variables(ds, where, variable=variable, sensor=sensor, listing=listing)
    # an unplaced store (unsorted or uneven x/y) is said once, by `prepare`: refused, or warned under --allow-no-crs
    return open_cube(
        ds, variable=variable, bands=stack, nodata=nodata, require_crs=False, name=where, warn_unplaced=False
    )


def read_variables(da: Any) -> list[str]:
    """The variables of the store an array `cubes.open_cube` returned reads, in the order of its bands: a stack of
    per-band variables is unnamed and its band coordinate names them (xarray's `Dataset.to_dataarray`), any other
    array is the one variable of that name (an in-memory DataArray without a name: "data")."""
    if da.name is not None:
        return [str(da.name)]
    band = da.dims[-3]  # (band, y, x) or (time, band, y, x)
    return [str(v) for v in da[band].values]
