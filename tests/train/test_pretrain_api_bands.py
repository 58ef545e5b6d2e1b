"""`geodino.pretrain("cube.zarr", bands=...)`: a cube whose bands differ in number or order from the sensor's
needed a `data.sources` override with `data=None`; `bands=` now selects and orders the cube's (or rasters') bands by
name through the source's `bands:` key, and a name the cube lacks is one line naming the cube and its bands."""

from __future__ import annotations

import numpy as np
import pytest

import geodino
from geodino.config import load_config
from geodino.data.loaders import build_sources
from geodino.data.sensor_yaml import save_sensor_yaml
from geodino.data.sensors import Sensor
from geodino.errors import ConfigError, InputError
from geodino.train.pretrain import PretrainConfig
from tests.helpers import write_tif, write_zarr3

BANDS = ("B1", "B2", "B3", "B4")


def _cube(root) -> tuple[str, str]:
    """(store, sensor YAML): a uint16 4-band 32x32 cube with a CRS whose band k (B1..B4) holds 1000 * k + noise,
    and a 4-band sensor of those names (offset 0, scale 1e-4: band k reads as 0.1 * k)."""
    import rioxarray  # noqa: F401
    import xarray as xr

    rng = np.random.default_rng(0)
    data = np.stack([np.full((32, 32), 1000 * (k + 1)) + rng.integers(0, 50, (32, 32)) for k in range(4)])
    coords = {
        "band": list(BANDS),
        "y": 4650000.0 - (np.arange(32) + 0.5) * 10,
        "x": 500000.0 + (np.arange(32) + 0.5) * 10,
    }
    da = xr.DataArray(data.astype("uint16"), dims=("band", "y", "x"), coords=coords, name="dn")
    store = root / "cube.zarr"
    write_zarr3(da.rio.write_crs("EPSG:32633").to_dataset(), store)
    sensor = Sensor("s4", BANDS, 1e-4, (0.2,) * 4, (0.1,) * 4, True)
    return str(store), str(save_sensor_yaml(sensor, root / "s4.yaml"))


TINY = [
    "batch_size=2",
    "ssl.student.overrides.depth=1",
    "crops.n_local=1",
    "crops.global_size=16",
    "crops.local_size=8",
]


def test_bands_select_and_order_a_cubes_bands_end_to_end(tmp_path):
    store, sensor = _cube(tmp_path)
    out = geodino.pretrain(store, tmp_path / "run", steps=1, sensor=sensor, tile_size=16, bands="B4,B2,B1",
                           overrides=TINY)  # fmt: skip
    assert (out / "export" / "teacher.pth").is_file()
    data = load_config(PretrainConfig, out / "config.yaml").data
    assert data.sources[0].type == "cube" and data.sources[0].bands == ["B4", "B2", "B1"]
    (src,) = build_sources(data, progress=False)
    assert src.band_names == ["B4", "B2", "B1"] and list(src.sensor.bands) == ["B4", "B2", "B1"]
    s = src.get(0, 0)
    assert s["image"].shape == (3, 16, 16)
    for channel, k in enumerate((4, 2, 1)):  # band k holds 1000 k .. 1000 k + 49 DN, read as 0.1 k .. 0.1 k + 0.005
        assert np.all((s["image"][channel] >= 0.1 * k - 1e-6) & (s["image"][channel] <= 0.1 * k + 0.005)), k


def test_a_name_the_cube_lacks_is_one_line_naming_the_cube_and_its_bands(tmp_path):
    store, sensor = _cube(tmp_path)
    with pytest.raises(InputError, match=r"^datacube .*cube\.zarr has no band 'B9' \(its bands: B1, B2, B3, B4\)"):
        geodino.pretrain(store, tmp_path / "run", steps=1, sensor=sensor, tile_size=16, bands=["B4", "B9"],
                         overrides=TINY)  # fmt: skip


def test_distill_rasters_and_the_refusals(api_configs, tmp_path):
    store, sensor = _cube(tmp_path)
    geodino.distill("arch:vit_tiny", store, tmp_path / "d", sensor=sensor, bands=["B3", "B1"])
    assert api_configs[-1].data.sources[0].bands == ["B3", "B1"]
    rasters = tmp_path / "rasters"
    rasters.mkdir()
    write_tif(rasters / "a.tif", np.zeros((3, 32, 32), np.uint8))
    geodino.pretrain(rasters, tmp_path / "r", tile_size=16, bands="blue,red")
    assert api_configs[-1].data.sources[0].type == "raster" and api_configs[-1].data.sources[0].bands == ["blue", "red"]
    with pytest.raises(ConfigError, match=r"^bands=\[4, 3\] cannot be used: bands are band names here"):
        geodino.pretrain(store, tmp_path / "r", sensor=sensor, bands=[4, 3])
    chips = tmp_path / "chips"
    chips.mkdir()
    from PIL import Image

    Image.fromarray(np.zeros((16, 16, 3), np.uint8)).save(chips / "a.png")
    with pytest.raises(
        InputError, match=r"^bands=\['red'\] select bands of rasters and cubes; .*chips holds image chips"
    ):
        geodino.pretrain(chips, tmp_path / "r", bands="red")
    route = f"data.sources=[{{type: cube, paths: ['{store}']}}]"
    with pytest.raises(ConfigError, match=r"^bands='B1' selects the bands of `data`; .* write them in that source"):
        geodino.pretrain(None, tmp_path / "r", bands="B1", overrides=[route])
