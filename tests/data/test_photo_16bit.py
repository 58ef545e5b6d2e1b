"""16-bit PNGs keep their 16-bit values: Pillow reads 16-bit RGB, RGBA and grey+alpha PNGs as 8-bit images (the
low byte dropped) and ignores a 16-bit transparent colour, so pretraining (an RGBA or transparent-colour PNG went
through Pillow), the probes' `read_array` and `embed images` (every PNG through Pillow) saw 8-bit data: bit-depth
detection and the /257 of `match_bit_depth` never met the real values. The files are written with GDAL's PNG
driver (rasterio), which writes 16-bit samples and a nodata value as the transparent colour (tRNS)."""

from __future__ import annotations

import io
import struct
import warnings
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageOps

from geodino.data.images import ImageFolderSource, decode_photo, photo_array

H, W = 6, 5


def png16(path: Path, arr: np.ndarray, *, nodata: int | None = None, orientation: int = 1) -> Path:
    """Write uint16 [C,H,W] (C: 1 grey, 2 grey+alpha, 3 RGB, 4 RGBA) as a 16-bit PNG; `nodata`: its transparent
    colour (tRNS); `orientation`: an EXIF orientation in an eXIf chunk after IHDR."""
    from rasterio.io import MemoryFile

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # NotGeoreferencedWarning
        with MemoryFile() as mem:
            c, h, w = arr.shape
            with mem.open(driver="PNG", width=w, height=h, count=c, dtype="uint16", nodata=nodata) as dst:
                dst.write(arr)
            data = mem.read()
    assert data[24] == 16 and (nodata is None) == (b"tRNS" not in data)
    if orientation != 1:
        exif = Image.Exif()
        exif[0x0112] = orientation
        body = exif.tobytes()[6:]  # without the "Exif\0\0" prefix, as a PNG's eXIf chunk holds it
        chunk = struct.pack(">I", len(body)) + b"eXIf" + body + struct.pack(">I", zlib.crc32(b"eXIf" + body))
        data = data[:33] + chunk + data[33:]  # after the signature (8) and IHDR (25)
    path.write_bytes(data)
    return path


def values(c: int, seed: int = 0) -> np.ndarray:
    """uint16 [c,H,W] well above 255, whose low bytes differ from their high bytes (a read of 8 bits shows)."""
    rng = np.random.default_rng(seed)
    return rng.integers(256, 65536, size=(c, H, W), dtype=np.uint16)


def reads(path: Path, rgb: bool = False) -> list[tuple[np.ndarray, np.ndarray | None]]:
    """(pixels, validity) as pretraining (`decode_photo`), `photo_array` on a file and `read_array` read `path`."""
    from geodino.eval.datasets import read_array

    with Image.open(path) as im:
        from_file = photo_array(im, rgb=rgb)
    out = [decode_photo(path.read_bytes(), path.name, 3 if rgb else 1), from_file, (read_array(path, rgb), None)]
    for arr, _ in out:
        assert arr.dtype == np.uint16
    return out


def test_16_bit_rgb_and_rgba_pngs_read_as_written_with_alpha_as_validity(tmp_path):
    rgb = values(3)
    for arr, _ in reads(png16(tmp_path / "rgb.png", rgb)):
        np.testing.assert_array_equal(arr, rgb)
    alpha = np.full((H, W), 65535, np.uint16)
    alpha[:, :2] = 0  # transparent
    alpha[0, 4] = 1  # the faintest alpha is still valid
    path = png16(tmp_path / "rgba.png", np.concatenate([rgb, alpha[None]]))
    want = np.ones((H, W), bool)
    want[:, :2] = False
    for i, (arr, valid) in enumerate(reads(path)):
        np.testing.assert_array_equal(arr, rgb)
        if i < 2:  # read_array drops the alpha
            np.testing.assert_array_equal(valid, want)


def test_16_bit_grey_and_grey_alpha_pngs(tmp_path):
    grey = values(1, seed=1)
    for arr, valid in reads(png16(tmp_path / "grey.png", grey)):
        np.testing.assert_array_equal(arr, grey)  # one band
        assert valid is None
    for arr, _ in reads(tmp_path / "grey.png", rgb=True):
        np.testing.assert_array_equal(arr, np.repeat(grey, 3, axis=0))  # three for an RGB sensor
    alpha = np.broadcast_to(np.where(np.arange(W) < 3, 0, 40000).astype(np.uint16), (1, H, W))
    for i, (arr, valid) in enumerate(reads(png16(tmp_path / "la.png", np.concatenate([grey, alpha])))):
        # Pillow calls a 16-bit grey+alpha PNG RGBA (so does the header): three equal bands for the probes; the
        # pretraining decode follows its sensor, one band for a one-band sensor as an 8-bit grey+alpha PNG
        np.testing.assert_array_equal(arr, grey if i == 0 else np.repeat(grey, 3, axis=0))
        if valid is not None:
            np.testing.assert_array_equal(valid, np.broadcast_to(np.arange(W) >= 3, (H, W)))


@pytest.mark.parametrize("c", [1, 3])
def test_16_bit_transparent_colour_is_not_valid(tmp_path, c):
    """tRNS of a 16-bit PNG names a 16-bit value: Pillow's own mask never matched it (every pixel valid)."""
    arr = values(c, seed=2)
    arr[:, 1, 2] = 5000
    arr[:, 3, 0] = 5000
    arr[0, 4, 4] = 5000  # one band only (RGB): not the colour
    path = png16(tmp_path / "trns.png", arr, nodata=5000)
    want = np.ones((H, W), bool)
    want[1, 2] = want[3, 0] = False
    if c == 1:
        want[4, 4] = False
    for i, (got, valid) in enumerate(reads(path)):
        np.testing.assert_array_equal(got, arr)
        if i < 2:
            np.testing.assert_array_equal(valid, want)


@pytest.mark.parametrize("orientation", range(1, 9))
def test_16_bit_png_is_turned_upright_as_pillow_turns_it(tmp_path, orientation):
    """The EXIF orientation turns a 16-bit PNG as `ImageOps.exif_transpose` turns it (Pillow's 8-bit read is the
    high byte of each value: the reference)."""
    rgba = values(4, seed=3)
    rgba[3, :, 0] = 0
    path = png16(tmp_path / "turned.png", rgba, orientation=orientation)
    with Image.open(path) as im:
        ref = np.asarray(ImageOps.exif_transpose(im)).transpose(2, 0, 1)
    for i, (arr, valid) in enumerate(reads(path)):
        assert arr.shape[1:] == ref.shape[1:]
        np.testing.assert_array_equal(arr >> 8, ref[:3])
        if i < 2:
            np.testing.assert_array_equal(valid, ref[3] > 0)


def test_pretraining_brings_16_bit_rgba_png_to_8_bit_range(tmp_path):
    """An 8-bit sensor (imagenet) gets round(v / 257) / 255 of the 16-bit values (`match_bit_depth`), the alpha
    as validity, in a folder and in a tar shard alike; 8-bit truncation gave (v >> 8) / 255."""
    import tarfile

    from geodino.data.images import TarShardSource

    rgb = np.array([1000, 30000, 65535], np.uint16)[:, None, None].repeat(H, 1).repeat(W, 2)  # 1000 >> 8 = 3, /257: 4
    alpha = np.full((1, H, W), 65535, np.uint16)
    alpha[0, 0] = 0
    folder = tmp_path / "photos"
    folder.mkdir()
    path = png16(folder / "deep.png", np.concatenate([rgb, alpha]))
    shard = tmp_path / "shard.tar"
    with tarfile.open(shard, "w") as tf:
        tf.add(path, arcname="s0.png")
    for src in (ImageFolderSource(folder, shuffle=False), TarShardSource(shard, shuffle=False)):
        sample = src.get(0, 0)
        np.testing.assert_allclose(sample["image"][:, 1, 1] * 255, [4, 117, 255], atol=1e-4)
        assert not sample["valid"][0].any() and sample["valid"][1:].all()


def test_header_says_uint16_for_a_16_bit_rgb_png(tmp_path):
    """The probes' DN rule takes an RGB PNG's dtype from its header: it must say what the read gives."""
    from geodino.data.headers import read_header
    from geodino.eval.datasets import read_array
    from geodino.eval.scaling import image_header

    path = png16(tmp_path / "rgb.png", values(3))
    assert read_header(path).dtype == "uint16"
    arr = read_array(path)
    assert image_header(path, read_array) == (arr.dtype, 3) == (np.dtype(np.uint16), 3)
    eight = tmp_path / "rgb8.png"
    Image.fromarray(np.zeros((H, W, 3), np.uint8)).save(eight)
    assert read_header(eight).dtype == "uint8"


def test_photo_array_of_an_image_opened_from_memory(tmp_path):
    """`photo_array` without `data` on an image opened from a file object reads the bytes from it and leaves it
    where it was (Pillow still loads it)."""
    rgb = values(3, seed=4)
    data = png16(tmp_path / "m.png", rgb).read_bytes()
    with Image.open(io.BytesIO(data)) as im:
        arr, valid = photo_array(im, rgb=True)
        im.load()
    np.testing.assert_array_equal(arr, rgb)
    assert valid is None
