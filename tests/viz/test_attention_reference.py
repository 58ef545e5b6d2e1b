"""geodino.viz.attention against independent computations: the CLS row recomputed by running the blocks by hand
(reference RoPE, storage/register columns dropped) for geodino ViTs with and without storage tokens and a timm ViT
with registers; the mass mask against DINO's `cumsum > 1 - mass` rule; nodata patches and all-nodata windows."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from geodino import cli
from geodino.backbones import load_backbone
from geodino.errors import InputError
from geodino.models import build_model
from geodino.models.layers.rope import rope_apply
from geodino.viz.attention import attention_maps, mass_mask
from tests.embed.conftest import random_image, write_tif
from tests.viz.conftest import dino_mask


def _input(bb, img: np.ndarray, valid: np.ndarray) -> torch.Tensor:
    x = bb.normalize(torch.from_numpy(np.ascontiguousarray(img)))[None]
    return torch.where(torch.from_numpy(valid)[None, None], x, torch.zeros(()))


def _geodino_by_hand(m, x: torch.Tensor, layer: int) -> np.ndarray:
    """CLS-to-patch softmax of block `layer`, blocks run one by one, RoPE by the reference `x·cos + rot(x)·sin`."""
    tok, (H, W) = m.prepare_tokens_with_masks(x)
    sin, cos = m.rope_embed(H=H, W=W)
    n = m.n_prefix_tokens
    for blk in m.blocks[:layer]:
        tok = blk(tok, m.rope(H, W))
    blk = m.blocks[layer]
    nh, d = blk.attn.num_heads, blk.attn.head_dim
    t = blk.attn.qkv(blk.norm1(tok)).view(1, tok.shape[1], 3, nh, d).permute(2, 0, 3, 1, 4)
    q, k = t[0].clone(), t[1].clone()
    q[:, :, n:], k[:, :, n:] = rope_apply(q[:, :, n:], sin, cos), rope_apply(k[:, :, n:], sin, cos)
    a = (q[:, :, :1] @ k.transpose(-1, -2) / math.sqrt(d)).softmax(-1)[0, :, 0, n:]
    return a.reshape(nh, H, W).double().numpy()


@pytest.mark.parametrize("storage", [0, 4])
def test_geodino_maps_equal_the_blocks_run_by_hand(storage):
    torch.manual_seed(0)
    m = build_model("vit_tiny", depth=3, in_chans=3, n_storage_tokens=storage).eval()
    with torch.no_grad():
        for blk in m.blocks:  # layer scale away from 1e-5, so the blocks before the chosen one matter
            blk.ls1.gamma.normal_(0, 0.5)
            blk.ls2.gamma.normal_(0, 0.5)
    bb = load_backbone(m)
    img = np.random.default_rng(1).random((3, 48, 64)).astype(np.float32)
    valid = np.ones((48, 64), bool)
    valid[:, :20] = False  # nodata: fed as zeros after normalisation, as attention_maps does
    for layer in (1, -1):
        maps = attention_maps(bb, {"image": img, "valid": valid}, layer=layer)
        with torch.no_grad():
            ref = _geodino_by_hand(m, _input(bb, img, valid), maps.layer)
        assert maps.heads.shape == ref.shape == (3, 3, 4)
        np.testing.assert_allclose(maps.heads, ref, rtol=1e-5, atol=1e-7)
        assert ref.sum(axis=(1, 2)).max() < 1  # the CLS (and storage) columns are left out


def test_timm_vit_with_registers_equals_its_blocks_run_by_hand():
    pytest.importorskip("timm")
    bb = load_backbone("timm:vit_small_patch14_reg4_dinov2?seed=0&img_size=56")
    m = bb.model
    assert m.num_prefix_tokens == 5  # CLS + 4 registers
    img = np.random.default_rng(2).random((3, 56, 42)).astype(np.float32)
    valid = np.ones((56, 42), bool)
    maps = attention_maps(bb, {"image": img, "valid": valid}, layer=1)
    with torch.no_grad():
        t = m.norm_pre(m.patch_drop(m._pos_embed(m.patch_embed(_input(bb, img, valid)))))
        t = m.blocks[0](t)
        blk = m.blocks[1]
        y = blk.norm1(t)
        nh = blk.attn.num_heads
        qkv = blk.attn.qkv(y).reshape(1, y.shape[1], 3, nh, -1).permute(2, 0, 3, 1, 4)
        q, k = blk.attn.q_norm(qkv[0]), blk.attn.k_norm(qkv[1])
        logits = q[:, :, :1] @ k.transpose(-1, -2) / math.sqrt(q.shape[-1])
        ref = logits.softmax(-1)[0, :, 0, 5:].reshape(nh, 4, 3).double().numpy()
    np.testing.assert_allclose(maps.heads, ref, rtol=1e-5, atol=1e-7)


def test_mass_mask_matches_dino_and_mass_one_keeps_every_patch():
    rng = np.random.default_rng(0)
    for conc in (0.05, 1.0, 10.0):
        a = rng.dirichlet(np.ones(48) * conc, size=6).reshape(6, 6, 8) * 0.9  # patch share of a softmax row
        a = np.maximum(a, 1e-300)  # a softmax is never 0 (DINO's rule drops exact zeros even at mass 1)
        for mass in (0.1, 0.6, 0.9, 1.0):
            np.testing.assert_array_equal(mass_mask(a, mass), dino_mask(a, mass))
    # cells under 1e-12 of the total (a peaked trained head) were dropped at --mass 1
    assert mass_mask(np.array([[1.0, 1e-13], [1e-15, 0.3]]), 1.0).all()


def test_the_mask_holds_the_mass_of_the_patches_with_data():
    m = build_model("vit_tiny", depth=2, in_chans=3).eval()
    bb = load_backbone(m)
    img = np.random.default_rng(3).random((3, 64, 64)).astype(np.float32)
    valid = np.zeros((64, 64), bool)
    valid[:, 40:] = True  # a nodata margin over the first 2.5 patch columns: columns 0-1 hold no valid pixel
    maps = attention_maps(bb, {"image": img, "valid": valid}, mass=0.6)
    assert maps.valid is not None and maps.valid.sum() == 8
    for mask, att in [(maps.mask, maps.mean), *zip(maps.head_masks, maps.heads)]:
        assert not (mask & ~maps.valid).any()  # never a nodata patch (invisible in the PNGs, NaN in the COG)
        held = att[mask].sum() / att[maps.valid].sum()
        assert held >= 0.6 - 1e-9
        assert held - att[mask].min() / att[maps.valid].sum() < 0.6  # smallest such set
    assert maps.info["kept_share"] == pytest.approx(maps.mask.sum() / 8)


def test_an_all_nodata_window_is_refused_in_one_line(tmp_path, capsys):
    data = random_image(64, 96)
    data[:, :, :40] = 0  # nodata 0 in every band: the first 40 columns
    tif = write_tif(tmp_path / "margin.tif", data, nodata=0)
    args = ["viz", "attention", str(tif), "-b", "arch:vit_tiny?depth=1", "--sensor", "imagenet"]
    assert cli.main([*args, "-o", str(tmp_path / "a"), "--window", "0", "0", "32", "32"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "no valid pixel" in err and "--window" in err
    assert not (tmp_path / "a" / "attention.json").exists()
    # valid pixels only in the part cut off (columns 32..39 hold none; 40.. are beyond the 32 px patch crop)
    assert cli.main([*args, "-o", str(tmp_path / "b"), "--window", "8", "0", "40", "32"]) == 2
    assert "whole 32 px" not in capsys.readouterr().err  # tiny has 16 px patches: 40 -> 32 px read
    assert cli.main([*args, "-o", str(tmp_path / "c"), "--window", "16", "0", "48", "32"]) == 0
    assert "patches with data" in capsys.readouterr().out


def test_a_point_left_of_the_image_is_refused_in_python_as_on_the_command_line(tmp_path):
    from geodino.viz.attention import visualize_attention
    from geodino.viz.attention_input import window_point

    assert window_point((-0.5, 3.7), None, "x.tif") == (-1, 3)  # floored, as the CLI floors it (int gave 0)
    with pytest.raises(InputError, match="outside --window"):
        window_point((-0.5, 3), (0, 0, 32, 32), "x.tif")
    tif = write_tif(tmp_path / "s.tif", random_image(32, 32))
    with pytest.raises(InputError, match="col -1"):
        visualize_attention(tif, "arch:vit_tiny?depth=1", tmp_path / "o", point=(-0.5, 3), sensor="imagenet")


def test_a_point_in_a_nodata_patch_is_refused(tmp_path, capsys):
    data = random_image(48, 64)
    data[:, :, :20] = 0  # nodata 0: patch column 0 (px 0-15) has no valid pixel, column 1 (16-31) some
    tif = write_tif(tmp_path / "margin.tif", data, nodata=0)
    args = ["viz", "attention", str(tif), "-b", "arch:vit_tiny?depth=1", "--sensor", "imagenet"]
    assert cli.main([*args, "-o", str(tmp_path / "a"), "--point", "5", "30"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "without a valid pixel" in err and "col 5, row 30" in err
    assert cli.main([*args, "-o", str(tmp_path / "b"), "--point", "17", "30"]) == 0  # a patch holding data
