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
