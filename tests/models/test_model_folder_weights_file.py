"""The weights file of an HF or timm model folder (`hf_backbone/model.safetensors`, what a user points at after
`ls`) loads as its folder: alone it lost the folder's config.json (LayerNorm eps, RoPE base guessed: tokens ~3e-3
off) and its recorded normalisation (mean 0 / std 1, with a warning that did not say why)."""

from __future__ import annotations

import warnings

import pytest
import torch

from geodino.backbones import load_backbone
from geodino.models import build_model
from geodino.models.checkpoints import save_backbone
from geodino.models.checkpoints.convert import convert_checkpoint

REC = {"sensor": "demo4", "bands": ["blue", "green", "red", "nir"], "scale": 1e-4}
REC |= {"mean": [0.05, 0.08, 0.07, 0.3], "std": [0.02, 0.03, 0.04, 0.1]}


@pytest.fixture(scope="module")
def export(tmp_path_factory):
    torch.manual_seed(0)
    model = build_model("vit_tiny", patch_size=8, in_chans=4, depth=1, norm_layer="layernorm", pos_embed_rope_base=50.0)
    return save_backbone(model.eval(), tmp_path_factory.mktemp("b") / "b.safetensors", normalization=REC), model


@pytest.mark.parametrize("layout", ["hf", "timm"])
def test_a_folders_weights_file_loads_as_the_folder(export, tmp_path, layout):
    src, model = export
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # timm's eps 1e-5 and mask-token warnings
        folder = convert_checkpoint(src, tmp_path / layout, dst_layout=layout)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        whole, weights = load_backbone(folder), load_backbone(folder / "model.safetensors")
    assert [str(w.message) for w in caught] == []  # no "records no input normalisation"
    assert weights.normalization == whole.normalization and weights.bands == ["blue", "green", "red", "nir"]
    assert weights.norm_source == whole.norm_source and f"{folder.name}/" in weights.norm_source
    x = torch.randn(1, 4, 16, 24)
    with torch.no_grad():
        a, b = (m.model.forward_features(x)["x_norm_patchtokens"] for m in (whole, weights))
    assert torch.equal(a, b)
    if layout == "hf":  # HF keeps every setting: the model itself
        with torch.no_grad():
            torch.testing.assert_close(b, model.forward_features(x)["x_norm_patchtokens"], atol=1e-5, rtol=0)


def test_a_model_safetensors_outside_a_model_folder_stays_a_file(export, tmp_path):
    src, _ = export
    (tmp_path / "config.json").write_text('{"model_type": "bert"}')
    f = tmp_path / "model.safetensors"
    f.write_bytes(src.read_bytes())
    assert load_backbone(f).norm_source.startswith("recorded in model.safetensors (safetensors metadata")
