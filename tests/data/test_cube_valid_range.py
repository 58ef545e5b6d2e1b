"""CF valid_range / valid_min / valid_max on datacube variables: a value outside its band's range is missing (CF),
compared in raw (packed) units; geodino marks the whole pixel invalid when any band is outside (as for a NaN).
Before, these attributes were ignored: out-of-range flags (saturation, error codes) were trained on and counted in
`data stats`. Checked against a mask computed here with numpy on a crafted Zarr store."""

from __future__ import annotations

import numpy as np
import pytest

from geodino.data.cubes import CubeSource, open_cube
from geodino.data.sensors import Sensor

FILL = -9999
RANGES = {"a": (0, 1000), "b": (0, 900)}  # c declares none


def _values(seed: int = 0) -> dict[str, np.ndarray]:
    """Three int16 bands of 24x20 with values around and outside the ranges, a fill pixel block in every band and one
    pixel filled in band c alone (valid by the all-bands nodata rule when a and b are in range)."""
    rng = np.random.default_rng(seed)
    out = {v: rng.integers(-150, 1150, size=(24, 20)).astype(np.int16) for v in "abc"}
    for v in "abc":
        out[v][:3, :4] = FILL
    out["a"][10, 10], out["b"][10, 10], out["c"][10, 10] = 500, 500, FILL
    return out


def _expected(vals: dict[str, np.ndarray]) -> np.ndarray:
    """The mask as CF plus geodino's rules say it, computed independently of geodino."""
    a, b, c = vals["a"], vals["b"], vals["c"]
    in_a = (a >= 0) & (a <= 1000)
    in_b = (b >= 0) & (b <= 900)
    not_fill = ~((a == FILL) & (b == FILL) & (c == FILL))
    return in_a & in_b & not_fill


def _store(tmp_path, vals: dict[str, np.ndarray]):
    """A Zarr v2 store of one variable per band: a with valid_range, b with valid_min/valid_max, all a _FillValue."""
    import rioxarray  # noqa: F401
    import xarray as xr

    h, w = vals["a"].shape
    coords = {"y": 5_000_000.0 - (np.arange(h) + 0.5) * 10, "x": 300_000.0 + (np.arange(w) + 0.5) * 10}
    ds = xr.Dataset({v: (("y", "x"), vals[v]) for v in "abc"}, coords=coords).rio.write_crs("EPSG:32633")
    for v in "abc":
        ds[v].attrs["_FillValue"] = np.int16(FILL)
    ds["a"].attrs["valid_range"] = np.array(RANGES["a"], np.int16)
    ds["b"].attrs["valid_min"], ds["b"].attrs["valid_max"] = np.int16(0), np.int16(900)
    path = tmp_path / "ranged.zarr"
    ds.to_zarr(path, zarr_format=2)
    return path


def _sensor(bands) -> Sensor:
    n = len(bands)
    return Sensor("ranged", tuple(bands), 1.0, (0.0,) * n, (1.0,) * n, False, nodata=None)


@pytest.mark.parametrize("bands", [["a", "b", "c"], ["b", "c", "a"]], ids=["in-order", "reordered"])
def test_pixels_outside_a_declared_valid_range_are_invalid(tmp_path, bands):
    vals = _values()
    src = CubeSource(str(_store(tmp_path, vals)), sensor=_sensor(bands), bands=bands, tile_size=16)
    sample = src.read(0, 0, 0, 20, 24, None)
    want = _expected(vals)
    assert 0 < want.sum() < want.size  # the fixture has both kinds
    np.testing.assert_array_equal(sample["valid"], want)  # old code: only the fill block invalid
    for i, v in enumerate(bands):  # the values themselves are left raw
        np.testing.assert_array_equal(sample["image"][i], vals[v].astype(np.float32))


def test_valid_range_of_a_variable_of_several_bands_and_times(tmp_path):
    """One (time, band, y, x) variable: its valid_range covers every band and time; stacked times need every time."""
    import rioxarray  # noqa: F401
    import xarray as xr

    rng = np.random.default_rng(1)
    data = rng.integers(0, 300, size=(2, 3, 16, 16)).astype(np.uint16)
    coords = {
        "time": np.array(["2024-01-01", "2024-02-01"], dtype="datetime64[ns]"),
        "band": ["a", "b", "c"],
        "y": 5_000_000.0 - (np.arange(16) + 0.5) * 10,
        "x": 300_000.0 + (np.arange(16) + 0.5) * 10,
    }
    da = xr.DataArray(data, dims=("time", "band", "y", "x"), coords=coords, name="dn").rio.write_crs("EPSG:32633")
    da.attrs["valid_range"] = np.array([10, 250], np.uint16)
    path = tmp_path / "timed.zarr"
    da.to_dataset().to_zarr(path, zarr_format=2)
    inside = ((data >= 10) & (data <= 250)).all(axis=1)  # [T, H, W]
    src = CubeSource(str(path), sensor=_sensor("abc"), tile_size=16, time_sampling="first")
    np.testing.assert_array_equal(src.read(0, 0, 0, 16, 16, 1)["valid"], inside[1])
    stack = CubeSource(str(path), sensor=_sensor("abc"), tile_size=16, time_sampling="stack")
    np.testing.assert_array_equal(stack.read(0, 0, 0, 16, 16, None)["valid"], inside.all(axis=0))


# a small store keeps the test fast; its few-pixels warning is expected (test_stats_edge asserts that warning)
@pytest.mark.filterwarnings("ignore:.*fewer than 1,000 valid pixels:UserWarning")
def test_data_stats_leave_out_values_outside_the_valid_range(tmp_path):
    from geodino.data.stats import compute_stats

    vals = _values(2)
    want = _expected(vals)
    sensor, prov = compute_stats(str(_store(tmp_path, vals)), type="cube", tile_size=8, progress=False)
    assert sensor.bands == ("a", "b", "c")
    assert prov["pixels"] == [int(want.sum())] * 3
    mean = [float(vals[v][want].astype(np.float64).mean()) / 1e4 for v in "abc"]  # int16: the dtype rule's / 10000
    assert list(sensor.mean) == pytest.approx(mean, abs=2e-6)


def test_unsigned_variables_have_their_valid_range_read_unsigned(tmp_path):
    """NetCDF3 int16 + _Unsigned: valid_range [0, 50000] is stored as int16 [0, -15536]; read signed it would be an
    empty range and mark every pixel invalid."""
    import xarray as xr

    raw = np.array([[100, 40000], [60000, 7]], np.uint16).view(np.int16)
    ds = xr.Dataset({"dn": (("y", "x"), raw)}, coords={"y": [1.5, 0.5], "x": [0.5, 1.5]})
    ds["dn"].attrs.update(_Unsigned="true", valid_range=np.array([0, 50000], np.uint16).view(np.int16))
    scene = open_cube(ds, require_crs=False, warn_unplaced=False)
    assert scene.valid_ranges == ((0.0, 50000.0),)


def test_a_store_without_range_attributes_declares_none(tmp_path):
    """No valid_range/valid_min/valid_max: the NUG default range of the explicit _FillValue -9999 (values below a
    non-positive fill are invalid, as netCDF4-python masks them); without a _FillValue either, no range at all."""
    vals = _values()
    path = _store(tmp_path, vals)
    import xarray as xr

    ds = xr.open_zarr(path, mask_and_scale=False)
    for v in "ab":
        for key in ("valid_range", "valid_min", "valid_max"):
            ds[v].attrs.pop(key, None)
    assert open_cube(ds, bands=["a", "b", "c"], require_crs=False).valid_ranges == ((-9999.0, float("inf")),) * 3
    for v in "abc":
        ds[v].attrs.pop("_FillValue")
    assert open_cube(ds, bands=["a", "b", "c"], require_crs=False).valid_ranges == ()


def test_a_malformed_range_attribute_is_no_bound(tmp_path):
    """A text valid_max (a writer's mistake) does not stop the store from opening; the other bound still applies."""
    import xarray as xr

    dn = np.array([[1, 5], [9, 3]], np.uint16)
    ds = xr.Dataset({"dn": (("y", "x"), dn)}, coords={"y": [1.5, 0.5], "x": [0.5, 1.5]})
    ds["dn"].attrs.update(valid_min=2, valid_max="n/a")
    scene = open_cube(ds, require_crs=False, warn_unplaced=False)
    assert scene.valid_ranges == ((2.0, float("inf")),)
