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
    from geodino.errors import ConfigError

    assert known_timm_name("hf-hub:timm/vit_small_patch16_dinov3.lvd1689m")
    assert known_timm_name("vit_small_patch16_dinov3.lvd1689m")
    assert not known_timm_name("vit_smal_patch16_dinov3")
    with pytest.raises(ConfigError, match="unknown timm model 'vit_smal_patch16_dinov3'"):
        check_spec("timm:vit_smal_patch16_dinov3")


def test_cnn_stages_of_other_widths_are_one_config_error_not_a_tensor_size_error():
    """A timm CNN's stages differ in width and stride; the backbone's features are the last stage's (`embed_dim`,
    `patch_size`). Several stages crashed feature rasters (torch.cat) and probes (torch.stack) with a bare
    RuntimeError; now features names the stages and what to pass."""
    from geodino.errors import ConfigError

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cnn = load_backbone("timm:resnet18?bands=4")
    x = torch.randn(1, 4, 64, 64)
    with pytest.raises(ConfigError, match=r"layers='last'"):
        cnn.features(x, layers="four_last")
    with pytest.raises(ConfigError, match=r"stage 1: 64 ch at 1/4"):
        cnn.features(x, layers=[1])
    maps, cls = cnn.features(x, layers="last")
    assert maps[0].shape == (1, cnn.embed_dim, 64 // cnn.patch_size, 64 // cnn.patch_size)
    assert cls[0].shape == (1, cnn.embed_dim)
