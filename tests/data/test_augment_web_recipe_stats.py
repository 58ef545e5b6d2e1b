"""The web recipe's crops (configs/pretrain/web_vits16.yaml) draw the official DINOv3 augmentation: per crop colour
jitter p 0.8, grayscale 0.2, blur 1.0 / 0.1 / 0.5 (global 1, global 2, local; the intended probabilities, not the
released inverted ones), solarize 0.2 on the second global crop only, horizontal flips 0.5 and no vertical flips or
90-degree turns, crop areas within the RandomResizedCrop scales, ImageNet mean/std. Checked on drawn crops within
4 binomial standard errors (1,200 images), so a changed default or a swapped probability fails."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from geodino.config import load_config
from geodino.data.crops import MultiCropTransform, _resize
from geodino.data.sensors import get_sensor
from geodino.train.config import PretrainConfig

WEB = Path(__file__).resolve().parents[2] / "geodino" / "configs" / "pretrain" / "web_vits16.yaml"
N = 1200


def _near(frac: float, p: float, n: int) -> bool:
    return abs(frac - p) <= 4 * (p * (1 - p) / n) ** 0.5 + 1e-12


@pytest.fixture(scope="module")
def draws():
    cfg = load_config(PretrainConfig, WEB)
    crops = cfg.crops
    crops.global_size, crops.local_size, crops.n_local = 16, 8, 2  # small outputs; probabilities unchanged
    t = MultiCropTransform(crops, get_sensor("imagenet"), get_sensor(cfg.data.norm_sensor))
    image = np.random.default_rng(0).random((3, 24, 32), dtype=np.float32)
    out = [t({"image": image}, np.random.default_rng([5, i]), photometric=False) for i in range(N)]
    return t, image, out


def test_photometric_probabilities(draws):
    t, _, out = draws
    g = np.stack([np.stack(o["global_params"]) for o in out])  # [N, 2, 12]
    loc = np.concatenate([np.stack(o["local_params"]) for o in out])
    jit, gray, sigma, sol = 0, 9, 10, 11
    for k, blur in ((0, 1.0), (1, 0.1)):
        assert _near(g[:, k, jit].mean(), 0.8, N) and _near(g[:, k, gray].mean(), 0.2, N)
        assert _near((g[:, k, sigma] > 0).mean(), blur, N)
        assert _near(g[:, k, sol].mean(), 0.2 if k == 1 else 0.0, N)
    n = len(loc)
    assert _near(loc[:, jit].mean(), 0.8, n) and _near(loc[:, gray].mean(), 0.2, n)
    assert _near((loc[:, sigma] > 0).mean(), 0.5, n) and loc[:, sol].max() == 0
    on = g[:, :, jit] > 0
    b, c, s, h = (g[:, :, i][on] for i in (5, 6, 7, 8))
    assert b.min() >= 0.6 and b.max() <= 1.4 and c.min() >= 0.6 and c.max() <= 1.4
    assert s.min() >= 0.8 and s.max() <= 1.2 and np.abs(h).max() <= 0.1 and np.abs(h).max() > 0.09
    blurred = g[:, :, sigma][g[:, :, sigma] > 0]
    assert blurred.min() >= 0.1 and blurred.max() <= 2.0
    assert torch.allclose(t.mean.flatten(), torch.tensor([0.485, 0.456, 0.406]))
    assert torch.allclose(t.std.flatten(), torch.tensor([0.229, 0.224, 0.225]))
    assert t.cfg.hue_space == "hsv" and not t.cfg.official_blur_bug


def test_geometry_horizontal_flips_only_and_scales(draws):
    _, image, out = draws
    src = torch.from_numpy(image)
    flipped, areas = [], []
    for o in out:
        for crop, (left, top, right, bottom) in zip(o["global_crops"], o["global_boxes"], strict=True):
            base = _resize(src[:, top:bottom, left:right], 16)
            same, mirrored = torch.allclose(crop, base), torch.allclose(crop, base.flip(-1))
            assert same or mirrored  # no vertical flip, no 90-degree turn
            flipped.append(mirrored)
            areas.append((right - left) * (bottom - top) / (24 * 32))
    assert _near(float(np.mean(flipped)), 0.5, len(flipped))
    assert 0.30 <= min(areas) and max(areas) <= 1.0  # 0.32 of the area, less a rounded pixel
    local = [(r - lf) * (b - tp) / (24 * 32) for o in out for lf, tp, r, b in o["local_boxes"]]
    assert 0.04 <= min(local) and max(local) <= 0.34
