"""A `.pth` written by `geodino convert` / `save_backbone` always gets its `X.heads.pth` sidecar: the build kwargs
the weights cannot show travel even without a normalisation record, and an earlier file's sidecar never stays
beside new weights (it gave them the old mean/std and kwargs)."""

from __future__ import annotations

import warnings

import pytest
import torch

from geodino.backbones import load_backbone
from geodino.models.checkpoints import heads_path, load_model, read_backbone_weights, save_backbone, save_export
from geodino.models.checkpoints.convert import convert_checkpoint
from tests.helpers import jittered_vit as tiny

REC = {
    "sensor": "demo4",
    "bands": ["blue", "green", "red", "nir"],
    "scale": 1e-4,
    "mean": [0.05, 0.08, 0.07, 0.3],
    "std": [0.02, 0.03, 0.04, 0.1],
}


def tokens(m, x):
    with torch.no_grad():
        return m.forward_features(x)["x_norm_patchtokens"]


def test_a_pth_without_a_record_keeps_its_build_kwargs(tmp_path):
    m = tiny(norm_layer="layernorm")  # LayerNorm eps 1e-6: the weights cannot show it
    src = save_backbone(m, tmp_path / "eps6.safetensors")  # no normalisation record
    out = convert_checkpoint(src, tmp_path / "eps6.pth")
    side = torch.load(heads_path(out), weights_only=True)
    assert side["normalization"] is None and side["backbone"]["norm_layer"] == "layernorm"
    back = load_model(out).eval()
    assert back.config["norm_layer"] == "layernorm"  # was layernormbf16 (eps 1e-5): tokens differed by 5.7e-5
    x = torch.randn(1, 4, 32, 32)
    torch.testing.assert_close(tokens(back, x), tokens(m, x), rtol=0, atol=0)
    # the .pth itself stays a plain official state_dict
    plain = torch.load(out, weights_only=True)
    assert set(plain) == set(m.state_dict()) and all(isinstance(v, torch.Tensor) for v in plain.values())
    # without its sidecar (an official file) it still loads, with the inferred (released) kwargs
    heads_path(out).unlink()
    assert load_model(out).config["norm_layer"] == "layernormbf16"
    # a sidecar with no record leaves the normalisation unrecorded, no error
    save_backbone(m, tmp_path / "o.pth")
    w = read_backbone_weights(tmp_path / "o.pth")
    assert w.normalization is None and w.config["norm_layer"] == "layernorm"


def test_overwriting_replaces_a_stale_sidecar(tmp_path):
    recorded = save_backbone(tiny(0, norm_layer="layernorm"), tmp_path / "a.safetensors", normalization=REC)
    other_model = tiny(1)
    other = save_backbone(other_model, tmp_path / "b.safetensors")  # no record, layernormbf16
    out = tmp_path / "out.pth"
    convert_checkpoint(recorded, out)
    assert load_backbone(str(out)).normalization["mean"] == REC["mean"]
    convert_checkpoint(other, out, overwrite=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        bb = load_backbone(str(out))
    assert bb.normalization is None  # was the first file's mean/std
    back = load_model(out)
    assert back.config["norm_layer"] == "layernormbf16"  # was the first file's layernorm
    x = torch.randn(1, 4, 24, 24)
    torch.testing.assert_close(tokens(back.eval(), x), tokens(other_model, x), rtol=0, atol=0)


def test_a_kwargs_only_sidecar_brings_no_heads(tmp_path):
    """pretraining judges `init_from` by its sidecar: a converted .pth brings no DINO/iBOT heads, an export does."""
    from geodino.models.checkpoints.files import sidecar_has_heads
    from geodino.train.api import _has_heads

    m = tiny()
    out = save_backbone(m, tmp_path / "c.pth")
    assert heads_path(out).is_file() and not sidecar_has_heads(out) and not _has_heads(out)
    head = torch.nn.Linear(4, 4)
    pth, _, _ = save_export(tmp_path / "e", m, dict(m.config), {"dino_head": head, "ibot_head": head})
    assert sidecar_has_heads(pth) and _has_heads(pth)
    assert not _has_heads(tmp_path / "none.pth")


# saving a random model in timm's layout drops its mask token, which test_convert asserts is said
@pytest.mark.filterwarnings("ignore:timm.s DINOv3 Eva stores no mask token:UserWarning")
def test_timm_pth_sidecar_still_written(tmp_path):
    out = convert_checkpoint(save_backbone(tiny(), tmp_path / "s.safetensors"), tmp_path / "t.pth", dst_layout="timm")
    side = torch.load(heads_path(out), weights_only=True)
    assert side["architecture"].startswith("vit_") and "model_args" in side
