"""The segmentation DPT is the head DINOv3's maintainers describe for their GEO-Bench runs (dinov3 issue #95):
after the fusion blocks a 3x3 conv + ReLU (HighResCanopyHeight's `project`), then 3x3 conv, BatchNorm, ReLU,
Dropout2d(dropout) and a 1x1 conv to the classes at the last fusion block's resolution. Before, segmentation used
the depth up-conv head (32-channel bottleneck, no BatchNorm) and the probe's `dropout` key did nothing for DPT.
The canopy DPT (CHMv2: no projection after fusion, up-conv head) is unchanged."""

from __future__ import annotations

import torch
from torch import nn

from geodino.eval.heads import DPTHead
from geodino.eval.segmentation import SegmentationProbeConfig, build_head, run_segmentation
from tests.eval.dense_backbone import tiny_backbone
from tests.eval.test_segmentation import make_folder


def feats(h=3, w=5, d=24):
    torch.manual_seed(0)
    return [torch.randn(2, d, h, w) for _ in range(4)], [torch.randn(2, d) for _ in range(4)]


def test_segmentation_dpt_has_the_described_head_and_dropout():
    head = build_head("dpt", 24, 4, 5, channels=32, dropout=0.3)
    convs = [m for m in head.head]
    assert [type(m) for m in convs] == [nn.Conv2d, nn.BatchNorm2d, nn.ReLU, nn.Dropout2d, nn.Conv2d]
    assert convs[0].kernel_size == (3, 3) and convs[0].bias is None and convs[0].out_channels == 16
    assert convs[3].p == 0.3 and convs[4].kernel_size == (1, 1) and convs[4].out_channels == 5
    assert isinstance(head.project[0], nn.Conv2d) and head.project[0].kernel_size == (3, 3)
    assert isinstance(head.project[1], nn.ReLU)
    m, c = feats()
    assert head.eval()(m, c).shape == (2, 5, 24, 40)  # 8x the 3x5 grid; the probe upsamples to the tile
    assert isinstance(build_head("dpt", 24, 4, 5, channels=32, dropout=0.0).head[3], nn.Identity)


def test_segmentation_dpt_dropout_acts_in_training_only():
    head = build_head("dpt", 24, 4, 5, channels=32, dropout=0.5)
    m, c = feats()
    head.eval()
    assert torch.equal(head(m, c), head(m, c))
    head.train()
    torch.manual_seed(1)
    a = head(m, c)
    torch.manual_seed(2)
    assert not torch.allclose(a, head(m, c))


def test_canopy_dpt_is_unchanged():
    head = DPTHead(24, 1, post_channels=(8, 16, 32, 64), channels=16).eval()
    assert isinstance(head.project, nn.Identity)
    assert not any(isinstance(x, (nn.BatchNorm2d, nn.Dropout2d)) for x in head.modules())
    m, c = feats()
    assert head(m, c).shape == (2, 1, 48, 80)  # 16x the grid, as before


def test_segmentation_probe_with_dpt_scores_odd_sized_images(tmp_path):
    img, msk = make_folder(tmp_path, n=5, size=40)  # 40 px at patch 8: a 5x5 grid, the x0.5 level odd
    cfg = SegmentationProbeConfig(
        train_images=str(img), train_masks=str(msk), num_classes=2, head="dpt", crop_size=24, channels=16,
        epochs=1, min_steps=2, progress=False, plots=0,
    )  # fmt: skip
    out = run_segmentation(tiny_backbone(), cfg, tmp_path / "out")
    assert 0.0 <= out["mIoU"] <= 1.0 and out["train_loss"] > 0
