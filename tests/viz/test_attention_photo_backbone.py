"""`viz attention` of a photo given without --sensor: it is read by what the backbone says (its band count, and the
sensor its normalisation record carries when that fits the photo), not always as `imagenet` (3 bands), which made a
one-band backbone fail on a grey photo with a channel-count error. A photo that cannot have the backbone's bands is
one line, exit 2. A photo's transparent pixels (alpha 0) are nodata, as a raster's alpha band makes them (they were
read as black data). Rasters and an explicit --sensor read as before."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from geodino import cli
from geodino.backbones import load_backbone
from geodino.errors import InputError
from geodino.models import build_model
from geodino.models.checkpoints import save_backbone
from geodino.viz.attention import attention_maps, read_input
from tests.test_bad_inputs import one_line_exit_2

GREY1 = "arch:vit_tiny?seed=0&in_chans=1&depth=1&patch_size=8"  # a tiny one-band backbone without a record
RGB3 = "arch:vit_tiny?seed=0&depth=1&patch_size=8"
FOUR = "arch:vit_tiny?seed=0&in_chans=4&depth=1&patch_size=8"
H, W = 24, 32


def _grey(tmp_path: Path, name: str = "grey.png") -> tuple[Path, np.ndarray]:
    grey = np.random.default_rng(0).integers(0, 256, size=(H, W), dtype=np.uint8)
    path = tmp_path / name
    Image.fromarray(grey, "L").save(path)
    return path, grey


def _rgb(tmp_path: Path, name: str = "rgb.png") -> tuple[Path, np.ndarray]:
    rgb = np.random.default_rng(1).integers(0, 256, size=(H, W, 3), dtype=np.uint8)
    path = tmp_path / name
    Image.fromarray(rgb, "RGB").save(path)
    return path, rgb


def _recorded(tmp_path: Path, rec: dict, in_chans: int) -> Path:
    """A tiny backbone export whose normalisation record is `rec`."""
    import torch

    torch.manual_seed(0)
    model = build_model("vit_tiny", patch_size=8, in_chans=in_chans, depth=1).eval()
    return Path(save_backbone(model, tmp_path / f"bb{in_chans}.pth", normalization=rec))


def test_the_command_reads_a_grey_photo_with_a_one_band_backbone(tmp_path, capsys):
    path, _ = _grey(tmp_path)
    out = tmp_path / "att"
    capsys.readouterr()
    assert cli.main(["viz", "attention", str(path), "-b", GREY1, "-o", str(out)]) == 0, capsys.readouterr().err
    captured = capsys.readouterr()
    assert "patch grid 4 x 3" in captured.out
    assert f"geodino: no --sensor given: {path} is read as one grey band of 8-bit DN (x/255)" in captured.err
    summary = json.loads((out / "attention.json").read_text())
    assert summary["bands"] == ["grey"] and summary["patch_grid"] == [3, 4]


def test_read_input_decodes_a_grey_photo_with_the_backbone_band_count(tmp_path):
    path, grey = _grey(tmp_path)
    bb = load_backbone(GREY1)
    sample = read_input(path, backbone=bb)
    assert sample["image"].shape == (1, H, W) and sample["bands"] == ["grey"]
    np.testing.assert_allclose(sample["image"][0], grey / 255.0, rtol=1e-6)
    assert attention_maps(bb, sample).grid == (3, 4)
    # an RGB backbone without a record reads it as before: imagenet, three equal bands, nothing said
    rgb_sample = read_input(path, backbone=load_backbone(RGB3))
    assert rgb_sample["image"].shape == (3, H, W) and rgb_sample["sensor"].name == "imagenet"
    assert "sensor_note" not in rgb_sample
    # an explicit --sensor reads as it did, whatever the backbone
    assert read_input(path, sensor="imagenet", backbone=bb)["image"].shape == (3, H, W)


def test_a_photo_that_cannot_have_the_backbone_bands_is_one_line(tmp_path, capsys):
    rgb_path, _ = _rgb(tmp_path)
    one_line_exit_2(
        capsys, tmp_path, "viz", "attention", rgb_path, "-b", FOUR, "-o", tmp_path / "att",
        expect=(f"image {rgb_path} is a photo of 3 bands (RGB) but backbone {FOUR} takes 4 bands", "--backbone"),
    )  # fmt: skip
    grey_path, _ = _grey(tmp_path)
    one_line_exit_2(
        capsys, tmp_path, "viz", "attention", grey_path, "-b", FOUR, "-o", tmp_path / "att",
        expect=(f"image {grey_path} is a greyscale photo (one band) but backbone {FOUR} takes 4 bands", ".tif"),
    )  # fmt: skip
    with pytest.raises(InputError, match=r"is a photo of 3 bands \(RGB\) but backbone .* takes 1 band; give a grey"):
        read_input(rgb_path, backbone=load_backbone(GREY1))


def test_a_photo_is_read_by_the_backbone_record_when_it_fits(tmp_path, capsys):
    # a one-band export recording its sensor: the grey photo takes its name, bands and scale
    pan = {"sensor": "pan8", "bands": ["pan"], "scale": 1 / 510, "mean": [0.3], "std": [0.1]}
    bb1 = load_backbone(str(_recorded(tmp_path, pan, 1)))
    path, grey = _grey(tmp_path)
    sample = read_input(path, backbone=bb1)
    assert sample["sensor"].name == "pan8" and sample["bands"] == ["pan"]
    np.testing.assert_allclose(sample["image"][0], grey / 510.0, rtol=1e-6)
    said = "is read with DN -> reflectance x*0.00196078 (the backbone's record: sensor pan8, in "
    assert said in sample["sensor_note"] and sample["sensor_note"].endswith("; --sensor to change)")
    # an RGB export recording 16-bit DN: an 8-bit photo does not fit it and is read as 8-bit RGB, saying why
    s2 = {"sensor": "s2rgb", "bands": ["B04", "B03", "B02"], "scale": 1e-4, "mean": [0.1] * 3, "std": [0.1] * 3}
    bb3 = _recorded(tmp_path, s2, 3)
    rgb_path, rgb = _rgb(tmp_path)
    sample = read_input(rgb_path, backbone=load_backbone(str(bb3)))
    assert sample["sensor"].name == "imagenet"
    np.testing.assert_allclose(sample["image"], rgb.transpose(2, 0, 1) / 255.0, rtol=1e-6)
    assert "the backbone's record, x*0.0001 (sensor s2rgb, in " in sample["sensor_note"]
    assert "scales 16-bit DN" in sample["sensor_note"] and "sidecar of" not in sample["sensor_note"]
    out = tmp_path / "att"
    capsys.readouterr()
    assert cli.main(["viz", "attention", str(rgb_path), "-b", str(bb3), "-o", str(out)]) == 0
    assert f"geodino: no --sensor given: {rgb_path} is read as 8-bit RGB" in capsys.readouterr().err


def test_transparent_pixels_of_a_photo_are_nodata(tmp_path):
    rgba = np.random.default_rng(2).integers(0, 256, size=(H, W, 4), dtype=np.uint8)
    rgba[..., 3] = 255
    rgba[:, :16, 3] = 0  # the left two 8 px patch columns are transparent
    path = tmp_path / "cut.png"
    Image.fromarray(rgba, "RGBA").save(path)
    sample = read_input(path)
    assert sample["image"].shape == (3, H, W)
    np.testing.assert_array_equal(sample["valid"], rgba[..., 3] > 0)
    window = read_input(path, window=(8, 0, 16, 16))["valid"]  # the window's own part of the mask
    assert not window[:, :8].any() and window[:, 8:].all()
    maps = attention_maps(load_backbone(RGB3), sample)
    assert maps.valid is not None
    np.testing.assert_array_equal(maps.valid, np.repeat([[False, False, True, True]], 3, axis=0))
