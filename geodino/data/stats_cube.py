"""The first datacube `geodino data stats` reads its bands, names, dtype and declared CF rule from, and the variables
of a store of one variable per band, before the source is built (split out of `geodino.data.stats`).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from geodino.errors import InputError

__all__ = ["cube_band_variables", "first_cube_bands", "first_store", "one_or_per_band"]


def first_store(paths: Any) -> str | None:
    """The first datacube `paths` name as the cube source expands them (`cube_open.cube_paths`: a folder's stores,
    a glob's, a `.txt` list's entries), or None for no paths. The raw first entry was opened before, so
    `geodino data stats --type cube FOLDER` failed with GroupNotFoundError where `data curate` read the folder."""
    from geodino.data.cube_open import cube_paths

    items = [paths] if isinstance(paths, (str, Path)) else list(paths)
    if not items:
        return None
    return cube_paths(items)[0]


def first_cube_bands(paths: Any, bands: Sequence[str] | None = None) -> tuple[int, tuple[str, ...], str, Any]:
    """(bands, their names, dtype, declared rule) of the first datacube, read as `bands` selects them: its band
    coordinate's (or band variables') names, else b1..bN; the rule is the (scales, offsets) its CF scale_factor/
    add_offset declare per band, or None. Opened with `bands` so a store of one variable per band is stacked as
    the source stacks it (without, it opened as its first variable: a 1-band sensor the source then refused)."""
    from geodino.data.cubes import open_cube

    first = first_store(paths)
    if first is None:
        raise InputError("no datacube paths given; pass Zarr stores or NetCDF files")
    scene = open_cube(str(first), bands=bands, require_crs=False)
    rule = (scene.scales, scene.offsets) if scene.scales else None
    return len(scene.band_names), scene.band_names, str(scene.array.dtype), rule


def cube_band_variables(paths: Any, bands: list[str] | None, band_names: Any, sensor: str | None) -> list[str] | None:
    """`bands`, else, when the first store holds one variable per band (several same-shaped (time?, y, x) variables)
    and neither --band-names nor --sensor says which, all of them by name: without a sensor nothing else picks them,
    and the store was read as its first variable alone (one band 'b1', silently)."""
    if bands or band_names or sensor:
        return bands
    if not isinstance(paths, (str, Path)) and not all(isinstance(p, (str, Path)) for p in paths):
        return bands  # in-memory xarray objects: the source stacks them itself
    first = first_store(paths)
    if first is None:
        return bands
    from geodino.data.cube_variables import data_variables
    from geodino.data.cubes import _open_dataset

    ds = _open_dataset(str(first))
    names = data_variables(ds)
    if len(names) < 2 or len({(ds[v].dims, ds[v].shape) for v in names}) != 1:
        return bands
    dims = ds[names[0]].dims
    return names if len(dims) == 2 or (len(dims) == 3 and "time" in dims) else bands


def one_or_per_band(values: tuple[float, ...]) -> float | tuple[float, ...]:
    """One value when every band has it (the YAML then reads as --scale X --offset Y would write it)."""
    return values[0] if len(set(values)) == 1 else values
