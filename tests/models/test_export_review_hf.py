"""Review of the HF exports as a transformers user loads them: a 4-band, patch-8, register-free folder written by
geodino loads in `DINOv3ViTModel.from_pretrained` with the same tokens, and a foreign folder's image processor
(`do_normalize: false`) is read as the preprocessing it performs."""

from __future__ import annotations

import json
import os

import pytest
import torch

from geodino.models import build_model
from geodino.models.checkpoints import read_backbone_weights, save_backbone

os.environ.setdefault("HF_HUB_OFFLINE", "1")
pytest.importorskip("transformers")


def _tokens(model, x):
    with torch.no_grad():
        out = model.forward_features(x)
    return torch.cat([out["x_norm_clstoken"][:, None], out["x_storage_tokens"], out["x_norm_patchtokens"]], 1)


@pytest.mark.parametrize(("patch", "registers"), [(8, 0), (8, 4)])
def test_four_band_patch8_folder_loads_in_transformers(tmp_path, patch, registers):
    from transformers import DINOv3ViTModel

    geo = build_model(
        "vit_small", embed_dim=64, depth=2, num_heads=4, patch_size=patch, in_chans=4, n_storage_tokens=registers
    ).eval()
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for p in geo.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * 0.05)
    norm = {
        "mean": [0.1, 0.2, 0.3, 0.4],
        "std": [0.5, 0.6, 0.7, 0.8],
        "scale": 1e-4,
        "bands": ["B04", "B03", "B02", "B08"],
    }
    folder = save_backbone(geo, tmp_path / "hf", layout="hf", normalization=norm)
    cfg = json.loads((folder / "config.json").read_text())
    pp = json.loads((folder / "preprocessor_config.json").read_text())
    assert (cfg["num_channels"], cfg["patch_size"], cfg["num_register_tokens"]) == (4, patch, registers)
    assert pp["image_mean"] == norm["mean"] and pp["image_std"] == norm["std"] and pp["rescale_factor"] == 1e-4
    hf = DINOv3ViTModel.from_pretrained(folder).eval()
    x = torch.randn(1, 4, 3 * patch, 5 * patch)
    with torch.no_grad():
        ref = hf(pixel_values=x).last_hidden_state
    assert ref.shape[1] == 1 + registers + 15
    torch.testing.assert_close(_tokens(geo, x), ref, atol=1e-5, rtol=0)
    assert read_backbone_weights(folder).normalization["bands"] == norm["bands"]


def test_processor_without_normalize_is_read_as_rescale_only(tmp_path):
    """A processor with do_normalize false applies only the rescale; its image_mean/std (ImageNet's, the defaults
    it keeps) were read as the folder's normalisation, so geodino standardised inputs transformers does not."""
    from transformers import DINOv3ViTConfig, DINOv3ViTImageProcessorFast, DINOv3ViTModel

    cfg = DINOv3ViTConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=2)
    DINOv3ViTModel(cfg).save_pretrained(tmp_path)
    proc = DINOv3ViTImageProcessorFast(do_normalize=False, do_resize=False)
    proc.save_pretrained(tmp_path)
    img = torch.arange(3 * 16 * 16, dtype=torch.float32).reshape(3, 16, 16) % 256
    want = proc(images=img, return_tensors="pt", do_convert_rgb=False)["pixel_values"][0]
    rec = read_backbone_weights(tmp_path).normalization
    mean, std = torch.tensor(rec["mean"])[:, None, None], torch.tensor(rec["std"])[:, None, None]
    got = (img * rec["scale"] + rec["offset"] - mean) / std
    torch.testing.assert_close(got, want, atol=1e-6, rtol=0)


def test_processor_with_one_mean_for_every_band_loads(tmp_path):
    """transformers takes one number for every channel (image_mean: 0.5); geodino refused such a folder
    ('lacks a numeric mean/std list'), though DINOv3ViTModel and its processor use it."""
    from transformers import DINOv3ViTConfig, DINOv3ViTImageProcessorFast, DINOv3ViTModel

    cfg = DINOv3ViTConfig(
        hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=2, num_channels=4
    )
    DINOv3ViTModel(cfg).save_pretrained(tmp_path)
    proc = DINOv3ViTImageProcessorFast(image_mean=0.5, image_std=0.25, do_resize=False)
    proc.save_pretrained(tmp_path)
    img = torch.arange(4 * 16 * 16, dtype=torch.float32).reshape(4, 16, 16) % 256
    want = proc(images=img, return_tensors="pt", do_convert_rgb=False, input_data_format="channels_first")
    rec = read_backbone_weights(tmp_path).normalization
    assert rec["mean"] == [0.5] * 4 and rec["std"] == [0.25] * 4
    got = (img * rec["scale"] - torch.tensor(rec["mean"])[:, None, None]) / torch.tensor(rec["std"])[:, None, None]
    torch.testing.assert_close(got, want["pixel_values"][0], atol=1e-5, rtol=0)


def test_bare_mean_std_record_exports_with_the_pixel_rescale(tmp_path):
    """A record with no DN scale (a foreign timm folder's pretrained_cfg: mean/std for pixels / 255) was written
    as rescale_factor 1, so transformers' processor standardised 8-bit pixels unscaled (255x off); now 1/255, what
    timm's transform and geodino's preprocess (dtype rule) apply to such a backbone."""
    from transformers import AutoImageProcessor

    geo = build_model("vit_small", embed_dim=32, depth=1, num_heads=2, in_chans=4).eval()
    bare = {"mean": [0.449] * 4, "std": [0.226] * 4}  # as read from timm's pretrained_cfg
    folder = save_backbone(geo, tmp_path / "hf", layout="hf", normalization=bare)
    proc = AutoImageProcessor.from_pretrained(folder)
    img = torch.randint(0, 256, (4, 16, 16), dtype=torch.uint8)
    got = proc(images=img, return_tensors="pt", input_data_format="channels_first")["pixel_values"][0]
    torch.testing.assert_close(got, (img.float() / 255 - 0.449) / 0.226, atol=1e-5, rtol=0)
    assert read_backbone_weights(folder).normalization["scale"] == 1.0  # geodino's own record unchanged
