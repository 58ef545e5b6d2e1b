"""A datacube's CF `missing_value` other than its `_FillValue` marks missing pixels too (CF; xarray's own decoding
masks both). Stores are read raw with one nodata value, the fill: a store of _FillValue -9999 and missing_value -1
fed its -1 pixels to the model as data, in embed and in training. They now read as the fill value."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest


def _store(path: Path, attrs: dict) -> Path:
    import rioxarray  # noqa: F401
    import xarray as xr

    grid = {"y": 4e6 - 10 * (np.arange(8) + 0.5), "x": 5e5 + 10 * (np.arange(8) + 0.5)}
    a = np.full((2, 8, 8), 500, "int16")
    a[:, 0, 0] = -9999
    a[:, 1, 1] = -1
    a[0, 2, 2] = -1  # one band only: a missing value in any band is no pixel (the nodata rule: every band)
    da = xr.DataArray(a, dims=("band", "y", "x"), coords=grid, name="r", attrs=attrs)
    da.rio.write_crs("EPSG:32633").to_dataset().to_zarr(path, zarr_format=2)
    return path


def _xarray_mask(path: Path) -> np.ndarray:
    import xarray as xr

    return ~np.isnan(xr.open_zarr(path)["r"].values).all(0)  # xarray's decoding: NaN where missing


@pytest.mark.parametrize(
    "attrs",
    [
        {"_FillValue": -9999, "missing_value": -1},
        {"_FillValue": -9999, "missing_value": [-1, -2]},
        {"missing_value": [-9999, -1]},
    ],
)
# several missing values are this test's input; xarray says so when it reads them
@pytest.mark.filterwarnings("ignore:variable 'r' has multiple fill values:xarray.SerializationWarning")
def test_missing_values_are_nodata_in_embed_and_training(tmp_path: Path, attrs: dict) -> None:
    from geodino.data.cubes import CubeSource as TrainCubes
    from geodino.embed.sources import CubeSource

    path = _store(tmp_path / "c.zarr", attrs)
    want = _xarray_mask(path)
    assert not want[0, 0] and not want[1, 1] and want[2, 2] and want.sum() == 62
    raw, ok = CubeSource(str(path)).read_inside(0, 8, 0, 8)
    np.testing.assert_array_equal(ok, want)  # the -1 pixel was valid
    assert raw[0, 1, 1] == -9999 and raw[0, 2, 2] == -9999 and raw[1, 2, 2] == 500  # read as the fill
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        src = TrainCubes(str(path), sensor="sentinel2_l2a", bands=None, band_names=["B04", "B08"], tile_size=8)
    np.testing.assert_array_equal(src.read(0, 0, 0, 8, 8, None)["valid"], want)


def test_a_nodata_given_takes_the_missing_values(tmp_path: Path) -> None:
    from geodino.embed.sources import CubeSource

    path = _store(tmp_path / "c.zarr", {"_FillValue": -9999, "missing_value": -1})
    raw, ok = CubeSource(str(path), nodata=-1).read_inside(0, 8, 0, 8)
    assert not ok[1, 1] and raw[0, 1, 1] == -1 and ok[0, 0]  # --nodata -1: the fill -9999 is data then
