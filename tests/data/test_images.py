"""Web images: recursive folders (jpg/png/webp/tif), tar shards, corrupt images skipped and counted."""

from __future__ import annotations

import io
import tarfile

import numpy as np
import pytest
from PIL import Image

from geodino.data.images import ImageFolderSource, TarShardSource
from geodino.errors import InputError


def _png_bytes(arr: np.ndarray, fmt: str = "PNG") -> bytes:
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format=fmt)
    return buf.getvalue()


@pytest.fixture
def folder(tmp_path):
    rng = np.random.default_rng(0)
    root = tmp_path / "imgs"
    (root / "a" / "b").mkdir(parents=True)
    arrays = {}
    for i, (sub, ext, fmt) in enumerate(
        [("", "png", "PNG"), ("a", "jpg", "JPEG"), ("a/b", "webp", "WEBP"), ("a/b", "tif", "TIFF")]
    ):
        arr = rng.integers(0, 255, size=(20 + i, 30, 3), dtype=np.uint8)
        p = root / sub / f"img{i}.{ext}"
        p.write_bytes(_png_bytes(arr, fmt))
        arrays[str(p)] = arr
    return root, arrays


def test_folder_recursive_pixels(folder):
    root, arrays = folder
    src = ImageFolderSource(root, sensor="imagenet", shuffle=False)
    assert len(src) == 4
    for i in range(4):
        s = src.get(i, 0)
        arr = arrays[s["path"]]
        assert s["image"].shape == (3, arr.shape[0], arr.shape[1]) and s["valid"].all()
        if s["path"].endswith((".png", ".tif")):  # lossless: exact pixels, scaled by 1/255
            np.testing.assert_allclose(s["image"], arr.transpose(2, 0, 1) / 255.0, rtol=1e-6)
    # shuffled epochs visit every image once
    shuffled = ImageFolderSource(root, sensor="imagenet")
    assert sorted(shuffled.get(i, 3)["path"] for i in range(4)) == sorted(arrays)


def test_corrupt_image_skipped_and_counted(folder):
    root, _ = folder
    (root / "a" / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 definitely not a jpeg")
    src = ImageFolderSource(root, sensor="imagenet", shuffle=False)
    broken = src.files.index(str(root / "a" / "broken.jpg"))
    with pytest.warns(UserWarning, match=r"skipped corrupt image .*broken.jpg .*1 skipped so far|skipped so far"):
        s = src.get(broken, 0)
    assert s["path"] != str(root / "a" / "broken.jpg") and src.skipped == 1
    stop = ImageFolderSource(root, sensor="imagenet", shuffle=False, on_error="stop")
    with pytest.raises(InputError, match=r"image .*broken.jpg cannot be decoded"):
        stop.get(broken, 0)


def test_tar_shards(tmp_path):
    rng = np.random.default_rng(1)
    arrays = {}
    for shard in range(2):
        with tarfile.open(tmp_path / f"shard-{shard:04d}.tar", "w") as tf:
            for k in range(3):
                key = f"s{shard}_{k}"
                arr = rng.integers(0, 255, size=(16, 16, 3), dtype=np.uint8)
                for name, data in [(f"{key}.png", _png_bytes(arr)), (f"{key}.json", b"{}")]:
                    info = tarfile.TarInfo(name)
                    info.size = len(data)
                    tf.addfile(info, io.BytesIO(data))
                arrays[f"{key}.png"] = arr
            info = tarfile.TarInfo("bad.jpg")
            info.size = 5
            tf.addfile(info, io.BytesIO(b"oops!"))
    src = TarShardSource(str(tmp_path / "shard-*.tar"), sensor="imagenet", shuffle=False)
    assert len(src) == 8  # 6 good + 2 corrupt members indexed
    got = {}
    with pytest.warns(UserWarning, match="skipped corrupt image"):
        for i in range(8):
            s = src.get(i, 0)
            got[s["path"].split(":")[-1]] = s["image"]
    for name, arr in arrays.items():
        np.testing.assert_allclose(got[name], arr.transpose(2, 0, 1) / 255.0, rtol=1e-6)
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="holds no tar shard files"):
        TarShardSource(tmp_path / "empty")


def test_empty_image_folder(tmp_path):
    (tmp_path / "x").mkdir()
    (tmp_path / "x" / "notes.txt").write_text("hi")
    with pytest.raises(InputError, match=r"folder .*x holds no image files"):
        ImageFolderSource(tmp_path / "x")


def test_sixteen_bit_pngs_are_brought_to_the_8_bit_range_of_an_8_bit_sensor(tmp_path):
    """A 16-bit PNG was divided by 255 like an 8-bit one: values up to 257, clipped to one colour per channel."""
    rng = np.random.default_rng(1)
    arr8 = rng.integers(0, 256, size=(12, 10), dtype=np.uint8)
    (tmp_path / "imgs").mkdir()
    Image.fromarray(arr8.astype(np.uint16) * 257).save(tmp_path / "imgs" / "deep.png")  # 16-bit grey PNG
    Image.fromarray(arr8).save(tmp_path / "imgs" / "flat.png")
    src = ImageFolderSource(tmp_path / "imgs", sensor="imagenet", shuffle=False)
    deep, flat = (src.get(src.files.index(str(tmp_path / "imgs" / n)), 0)["image"] for n in ("deep.png", "flat.png"))
    np.testing.assert_allclose(deep, flat, atol=1e-7)
    np.testing.assert_allclose(flat[0], arr8 / 255.0, rtol=1e-6)


def test_a_16_bit_tiff_above_255_needs_its_own_sensor(tmp_path):
    """16-bit TIFF chips hold some sensor's DN: with an 8-bit sensor, one line; with a DN sensor, read as they are."""
    import rasterio
    from rasterio.transform import from_origin

    from geodino.data.images import match_bit_depth
    from geodino.data.sensors import get_sensor

    arr = np.full((3, 8, 8), 3000, np.uint16)
    p = tmp_path / "s2.tif"
    with rasterio.open(
        p, "w", driver="GTiff", width=8, height=8, count=3, dtype="uint16", transform=from_origin(0, 8, 1, 1)
    ) as dst:
        dst.write(arr)
    src = ImageFolderSource(tmp_path, sensor="imagenet", shuffle=False, on_error="skip")
    with pytest.raises(InputError, match=r"s2.tif is 16-bit \(uint16, values up to 3000\) but sensor 'imagenet'"):
        src.get(0, 0)
    s2 = get_sensor("sentinel2_l2a").select(["B04", "B03", "B02"])
    assert match_bit_depth(arr, "s2.tif", s2) is arr  # a DN sensor takes the values as they are
    low = arr // 20  # <= 255: 8-bit data stored in 16 bits, kept
    assert match_bit_depth(low, "s2.tif", get_sensor("imagenet")) is low


def test_web_image_sources_skip_corrupt_files_by_default_and_rasters_stop(tmp_path):
    """docs/data.md: on_error defaults to skip for web images; the config passed "stop" to every source."""
    from geodino.data.config import SourceConfig
    from geodino.data.loaders import build_source

    (tmp_path / "imgs").mkdir()
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(tmp_path / "imgs" / "ok.png")
    src = build_source(SourceConfig(type="images", paths=[str(tmp_path / "imgs")]))
    assert src.on_error == "skip"
    assert build_source(SourceConfig(type="images", paths=[str(tmp_path / "imgs")], on_error="stop")).on_error == "stop"
    assert SourceConfig().on_error is None  # resolved per type: rasters and cubes stop (tests/data/test_loaders.py)


def test_an_unreadable_shard_says_whether_it_is_compressed_or_cut_short(tmp_path):
    """A truncated plain .tar was told to be 'uncompressed', which it already was."""
    import gzip

    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tf:
        data = _png_bytes(np.zeros((8, 8, 3), np.uint8))
        info = tarfile.TarInfo("a.png")
        info.size = len(data)
        tf.addfile(info, io.BytesIO(data))
    whole = buf.getvalue()
    (tmp_path / "cut.tar").write_bytes(whole[:700])
    (tmp_path / "z.tar").write_bytes(gzip.compress(whole))
    with pytest.raises(InputError, match=r"cut.tar cannot be read .*it is truncated or corrupt; re-create"):
        TarShardSource([tmp_path / "cut.tar"], sensor="imagenet", on_error="stop")
    with pytest.raises(InputError, match=r"z.tar cannot be read .*it is compressed; shards must be uncompressed"):
        TarShardSource([tmp_path / "z.tar"], sensor="imagenet", on_error="stop")
