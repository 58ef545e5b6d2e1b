"""What a datacube store declares about its grid and values (`data/cube_grid.py`), read as an EO user writes such
stores with xarray/rioxarray: CF scale_factor/add_offset (refused when not the sensor's rule, as raster archives
refuse GDAL scale/offset tags), the _FillValue of one-variable-per-band stores (kept through stacking), and x/y
coordinates that are unsorted or unevenly spaced (refused instead of placed on an averaged grid)."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from geodino.data.cubes import CubeSource, open_cube
from geodino.errors import InputError

BANDS = ["B02", "B03", "B04", "B08"]
RES, LEFT, TOP = 10.0, 500000.0, 4200000.0


def _coords(h: int, w: int) -> dict:
    """Cell-centre coordinates of a north-up 10 m UTM grid (CF/rioxarray convention)."""
    return {"y": TOP - RES * (np.arange(h) + 0.5), "x": LEFT + RES * (np.arange(w) + 0.5)}


def _stack_store(path, data: np.ndarray, attrs: dict, **coord_over) -> str:
    """One (time, band, y, x) uint16 variable `refl` (stackstac/odc-stac layout) with `attrs`, in EPSG:32633."""
    import rioxarray  # noqa: F401
    import xarray as xr

    t, _, h, w = data.shape
    coords = {"time": np.array(["2024-01-01", "2024-02-01"][:t], dtype="datetime64[ns]"), "band": BANDS}
    coords.update(_coords(h, w), **coord_over)
    da = xr.DataArray(data, dims=("time", "band", "y", "x"), coords=coords, name="refl", attrs=dict(attrs))
    da.rio.write_crs("EPSG:32633").to_dataset().to_zarr(path, zarr_format=2)
    return str(path)


def _per_band_store(path, planes: dict[str, np.ndarray], attrs: dict[str, dict]) -> str:
    """One (y, x) variable per band (B08, B04, ... as many exports write them), each with its own attributes."""
    import rioxarray  # noqa: F401
    import xarray as xr

    h, w = next(iter(planes.values())).shape
    ds = xr.Dataset(
        {b: xr.DataArray(a, dims=("y", "x"), coords=_coords(h, w), attrs=attrs.get(b, {})) for b, a in planes.items()}
    )
    ds.rio.write_crs("EPSG:32633").to_zarr(path, zarr_format=2)
    return str(path)


def _data(t: int = 2, h: int = 12, w: int = 16, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(1000, 9000, (t, len(BANDS), h, w)).astype("uint16")


def test_a_cf_offset_other_than_the_sensors_is_refused(tmp_path):
    """The store says reflectance = DN * 0.0001 - 0.1 (Sentinel-2 L2A baseline >= 04.00); sentinel2_l2a reads
    DN * 0.0001. The old reader gave DN * 0.0001 (0.1 too bright in every band) without a word."""
    store = _stack_store(tmp_path / "l2a.zarr", _data(), {"scale_factor": 1e-4, "add_offset": -0.1, "_FillValue": 0})
    with pytest.raises(InputError) as err:
        CubeSource(store, sensor="sentinel2_l2a", bands=BANDS, tile_size=8)
    msg = str(err.value)
    assert "DN * 0.0001 - 0.1" in msg and "DN * 0.0001 + 0" in msg and "offset: -0.1" in msg and "l2a.zarr" in msg


def test_a_cf_rule_equal_to_the_sensors_reads_as_before(tmp_path):
    """scale_factor 0.0001 without offset is sentinel2_l2a's own rule: read, pixels equal DN * 1e-4 at the window
    the sample's transform names, at the first date."""
    data = _data()
    store = _stack_store(tmp_path / "ok.zarr", data, {"scale_factor": 1e-4, "_FillValue": 0})
    src = CubeSource(store, sensor="sentinel2_l2a", bands=BANDS, tile_size=8, sampling="grid", time_sampling="first")
    s = src.get(0, 0)
    col, row = round((s["transform"].c - LEFT) / RES), round((TOP - s["transform"].f) / RES)
    np.testing.assert_allclose(s["image"], data[0, :, row : row + 8, col : col + 8] * 1e-4, rtol=1e-6)
    assert s["time"].startswith("2024-01-01")


def test_per_band_variables_keep_their_fill_value(tmp_path):
    """B02..B08 as variables, each _FillValue 65535: stacking them dropped the attribute, so the old reader took
    sentinel2_l2a's nodata 0 and read 65535 as reflectance 6.5535 (valid)."""
    rng = np.random.default_rng(1)
    planes = {b: rng.integers(1000, 9000, (12, 16)).astype("uint16") for b in ("B08", "B04", "B03", "B02")}
    for a in planes.values():
        a[:, :4] = 65535
    store = _per_band_store(tmp_path / "pb.zarr", planes, {b: {"_FillValue": 65535} for b in planes})
    with pytest.warns(UserWarning, match=r"pb\.zarr holds 4 data variables of dimensions \(y, x\): .*; reading B02"):
        assert open_cube(store).nodata == 65535  # no bands named: the first variable, said
    src = CubeSource(store, sensor="sentinel2_l2a", tile_size=8, sampling="grid")
    assert src.band_names == BANDS and src.scenes[0].nodata == 65535
    s = src.read(0, 0, 0, 8, 8, None)
    assert not s["valid"][:, :4].any() and s["valid"][:, 4:].all()
    np.testing.assert_allclose(s["image"][0, :, 4:], planes["B02"][:8, 4:8] * 1e-4, rtol=1e-6)


def test_per_band_variables_with_different_fill_values_are_refused_unless_nodata_is_set(tmp_path):
    planes = {b: np.full((8, 8), 5, "uint16") for b in ("B02", "B03")}
    store = _per_band_store(tmp_path / "pb.zarr", planes, {"B02": {"_FillValue": 0}, "B03": {"_FillValue": 65535}})
    with pytest.raises(InputError, match=r"different nodata values \(B02: 0, B03: 65535\)"):
        open_cube(store, bands=["B02", "B03"])
    assert open_cube(store, bands=["B02", "B03"], nodata=0).nodata == 0


def test_per_band_variables_declaring_another_rule_are_refused(tmp_path):
    planes = {b: np.full((8, 8), 5, "uint16") for b in ("B02", "B03", "B04", "B08")}
    rule = {"scale_factor": 1e-4, "add_offset": -0.1}
    store = _per_band_store(tmp_path / "pb.zarr", planes, {b: rule for b in planes})
    with pytest.raises(InputError, match=r"DN \* 0.0001 - 0.1"):
        CubeSource(store, sensor="sentinel2_l2a", tile_size=8)


def test_unevenly_spaced_coordinates_are_refused(tmp_path):
    """x steps of 10 m then 15 m: rioxarray's affine from the first and last x (10.17 m) misplaced the pixels
    between by up to 4 m; the old reader trained and embedded on that grid without a word."""
    x = LEFT + RES * (np.arange(16) + 0.5)
    x[8:] += 5.0
    store = _stack_store(tmp_path / "irregular.zarr", _data(), {}, x=x)
    said = r"x coordinates are not evenly spaced \(steps from 10 to 15\)"
    with pytest.raises(InputError, match=said):
        open_cube(store)
    with pytest.raises(InputError, match=said + r".*allow_no_crs: true"):
        CubeSource(store, sensor="sentinel2_l2a", tile_size=8)
    # where nothing is placed (statistics, allow_no_crs) the pixels are read in pixel coordinates, without a CRS
    sc = CubeSource(store, sensor="sentinel2_l2a", tile_size=8, allow_no_crs=True).scenes[0]
    assert sc.crs == "" and sc.transform == (1.0, 0.0, 0.0, 0.0, 1.0, 0.0)
    with pytest.warns(UserWarning, match=said + r".*read without a CRS"):  # embed's reader: says why there is none
        assert open_cube(store, require_crs=False).crs == ""


def test_unsorted_coordinates_are_refused(tmp_path):
    y = TOP - RES * (np.arange(12) + 0.5)
    y[[3, 4]] = y[[4, 3]]
    store = _stack_store(tmp_path / "unsorted.zarr", _data(), {}, y=y)
    with pytest.raises(InputError, match=r"y coordinates are not sorted .*sortby\('y'\)"):
        open_cube(store)


@pytest.mark.parametrize("flip", ["y", "x"])
def test_evenly_spaced_coordinates_in_either_direction_are_placed_by_their_cell_centres(tmp_path, flip):
    """South-up (ascending y, as many lat grids) and east-to-west stores are regular grids, read north-up
    (`cube_grid.north_up`): the affine puts the first cell's centre at the north-west coordinate (half a cell from
    the corner), the rows and columns reversed to match."""
    data = _data()
    c = _coords(12, 16)
    store = _stack_store(tmp_path / f"{flip}.zarr", data, {}, **{flip: c[flip][::-1]})
    scene = open_cube(store)
    t = scene.affine
    first_centre = t @ (0.5, 0.5)
    assert first_centre == pytest.approx((c["x"][0], c["y"][0]))
    assert t.a == pytest.approx(RES) and t.e == pytest.approx(-RES)
    assert scene.array[{flip: 0}].coords[flip].item() == pytest.approx(c[flip][0])


def test_float32_lat_lon_pass_and_place_cell_centres(tmp_path):
    """A geographic cube of 0.0001 deg with float32 lat/lon (the coordinates jitter by float32 rounding, ~8 % of a
    step at lon 100): not refused, and the affine matches the grid to a small fraction of a cell."""
    import rioxarray  # noqa: F401
    import xarray as xr

    lon = (100 + 1e-4 * (np.arange(40) + 0.5)).astype("float32")
    lat = (45 - 1e-4 * (np.arange(30) + 0.5)).astype("float32")
    da = xr.DataArray(np.ones((1, 30, 40), "uint16"), dims=("band", "lat", "lon"), coords={"lat": lat, "lon": lon})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        da.rio.write_crs("EPSG:4326").to_dataset(name="r").to_netcdf(tmp_path / "geo.nc")
    t = open_cube(str(tmp_path / "geo.nc")).affine
    assert t.c == pytest.approx(100.0, abs=2e-5) and t.f == pytest.approx(45.0, abs=2e-5)
    assert t.a == pytest.approx(1e-4, rel=1e-3) and t.e == pytest.approx(-1e-4, rel=1e-3)


# a small store keeps the test fast; its few-pixels warning is expected (test_stats_edge asserts that warning)
@pytest.mark.filterwarnings("ignore:.*fewer than 1,000 valid pixels:UserWarning")
def test_data_stats_on_a_cf_scaled_cube_is_told_the_flags_and_applies_them(tmp_path, capsys):
    """data stats without --scale read the store's DN as physical (scale 1) although it declares DN * 0.0001 - 0.1;
    now refused naming the flags, which give numpy's mean of DN * 0.0001 - 0.1 over the valid pixels."""
    import yaml

    from geodino import cli

    data = _data()
    data[:, :, :3, :3] = 0
    store = _stack_store(tmp_path / "l2a.zarr", data, {"scale_factor": 1e-4, "add_offset": -0.1, "_FillValue": 0})
    out = tmp_path / "s.yaml"
    argv = ["data", "stats", "--type", "cube", store, "--out", str(out)]
    # another --scale/--offset is refused naming the store's flags; without them the store's rule is adopted
    # (tests/data/test_stats_cube_declared_rule.py), as for a GeoTIFF's scale/offset tags
    assert cli.main([*argv, "--scale", "0.0001", "--offset", "0"]) != 0
    assert "--scale 0.0001 --offset -0.1" in capsys.readouterr().err
    assert cli.main([*argv, "--scale", "0.0001", "--offset", "-0.1"]) == 0
    got = yaml.safe_load(out.read_text())
    x = np.moveaxis(data, 1, 0).reshape(len(BANDS), -1)
    want = np.array([b[b != 0].astype(np.float64).mean() * 1e-4 - 0.1 for b in x])
    np.testing.assert_allclose(got["mean"], want, atol=2e-6)
    assert got["bands"] == BANDS and got["offset"] == -0.1


def test_time_steps_count_in_time_whatever_the_store_order(tmp_path):
    """A store concatenated newest first (2024-02-01, 2024-01-01): time_sampling first read 2024-02-01 (step 0 of
    the store) and last 2024-01-01. Now first/last are the earliest/latest dates, pixels those of that date."""
    import xarray as xr

    data = _data()
    store = _stack_store(
        tmp_path / "desc.zarr",
        data,
        {"_FillValue": 0},
        time=np.array(["2024-02-01", "2024-01-01"], dtype="datetime64[ns]"),
    )
    on_disk = xr.open_zarr(store, mask_and_scale=False).refl
    for mode, date in (("first", "2024-01-01"), ("last", "2024-02-01")):
        src = CubeSource(store, sensor="sentinel2_l2a", bands=BANDS, tile_size=8, sampling="grid", time_sampling=mode)
        s = src.get(0, 0)
        col, row = round((s["transform"].c - LEFT) / RES), round((TOP - s["transform"].f) / RES)
        assert s["time"].startswith(date)
        want = on_disk.sel(time=date).values[:, row : row + 8, col : col + 8] * 1e-4
        np.testing.assert_allclose(s["image"], want, rtol=1e-6)
    assert [t[:10] for t in open_cube(store).times] == ["2024-01-01", "2024-02-01"]


# a small store keeps the test fast; its few-pixels warning is expected (test_stats_edge asserts that warning)
@pytest.mark.filterwarnings("ignore:.*fewer than 1,000 valid pixels:UserWarning")
def test_a_store_with_a_crs_but_nothing_placing_its_pixels_is_refused(tmp_path, capsys):
    """crs EPSG:32633, no x/y coordinates, no transform: rioxarray's identity affine put the store at UTM (0, 0)
    with 1 m pixels and training/embedding went on. Now refused in one line saying what to write, for a training
    source too; where no placement is needed (data stats, allow_no_crs) it reads as a store without a CRS."""
    import xarray as xr

    from geodino import cli

    da = xr.DataArray(np.ones((4, 12, 16), "uint16"), dims=("band", "y", "x"), attrs={"crs": "EPSG:32633"})
    da.to_dataset(name="r").to_zarr(tmp_path / "bare.zarr", zarr_format=2)
    store = str(tmp_path / "bare.zarr")
    said = r"has a CRS but no x/y coordinates and no transform .*write_transform"
    with pytest.raises(InputError, match=said):
        open_cube(store)
    with pytest.raises(InputError, match=said + r".*allow_no_crs: true"):
        CubeSource(store, sensor="sentinel2_l2a", band_names=BANDS, tile_size=8)
    sc = CubeSource(store, sensor="sentinel2_l2a", band_names=BANDS, tile_size=8, allow_no_crs=True).scenes[0]
    assert sc.crs == "" and sc.transform == (1.0, 0.0, 0.0, 0.0, 1.0, 0.0)
    argv = ["data", "stats", "--type", "cube", store, "--out", str(tmp_path / "s.yaml"), "--scale", "1e-4"]
    with pytest.warns(UserWarning, match=r"bare\.zarr has a CRS but no x/y coordinates and no transform"):
        assert cli.main(argv) == 0, capsys.readouterr().err


def test_geozarr_proj_code_and_spatial_transform_place_the_store(tmp_path):
    """GeoZarr-convention attributes (proj:code, spatial:transform in a, b, c, d, e, f order) on a store without
    x/y coordinates: were "no CRS"; now its CRS and affine."""
    import xarray as xr

    attrs = {"proj:code": "EPSG:32633", "spatial:transform": [RES, 0.0, LEFT, 0.0, -RES, TOP]}
    da = xr.DataArray(np.ones((4, 12, 16), "uint16"), dims=("band", "y", "x"), coords={"band": BANDS}, attrs=attrs)
    da.to_dataset(name="r").to_zarr(tmp_path / "gz.zarr", zarr_format=2)
    sc = open_cube(str(tmp_path / "gz.zarr"))
    assert "UTM zone 33N" in sc.crs and sc.transform == (RES, 0.0, LEFT, 0.0, -RES, TOP)


def test_netcdf3_unsigned_int16_reads_as_the_uint16_it_stores(tmp_path):
    """NetCDF3 has no uint16: xarray (and GDAL) store DN as int16 with _Unsigned = "true". Opened raw, DN 40000 read
    as -25536 and the fill 65535 as -1, so bright pixels trained as negative reflectance. Now the uint16 values,
    lazily, with the fill value decoded too; a layout needing a transpose (y, x, band) is read the same."""
    import rioxarray  # noqa: F401
    import xarray as xr

    rng = np.random.default_rng(4)
    dn = rng.integers(30000, 42000, (12, 16, len(BANDS))).astype("uint16")
    dn[:2] = 65535
    c = _coords(12, 16)
    da = xr.DataArray(dn.view("int16"), dims=("y", "x", "band"), coords={**c, "band": BANDS}, name="refl")
    da.attrs.update(_Unsigned="true", _FillValue=np.int16(-1))
    da.rio.write_crs("EPSG:32633").to_dataset().to_netcdf(tmp_path / "u.nc", format="NETCDF3_64BIT")
    sc = open_cube(str(tmp_path / "u.nc"))
    assert sc.array.dtype == np.uint16 and sc.nodata == 65535
    src = CubeSource(str(tmp_path / "u.nc"), sensor="sentinel2_l2a", bands=BANDS, tile_size=8, sampling="grid")
    s = src.read(0, 4, 0, 8, 8, None)
    want = np.moveaxis(dn[:8, 4:12], -1, 0)
    assert not s["valid"][:2].any() and s["valid"][2:].all()
    np.testing.assert_allclose(s["image"][:, 2:], want[:, 2:] * 1e-4, rtol=1e-6)


def test_per_band_variables_keep_their_chunk_shape_for_chunk_aligned_tiles(tmp_path):
    """Stacking per-band variables dropped their encoding, so `chunks` was None and align_to_chunks did nothing on
    such stores (tiles straddling chunks). Now the variables' (16, 32) chunks, as a one-array store gives."""
    import rioxarray  # noqa: F401
    import xarray as xr

    c = _coords(64, 96)
    ds = xr.Dataset({b: xr.DataArray(np.ones((64, 96), "uint16"), dims=("y", "x"), coords=c) for b in BANDS})
    enc = {b: {"chunks": (16, 32)} for b in BANDS}
    ds.rio.write_crs("EPSG:32633").to_zarr(tmp_path / "pb.zarr", zarr_format=2, encoding=enc)
    src = CubeSource(str(tmp_path / "pb.zarr"), sensor="sentinel2_l2a", tile_size=16)
    assert src.scenes[0].chunks == (16, 32)
    origins = {(s["transform"].c - LEFT, TOP - s["transform"].f) for s in (src.get(i, 0) for i in range(12))}
    assert all(x % 160 == 0 and y % 160 == 0 for x, y in origins)  # 16 px tiles on the 16 px grid inside chunks
