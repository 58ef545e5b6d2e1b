"""Canopy probe with validation rasters on the training ground: a validation raster whose footprint overlaps a
training raster's was trained on and scored on the same place without a word. Now one warning line names both
files and the overlapped share of the validation raster's footprint; rasters on other ground say nothing."""

from __future__ import annotations

import warnings

import numpy as np
import rasterio
from rasterio.crs import CRS
from rasterio.transform import from_origin

from geodino.eval import canopy
from geodino.eval.canopy import CanopyProbeConfig
from geodino.eval.scaling import InputScaling
from tests.eval.dense_backbone import tiny_backbone

UTM = CRS.from_epsg(32611)
X0, Y0 = 500000.0, 4100000.0


def _write(path, x0: float, size: int, bands: int, seed: int, res: float = 0.5) -> None:
    """A uint8 image (bands > 1) or a float32 CHM (bands 1) of size x size px at `res` m, top-left at (x0, Y0)."""
    rng = np.random.default_rng(seed)
    dtype = "float32" if bands == 1 else "uint8"
    data = rng.uniform(1, 20, (bands, size, size)) if bands == 1 else rng.integers(0, 255, (bands, size, size))
    with rasterio.open(
        path, "w", driver="GTiff", width=size, height=size, count=bands, dtype=dtype, crs=UTM,
        transform=from_origin(x0, Y0, res, res),
    ) as dst:  # fmt: skip
        dst.write(data.astype(dtype))


def _run(tmp_path, val_x0: float) -> list[str]:
    for name, x0, size, seed in (("train", X0, 32, 0), ("val", val_x0, 48, 1)):
        (tmp_path / name).mkdir()
        _write(tmp_path / name / "a.tif" if name == "train" else tmp_path / name / "b.tif", x0, size, 3, seed)
        _write(tmp_path / name / ("a_CHM.tif" if name == "train" else "b_CHM.tif"), x0, size, 1, seed + 5)
    cfg = CanopyProbeConfig(
        train_images=[str(tmp_path / "train" / "a.tif")], train_chms=[str(tmp_path / "train")],
        val_images=[str(tmp_path / "val" / "b.tif")], val_chms=[str(tmp_path / "val")],
        epochs=1, crop_size=16, stride=16, batch_size=8, block_size=6, block_border=1, progress=False,
    )  # fmt: skip
    backbone = tiny_backbone()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")  # the pairs as run_canopy reads them (training them is not needed here)
        canopy._read_pairs(backbone, cfg, None, None, InputScaling.of(cfg, backbone, "canopy"))
    return [str(w.message) for w in caught if "overlaps training raster" in str(w.message)]


def test_validation_raster_on_the_training_ground_warns_once_naming_both_and_the_share(tmp_path):
    # training 16 m square at X0; validation 24 m square from X0 + 8 m: 8 x 16 m of its 24 x 24 m = 22.2%
    found = _run(tmp_path, X0 + 8.0)
    assert len(found) == 1 and "\n" not in found[0]
    assert str(tmp_path / "val" / "b.tif") in found[0] and str(tmp_path / "train" / "a.tif") in found[0]
    assert "22.2%" in found[0]


def test_validation_raster_on_other_ground_says_nothing(tmp_path):
    assert _run(tmp_path, X0 + 100.0) == []  # 100 m east: the footprints touch nowhere


def test_footprints_in_other_crss_are_compared_in_the_validation_rasters():
    import torch
    from rasterio.transform import from_bounds
    from rasterio.warp import transform_bounds

    from geodino.eval.chm import warn_shared_ground

    train = {"image": torch.zeros(3, 32, 32), "crs": UTM, "transform": from_origin(X0, Y0, 0.5, 0.5), "path": "a"}
    lon0, lat0, lon1, lat1 = transform_bounds(UTM, "EPSG:4326", X0, Y0 - 16, X0 + 16, Y0)  # the same 16 m square
    geo = CRS.from_epsg(4326)
    val = {
        "image": torch.zeros(3, 8, 8),
        "crs": geo,
        "transform": from_bounds(lon0, lat0, lon1, lat1, 8, 8),
        "path": "b",
    }
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        found = warn_shared_ground([train], [val])
    assert len(found) == 1 and found[0][2] > 0.9 and len(caught) == 1
    far = dict(train, transform=from_origin(X0 + 1000, Y0, 0.5, 0.5))
    assert warn_shared_ground([far], [val]) == []
