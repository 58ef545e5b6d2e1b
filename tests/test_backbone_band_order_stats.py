"""A 3-band checkpoint loaded with its own bands in another order (`bands=blue,green,red`): the kernels move by name,
and the default normalisation (ImageNet, SAT-493M for `*sat493m*` files) must move with them, so the BGR backbone
on BGR data computes what the RGB backbone computes on the same image in RGB."""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest
import torch

from geodino.backbones import load_backbone
from geodino.backbones.normalization import IMAGENET_MEAN, IMAGENET_STD
from geodino.models import build_model
from geodino.models.checkpoints import save_backbone


def _rgb_file(path: Path) -> Path:
    torch.manual_seed(0)
    model = build_model("vit_tiny", depth=2, layerscale_init=1.0)
    with torch.no_grad():
        model.patch_embed.proj.weight.normal_()  # distinct kernels per band
    return save_backbone(model, path)


def _load(spec: str, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return load_backbone(spec, **kw)


def test_bgr_order_moves_imagenet_statistics(tmp_path):
    path = _rgb_file(tmp_path / "rgb.pth")
    rgb = _load(str(path))
    bgr = _load(str(path), bands=["blue", "green", "red"])
    torch.testing.assert_close(bgr.mean.flatten(), torch.tensor(IMAGENET_MEAN[::-1]))
    torch.testing.assert_close(bgr.std.flatten(), torch.tensor(IMAGENET_STD[::-1]))
    x = torch.randint(0, 256, (2, 3, 32, 48), dtype=torch.uint8)
    want = rgb.features(rgb.preprocess(x))[1][0]
    got = bgr.features(bgr.preprocess(x.flip(1)))[1][0]
    torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-5)


def test_bgr_order_keeps_sat493m_default_in_order(tmp_path):
    path = _rgb_file(tmp_path / "dinov3_vitt16_pretrain_sat493m-test.pth")
    rgb = _load(str(path))
    bgr = _load(f"{path}?bands=B,G,R")
    assert rgb.norm_source.startswith("sensor sat493m")
    assert bgr.norm_source.startswith("sensor sat493m")
    torch.testing.assert_close(bgr.mean.flatten(), rgb.mean.flatten().flip(0))
    torch.testing.assert_close(bgr.std.flatten(), rgb.std.flatten().flip(0))
    assert [b.lower() for b in bgr.sensor.bands] == [b.lower() for b in rgb.sensor.bands][::-1]
    x = torch.rand(1, 3, 32, 32)
    torch.testing.assert_close(
        bgr.features(bgr.normalize(x.flip(1)))[1][0], rgb.features(rgb.normalize(x))[1][0], atol=1e-5, rtol=1e-5
    )


def test_other_bands_keep_identity_default(tmp_path):
    """Not a reordering (a fourth band): the 3-band defaults do not apply, as before."""
    path = _rgb_file(tmp_path / "rgb.pth")
    fb = _load(str(path), bands=["nir", "blue", "green", "red"])
    assert fb.mean.flatten().tolist() == [0.0] * 4 and fb.std.flatten().tolist() == [1.0] * 4


def test_sat493m_file_keeps_its_statistics_for_bands_named_as_its_kernels_match(tmp_path):
    """Landsat 7 SR_B1, SR_B2, SR_B3 (blue, green, red: the kernels match them so) on a *sat493m* file: the SAT-493M
    statistics move with the kernels, as a recorded mean/std does; ImageNet's were used, with a warning."""
    from geodino.data.normalization import sensor_record
    from geodino.data.sensors import get_sensor

    path = _rgb_file(tmp_path / "dinov3_vitt16_pretrain_sat493m-test.pth")
    rec = save_backbone(
        _load(str(path)).model, tmp_path / "rec.pth", normalization=sensor_record(get_sensor("sat493m"))
    )
    rgb = _load(str(path))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        landsat = load_backbone(f"{path}?bands=SR_B1,SR_B2,SR_B3")
        s2 = load_backbone(f"{path}?bands=B04,B03,B02")  # the file's own bands: refused ("not a band of sat493m")
    recorded = _load(f"{rec}?bands=SR_B1,SR_B2,SR_B3")
    torch.testing.assert_close(landsat.mean.flatten(), rgb.mean.flatten().flip(0))
    torch.testing.assert_close(landsat.std.flatten(), recorded.std.flatten())
    assert landsat.norm_source.startswith("sensor sat493m") and landsat.bands == ["SR_B1", "SR_B2", "SR_B3"]
    x = torch.rand(1, 3, 32, 32)
    torch.testing.assert_close(
        landsat.features(landsat.normalize(x.flip(1)))[1][0], rgb.features(rgb.normalize(x))[1][0], atol=1e-5, rtol=1e-5
    )
    torch.testing.assert_close(s2.mean.flatten(), rgb.mean.flatten())
    torch.testing.assert_close(s2.features(s2.normalize(x))[1][0], rgb.features(rgb.normalize(x))[1][0])


def test_sat493m_file_adapted_to_other_bands_says_its_default_lacks_them(tmp_path):
    path = _rgb_file(tmp_path / "dinov3_vitt16_pretrain_sat493m-test.pth")
    with pytest.warns(UserWarning, match=r"after band adaptation to bands its default \(sat493m\) lacks: using Image"):
        with pytest.warns(UserWarning, match=r"1 band \(nir\) match(es)? no band of checkpoint"):
            fb = load_backbone(f"{path}?bands=nir,red,green")
    assert fb.norm_source == "none recorded: ImageNet mean/std (the 3-band default)"
