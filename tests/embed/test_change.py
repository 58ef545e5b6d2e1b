"""`embed change`: cosine distance of two feature rasters, nodata, grid and backbone checks, Otsu, binary COG."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import numpy as np
import pytest
from rasterio.transform import from_origin

from geodino.embed.change import change_map, otsu_threshold
from geodino.errors import InputError
from tests.embed.test_classify import TAGS, T, feature_raster


def pair(tmp_path, *, b_transform=T):
    """A: random vectors; B: A with a 6x8 patch turned around (distance near 2), each date with its own nodata."""
    rng = np.random.default_rng(0)
    a = rng.normal(size=(8, 20, 30)).astype(np.float32)
    b = a * 2.0  # same direction: distance 0
    b[:, 5:11, 10:18] = -a[:, 5:11, 10:18] + rng.normal(scale=0.3, size=(8, 6, 8))
    a[:, 0, 0] = np.nan
    b[:, 19, 29] = np.nan
    return feature_raster(tmp_path / "a.tif", a), feature_raster(tmp_path / "b.tif", b, transform=b_transform), a, b


def test_distance_nodata_otsu_mask_and_styles(tmp_path):
    import rasterio

    fa, fb, a, b = pair(tmp_path)
    s = change_map(fa, fb, tmp_path / "c.tif", threshold="otsu")
    with rasterio.open(tmp_path / "c.tif") as ds:
        d = ds.read(1)
        assert ds.transform == T and ds.dtypes[0] == "float32" and ds.descriptions == ("cosine distance",)
    expect = 1 - np.sum(a * b, 0) / (np.linalg.norm(a, axis=0) * np.linalg.norm(b, axis=0))
    ok = ~np.isnan(expect)
    np.testing.assert_allclose(d[ok], expect[ok], atol=1e-5)
    assert np.isnan(d[0, 0]) and np.isnan(d[19, 29]) and s["valid_cells"] == 598
    patch = np.zeros((20, 30), bool)
    patch[5:11, 10:18] = True
    with rasterio.open(s["mask"]) as ds:
        m = ds.read(1)
        assert ds.colormap(1)[1][:3] == (220, 30, 30) and ds.descriptions == ("change",)
    assert (m[patch] == 1).all() and (m[~patch & ok] == 0).all() and m[0, 0] == 255 and m[19, 29] == 255
    assert s["changed_cells"] == 48 and s["method"] == "otsu"
    ramp = ET.parse(tmp_path / "c.qml").getroot().find("pipe/rasterrenderer")
    assert ramp.get("type") == "singlebandpseudocolor" and ramp.get("band") == "1"
    assert ramp.find("rastershader/colorrampshader").get("colorRampType") == "INTERPOLATED"
    pal = ET.parse(tmp_path / "c_mask.qml").getroot().find("pipe/rasterrenderer")
    assert pal.get("type") == "paletted" and [e.get("label") for e in pal.iter("paletteEntry")] == [
        "no change",
        "change",
    ]
    for png in ("c.png", "c_mask.png"):
        assert (tmp_path / png).read_bytes()[:4] == b"\x89PNG"


def test_fixed_threshold_and_no_mask_without_threshold(tmp_path):
    import rasterio

    fa, fb, *_ = pair(tmp_path)
    s = change_map(fa, fb, tmp_path / "c.tif")
    assert "mask" not in s and not (tmp_path / "c_mask.tif").exists()
    s = change_map(fa, fb, tmp_path / "c.tif", threshold=1.99, overwrite=True, mask=tmp_path / "m.tif")
    with rasterio.open(tmp_path / "m.tif") as ds:
        assert s["threshold"] == 1.99 and int((ds.read(1) == 1).sum()) == s["changed_cells"] < 48
    with pytest.raises(InputError, match="must lie in \\[0, 2\\]"):
        change_map(fa, fb, tmp_path / "x.tif", threshold=3.0)
    with pytest.raises(InputError, match="'abc' must be a number"):
        change_map(fa, fb, tmp_path / "x.tif", threshold="abc")


def test_otsu_threshold_splits_two_modes():
    edges = np.linspace(0, 2, 201)
    hist = np.zeros(200, np.int64)
    hist[10] = 900  # around 0.1
    hist[12] = 100
    hist[80] = 50  # around 0.8
    t = otsu_threshold(hist, edges)
    assert 0.13 <= t <= 0.8
    with pytest.raises(InputError, match="no cell is valid"):
        otsu_threshold(np.zeros(200), edges)


def test_grid_and_backbone_checks_and_resample(tmp_path):
    import rasterio

    shifted = from_origin(500000.0 + 2 * 40, 4000000.0, 40.0, 40.0)  # B two cells to the east
    fa, fb, a, b = pair(tmp_path, b_transform=shifted)
    with pytest.raises(InputError, match=r"different grids \(transform .*pass --resample"):
        change_map(fa, fb, tmp_path / "c.tif")
    assert not (tmp_path / "c.tif").exists()
    change_map(fa, fb, tmp_path / "c.tif", resample=True)
    with rasterio.open(tmp_path / "c.tif") as ds:
        d = ds.read(1)
    assert np.isnan(d[:, :2]).all()  # B does not cover A's first two columns
    # A's cell (r, c) meets B's cell (r, c - 2): pixel-aligned, so the warp copies B's vectors unchanged
    bb = np.full_like(b, np.nan)
    bb[:, :, 2:] = b[:, :, :-2]
    expect = 1 - np.sum(a * bb, 0) / (np.linalg.norm(a, axis=0) * np.linalg.norm(bb, axis=0))
    ok = ~np.isnan(expect)
    np.testing.assert_allclose(d[ok], expect[ok], atol=1e-5)
    assert np.isnan(d[~ok]).all()
    other = feature_raster(tmp_path / "o.tif", b, tags=dict(TAGS, GEODINO_MODEL_FINGERPRINT="999"))
    with pytest.raises(InputError, match="different backbones: backbone fingerprint abc123"):
        change_map(fa, other, tmp_path / "d.tif")
    plain = feature_raster(tmp_path / "p.tif", b, tags={"GEODINO_MODEL_SPEC": "toy"})
    with pytest.raises(InputError, match="records no backbone fingerprint"):
        change_map(fa, plain, tmp_path / "d.tif")
    alien = feature_raster(tmp_path / "q.tif", b, tags={})  # no backbone record at all: not from `geodino embed`
    with pytest.raises(InputError, match=r"q.tif is not a feature raster from `geodino embed`"):
        change_map(fa, alien, tmp_path / "d.tif")
    narrow = feature_raster(tmp_path / "n.tif", b[:4])
    with pytest.raises(InputError, match="n_bands 8 vs 4"):
        change_map(fa, narrow, tmp_path / "d.tif")


def test_pipeline_rasters_int8_zarr_against_float_cog(tmp_path):
    """Feature rasters as `geodino embed` writes them: a float32 COG and an int8 GeoZarr of the same input and
    backbone match (fingerprint and layers read from COG tags and Zarr attributes alike); distance ~ 0."""
    import rasterio

    from geodino.embed import embed_raster
    from tests.embed.conftest import random_image, write_tif
    from tests.embed.toy_backbones import ConvBackbone

    img = write_tif(tmp_path / "img.tif", random_image(64, 96))
    opts = {"tile": 32, "overlap": 8, "progress": False}
    a = embed_raster(img, ConvBackbone(), tmp_path / "a.tif", **opts)
    b = embed_raster(img, ConvBackbone(), tmp_path / "b.zarr", dtype="int8", **opts)
    with pytest.warns(UserWarning, match=r"the change mask is empty"):
        s = change_map(a, b, tmp_path / "c.tif", threshold=0.05)
    with rasterio.open(tmp_path / "c.tif") as ds:
        d = ds.read(1)
    assert d.shape == (16, 24) and np.nanmax(d) < 1e-3  # int8 round trip only
    assert s["changed_cells"] == 0
