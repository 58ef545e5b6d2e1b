"""DINOHead: official keys and shapes, L2-normalised bottleneck, bias-free prototypes; DINOv2 and v1 layers."""

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


def test_weight_norm_head_equals_torch_weight_norm_and_keeps_dinov2_keys() -> None:
    """`weight_norm` is DINOv2's prototype layer: same keys and outputs as torch's weight_norm(Linear)."""
    import pytest

    torch.manual_seed(0)
    head = DINOHead(12, 30, hidden_dim=16, bottleneck_dim=8, last_layer="weight_norm")
    keys = set(head.state_dict())
    assert {"last_layer.weight_g", "last_layer.weight_v"} <= keys and "last_layer.weight" not in keys
    assert head.last_layer.weight_g.shape == (30, 1) and bool((head.last_layer.weight_g == 1).all())
    with torch.no_grad():
        head.last_layer.weight_g.mul_(torch.rand(30, 1) + 0.5)  # g != 1: the parity must hold for any g
    with pytest.warns(FutureWarning):  # torch's legacy helper is deprecated; it is the DINOv2 reference
        ref = torch.nn.utils.weight_norm(torch.nn.Linear(8, 30, bias=False))
    ref.load_state_dict({k.split(".", 1)[1]: v for k, v in head.state_dict().items() if k.startswith("last_layer.")})
    z = torch.nn.functional.normalize(torch.randn(5, 8), dim=-1)
    assert torch.allclose(head(z, only_last_layer=True), ref(z), atol=1e-6)
    assert head.last_layer.weight_g.requires_grad


def test_normalized_head_has_unit_prototypes_and_frozen_g() -> None:
    """`normalized` (DINO v1 norm_last_layer): every prototype row has norm 1 whatever v is; g is not trained."""
    torch.manual_seed(0)
    head = DINOHead(12, 30, hidden_dim=16, bottleneck_dim=8, last_layer="normalized")
    with torch.no_grad():
        head.last_layer.weight_v.mul_(torch.rand(30, 1) * 10)
    assert torch.allclose(head.last_layer.weight.norm(dim=1), torch.ones(30), atol=1e-6)
    assert not head.last_layer.weight_g.requires_grad
    z = torch.nn.functional.normalize(torch.randn(5, 8), dim=-1)
    logits = head(z, only_last_layer=True)
    assert float(logits.detach().abs().max()) <= 1.0 + 1e-6  # logits are cosines
    cos = z @ torch.nn.functional.normalize(head.last_layer.weight_v, dim=1).t()
    assert torch.allclose(logits, cos, atol=1e-6)


def test_unknown_last_layer_is_refused() -> None:
    import pytest

    with pytest.raises(ValueError, match="last_layer='wn'"):
        DINOHead(4, 4, hidden_dim=4, bottleneck_dim=4, last_layer="wn")


def test_head_from_state_reads_weight_norm_heads() -> None:
    from geodino.train.teacher_heads import head_from_state

    torch.manual_seed(0)
    head = DINOHead(12, 30, hidden_dim=16, bottleneck_dim=8, last_layer="weight_norm")
    loaded = head_from_state(head.state_dict(), "mem", "dino_head")
    assert loaded.last_layer_kind == "weight_norm"
    x = torch.randn(3, 12)
    assert torch.equal(loaded(x), head(x))


def test_ssl_arch_normalized_heads_stay_unit_and_g_is_not_optimised() -> None:
    """One SSL step with `normalized` prototypes: g has no optimizer group, rows stay unit, EMA keeps g = 1."""
    from geodino.train.optim import build_optimizer
    from geodino.train.ssl import SSLMetaArch
    from tests.train.ssl_fixtures import ssl_batch, tiny_cfg

    torch.manual_seed(0)
    cfg = tiny_cfg("dino.head_last_layer=normalized", "ibot.head_last_layer=weight_norm")
    arch = SSLMetaArch(cfg, total_iters=4, global_batch_size=4)
    names = [n for g in arch.param_groups() for n in g["names"]]
    assert "dino_head.last_layer.weight_v" in names and "dino_head.last_layer.weight_g" not in names
    assert "ibot_head.last_layer.weight_g" in names  # DINOv2 trains g
    opt = build_optimizer(arch.param_groups())
    for g in opt.param_groups:
        g["lr"] = 1e-2
    before = arch.student["dino_head"].last_layer.weight_v.detach().clone()
    loss, _ = arch(ssl_batch(), 0)
    loss.backward()
    opt.step()
    arch.update_teacher(0.5)
    v = arch.student["dino_head"].last_layer.weight_v
    assert not torch.equal(v, before)  # the prototypes did learn
    for part in (arch.student, arch.teacher):
        w = part["dino_head"].last_layer.weight
        assert torch.allclose(w.norm(dim=1), torch.ones(w.shape[0]), atol=1e-5)
        assert bool((part["dino_head"].last_layer.weight_g == 1).all())


def test_bad_head_last_layer_config_names_the_key() -> None:
    import pytest

    from geodino.errors import ConfigError
    from tests.train.ssl_fixtures import tiny_cfg

    with pytest.raises(ConfigError, match=r"ibot\.head_last_layer='unit'"):
        tiny_cfg("ibot.head_last_layer=unit").validate()
