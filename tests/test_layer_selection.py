"""Layer selection means the same across geodino: `layer_indices` / `FrozenBackbone.features` (an int is a count
of last blocks, as DINOv3's `get_intermediate_layers(n=int)`), embed's `parse_layers` (names and block indices; a
bare int, which read as block N there, is refused in one line), the probes' `resolve_layers`; `four_even` is evenly
spaced and ends at the last block at any depth >= 4; intermediate layers do not run the blocks after the last one
asked for."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch

from geodino.backbones import layer_indices, load_backbone
from geodino.embed.backbone import parse_layers
from geodino.errors import ConfigError
from geodino.eval.layer_choice import LayerError, resolve_layers

SPEC = "arch:vit_small?depth=6&embed_dim=16&num_heads=2&patch_size=8&seed=0"


@pytest.fixture(scope="module")
def fb():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fb = load_backbone(SPEC)
    g = torch.Generator().manual_seed(3)
    with torch.no_grad():  # LayerScale 1e-5 makes every block nearly the identity: make them matter
        for blk in fb.model.blocks:
            for ls in (blk.ls1, blk.ls2):
                ls.gamma.copy_(torch.randn(ls.gamma.shape, generator=g) * 0.5)
    return fb


def _x(fb) -> torch.Tensor:
    return fb.normalize(torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(1)))


# ------------------------------------------------------------------------------------------- embed's layers


@pytest.mark.parametrize("value", [2, np.int64(2), torch.tensor(2)])
def test_embed_refuses_a_bare_int_that_features_reads_as_last_blocks(value):
    """parse_layers(2) was [2] (block 2) while features(layers=2) is the last 2 blocks."""
    with pytest.raises(ConfigError) as info:
        parse_layers(value)
    msg = str(info.value)
    assert "\n" not in msg and "layers=2" in msg and "[2]" in msg and "[-2, -1]" in msg and "'-2,-1'" in msg


@pytest.mark.parametrize("value", [True, 0, -1])
def test_embed_refuses_other_bare_numbers(value):
    with pytest.raises(ConfigError, match=r"^layers="):
        parse_layers(value)


def test_embed_keeps_its_documented_block_index_syntax():
    assert parse_layers("2") == [2]  # the CLI's --layers 2 / layers=2 override: block 2, as documented
    assert parse_layers("4, 8,11") == [4, 8, 11]
    assert parse_layers("-2,-1") == [-2, -1] and layer_indices(parse_layers("-2,-1"), 12) == [10, 11]
    assert parse_layers([2]) == [2] and parse_layers(np.array([3, -1])) == [3, -1]
    assert parse_layers(["3", 1.0]) == [3, 1]
    for bad in ("", "a,b", [], [2.5], None):
        with pytest.raises(ConfigError, match=r"layers="):
            parse_layers(bad)


@pytest.mark.parametrize("name", ["last", "four_last", "four_even", "four_even_official"])
def test_embed_takes_every_layer_set_features_takes(name):
    """four_even_official was refused by embed though features took it; names are read as features reads them."""
    assert parse_layers(name) == name and parse_layers(f" {name.upper()} ") == name
    assert layer_indices(parse_layers(name), 24) == layer_indices(name, 24)
    assert layer_indices(parse_layers("four_even_official"), 24) == [4, 11, 17, 23]


def test_embed_raster_takes_four_even_official_and_refuses_an_int(tmp_path, fb):
    from geodino.embed import embed_raster
    from tests.embed.conftest import random_image, read_all, write_tif

    src = write_tif(tmp_path / "in.tif", random_image(32, 32))
    with pytest.raises(ConfigError, match=r"layers=2 \(an int\) is ambiguous"):
        embed_raster(src, fb, tmp_path / "int.tif", tile=32, overlap=0, layers=2, progress=False)
    out = embed_raster(src, fb, tmp_path / "o.tif", tile=32, overlap=0, layers="four_even_official", progress=False)
    data, *_, names, _, _ = read_all(out)
    # depth 6: the official i * (6 // 4) - 1 = blocks 0..3, each 16 features
    assert data.shape[0] == 64 and [names[i][:3] for i in (0, 16, 32, 48)] == ["L0_", "L1_", "L2_", "L3_"]
    maps, _ = fb.features(fb.normalize(torch.from_numpy(random_image(32, 32)[None] / np.float32(255))), [0, 1, 2, 3])
    np.testing.assert_allclose(data[16:32], maps[1][0].numpy(), atol=1e-5)


# ------------------------------------------------------------------------------------------- four_even


def test_four_even_is_evenly_spaced_and_ends_at_the_last_block():
    assert layer_indices("four_even", 12) == [2, 5, 8, 11]  # unchanged where 4 divides the depth
    assert layer_indices("four_even", 24) == [5, 11, 17, 23]
    assert layer_indices("four_even", 40) == [9, 19, 29, 39]
    assert layer_indices("four_even", 6) == [1, 2, 4, 5]  # was [0, 1, 2, 3]: the last two blocks never read
    assert layer_indices("four_even", 13) == [2, 6, 9, 12]  # was [2, 5, 8, 11]
    for n in range(4, 65):
        idx = layer_indices("four_even", n)
        gaps = np.diff([-1, *idx])
        assert idx[-1] == n - 1 and len(set(idx)) == 4 and gaps.max() - gaps.min() <= 1, (n, idx)
        if n % 4 == 0:  # every quarter of the depth, the official FOUR_EVEN_INTERVALS formula
            assert idx == [i * (n // 4) - 1 for i in range(1, 5)]


def test_four_even_official_is_the_official_formula_at_every_depth():
    for n in range(4, 65):
        want = [4, 11, 17, 23] if n == 24 else [i * (n // 4) - 1 for i in range(1, 5)]
        assert layer_indices("four_even_official", n) == want


@pytest.mark.parametrize("name", ["four_even", "four_even_official"])
@pytest.mark.parametrize("n", [1, 2, 3])
def test_four_even_under_four_blocks_is_refused_in_one_line(name, n):
    with pytest.raises(ConfigError) as info:
        layer_indices(name, n)
    assert "\n" not in str(info.value) and "needs four blocks" in str(info.value)


def test_probe_layer_choice_agrees():
    assert resolve_layers("four_even_official", 24, True) == "four_even_official"
    with pytest.raises(LayerError, match="needs four layers"):  # features would refuse it mid-run
        resolve_layers("four_even", 3, False)
    with pytest.raises(ConfigError, match="bare number"):  # was a TypeError: 'int' object is not iterable
        resolve_layers(2, 12, False)


# ------------------------------------------------------------------------------------------- blocks run


def _count_eager(model, calls: list[int]) -> None:
    for i, blk in enumerate(model.blocks):
        orig = blk.forward_list

        def counted(*a, _i=i, _f=orig, **k):
            calls.append(_i)
            return _f(*a, **k)

        blk.forward_list = counted


def _reference(model, x: torch.Tensor, idx: list[int]) -> list[torch.Tensor]:
    """Every block run by hand, the outputs of `idx` normed: the official computation."""
    tokens, (H, W) = model.prepare_tokens_with_masks(x)
    rope = [model.rope(H, W)]
    xs, out = [tokens], []
    for i, blk in enumerate(model.blocks):
        xs = blk.forward_list(xs, rope)
        if i in idx:
            out.append(model.norm(xs[0])[:, model.n_prefix_tokens :])
    return out


def test_eager_intermediate_layers_stop_after_the_last_block_asked_for(fb):
    import copy

    model = copy.deepcopy(fb.model).eval()
    x = _x(fb)
    with torch.no_grad():
        ref = _reference(model, x, [1, 3])
        calls: list[int] = []
        _count_eager(model, calls)
        got = model.get_intermediate_layers(x, n=[3, 1])
        assert calls == [0, 1, 2, 3]  # was all 6
        assert all(torch.equal(a, b) for a, b in zip(got, ref))
        calls.clear()
        model.get_intermediate_layers(x, n=1)
        assert calls == list(range(6))
        calls.clear()
        maps, _ = fb.features(x, [1])  # the backbone API on the untouched model: the same numbers
        assert torch.equal(model.get_intermediate_layers(x, n=[1], reshape=True)[0], maps[0]) and calls == [0, 1]
        calls.clear()
        model.train()  # training mode runs every block, as the official (drop path / RoPE jitter draw per block)
        model.get_intermediate_layers(x, n=[1])
        assert calls == list(range(6))


def test_fast_path_intermediate_layers_stop_after_the_last_block_asked_for(fb):
    from geodino.models.frozen import fast_path

    fast = fast_path(fb.model, mode="float32", compile=False)
    calls: list[int] = []
    for i, blk in enumerate(fast.core.blocks):
        blk.register_forward_pre_hook(lambda mod, args, _i=i: calls.append(_i))
    x = _x(fb)
    full, _ = fast._run(x, (2, 5), True)  # every block runs
    calls.clear()
    got = fast.get_intermediate_layers(x, n=[2])
    assert calls == [0, 1, 2]  # was all 6
    assert torch.equal(got[0], full[0][:, fast.n_prefix_tokens :])
    calls.clear()
    feats = fast.forward_features(x)  # the final norm output needs every block
    assert calls == list(range(6))
    torch.testing.assert_close(feats["x_prenorm"], fb.model.forward_features(x)["x_prenorm"], atol=1e-4, rtol=0)
