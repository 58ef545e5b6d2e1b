"""Audit of the training recipe around the losses against facebookresearch/dinov3: each test fails on the code
before its fix (the commit message says how it was found)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from geodino.data.collate import collate_ssl
from geodino.data.config import CropsConfig
from geodino.data.crops import MultiCropTransform
from geodino.data.sensors import get_sensor
from geodino.train.ssl import SSLMetaArch
from tests.train.ssl_fixtures import tiny_cfg


def _batch(n_global: int, n_local: int, B: int) -> dict:
    """A loader batch of B images with `n_global` global and `n_local` local crops each (32 / 16 px, patch 8)."""
    cfg = CropsConfig(n_global=n_global, n_local=n_local, global_size=32, local_size=16)
    tf = MultiCropTransform(cfg, get_sensor("sat493m"))
    samples = [tf({"image": torch.rand(3, 64, 64)}, np.random.default_rng(b)) for b in range(B)]
    return collate_ssl(samples, step=0, source="a", seed=0, patch_size=8)


@pytest.mark.parametrize(("n_global", "n_local"), [(1, 4), (4, 2), (2, 4)])
def test_the_batch_says_how_many_global_crops_each_image_has(n_global: int, n_local: int) -> None:
    # crops.n_global accepts any count >= 1 but the batch did not carry it: SSLMetaArch assumed 2 and split the
    # rows of global_crops into the wrong (crops, images), pairing crops of different images in every loss term
    # (n_global=1, B=4 was read as 2 crops of 2 images with 8 local crops each)
    B = 4
    batch = _batch(n_global, n_local, B)
    assert batch["n_global_crops"] == n_global
    x = SSLMetaArch(tiny_cfg(), total_iters=4)._inputs(batch)
    assert (x.n_global, x.batch_size, x.n_local) == (n_global, B, n_local)


def test_head_warmup_reads_the_global_crop_count_from_the_batch() -> None:
    from geodino.losses.dino import DINOLoss
    from geodino.losses.ibot import IBOTPatchLoss
    from geodino.models import build_model
    from geodino.models.heads import DINOHead
    from geodino.train.teacher_heads import _warmup_losses

    torch.manual_seed(0)
    model = build_model("vit_tiny", patch_size=8, depth=1, n_storage_tokens=0).eval()
    heads = torch.nn.ModuleDict({"dino_head": DINOHead(192, 16, 8, 4), "ibot_head": DINOHead(192, 12, 8, 4)})
    losses = (DINOLoss(16), IBOTPatchLoss(12))
    batch = _batch(1, 2, 4)
    # one global crop per image: no cross-view global pair, so the DINO global term has no pairs (0 / 0 = 0 terms);
    # with the default of 2 the 4 rows were read as 2 crops of 2 images and a global term was computed
    loss, loss_global, _ = _warmup_losses(model, heads, heads, batch, losses, 0.07, 2, "cpu")
    assert torch.isfinite(loss)
    assert loss_global.numel() == 1 and float(loss_global) == 0.0


def test_colour_ops_need_red_green_blue_bands() -> None:
    # a 3-band selection of an RGB-like sensor got the RGB colour jitter, grayscale and solarize whatever its
    # bands were: NAIP's colour infrared (N, R, G) was "desaturated" by mixing the near infrared into the others
    cfg = CropsConfig(global_size=32, local_size=16, n_local=2, jitter_prob=0.0, grayscale_prob=1.0)
    cfg.blur_probs = [0.0, 0.0, 0.0]
    cir = get_sensor("naip").select(["N", "R", "G"])
    tf = MultiCropTransform(cfg, cir)
    assert not tf.rgb
    image = torch.rand(3, 64, 64)
    out = tf({"image": image}, np.random.default_rng(0), photometric=False)
    raw = torch.stack(out["global_crops"])
    params = torch.from_numpy(np.stack(out["global_params"]))
    mean, std = torch.tensor(cir.mean).view(1, 3, 1, 1), torch.tensor(cir.std).view(1, 3, 1, 1)
    # jitter off, no blur: the multispectral step only standardises; the bands stay distinct
    torch.testing.assert_close(tf.finish(raw, params), (raw - mean) / std)


def test_colour_ops_see_blue_green_red_files_as_red_green_blue() -> None:
    # bands stored B, G, R: the luma weights (0.299 R + 0.587 G + 0.114 B) and the hue rotation were applied to
    # them as if they were R, G, B; now the crops equal those of the same image stored R, G, B, band for band
    cfg = CropsConfig(global_size=32, local_size=16, n_local=2, jitter_prob=1.0, grayscale_prob=0.5)
    sat = get_sensor("sat493m")
    rgb, bgr = MultiCropTransform(cfg, sat), MultiCropTransform(cfg, sat.select(["B", "G", "R"]))
    image = torch.rand(3, 64, 64)
    a = rgb({"image": image}, np.random.default_rng(3))
    b = bgr({"image": image.flip(0)}, np.random.default_rng(3))
    for kind in ("global_crops", "local_crops"):
        for x, y in zip(a[kind], b[kind]):
            torch.testing.assert_close(y, x.flip(0), atol=1e-5, rtol=1e-5)


def test_masked_patch_counts_follow_the_official_float32_ratios() -> None:
    from geodino.data.masking import sample_masks

    # official collate: probs = torch.linspace(0.1, 0.5, n + 1) (float32), crop i gets int(N * probs[i + 1])
    # patches; geodino drew the ratios in float64 and gave one patch more or less on some crops
    n_tokens, n_crops = 36, 24
    probs = torch.linspace(0.1, 0.5, n_crops // 2 + 1)
    official = [int(n_tokens * probs[i + 1]) for i in range(n_crops // 2)]
    float64 = [int(n_tokens * r) for r in np.linspace(0.1, 0.5, n_crops // 2 + 1)[1:]]
    assert official != float64  # this (N, batch) is one where the two differ (crop 6: 11 vs 12 patches)
    masks, upper = sample_masks(n_crops, (6, 6), np.random.default_rng(0))
    assert sorted(masks.sum(1).tolist()) == sorted([0] * (n_crops // 2) + official)
    assert upper == sum(official)


def test_web_image_config_does_not_rotate_photos() -> None:
    # web_vits16 ("the official default recipe" on web images) inherited sat_vits16's 90-degree rotations, an
    # overhead-imagery addition that the official recipe (horizontal flips only) does not have
    from pathlib import Path

    from geodino.config import load_config
    from geodino.train.config import PretrainConfig

    root = Path(__file__).resolve().parents[2] / "geodino" / "configs" / "pretrain"
    web = load_config(PretrainConfig, root / "web_vits16.yaml")
    assert web.crops.rot90 is False
    assert load_config(PretrainConfig, root / "sat_vits16.yaml").crops.rot90 is True  # overhead imagery keeps them


def test_head_warmup_with_one_global_crop_and_no_local_ones_is_ibot_only() -> None:
    """crops.n_global=1 with n_local=0 has no DINO pair at all (no cross-view global pair, no local crop): the
    warm-up loss weighted its terms by g_terms / total_terms with total_terms 0 and stopped with ZeroDivisionError
    (since c9228f4 made it read the batch's count); it is now the iBOT loss alone."""
    from geodino.losses.dino import DINOLoss
    from geodino.losses.ibot import IBOTPatchLoss
    from geodino.models import build_model
    from geodino.models.heads import DINOHead
    from geodino.train.teacher_heads import _warmup_losses

    torch.manual_seed(0)
    model = build_model("vit_tiny", patch_size=8, depth=1, n_storage_tokens=0).eval()
    heads = torch.nn.ModuleDict({"dino_head": DINOHead(192, 16, 8, 4), "ibot_head": DINOHead(192, 12, 8, 4)})
    losses = (DINOLoss(16), IBOTPatchLoss(12))
    loss, loss_global, loss_ibot = _warmup_losses(model, heads, heads, _batch(1, 0, 4), losses, 0.07, 2, "cpu")
    assert torch.isfinite(loss) and float(loss_global) == 0.0
    assert loss.item() == loss_ibot.item()  # .item(): float() of a tensor with gradients warns
