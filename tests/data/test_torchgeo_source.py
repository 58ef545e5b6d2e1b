"""A torchgeo GeoDataset as a source: deterministic tiles whose pixels equal the file's."""

from __future__ import annotations

import numpy as np
import rasterio
from rasterio.windows import from_bounds

from geodino.data.loaders import SourceConfig, build_source
from geodino.data.sensors import Sensor, save_sensor_yaml

from .conftest import ramp, write_tif


def test_torchgeo_dataset_source(tmp_path):
    p = write_tif(tmp_path / "a.tif", ramp(3, 80, 90), nodata=None)
    sensor = save_sensor_yaml(Sensor("s", ("a", "b", "c"), 0.5, (0, 0, 0), (1, 1, 1), False), tmp_path / "s.yaml")
    cfg = SourceConfig(
        type="torchgeo",
        dataset="torchgeo.datasets.RasterDataset",
        paths=[str(tmp_path / "a.tif")],
        sensor=str(sensor),
        tile_size=24,
    )
    src = build_source(cfg)
    with rasterio.open(p) as ref:
        for i in range(4):
            s = src.get(i, 0)
            t = s["transform"]
            win = from_bounds(t.c, t.f - 24 * t.a, t.c + 24 * t.a, t.f, ref.transform).round_offsets().round_lengths()
            np.testing.assert_allclose(s["image"], ref.read(window=win) * 0.5)
    assert np.array_equal(src.get(2, 5)["image"], src.get(2, 5)["image"])


def test_missing_dependency_of_torchgeo_is_named_not_reported_as_missing_class(monkeypatch):
    """A package torchgeo imports but does not declare (requests in 0.8) must be named, not 'class not found'."""
    import importlib

    import pytest

    from geodino.data.torchgeo_source import _dataset_class
    from geodino.errors import ConfigError

    def fail(name: str):
        raise ModuleNotFoundError("No module named 'requests'", name="requests")

    monkeypatch.setattr(importlib, "import_module", fail)
    with pytest.raises(ConfigError, match="needs the missing package 'requests': pip install requests"):
        _dataset_class("torchgeo.datasets.RasterDataset")

    def absent(name: str):
        raise ModuleNotFoundError(f"No module named '{name}'", name=name)

    monkeypatch.setattr(importlib, "import_module", absent)
    with pytest.raises(ConfigError, match=r"no module 'mypkg\.datasets'"):
        _dataset_class("mypkg.datasets.Thing")
