"""`crops.hue_space: hsv`: the hue jitter of torchvision's ColorJitter (`adjust_hue`, the official recipe), batched
with per-crop factors; `yiq` (the default) stays the YIQ chroma rotation, and runs checkpointed before the key
resume with either the default or an explicit `yiq` (crops.* are fixed on resume)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torchvision.transforms.v2 import functional as TF

from geodino.data.augment import apply_photometric, draw_rgb_params
from geodino.data.config import CropsConfig
from geodino.errors import ConfigError


def _row(order=(3, 0, 1, 2), b=1.0, c=1.0, s=1.0, h=0.0, jitter=1.0) -> list[float]:
    return [jitter, *order, b, c, s, h, 0.0, 0.0, 0.0]


def _images(n: int, size: int = 20, seed: int = 0) -> torch.Tensor:
    """Smooth colours plus grey, black, white and pure/two-channel-tie pixels (the HSV branches and their ties)."""
    g = torch.Generator().manual_seed(seed)
    x = torch.nn.functional.avg_pool2d(torch.rand(n, 3, size, size, generator=g), 3, 1, 1)
    edge = torch.tensor([[0.0, 0, 0], [1, 1, 1], [0.4, 0.4, 0.4], [1, 0, 0], [0, 1, 0], [0, 0, 1], [1, 1, 0],
                         [0, 1, 1], [1, 0, 1], [0.6, 0.6, 0.2], [0.2, 0.6, 0.6], [0.6, 0.2, 0.6]])  # fmt: skip
    x[:, :, 0, : len(edge)] = edge.T
    return x


HUES = [0.0, 0.02, -0.05, 0.1, -0.1, 0.25, -0.37, 0.5, -0.5]


@pytest.mark.parametrize("subsets", [True, False])
def test_hsv_hue_equals_torchvision_adjust_hue_per_crop(subsets):
    x = _images(len(HUES))
    rows = torch.tensor([_row(h=h) for h in HUES])
    got = apply_photometric(x.clone(), rows, rgb=True, hue_space="hsv", subsets=subsets)
    want = torch.stack([TF.adjust_hue(img, h) for img, h in zip(x, HUES)])
    torch.testing.assert_close(got, want, atol=2e-6, rtol=0)


def test_hsv_hue_in_the_full_jitter_order_equals_torchvision():
    rng = np.random.default_rng(0)
    cfg = CropsConfig(jitter_prob=1.0, grayscale_prob=0.0, solarize_prob=0.0, hue=0.5)
    params = torch.from_numpy(np.stack([draw_rgb_params(rng, cfg, 0.0, False) for _ in range(8)]))
    x = _images(8, seed=1)
    got = apply_photometric(x.clone(), params, rgb=True, hue_space="hsv")
    ops = {
        0: lambda im, p: TF.adjust_brightness(im, float(p[5])),
        1: lambda im, p: TF.adjust_contrast(im, float(p[6])),
        2: lambda im, p: TF.adjust_saturation(im, float(p[7])),
        3: lambda im, p: TF.adjust_hue(im, float(p[8])),
    }
    want = []
    for im, p in zip(x, params):
        for op in p[1:5].round().long().tolist():
            im = ops[op](im, p)
        want.append(im)
    torch.testing.assert_close(got, torch.stack(want), atol=1e-5, rtol=0)


def test_yiq_stays_the_default_and_is_not_torchvision_hue():
    x = _images(3) * 0.5 + 0.25
    rows = torch.tensor([_row(h=0.1), _row(h=-0.1), _row(h=0.05)])
    default = apply_photometric(x.clone(), rows, rgb=True)
    torch.testing.assert_close(default, apply_photometric(x.clone(), rows, rgb=True, hue_space="yiq"))
    hsv = apply_photometric(x.clone(), rows, rgb=True, hue_space="hsv")
    assert (default - hsv).abs().mean() > 2 / 255  # a few DN apart on average at these factors
    with pytest.raises(ValueError, match="hue_space='hls'"):
        apply_photometric(x.clone(), rows, rgb=True, hue_space="hls")


def test_the_transform_applies_the_configured_hue_space():
    from geodino.data.crops import MultiCropTransform
    from geodino.data.sensors import get_sensor

    x = _images(4, seed=2)
    rows = torch.tensor([_row(h=h) for h in (0.1, -0.2, 0.3, 0.0)])
    sensor = get_sensor("imagenet")
    mean, std = torch.tensor(sensor.mean).view(3, 1, 1), torch.tensor(sensor.std).view(3, 1, 1)
    for space in ("hsv", None):
        tf = MultiCropTransform(CropsConfig(hue_space=space), sensor)
        want = apply_photometric(x.clone(), rows, rgb=True, hue_space=space)
        torch.testing.assert_close(tf.finish(x.clone(), rows), (want - mean) / std)


def test_config_values_and_resume_of_runs_written_before_the_key():
    from geodino.train.checkpointing import _RESUME_FIXED, changed_resume_field
    from geodino.train.distill.export import RESUME_FIXED as DISTILL_FIXED

    assert CropsConfig().hue_space is None and CropsConfig(hue_space="yiq").hue_space is None
    assert CropsConfig(hue_space="hsv").hue_space == "hsv"
    with pytest.raises(ConfigError, match=r"crops\.hue_space must be 'hsv'"):
        CropsConfig(hue_space="HSV").validate()
    before = {"batch_size": 8, "crops": {"hue": 0.1, "jitter_prob": 0.8}}  # a checkpoint's config, no key
    for space, refused in ((None, False), ("yiq", False), ("hsv", True)):
        now = {
            "batch_size": 8,
            "crops": {"hue": 0.1, "jitter_prob": 0.8, "hue_space": CropsConfig(hue_space=space).hue_space},
        }
        for fixed in (_RESUME_FIXED, DISTILL_FIXED):
            changed = changed_resume_field(before, now, fixed)
            assert (changed is not None) == refused and (not refused or changed[0] == "crops.hue_space")


def test_web_vits16_uses_torchvision_hue():
    from pathlib import Path

    from geodino.config import load_config
    from geodino.train.config import PretrainConfig

    root = Path(__file__).resolve().parents[2]
    assert load_config(PretrainConfig, root / "configs/pretrain/web_vits16.yaml").crops.hue_space == "hsv"
    assert load_config(PretrainConfig, root / "configs/pretrain/sat_vits16.yaml").crops.hue_space is None
    # the configs that mirror an official one (ColorJitter: HSV hue), and every stage built on them
    for name in ("vitl16", "vitl16_gram", "vitl16_highres", "vit7b16", "vit7b16_gram", "vit7b16_highres"):
        assert load_config(PretrainConfig, root / f"configs/pretrain/{name}.yaml").crops.hue_space == "hsv", name


def test_hsv_hue_runs_on_an_accelerator_without_host_reads():
    """On the meta device data-dependent ops (nonzero, item) cannot run: the HSV path uses none."""
    rows = torch.tensor([_row(h=0.1), _row(h=-0.3, jitter=0.0)])
    out = apply_photometric(torch.empty(2, 3, 8, 8, device="meta"), rows.to("meta"), rgb=True, hue_space="hsv")
    assert out.shape == (2, 3, 8, 8) and out.device.type == "meta"
