"""geodino_vit's `pretrained` (TerraTorch's `backbone_pretrained`) without `ckpt_path`: there are no weights to load,
so `backbone_pretrained: true` with the checkpoint key forgotten built a random ViT and fine-tuned it from scratch
without a word. Now refused in one line; left out, or false, still gives the random `arch`. Runs without
TerraTorch."""

from __future__ import annotations

import pytest
import torch

from geodino.errors import ConfigError
from geodino.integrations.terratorch import geodino_vit
from geodino.models import build_model
from geodino.models.checkpoints import save_backbone


def test_pretrained_true_without_a_checkpoint_is_refused():
    with pytest.raises(ConfigError, match=r"pretrained=True but no ckpt_path.*backbone_pretrained: false for a random"):
        geodino_vit(arch="vit_tiny", patch_size=8, bands=3, pretrained=True)
    for flag in ({}, {"pretrained": False}):  # a random arch, as documented
        assert geodino_vit(arch="vit_tiny", patch_size=8, bands=3, **flag).out_channels[-1] == 192


def test_pretrained_left_out_or_true_loads_the_checkpoint_and_false_does_not(tmp_path):
    torch.manual_seed(0)
    model = build_model("vit_tiny", patch_size=8, in_chans=3, depth=2)
    path = str(save_backbone(model, tmp_path / "bb.safetensors"))
    want = model.state_dict()["blocks.0.attn.qkv.weight"]
    for flag in ({}, {"pretrained": True}):
        assert torch.equal(geodino_vit(ckpt_path=path, **flag).model.state_dict()["blocks.0.attn.qkv.weight"], want)
    torch.manual_seed(1)
    got = geodino_vit(ckpt_path=path, pretrained=False).model.state_dict()["blocks.0.attn.qkv.weight"]
    assert got.shape == want.shape and not torch.equal(got, want)
