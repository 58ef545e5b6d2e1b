"""A torchgeo dataset's bands matched to the sensor by name (not truncated by position), a band-count mismatch of an
unnamed dataset refused, a source's `bands:` passed to a dataset that takes `bands=`, and no nodata unless
declared. Stand-in datasets: nothing is downloaded."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pytest
import shapely
import torch

from geodino.data.sensors import Sensor
from geodino.data.torchgeo_source import TorchGeoSource
from geodino.errors import InputError

S2_ALL = ("B01", "B02", "B03", "B04", "B05", "B06", "B07", "B08", "B8A", "B09", "B10", "B11", "B12")


class FakeDataset:
    """torchgeo-like GeoDataset: band i holds (i + 1) * 1000 DN everywhere (or 0 with `zeros`)."""

    res = (10.0, 10.0)
    crs = "EPSG:32633"

    def __init__(self, paths=None, bands=None, n: int = 13, zeros: bool = False) -> None:
        self.bands = tuple(bands) if bands is not None else (S2_ALL if n == 13 else ())
        self.n = len(self.bands) or n
        self.zeros = zeros
        self.index = gpd.GeoDataFrame(geometry=[shapely.box(0, 0, 2000, 2000)], crs=self.crs)

    def __getitem__(self, query):
        values = [
            0.0 if self.zeros else 1000.0 * (S2_ALL.index(b) + 1 if b in S2_ALL else i + 1)
            for i, b in enumerate(self.bands or [None] * self.n)
        ]
        return {"image": torch.stack([torch.full((32, 32), v) for v in values])}


def test_a_13_band_sentinel2_dataset_under_the_12_band_l2a_sensor_is_read_by_band_name():
    src = TorchGeoSource(FakeDataset(), sensor="sentinel2_l2a", tile_size=32)
    image = src.get(0, 0)["image"]
    dn = np.round(image[:, 0, 0] * 1e4).astype(int)
    want = [1000 * (S2_ALL.index(b) + 1) for b in src.sensor.bands]  # B11 gets B11's 12000, not B10's 11000
    assert src.sensor.bands[-2:] == ("B11", "B12")
    np.testing.assert_array_equal(dn, want)


def test_an_unnamed_dataset_of_another_band_count_is_refused_in_one_line():
    src = TorchGeoSource(FakeDataset(n=13, bands=()), sensor="sentinel2_l2a", tile_size=32)
    with pytest.raises(InputError) as err:
        src.get(0, 0)
    msg = str(err.value)
    assert "\n" not in msg and "13 bands" in msg and "has 12" in msg and "`bands:`" in msg


def test_the_sources_bands_go_to_a_dataset_that_takes_bands(monkeypatch):
    import geodino.data.torchgeo_source as tg
    from geodino.data.loaders import SourceConfig, build_source

    seen = {}

    class Picky(FakeDataset):
        def __init__(self, paths=None, bands=None) -> None:
            seen["bands"] = bands
            super().__init__(paths, bands=bands)

    monkeypatch.setattr(tg, "_dataset_class", lambda path: Picky)
    cfg = SourceConfig(type="torchgeo", dataset="x.Picky", paths=["."], sensor="sentinel2_l2a", tile_size=32)
    cfg.bands = ["red", "B08", "B11"]
    src = build_source(cfg)
    assert seen["bands"] == ["B04", "B08", "B11"]
    assert src.sensor.bands == ("B04", "B08", "B11")
    np.testing.assert_array_equal(np.round(src.get(0, 0)["image"][:, 0, 0] * 1e4).astype(int), [4000, 8000, 12000])


def test_all_zero_pixels_are_valid_unless_a_nodata_is_declared():
    plain = Sensor("plain", ("a", "b"), 1.0, (0.0, 0.0), (1.0, 1.0), False)  # declares no nodata
    src = TorchGeoSource(FakeDataset(n=2, bands=(), zeros=True), sensor=plain, tile_size=32, max_nodata_fraction=1)
    assert src.get(0, 0)["valid"].all()
    declared = TorchGeoSource(
        FakeDataset(n=2, bands=(), zeros=True), sensor=plain, tile_size=32, max_nodata_fraction=1, nodata=0
    )
    assert not declared.get(0, 0)["valid"].any()
