"""timm attention modules with a forward of their own (subclasses, BEiT's relative position bias) keep their fused
branch for attention maps: the CLS row comes from the q, k, mask and scale they give
`F.scaled_dot_product_attention`, equals the row of their eager softmax matrix, and no [heads, N, N] tensor is made.
Before, their eager path ran and built the whole matrix: quadratic memory (a 1024 px input at patch 16 is 4097
tokens, 3 heads x 4097² floats per block). A fused branch that never calls that function still gets its eager row."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten

from geodino.backbones import load_backbone
from geodino.viz.attention import attention_maps

pytest.importorskip("timm")


@pytest.fixture(scope="module")
def tiny():
    return load_backbone("timm:vit_tiny_patch16_224?seed=0&img_size=32")


def _own_forward(attn, bias: bool = False, sdpa: bool = True) -> None:
    """Give block `attn` a forward of its own (timm's computation written out), optionally with an additive
    per-head bias (as BEiT's relative position bias) or a fused branch that does not call F.sdpa."""

    class Own(type(attn)):
        def forward(self, x, attn_mask=None, is_causal=False):
            B, N, _ = x.shape
            q, k, v = self.qkv(x).reshape(B, N, 3, self.num_heads, -1).permute(2, 0, 3, 1, 4).unbind(0)
            g = torch.Generator().manual_seed(N)
            add = torch.randn(self.num_heads, N, N, generator=g) * 3 if bias else None
            if self.fused_attn and sdpa:
                x = F.scaled_dot_product_attention(q, k, v, attn_mask=add)
            elif self.fused_attn:  # a fused kernel of its own: same numbers, no F.sdpa call
                x = torch.ops.aten._scaled_dot_product_attention_math(q, k, v, add)[0]
            else:
                a = (q * self.scale) @ k.transpose(-2, -1)
                a = self.attn_drop((a if add is None else a + add).softmax(-1))
                x = a @ v
            return self.proj(x.transpose(1, 2).reshape(B, N, -1))

    attn.__class__ = Own


def _eager_row(bb, img: np.ndarray) -> np.ndarray:
    """The unchunked reference: the last block's eager softmax matrix, its CLS row over the patches."""
    attn, seen = bb.model.blocks[-1].attn, {}
    fused, attn.fused_attn = attn.fused_attn, False
    h = attn.attn_drop.register_forward_hook(lambda _m, _i, out: seen.update(a=out[0, :, 0, 1:].clone()))
    try:
        with torch.no_grad():
            bb.features(bb.normalize(torch.from_numpy(img))[None], layers=[len(bb.model.blocks) - 1])
    finally:
        h.remove()
        attn.fused_attn = fused
    return seen["a"].double().numpy()


@pytest.mark.parametrize("bias, sdpa", [(False, True), (True, True), (True, False)])
def test_own_forward_row_equals_the_eager_softmax_row(tiny, bias, sdpa):
    attn = tiny.model.blocks[-1].attn
    cls = type(attn)
    _own_forward(attn, bias=bias, sdpa=sdpa)
    try:
        img = np.random.default_rng(3).random((3, 48, 64)).astype(np.float32)
        got = attention_maps(tiny, img)
        ref = _eager_row(tiny, img).reshape(3, 3, 4)
        assert attn.fused_attn  # the switch is left as it was
    finally:
        attn.__class__ = cls
    np.testing.assert_allclose(got.heads, ref, rtol=1e-5, atol=1e-7)
    assert 0 < got.heads.sum(axis=(1, 2)).max() < 1  # the CLS column is left out


class _Largest(TorchDispatchMode):
    """The shape of the largest tensor any op makes while active."""

    def __init__(self) -> None:
        super().__init__()
        self.shape: tuple = ()

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        for t in tree_flatten(out)[0]:
            if isinstance(t, torch.Tensor) and t.numel() > int(np.prod(self.shape or (0,))):
                self.shape = tuple(t.shape)
        return out


def test_own_forward_makes_no_square_attention_matrix(tiny):
    """20 x 20 patches: N = 401 tokens, the matrix would be 3 x 401² = 482k floats; the largest tensor made is
    a token-sized one (401 x 768 in the MLP)."""
    attn = tiny.model.blocks[-1].attn
    cls = type(attn)
    _own_forward(attn)
    img = np.random.default_rng(4).random((3, 320, 320)).astype(np.float32)
    try:
        with _Largest() as seen:
            got = attention_maps(tiny, img)
    finally:
        attn.__class__ = cls
    n = 401
    assert got.heads.shape == (3, 20, 20)
    assert int(np.prod(seen.shape)) < 3 * n * n, seen.shape
    assert seen.shape[-2:] != (n, n)
