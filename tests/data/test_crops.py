"""Multi-crop: official defaults, Gram crop of the same ground, blur probabilities, crop sets, nodata-aware boxes."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from geodino.data.crops import CropsConfig, CropSet, MultiCropTransform, choose_crop_set, crop_sets
from geodino.data.sensors import Sensor, get_sensor
from geodino.errors import ConfigError

IDENT = Sensor("coords", ("x", "y", "z"), 1.0, (0.0, 0.0, 0.0), (1.0, 1.0, 1.0), False)


def test_defaults_are_official():
    c = CropsConfig()
    assert (c.n_global, c.n_local, c.global_size, c.local_size) == (2, 8, 224, 96)
    assert c.global_scale == [0.32, 1.0] and c.local_scale == [0.05, 0.32]
    assert c.mask_ratio == [0.1, 0.5] and c.mask_probability == 0.5
    assert crop_sets(c)[0].gram_size is None
    assert crop_sets(CropsConfig(gram=True))[0].gram_size == 448


def test_shapes_rgb_and_multispectral():
    rng = np.random.default_rng(0)
    cfg = CropsConfig(global_size=32, local_size=16, n_local=3, gram=True)
    rgb = MultiCropTransform(cfg, get_sensor("sat493m"))
    out = rgb({"image": rng.random((3, 80, 90), dtype=np.float32)}, rng)
    assert [t.shape for t in out["global_crops"]] == [(3, 32, 32)] * 2
    assert [t.shape for t in out["local_crops"]] == [(3, 16, 16)] * 3
    assert [t.shape for t in out["gram_crops"]] == [(3, 64, 64)] * 2
    ms = MultiCropTransform(cfg, get_sensor("sentinel2_l2a"))
    out = ms({"image": rng.random((12, 80, 90), dtype=np.float32) * 0.3}, rng)
    assert out["global_crops"][0].shape == (12, 32, 32) and torch.isfinite(out["global_crops"][0]).all()


def _clean_cfg(**kw):
    return CropsConfig(
        global_size=32,
        local_size=16,
        n_local=2,
        gram=True,
        flips=False,
        rot90=False,
        jitter_prob=0.0,
        grayscale_prob=0.0,
        solarize_prob=0.0,
        blur_probs=[0.0, 0.0, 0.0],
        **kw,
    )


def test_gram_crop_covers_the_same_ground():
    h, w = 120, 150
    yy, xx = np.meshgrid(np.arange(h, dtype=np.float32), np.arange(w, dtype=np.float32), indexing="ij")
    image = np.stack([xx, yy, xx + yy])  # each pixel holds its own coordinates
    tf = MultiCropTransform(_clean_cfg(), IDENT)
    for seed in range(5):
        out = tf({"image": image}, np.random.default_rng(seed))
        for g, gram, (x0, y0, x1, y1) in zip(out["global_crops"], out["gram_crops"], out["global_boxes"]):
            down = torch.nn.functional.avg_pool2d(gram[None], 2)[0]
            assert torch.allclose(down, g, atol=1.0)  # same content at half the resolution
            # both span the box: the corner pixels hold the box's corner coordinates
            for t in (g, gram):
                assert abs(t[0, 0, 0].item() - x0) < 3 and abs(t[0, 0, -1].item() - (x1 - 1)) < 3
                assert abs(t[1, 0, 0].item() - y0) < 3 and abs(t[1, -1, 0].item() - (y1 - 1)) < 3


@pytest.mark.parametrize("vflips", [True, False])
def test_vflips_false_keeps_the_official_horizontal_flips_only(vflips):
    """Pixels hold their own coordinates: a crop flipped left-right has x falling along a row, one flipped upside
    down has y falling down a column. With `vflips: false` (photos: the official recipe) only the first happens."""
    h, w = 64, 64
    yy, xx = np.meshgrid(np.arange(h, dtype=np.float32), np.arange(w, dtype=np.float32), indexing="ij")
    cfg = _clean_cfg(n_global=2)
    cfg.flips, cfg.vflips, cfg.gram = True, vflips, False
    tf = MultiCropTransform(cfg, IDENT)
    seen_h = seen_v = 0
    for seed in range(40):
        out = tf({"image": np.stack([xx, yy, xx + yy])}, np.random.default_rng(seed))
        for crop in out["global_crops"] + out["local_crops"]:
            seen_h += bool(crop[0, 0, -1] < crop[0, 0, 0])
            seen_v += bool(crop[1, -1, 0] < crop[1, 0, 0])
    assert seen_h > 20  # horizontal flips either way (about half of 160 crops)
    assert (seen_v > 20) if vflips else (seen_v == 0)


def test_web_configs_flip_horizontally_only():
    from pathlib import Path

    from geodino.config import load_config
    from geodino.train.config import PretrainConfig

    root = Path(__file__).resolve().parents[2] / "geodino" / "configs" / "pretrain"
    for name in ("web_vits16.yaml", "vitl16.yaml"):
        crops = load_config(PretrainConfig, root / name).crops
        assert crops.flips and not crops.vflips and not crops.rot90, name
    assert load_config(PretrainConfig, root / "sat_vits16.yaml").crops.vflips  # overhead imagery keeps them


def test_gram_follows_flips_and_rotations():
    image = np.random.default_rng(0).random((3, 64, 64)).astype(np.float32)
    cfg = _clean_cfg()
    cfg.flips, cfg.rot90 = True, True
    tf = MultiCropTransform(cfg, IDENT)
    for seed in range(6):
        out = tf({"image": image}, np.random.default_rng(seed))
        for g, gram in zip(out["global_crops"], out["gram_crops"]):
            down = torch.nn.functional.interpolate(gram[None], size=32, mode="area")[0]
            assert (down - g).abs().mean() < 0.05


def test_blur_probabilities_intended_and_official_bug():
    assert MultiCropTransform(CropsConfig(), get_sensor("imagenet")).blur_probs == [1.0, 0.1, 0.5]
    bug = MultiCropTransform(CropsConfig(official_blur_bug=True), get_sensor("imagenet")).blur_probs
    assert bug == pytest.approx([0.0, 0.9, 0.5])


def test_colour_ops_only_for_rgb_like():
    rng = np.random.default_rng(0)
    img = rng.random((3, 40, 40), dtype=np.float32)
    cfg = CropsConfig(
        global_size=16,
        local_size=8,
        n_local=0,
        flips=False,
        rot90=False,
        grayscale_prob=1.0,
        blur_probs=[0, 0, 0],
        jitter_prob=0.0,
        solarize_prob=0.0,
    )
    rgb = MultiCropTransform(cfg, Sensor("rgb", ("R", "G", "B"), 1.0, (0, 0, 0), (1, 1, 1), True))
    g = rgb({"image": img}, np.random.default_rng(1))["global_crops"][0]
    assert torch.allclose(g[0], g[1]) and torch.allclose(g[1], g[2])  # grayscale applied
    ms = MultiCropTransform(cfg, IDENT)
    g = ms({"image": img}, np.random.default_rng(1))["global_crops"][0]
    assert not torch.allclose(g[0], g[1])  # never grayscale for a non-RGB sensor


def test_nodata_aware_boxes_and_fill():
    image = np.ones((3, 100, 100), dtype=np.float32)
    valid = np.zeros((100, 100), dtype=bool)
    valid[:, 60:] = True
    cfg = _clean_cfg(min_valid_fraction=0.9)
    cfg.global_scale = [0.05, 0.15]
    tf = MultiCropTransform(cfg, IDENT)
    out = tf({"image": image, "valid": valid}, np.random.default_rng(0))
    for x0, _, _, _ in out["global_boxes"]:
        assert x0 >= 50  # at least 90 % of the box on valid pixels
    mean = Sensor("m", ("a", "b", "c"), 1.0, (0.5, 0.5, 0.5), (1.0, 1.0, 1.0), False)
    cfg2 = _clean_cfg(min_valid_fraction=0.0)
    cfg2.global_scale = [1.0, 1.0]
    cfg2.ratio = [1.0, 1.0]
    out = MultiCropTransform(cfg2, mean)({"image": image, "valid": valid}, np.random.default_rng(0))
    g = out["global_crops"][0]
    assert g[:, :, :10].abs().max() < 1e-5  # nodata filled with the mean -> 0 after standardising
    assert torch.allclose(g[:, :, -5:], torch.full_like(g[:, :, -5:], 0.5))


def test_crop_set_choice_is_per_step_and_weighted():
    cfg = CropsConfig(gram=True, crop_sets=[CropSet(224, 96, None, 0.7), CropSet(256, 112, 512, 0.3)])
    sets = crop_sets(cfg)
    assert sets[0].gram_size == 448 and sets[1].gram_size == 512
    picks = [choose_crop_set(cfg, 3, s) for s in range(2000)]
    assert picks == [choose_crop_set(cfg, 3, s) for s in range(2000)]  # same on every rank
    assert 0.65 < picks.count(0) / 2000 < 0.75
    with pytest.raises(ConfigError, match="probabilities sum to"):
        CropsConfig(crop_sets=[CropSet(224, 96, None, 0.5)]).validate()


def test_the_official_horizontal_flips_keyword_means_horizontal_only():
    """`build_ssl_loader(..., horizontal_flips=True)` (the official augmentation's name) switched `crops.flips`,
    which flips vertically too unless `vflips` is false."""
    from geodino.data.loaders import _legacy_configs

    _, crops = _legacy_configs(["x.tar"], {"kind": "tar", "horizontal_flips": True})
    assert crops.flips and not crops.vflips and not crops.rot90  # the official augmentation has no 90-degree turns
    _, crops = _legacy_configs(["x.tar"], {"kind": "tar", "horizontal_flips": False})
    assert not crops.flips and not crops.rot90
