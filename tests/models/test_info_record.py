"""`geodino info FILE` shows the normalisation record a file carries (sensor, band names, DN scale/offset,
mean/std, where it was read), or says none is recorded and what geodino then assumes; it showed the band count
only."""

from __future__ import annotations

import pytest

from geodino.errors import InputError
from geodino.models import build_model
from geodino.models.checkpoints.save import save_backbone
from geodino.models.info import describe

RECORD = {
    "sensor": "mysat",
    "bands": ["blue", "green", "red", "nir"],
    "scale": 2.75e-05,
    "offset": -0.2,
    "mean": [0.11, 0.12, 0.13, 0.31],
    "std": [0.05, 0.06, 0.07, 0.21],
}


def _tiny(in_chans: int):
    return build_model("vit_small", in_chans=in_chans, depth=1, embed_dim=32, num_heads=2, patch_size=8)


@pytest.mark.parametrize("name", ["b.safetensors", "b.pth"])
def test_info_shows_the_record(tmp_path, name):
    path = save_backbone(_tiny(4), tmp_path / name, normalization=RECORD)
    info = describe(str(path))
    assert info["bands"] == 4
    assert "mysat" in info["normalization"] and "blue, green, red, nir" in info["normalization"]
    assert info["norm_bands"] == "blue, green, red, nir"
    assert info["dn_scale"] == "reflectance = DN * 2.75e-05 + -0.2"
    assert info["norm_mean"] == "0.11, 0.12, 0.13, 0.31"
    assert info["norm_std"] == "0.05, 0.06, 0.07, 0.21"


def test_info_without_a_record_says_what_is_assumed(tmp_path):
    path = save_backbone(_tiny(4), tmp_path / "b.safetensors")
    info = describe(str(path))
    assert info["normalization"].startswith("none recorded: geodino assumes mean 0 / std 1")
    assert "/ 10000" in info["normalization"] and "norm_mean" not in info
    rgb = describe(str(save_backbone(_tiny(3), tmp_path / "rgb.safetensors")))
    assert "ImageNet mean/std" in rgb["normalization"]


def test_info_cli_prints_the_rows(tmp_path, capsys):
    from geodino.cli import main

    path = save_backbone(_tiny(4), tmp_path / "b.safetensors", normalization=RECORD)
    assert main(["info", str(path)]) == 0
    out = capsys.readouterr().out
    assert "norm_mean" in out and "0.11, 0.12, 0.13, 0.31" in out and "2.75e-05" in out


def test_a_bad_image_size_names_the_python_keyword_too(tmp_path):
    path = save_backbone(_tiny(3), tmp_path / "b.safetensors")
    with pytest.raises(InputError, match=r"^--image-size takes H or H W in pixels \(image_size=\[H\] or \[H, W\] in "):
        describe(str(path), image_size=[32, 32, 32])
    assert describe(str(path), image_size=[32])["grid"] == "4x4 patches"  # patch 8
