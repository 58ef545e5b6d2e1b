"""Review of `geodino convert` chains: a 4-band, patch-8 backbone with a per-band scale and offset record goes
official -> HF -> timm folder -> timm file -> official .pth -> HF; every step keeps the tokens (float32) and the
record (bands, scale, offset, mean, std), and the second HF folder's config.json and preprocessor_config.json are
byte-equal to the first's."""

from __future__ import annotations

import warnings

import torch

from geodino.models import build_model
from geodino.models.checkpoints import load_model, read_backbone_weights, save_backbone
from geodino.models.checkpoints.convert import convert_checkpoint

NORM = {
    "sensor": "sentinel2_l2a",
    "bands": ["B04", "B03", "B02", "B08"],
    "scale": [1e-4, 1e-4, 1e-4, 2e-4],
    "offset": [0.0, 0.0, 0.0, -0.1],
    "mean": [0.1, 0.2, 0.3, 0.4],
    "std": [0.5, 0.6, 0.7, 0.8],
}


def _tokens(model, x):
    with torch.no_grad():
        out = model.forward_features(x)
    return torch.cat([out["x_norm_clstoken"][:, None], out["x_storage_tokens"], out["x_norm_patchtokens"]], 1)


def test_convert_chain_keeps_tokens_and_record(tmp_path):
    geo = build_model("vit_small", embed_dim=64, depth=2, num_heads=4, patch_size=8, in_chans=4).eval()
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for p in geo.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * 0.05)
        geo.mask_token.zero_()  # timm stores none: a non-zero one would be dropped (with a warning)
    x = torch.randn(1, 4, 24, 40)
    ref = _tokens(geo, x)
    path = save_backbone(geo, tmp_path / "src.pth", normalization=NORM)
    chain = [("hf", "hf1"), ("timm", "timm_dir"), ("timm", "timm.safetensors"), ("official", "back.pth"), ("hf", "hf2")]
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # nothing is dropped along the way
        for layout, name in chain:
            path = convert_checkpoint(path, tmp_path / name, dst_layout=layout)
            rec = read_backbone_weights(path).normalization
            assert {k: rec[k] for k in NORM} == NORM, name
            torch.testing.assert_close(_tokens(load_model(path).eval(), x), ref, atol=1e-5, rtol=0)
    for f in ("config.json", "preprocessor_config.json"):
        assert (tmp_path / "hf1" / f).read_bytes() == (tmp_path / "hf2" / f).read_bytes(), f
