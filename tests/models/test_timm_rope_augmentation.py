"""A timm export carries the backbone's train-time RoPE coordinate augmentation in `model_args` (`rope_rescale_coords`
2 for the released recipe; shift and jitter when set), which timm's DINOv3 entries leave off: a timm or torchgeo
model fine-tuned unfrozen from the export trained with no RoPE augmentation (train- and eval-mode tokens were
equal), unlike geodino and the HF export (`pos_embed_rescale`). Eval-mode tokens are unchanged."""

from __future__ import annotations

import json

import pytest
import torch

from geodino.models import build_model
from geodino.models.checkpoints import save_backbone


def _timm_folder(tmp_path, **kw):
    torch.manual_seed(0)
    # LayerScale 1 (as the small recipe trains): at 1e-5 the blocks barely move the tokens
    model = build_model("vit_tiny", patch_size=8, in_chans=4, depth=2, layerscale_init=1.0, **kw)
    return model, save_backbone(model, tmp_path / "timm_dir", layout="timm")


def test_the_released_rescale_travels_and_timm_trains_with_it(tmp_path):
    timm = pytest.importorskip("timm")
    model, folder = _timm_folder(tmp_path)
    assert model.config["pos_embed_rope_rescale_coords"] == 2.0
    args = json.loads((folder / "config.json").read_text())["model_args"]
    assert args["rope_rescale_coords"] == 2.0
    assert "rope_shift_coords" not in args and "rope_jitter_coords" not in args
    net = timm.create_model(f"local-dir:{folder}", pretrained=True)
    x = torch.randn(1, 4, 32, 32)
    with torch.no_grad():
        torch.manual_seed(1)
        a = net.train().forward_features(x)
        torch.manual_seed(2)
        b = net.forward_features(x)
        evaluated = net.eval().forward_features(x)
        ref = model.eval().forward_features(x)
    assert (a - b).abs().max() > 1e-3  # coordinates rescaled at random while training
    want = torch.cat([ref["x_norm_clstoken"][:, None], ref["x_storage_tokens"], ref["x_norm_patchtokens"]], 1)
    torch.testing.assert_close(evaluated, want, atol=1e-5, rtol=1e-5)  # inference as before


def test_shift_and_jitter_travel_and_no_augmentation_stays_off(tmp_path):
    timm = pytest.importorskip("timm")
    _, folder = _timm_folder(
        tmp_path, pos_embed_rope_shift_coords=0.5, pos_embed_rope_jitter_coords=1.5, pos_embed_rope_rescale_coords=None
    )
    args = json.loads((folder / "config.json").read_text())["model_args"]
    assert (args["rope_shift_coords"], args["rope_jitter_coords"]) == (0.5, 1.5)
    assert "rope_rescale_coords" not in args
    timm.create_model(f"local-dir:{folder}", pretrained=True)  # timm takes them

    _, plain = _timm_folder(tmp_path / "plain", pos_embed_rope_rescale_coords=None)
    net = timm.create_model(f"local-dir:{plain}", pretrained=True)
    x = torch.randn(1, 4, 32, 32)
    with torch.no_grad():
        trained, evaluated = net.train().forward_features(x), net.eval().forward_features(x)
    assert torch.equal(trained, evaluated)
