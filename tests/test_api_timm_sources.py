"""`timm:` specs take timm.create_model's own sources, `local-dir:PATH` (what `geodino convert --to timm` writes) and
`hf-hub:ORG/NAME`, which `timm.list_models` does not list: they were refused as unknown timm models."""

from __future__ import annotations

import warnings

import pytest
import torch

from geodino.backbones import load_backbone
from geodino.backbones.load import check_spec
from geodino.models import build_model
from geodino.models.checkpoints import save_backbone


def test_a_timm_folder_loads_as_a_timm_spec_with_the_same_features(tmp_path):
    torch.manual_seed(0)
    model = build_model("vit_tiny", in_chans=3, depth=2, embed_dim=64, num_heads=2)
    folder = save_backbone(model, tmp_path / "timm_bb", layout="timm")
    spec = f"timm:local-dir:{folder}?pretrained=true"
    check_spec(spec)  # what probe --compare checks first
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        via_timm = load_backbone(spec)
        via_geodino = load_backbone(model)
    assert via_timm.kind == "timm" and via_timm.n_blocks == 2
    x = torch.randn(2, 3, 32, 48)
    got, want = via_timm.features(x, layers=[0, 1]), via_geodino.features(x, layers=[0, 1])
    for a, b in zip(got[0] + got[1], want[0] + want[1], strict=True):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=0)


def test_hub_names_are_not_refused_as_unknown_and_typos_still_are():
    from geodino.backbones.timm import known_timm_name

    assert known_timm_name("hf-hub:timm/vit_small_patch16_dinov3.lvd1689m")
    assert known_timm_name("vit_small_patch16_dinov3.lvd1689m")
    assert not known_timm_name("vit_smal_patch16_dinov3")
    with pytest.raises(Exception, match="unknown timm model"):
        check_spec("timm:vit_smal_patch16_dinov3")
