"""EuroSAT's default 13 bands come in the Sentinel-2 order of the sentinel2_l1c sensor, whatever torchgeo's order.

torchgeo 0.7+ names the EuroSAT files' bands B01..B12 with B8A last (torchgeo#2480); the adapter labelled its
default bands with that order while declaring the sentinel2_l1c sensor (B8A 9th), and the probe matches channels
by count only, so a 13-band backbone read B09 as B8A, B10 as B09, ... B8A as B12.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import rasterio
from rasterio.transform import from_origin

from geodino.data.sensors import get_sensor
from geodino.eval.datasets import DatasetConfig, build_dataset

pytest.importorskip("torchgeo")


GRID = from_origin(500000, 4000000, 10, 10)  # georeferenced as EuroSAT's GeoTIFFs are (rasterio warns without)


def _eurosat_with_band_ids(root: Path) -> None:
    """torchgeo's EuroSAT layout whose file band k (1-based) holds the value 100 * k everywhere."""
    base = root / "ds/images/remote_sensing/otherDatasets/sentinel_2/tif"
    arr = (100 * np.arange(1, 14, dtype=np.uint16))[:, None, None] * np.ones((13, 8, 8), np.uint16)
    splits: dict[str, list[str]] = {"train": [], "val": [], "test": []}
    for c in ("Forest", "River"):
        for i, split in enumerate(splits):
            name = f"{c}_{i + 1}"
            (base / c).mkdir(parents=True, exist_ok=True)
            with rasterio.open(base / c / f"{name}.tif", "w", driver="GTiff", width=8, height=8, count=13,
                               dtype="uint16", crs="EPSG:32633", transform=GRID) as dst:  # fmt: skip
                dst.write(arr)
            splits[split].append(name + ".jpg")
    for s, names in splits.items():
        (root / f"eurosat-{s}.txt").write_text("\n".join(names) + "\n")


def test_default_eurosat_bands_follow_the_sentinel2_l1c_order(tmp_path):
    from torchgeo.datasets import EuroSAT

    _eurosat_with_band_ids(tmp_path)
    ds = build_dataset(DatasetConfig(name="eurosat", root=str(tmp_path)), "train")
    assert ds.bands == list(get_sensor("sentinel2_l1c").bands)
    assert ds.sensor == "sentinel2_l1c"
    img = ds[0]["image"]
    file_band = {name: k + 1 for k, name in enumerate(EuroSAT.all_band_names)}  # torchgeo's name -> file band
    for ch, name in enumerate(ds.bands):  # each channel holds the file band torchgeo names as that band
        assert float(img[ch, 0, 0]) == pytest.approx(100 * file_band[name] * 1e-4)
