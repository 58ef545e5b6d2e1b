"""`data preview` of a multispectral source whose sensor names no RGB bands (a `data stats` YAML of a Landsat scene
without band descriptions: b1..b6, b1 blue) drew bands b1, b2, b3 as red, green, blue without a word, blue
showing as red. It now says so in one warning and in the figure title, as `viz attention` does; a sensor with
`rgb_bands:` draws those, silently."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import rasterio
import yaml
from rasterio.transform import from_origin

from geodino.data.config import DataConfig, SourceConfig
from geodino.data.preview import write_preview


def _scene_and_sensor(tmp_path, rgb_bands=None):
    tif = tmp_path / "scene.tif"
    data = np.random.default_rng(0).integers(1, 255, (4, 64, 64), dtype=np.uint8)
    profile = {"driver": "GTiff", "width": 64, "height": 64, "count": 4, "dtype": "uint8", "crs": "EPSG:32633"}
    profile["photometric"] = "MINISBLACK"  # else GDAL marks band 4 of a uint8 file as alpha
    with rasterio.open(tif, "w", transform=from_origin(500000, 4500000, 30, 30), **profile) as dst:
        dst.write(data)
    record = {"name": "l7", "bands": ["b1", "b2", "b3", "b4"], "scale": 1 / 255, "offset": 0.0}
    record |= {"mean": [0.5] * 4, "std": [0.2] * 4, "rgb_like": False}
    if rgb_bands:
        record["rgb_bands"] = rgb_bands
    sensor = tmp_path / f"l7{len(rgb_bands or [])}.yaml"
    sensor.write_text(yaml.safe_dump(record))
    return DataConfig(sources=[SourceConfig(type="raster", paths=[str(tif)], sensor=str(sensor), tile_size=64)])


def test_the_preview_says_which_bands_it_draws_as_rgb(tmp_path):
    cfg = _scene_and_sensor(tmp_path)
    with pytest.warns(UserWarning, match=r"names no RGB bands, so the preview shows bands b1, b2, b3 as red, green"):
        out = write_preview(cfg, tmp_path / "p.png", samples=1)
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    named = _scene_and_sensor(tmp_path, rgb_bands=["b3", "b2", "b1"])
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        write_preview(named, tmp_path / "q.png", samples=1)
    assert not [w for w in seen if "RGB bands" in str(w.message)], [str(w.message) for w in seen]
