"""Transparent photos (RGBA PNG/WebP, a palette PNG with a transparent colour, an RGBA TIFF chip): the alpha was
dropped and every pixel counted as valid, so a cut-out's transparent area trained and entered `data stats` as black.
Alpha is now the validity mask (alpha > 0 valid), as a raster source reads an alpha band, for image folders and tar
shards alike; `data stats` on images takes the opaque pixels only."""

from __future__ import annotations

import io
import tarfile

import numpy as np
import pytest
from PIL import Image

from geodino.data.images import ImageFolderSource, TarShardSource

OPAQUE = (200, 150, 100)


def cutout() -> np.ndarray:
    """64 x 64 RGBA: left half opaque (200, 150, 100), right half transparent black."""
    a = np.zeros((64, 64, 4), np.uint8)
    a[:, :32] = (*OPAQUE, 255)
    return a


def png_bytes(im: Image.Image, fmt: str = "PNG", **kw) -> bytes:
    buf = io.BytesIO()
    im.save(buf, fmt, **kw)
    return buf.getvalue()


def check(sample: dict) -> None:
    valid = np.asarray(sample["valid"])
    assert valid.shape == (64, 64) and valid[:, :32].all() and not valid[:, 32:].any()
    image = np.asarray(sample["image"])
    assert image.shape == (3, 64, 64)
    np.testing.assert_allclose(image[:, valid].mean(axis=1) * 255, OPAQUE, atol=0.01)


def test_rgba_png_folder_and_tar_shard_read_alpha_as_validity(tmp_path):
    folder = tmp_path / "photos"
    folder.mkdir()
    data = png_bytes(Image.fromarray(cutout(), "RGBA"))
    (folder / "cutout.png").write_bytes(data)
    check(ImageFolderSource(folder, shuffle=False).get(0, 0))
    shard = tmp_path / "shard-000000.tar"
    with tarfile.open(shard, "w") as tf:
        info = tarfile.TarInfo("s0.png")
        info.size = len(data)
        tf.addfile(info, io.BytesIO(data))
    check(TarShardSource(shard, shuffle=False).get(0, 0))


def test_webp_palette_and_grey_alpha_and_tiff_alpha(tmp_path):
    from geodino.data.images import decode_photo

    a = cutout()
    arr, valid = decode_photo(png_bytes(Image.fromarray(a, "RGBA"), "WEBP", lossless=True), "x.webp")
    assert arr.shape == (3, 64, 64) and valid[:, :32].all() and not valid[:, 32:].any()
    pal = Image.fromarray(a[..., :3]).convert("P")  # two colours: opaque and black; black is transparent
    black = pal.getpixel((40, 0))
    arr, valid = decode_photo(png_bytes(pal, transparency=black), "x.png")
    assert arr.shape == (3, 64, 64) and valid[:, :32].all() and not valid[:, 32:].any()
    arr, valid = decode_photo(png_bytes(Image.fromarray(a[..., [0, 3]], "LA")), "x.png")
    assert arr.shape == (3, 64, 64) and (arr[0] == arr[2]).all() and not valid[:, 32:].any()
    import rasterio
    from rasterio.enums import ColorInterp
    from rasterio.transform import from_origin

    path = tmp_path / "chip.tif"
    grid = from_origin(0, 64, 1, 1)  # any grid: rasterio warns on writing a TIFF without one
    with rasterio.open(path, "w", driver="GTiff", width=64, height=64, count=4, dtype="uint8", transform=grid) as dst:
        dst.write(a.transpose(2, 0, 1))
        dst.colorinterp = [ColorInterp.red, ColorInterp.green, ColorInterp.blue, ColorInterp.alpha]
    arr, valid = decode_photo(path.read_bytes(), "chip.tif")
    assert arr.shape == (3, 64, 64) and valid[:, :32].all() and not valid[:, 32:].any()
    arr, valid = decode_photo(path.read_bytes(), "chip.tif", n_bands=4)  # a 4-band sensor reads every band
    assert arr.shape == (4, 64, 64) and valid is None
    arr, valid = decode_photo(png_bytes(Image.fromarray(a[..., :3])), "x.png")  # no alpha: every pixel valid
    assert arr.shape == (3, 64, 64) and valid is None


@pytest.mark.filterwarnings("ignore:bands R, G, B")  # one flat colour: constant bands, as meant
def test_data_stats_on_images_take_the_opaque_pixels_only(tmp_path):
    from geodino.data.stats import compute_stats

    folder = tmp_path / "photos"
    folder.mkdir()
    Image.fromarray(cutout(), "RGBA").save(folder / "cutout.png")
    sensor, _ = compute_stats(str(folder), type="images", samples=1, progress=False)
    np.testing.assert_allclose(np.asarray(sensor.mean) * 255, OPAQUE, atol=0.01)  # not halved by black
