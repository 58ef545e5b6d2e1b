"""RoPE: official periods, per-axis patch-centre coordinates, train-time augmentations, application."""

from __future__ import annotations

import math

import torch

from geodino.models import build_model
from geodino.models.layers.rope import (
    RopePositionEmbedding,
    apply_rope_half,
    rope_apply,
    rope_for_tokens,
)


def test_coords_separate_normalisation_hand_computed():
    rope = RopePositionEmbedding(64, num_heads=1, rescale_coords=2.0).eval()
    c = rope.coords(2, 4)
    # rows: (0.5/2, 1.5/2) -> (-0.5, 0.5); cols: (0.5, 1.5, 2.5, 3.5)/4 -> (-0.75, -0.25, 0.25, 0.75)
    expected = torch.tensor([[y, x] for y in (-0.5, 0.5) for x in (-0.75, -0.25, 0.25, 0.75)])
    torch.testing.assert_close(c, expected)
    rope_max = RopePositionEmbedding(64, num_heads=1, normalize_coords="max").eval()
    torch.testing.assert_close(rope_max.coords(2, 4)[:, 0], torch.tensor([-0.75] * 4 + [-0.25] * 4))


def test_sin_cos_hand_computed():
    rope = RopePositionEmbedding(16, num_heads=1, base=100.0).eval()  # D_head 16 -> 4 periods
    periods = torch.tensor([100 ** (2 * j / 8) for j in range(4)])
    torch.testing.assert_close(rope.periods, periods)
    sin, cos = rope(H=1, W=2)
    assert sin.shape == (2, 16)
    # token 1: y = 0, x = 0.5; angles = 2π·[y/p0..y/p3, x/p0..x/p3], tiled twice
    ang = torch.cat([2 * math.pi * 0.0 / periods, 2 * math.pi * 0.5 / periods]).tile(2)
    torch.testing.assert_close(sin[1], torch.sin(ang))
    torch.testing.assert_close(cos[1], torch.cos(ang))


def test_augmentations_only_in_training_and_within_bounds():
    rope = RopePositionEmbedding(64, num_heads=1, rescale_coords=2.0, jitter_coords=1.5, shift_coords=0.1)
    rope.eval()
    base = rope.coords(4, 4)
    torch.testing.assert_close(rope.coords(4, 4), base)
    rope.train()
    torch.manual_seed(0)
    draws = [rope.coords(4, 4) for _ in range(50)]
    assert any(not torch.allclose(d, base) for d in draws)
    for d in draws:
        # |coord| <= (1 + shift) · jitter · rescale for the outermost centre (0.75)
        assert d.abs().max() <= (0.75 + 0.1) * 1.5 * 2.0 + 1e-6
    rescale_only = RopePositionEmbedding(64, num_heads=1, rescale_coords=2.0).train()
    for _ in range(20):
        d = rescale_only.coords(4, 4)
        ratio = d / base
        torch.testing.assert_close(ratio, ratio[0:1, 0:1].expand_as(ratio))  # one shared factor
        assert 0.5 - 1e-6 <= ratio[0, 0] <= 2.0 + 1e-6


def test_half_rope_equals_reference_and_skips_prefix():
    rope = RopePositionEmbedding(64, num_heads=2).eval()
    sin, cos = rope(H=3, W=2)  # [6, 32]
    x = torch.randn(2, 2, 4 + 6, 32)  # [B, heads, prefix + patches, d]
    ref = torch.cat([x[:, :, :4], rope_apply(x[:, :, 4:], sin, cos)], dim=2)
    s, c = rope_for_tokens((sin, cos), 4)
    out = apply_rope_half(x, s, c)
    torch.testing.assert_close(out, ref, atol=0, rtol=0)


def test_per_block_vs_per_forward_sampling():
    calls = []
    for mode in ("per_block", "per_forward"):
        m = build_model("vit_tiny", depth=3, rope_sampling=mode).train()
        n = 0
        orig = m.rope_embed.forward

        def counting(*, H, W, _orig=orig):
            nonlocal n
            n += 1
            return _orig(H=H, W=W)

        m.rope_embed.forward = counting
        m.forward_features([torch.randn(1, 3, 32, 32), torch.randn(1, 3, 16, 16)])
        calls.append(n)
        m.eval()
        n = 0
        m.forward_features(torch.randn(1, 3, 32, 32))
        calls.append(n)
    assert calls == [6, 1, 2, 1]  # per block: 3 blocks x 2 groups; eval: once per group


def test_fused_rope_matches_differentiable_path_and_backprops():
    from geodino.models.layers.rope import rope_qk

    rope = RopePositionEmbedding(64, num_heads=2).eval()
    s, c = rope_for_tokens(rope(H=2, W=3), 5)
    qk = torch.randn(2, 11, 2, 2, 32)  # [B, N, q/k, heads, d]
    ref = apply_rope_half(qk, s[:, None, None, :], c[:, None, None, :])
    with torch.no_grad():
        fused = rope_qk(qk, s[:, None, None, :], c[:, None, None, :])
    torch.testing.assert_close(fused, ref, atol=1e-6, rtol=0)  # fused multiply-add rounding only
    leaf = qk.clone().requires_grad_(True)
    out = rope_qk(leaf, s[:, None, None, :], c[:, None, None, :])
    torch.testing.assert_close(out, fused, atol=1e-6, rtol=0)
    out.square().sum().backward()
    assert leaf.grad is not None and leaf.grad.abs().sum() > 0


def test_blocks_trace_as_one_graph_with_and_without_gradients():
    """`trainer.compile=true` compiles each block's `forward_list`: the student's (autograd) and the teacher's (no
    gradients) must each be one graph. The eager no-grad RoPE writes into a buffer's halves with `out=`, which Dynamo
    cannot trace: it broke the graph in every teacher block and the teacher's blocks then ran eagerly. The compiled
    output equals the eager one."""
    torch._dynamo.reset()
    m = build_model("vit_tiny", depth=1, n_storage_tokens=2).eval()
    blk = m.blocks[0]
    xs = [torch.randn(2, 2 + 1 + 16, 192), torch.randn(3, 2 + 1 + 4, 192)]
    ropes = [m.rope(4, 4), m.rope(2, 2)]
    compiled = torch.compile(blk.forward_list, backend="eager", fullgraph=True)  # raises on a graph break
    with torch.no_grad():  # the teacher
        ref = blk.forward_list(xs, ropes)
        out = compiled(xs, ropes)
    for a, b in zip(out, ref):
        torch.testing.assert_close(a, b, atol=1e-6, rtol=0)  # functional form vs fused multiply-adds
    leaf = [x.clone().requires_grad_(True) for x in xs]  # the student
    sum(o.square().sum() for o in compiled(leaf, ropes)).backward()
    assert all(x.grad is not None and x.grad.abs().sum() > 0 for x in leaf)
    torch._dynamo.reset()
