"""`geodino data curate PATHS --flags` and `geodino data stats --type cube` printed a source's keys where the user
gave flags ('needs a sensor: set `sensor:`', 'use a smaller tile_size', 'fix `bands:`'); they name the flags now
(--sensor, --tile-size, --bands), as raster stats messages did. A curation from --config keeps the keys."""

from __future__ import annotations

import numpy as np
import pytest

from geodino import cli


@pytest.fixture
def cube(tmp_path) -> str:
    import rioxarray  # noqa: F401
    import xarray as xr

    coords = {"band": ["b1", "b2", "b3"], "y": 4500000 - 10 * np.arange(16) - 5.0, "x": 500000 + 10 * np.arange(16)}
    da = xr.DataArray(np.ones((3, 16, 16), "uint16"), dims=("band", "y", "x"), coords=coords, name="v")
    da.rio.write_crs("EPSG:32633").to_dataset().to_netcdf(tmp_path / "u.nc", engine="scipy")
    return str(tmp_path / "u.nc")


@pytest.fixture
def raster(tmp_path) -> str:
    import rasterio
    from rasterio.transform import from_origin

    path = tmp_path / "r.tif"
    profile = dict(driver="GTiff", height=32, width=32, count=4, dtype="uint16", crs="EPSG:32633")
    with rasterio.open(path, "w", transform=from_origin(500000, 4500000, 10, 10), **profile) as dst:
        dst.write(np.ones((4, 32, 32), "uint16"))
    return str(path)


def _err(capsys, argv: list[str]) -> str:
    assert cli.main(argv) == 2
    return capsys.readouterr().err


def test_curate_names_its_flags(capsys, tmp_path, cube, raster):
    base = ["data", "curate", "-b", "none", "--size", "1", "-o", str(tmp_path / "cur")]
    err = _err(capsys, [*base, cube, "--type", "cube"])
    assert "needs a sensor: set --sensor" in err and "`sensor:`" not in err
    err = _err(capsys, [*base, raster, "--type", "raster", "--sensor", "naip", "--tile-size", "64"])
    assert "use a smaller --tile-size" in err and "tile_size" not in err


def test_curate_from_a_config_keeps_the_keys(capsys, tmp_path, cube):
    cfg = tmp_path / "data.yaml"
    cfg.write_text(f"sources:\n  - type: cube\n    paths: [{cube}]\n")
    err = _err(capsys, ["data", "curate", "--config", str(cfg), "-b", "none", "--size", "1", "-o", str(tmp_path / "c")])
    assert "set `sensor:`" in err


def test_stats_of_a_cube_names_its_flags(capsys, tmp_path, cube):
    err = _err(capsys, ["data", "stats", "--type", "cube", cube, "--bands", "B9", "-o", str(tmp_path / "s.yaml")])
    assert "has no band 'B9'" in err and "fix --bands" in err and "`bands:`" not in err
