"""COG conversion of a finished feature store: layout, overviews computed here, metadata, intermediates removed."""

from __future__ import annotations

import numpy as np
import pytest
import rasterio
from rasterio.transform import from_origin

from geodino.embed.writers import (
    ZarrBlockWriter,
    create_store,
    downsample2,
    finalize_store,
    overview_shapes,
    quantize_int8,
    store_to_cog,
)


def _store(path, data: np.ndarray, dtype: str, chunk: int = 128):
    d, h, w = data.shape
    create_store(
        path,
        height=h,
        width=w,
        transform=from_origin(500000.0, 4000000.0, 160.0, 160.0),
        crs="EPSG:32633",
        band_names=[f"E{i:03d}" for i in range(d)],
        dtype=dtype,
        chunk=chunk,
        metadata={"model_spec": "toy", "layers": [11]},
    )
    ZarrBlockWriter(path).write(0, 0, data)
    finalize_store(path)
    return path


def test_downsample2_hand_values() -> None:
    x = np.array([[[1.0, np.nan, 2.0], [3.0, 5.0, 4.0], [np.nan, np.nan, 7.0]]], np.float32)
    out = downsample2(x, np.nan)
    # (1+3+5)/3, (2+4)/2 ; the lone last row: nan (no valid cell), 7
    np.testing.assert_allclose(out[0, 0], [3.0, 3.0])
    assert np.isnan(out[0, 1, 0]) and out[0, 1, 1] == 7.0
    q = np.arange(2 * 3 * 5, dtype=np.int8).reshape(2, 3, 5)
    np.testing.assert_array_equal(downsample2(q, -128), q[:, ::2, ::2])  # int8 codes: nearest, never averaged


def test_downsample2_without_nodata_is_the_nan_aware_mean_bit_for_bit() -> None:
    """A block without NaN takes a shorter path (sum of the 4 cells / 4): the same float32 bits as the NaN-aware
    mean, so a COG's overviews do not depend on which blocks hold nodata (-0.0, inf, subnormals included)."""
    rng = np.random.default_rng(3)
    x = (rng.normal(size=(5, 64, 66)) * 1e3).astype(np.float32)
    x[0, 0, 0], x[0, 0, 1], x[1, 2, 3], x[2, 4, 4] = -0.0, np.inf, 1e-42, -np.inf
    ok = ~np.isnan(x.reshape(5, 32, 2, 33, 2))
    n = ok.sum(axis=(2, 4), dtype=np.float32)
    s = np.where(ok, x.reshape(5, 32, 2, 33, 2), 0.0).sum(axis=(2, 4), dtype=np.float32)
    ref = np.where(n > 0, s / n, np.float32(np.nan)).astype(np.float32)
    out = downsample2(x, np.nan)
    assert out.dtype == np.float32 and out.tobytes() == ref.tobytes()


def test_overview_shapes_are_gdals_own_overview_sizes(tmp_path) -> None:
    """The sizes GDAL gives overviews it builds itself (`gdaladdo`, `build_overviews`): an odd side rounds up
    (791 -> 396; the COG driver's OVERVIEWS=AUTO would write 395: the docstring said it matched that)."""
    assert overview_shapes(1024, 1024, 128) == [(512, 512), (256, 256), (128, 128)]
    assert overview_shapes(600, 520, 256) == [(300, 260), (150, 130)]
    assert overview_shapes(200, 100, 256) == []
    ours = overview_shapes(717, 791, 64)
    assert ours[0] == (359, 396) and max(ours[-1]) <= 64 < max(ours[-2])
    path = tmp_path / "g.tif"
    with rasterio.open(
        path,
        "w",
        driver="GTiff",
        width=791,
        height=717,
        count=1,
        dtype="uint8",
        crs="EPSG:32633",
        transform=from_origin(500000.0, 4000000.0, 10.0, 10.0),
    ) as ds:
        ds.write(np.ones((1, 717, 791), np.uint8))
        ds.build_overviews([2**k for k in range(1, len(ours) + 1)])
    gdal = []
    for level in range(len(ours)):
        with rasterio.open(path, overview_level=level) as ov:
            gdal.append(ov.shape)
    assert gdal == ours


def _ref_level(x: np.ndarray) -> np.ndarray:
    """Reference 2x NaN-mean by explicit windows (another code path than downsample2)."""
    d, h, w = x.shape
    out = np.full((d, -(-h // 2), -(-w // 2)), np.nan, np.float32)
    for r in range(out.shape[1]):
        for c in range(out.shape[2]):
            win = x[:, 2 * r : 2 * r + 2, 2 * c : 2 * c + 2].reshape(d, -1)
            ok = ~np.isnan(win)
            n = ok.sum(1)
            out[:, r, c] = np.where(n > 0, np.where(ok, win, 0).sum(1) / np.maximum(n, 1), np.nan)
    return out


def test_store_to_cog_float32_overviews_and_metadata(tmp_path) -> None:
    rng = np.random.default_rng(0)
    data = rng.normal(size=(3, 301, 259)).astype(np.float32)  # odd sizes, several chunks, > one COG block
    data[:, 10:50, 20:90] = np.nan  # nodata area crossing overview cells
    data[:, 5, 7] = np.nan
    store = _store(tmp_path / "s.zarr", data, "float32")
    out = tmp_path / "o.tif"
    store_to_cog(store, out)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["o.tif", "s.zarr"]  # intermediates removed
    with rasterio.open(out) as ds:
        assert ds.tags(ns="IMAGE_STRUCTURE")["LAYOUT"] == "COG"
        assert ds.descriptions == ("E000", "E001", "E002")
        assert ds.tags()["GEODINO_MODEL_SPEC"] == "toy" and np.isnan(ds.nodata)
        assert ds.crs.to_epsg() == 32633 and ds.transform.a == 160.0
        assert ds.overviews(1) == [2]  # 301 -> 151 <= 256 (cog_blocksize for 3 float32 bands)
        np.testing.assert_array_equal(ds.read(), data)
    with rasterio.open(out, overview_level=0) as ov:
        assert ov.shape == (151, 130)
        np.testing.assert_allclose(ov.read(), _ref_level(data), rtol=1e-6, atol=1e-6)


def test_store_to_cog_float16_and_int8(tmp_path) -> None:
    rng = np.random.default_rng(1)
    v = rng.normal(size=(4, 40, 36)).astype(np.float32)
    v /= np.linalg.norm(v, axis=0, keepdims=True)
    h = _store(tmp_path / "h.zarr", v.astype(np.float16), "float16", chunk=32)
    store_to_cog(h, tmp_path / "h.tif")
    with rasterio.open(tmp_path / "h.tif") as ds:
        assert ds.tags(1, ns="IMAGE_STRUCTURE").get("NBITS") == "16" and ds.overviews(1) == []
        np.testing.assert_array_equal(ds.read(), v.astype(np.float16).astype(np.float32))
    q = quantize_int8(v)
    q[:, :3] = -128
    s = _store(tmp_path / "q.zarr", q, "int8", chunk=32)
    store_to_cog(s, tmp_path / "q.tif")
    with rasterio.open(tmp_path / "q.tif") as ds:
        assert ds.dtypes[0] == "int8" and ds.nodata == -128
        np.testing.assert_array_equal(ds.read(), q)


def test_store_to_cog_int8_overviews_are_nearest(tmp_path) -> None:
    rng = np.random.default_rng(2)
    q = rng.integers(-127, 128, size=(2, 530, 300)).astype(np.int8)
    s = _store(tmp_path / "q.zarr", q, "int8", chunk=64)
    store_to_cog(s, tmp_path / "q.tif")
    with rasterio.open(tmp_path / "q.tif", overview_level=0) as ov:
        np.testing.assert_array_equal(ov.read(), q[:, ::2, ::2])


def test_store_to_cog_missing_store_names_path(tmp_path) -> None:
    with pytest.raises(FileNotFoundError, match=r"missing\.zarr does not exist"):
        store_to_cog(tmp_path / "missing.zarr", tmp_path / "o.tif")
    assert not (tmp_path / "o.tif").exists()


@pytest.mark.parametrize("dtype", ["float16", "int8"])
def test_the_block_writer_stores_all_nodata_chunks_and_they_read_as_nodata(tmp_path, dtype):
    """The writer skips zarr's all-fill comparison (slower than the write for float16 features), so an all-nodata
    chunk is stored like any other; it reads back as nodata, and the data chunks as written."""
    from geodino.embed.writers import VAR, nodata_of

    nodata = nodata_of(dtype)
    data = np.full((3, 8, 16), nodata, dtype=dtype)
    data[:, :, 8:] = np.arange(3 * 8 * 8).reshape(3, 8, 8).astype(dtype)  # right chunk data, left chunk all nodata
    path = _store(tmp_path / "s.zarr", data, dtype, chunk=8)
    stored = sorted(p.name for p in (path / VAR).iterdir() if not p.name.startswith("."))
    assert stored == ["0.0.0", "0.0.1"]  # both chunks, the all-nodata one included
    import zarr

    back = zarr.open_array(str(path / VAR), mode="r")[:]
    np.testing.assert_array_equal(back, data)


def test_store_to_cog_float16_bytes_are_the_same_every_run(tmp_path) -> None:
    """GDAL 3.10's COG driver packs NBITS=16 edge tiles from buffers it never clears (the padding held other bytes,
    hence other sizes, run to run): float16 levels are written as whole tiles and get their true sizes after the
    copy. Two conversions give the same bytes; values, overview sizes and the COG layout are those of the store."""
    rng = np.random.default_rng(4)
    v = rng.normal(size=(8, 600, 520)).astype(np.float16)  # 8 float16 bands: 256-cell tiles, partial in all levels
    v[:, 590:, :] = np.nan
    store = _store(tmp_path / "h.zarr", v, "float16", chunk=128)
    outs = [tmp_path / "a.tif", tmp_path / "b.tif"]
    for out in outs:
        store_to_cog(store, out)
    assert outs[0].read_bytes() == outs[1].read_bytes()
    with rasterio.open(outs[0]) as ds:
        assert ds.shape == (600, 520) and ds.block_shapes[0] == (256, 256) and ds.overviews(1) == [2, 4]
        assert ds.tags(ns="IMAGE_STRUCTURE")["LAYOUT"] == "COG" and ds.tags(1, ns="IMAGE_STRUCTURE")["NBITS"] == "16"
        np.testing.assert_array_equal(ds.read(), v.astype(np.float32))
        ifds = [int(ds.get_tag_item("IFD_OFFSET", "TIFF", bidx=1))]
        tiles = [int(ds.get_tag_item("BLOCK_OFFSET_0_0", "TIFF", bidx=1))]
    for level, shape in enumerate([(300, 260), (150, 130)]):
        with rasterio.open(outs[0], overview_level=level) as ov:
            assert ov.shape == shape
            ifds.append(int(ov.get_tag_item("IFD_OFFSET", "TIFF", bidx=1)))
            tiles.append(int(ov.get_tag_item("BLOCK_OFFSET_0_0", "TIFF", bidx=1)))
            if level == 0:
                # GDAL rounds float32 -> float16 its own way (within one float16 step of numpy's)
                np.testing.assert_allclose(ov.read(), _ref_level(v.astype(np.float32)), rtol=1e-3, atol=1e-4)
    assert max(ifds) < min(tiles)  # the image file directories before the data
