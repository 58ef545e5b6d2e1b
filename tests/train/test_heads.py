"""DINOHead: official keys and shapes, L2-normalised bottleneck, bias-free prototypes, no weight norm."""

from __future__ import annotations

import torch

from geodino.models.heads import DINOHead


def test_keys_and_shapes_match_official_layout() -> None:
    head = DINOHead(24, 50, hidden_dim=40, bottleneck_dim=8)
    shapes = {k: tuple(v.shape) for k, v in head.state_dict().items()}
    assert shapes == {
        "mlp.0.weight": (40, 24),
        "mlp.0.bias": (40,),
        "mlp.2.weight": (40, 40),
        "mlp.2.bias": (40,),
        "mlp.4.weight": (8, 40),
        "mlp.4.bias": (8,),
        "last_layer.weight": (50, 8),
    }
    assert not any("weight_g" in k or "weight_v" in k for k in shapes)


def test_forward_normalises_before_prototypes() -> None:
    torch.manual_seed(0)
    head = DINOHead(6, 5, hidden_dim=7, bottleneck_dim=3)
    x = torch.randn(4, 6)
    z = head(x, no_last_layer=True)
    assert torch.allclose(z.norm(dim=-1), torch.ones(4), atol=1e-6)
    manual = torch.nn.functional.normalize(head.mlp(x), dim=-1) @ head.last_layer.weight.t()
    assert torch.allclose(head(x), manual, atol=1e-6)
    assert torch.allclose(head(z, only_last_layer=True), manual, atol=1e-6)
    assert all(isinstance(m, torch.nn.GELU) for m in (head.mlp[1], head.mlp[3]))


def test_official_init_and_single_layer() -> None:
    torch.manual_seed(0)
    head = DINOHead(64, 4096, hidden_dim=256, bottleneck_dim=128)
    assert head.mlp[0].bias.abs().max() == 0
    assert abs(float(head.last_layer.weight.detach().std()) - 0.02) < 0.002  # trunc_normal_(std=0.02) as official
    one = DINOHead(6, 5, nlayers=1, bottleneck_dim=3)
    assert isinstance(one.mlp, torch.nn.Linear) and one.mlp.out_features == 3
