"""`geodino data stats --type cube` on a store declaring CF scale_factor/add_offset adopts the declared rule when
neither --scale nor --sensor says otherwise, as it does for a GeoTIFF's GDAL scale/offset tags: the YAML records the
rule and its mean/std are those of DN * scale_factor + add_offset (checked against numpy over the valid pixels).
Before, the run stopped and named the flags (--scale X --offset Y)."""

from __future__ import annotations

import numpy as np
import pytest
import yaml

from geodino.errors import InputError

# small stores keep these fast; their few-pixels warning is expected (test_stats_edge asserts that warning)
pytestmark = pytest.mark.filterwarnings("ignore:.*fewer than 1,000 valid pixels:UserWarning")

BANDS = ["B02", "B03", "B04"]


def _store(path, data: np.ndarray, attrs: dict) -> str:
    """One (time, band, y, x) uint16 variable with CF `attrs`, on a north-up 10 m UTM grid."""
    import rioxarray  # noqa: F401
    import xarray as xr

    t, _, h, w = data.shape
    coords = {
        "time": np.array(["2024-01-01", "2024-02-01"][:t], dtype="datetime64[ns]"),
        "band": BANDS,
        "y": 4200000.0 - 10.0 * (np.arange(h) + 0.5),
        "x": 500000.0 + 10.0 * (np.arange(w) + 0.5),
    }
    da = xr.DataArray(data, dims=("time", "band", "y", "x"), coords=coords, name="refl", attrs=dict(attrs))
    da.rio.write_crs("EPSG:32633").to_dataset().to_zarr(path, zarr_format=2)
    return str(path)


def _per_band_store(path, data: np.ndarray, scales: list[float], offset: float) -> str:
    """One (y, x) variable per band, each with its own scale_factor (a per-band rule)."""
    import rioxarray  # noqa: F401
    import xarray as xr

    h, w = data.shape[1:]
    coords = {"y": 4200000.0 - 10.0 * (np.arange(h) + 0.5), "x": 500000.0 + 10.0 * (np.arange(w) + 0.5)}
    ds = xr.Dataset(
        {
            b: xr.DataArray(data[i], dims=("y", "x"), coords=coords, attrs={"scale_factor": s, "add_offset": offset})
            for i, (b, s) in enumerate(zip(BANDS, scales, strict=True))
        }
    )
    ds.rio.write_crs("EPSG:32633").to_zarr(path, zarr_format=2)
    return str(path)


def _data(t: int = 2, h: int = 12, w: int = 16) -> np.ndarray:
    data = np.random.default_rng(3).integers(1000, 9000, (t, len(BANDS), h, w)).astype("uint16")
    data[:, :, :3, :4] = 0  # a nodata corner (the store's _FillValue)
    return data


def _numpy_stats(data: np.ndarray, scales, offsets) -> tuple[np.ndarray, np.ndarray]:
    """Independent per-band mean/std of DN * scale + offset over the pixels that are not 0."""
    x = np.moveaxis(data, 1, 0).reshape(data.shape[1], -1)
    phys = [b[b != 0].astype(np.float64) * s + o for b, s, o in zip(x, scales, offsets, strict=True)]
    return np.array([p.mean() for p in phys]), np.array([p.std(ddof=1) for p in phys])


def test_cli_adopts_a_cubes_cf_rule_and_prints_it(tmp_path, capsys):
    from geodino import cli

    data = _data()
    store = _store(tmp_path / "l2a.zarr", data, {"scale_factor": 1e-4, "add_offset": -0.1, "_FillValue": 0})
    out = tmp_path / "s.yaml"
    assert cli.main(["data", "stats", "--type", "cube", store, "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    got = yaml.safe_load(out.read_text())
    assert got["scale"] == pytest.approx(1e-4) and got["offset"] == pytest.approx(-0.1)
    assert "scale: 0.0001" in printed and "offset: -0.1" in printed  # the printed YAML says which rule was used
    mean, std = _numpy_stats(data, [1e-4] * 3, [-0.1] * 3)
    np.testing.assert_allclose(got["mean"], mean, atol=2e-6)
    np.testing.assert_allclose(got["std"], std, rtol=1e-3)
    assert got["nodata"] == 0


def test_a_per_band_cf_rule_is_adopted_per_band(tmp_path):
    """A store of one variable per band, each with its own scale_factor, read as --bands B04 B02 B03: the rule is
    adopted per band in that order. Before, the first store was opened without --bands (its first variable, one
    band 'b1'), so the statistics' sensor had 1 band and the 3-band source was refused."""
    from geodino.data.stats import compute_stats

    data = _data(t=1)[0]
    scales = [1e-4, 2e-4, 3e-4]
    store = _per_band_store(tmp_path / "pb.zarr", data, scales, -0.1)
    order = [2, 0, 1]
    sensor, _ = compute_stats(
        store, type="cube", bands=[BANDS[i] for i in order], nodata=0, tile_size=16, progress=False
    )
    assert list(sensor.bands) == [BANDS[i] for i in order]
    assert sensor.scale == pytest.approx(tuple(scales[i] for i in order))
    assert sensor.offset == pytest.approx(-0.1)
    mean, std = _numpy_stats(data[order][None], [scales[i] for i in order], [-0.1] * 3)
    np.testing.assert_allclose(sensor.mean, mean, atol=2e-6)
    np.testing.assert_allclose(sensor.std, std, rtol=1e-3)


def test_an_explicit_scale_still_decides_and_a_mismatch_is_refused(tmp_path):
    """--scale given: the declared rule is not adopted, and a store declaring another is refused (as rasters)."""
    from geodino.data.stats import compute_stats

    store = _store(tmp_path / "l2a.zarr", _data(), {"scale_factor": 1e-4, "add_offset": -0.1, "_FillValue": 0})
    with pytest.raises(InputError, match=r"declares physical value = .*--scale 0\.0001 --offset -0\.1"):
        compute_stats(store, type="cube", scale=1e-4, offset=0.0, progress=False)
    sensor, _ = compute_stats(store, type="cube", scale=1e-4, offset=-0.1, progress=False)
    assert sensor.scale == pytest.approx(1e-4) and sensor.offset == pytest.approx(-0.1)


def test_a_second_store_declaring_another_rule_is_refused(tmp_path):
    from geodino.data.stats import compute_stats

    a = _store(tmp_path / "a.zarr", _data(), {"scale_factor": 1e-4, "add_offset": -0.1, "_FillValue": 0})
    b = _store(tmp_path / "b.zarr", _data(), {"scale_factor": 1e-4, "add_offset": 0.0, "_FillValue": 0})
    with pytest.raises(InputError, match=r"b\.zarr declares physical value"):
        compute_stats([a, b], type="cube", progress=False)


def test_a_store_without_a_rule_keeps_the_dtype_default(tmp_path):
    from geodino.data.stats import compute_stats

    store = _store(tmp_path / "dn.zarr", _data(), {"_FillValue": 0})
    sensor, _ = compute_stats(store, type="cube", progress=False)
    assert sensor.scale == 1e-4 and sensor.offset == 0.0  # the dtype rule: uint16 / 10000 (test_stats_dtype_scale)


def test_a_store_of_one_variable_per_band_gives_every_band_without_bands(tmp_path):
    """Without --bands (or --sensor) a store of one variable per band was read as its first variable alone, one band
    'b1', silently; every variable is now a band, by name, with its own CF rule."""
    from geodino.data.stats import compute_stats

    data = _data(t=1)[0]
    scales = [1e-4, 2e-4, 3e-4]
    store = _per_band_store(tmp_path / "pb.zarr", data, scales, -0.1)
    sensor, _ = compute_stats(store, type="cube", nodata=0, tile_size=16, progress=False)
    assert list(sensor.bands) == BANDS
    assert sensor.scale == pytest.approx(tuple(scales))
    mean, _ = _numpy_stats(data[None], scales, [-0.1] * 3)
    np.testing.assert_allclose(sensor.mean, mean, atol=2e-6)
