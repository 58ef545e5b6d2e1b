"""Official -> HF/timm -> official gives back the same state_dict for the backbones geodino makes. A backbone
without LayerScale came back from HF with gammas of ones (HF always has LayerScale; official_to_hf writes ones and
layerscale_value 1.0): same output, but other keys and a LayerScale model. The masked key-bias third of attn.qkv.bias
comes back as zeros (HF and timm have no key bias): geodino's models hold zeros there (initialised to zero, the
mask gives it no gradient), so nothing is lost; another value there changes no output."""

from __future__ import annotations

import warnings

import pytest
import torch

from geodino.models import build_model
from geodino.models.checkpoints import load_model, read_backbone_weights, save_backbone
from geodino.models.checkpoints.convert import convert_checkpoint


def _model(layerscale):
    torch.manual_seed(0)
    return build_model("vit_small", depth=2, embed_dim=32, num_heads=2, patch_size=8, layerscale_init=layerscale)


def _round_trip(src, layout, tmp_path):
    mid = tmp_path / ("hf" if layout == "hf" else "timm.safetensors")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        convert_checkpoint(src, mid, dst_layout=layout)
        back = convert_checkpoint(mid, tmp_path / f"back_{layout}.safetensors", dst_layout="official")
    return mid, read_backbone_weights(back).state


@pytest.mark.parametrize("layout", ["hf", "timm"])
@pytest.mark.parametrize("layerscale", [None, 1e-5])
def test_round_trip_gives_back_the_state_dict(tmp_path, layout, layerscale):
    model = _model(layerscale)
    src = save_backbone(model, tmp_path / "src.safetensors")
    want = model.state_dict()
    mid, got = _round_trip(src, layout, tmp_path)
    assert sorted(got) == sorted(want)
    assert [k for k in want if not torch.equal(got[k], want[k])] == []
    loaded = load_model(mid).eval()  # the HF / timm file itself builds the model it came from
    assert (getattr(loaded.blocks[0], "ls1", None) is None or not list(loaded.blocks[0].ls1.parameters())) == (
        layerscale is None
    )
    x = torch.randn(1, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(loaded.get_intermediate_layers(x)[0], model.eval().get_intermediate_layers(x)[0])


def test_the_masked_key_bias_is_zero_and_gets_no_gradient():
    model = _model(1e-5)
    bias = model.blocks[0].attn.qkv.bias
    assert not bias[32:64].any()
    model.get_intermediate_layers(torch.randn(1, 3, 16, 16))[0].sum().backward()
    assert bias.grad is not None and bias.grad[:32].any() and not bias.grad[32:64].any()
