"""Parity with Hugging Face transformers DINOv3ViTModel and timm vit_*_patch16_dinov3 (Eva), both directions.

Random models are built offline (no hub), converted into geodino and back; CLS, storage and patch tokens agree
within 1e-5 in float32, for an MLP and a SwiGLU variant, 3 and 12 bands, on a non-square input.
"""

from __future__ import annotations

import os

import pytest
import torch

from geodino.errors import CheckpointError
from geodino.models import build_model
from geodino.models.checkpoints import build_from_state, load_model, read_backbone_weights, save_backbone, to_official
from geodino.models.checkpoints.hf import official_to_hf
from geodino.models.checkpoints.timm import official_to_timm, timm_model_for, timm_to_official

os.environ.setdefault("HF_HUB_OFFLINE", "1")
DIM, HEADS, DEPTH = 96, 4, 2
ATOL = 1e-5


def randomize(model: torch.nn.Module, seed: int = 0) -> None:
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * (0.3 if p.ndim == 1 else 0.05))


def tokens(model, x) -> torch.Tensor:
    with torch.no_grad():
        out = model.forward_features(x)
    return torch.cat([out["x_norm_clstoken"][:, None], out["x_storage_tokens"], out["x_norm_patchtokens"]], 1)


def hf_model(gated: bool, bands: int):
    from transformers import DINOv3ViTConfig, DINOv3ViTModel

    cfg = DINOv3ViTConfig(
        hidden_size=DIM,
        intermediate_size=256 if gated else 4 * DIM,
        num_hidden_layers=DEPTH,
        num_attention_heads=HEADS,
        num_channels=bands,
        num_register_tokens=4,
        use_gated_mlp=gated,
        hidden_act="silu" if gated else "gelu",
        layerscale_value=1e-5,
    )
    model = DINOv3ViTModel(cfg).eval()
    randomize(model)
    return model


VARIANTS = [(gated, bands) for gated in (False, True) for bands in (3, 12)]


@pytest.mark.parametrize(("gated", "bands"), VARIANTS, ids=lambda v: str(v))
def test_hf_parity_both_ways(gated, bands):
    hf = hf_model(gated, bands)
    x = torch.randn(2, bands, 48, 80)  # non-square: 3 x 5 patches
    with torch.no_grad():
        ref = hf(pixel_values=x).last_hidden_state
    geo = build_from_state(to_official(hf.state_dict(), "hf", num_heads=HEADS)).eval()
    assert geo.config["ffn_layer"] == ("swiglu" if gated else "mlp")
    torch.testing.assert_close(tokens(geo, x), ref, atol=ATOL, rtol=0)
    # and back: a fresh HF model loads the converted weights strictly and gives the same tokens
    back = hf_model(gated, bands)
    # transformers >= 5 keeps the blocks under `model.layer.` in state_dict() (4.x: `layer.`, as geodino writes)
    pre = "model." if any(k.startswith("model.layer.") for k in back.state_dict()) else ""
    state = {(pre + k if k.startswith("layer.") else k): v for k, v in official_to_hf(geo.state_dict()).items()}
    back.load_state_dict(state, strict=True)
    with torch.no_grad():
        torch.testing.assert_close(back(pixel_values=x).last_hidden_state, ref, atol=ATOL, rtol=0)


@pytest.mark.parametrize(("gated", "bands"), VARIANTS, ids=lambda v: str(v))
def test_timm_parity_both_ways(gated, bands):
    cfg = build_model(
        "vit_small_plus" if gated else "vit_small", embed_dim=DIM, depth=DEPTH, num_heads=HEADS, in_chans=bands,
        ffn_hidden_dim=256 if gated else 4 * DIM, device="meta",
    ).config  # fmt: skip
    tm = timm_model_for(cfg, qkv_bias=True, dynamic_img_size=True).eval()
    randomize(tm, 1)
    x = torch.randn(2, bands, 80, 48)
    with torch.no_grad():
        ref = tm.forward_features(x)
    geo = build_from_state(timm_to_official(tm.state_dict(), num_heads=HEADS)).eval()
    torch.testing.assert_close(tokens(geo, x), ref, atol=ATOL, rtol=0)
    back = timm_model_for(geo.config, qkv_bias=True, dynamic_img_size=True).eval()
    back.load_state_dict(official_to_timm(geo.state_dict(), qkv_bias=True), strict=True)
    with torch.no_grad():
        torch.testing.assert_close(back.forward_features(x), ref, atol=ATOL, rtol=0)


# a checkpoint or folder without a normalisation record is this test's input (that warning is
# test_normalization_records' subject)
@pytest.mark.filterwarnings("ignore:.*records no input normalisation:UserWarning")
def test_geodino_to_hf_folder_and_back(tmp_path):
    from transformers import DINOv3ViTModel

    torch.manual_seed(0)
    geo = build_model("vit_small_plus", embed_dim=DIM, depth=DEPTH, num_heads=HEADS, in_chans=12).eval()
    randomize(geo, 2)
    folder = save_backbone(geo, tmp_path / "hf_model", layout="hf")
    assert (folder / "config.json").is_file() and (folder / "model.safetensors").is_file()
    hf = DINOv3ViTModel.from_pretrained(folder).eval()
    x = torch.randn(1, 12, 32, 64)
    with torch.no_grad():
        ref = hf(pixel_values=x).last_hidden_state
    torch.testing.assert_close(tokens(geo, x), ref, atol=ATOL, rtol=0)
    again = load_model(folder).eval()  # an HF folder is a spec too (heads from config.json)
    assert again.num_heads == HEADS and again.config["ffn_hidden_dim"] == geo.config["ffn_hidden_dim"]
    torch.testing.assert_close(tokens(again, x), ref, atol=ATOL, rtol=0)


def test_timm_file_loads_as_backbone(tmp_path):
    geo = build_model("vit_tiny", depth=DEPTH).eval()
    randomize(geo, 3)
    with pytest.warns(UserWarning, match=r"timm's DINOv3 Eva stores no mask token"):
        path = save_backbone(geo, tmp_path / "timm.pth", layout="timm")
    raw = torch.load(path, weights_only=True)
    assert "reg_token" in raw and "blocks.0.gamma_1" in raw and "blocks.0.attn.q_bias" in raw
    w = read_backbone_weights(path)
    assert w.layout == "timm"
    x = torch.randn(1, 3, 32, 48)
    torch.testing.assert_close(tokens(load_model(path).eval(), x), tokens(geo, x), atol=ATOL, rtol=0)


def test_timm_release_layout_maps_to_official_release_keys():
    """timm's bias-free ViT-S (the distilled release) converts to the official key list (zero qkv bias added)."""
    import timm

    from tests.models.test_vit import official_keys

    # on the CPU, not the meta device: timm 1.0.20 (the lower bound) cannot build this model on meta
    tm = timm.create_model("vit_small_patch16_dinov3", pretrained=False, num_classes=0)
    state = timm_to_official(tm.state_dict())
    assert sorted(state) == official_keys(12)
    zero = timm_to_official({k: torch.zeros(v.shape) for k, v in tm.state_dict().items()})
    assert not official_to_timm(zero).keys() & {"blocks.0.attn.q_bias"}  # zero biases -> the non-qkvb variant


def test_untied_cls_norm_cannot_go_to_hf_or_timm(tmp_path):
    geo = build_model("vit_tiny", depth=1, untie_cls_and_patch_norms=True)
    with pytest.raises(CheckpointError, match="untied cls_norm"):
        save_backbone(geo, tmp_path / "x", layout="hf")
    with pytest.raises(CheckpointError, match="untied cls_norm"):
        official_to_timm(geo.state_dict())
