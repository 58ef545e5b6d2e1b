"""A WebP photo with an EXIF orientation is read upright, as JPEGs and PNGs are (PIL `ImageOps.exif_transpose`):
torchvision's decoder, which reads RGB WebPs without alpha, ignores a WebP's orientation, so a sideways-stored
WebP trained sideways (64 x 40 instead of 40 x 64)."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image, ImageOps

from geodino.data.images import ImageFolderSource, decode_photo


def _webp(orientation: int) -> bytes:
    pixels = np.random.default_rng(0).integers(0, 255, (40, 64, 3), dtype=np.uint8)
    exif = Image.Exif()
    exif[0x0112] = orientation
    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, format="WEBP", lossless=True, exif=exif.tobytes())
    return buf.getvalue()


@pytest.mark.parametrize("orientation", [1, 3, 6, 8])
def test_webp_turned_as_pillow_exif_transpose(orientation):
    data = _webp(orientation)
    want = np.asarray(ImageOps.exif_transpose(Image.open(io.BytesIO(data))).convert("RGB")).transpose(2, 0, 1)
    arr, valid = decode_photo(data, "photo.webp", 3)
    assert valid is None
    assert arr.shape == want.shape and np.array_equal(arr, want)


def test_webp_folder_sample_upright(tmp_path):
    (tmp_path / "side.webp").write_bytes(_webp(6))
    sample = ImageFolderSource(tmp_path).get(0, seed=0)
    assert sample["image"].shape == (3, 64, 40)
