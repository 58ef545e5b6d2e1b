"""A many-scene `geodino embed` checks every scene's header before any is embedded (band count, north-up grid). The
check read headers through GDAL alone, so datacubes GDAL reads otherwise than geodino does were refused: a Zarr store
or a NetCDF3 file of one variable per band (B02, B03, ... each a (y, x) array) was "a rotated or south-up
geotransform". Cubes are now checked by geodino's own cube reader (the grid and bands `embed` reads)."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest
import rasterio

from geodino import cli
from geodino.embed.config import EmbedConfig
from geodino.embed.scene_checks import check_headers
from geodino.embed.stac import Scene
from geodino.errors import InputError

SPEC = "arch:vit_tiny?depth=1&patch_size=8&bands=3&seed=0"
RUN = ["--tile", "32", "--overlap", "0", "--no-progress", "--threads", "1", "--scale", "1e-4"]


def _store(path: Path, north: float, names: tuple[str, ...] = ("B02", "B03", "B04", "B08"), south_up: bool = False):
    """A 32 x 32 cube of one uint16 variable per band, 10 m pixels, its top edge at `north` (rows stored south
    first when `south_up`); .zarr: a Zarr v2 store, .nc: a NetCDF3 (classic) file."""
    import rioxarray  # noqa: F401
    import xarray as xr

    y = north - 10 * (np.arange(32) + 0.5)
    rng = np.random.default_rng(int(north) % 97)
    ds = xr.Dataset(
        {b: (("y", "x"), rng.integers(0, 10000, (32, 32)).astype("uint16")) for b in names},
        coords={"y": y, "x": 5e5 + 10 * (np.arange(32) + 0.5)},
    ).rio.write_crs("EPSG:32633")
    if south_up:
        ds = ds.isel(y=slice(None, None, -1))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if path.suffix == ".zarr":
            ds.to_zarr(path, zarr_format=2)
        else:
            ds.astype("int32").to_netcdf(path, format="NETCDF3_CLASSIC", engine="scipy")
    return path


@pytest.mark.parametrize("second", ["b.zarr", "b.nc"])
def test_a_folder_of_per_band_variable_cubes_is_embedded(tmp_path: Path, second: str) -> None:
    d = tmp_path / "in"
    d.mkdir()
    _store(d / "a.zarr", 4e6)
    _store(d / second, 4e6 - 320, south_up=True)  # read north-up (cube_grid.north_up): the mosaic takes it
    out = tmp_path / "out"
    assert cli.main(["embed", str(d), "-b", SPEC, "--out", str(out), "--bands", "1,2,3", *RUN]) == 0
    assert sorted(p.name for p in out.glob("*.tif")) == ["a.tif", "b.tif"]
    with rasterio.open(out / "a.tif") as a, rasterio.open(out / "b.tif") as b:
        assert a.transform.e < 0 and b.transform.e < 0
        assert a.bounds.top == 4e6 and b.bounds.top == 4e6 - 320 and b.bounds.left == a.bounds.left == 5e5
    assert (out / "mosaic.vrt").exists()


def test_cube_band_counts_are_checked_up_front(tmp_path: Path) -> None:
    a = _store(tmp_path / "a.zarr", 4e6)
    b = _store(tmp_path / "b.zarr", 4e6 - 320, names=("B02", "B03", "B04"))
    scenes = [Scene(name=p.stem, path=str(p)) for p in (a, b)]
    with pytest.raises(InputError, match=r"a.zarr has 4 bands, .*b.zarr has 3"):
        check_headers(scenes, EmbedConfig(bands=None, variable=None, sensor="sentinel2_l2a"))
    assert check_headers(scenes, EmbedConfig(bands=[1, 2, 3])) == set()
    with pytest.raises(InputError, match=r"include band 4, but scene .*b.zarr has 3 bands"):
        check_headers(scenes, EmbedConfig(bands=[1, 2, 4]))


def test_bbox_over_per_band_variable_cubes_is_judged_on_their_grid(tmp_path: Path) -> None:
    """--bbox picks the scenes it meets from each scene's header: a cube of per-band variables, which GDAL reads
    with no CRS and an identity transform, was refused ('--bbox-crs ... needs an input with a CRS, but scene a.zarr
    has none') or judged on that wrong grid; now on the grid embed reads (south-up rows read north-up)."""
    d = tmp_path / "in"
    d.mkdir()
    _store(d / "a.zarr", 4e6)
    _store(d / "b.zarr", 4e6 - 320, south_up=True)
    out = tmp_path / "out"
    box = ["--bbox", "500000", "3999800", "500200", "4000000"]  # inside a (y 3999680..4000000), not b
    for crs in (["--bbox-crs", "EPSG:32633"], []):  # without --bbox-crs: each scene's CRS, one CRS over both
        argv = ["embed", str(d), "-b", SPEC, "--out", str(out), "--bands", "1,2,3", *box, *crs, *RUN, "--overwrite"]
        assert cli.main(argv) == 0
        assert sorted(p.name for p in out.glob("*.tif")) == ["a.tif"]
    box = ["--bbox", "500000", "3999400", "500200", "3999500"]  # inside b (y 3999360..3999680) only
    assert cli.main(["embed", str(d), "-b", SPEC, "--out", str(tmp_path / "o2"), "--bands", "1,2,3", *box, *RUN]) == 0
    assert sorted(p.name for p in (tmp_path / "o2").glob("*.tif")) == ["b.tif"]
