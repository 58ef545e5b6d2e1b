"""A released file that records no normalisation is loaded with the sensor its name implies (SAT-493M for
`*sat493m*`); converting it now records that sensor, so the output is standardised alike. The HF folder of the
SAT ViT-L had ImageNet's mean/std in its processor (and geodino loaded it with them). A file whose name implies
nothing still records none."""

from __future__ import annotations

import warnings

import pytest
import torch

from geodino.backbones import load_backbone
from geodino.models import build_model
from geodino.models.checkpoints import read_backbone_weights, save_backbone
from geodino.models.checkpoints.convert import convert_checkpoint


@pytest.fixture(scope="module")
def tiny_state():
    torch.manual_seed(0)
    return build_model("vit_small", depth=1, embed_dim=32, num_heads=2, patch_size=8).state_dict()


@pytest.mark.parametrize("layout, out", [("hf", "sat_hf"), ("timm", "sat_timm.safetensors"), ("official", "o.pth")])
def test_sat493m_name_travels_as_a_record(tmp_path, tiny_state, layout, out):
    src = tmp_path / "dinov3_vits16_pretrain_sat493m-0000.pth"
    torch.save(tiny_state, src)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        dst = convert_checkpoint(src, tmp_path / out, dst_layout=layout)
        rec = read_backbone_weights(dst).normalization
        assert rec is not None and rec["sensor"] == "sat493m" and "(convert: the default for" in rec["origin"]
        a, b = load_backbone(str(src)), load_backbone(str(dst))
    x = torch.randint(0, 256, (1, 3, 16, 16), dtype=torch.uint8)
    torch.testing.assert_close(b.preprocess(x), a.preprocess(x), atol=1e-5, rtol=0)


def test_a_plain_name_still_records_none(tmp_path, tiny_state):
    src = save_backbone(tiny_state, tmp_path / "mine.pth")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        dst = convert_checkpoint(src, tmp_path / "mine.safetensors")
    assert read_backbone_weights(dst).normalization is None
