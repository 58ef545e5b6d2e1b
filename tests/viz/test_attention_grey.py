"""`viz attention` of a one-band backbone on a greyscale photo: the image is decoded with the band count of the sensor
it is read by, so a grey PNG (8 or 16 bits) or JPEG is one band for a one-band sensor. It was always decoded as RGB
(three equal bands), so a one-band sensor refused it ("image ... has 3 bands but sensor 'pan' has 1")."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from geodino import cli
from geodino.backbones import load_backbone
from geodino.data.sensors import Sensor
from geodino.viz.attention import read_input, visualize_attention
from tests.data.test_photo_16bit import png16

SPEC = "arch:vit_tiny?bands=1&depth=1&patch_size=8"  # a tiny one-band backbone
H, W = 24, 32
PAN = Sensor("pan", ("pan",), 1 / 255, (0.5,), (0.2,), False)
PAN16 = Sensor("pan16", ("pan",), 1 / 65535, (0.5,), (0.2,), False)


def _grey8() -> np.ndarray:
    blocks = np.random.default_rng(0).integers(0, 256, size=(H // 8, W // 8), dtype=np.uint8)
    return np.kron(blocks, np.ones((8, 8), np.uint8))  # flat 8 px blocks: JPEG keeps them close


def _write(tmp_path, name: str) -> tuple[object, np.ndarray]:
    """A grey photo `name` and its one band as stored [H,W]."""
    path = tmp_path / name
    if name.endswith("16.png"):
        grey = np.random.default_rng(1).integers(256, 65536, size=(1, H, W), dtype=np.uint16)
        return png16(path, grey), grey[0]
    grey = _grey8()
    buf = io.BytesIO()
    Image.fromarray(grey, "L").save(buf, "JPEG" if name.endswith(".jpg") else "PNG", quality=95)
    path.write_bytes(buf.getvalue())
    if name.endswith(".jpg"):
        with Image.open(path) as im:
            grey = np.asarray(im)  # as JPEG stored it
    return path, grey


@pytest.mark.parametrize("name", ["grey8.png", "grey.jpg", "grey16.png"])
def test_a_one_band_backbone_shows_attention_on_a_grey_photo(tmp_path, name):
    path, grey = _write(tmp_path, name)
    sample = read_input(path, sensor=PAN)
    assert sample["image"].shape == (1, H, W) and sample["bands"] == ["pan"]
    dn = ((grey.astype(np.uint32) + 128) // 257) if grey.dtype == np.uint16 else grey  # 16 bits to 8-bit DN
    np.testing.assert_allclose(sample["image"][0], dn / 255, rtol=1e-6, atol=1.5 / 255 if name.endswith("jpg") else 0)
    bb = load_backbone(SPEC)
    assert bb.in_chans == 1
    files = visualize_attention(path, bb, tmp_path / "att", sensor=PAN)
    for key in ("image", "mean", "mask"):
        assert files[key].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_a_16_bit_grey_png_keeps_its_values_for_a_16_bit_sensor(tmp_path):
    path, grey = _write(tmp_path, "grey16.png")
    sample = read_input(path, sensor=PAN16)
    np.testing.assert_allclose(sample["image"][0], grey / 65535, rtol=1e-6)


def test_the_command_takes_a_grey_png_with_a_one_band_sensor_file(tmp_path, capsys):
    path, _ = _write(tmp_path, "grey8.png")
    yaml = tmp_path / "pan.yaml"
    yaml.write_text("name: pan\nbands: [pan]\nscale: 0.00392156862745098\nmean: [0.5]\nstd: [0.2]\nrgb_like: false\n")
    out = tmp_path / "att"
    assert cli.main(["viz", "attention", str(path), "-b", SPEC, "--sensor", str(yaml), "-o", str(out)]) == 0, (
        capsys.readouterr().err
    )
    assert "patch grid 4 x 3" in capsys.readouterr().out  # width x height of 8 px patches
    assert (out / "attention.json").is_file() and (out / "attention_mean.png").is_file()
