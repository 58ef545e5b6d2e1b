"""Pillow's decompression-bomb guard holds for every photo decode: RGB JPEGs (and the fallback) go through
torchvision, which has none, so a 0.9 MB PNG of 30000 x 30000 px asked it for 2.7 GB. The guard's limit is
lowered here (`PIL.Image.MAX_IMAGE_PIXELS`) so that small files stand for huge ones."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from geodino.data.images import ImageFolderSource
from geodino.data.photos import decode_photo
from geodino.errors import InputError


def _bytes(fmt: str, mode: str = "RGB") -> bytes:
    buf = io.BytesIO()
    Image.fromarray(np.full((40, 40, 3), 90, dtype=np.uint8)).convert(mode).save(buf, format=fmt)
    return buf.getvalue()


@pytest.mark.parametrize(
    ("fmt", "name", "mode"), [("JPEG", "a.jpg", "RGB"), ("PNG", "a.png", "RGB"), ("PNG", "a.png", "RGBA")]
)
def test_every_photo_path_keeps_the_guard(monkeypatch, fmt, name, mode) -> None:
    data = _bytes(fmt, mode)
    assert decode_photo(data, name)[0].shape == (3, 40, 40)  # 1600 px: under the default guard
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100)  # the guard raises above 2 x 100 px
    with pytest.raises(Image.DecompressionBombError):
        decode_photo(data, name)
    with pytest.raises(Image.DecompressionBombError):
        decode_photo(data, name, min_area=64)  # the JPEG draft path too


def test_an_image_folder_names_the_size_and_limit(tmp_path, monkeypatch) -> None:
    (tmp_path / "big.png").write_bytes(_bytes("PNG"))
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100)
    src = ImageFolderSource(tmp_path, shuffle=False, on_error="stop")
    with pytest.raises(
        InputError,
        match=r"image .*big\.png cannot be decoded \(DecompressionBombError: Image size \(1600 pixels\) exceeds limit",
    ):
        src.get(0, seed=0)
