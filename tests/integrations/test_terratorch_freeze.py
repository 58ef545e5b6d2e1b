"""TerraTorch's `freeze_backbone: true` calls `encoder.freeze()` when the backbone has one, else only sets
requires_grad=False; Lightning then puts the model in train mode every epoch. A frozen geodino ViT in train mode
applied the released RoPE box jittering (rescale_coords=2): its tokens got a random coordinate scale at each training
step and none at validation. `freeze()` now keeps the ViT in eval mode, as the official frozen evaluations run it.
Runs without TerraTorch (PixelWiseModel.freeze_encoder is `encoder.freeze()` when it exists)."""

from __future__ import annotations

import torch

from geodino.integrations.terratorch import geodino_vit


def test_a_frozen_backbone_gives_the_same_tokens_in_train_mode():
    torch.manual_seed(0)
    bb = geodino_vit(arch="vit_tiny", patch_size=8, bands=3, out_indices=[11])
    with torch.no_grad():
        for name, p in bb.named_parameters():
            if name.endswith("gamma"):
                p.fill_(1.0)  # trained LayerScale magnitudes, so the RoPE coordinates matter
    assert bb.model.rope_embed.rescale_coords == 2.0
    x = torch.rand(1, 3, 64, 64)
    bb.eval()
    with torch.no_grad():
        want = bb(x)[0]
    if hasattr(bb, "freeze"):  # PixelWiseModel.freeze_encoder, TerraTorch 1.2.13
        bb.freeze()
    else:
        bb.requires_grad_(False)
    bb.train()  # what Lightning does at every training epoch
    assert not any(p.requires_grad for p in bb.parameters())
    with torch.no_grad():
        for _ in range(3):
            torch.testing.assert_close(bb(x)[0], want, rtol=0, atol=0)
    assert not bb.model.training


def test_an_unfrozen_backbone_trains_as_before():
    bb = geodino_vit(arch="vit_tiny", patch_size=8, bands=3, out_indices=[11])
    bb.eval()
    bb.train()
    assert bb.model.training and bb.model.rope_embed.training
    assert all(p.requires_grad for p in bb.model.blocks[11].parameters())
