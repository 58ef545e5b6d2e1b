"""What HF / timm cannot store is said, not dropped silently: `local_cls_norm` (the SAT ViT-L's and 7B's local-crop
CLS norm) is warned about, recorded and re-created on the way back to the official layout (strict-loadable); a
non-zero `mask_token` dropped by timm is warned about; a backbone without LayerScale goes to timm as a file that
`timm.create_model(architecture, **model_args)` loads strictly, with the same features."""

from __future__ import annotations

import json
import os
import warnings

import pytest
import torch

import geodino.cli
from geodino.errors import ConfigError
from geodino.models import build_model
from geodino.models.archs import ARCHS
from geodino.models.checkpoints import read_backbone_weights, save_backbone
from geodino.models.checkpoints.convert import convert_checkpoint
from geodino.models.checkpoints.infer import infer_config
from geodino.models.checkpoints.timm import official_to_timm, timm_model_for

os.environ.setdefault("HF_HUB_OFFLINE", "1")
pytestmark = pytest.mark.usefixtures("only_model_commands")
TINY = {"depth": 2, "patch_size": 8}


def randomize(model: torch.nn.Module, seed: int = 0) -> torch.nn.Module:
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * (0.3 if p.ndim == 1 else 0.05))
    return model


def cli(capsys, *argv) -> list[str]:
    """Run `geodino ...`; the warnings it gave (the CLI prints each as one `geodino: warning: ...` line)."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert geodino.cli.main([str(a) for a in argv]) == 0
    messages = [str(w.message) for w in caught]
    assert all("\n" not in m for m in messages), messages
    return messages


def features(model, x) -> torch.Tensor:
    with torch.no_grad():
        out = model.eval().forward_features(x)
    return torch.cat([out["x_norm_clstoken"][:, None], out["x_storage_tokens"], out["x_norm_patchtokens"]], 1)


@pytest.mark.parametrize("layout", ["hf", "timm"])
def test_local_cls_norm_is_warned_recorded_and_recreated(capsys, tmp_path, layout):
    sat = randomize(build_model("vit_tiny", untie_global_and_local_cls_norm=True, **TINY))
    src = save_backbone(sat, tmp_path / "sat.pth")
    mid = tmp_path / ("sat_hf" if layout == "hf" else "sat_timm.safetensors")
    lines = cli(capsys, "convert", src, mid, "--to", layout)
    dropped = [ln for ln in lines if "local_cls_norm" in ln]
    assert len(dropped) == 1 and dropped[0].startswith("local_cls_norm (the CLS norm"), lines
    assert "is dropped" in dropped[0] and "copy of norm" in dropped[0]

    back = tmp_path / "back.pth"
    lines = cli(capsys, "convert", mid, back)
    assert len(lines) == 1 and "re-created as a copy of norm" in lines[0], lines
    assert "exact for inference" in lines[0] and "not the trained values" in lines[0]
    state = torch.load(back, weights_only=True)
    # the official loader's strict=True accepts it: the architecture with local_cls_norm
    twin = build_model("vit_tiny", untie_global_and_local_cls_norm=True, **TINY)
    twin.load_state_dict(state, strict=True)
    assert torch.equal(state["local_cls_norm.weight"], state["norm.weight"])
    assert torch.equal(state["local_cls_norm.bias"], state["norm.bias"])
    x = torch.randn(1, 3, 24, 40)
    torch.testing.assert_close(features(twin, x), features(sat, x), atol=1e-5, rtol=0)  # inference unchanged


@pytest.mark.parametrize("first, second", [("hf", "timm"), ("timm", "hf")])
def test_local_cls_norm_record_travels_between_hf_and_timm(capsys, tmp_path, first, second):
    """HF -> timm (or timm -> HF) kept the weights but not the record: the official file converted back from the
    second had no local_cls_norm, without a word."""
    sat = randomize(build_model("vit_tiny", untie_global_and_local_cls_norm=True, **TINY))
    src = save_backbone(sat, tmp_path / "sat.pth")
    name = {"hf": "sat_hf", "timm": "sat_timm.safetensors"}
    mid, mid2 = tmp_path / name[first], tmp_path / ("2" + name[second])
    cli(capsys, "convert", src, mid, "--to", first)
    lines = cli(capsys, "convert", mid, mid2, "--to", second)
    assert read_backbone_weights(mid2).local_cls_norm is True, lines
    back = tmp_path / "back.pth"
    lines = cli(capsys, "convert", mid2, back)
    assert len(lines) == 1 and "re-created as a copy of norm" in lines[0], lines
    state = torch.load(back, weights_only=True)
    assert set(state) == set(torch.load(src, weights_only=True))
    assert torch.equal(state["local_cls_norm.weight"], state["norm.weight"])


# saving a random model in timm's layout drops its mask token, which test_convert asserts is said
@pytest.mark.filterwarnings("ignore:timm.s DINOv3 Eva stores no mask token:UserWarning")
def test_local_cls_norm_option_and_the_7b_table(capsys, tmp_path, monkeypatch):
    plain = randomize(build_model("vit_tiny", **TINY))
    hf = save_backbone(plain, tmp_path / "hf", layout="hf")  # records nothing about local_cls_norm
    assert read_backbone_weights(hf).local_cls_norm is None
    # nothing known: nothing added, nothing said
    assert cli(capsys, "convert", hf, tmp_path / "plain.pth") == []
    assert "local_cls_norm.weight" not in torch.load(tmp_path / "plain.pth", weights_only=True)
    # asked for: re-created
    lines = cli(capsys, "convert", hf, tmp_path / "asked.pth", "--local-cls-norm")
    assert len(lines) == 1 and "--local-cls-norm" in lines[0] and "copy of norm" in lines[0]
    asked = torch.load(tmp_path / "asked.pth", weights_only=True)
    build_model("vit_tiny", untie_global_and_local_cls_norm=True, **TINY).load_state_dict(asked, strict=True)
    # a recorded one can be refused
    sat = randomize(build_model("vit_tiny", untie_global_and_local_cls_norm=True, **TINY))
    with pytest.warns(UserWarning, match=r"local_cls_norm .* is dropped"):
        save_backbone(sat, tmp_path / "sat_t.safetensors", layout="timm")
    assert read_backbone_weights(tmp_path / "sat_t.safetensors").local_cls_norm is True
    assert cli(capsys, "convert", tmp_path / "sat_t.safetensors", tmp_path / "none.pth", "--no-local-cls-norm") == []
    assert "local_cls_norm.weight" not in torch.load(tmp_path / "none.pth", weights_only=True)
    with pytest.raises(ConfigError, match="official-layout output"):
        convert_checkpoint(hf, tmp_path / "x.safetensors", dst_layout="timm", local_cls_norm=True)
    # the size of an architecture whose release has local_cls_norm (the 7B's) gets it back without a record
    small = {"embed_dim": 192, "depth": 2, "num_heads": 3, "ffn_layer": "mlp", "ffn_ratio": 4.0}
    monkeypatch.setitem(ARCHS, "vit_7b", {**ARCHS["vit_7b"], **small})
    lines = cli(capsys, "convert", hf, tmp_path / "big.pth")
    assert len(lines) == 1 and "the official vit_7b (same size) has one" in lines[0], lines
    assert "local_cls_norm.weight" in torch.load(tmp_path / "big.pth", weights_only=True)


# saving a random model in timm's layout drops its mask token, which test_convert asserts is said
@pytest.mark.filterwarnings("ignore:timm.s DINOv3 Eva stores no mask token:UserWarning")
def test_unrecorded_vit_large_size_is_warned(capsys, tmp_path, monkeypatch):
    """An HF/timm file of the ViT-L's size without a record may be the SAT-493M ViT-L: said, with the option."""
    monkeypatch.setitem(ARCHS, "vit_large", {"embed_dim": 192, "depth": 2, "num_heads": 3})
    monkeypatch.delitem(ARCHS, "vit_tiny")  # the table names the first entry of that size
    timm_file = save_backbone(randomize(build_model("vit_large", patch_size=8)), tmp_path / "l.pth", layout="timm")
    lines = cli(capsys, "convert", timm_file, tmp_path / "back.safetensors")
    assert len(lines) == 1 and "SAT-493M ViT-L" in lines[0] and "--local-cls-norm" in lines[0], lines


def test_nonzero_mask_token_dropped_by_timm_is_warned(capsys, tmp_path):
    model = build_model("vit_tiny", **TINY)
    zero = save_backbone(model, tmp_path / "zero.safetensors")  # a fresh model's mask token is zero
    assert cli(capsys, "convert", zero, tmp_path / "z_t.safetensors", "--to", "timm") == []
    with torch.no_grad():
        model.mask_token.fill_(0.5)
    trained = save_backbone(model, tmp_path / "trained.safetensors")
    lines = cli(capsys, "convert", trained, tmp_path / "t_t.safetensors", "--to", "timm")
    assert len(lines) == 1 and "mask_token" in lines[0] and "is dropped" in lines[0], lines
    assert cli(capsys, "convert", trained, tmp_path / "t_hf", "--to", "hf") == []  # HF keeps it


def test_no_layerscale_backbone_loads_strictly_in_timm(tmp_path):
    import timm
    from safetensors import safe_open
    from safetensors.torch import load_file

    geo = randomize(build_model("vit_tiny", layerscale_init=None, **TINY))
    with torch.no_grad():  # what timm keeps: no mask token, the official masked (zero) key bias
        geo.mask_token.zero_()
        for blk in geo.blocks:
            blk.attn.qkv.bias.mul_(blk.attn.qkv.bias_mask)
    src = save_backbone(geo, tmp_path / "nols.safetensors")
    dst = convert_checkpoint(src, tmp_path / "nols_timm.safetensors", dst_layout="timm")
    with safe_open(str(dst), "pt") as f:
        meta = f.metadata()
    args = json.loads(meta["model_args"])
    args.pop("dynamic_img_size")
    tm = timm.create_model(meta["architecture"], pretrained=False, num_classes=0, dynamic_img_size=True, **args)
    tm.load_state_dict(load_file(str(dst)), strict=True)
    x = torch.randn(2, 3, 24, 40)
    with torch.no_grad():
        got = tm.eval().forward_features(x)
    torch.testing.assert_close(got, features(geo, x), atol=1e-5, rtol=0)
    # timm_model_for builds the same twin, and the way back is the original key list, exactly
    timm_model_for(infer_config(geo.state_dict())).load_state_dict(official_to_timm(geo.state_dict()), strict=True)
    back = convert_checkpoint(dst, tmp_path / "back.safetensors")
    original, again = geo.state_dict(), load_file(str(back))
    assert set(again) == set(original)
    assert [k for k in original if not torch.equal(again[k], original[k])] == []
