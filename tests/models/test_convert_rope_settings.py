"""HF and timm exports cannot keep every RoPE setting: `pos_embed_rope_normalize_coords` other than "separate"
is refused (the exports dropped it silently: tokens differed by ~0.2), a bf16 RoPE converts with a warning that
says how much the tokens differ (they computed it in float32 silently)."""

from __future__ import annotations

import warnings

import pytest
import torch

from geodino.errors import CheckpointError
from geodino.models.checkpoints import save_backbone
from geodino.models.checkpoints.convert import convert_checkpoint
from tests.helpers import jittered_vit as tiny


@pytest.mark.parametrize("coords", ["max", "min"])
def test_normalize_coords_other_than_separate_is_refused(tmp_path, coords):
    src = save_backbone(tiny(pos_embed_rope_normalize_coords=coords), tmp_path / "s.safetensors")
    for layout, out in (("hf", "hf"), ("timm", "tdir"), ("timm", "t.safetensors"), ("timm", "t.pth")):
        with pytest.raises(
            CheckpointError,
            match=rf"pos_embed_rope_normalize_coords: {coords}\), which .* cannot express .*keep the official layout",
        ):
            convert_checkpoint(src, tmp_path / out, dst_layout=layout)
        assert not (tmp_path / out).exists()
    # the official layouts keep it
    out = convert_checkpoint(src, tmp_path / "o.pth")
    from geodino.models.checkpoints import load_model

    assert load_model(out).config["pos_embed_rope_normalize_coords"] == coords


# a checkpoint or folder without a normalisation record is this test's input (that warning is
# test_normalization_records' subject)
@pytest.mark.filterwarnings("ignore:.*records no input normalisation:UserWarning")
# saving a random model in timm's layout drops its mask token, which test_convert asserts is said
@pytest.mark.filterwarnings("ignore:timm.s DINOv3 Eva stores no mask token:UserWarning")
def test_bf16_rope_converts_with_a_warning_that_holds(tmp_path):
    from transformers import AutoModel

    m = tiny(pos_embed_rope_dtype="bf16")
    src = save_backbone(m, tmp_path / "s.safetensors")
    with pytest.warns(UserWarning, match=r"pos_embed_rope_dtype: bf16\) and HF DINOv3ViTModel in float32"):
        out = convert_checkpoint(src, tmp_path / "hf", dst_layout="hf")
    x = torch.randn(2, 4, 24, 40)
    with torch.no_grad():
        ff = m.forward_features(x)
        ref = torch.cat([ff["x_norm_clstoken"][:, None], ff["x_storage_tokens"], ff["x_norm_patchtokens"]], 1)
        got = AutoModel.from_pretrained(out).eval()(pixel_values=x).last_hidden_state
    diff = (got - ref).abs().max().item()
    assert 1e-4 < diff < 1e-2  # the size the warning states (~2e-3), not float noise, not a broken conversion
    with pytest.warns(UserWarning, match=r"pos_embed_rope_dtype: bf16\) and timm's DINOv3 Eva in float32"):
        convert_checkpoint(src, tmp_path / "tdir", dst_layout="timm")
    # a float32 RoPE converts without a word (with a record: a 4-band HF export without one warns about its DN)
    rec = {"mean": [0.0] * 4, "std": [1.0] * 4, "scale": 1e-4, "sensor": "demo4"}
    plain = save_backbone(tiny(), tmp_path / "p.safetensors", normalization=rec)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        convert_checkpoint(plain, tmp_path / "hf32", dst_layout="hf")
