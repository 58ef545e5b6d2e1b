"""geodino_vit / datamodule_stats read bands given as one string as load_backbone does ("blue,green,red,nir", or a
count); a string was iterated letter by letter (bands="red" became three bands r, e, d, each given the mean kernel
with a warning). out_indices=N takes the last N blocks, as timm's out_indices=N, instead of a TypeError."""

from __future__ import annotations

import warnings

import torch

from geodino.integrations.terratorch import datamodule_stats, geodino_vit
from geodino.models import build_model
from geodino.models.checkpoints import save_backbone

REC = {
    "bands": ["blue", "green", "red", "nir"],
    "scale": 1e-4,
    "offset": 0.0,
    "mean": [0.1, 0.12, 0.13, 0.3],
    "std": [0.05, 0.05, 0.06, 0.1],
}


def _export(tmp_path):
    torch.manual_seed(0)
    model = build_model("vit_tiny", in_chans=4, depth=3, embed_dim=32, num_heads=2)
    return save_backbone(model, tmp_path / "bb.pth", normalization=REC), model


def test_bands_as_one_string_are_names_not_letters(tmp_path):
    path, model = _export(tmp_path)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # every name matches: no mean-kernel warning
        bb = geodino_vit(ckpt_path=str(path), bands="nir,red,green,blue")
        one = geodino_vit(ckpt_path=str(path), model_bands="red")
    w, src = bb.model.patch_embed.proj.weight, model.patch_embed.proj.weight
    assert bb.in_chans == 4 and one.in_chans == 1
    torch.testing.assert_close(w, src[:, [3, 2, 1, 0]])  # kernels moved by name, not adapted
    assert datamodule_stats(str(path), bands="nir,red") == datamodule_stats(str(path), bands=["nir", "red"])


def test_out_indices_count_takes_the_last_blocks(tmp_path):
    path, _ = _export(tmp_path)
    bb = geodino_vit(ckpt_path=str(path), out_indices=2)
    assert bb.out_indices == [1, 2] and bb.out_channels == [32, 32]
    assert len(bb(torch.randn(1, 4, 32, 32))) == 2
