"""`geodino embed` on a datacube with a time dimension: the `time` option (an index, or a date label) chooses the
date, reached by the CLI's `key=value` overrides; the date is recorded in the feature raster (input_time); without
`time` the refusal names the option and the Python way."""

from __future__ import annotations

import numpy as np
import pytest
import rasterio

from geodino import cli
from geodino.embed import embed_raster
from geodino.errors import ConfigError, InputError
from tests.embed.toy_backbones import ConvBackbone
from tests.test_bad_inputs import one_line_exit_2

SPEC = "arch:vit_tiny?depth=1&seed=0&patch_size=8"


def _cube(path):
    """3 dates x 3 bands x 32 x 32 float32, date k holding distinct values, EPSG:32633."""
    import rioxarray  # noqa: F401
    import xarray as xr

    rng = np.random.default_rng(0)
    data = np.stack([rng.random((3, 32, 32)).astype("float32") * (k + 1) for k in range(3)])
    coords = {"time": np.array(["2024-01-01", "2024-02-01T10:32:11", "2024-03-01"], dtype="datetime64[ns]"),
              "band": ["B1", "B2", "B3"], "y": 4650000.0 - 10 * (np.arange(32) + 0.5),
              "x": 500000.0 + 10 * (np.arange(32) + 0.5)}  # fmt: skip
    da = xr.DataArray(data, dims=("time", "band", "y", "x"), coords=coords, name="reflectance")
    da = da.rio.write_crs("EPSG:32633")
    da.to_dataset().to_zarr(path, zarr_format=2)
    return str(path), da


def _features(path):
    with rasterio.open(path) as ds:
        return ds.read(), ds.tags()


def test_time_option_through_the_cli_embeds_that_date_and_records_it(tmp_path):
    store, da = _cube(tmp_path / "ts.zarr")
    outs = {}
    for item, label in (("time=1", "2024-02-01T10:32:11"), ("time=2024-02", "2024-02-01T10:32:11"),
                        ("time=-1", "2024-03-01")):  # fmt: skip
        out = tmp_path / f"f{len(outs)}.tif"
        args = ["embed", store, "-b", SPEC, "--out", str(out), "--tile", "32", "--overlap", "0", "--no-progress", item]
        assert cli.main(args) == 0
        outs[item], tags = _features(out)
        assert tags["GEODINO_INPUT_TIME"] == label
    np.testing.assert_array_equal(outs["time=1"], outs["time=2024-02"])
    assert not np.allclose(outs["time=1"], outs["time=-1"])
    py = tmp_path / "py.tif"  # the same as Python's selection of that date
    embed_raster(da.isel(time=1), SPEC, py, tile=32, overlap=0, progress=False)
    np.testing.assert_allclose(_features(py)[0], outs["time=1"], rtol=1e-5, atol=1e-6)


def test_a_time_cube_without_the_option_is_refused_naming_it(capsys, tmp_path):
    store, _ = _cube(tmp_path / "ts.zarr")
    one_line_exit_2(capsys, tmp_path, "embed", store, "-b", SPEC, "--out", tmp_path / "f.tif",
                    expect=("has a time dimension 'time' of 3 dates (2024-01-01, 2024-02-01T10:32:11, 2024-03-01)",
                            "the option time: an index (time=0", "time=0`", ".isel(time=0)"))  # fmt: skip


@pytest.mark.parametrize(
    ("time", "said"),
    [(3, "time=3 is out of range for cube"), ("2024-0", "time='2024-0' matches 3 dates"),
     ("2023", "time='2023' matches no date")],
)  # fmt: skip
def test_bad_time_values_are_one_line(tmp_path, time, said):
    store, _ = _cube(tmp_path / "ts.zarr")
    with pytest.raises(InputError, match=said):
        embed_raster(store, ConvBackbone(), tmp_path / "f.tif", tile=32, overlap=0, time=time, progress=False)
    with pytest.raises(ConfigError, match=r"time=True must be a date index"):
        embed_raster(store, ConvBackbone(), tmp_path / "f.tif", time=True)


def test_time_on_a_cube_or_raster_without_dates_is_refused(tmp_path):
    from tests.embed.conftest import write_tif

    tif = write_tif(tmp_path / "r.tif", np.ones((3, 32, 32), "float32"))
    with pytest.raises(InputError, match=r"time=0 chooses a date of a datacube .* is a raster \(one date\): drop time"):
        embed_raster(tif, ConvBackbone(), tmp_path / "f.tif", time=0, progress=False)
    _, da = _cube(tmp_path / "ts.zarr")
    with pytest.raises(InputError, match=r"has no time dimension .*drop time"):
        embed_raster(da.isel(time=0), ConvBackbone(), tmp_path / "g.tif", time=0, progress=False)


def test_the_time_flag_equals_the_override(tmp_path):
    """`--time 1` is the date index 1 and `--time -1` the last date (whole numbers are indices, as `time=1` in YAML),
    `--time 2024-02` a date label; each writes what the `time=` override writes."""
    store, _ = _cube(tmp_path / "ts.zarr")
    base = ["embed", store, "-b", SPEC, "--tile", "32", "--overlap", "0", "--no-progress"]
    for flag, item in (("1", "time=1"), ("-1", "time=-1"), ("2024-02", "time=2024-02")):
        a, b = tmp_path / f"flag{flag}.tif", tmp_path / f"item{flag}.tif"
        assert cli.main([*base, "--out", str(a), "--time", flag]) == 0
        assert cli.main([*base, "--out", str(b), item]) == 0
        (fa, ta), (fb, tb) = _features(a), _features(b)
        np.testing.assert_array_equal(fa, fb)
        assert ta["GEODINO_INPUT_TIME"] == tb["GEODINO_INPUT_TIME"]
