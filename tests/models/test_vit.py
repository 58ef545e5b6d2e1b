"""DinoVisionTransformer: official layout, sizes, outputs, list-of-crops forward, masks, drop path, init."""

from __future__ import annotations

import math

import pytest
import torch

from geodino.errors import ConfigError, InputError
from geodino.models import ARCHS, DinoVisionTransformer, build_model, count_parameters


def official_keys(depth: int, *, swiglu: bool = False, qkv_bias: bool = True, extra_norms: tuple[str, ...] = ()):
    """Key list of an official DINOv3 ViT state_dict as listed in the reference notes (section 1)."""
    keys = ["cls_token", "storage_tokens", "mask_token", "patch_embed.proj.weight", "patch_embed.proj.bias"]
    keys.append("rope_embed.periods")
    for i in range(depth):
        b = f"blocks.{i}."
        keys += [b + "norm1.weight", b + "norm1.bias", b + "attn.qkv.weight"]
        if qkv_bias:
            keys += [b + "attn.qkv.bias", b + "attn.qkv.bias_mask"]
        keys += [b + "attn.proj.weight", b + "attn.proj.bias", b + "ls1.gamma", b + "norm2.weight", b + "norm2.bias"]
        ffn = ["w1", "w2", "w3"] if swiglu else ["fc1", "fc2"]
        keys += [f"{b}mlp.{n}.{p}" for n in ffn for p in ("weight", "bias")]
        keys += [b + "ls2.gamma"]
    keys += ["norm.weight", "norm.bias"]
    for n in extra_norms:
        keys += [f"{n}.weight", f"{n}.bias"]
    return sorted(keys)


@pytest.mark.parametrize(
    ("arch", "n_params", "n_keys", "depth", "dim", "hidden"),
    [
        ("vit_small", 21_601_152, 188, 12, 384, 1536),
        ("vit_large", 303_154_176, 368, 24, 1024, 4096),
    ],
)
def test_official_key_list_and_sizes(arch, n_params, n_keys, depth, dim, hidden):
    model = build_model(arch, device="meta")
    sd = model.state_dict()
    assert sorted(sd) == official_keys(depth)
    assert len(sd) == n_keys
    assert count_parameters(model) == n_params
    assert sd["cls_token"].shape == (1, 1, dim)
    assert sd["storage_tokens"].shape == (1, 4, dim)
    assert sd["mask_token"].shape == (1, dim)
    assert sd["patch_embed.proj.weight"].shape == (dim, 3, 16, 16)
    assert sd["rope_embed.periods"].shape == (dim // model.num_heads // 4,)
    assert sd["blocks.0.attn.qkv.weight"].shape == (3 * dim, dim)
    assert sd["blocks.0.attn.qkv.bias_mask"].shape == (3 * dim,)
    assert sd["blocks.0.mlp.fc1.weight"].shape == (hidden, dim)
    assert sd["blocks.0.mlp.fc2.weight"].shape == (dim, hidden)


def test_vit_7b_on_meta_without_allocation():
    model = build_model("vit_7b", device="meta")
    assert count_parameters(model) == 6_716_043_264
    assert all(p.is_meta for p in model.parameters())
    sd = model.state_dict()
    assert len(sd) == 610
    assert sorted(sd) == official_keys(40, swiglu=True, qkv_bias=False, extra_norms=("local_cls_norm",))
    assert sd["blocks.0.mlp.w1.weight"].shape == (8192, 4096)
    assert sd["rope_embed.periods"].shape == (32,)


@pytest.mark.parametrize(
    ("arch", "hidden", "n_params"),
    [("vit_small_plus", 1536, 28_697_472), ("vit_large_plus", 4096, 403_915_776), ("vit_huge_plus", 5120, 840_633_600)],
)
def test_swiglu_archs(arch, hidden, n_params):
    model = build_model(arch, device="meta")
    assert model.blocks[0].mlp.w1.out_features == hidden
    assert model.blocks[0].mlp.w3.in_features == hidden
    assert count_parameters(model) == n_params


def test_meta_model_materialises_and_inits():
    model = build_model("vit_tiny", depth=2, device="meta")
    model.to_empty(device="cpu")
    model.init_weights()
    assert torch.isfinite(torch.cat([p.flatten() for p in model.parameters()])).all()
    assert model.blocks[1].attn.qkv.bias_mask[192:384].eq(0).all()


def test_official_init():
    torch.manual_seed(0)
    m = build_model("vit_small", depth=2)
    assert m.mask_token.abs().max() == 0
    assert m.blocks[0].ls1.gamma.eq(1e-5).all() and m.blocks[1].ls2.gamma.eq(1e-5).all()
    mask = m.blocks[0].attn.qkv.bias_mask
    assert mask[:384].eq(1).all() and mask[384:768].eq(0).all() and mask[768:].eq(1).all()
    assert m.blocks[0].attn.qkv.bias.abs().max() == 0
    assert abs(m.blocks[0].mlp.fc1.weight.std().item() - 0.02) < 0.001
    assert abs(m.cls_token.std().item() - 0.02) < 0.004
    bound = math.sqrt(1 / (3 * 16 * 16))
    w = m.patch_embed.proj.weight
    assert w.abs().max() <= bound and w.abs().max() > 0.9 * bound
    periods = m.rope_embed.periods
    expected = torch.tensor([100 ** (2 * j / 32) for j in range(16)])
    torch.testing.assert_close(periods, expected)
    assert m.norm.eps == 1e-5


def test_forward_outputs_and_config_rebuild():
    m = build_model("vit_tiny", depth=2, in_chans=5).eval()
    x = torch.randn(2, 5, 48, 64)
    out = m.forward_features(x)
    assert out["x_norm_clstoken"].shape == (2, 192)
    assert out["x_storage_tokens"].shape == (2, 4, 192)
    assert out["x_norm_patchtokens"].shape == (2, 12, 192)
    assert out["x_prenorm"].shape == (2, 17, 192)
    assert out["masks"] is None
    torch.testing.assert_close(m(x), out["x_norm_clstoken"])
    # The final norm is a LayerNorm over all tokens when norms are tied.
    ref = m.norm(out["x_prenorm"])
    torch.testing.assert_close(out["x_norm_patchtokens"], ref[:, 5:])
    again = build_model(**m.config)
    assert isinstance(again, DinoVisionTransformer)
    assert {k: v.shape for k, v in again.state_dict().items()} == {k: v.shape for k, v in m.state_dict().items()}
    assert (m.embed_dim, m.patch_size, m.n_blocks, m.num_heads, m.n_storage_tokens, m.in_chans) == (192, 16, 2, 3, 4, 5)


@pytest.mark.parametrize("concat", [True, False, None])
def test_list_of_crops_matches_separate_forwards(concat, monkeypatch):
    """The concatenated-token path (GPU default, forced here on CPU) and the per-group path (CPU default) both
    equal separate forwards of each crop group."""
    torch.manual_seed(0)
    m = build_model("vit_tiny", depth=2).eval()
    calls = []
    for blk in m.blocks:
        blk.concat_groups = concat
        monkeypatch.setattr(blk.attn, "qkv", _Spy(blk.attn.qkv, calls))
    with torch.no_grad():
        for blk in m.blocks:  # make the residual branches matter
            blk.ls1.gamma.fill_(1.0)
            blk.ls2.gamma.fill_(1.0)
    g, loc = torch.randn(2, 3, 64, 64), torch.randn(3, 3, 32, 48)
    masks = torch.zeros(2, 16, dtype=torch.bool)
    masks[0, :5] = True
    with torch.no_grad():
        both = m.forward_features([g, loc], [masks, None])
        n_rows = list(calls)
        sep = [m.forward_features(g, masks), m.forward_features(loc)]
    tokens = (2 * (16 + 5), 3 * (6 + 5))  # batch x (patches + cls + 4 storage) of each group
    assert n_rows == ([sum(tokens)] * 2 if concat else list(tokens) * 2)  # one qkv call per block (per group)
    for a, b in zip(both, sep):
        for k in ("x_norm_clstoken", "x_storage_tokens", "x_norm_patchtokens", "x_prenorm"):
            torch.testing.assert_close(a[k], b[k], atol=2e-5, rtol=1e-5)
    assert both[0]["masks"] is masks


class _Spy(torch.nn.Module):
    """Records the number of token rows each call of the wrapped layer sees."""

    def __init__(self, inner: torch.nn.Module, calls: list) -> None:
        super().__init__()
        self.inner, self.calls = inner, calls

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.calls.append(x.shape[0])
        return self.inner(x)


def test_masks_replace_patches_with_mask_token():
    m = build_model("vit_tiny", depth=1).eval()
    with torch.no_grad():
        m.mask_token.fill_(3.0)
    x = torch.randn(1, 3, 32, 32)
    masks = torch.tensor([[True, False, False, True]])
    tokens, hw = m.prepare_tokens_with_masks(x, masks)
    assert hw == (2, 2)
    assert tokens.shape == (1, 9, 192)
    assert tokens[0, 5].eq(3.0).all() and tokens[0, 8].eq(3.0).all()
    assert not tokens[0, 6].eq(3.0).all()
    torch.testing.assert_close(tokens[0, 0], m.cls_token[0, 0])
    torch.testing.assert_close(tokens[0, 1:5], m.storage_tokens[0])


def test_local_cls_norm_used_for_list_index_1_in_training_only():
    m = build_model("vit_tiny", depth=1, untie_global_and_local_cls_norm=True, pos_embed_rope_rescale_coords=None)
    with torch.no_grad():
        m.local_cls_norm.weight.fill_(2.0)
    x = [torch.randn(2, 3, 32, 32), torch.randn(2, 3, 32, 32)]
    m.train()
    out = m.forward_features(x)
    torch.testing.assert_close(out[1]["x_norm_clstoken"], m.local_cls_norm(out[1]["x_prenorm"][:, 0]))
    torch.testing.assert_close(out[0]["x_norm_clstoken"], m.norm(out[0]["x_prenorm"][:, 0]))
    m.eval()
    out = m.forward_features(x)
    torch.testing.assert_close(out[1]["x_norm_clstoken"], m.norm(out[1]["x_prenorm"][:, 0]))


def test_cls_norm_untied():
    m = build_model("vit_tiny", depth=1, untie_cls_and_patch_norms=True).eval()
    with torch.no_grad():
        m.cls_norm.bias.fill_(5.0)
    out = m.forward_features(torch.randn(1, 3, 32, 32))
    torch.testing.assert_close(out["x_norm_clstoken"], m.cls_norm(out["x_prenorm"][:, 0]))
    inter = m.get_intermediate_layers(torch.randn(1, 3, 32, 32), return_class_token=True)
    assert inter[0][1].mean() > 4.0


def test_get_intermediate_layers_official_semantics():
    m = build_model("vit_tiny", depth=4).eval()
    x = torch.randn(2, 3, 32, 48)
    with torch.no_grad():
        last = m.get_intermediate_layers(x)
        assert len(last) == 1 and last[0].shape == (2, 6, 192)
        torch.testing.assert_close(last[0], m.forward_features(x)["x_norm_patchtokens"])
        maps = m.get_intermediate_layers(x, n=[0, 2], reshape=True, return_class_token=True, return_extra_tokens=True)
        assert len(maps) == 2
        fmap, cls, extra = maps[1]
        assert fmap.shape == (2, 192, 2, 3) and cls.shape == (2, 192) and extra.shape == (2, 4, 192)
        four = m.get_intermediate_layers(x, n=4, norm=False)
        assert len(four) == 4
        # Layer 2 of n=[0, 2] equals the third of the four last (un-normed equals normed before the norm).
        torch.testing.assert_close(m.norm(four[2]), maps[1][0].flatten(2).transpose(1, 2))
    with pytest.raises(InputError, match="out of range"):
        m.get_intermediate_layers(x, n=[7])


def test_drop_path_is_batch_subset():
    torch.manual_seed(0)
    blk = build_model("vit_tiny", depth=1, drop_path_rate=0.5).blocks[0]
    with torch.no_grad():
        blk.ls1.gamma.fill_(1.0)
        blk.ls2.gamma.fill_(0.0)  # only the attention branch contributes
    x = torch.randn(4, 7, 192)
    blk.eval()
    full = blk(x) - x  # residual of every sample
    blk.train()
    out = blk(x) - x
    hit = [s for s in range(4) if out[s].abs().max() > 0]
    assert len(hit) == 2  # subset of int(4 · 0.5) samples
    for s in hit:
        torch.testing.assert_close(out[s], 2.0 * full[s], atol=1e-5, rtol=1e-5)  # scaled by b / subset


def test_bad_input_messages():
    m = build_model("vit_tiny", depth=1)
    with pytest.raises(InputError, match=r"image size 30x32 is not a multiple of the patch size 16"):
        m(torch.randn(1, 3, 30, 32))
    with pytest.raises(InputError, match="input has 4 bands but the backbone expects 3"):
        m(torch.randn(1, 4, 32, 32))
    with pytest.raises(ConfigError, match=r"unknown architecture 'vit_smal'.*did you mean vit_small.*vit_tiny"):
        build_model("vit_smal")
    with pytest.raises(ConfigError, match="unknown backbone option"):
        build_model("vit_tiny", dpeth=2)


def test_all_archs_listed():
    assert {"vit_tiny", "vit_small", "vit_small_plus", "vit_base", "vit_large", "vit_large_plus"} <= set(ARCHS)
    assert {"vit_huge_plus", "vit_7b"} <= set(ARCHS)
