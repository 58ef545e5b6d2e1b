"""Datacubes: Zarr v2 and v3, (band,y,x) and (time,band,y,x); pixels/georeference equal the GeoTIFF of the same
array read by rasterio; chunk-aligned tiles; time sampling; missing CRS."""

from __future__ import annotations

import numpy as np
import pytest
import rasterio
from affine import Affine
from rasterio.windows import Window
from rasterio.windows import transform as window_transform

from geodino.data.cubes import CubeSource
from geodino.data.sensors import Sensor
from geodino.errors import InputError
from tests.helpers import write_zarr3

from .conftest import ramp, write_tif

S3 = Sensor("s3", ("B1", "B2", "B3"), 1e-4, (0.1,) * 3, (0.05,) * 3, False)
T = Affine(10.0, 0.0, 500000.0, 0.0, -10.0, 4650000.0)


def _cube(data: np.ndarray, times: int | None = None, crs: str | None = "EPSG:32633"):
    import rioxarray  # noqa: F401
    import xarray as xr

    c, h, w = data.shape[-3:]
    x = T.c + (np.arange(w) + 0.5) * T.a
    y = T.f + (np.arange(h) + 0.5) * T.e
    dims = ("band", "y", "x")
    coords = {"band": ["B1", "B2", "B3"][:c], "y": y, "x": x}
    if times:
        dims = ("time", *dims)
        coords["time"] = np.array(["2024-01-01", "2024-02-01", "2024-03-01"][:times], dtype="datetime64[ns]")
    da = xr.DataArray(data, dims=dims, coords=coords, name="reflectance")
    da.attrs["_FillValue"] = 0
    if crs:
        da = da.rio.write_crs(crs)
    return da


@pytest.mark.parametrize("zarr_format", [2, 3])
def test_zarr_pixels_and_georeference_equal_geotiff(tmp_path, zarr_format):
    data = ramp(3, 64, 80)
    data[:, :10, :10] = 0
    tif = write_tif(tmp_path / "same.tif", data, crs="EPSG:32633")
    store = tmp_path / f"cube_v{zarr_format}.zarr"
    enc = {"reflectance": {"chunks": (3, 16, 16)}}
    if zarr_format == 3:
        write_zarr3(_cube(data).to_dataset(), store, encoding=enc)
    else:
        _cube(data).to_dataset().to_zarr(store, zarr_format=2, encoding=enc)
    src = CubeSource(str(store), sensor=S3, tile_size=32, max_nodata_fraction=1.0, name="c")
    assert src.band_names == ["B1", "B2", "B3"] and src.scenes[0].chunks == (16, 16)
    with rasterio.open(tif) as ref:
        for i in range(8):
            s = src.get(i, 0)
            t = s["transform"]
            col, row = round((t.c - T.c) / 10), round((T.f - t.f) / 10)
            assert col % 16 == 0 and row % 16 == 0  # chunk-aligned origins
            raw = ref.read(window=Window(col, row, 32, 32))
            np.testing.assert_allclose(s["image"], raw * 1e-4, rtol=1e-6)
            assert t == window_transform(Window(col, row, 32, 32), ref.transform)
            assert rasterio.crs.CRS.from_wkt(s["crs"]) == ref.crs
            assert s["valid"].tolist() == (~(raw == 0).all(0)).tolist()


def test_time_cube_sampling_and_grid(tmp_path):
    data = np.stack([ramp(3, 40, 40, seed=k) + 5000 * k for k in range(3)]).astype("uint16")
    store = tmp_path / "ts.zarr"
    write_zarr3(_cube(data, times=3).to_dataset(), store)
    rnd = CubeSource(str(store), sensor=S3, tile_size=20, name="t")
    seen_times = {rnd.get(i, 0)["time"][:10] for i in range(30)}
    assert seen_times == {"2024-01-01", "2024-02-01", "2024-03-01"}
    s = rnd.get(0, 0)
    k = ["2024-01-01", "2024-02-01", "2024-03-01"].index(s["time"][:10])
    col, row = round((s["transform"].c - T.c) / 10), round((T.f - s["transform"].f) / 10)
    np.testing.assert_allclose(s["image"], data[k, :, row : row + 20, col : col + 20] * 1e-4, rtol=1e-6)
    grid = CubeSource(str(store), sensor=S3, tile_size=20, sampling="grid", max_nodata_fraction=1.0, name="g")
    assert len(grid) == 4 * 3
    pairs = {(grid.get(i, 0)["time"], grid.get(i, 0)["transform"].c, grid.get(i, 0)["transform"].f) for i in range(12)}
    assert len(pairs) == 12  # every (tile, time) once per epoch
    stack = CubeSource(str(store), sensor=S3, tile_size=20, time_sampling="stack", name="s")
    assert stack.get(0, 0)["image"].shape == (3, 3, 20, 20)


def test_band_selection_and_errors(tmp_path):
    store = tmp_path / "c.zarr"
    _cube(ramp(3, 32, 32)).to_dataset().to_zarr(store, zarr_format=2)
    src = CubeSource(str(store), sensor=S3, bands=["B3", "B1"], tile_size=16)
    assert src.band_names == ["B3", "B1"] and src.get(0, 0)["image"].shape == (2, 16, 16)
    with pytest.raises(InputError, match=r"datacube .*c.zarr has no band 'B7' \(its bands: B1, B2, B3\)"):
        CubeSource(str(store), sensor=S3, bands=["B7"], tile_size=16)
    nocrs = tmp_path / "nocrs.zarr"
    write_zarr3(_cube(ramp(3, 32, 32), crs=None).to_dataset(), nocrs)
    with pytest.raises(InputError, match=r"datacube .*nocrs.zarr has no CRS"):
        CubeSource(str(nocrs), sensor=S3, tile_size=16)
    with pytest.raises(InputError, match=r"datacube .*missing.zarr cannot be opened"):
        CubeSource(str(tmp_path / "missing.zarr"), sensor=S3)
    with pytest.raises(InputError, match="tile size 64 px is larger than every raster"):
        CubeSource(str(store), sensor=S3, tile_size=64)


def test_16_bit_values_with_an_8_bit_sensor_are_refused_where_cube_pixels_are_read(tmp_path):
    """maxar scales 8-bit DN (1/255): a uint16 Zarr cube with values up to 3,999 was read as reflectance up to 15.7
    without a word, by the training reader and by embed. Refused as rasters are (`check_read_values`): the random
    and grid tiles of a cube source (also where one time step of a stack holds them), and embed's windows, which
    leave nothing behind; 8-bit values stored as uint16, and the _FillValue above 255, are fine."""
    from geodino.data.loaders import SourceConfig, build_source, check_sources_have_pixels
    from geodino.embed import embed_raster
    from geodino.errors import ConfigError
    from tests.embed.toy_backbones import ConvBackbone

    rng = np.random.default_rng(0)
    wide = tmp_path / "wide.zarr"
    _cube(rng.integers(200, 4000, (3, 32, 32)).astype("uint16")).to_dataset().to_zarr(wide, zarr_format=2)
    said = r"datacube .*wide\.zarr is 16-bit \(uint16, values up to 39\d\d\) but sensor 'maxar' scales 8-bit DN"
    for sampling in ("random", "grid"):
        cfg = SourceConfig(type="cube", paths=[str(wide)], sensor="maxar", tile_size=16, sampling=sampling)
        with pytest.raises(ConfigError, match=said + r".*set `sensor:` to your imagery's"):
            check_sources_have_pixels([build_source(cfg)], seed=0)
    times = tmp_path / "times.zarr"
    two = np.stack([rng.integers(0, 256, (3, 32, 32)), rng.integers(200, 4000, (3, 32, 32))]).astype("uint16")
    write_zarr3(_cube(two, times=2).to_dataset(), times)
    with pytest.raises(ConfigError, match=r"datacube .*times\.zarr is 16-bit \(uint16, values up to 39\d\d\)"):
        CubeSource(str(times), sensor="maxar", tile_size=16, time_sampling="stack").get(0, 0)
    with pytest.raises(ConfigError, match=said + r".*set --sensor to your imagery's"):
        embed_raster(wide, ConvBackbone(), tmp_path / "f.tif", sensor="maxar", tile=32, overlap=0, progress=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["times.zarr", "wide.zarr"]  # no output, no partial
    narrow = _cube(rng.integers(0, 256, (3, 32, 32)).astype("uint16"))
    narrow[:, :8] = 9999
    narrow.attrs["_FillValue"] = 9999  # the nodata value: not a pixel
    narrow.to_dataset().to_zarr(tmp_path / "narrow.zarr", zarr_format=2)
    src = CubeSource(str(tmp_path / "narrow.zarr"), sensor="maxar", tile_size=16, max_nodata_fraction=1.0)
    assert all((s := src.get(i, 0))["image"][:, s["valid"]].max() <= 1.0 for i in range(4))
    embed_raster(tmp_path / "narrow.zarr", ConvBackbone(), tmp_path / "n.tif", sensor="maxar", tile=32, overlap=0)


# a small store keeps the test fast; its few-pixels warning is expected (test_stats_edge asserts that warning)
@pytest.mark.filterwarnings("ignore:.*fewer than 1,000 valid pixels:UserWarning")
def test_data_stats_on_cubes_equals_numpy_on_the_store(tmp_path, capsys):
    """`geodino data stats --type cube` refused every store ("needs a sensor"): the cube was built without one.
    Now as on rasters: without --sensor a neutral sensor with the store's band names (or --band-names) and the
    dtype's scale (--scale), with one its scale and band names; every time step's non-overlapping grid windows, so
    mean and std equal numpy's over the store's valid pixels (the _FillValue excluded). Zarr and NetCDF."""
    import yaml

    from geodino import cli
    from geodino.data.stats import compute_stats

    rng = np.random.default_rng(3)
    data = rng.integers(1, 5000, (3, 37, 45)).astype("uint16")
    data[:, :9, :13] = 0  # nodata corner (_FillValue 0)
    store = tmp_path / "c.zarr"
    _cube(data).to_dataset().to_zarr(store, zarr_format=2)

    def numpy_stats(arr, scale):
        x = arr.reshape(*arr.shape[:-3], arr.shape[-3], -1)
        x = np.moveaxis(x, -2, 0).reshape(arr.shape[-3], -1)
        x = x[:, ~(x == 0).all(0)].astype(np.float64) * scale
        return x.mean(1), x.std(1, ddof=1), x.shape[1]

    out = tmp_path / "mine.yaml"
    argv = ["data", "stats", "--type", "cube", str(store), "--out", str(out), "--scale", "1e-4", "--tile-size", "16"]
    assert cli.main(argv) == 0
    capsys.readouterr()
    got = yaml.safe_load(out.read_text())
    mean, std, n = numpy_stats(data, 1e-4)
    assert got["bands"] == ["B1", "B2", "B3"] and got["scale"] == 1e-4 and got["nodata"] == 0
    np.testing.assert_allclose(got["mean"], mean, atol=2e-6)
    np.testing.assert_allclose(got["std"], std, atol=2e-6)
    assert got["stats"]["method"] == "exact: every pixel" and got["stats"]["pixels"] == [n] * 3
    assert got["stats"]["tiles"] == 3 * 3  # 16 px windows over 45 x 37, the edge ones clipped

    # a time cube with unnamed bands, named by --band-names, read through a built-in sensor: every time step
    times = tmp_path / "t.zarr"
    two = np.stack([data, rng.integers(1, 5000, (3, 37, 45)).astype("uint16")])
    da = _cube(two, times=2).drop_vars("band")
    # (unconsolidated: zarr warns that consolidated metadata is not part of Zarr v3, a warning that reaches stderr
    # wherever pytest does not record warnings, e.g. -p no:warnings, and then the one-line check below read 3 lines)
    da.to_dataset().to_zarr(times, zarr_format=3, consolidated=False)
    sensor, prov = compute_stats(
        str(times),
        type="cube",
        sensor="sentinel2_l2a",
        band_names=["B02", "B03", "B04"],
        tile_size=20,
        progress=False,
    )
    mean, std, n = numpy_stats(two, 1e-4)
    assert sensor.bands == ("B02", "B03", "B04") and sensor.scale == 1e-4 and prov["tiles"] == 2 * 2 * 3
    np.testing.assert_allclose(sensor.mean, mean, atol=2e-6)
    np.testing.assert_allclose(sensor.std, std, atol=2e-6)
    assert prov["pixels"] == [n] * 3
    # a sampled grid when the windows exceed --samples; a NetCDF file (int16: NetCDF-3) without --scale: the dtype
    # rule's 1/10000
    sensor, prov = compute_stats(str(times), type="cube", samples=5, tile_size=8, progress=False)
    assert prov["tiles"] == 5 and prov["method"] == "uniform sample of 60 grid windows"
    nc = tmp_path / "c.nc"
    _cube(data.astype("int16")).to_dataset().to_netcdf(nc, engine="scipy")
    sensor, prov = compute_stats(str(nc), type="cube", progress=False)
    mean, std, n = numpy_stats(data, 1e-4)
    assert sensor.bands == ("B1", "B2", "B3") and sensor.scale == 1e-4
    np.testing.assert_allclose(sensor.mean, mean, atol=2e-6)
    np.testing.assert_allclose(sensor.std, std, atol=2e-6)
    # the names must fit the store's bands: one line, exit 2
    argv = ["data", "stats", "--type", "cube", str(store), "--out", str(tmp_path / "x.yaml"), "--band-names", "a"]
    capsys.readouterr()  # this command's stderr only
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    assert f"band_names lists 1 name but datacube {store} has 3 bands" in err and err.count("\n") == 1
    with pytest.raises(InputError, match=r"datacube .*c\.zarr has 3 bands \(B1, B2, B3\) but band_names lists 1 name"):
        CubeSource(str(store), sensor=S3, band_names=["a"], tile_size=16)


# constant bands give exact expected values; their warning is expected (test_stats_edge asserts it)
@pytest.mark.filterwarnings("ignore:.*constant or nearly:UserWarning")
def test_uint8_cube_with_a_16_bit_sensor_is_refused(tmp_path, capsys):
    """uint8 pixels through a sensor of 16-bit DN (scale 1e-4: 255 DN is reflectance 0.026) train as a
    near-constant image. Rasters were refused (`check_bit_depth`, RasterArchive), datacubes were not: the training
    reader and data stats read them. Now the same one line, naming the store, before any tile is read."""
    from geodino import cli
    from geodino.data.loaders import SourceConfig, build_source

    store = tmp_path / "u8.zarr"
    _cube(np.full((3, 32, 32), 200, np.uint8)).to_dataset().to_zarr(store, zarr_format=2)
    said = r"datacube .*u8\.zarr is uint8 but sensor '{}' scales 16-bit DN \(scale 0\.0001\); use a sensor of 8-bit DN"
    with pytest.raises(InputError, match=said.format("s3")):
        CubeSource(str(store), sensor=S3, tile_size=16)
    with pytest.raises(InputError, match=said.format("sentinel2_l2a")):
        build_source(SourceConfig(type="cube", paths=[str(store)], sensor="sentinel2_l2a", tile_size=16))
    out = tmp_path / "s.yaml"
    argv = ["data", "stats", "--type", "cube", str(store), "--out", str(out), "--sensor", "sentinel2_l2a"]
    assert cli.main([*argv, "--band-names", "B02", "B03", "B04"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "u8.zarr is uint8 but sensor 'sentinel2_l2a' scales 16-bit DN" in err
    assert not out.exists()
    assert cli.main([*argv, "--band-names", "B02", "B03", "B04", "--scale", "0.00392"]) == 0  # its scale: fine
    src = CubeSource(str(store), sensor="maxar", tile_size=16)  # an 8-bit sensor reads it
    assert src.get(0, 0)["image"].max() == pytest.approx(200 / 255)
