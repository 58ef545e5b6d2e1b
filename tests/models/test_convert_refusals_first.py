"""A conversion timm or HF cannot express is refused before any warning about what it would drop (the mask-token
and eps warnings came first, for a file then never written), and every such refusal says what to do: keep the
official layout (the untied cls_norm (timm), RMSNorm and min/max-period RoPE (HF) refusals said nothing)."""

from __future__ import annotations

import warnings

import pytest
import torch

from geodino.errors import CheckpointError
from geodino.models import build_model
from geodino.models.checkpoints import save_backbone
from geodino.models.checkpoints.convert import convert_checkpoint

MINMAX = {"pos_embed_rope_base": None, "pos_embed_rope_min_period": 0.5, "pos_embed_rope_max_period": 50.0}


@pytest.mark.parametrize(
    ("kw", "what"),
    [
        ({"untie_cls_and_patch_norms": True, "norm_layer": "layernorm"}, "untied cls_norm"),
        ({"norm_layer": "rmsnorm"}, "RMSNorm"),
        (MINMAX, "min/max-period RoPE"),
    ],
)
@pytest.mark.parametrize("layout", ["timm", "hf"])
def test_refused_before_any_warning_and_says_what_to_do(tmp_path, kw, what, layout):
    torch.manual_seed(0)
    model = build_model("vit_tiny", patch_size=8, depth=1, **kw)
    with torch.no_grad():
        model.mask_token.normal_()  # timm drops a non-zero mask token with a warning
    src = save_backbone(model, tmp_path / "bb.safetensors")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with pytest.raises(CheckpointError, match=rf"{what}.*; keep the official layout \(.pth / .safetensors\)"):
            convert_checkpoint(src, tmp_path / "out", dst_layout=layout)
    assert [str(w.message) for w in caught] == []
    assert not (tmp_path / "out").exists()
