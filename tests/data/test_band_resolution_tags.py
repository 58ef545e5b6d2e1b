"""Band names with a Sentinel-2 SAFE resolution tag (B04_10m, B8A_20m: what `data stack` and SAFE tooling name the
bands) are the sensor's bands, as QA names were already (`qa_kind`: SCL_20m). Before, a raster with descriptions
B02_10m..B08_10m under sentinel2_l2a was refused ('rasters give 4 bands ... but sensor has 12') and `bands: [B04]`
found no band; a cube of variables B02_10m.. was 'not the bands of sensor sentinel2_l2a'."""

from __future__ import annotations

import numpy as np
import pytest

NAMES = ["B02_10m", "B03_10m", "B04_10m", "B08_10m"]


def _data() -> np.ndarray:
    return np.stack([np.full((32, 32), 1000 * (i + 1), "uint16") for i in range(4)])  # 0.1 .. 0.4 reflectance


def test_resolve_band_strips_a_tag_only_when_needed():
    from geodino.data.sensors import Sensor, get_sensor
    from geodino.errors import InputError

    s2 = get_sensor("sentinel2_l2a")
    assert [s2.resolve_band(n) for n in ("B04_10m", "B8A_20m", "b8a_20M", "B8_10m", "red_10m")] == [
        "B04",
        "B8A",
        "B8A",
        "B08",
        "B04",
    ]
    assert s2.resolve_band("SCL_20m", strict=False) is None  # not a band of the sensor, tag or not
    assert s2.resolve_band("B04_10m", strict=False, tags=False) is None
    own = Sensor("own", ("B04", "B04_10m"), 1.0, (0.0, 0.0), (1.0, 1.0), False)
    assert own.resolve_band("B04_10m") == "B04_10m"  # a name known as written is never stripped
    with pytest.raises(InputError, match=r"^band 'B13_10m' is not a band of sensor 'sentinel2_l2a'"):
        s2.resolve_band("B13_10m")


def test_a_raster_of_tagged_descriptions(tmp_path):
    import rasterio
    from rasterio.transform import from_origin

    from geodino.data.archive import RasterArchive

    path = tmp_path / "r.tif"
    profile = dict(driver="GTiff", height=32, width=32, count=4, dtype="uint16", crs="EPSG:32633")
    with rasterio.open(path, "w", transform=from_origin(500000, 4500000, 10, 10), **profile) as dst:
        dst.write(_data())
        for i, n in enumerate(NAMES, start=1):
            dst.set_band_description(i, n)
    whole = RasterArchive([str(path)], sensor="sentinel2_l2a")
    assert whole.band_names == ("B02", "B03", "B04", "B08") and whole.sensor.bands == whole.band_names
    picked = RasterArchive([str(path)], sensor="sentinel2_l2a", bands=["B08", "red"])
    assert picked.band_names == ("B08", "B04") and picked.scenes[0].band_indexes == (4, 3)


def test_a_cube_of_tagged_variables(tmp_path):
    import rioxarray  # noqa: F401
    import xarray as xr

    from geodino.data.cubes import CubeSource

    coords = {"y": 4500000 - 10 * np.arange(32) - 5.0, "x": 500000 + 10 * np.arange(32) + 5.0}
    data = _data()
    ds = xr.Dataset({n: (("y", "x"), data[i]) for i, n in enumerate(NAMES)}, coords=coords)
    ds.rio.write_crs("EPSG:32633").to_netcdf(tmp_path / "v.nc", engine="scipy")
    whole = CubeSource([str(tmp_path / "v.nc")], sensor="sentinel2_l2a", tile_size=32)
    assert whole.band_names == ["B02", "B03", "B04", "B08"]
    assert np.allclose(whole.read(0, 0, 0, 32, 32, None)["image"].mean((1, 2)), [0.1, 0.2, 0.3, 0.4], atol=1e-6)
    picked = CubeSource([str(tmp_path / "v.nc")], sensor="sentinel2_l2a", tile_size=32, bands=["B08", "B04"])
    assert np.allclose(picked.read(0, 0, 0, 32, 32, None)["image"].mean((1, 2)), [0.4, 0.3], atol=1e-6)


def test_a_cube_band_coordinate_of_tagged_names(tmp_path):
    from geodino.data.cubes import CubeSource
    from tests.data.conftest import band_cube

    band_cube(_data(), ["B02_10m", "B03_10m", "B04_10m", "B8A_20m"]).to_netcdf(tmp_path / "c.nc", engine="scipy")
    picked = CubeSource([str(tmp_path / "c.nc")], sensor="sentinel2_l2a", tile_size=32, bands=["nir08", "red"])
    assert picked.sensor.bands == ("B8A", "B04")
    assert np.allclose(picked.read(0, 0, 0, 32, 32, None)["image"].mean((1, 2)), [0.4, 0.3], atol=1e-6)
