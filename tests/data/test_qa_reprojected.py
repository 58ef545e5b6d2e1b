"""The qa cloud rule on reprojected scenes: Sentinel-2 QA60 and Landsat Collection 2 QA_PIXEL bits, in a GeoTIFF
in UTM 33N curated on another grid (UTM 32N, Web Mercator, a coarser resolution), against an independent numpy
decode of the published bit meanings:

- QA60 (ESA, Sentinel-2 L1C): bit 10 opaque cloud, bit 11 cirrus.
- QA_PIXEL (USGS, Landsat Collection 2): bit 0 fill, 1 dilated cloud, 2 cirrus, 3 cloud, 4 cloud shadow, 5 snow,
  6 clear, 7 water; the rule counts bits 1-3 (cloud), not shadow, snow, water or fill.

A QA band among the bands a source reads (a sensor YAML naming QA60) was resampled with the image (bilinear):
codes that are not in the file and cloud bits set or cleared at random; it is now read apart with nearest."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import rasterio
from affine import Affine
from rasterio.warp import Resampling, reproject

from geodino import cli
from geodino.data.config import SourceConfig
from geodino.data.curate.clouds import cloud_rule
from geodino.data.curate.tiles import Tiles

H, W = 64, 96
# QA bands read as model bands are these tests' input; that warning is test_qa_band_as_model_input's subject
pytestmark = pytest.mark.filterwarnings("ignore:band .* is a QA band:UserWarning")

SRC = {"crs": "EPSG:32633", "transform": Affine(10, 0, 499000, 0, -10, 4650000)}
QA60 = [0, 1 << 10, 1 << 11, 3 << 10, 1 << 5, 1 << 9, 1 << 12]
QA_PIXEL = [21824, 21762, 22280, 23888, 55052, 1, 21952, 1 << 1, 1 << 2, 1 << 3, 1 << 4, 1 << 5, 1 << 6, 1 << 7]


def _cloud(kind: str, raw: np.ndarray) -> np.ndarray:
    """The published bit meanings, written out bit by bit."""
    bit = {k: (raw.astype(np.int64) & (1 << k)) != 0 for k in range(16)}
    if kind == "qa60":
        return bit[10] | bit[11]  # opaque, cirrus
    return bit[1] | bit[2] | bit[3]  # dilated cloud, cirrus, cloud (not 4 shadow, 5 snow, 7 water, 0 fill)


def _scene(path: Path, qa_name: str, pool: list[int], nodata: int | None, seed: int = 0) -> np.ndarray:
    """B02 B03 B04 B08 and a QA band of codes drawn per pixel from `pool`; B02 is the pixel's number + 1, so a
    window's QA can be checked against the image read on the same grid."""
    rng = np.random.default_rng(seed)
    data = np.zeros((5, H, W), np.uint16)
    data[0] = np.arange(1, H * W + 1).reshape(H, W)
    data[1:4] = rng.integers(300, 2000, (3, H, W))
    data[4] = rng.choice(pool, (H, W))
    profile = dict(driver="GTiff", width=W, height=H, count=5, dtype="uint16", nodata=nodata, **SRC)
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(data)
        dst.descriptions = ("B02", "B03", "B04", "B08", qa_name)
    return data


def _nearest(band: np.ndarray, scene, crs: str) -> np.ndarray:
    """`band` warped onto the scene's target grid with nearest, without nodata (a value of 0 is a code)."""
    out = np.zeros((scene.height, scene.width), band.dtype)
    reproject(band, out, src_transform=SRC["transform"], src_crs=SRC["crs"], dst_transform=scene.affine,
              dst_crs=crs, resampling=Resampling.nearest)  # fmt: skip
    return out


@pytest.mark.parametrize(
    ("qa_name", "pool", "nodata", "crs", "res"),
    [
        ("QA60", QA60, 0, "EPSG:32632", 10.0),
        ("QA60", QA60, None, "EPSG:3857", 7.0),
        ("QA_PIXEL", QA_PIXEL, 1, "EPSG:32632", 10.0),
        ("QA_PIXEL", QA_PIXEL, None, "EPSG:32633", 20.0),
    ],
)
def test_qa_band_on_a_reprojected_scene_matches_an_independent_decode(tmp_path, qa_name, pool, nodata, crs, res):
    path = tmp_path / "scene.tif"
    data = _scene(path, qa_name, pool, nodata)
    cfg = SourceConfig(name="s", type="raster", paths=[str(path)], sensor="sentinel2_l2a",
                       bands=["B02", "B03", "B04", "B08"], tile_size=32, crs=crs, res=res,
                       resampling="nearest")  # fmt: skip
    tiles = Tiles([cfg], qa_band=qa_name)
    (qa,) = tiles.qa_bands
    assert qa is not None and qa.kind == qa_name.lower()
    rule = cloud_rule(tiles.sensor, "auto", qa_band=(qa.name, qa.kind))
    scene = tiles.sources[0].archive.scenes[0]
    ref = _nearest(data[4], scene, crs)
    code_of = np.concatenate([[0], data[4].ravel()])  # pixel number + 1 -> its QA code
    checked = 0
    for k in range(len(tiles)):
        _, col, row, w, h = tiles.sources[0].tiles.grid_tile(k)
        image, valid = tiles.read(k)[:2]
        got = tiles.read_qa(k)
        number = np.rint(image[0] / tiles.sensor.scale[0] if isinstance(tiles.sensor.scale, tuple) else image[0] /
                         tiles.sensor.scale).astype(np.int64)  # fmt: skip
        np.testing.assert_array_equal(got[valid], code_of[number[valid]])  # same pixel as the image's
        np.testing.assert_array_equal(got[valid], ref[row : row + h, col : col + w][valid])
        want = _cloud(qa.kind, got)
        np.testing.assert_array_equal(rule.mask(image, got)[valid], want[valid])
        assert rule.share(image, valid, got) == pytest.approx((want & valid).sum() / max(valid.sum(), 1))
        checked += int(valid.sum())
    assert checked > 0.7 * H * W * (10 / res) ** 2  # most of the scene was compared


def _sensor_yaml(path: Path, qa_name: str) -> Path:
    from geodino.data.sensors import Sensor, save_sensor_yaml

    bands = ("B02", "B03", "B04", "B08", qa_name)
    return save_sensor_yaml(Sensor("s2qa", bands, 1e-4, (0.1,) * 5, (0.1,) * 5, False, nodata=0), path)


@pytest.mark.parametrize(("qa_name", "pool"), [("QA60", QA60), ("QA_PIXEL", QA_PIXEL)])
def test_a_qa_band_read_as_a_model_band_is_decoded_from_nearest_values(tmp_path, qa_name, pool):
    """Without --qa-band: the sensor names the QA band, the scene is reprojected with bilinear resampling."""
    path = tmp_path / "scene.tif"
    data = _scene(path, qa_name, pool, nodata=None)
    sensor = _sensor_yaml(tmp_path / "s2qa.yaml", qa_name)
    for crs, res in (("EPSG:32632", 10.0), ("EPSG:32633", 15.0)):
        cfg = SourceConfig(name="s", type="raster", paths=[str(path)], sensor=str(sensor), tile_size=32, crs=crs,
                           res=res)  # fmt: skip
        tiles = Tiles([cfg])
        rule = cloud_rule(tiles.sensor, "auto")
        assert rule.kind == "qa"
        scene = tiles.sources[0].archive.scenes[0]
        want = _cloud(qa_name.lower(), _nearest(data[4], scene, crs))
        wrong = total = 0
        for k in range(len(tiles)):
            _, col, row, w, h = tiles.sources[0].tiles.grid_tile(k)
            image, valid = tiles.read(k)[:2]
            mask = rule.mask(image, tiles.read_qa(k))
            wrong += int((mask != want[row : row + h, col : col + w])[valid].sum())
            total += int(valid.sum())
        assert total > 0 and wrong == 0  # bilinear codes: 3-4 % of the pixels decoded wrong


def test_native_grid_model_qa_band_reads_nothing_apart(tmp_path):
    path = tmp_path / "scene.tif"
    _scene(path, "QA60", QA60, nodata=None)
    sensor = _sensor_yaml(tmp_path / "s2qa.yaml", "QA60")
    native = Tiles([SourceConfig(name="s", type="raster", paths=[str(path)], sensor=str(sensor), tile_size=32)])
    assert native.read_qa(0) is None  # read from the image, as before
    cfg = SourceConfig(name="s", type="raster", paths=[str(path)], sensor=str(sensor), tile_size=32,
                       crs="EPSG:32632", res=10.0, resampling="nearest")  # fmt: skip
    assert Tiles([cfg]).read_qa(0) is None  # nearest already: the image's codes are the file's


def test_curate_end_to_end_qa_pixel_on_a_reprojected_grid(tmp_path):
    """`geodino data curate` with a source reprojected to UTM 32N and --qa-band QA_PIXEL: each tile's cloud share is
    the independent decode's (cloud, cirrus and dilated cloud count; shadow, snow, water and fill do not)."""
    from tests.data.test_curate_qa_band import SPEC

    path = tmp_path / "ls.tif"
    data = _scene(path, "QA_PIXEL", [1 << 6], nodata=None)  # clear everywhere, then blocks of 32 columns
    data[4, :, 32:64] = np.random.default_rng(1).choice([1 << 3, 1 << 4, 1 << 5, (1 << 2) | (1 << 6)], (H, 32))
    data[4, :, 64:] = (1 << 1) | (1 << 3)  # dilated cloud + cloud
    with rasterio.open(path, "r+") as dst:
        dst.write(data)
    import yaml

    src = {"name": "ls", "type": "raster", "paths": [str(path)], "sensor": "sentinel2_l2a", "tile_size": 32,
           "bands": ["B02", "B03", "B04", "B08"], "crs": "EPSG:32632", "res": 10}  # fmt: skip
    cfg = tmp_path / "pretrain.yaml"
    cfg.write_text(yaml.safe_dump({"data": {"sources": [src]}}))
    out = tmp_path / "cur"
    argv = ["data", "curate", "--config", str(cfg), "--qa-band", "QA_PIXEL", "-b", SPEC, "-o", str(out),
            "--size", "2", "--clusters", "2", "--dedup", "1.01", "--no-progress", "--max-nodata", "1"]  # fmt: skip
    assert cli.main(argv) == 0
    tiles = pd.read_parquet(out / "tiles.parquet")
    scene = Tiles(
        [
            SourceConfig(
                name="ls",
                type="raster",
                paths=[str(path)],
                sensor="sentinel2_l2a",
                bands=["B02", "B03", "B04", "B08"],
                tile_size=32,
                crs="EPSG:32632",
                res=10.0,
            )
        ]
    )
    grid = scene.sources[0].archive.scenes[0]  # fmt: skip
    cloud = _cloud("qa_pixel", _nearest(data[4], grid, "EPSG:32632"))
    inside = _nearest(np.ones((H, W), np.uint8), grid, "EPSG:32632").astype(bool)
    for t in tiles.itertuples():
        win = (slice(t.row, t.row + t.height), slice(t.col, t.col + t.width))
        valid = inside[win]
        if valid.sum() < 0.05 * valid.size:
            continue  # a corner tile beyond the scene: the edge of the footprint decides it
        assert t.cloud_share == pytest.approx((cloud[win] & valid).sum() / valid.sum(), abs=0.03)
    shares = tiles.cloud_share.to_numpy()
    assert shares.max() > 0.9 and shares.min() < 0.1  # the cloud block and the clear block were both screened
    report = json.loads((out / "report.json").read_text())
    assert list(report["qa_band"].values()) == ["QA_PIXEL (qa_pixel)"]


def test_curations_cached_before_the_nearest_qa_read_are_not_reused(tmp_path):
    """Chunks cached by a curation that decoded the resampled QA band hold other cloud shares: the cache key of a
    source whose QA band is read apart changes; every other key stays as it was (no needless re-embedding)."""
    from types import SimpleNamespace

    from geodino.data.curate.embed import _cache_key

    path = tmp_path / "scene.tif"
    _scene(path, "QA60", QA60, nodata=None)
    sensor = _sensor_yaml(tmp_path / "s2qa.yaml", "QA60")
    cfg = SourceConfig(name="s", type="raster", paths=[str(path)], sensor=str(sensor), tile_size=32,
                       crs="EPSG:32632", res=10.0)  # fmt: skip
    tiles = Tiles([cfg])
    backbone, curate = SimpleNamespace(fingerprint="w"), SimpleNamespace(chunk=64)
    rules = [cloud_rule(tiles.sensor, "auto")]
    now = _cache_key(tiles, backbone, rules, curate)
    tiles._warped_qa = [None]  # as the code before read it
    assert _cache_key(tiles, backbone, rules, curate) != now
    native = Tiles([SourceConfig(name="s", type="raster", paths=[str(path)], sensor=str(sensor), tile_size=32)])
    key = _cache_key(native, backbone, rules, curate)
    del native._warped_qa  # a key without the field at all: the one earlier code computed
    assert _cache_key(native, backbone, rules, curate) == key
