"""Batched photometric augmentation: per-crop parameters applied at once equal torchvision's per-image ops."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torchvision.transforms.v2 import functional as TF

from geodino.data.augment import (
    apply_photometric,
    band_param_count,
    draw_band_params,
    draw_rgb_params,
    gaussian_blur,
    rgb_param_count,
)
from geodino.data.crops import CropsConfig, MultiCropTransform
from geodino.data.sensors import Sensor, get_sensor


def _smooth(n: int, c: int = 3, size: int = 24, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.nn.functional.avg_pool2d(torch.rand(n, c, size, size, generator=g), 3, 1, 1)


def _row(order=(0, 1, 2, 3), b=1.0, c=1.0, s=1.0, h=0.0, jitter=1.0, gray=0.0, sigma=0.0, sol=0.0) -> list[float]:
    return [jitter, *order, b, c, s, h, gray, sigma, sol]


def _torchvision(img: torch.Tensor, row: list[float]) -> torch.Tensor:
    """One image through torchvision's functional ops in the row's order (hue left out: geodino's is YIQ)."""
    x = img.clamp(0, 1)
    if row[0]:
        for op in row[1:5]:
            if op == 0:
                x = TF.adjust_brightness(x, row[5])
            elif op == 1:
                x = TF.adjust_contrast(x, row[6])
            elif op == 2:
                x = TF.adjust_saturation(x, row[7])
    if row[9]:
        x = TF.rgb_to_grayscale(x, num_output_channels=3)
    if row[10]:
        x = TF.gaussian_blur(x, [9, 9], [row[10], row[10]])
    if row[11]:
        x = TF.solarize(x, 0.5)
    return x


def test_rgb_ops_equal_torchvision_per_image_in_each_crops_own_order():
    rows = [
        _row(order=(0, 1, 2, 3), b=1.3, c=0.7, s=1.2),
        _row(order=(2, 1, 0, 3), b=0.6, c=1.4, s=0.5),  # another order: results differ, clamping is not linear
        _row(order=(1, 0, 3, 2), b=1.1, c=0.9, s=0.0, gray=1.0),
        _row(jitter=0.0, b=2.0, c=2.0, s=2.0, sigma=1.3),  # jitter off: the factors must be ignored
        _row(b=1.2, sol=1.0),
        _row(b=0.9, c=1.1, s=1.3, sigma=0.4, sol=1.0),
    ]
    x = _smooth(len(rows)) * 1.2 - 0.1  # some values outside [0, 1]: clamped first, as torchvision's ColorJitter
    got = apply_photometric(x.clone(), torch.tensor(rows), rgb=True)
    want = torch.stack([_torchvision(img, r) for img, r in zip(x, rows)])
    assert torch.allclose(got, want, atol=1e-5), (got - want).abs().amax(dim=(1, 2, 3))
    assert not torch.allclose(want[0], _torchvision(x[0], _row(order=(2, 1, 0, 3), b=1.3, c=0.7, s=1.2)), atol=1e-3)
    assert torch.equal(got[3], gaussian_blur(x[3:4].clamp(0, 1), torch.tensor([1.3]))[0])


def test_hue_is_a_chroma_rotation_per_crop():
    x = _smooth(3) * 0.5 + 0.25  # inside [0, 1] after the shift: no clamping
    rows = torch.tensor([_row(h=0.0), _row(h=0.05), _row(h=-0.05)])
    y = apply_photometric(x.clone(), rows, rgb=True)
    assert torch.allclose(y[0], x[0], atol=1e-6)  # no shift, no change
    assert (y[1] - x[1]).abs().mean() > 1e-3  # a shift changes colours...
    luma = torch.tensor([0.299, 0.587, 0.114]).view(3, 1, 1)
    assert torch.allclose((y[1] * luma).sum(0), (x[1] * luma).sum(0), atol=1e-5)  # ...but not brightness (YIQ Y)
    back = apply_photometric(y[1:2].clone(), torch.tensor([_row(h=-0.05)]), rgb=True)
    assert torch.allclose(back[0], x[1], atol=1e-5)  # +h then -h is the identity
    single = apply_photometric(x[2:3].clone(), rows[2:3], rgb=True)
    assert torch.allclose(single[0], y[2], atol=1e-6)  # batching does not mix crops


def test_blur_per_image_sigma_equals_torchvision():
    x = _smooth(3, size=20)
    sigma = torch.tensor([0.3, 0.0, 1.7])
    rows = torch.tensor([_row(jitter=0.0, sigma=float(s)) for s in sigma])
    y = apply_photometric(x.clone(), rows, rgb=True)
    assert torch.equal(y[1], x[1])
    for i in (0, 2):
        want = TF.gaussian_blur(x[i], [9, 9], [float(sigma[i])] * 2)
        assert torch.allclose(y[i], want, atol=1e-6)


def test_multispectral_per_band_factors_and_no_clamp():
    c = 5
    x = _smooth(2, c=c) * 1.5  # reflectance above 1 stays above 1
    p = np.ones((2, band_param_count(c)), dtype=np.float32)
    p[0, 0] = 0.0  # crop 0: jitter off
    p[1, 1 : 1 + c] = np.linspace(0.8, 1.2, c)  # brightness per band
    p[1, 1 + c : 1 + 2 * c] = np.linspace(1.3, 0.7, c)  # contrast per band
    p[:, -1] = 0.0
    y = apply_photometric(x.clone(), torch.from_numpy(p), rgb=False)
    assert torch.equal(y[0], x[0])
    m = x[1].mean(dim=(-2, -1), keepdim=True)
    want = ((x[1] - m) * torch.from_numpy(p[1, 1 + c : 1 + 2 * c]).view(c, 1, 1) + m) * torch.from_numpy(
        p[1, 1 : 1 + c]
    ).view(c, 1, 1)
    assert torch.allclose(y[1], want, atol=1e-6) and y.max() > 1.0
    with pytest.raises(ValueError, match="5 bands need 12"):
        apply_photometric(x, torch.ones(2, 7), rgb=False)


def test_draws_follow_the_configured_probabilities():
    rng = np.random.default_rng(0)
    never = CropsConfig(jitter_prob=0.0, grayscale_prob=0.0, solarize_prob=0.0)
    rows = np.stack([draw_rgb_params(rng, never, blur_p=0.0, solarize=True) for _ in range(50)])
    assert rows.shape == (50, rgb_param_count()) and not rows[:, [0, 9, 10, 11]].any()
    always = CropsConfig(jitter_prob=1.0, grayscale_prob=1.0, solarize_prob=1.0, brightness=0.4, hue=0.1)
    rows = np.stack([draw_rgb_params(rng, always, blur_p=1.0, solarize=True) for _ in range(200)])
    assert rows[:, [0, 9, 11]].all() and (rows[:, 10] >= 0.1).all() and (rows[:, 10] <= 2.0).all()
    assert (np.sort(rows[:, 1:5], axis=1) == np.arange(4)).all()  # each order is a permutation
    assert len({tuple(r) for r in rows[:, 1:5]}) > 10  # ... and orders vary
    assert 0.6 <= rows[:, 5].min() and rows[:, 5].max() <= 1.4 and abs(rows[:, 8]).max() <= 0.1
    half = CropsConfig(jitter_prob=0.5)
    on = np.mean([draw_band_params(rng, half, 4, blur_p=0.0)[0] for _ in range(400)])
    assert 0.4 < on < 0.6


MS4 = Sensor("ms", ("a", "b", "c", "d"), 1.0, (0.1,) * 4, (0.2,) * 4, False)


@pytest.mark.parametrize("sensor", [get_sensor("imagenet"), MS4])
def test_deferred_crops_finished_in_a_batch_equal_per_sample_crops(sensor):
    """photometric=False + finish on the stacked crops gives exactly the crops of the per-sample call."""
    cfg = CropsConfig(global_size=16, local_size=8, n_local=3, jitter_prob=1.0, grayscale_prob=0.5, solarize_prob=0.5)
    tf = MultiCropTransform(cfg, sensor)
    img = _smooth(1, c=sensor.n_bands, size=40)[0].numpy()
    direct = tf({"image": img}, np.random.default_rng(3))
    deferred = tf({"image": img}, np.random.default_rng(3), photometric=False)
    assert "global_params" not in direct and len(deferred["local_params"]) == 3
    for kind in ("global", "local"):
        done = tf.finish(torch.stack(deferred[f"{kind}_crops"]), torch.from_numpy(np.stack(deferred[f"{kind}_params"])))
        assert torch.allclose(done, torch.stack(direct[f"{kind}_crops"]), atol=1e-6), kind


def test_finish_ignores_autocast_and_keeps_the_dtype():
    """Under bf16 autocast (Lightning bf16-mixed wraps the step) the colour step still runs in float32."""
    tf = MultiCropTransform(CropsConfig(jitter_prob=1.0, hue=0.1), get_sensor("imagenet"))
    x = _smooth(4, size=16)
    params = torch.tensor([_row(h=0.05, sigma=1.0, b=1.2), _row(s=0.5), _row(c=1.3), _row(jitter=0.0)])
    ref = tf.finish(x, params)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        auto = tf.finish(x, params)
    assert auto.dtype == torch.float32 and torch.equal(auto, ref)
    half = tf.finish(x.bfloat16(), params)
    assert half.dtype == torch.bfloat16 and torch.allclose(half.float(), ref, atol=0.05)


def _drawn(n: int, rgb: bool, c: int = 3) -> torch.Tensor:
    cfg = CropsConfig(jitter_prob=0.7, grayscale_prob=0.3, solarize_prob=0.5, hue=0.1)
    rng = np.random.default_rng(0)
    rows = [draw_rgb_params(rng, cfg, 0.5, True) if rgb else draw_band_params(rng, cfg, c, 0.5) for _ in range(n)]
    return torch.from_numpy(np.stack(rows))


@pytest.mark.parametrize("rgb", [True, False])
def test_every_crop_form_equals_the_subset_form(rgb):
    """On an accelerator each op runs on every crop and `where` keeps it where it applies (no synchronisation);
    on the CPU it runs on the crops that need it. Both give the same crops."""
    c = 3 if rgb else 4
    params = _drawn(24, rgb, c)
    x = _smooth(24, c=c, size=20) * 1.2 - 0.1
    subset = apply_photometric(x.clone(), params, rgb=rgb, subsets=True)
    every = apply_photometric(x.clone(), params, rgb=rgb, subsets=False)
    assert not torch.allclose(subset, x.clamp(0, 1) if rgb else x, atol=1e-3)  # the draws changed the crops
    torch.testing.assert_close(every, subset, atol=1e-6, rtol=0)


@pytest.mark.parametrize("sensor", [get_sensor("imagenet"), MS4])
def test_the_device_form_never_waits_for_the_device(sensor):
    """The colour step on an accelerator must not read device values on the host (`nonzero`, `.any()` in an `if`,
    `.item()`): each such read waited for the GPU's queue, 36 per batch before. On the meta device, where
    data-dependent ops cannot run at all, the colour step must go through, and it dispatches no such op."""
    from torch.utils._python_dispatch import TorchDispatchMode

    waits = ("nonzero", "_local_scalar_dense", "masked_select", "item")
    seen: list[str] = []

    class Spy(TorchDispatchMode):
        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            seen.append(str(func))
            return func(*args, **(kwargs or {}))

    rgb, c = sensor.n_bands == 3, sensor.n_bands
    params = _drawn(6, rgb, c)
    out = apply_photometric(torch.empty(6, c, 16, 16, device="meta"), params.to("meta"), rgb=rgb)  # the default
    assert out.shape == (6, c, 16, 16) and out.device.type == "meta"
    with Spy():
        apply_photometric(torch.rand(6, c, 16, 16), params, rgb=rgb, subsets=False)
    assert seen and not [op for op in seen if any(w in op for w in waits)]
