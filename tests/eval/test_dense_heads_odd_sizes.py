"""Dense heads on token grids of odd and degenerate sizes (1 token high or wide): the x0.5 pyramid level of
UPerNet's Feature2Pyramid and of the detection pyramid failed with "Output size is too small" on a 1-token map,
which a crop_size equal to the patch size (allowed: crop_size >= 16) or an image strip no taller than a patch
produces."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from geodino.backbones import load_backbone
from geodino.eval import dense
from geodino.eval.heads import SimpleFeaturePyramid
from geodino.eval.heads.pyramid import HalfMaxPool
from geodino.eval.segmentation import SegmentationProbeConfig, build_head, run_segmentation
from tests.eval.dense_backbone import tiny_backbone
from tests.eval.test_segmentation import make_folder

GRIDS = [(1, 1), (1, 5), (4, 1), (2, 3), (3, 3), (5, 7)]


@pytest.mark.parametrize("hw", [(2, 2), (3, 3), (4, 7), (9, 6)])
def test_half_pool_is_maxpool_where_maxpool_works(hw):
    x = torch.randn(2, 3, *hw)
    assert torch.equal(HalfMaxPool()(x), nn.MaxPool2d(2, 2)(x))


def test_half_pool_keeps_a_one_token_side():
    x = torch.randn(1, 2, 1, 5)
    out = HalfMaxPool()(x)
    assert out.shape == (1, 2, 1, 2)
    assert torch.equal(out, torch.maximum(x[..., 0:4:2], x[..., 1:4:2]))  # pairs along the long side
    assert torch.equal(HalfMaxPool()(torch.ones(1, 1, 1, 1) * 3), torch.full((1, 1, 1, 1), 3.0))


@pytest.mark.parametrize("kind,n_layers,scale", [("linear", 1, 1), ("upernet", 4, 4), ("dpt", 4, 8)])
def test_heads_take_every_token_grid(kind, n_layers, scale):
    torch.manual_seed(0)
    head = build_head(kind, 16, n_layers, 3, channels=16).eval()
    for h, w in GRIDS:
        feats = [torch.randn(2, 16, h, w) for _ in range(n_layers)]
        out = head(feats, [torch.randn(2, 16) for _ in range(n_layers)])
        assert out.shape == (2, 3, scale * h, scale * w), (kind, h, w)
        assert torch.isfinite(out).all()


def test_detection_pyramid_takes_a_one_token_map():
    fpn = SimpleFeaturePyramid(16, out_channels=8).eval()
    out = fpn([torch.randn(1, 16, 1, 3)])
    assert [tuple(v.shape[-2:]) for v in out.values()] == [(4, 12), (2, 6), (1, 3), (1, 1), (1, 1)]


def test_upernet_probe_runs_with_crop_size_equal_to_the_patch(tmp_path):
    img, msk = make_folder(tmp_path, n=4, size=32, patch=16)
    bb = load_backbone("arch:vit_tiny?seed=0&patch_size=16&bands=3")
    cfg = SegmentationProbeConfig(
        train_images=str(img), train_masks=str(msk), num_classes=2, head="upernet", crop_size=16, channels=16,
        epochs=1, min_steps=1, progress=False, plots=0,
    )  # fmt: skip
    out = run_segmentation(bb, cfg, tmp_path / "out")
    assert 0.0 <= out["mIoU"] <= 1.0


def test_upernet_predicts_a_strip_one_patch_high_at_its_own_size():
    bb = tiny_backbone()  # patch 8
    torch.manual_seed(0)
    head = build_head("upernet", bb.embed_dim, 4, 3, channels=16).eval()
    predict = dense.head_predict(bb, head, [0, 1, 2, 3])
    out = predict(torch.rand(1, 3, 6, 40))  # padded to 8 x 40: a 1 x 5 token grid
    assert out.shape == (1, 3, 6, 40) and torch.isfinite(out).all()


def test_upernet_trains_on_a_single_tile(tmp_path):
    # one training image of one tile: UPerNet's 1x1 pyramid pool met BatchNorm with a batch of one
    # ("Expected more than 1 value per channel when training"); the lone tile is now doubled in its batch
    img, msk = make_folder(tmp_path, n=2, size=32)
    cfg = SegmentationProbeConfig(
        train_images=str(img), train_masks=str(msk), num_classes=2, head="upernet", crop_size=32, channels=16,
        epochs=1, min_steps=2, progress=False, plots=0,
    )  # fmt: skip
    out = run_segmentation(tiny_backbone(), cfg, tmp_path / "out")
    assert 0.0 <= out["mIoU"] <= 1.0 and out["train_loss"] > 0
