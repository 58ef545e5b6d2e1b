"""A lon/lat store across the antimeridian (x 179.51 ... 179.99, -179.99 ... -179.51) was said to be unsorted at
x[0], x[1] (a sorted pair: the first and last values set the direction, not its steps) with the advice to sort it,
which would cut the image in two and swap the halves. It names the pair where the longitudes wrap and says to
write them as 0..360; other unsorted coordinates still name their first pair out of order."""

from __future__ import annotations

import numpy as np
import pytest

from geodino.data.cubes import open_cube
from geodino.errors import InputError


def _lonlat_store(path, x: np.ndarray) -> str:
    import rioxarray  # noqa: F401
    import xarray as xr

    y = 10.0 - 0.02 * (np.arange(6) + 0.5)
    da = xr.DataArray(
        np.ones((1, 6, x.size), np.float32), dims=("band", "y", "x"), coords={"band": [1], "y": y, "x": x}
    )
    da.rio.write_crs("EPSG:4326").to_dataset(name="img").to_zarr(path, zarr_format=2)
    return str(path)


def test_longitudes_across_the_antimeridian_say_where_they_wrap(tmp_path):
    x = 179.5 + 0.02 * (np.arange(50) + 0.5)  # 179.51 .. 180.49
    store = _lonlat_store(tmp_path / "wrap.zarr", (x + 180.0) % 360.0 - 180.0)
    with pytest.raises(InputError, match=r"x coordinates cross the antimeridian \(x\[24\]=179\.99, x\[25\]=-179\.99\)"):
        open_cube(store)
    unsorted = x.copy()
    unsorted[[30, 31]] = unsorted[[31, 30]]
    with pytest.raises(InputError, match=r"x coordinates are not sorted \(x\[30\]=180\.13, x\[31\]=180\.11\)"):
        open_cube(_lonlat_store(tmp_path / "swap.zarr", unsorted))
