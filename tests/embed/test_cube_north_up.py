"""A datacube stored south-up (y/lat coordinates ascending, as many CF/NetCDF grids are written) or east-to-west
(x descending) is read north-up: its rows reversed, its affine mirrored (`cube_grid.north_up`). Read as stored, embed
fed the backbone the scene upside down (a ViT's features are not flip-invariant) and wrote a south-up feature raster
(positive pixel height: many GIS tools misdraw it); the training reader's tiles were upside down too."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import rasterio

from geodino.embed import embed_raster

H, W = 32, 48
OPTS: dict[str, Any] = dict(tile=32, overlap=8, progress=False, threads=1, scale=1e-4)


def _scene() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """3 bands of DN, north-up (row 0 the northmost), and the cell-centre y (descending) and x (ascending)."""
    dn = np.random.default_rng(3).integers(1, 10000, (3, H, W)).astype("int16")
    return dn, 4e6 - 10 * (np.arange(H) + 0.5), 5e5 + 10 * (np.arange(W) + 0.5)


def _store(path: Path, flip: str, kind: str = "zarr") -> Path:
    """The scene stored with its `flip` axis ("", "y", "x" or "xy") in the other direction, as one (band, y, x)
    variable in a Zarr store, or as per-band variables of (lat, lon) in a NetCDF file (EPSG:4326 for its names)."""
    import rioxarray  # noqa: F401
    import xarray as xr

    dn, y, x = _scene()
    if "y" in flip:
        dn, y = dn[:, ::-1], y[::-1]
    if "x" in flip:
        dn, x = dn[:, :, ::-1], x[::-1]
    if kind == "zarr":
        da = xr.DataArray(dn, dims=("band", "y", "x"), name="refl",
                          coords={"band": ["B02", "B03", "B04"], "y": y, "x": x})  # fmt: skip
        da.rio.write_crs("EPSG:32633").to_dataset().to_zarr(path, zarr_format=2)
        return path
    lat, lon = 50 - (4e6 - y) * 1e-4, 10 + (x - 5e5) * 1e-4  # the same grid in degrees
    ds = xr.Dataset({b: (("lat", "lon"), dn[i]) for i, b in enumerate(("b1", "b2", "b3"))},
                    coords={"lat": lat, "lon": lon})  # fmt: skip
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ds.rio.write_crs("EPSG:4326").to_netcdf(path)  # NetCDF3 (scipy): no reader to install
    return path


def _embed(src: Path, out: Path) -> tuple[np.ndarray, Any]:
    from tests.embed.toy_backbones import ConvBackbone

    embed_raster(str(src), ConvBackbone(in_chans=3, dim=8, patch=4, n_convs=2), out, bands=[1, 2, 3], **OPTS)
    with rasterio.open(out) as ds:
        return ds.read(), ds.transform


@pytest.mark.parametrize("flip", ["y", "x", "xy"])
def test_a_south_up_or_east_to_west_cube_embeds_as_its_north_up_twin(tmp_path: Path, flip: str) -> None:
    want, want_tr = _embed(_store(tmp_path / "n.zarr", ""), tmp_path / "n.tif")
    got, tr = _embed(_store(tmp_path / "s.zarr", flip), tmp_path / "s.tif")
    assert want_tr.e < 0 and want_tr.a > 0
    assert tuple(tr) == pytest.approx(tuple(want_tr))  # was e > 0 (south-up) / a < 0
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)  # was the features of the scene upside down


def test_a_lat_ascending_netcdf_of_band_variables_embeds_north_up(tmp_path: Path) -> None:
    want, want_tr = _embed(_store(tmp_path / "n.nc", "", "nc"), tmp_path / "n.tif")
    got, tr = _embed(_store(tmp_path / "s.nc", "y", "nc"), tmp_path / "s.tif")
    assert tr.e < 0 and tr.f == pytest.approx(50.0) and tuple(tr) == pytest.approx(tuple(want_tr))
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


def test_the_training_reader_reads_the_same_tiles(tmp_path: Path) -> None:
    from geodino.data.cubes import CubeSource, open_cube

    north, south = _store(tmp_path / "n.zarr", ""), _store(tmp_path / "s.zarr", "y")
    a, b = open_cube(str(north)), open_cube(str(south))
    assert b.affine == a.affine and b.affine.e < 0
    np.testing.assert_array_equal(b.array.values, a.array.values)
    np.testing.assert_array_equal(b.array["y"].values, a.array["y"].values)  # coordinates follow the rows
    kw: dict[str, Any] = dict(sensor="sentinel2_l2a", tile_size=16, sampling="grid")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        src_n, src_s = CubeSource(str(north), **kw), CubeSource(str(south), **kw)
    for i in range(len(src_n)):
        tn, ts = src_n.get(i, 0), src_s.get(i, 0)
        np.testing.assert_array_equal(ts["image"], tn["image"])
        assert ts["transform"] == tn["transform"]
