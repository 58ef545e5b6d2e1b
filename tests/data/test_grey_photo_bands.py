"""A greyscale photo is one band for a sensor of other than three bands and three equal bands for a 3-band (RGB)
sensor, at 8 and at 16 bits alike: an 8-bit grey PNG or JPEG decoded through torchvision's RGB mode gave three
bands whatever the sensor (so a one-band sensor refused it), while a 16-bit grey PNG (decoded as stored since
8271acc) gave one; a 16-bit grey+alpha PNG (RGBA to Pillow) gave three."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image, ImageOps

from geodino.data.images import ImageFolderSource, decode_photo
from geodino.data.sensors import Sensor
from tests.data.test_photo_16bit import png16

H, W = 6, 5


def _grey8() -> np.ndarray:
    return np.random.default_rng(0).integers(0, 256, size=(H, W), dtype=np.uint8)


def _grey16() -> np.ndarray:
    return np.random.default_rng(1).integers(256, 65536, size=(1, H, W), dtype=np.uint16)


def _alpha(dtype: type) -> np.ndarray:
    a = np.full((H, W), np.iinfo(dtype).max, dtype)
    a[:, :2] = 0
    return a


def _saved(im: Image.Image, fmt: str, **kw) -> bytes:
    buf = io.BytesIO()
    im.save(buf, fmt, **kw)
    return buf.getvalue()


def _cases(tmp_path) -> dict[str, tuple[bytes, np.ndarray, bool]]:
    """name -> (file bytes, the grey band [H,W] as stored, whether it has alpha)."""
    g8, g16 = _grey8(), _grey16()
    la8 = np.stack([g8, _alpha(np.uint8)], axis=-1)
    return {
        "grey8.png": (_saved(Image.fromarray(g8, "L"), "PNG"), g8, False),
        "grey_alpha8.png": (_saved(Image.fromarray(la8, "LA"), "PNG"), g8, True),
        "grey8.bmp": (_saved(Image.fromarray(g8, "L"), "BMP"), g8, False),
        "grey16.png": (png16(tmp_path / "g16.png", g16).read_bytes(), g16[0], False),
        "grey_alpha16.png": (
            png16(tmp_path / "la16.png", np.concatenate([g16, _alpha(np.uint16)[None]])).read_bytes(),
            g16[0],
            True,
        ),
    }


@pytest.mark.parametrize("name", ["grey8.png", "grey_alpha8.png", "grey8.bmp", "grey16.png", "grey_alpha16.png"])
def test_grey_photos_are_one_band_for_one_band_sensors_and_three_for_rgb_ones(tmp_path, name):
    data, grey, has_alpha = _cases(tmp_path)[name]
    for n_bands, want in ((1, grey[None]), (2, grey[None]), (3, np.stack([grey] * 3))):
        arr, valid = decode_photo(data, name, n_bands)
        assert arr.dtype == grey.dtype, (name, n_bands)
        np.testing.assert_array_equal(arr, want, err_msg=f"{name} n_bands={n_bands}")
        if has_alpha:
            np.testing.assert_array_equal(valid, np.broadcast_to(np.arange(W) >= 2, (H, W)))
        else:
            assert valid is None


def test_a_grey_jpeg_is_one_band_for_a_one_band_sensor_and_turned_upright(tmp_path):
    g = np.kron(_grey8()[:3, :3], np.ones((8, 8), np.uint8))  # blocks: JPEG keeps them close
    exif = Image.Exif()
    exif[0x0112] = 6  # stored sideways
    data = _saved(Image.fromarray(g, "L"), "JPEG", quality=95, exif=exif.tobytes())
    with Image.open(io.BytesIO(data)) as im:
        ref = np.asarray(ImageOps.exif_transpose(im))
    one, _ = decode_photo(data, "g.jpg", 1)
    three, _ = decode_photo(data, "g.jpg", 3)
    assert one.shape == (1, *ref.shape) and three.shape == (3, *ref.shape) and ref.shape == (24, 24)
    np.testing.assert_array_equal(one[0], ref)
    assert np.abs(three.astype(int) - one.astype(int)).max() <= 1  # the same pixels (two JPEG decoders)


def test_an_rgb_photo_stays_three_bands_for_a_one_band_sensor(tmp_path):
    rgb = np.random.default_rng(2).integers(0, 256, size=(H, W, 3), dtype=np.uint8)
    for fmt, name in (("PNG", "c.png"), ("JPEG", "c.jpg")):
        arr, _ = decode_photo(_saved(Image.fromarray(rgb), fmt), name, 1)
        assert arr.shape == (3, H, W)  # the source refuses it: "has 3 bands but sensor ... has 1"
        assert not np.array_equal(arr[0], arr[1])  # its colours, not made grey
        if fmt == "PNG":  # lossless: the pixels as saved
            np.testing.assert_array_equal(arr, rgb.transpose(2, 0, 1))


@pytest.mark.parametrize(("name", "scale"), [("grey8.png", 1 / 255), ("grey16.png", 1 / 65535)])
def test_a_one_band_sensor_trains_on_grey_pngs_of_either_bit_depth(tmp_path, name, scale):
    data, grey, _ = _cases(tmp_path)[name]
    folder = tmp_path / "photos"
    folder.mkdir()
    (folder / name).write_bytes(data)
    sensor = Sensor("pan", ("pan",), scale, (0.5,), (0.2,), False)
    sample = ImageFolderSource(folder, sensor=sensor, shuffle=False, on_error="stop").get(0, 0)
    assert sample["image"].shape == (1, H, W)
    np.testing.assert_allclose(sample["image"][0], grey * scale, rtol=1e-6)
