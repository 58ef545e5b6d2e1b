"""RoPE on bf16/fp16 q, k with float32 sin/cos (a backbone cast with `.to(torch.bfloat16)`): the eager kernel
converts q, k once and rounds each half once into the input dtype; the values must stay those of the float32
computation cast back (the official `rope_apply` in the RoPE dtype), and float32 inputs must be untouched."""

from __future__ import annotations

import pytest
import torch

from geodino.models import build_model
from geodino.models.layers.rope import rope_qk


def _float32_then_cast(qk: torch.Tensor, sin: torch.Tensor, cos: torch.Tensor) -> torch.Tensor:
    """Independent reference: every product and sum in float32 (fused multiply-add as the kernel), one rounding."""
    x1, x2 = qk.float().chunk(2, dim=-1)
    o1 = torch.mul(x1, cos).addcmul_(x2, sin, value=-1)
    o2 = torch.mul(x2, cos).addcmul_(x1, sin)
    return torch.cat([o1, o2], dim=-1).to(qk.dtype)


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_mixed_dtype_rope_equals_float32_computation_cast_once(dtype: torch.dtype) -> None:
    g = torch.Generator().manual_seed(0)
    qkv = (torch.randn(2, 7, 3, 2, 8, generator=g) * 3).to(dtype)
    sin = torch.randn(7, 4, generator=g)[:, None, None, :]
    cos = torch.randn(7, 4, generator=g)[:, None, None, :]
    qk = qkv[:, :, :2]  # the strided view attention passes
    with torch.inference_mode():
        got = rope_qk(qk, sin, cos)
    assert got.dtype == dtype and got.shape == qk.shape
    assert torch.equal(got, _float32_then_cast(qk, sin, cos))
    # the autograd / compile branch (functional form) agrees up to one rounding of the input dtype
    ref = rope_qk(qk.clone().requires_grad_(), sin, cos).detach()
    assert torch.allclose(got.float(), ref.float(), rtol=1e-2, atol=1e-2)


def test_float32_rope_unchanged_by_the_mixed_branch() -> None:
    g = torch.Generator().manual_seed(1)
    qk = torch.randn(2, 5, 2, 2, 8, generator=g)
    sin, cos = (torch.randn(5, 4, generator=g)[:, None, None, :] for _ in range(2))
    with torch.inference_mode():
        got = rope_qk(qk, sin, cos)
    x1, x2 = qk.chunk(2, dim=-1)
    want = torch.cat([torch.mul(x1, cos).addcmul_(x2, sin, value=-1), torch.mul(x2, cos).addcmul_(x1, sin)], -1)
    assert torch.equal(got, want)


def test_bf16_weight_backbone_keeps_float32_rope_and_tracks_float32() -> None:
    """A backbone cast to bf16 keeps computing RoPE angles in float32 (coords are float32) and its patch tokens stay
    close to the float32 model's (cosine as benchmarks/backbone.py measures it)."""
    torch.manual_seed(0)
    model = build_model("vit_small", depth=2).eval()
    x = torch.randn(2, 3, 64, 64)
    m16 = build_model("vit_small", depth=2).eval()
    m16.load_state_dict(model.state_dict())
    m16 = m16.to(torch.bfloat16)
    with torch.inference_mode():
        sin, _ = m16.rope(4, 4)
        ref = model.forward_features(x)["x_norm_patchtokens"]
        got = m16.forward_features(x.to(torch.bfloat16))["x_norm_patchtokens"].float()
    assert sin.dtype == torch.float32
    assert torch.nn.functional.cosine_similarity(got, ref, dim=-1).min() > 0.999
