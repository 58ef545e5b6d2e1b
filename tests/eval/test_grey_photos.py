"""A greyscale photo among RGB photos in an `image_folder` probe dataset: pretraining reads it as RGB (three equal
bands), the probes kept it as one band and crashed the batching with `torch.stack` ([3,H,W] vs [1,H,W]). It now
reads as pretraining reads it; a file whose band count still differs (a 4-band TIFF among RGB PNGs) is one line
naming it when the dataset is built, before any feature is extracted."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from geodino.errors import InputError
from geodino.eval.datasets import DatasetConfig, build_dataset, read_array
from tests.eval.class_folder import class_folder
from tests.helpers import write_tif


def _all_items(cfg: DatasetConfig) -> list[dict]:
    return [ds[i] for split in ("train", "val", "test") for ds in [build_dataset(cfg, split)] for i in range(len(ds))]


def test_a_grey_png_among_rgb_photos_reads_as_three_equal_bands(tmp_path):
    root = class_folder(tmp_path / "data", size=16)
    grey = np.arange(256, dtype=np.uint8).reshape(16, 16)
    Image.fromarray(grey, "L").save(root / "dark" / "grey.png")
    cfg = DatasetConfig(name="image_folder", root=str(root), val_fraction=0.25, test_fraction=0.25)
    items = _all_items(cfg)
    batch = torch.stack([s["image"] for s in items])  # crashed: stack expects each tensor to be equal size
    assert batch.shape == (17, 3, 16, 16)
    arr = read_array(root / "dark" / "grey.png", rgb=True)
    assert arr.shape == (3, 16, 16) and all((arr[b] == grey).all() for b in range(3))
    from geodino.data.images import decode_image

    path = root / "dark" / "grey.png"
    np.testing.assert_array_equal(arr, decode_image(path.read_bytes(), path.name))  # as pretraining reads it


def test_a_folder_of_grey_photos_stays_one_band(tmp_path):
    """No image reads three bands and no bands are named: the dataset is greyscale, read as stored."""
    for c in ("a", "b"):
        (tmp_path / c).mkdir()
        for i in range(4):
            Image.fromarray(np.full((8, 8), 40 * i, np.uint8), "L").save(tmp_path / c / f"{i}.png")
    ds = build_dataset(DatasetConfig(name="image_folder", root=str(tmp_path)), "train")
    assert ds[0]["image"].shape == (1, 8, 8) and ds.bands == ["b1"]
    rgb = build_dataset(DatasetConfig(name="image_folder", root=str(tmp_path), bands=["rgb"]), "train")
    assert rgb[0]["image"].shape == (3, 8, 8) and rgb.bands == ["red", "green", "blue"]


def test_web_modes_read_as_rgb(tmp_path):
    """Palette, RGBA, LA and CMYK photos read as RGB [3,H,W] in an RGB dataset (alpha dropped: the probes take the
    picture), as pretraining reads them."""
    rgb = np.random.default_rng(0).integers(0, 255, (8, 10, 3), dtype=np.uint8)
    rgba = np.dstack([rgb, np.full((8, 10), 255, np.uint8)])
    images = {
        "p.png": Image.fromarray(rgb).convert("P"),
        "rgba.png": Image.fromarray(rgba, "RGBA"),
        "la.png": Image.fromarray(rgba[..., [0, 3]], "LA"),
        "cmyk.jpg": Image.fromarray(rgb).convert("CMYK"),
        "l.webp": Image.fromarray(rgb[..., 0], "L"),
        "l.bmp": Image.fromarray(rgb[..., 0], "L"),
    }
    for name, im in images.items():
        im.save(tmp_path / name)
        arr = read_array(tmp_path / name, rgb=True)
        assert arr.shape == (3, 8, 10) and arr.dtype == np.uint8, name
    np.testing.assert_array_equal(read_array(tmp_path / "rgba.png", rgb=True), rgb.transpose(2, 0, 1))
    assert read_array(tmp_path / "la.png").shape == (1, 8, 10)  # grey with alpha: one band unless the dataset is RGB


def test_a_four_band_tiff_among_rgb_pngs_is_one_line_naming_it(tmp_path):
    root = class_folder(tmp_path / "data", size=16)
    write_tif(root / "bright" / "odd.tif", np.zeros((4, 16, 16), np.uint8), crs=None, transform=None)
    cfg = DatasetConfig(name="image_folder", root=str(root))
    with pytest.raises(InputError, match=r"^image .*odd\.tif has 4 bands but 16 of the 17 images .* have 3") as err:
        build_dataset(cfg, "train")
    assert "\n" not in str(err.value)
