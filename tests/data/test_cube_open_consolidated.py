"""A Zarr store opens without warnings whether or not it holds consolidated metadata (v2 and v3): xarray's
fall-back from consolidated to plain metadata warned 'Failed to open Zarr store with consolidated metadata', which
reached users as a geodino warning for a valid store."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import xarray as xr

from geodino.data.cube_open import _consolidated, open_dataset
from tests.helpers import write_zarr3


def _ds() -> xr.Dataset:
    data = np.arange(2 * 4 * 4, dtype="uint16").reshape(2, 4, 4)
    return xr.DataArray(data, dims=("band", "y", "x"), coords={"band": ["B1", "B2"]}, name="r").to_dataset()


@pytest.mark.parametrize("zarr_format", [2, 3])
@pytest.mark.parametrize("consolidated", [True, False])
def test_a_store_opens_quietly_with_or_without_consolidated_metadata(tmp_path, zarr_format, consolidated):
    path = tmp_path / "c.zarr"
    if zarr_format == 3:
        write_zarr3(_ds(), path, consolidated=consolidated)
    else:
        _ds().to_zarr(path, zarr_format=2, consolidated=consolidated)
    assert _consolidated(str(path)) is consolidated
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ds = open_dataset(str(path))
    np.testing.assert_array_equal(ds["r"].values, _ds()["r"].values)
    assert list(ds["band"].values) == ["B1", "B2"]


def test_a_folder_without_zarr_metadata_and_a_remote_store_are_left_to_xarray(tmp_path):
    assert _consolidated(str(tmp_path)) is None
    assert _consolidated("s3://bucket/c.zarr") is None
