"""SelfAttentionBlock.forward on a list of crop groups: one rope per group (a list) or one rope shared by all."""

from __future__ import annotations

import pytest
import torch

from geodino.models.layers.block import SelfAttentionBlock
from geodino.models.layers.rope import RopePositionEmbedding, rope_for_tokens


@pytest.fixture(scope="module")
def block_rope_xs():
    torch.manual_seed(0)
    blk = SelfAttentionBlock(16, 2, ffn_hidden_dim=32).eval()
    with torch.no_grad():
        for p in blk.parameters():
            p.normal_(std=0.1)
    rope = rope_for_tokens(RopePositionEmbedding(16, num_heads=2)(H=2, W=2), 1)  # 1 prefix + 4 patch tokens
    return blk, rope, [torch.randn(1, 5, 16) for _ in range(3)]


@pytest.mark.parametrize("n_groups", [2, 3])
def test_one_rope_is_shared_by_every_group(block_rope_xs, n_groups):
    """A (sin, cos) pair with a list of groups is applied to each group: it was read as a per-group list (2 groups:
    sin to one, cos to the other, which failed) or dropped (any other count: the groups ran without RoPE)."""
    blk, rope, xs = block_rope_xs
    xs = xs[:n_groups]
    with torch.no_grad():
        alone = [blk(x, rope) for x in xs]
        shared = blk(xs, rope)
        no_rope = blk(xs[0], None)
    for a, s in zip(alone, shared):
        torch.testing.assert_close(s, a)
    assert not torch.allclose(alone[0], no_rope)  # the rope matters, so the check above could fail


def test_a_list_of_ropes_matches_the_groups(block_rope_xs):
    blk, rope, xs = block_rope_xs
    with torch.no_grad():
        out = blk(xs, [rope, None, rope])
        torch.testing.assert_close(out[1], blk(xs[1], None))
        torch.testing.assert_close(out[2], blk(xs[2], rope))
    with pytest.raises(ValueError, match="3 crop groups but 2 ropes"):
        blk(xs, [rope, rope])
