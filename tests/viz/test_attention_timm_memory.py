"""timm backbones' attention maps without the [heads, N, N] matrix: the fused kernel stays on for timm's
`Attention` (ViT) and `EvaAttention` (EVA / DINOv3 with RoPE and storage tokens), and the CLS row equals the one
computed by hand from the block's own q, k (and RoPE). Before, `fused_attn` was turned off for the pass and the
full softmax matrix was built and kept (2.1 GB for a ViT-Tiny on 1536 x 1536 px, over 100 GB at 4096 x 4096)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from geodino.backbones import load_backbone
from geodino.viz.attention import attention_maps

timm = pytest.importorskip("timm")


def _no_square_matrix(bb, layer: int) -> list[tuple]:
    """Record every tensor the block's attn_drop sees (the eager path's softmax matrix) during attention_maps."""
    seen: list[tuple] = []
    attn = bb.model.blocks[layer].attn
    handle = attn.attn_drop.register_forward_hook(lambda _m, _i, out: seen.append(tuple(out.shape)))
    return seen, handle


def _by_hand(bb, img: np.ndarray, layer: int) -> np.ndarray:
    """The CLS row of softmax(q kᵀ / √d) of block `layer`, q and k from the block's input by timm's own steps."""
    m = bb.model
    attn = m.blocks[layer].attn
    rec: dict = {}
    h = attn.register_forward_pre_hook(lambda _m, a, kw: rec.update(x=a[0], kw=kw), with_kwargs=True)
    with torch.no_grad():
        bb.features(bb.normalize(torch.from_numpy(img))[None], layers=[layer % len(m.blocks)])
        h.remove()
        x = rec["x"]
        B, N, _ = x.shape
        if getattr(attn, "q_bias", None) is not None:
            bias = torch.cat((attn.q_bias, attn.k_bias, attn.v_bias))
            qkv = torch.nn.functional.linear(x, attn.qkv.weight, bias)
        else:
            qkv = attn.qkv(x)
        qkv = qkv.reshape(B, N, 3, attn.num_heads, -1).permute(2, 0, 3, 1, 4)
        q, k = attn.q_norm(qkv[0]), attn.k_norm(qkv[1])
        rope = rec["kw"].get("rope")
        if rope is not None:
            from timm.layers import apply_rot_embed_cat

            n = attn.num_prefix_tokens
            half = getattr(attn, "rotate_half", False)
            q = torch.cat([q[:, :, :n], apply_rot_embed_cat(q[:, :, n:], rope, half=half)], 2)
            k = torch.cat([k[:, :, :n], apply_rot_embed_cat(k[:, :, n:], rope, half=half)], 2)
        w = (q[:, :, :1] @ k.transpose(-1, -2) / math.sqrt(q.shape[-1])).softmax(-1)[0, :, 0, m.num_prefix_tokens :]
    return w.double().numpy()


@pytest.mark.parametrize(
    "spec, size, layer",
    [
        ("timm:vit_tiny_patch16_224?seed=0&img_size=48", (48, 48), -1),
        ("timm:vit_small_patch14_reg4_dinov2?seed=0&img_size=56", (56, 42), 1),
        ("timm:vit_small_patch16_dinov3?seed=0", (48, 80), -1),  # EVA: RoPE, 4 storage tokens
    ],
)
def test_timm_maps_keep_the_fused_kernel_and_equal_the_row_by_hand(spec, size, layer):
    bb = load_backbone(spec)
    img = np.random.default_rng(0).random((3, *size)).astype(np.float32)
    seen, handle = _no_square_matrix(bb, layer)
    try:
        maps = attention_maps(bb, img, layer=layer)
    finally:
        handle.remove()
    assert seen == []  # the eager softmax [B, heads, N, N] was never built
    assert all(a.fused_attn for a in (b.attn for b in bb.model.blocks))  # the switch is left as it was
    p = bb.patch_size
    ref = _by_hand(bb, img, layer)
    ref = ref.reshape(-1, size[0] // p, size[1] // p)
    np.testing.assert_allclose(maps.heads, ref, rtol=1e-5, atol=1e-7)
    assert 0 < maps.heads.sum(axis=(1, 2)).max() < 1  # prefix columns left out


@pytest.mark.parametrize("positional", [False, True])
def test_a_block_run_with_an_attention_mask_is_refused_not_drawn_without_it(positional):
    """The row is computed here without a mask: a pass that gave the module one (keyword or positional) is refused
    in one line rather than drawn as if unmasked."""
    from geodino.errors import InputError

    bb = load_backbone("timm:vit_tiny_patch16_224?seed=0&img_size=32")
    attn = bb.model.blocks[-1].attn

    def add_mask(_m, args, kwargs):
        mask = torch.zeros(5, 5)  # additive zeros: the same output, but a mask all the same
        kwargs.pop("attn_mask", None)
        return ((args[0], mask), kwargs) if positional else (args, {**kwargs, "attn_mask": mask})

    handle = attn.register_forward_pre_hook(add_mask, with_kwargs=True)
    try:
        with pytest.raises(InputError, match="attention mask"):
            attention_maps(bb, np.random.default_rng(2).random((3, 32, 32)).astype(np.float32))
    finally:
        handle.remove()
