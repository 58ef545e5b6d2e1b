"""Fixtures for the feature-raster tests: tiny GeoTIFFs written in tmp_path, toy backbones."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).parent))

from tests import helpers
from tests.embed.toy_backbones import ConstantBackbone, ConvBackbone


def write_tif(
    path: Path,
    data: np.ndarray,
    *,
    crs: str | None = "EPSG:32633",
    transform=None,
    nodata=None,
) -> Path:
    from rasterio.transform import from_origin

    transform = transform or from_origin(500000.0, 4000000.0, 10.0, 10.0)
    return helpers.write_tif(path, data, crs=crs, transform=transform, nodata=nodata, block=64)


def random_image(h: int, w: int, c: int = 3, seed: int = 0, dtype: str = "uint8") -> np.ndarray:
    rng = np.random.default_rng(seed)
    # smooth-ish structure so features vary spatially, plus noise
    yy, xx = np.mgrid[0:h, 0:w]
    base = np.stack([np.sin(xx / (7 + k) + yy / (11 + k)) for k in range(c)])
    img = 0.5 + 0.3 * base + 0.2 * rng.random((c, h, w))
    if dtype == "uint8":
        return (np.clip(img, 0, 1) * 255).astype(np.uint8)
    if dtype == "uint16":
        return (np.clip(img, 0, 1) * 10000).astype(np.uint16)
    return img.astype(dtype)


@pytest.fixture
def conv_bb() -> ConvBackbone:
    return ConvBackbone(in_chans=3, dim=8, patch=4, n_convs=2)


@pytest.fixture
def const_bb() -> ConstantBackbone:
    return ConstantBackbone(in_chans=3, dim=4, patch=8)


@pytest.fixture
def rgb_tif(tmp_path: Path) -> Path:
    return write_tif(tmp_path / "rgb.tif", random_image(120, 152))


def whole_image_features(bb, data: np.ndarray, scale: float = 1 / 255) -> np.ndarray:
    import torch

    x = torch.from_numpy(data[None].astype(np.float32) * np.float32(scale))
    with torch.no_grad():
        return bb.features(bb.normalize(x))[0][0][0].numpy()


def read_all(path: Path):
    import rasterio

    with rasterio.open(path) as src:
        return src.read(), src.crs, src.transform, src.descriptions, src.tags(), src.nodata
