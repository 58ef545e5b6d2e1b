"""Dense heads: output shapes, CLS readout, height bins."""

from __future__ import annotations

import math

import pytest
import torch

from geodino.eval.canopy import HeightDecoder, height_bins, height_loss
from geodino.eval.heads import DPTHead, LinearHead, SimpleFeaturePyramid, UPerNetHead
from geodino.eval.heads.dpt import Readout


def _feats(b=2, d=24, h=4, w=6, n=4):
    torch.manual_seed(0)
    return [torch.randn(b, d, h, w) for _ in range(n)], [torch.randn(b, d) for _ in range(n)]


def test_linear_head_concatenates_layers_at_patch_resolution():
    maps, cls = _feats()
    head = LinearHead([24] * 4, 7)
    assert head(maps, cls).shape == (2, 7, 4, 6)
    assert head.bn.num_features == 96


def test_upernet_outputs_stride_patch_over_four():
    maps, cls = _feats()
    head = UPerNetHead(24, 5, channels=16)
    assert head(maps, cls).shape == (2, 5, 16, 24)  # Feature2Pyramid's x4 level


def test_dpt_outputs_sixteen_times_the_token_grid_and_uses_cls():
    maps, cls = _feats()
    head = DPTHead(24, 3, post_channels=(8, 16, 32, 64), channels=16).eval()
    out = head(maps, cls)
    assert out.shape == (2, 3, 64, 96)
    other = [c + 1.0 for c in cls]
    assert not torch.allclose(out, head(maps, other)), "the project readout must depend on the CLS token"
    assert Readout(24, "ignore")(maps[0], cls[0]) is maps[0]


def test_simple_feature_pyramid_levels():
    maps, _ = _feats(n=2)
    out = SimpleFeaturePyramid(24, n_layers=2, out_channels=32)(maps)
    assert list(out) == ["p2", "p3", "p4", "p5", "pool"]
    assert [tuple(v.shape[-2:]) for v in out.values()] == [(16, 24), (8, 12), (4, 6), (2, 3), (1, 2)]
    assert all(v.shape[1] == 32 for v in out.values())


def test_mixlog_bins_match_chmv2_definition():
    bins = height_bins("mixlog", 256, 0.001, 96.0)
    assert bins[0].item() == pytest.approx(0.008)  # 8 x min (heights are predicted /8)
    assert bins[-1].item() == pytest.approx(96.0)
    assert torch.all(bins[1:] > bins[:-1])
    mid = 8 * (0.5 * math.exp((math.log(0.001) + math.log(12.0)) / 2) + 0.5 * (0.001 + 12.0) / 2)
    assert height_bins("mixlog", 3, 0.001, 96.0)[1].item() == pytest.approx(mid, rel=1e-5)


def test_height_decoder_weighted_sum():
    dec = HeightDecoder("uniform", 4, 1.0, 4.0)  # bins 1, 2, 3, 4
    logits = torch.tensor([0.0, 0.0, 1e6, 0.0]).view(1, 4, 1, 1)
    assert dec(logits).item() == pytest.approx(3.0, abs=1e-4)
    flat = torch.zeros(1, 4, 1, 1)  # ReLU + 0.1 normalised: equal weights
    assert dec(flat).item() == pytest.approx(2.5)
    direct = HeightDecoder("direct", 1, 0.001, 96.0)
    assert direct(torch.tensor([-3.0, 5.0]).view(2, 1, 1, 1)).flatten().tolist() == pytest.approx([0.001, 5.001])


def test_height_losses():
    p = torch.tensor([1.0, 2.0, 9.0])
    y = torch.tensor([2.0, 2.0, 0.0])
    v = torch.tensor([True, True, False])
    assert height_loss(p, y, v, "l1").item() == pytest.approx(0.5)
    # SiLog is scale-invariant for lambda = 1 (a constant log offset costs nothing)
    assert height_loss(2 * y + 0.1, y, torch.ones(3, dtype=torch.bool), "silog", lam=1.0, eps=0.1).item() < 1e-3
