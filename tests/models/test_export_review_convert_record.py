"""Review of `geodino convert --bands` on a file whose normalisation names no bands (a foreign HF processor's
mean/std): the kept bands keep their statistics, in the new order, named by --src-bands (R, G, B by default for
3 values); the record was dropped with a warning naming no bands."""

from __future__ import annotations

import json
import warnings

import pytest
import torch

from geodino.models.checkpoints import read_backbone_weights
from geodino.models.checkpoints.convert import convert_checkpoint

pytest.importorskip("transformers")


def _foreign_hf(folder, channels: int) -> None:
    from transformers import DINOv3ViTConfig, DINOv3ViTModel

    cfg = DINOv3ViTConfig(
        hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=2, num_channels=channels
    )
    DINOv3ViTModel(cfg).save_pretrained(folder)
    pp = {
        "image_processor_type": "DINOv3ViTImageProcessorFast",
        "do_rescale": True,
        "rescale_factor": 1e-4,
        "do_normalize": True,
        "image_mean": [0.1 * (i + 1) for i in range(channels)],
        "image_std": [0.5 + 0.1 * i for i in range(channels)],
    }
    (folder / "preprocessor_config.json").write_text(json.dumps(pp))


def test_unnamed_record_follows_src_bands(tmp_path):
    torch.manual_seed(0)
    _foreign_hf(tmp_path / "hf", 4)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no "records none" warning: every kept band has its statistics
        out = convert_checkpoint(
            tmp_path / "hf", tmp_path / "two.safetensors", src_bands=["B04", "B03", "B02", "B08"], bands=["B08", "B03"]
        )
    rec = read_backbone_weights(out).normalization
    assert rec["bands"] == ["B08", "B03"] and rec["scale"] == 1e-4
    torch.testing.assert_close(torch.tensor(rec["mean"]), torch.tensor([0.4, 0.2]))
    torch.testing.assert_close(torch.tensor(rec["std"]), torch.tensor([0.8, 0.6]))


def test_unnamed_rgb_record_is_reordered_with_the_kernels(tmp_path):
    torch.manual_seed(0)
    _foreign_hf(tmp_path / "hf", 3)
    out = convert_checkpoint(tmp_path / "hf", tmp_path / "bgr.safetensors", bands=["B", "G", "R"])
    rec = read_backbone_weights(out).normalization
    torch.testing.assert_close(torch.tensor(rec["mean"]), torch.tensor([0.3, 0.2, 0.1]))
    src = read_backbone_weights(tmp_path / "hf").state["patch_embed.proj.weight"]
    torch.testing.assert_close(read_backbone_weights(out).state["patch_embed.proj.weight"], src.flip(1))
