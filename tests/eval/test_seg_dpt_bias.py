"""The segmentation DPT's residual conv units have no bias, as DINOv3's `DPTHead` default (`use_bias=False`,
dinov3/eval/depth/models/dpt_head.py) and HighResCanopyHeight's `PreActResidualConvUnit` (`bias=False`), the head
DINOv3's GEO-Bench segmentation DPT builds on (dinov3#95). Before, they had a bias (`bias=not bn`). The canopy DPT
follows CHMv2 (`use_bias=True` in dinov3/hub/depthers.py) and keeps it."""

from __future__ import annotations

import torch

from geodino.eval.canopy import CanopyProbeConfig
from geodino.eval.heads.dpt import ResidualConvUnit
from geodino.eval.height_head import build_model
from geodino.eval.segmentation import build_head


def units(head: torch.nn.Module) -> list[ResidualConvUnit]:
    return [m for m in head.modules() if isinstance(m, ResidualConvUnit)]


def test_segmentation_dpt_residual_convs_have_no_bias():
    head = build_head("dpt", 24, 4, 5, channels=32, dropout=0.1)
    found = units(head)
    assert len(found) == 8  # two per fusion block
    assert all(u.conv1.bias is None and u.conv2.bias is None for u in found)
    feats = [torch.randn(1, 24, 3, 3) for _ in range(4)]
    assert head.eval()(feats, [torch.randn(1, 24) for _ in range(4)]).shape == (1, 5, 24, 24)


def test_canopy_dpt_keeps_chmv2_bias():
    model = build_model(CanopyProbeConfig(dpt_channels=16), embed_dim=24, n_layers=4)
    found = units(model.head)
    assert len(found) == 8
    assert all(u.conv1.bias is not None and u.conv2.bias is not None for u in found)
