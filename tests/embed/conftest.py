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


def stac_item(item_id: str, assets: dict, eo: bool = True, date: str = "2024-06-01") -> dict:
    """A STAC 1.0 item dict with `assets`, dated `date`, without geometry; `eo`: it declares the eo extension."""
    item = {
        "type": "Feature",
        "stac_version": "1.0.0",
        "id": item_id,
        "geometry": None,
        "properties": {"datetime": f"{date}T00:00:00Z"},
        "links": [],
        "assets": assets,
    }
    if eo:
        item["stac_extensions"] = ["https://stac-extensions.github.io/eo/v1.1.0/schema.json"]
    return item


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
def feats(tmp_path: Path) -> Path:
    """An 8-D float32 feature raster (20 x 30 cells) of two regions (left and right halves, each one random vector
    plus noise of 0.05), with the record `geodino embed` writes: what the style tests map (test_style*.py)."""
    from tests.embed.test_products import feature_raster

    return feature_raster(tmp_path / "feat.tif", two_regions(0.05))


def two_regions(noise: float) -> np.ndarray:
    """[8, 20, 30] float32 features (seed 0): one random 8-D vector over the left 15 columns, another over the right
    15, plus Gaussian noise of std `noise`: two classes a clustering or a probe must tell apart."""
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=8), rng.normal(size=8)
    f = np.empty((8, 20, 30), np.float32)
    f[:, :, :15] = a[:, None, None]
    f[:, :, 15:] = b[:, None, None]
    f += rng.normal(scale=noise, size=f.shape)
    return f


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


_DAMAGE_OPTS = dict(tile=32, overlap=8, chunk=16, block_rows=16, progress=False)


@pytest.fixture(scope="module")
def written(tmp_path_factory) -> dict[str, Path]:
    """Feature rasters written by geodino (COG and Zarr, a tiny conv backbone), label points and zone polygons: what
    the tests of damaged feature rasters copy and break."""
    import geopandas as gpd
    from shapely.geometry import Point, box

    from geodino.embed import embed_raster

    root = tmp_path_factory.mktemp("damaged")
    src = write_tif(root / "in.tif", random_image(160, 96))
    bb = ConvBackbone(in_chans=3, dim=8, patch=4, n_convs=2)
    cog = embed_raster(src, bb, root / "feats.tif", **_DAMAGE_OPTS)
    store = embed_raster(src, bb, root / "feats.zarr", **_DAMAGE_OPTS)
    x0, y0 = 500000.0, 4000000.0
    pts = [Point(x0 + 40 * c + 20, y0 - 40 * r - 20) for c, r in ((2, 2), (3, 20), (20, 3), (21, 21))]
    gpd.GeoDataFrame({"cover": ["a", "a", "b", "b"]}, geometry=pts, crs="EPSG:32633").to_file(root / "labels.gpkg")
    zones = [box(x0, y0 - 400, x0 + 400, y0), box(x0 + 400, y0 - 1600, x0 + 960, y0 - 400)]  # the 2nd: to the corner
    gpd.GeoDataFrame({"id": [1, 2]}, geometry=zones, crs="EPSG:32633").to_file(root / "zones.gpkg")
    return {"src": src, "cog": cog, "zarr": store, "labels": root / "labels.gpkg", "zones": root / "zones.gpkg"}
