"""`load_backbone(FILE, bands=..., src_bands=...)`: a >3-band file whose record names no bands (a foreign HF
processor's or timm pretrained_cfg's mean/std) and that carries no band names could not select or reorder its
bands at all (only load_model took src_bands=); `src_bands` names its channels, the kernels and the record follow."""

from __future__ import annotations

import json
import warnings

import pytest
import torch

from geodino.backbones import load_backbone
from geodino.errors import ConfigError
from geodino.models import build_model
from geodino.models.checkpoints import save_backbone

MEAN, STD = [0.1, 0.2, 0.3, 0.4], [0.5, 0.6, 0.7, 0.8]
NAMES = ["R", "G", "B", "N"]


@pytest.fixture(params=["safetensors", "hf"])
def unnamed(request, tmp_path):
    """(path, model): a 4-band backbone whose record is a bare mean/std (no band names, no sensor)."""
    torch.manual_seed(0)
    model = build_model("vit_tiny", patch_size=8, in_chans=4, depth=1).eval()
    if request.param == "hf":  # as another tool writes it: the processor's mean/std, no geodino record
        path = save_backbone(model, tmp_path / "hf", layout="hf", normalization={"mean": MEAN, "std": STD})
        f = path / "preprocessor_config.json"
        f.write_text(json.dumps({k: v for k, v in json.loads(f.read_text()).items() if k != "geodino_normalization"}))
    else:
        path = save_backbone(model, tmp_path / "t.safetensors", normalization={"mean": MEAN, "std": STD})
    return path, model


def test_selected_bands_equal_the_sliced_kernels(unnamed):
    path, model = unnamed
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the record is kept: no "records no input normalisation"
        fb = load_backbone(path, bands=["N", "R"], src_bands=NAMES)
    state = dict(model.state_dict())
    state["patch_embed.proj.weight"] = state["patch_embed.proj.weight"][:, [3, 0]]
    hand = build_model("vit_tiny", patch_size=8, in_chans=2, depth=1).eval()
    hand.load_state_dict(state)
    assert torch.equal(fb.model.patch_embed.proj.weight, state["patch_embed.proj.weight"])
    x = torch.randn(2, 2, 16, 24)
    with torch.no_grad():
        want = hand.forward_features(x)["x_norm_patchtokens"]
        got = fb.model.forward_features(x)["x_norm_patchtokens"]
    assert torch.allclose(got, want, atol=1e-6)
    assert fb.mean.flatten().tolist() == pytest.approx([0.4, 0.1])
    assert fb.std.flatten().tolist() == pytest.approx([0.8, 0.5])
    assert list(fb.bands) == ["N", "R"]
    assert "recorded in" in fb.norm_source
    # a string names them too, and other names for the channels are another cache key
    other = load_backbone(path, bands="N,R", src_bands="N,G,B,R")
    assert torch.equal(other.model.patch_embed.proj.weight, model.patch_embed.proj.weight[:, [0, 3]])
    assert other.fingerprint != fb.fingerprint


def test_src_bands_are_checked(unnamed):
    path, _ = unnamed
    with pytest.raises(ConfigError, match=r"src_bands names 3 bands \(R, G, B\) but checkpoint .* has 4 input"):
        load_backbone(path, bands=["R"], src_bands=["R", "G", "B"])
    with pytest.raises(ConfigError, match=r"src_bands=.* names the input channels of a checkpoint"):
        load_backbone("arch:vit_tiny?patch_size=8&depth=1", src_bands=["R", "G", "B"])
    with pytest.raises(ConfigError, match="src_bands=4 names the input channels"):
        load_backbone(path, src_bands=4)


def test_src_bands_other_than_the_recorded_names_are_refused(tmp_path):
    model = build_model("vit_tiny", patch_size=8, in_chans=4, depth=1)
    rec = {"mean": MEAN, "std": STD, "bands": NAMES}
    path = save_backbone(model, tmp_path / "named.safetensors", normalization=rec)
    with pytest.raises(ConfigError, match=r"are not the bands checkpoint .* records \(R, G, B, N\)"):
        load_backbone(path, bands=["N"], src_bands=["B02", "B03", "B04", "B08"])
    # the same names (another spelling) are fine
    fb = load_backbone(path, bands=["N"], src_bands=["red", "green", "blue", "n"])
    assert fb.mean.flatten().tolist() == pytest.approx([0.4])


# `src_bands=` without `bands=`: a bare mean/std record kept `FrozenBackbone.bands` None, so probes and previews
# could not tell which channel is which though the caller named them; the src_bands names now (the record's win)


def test_src_bands_alone_name_the_backbone_bands(unnamed):
    path, _ = unnamed
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the record is kept: no "records no input normalisation"
        fb = load_backbone(path, src_bands=["B02", "B03", "B04", "B08"])
    assert fb.bands == ["B02", "B03", "B04", "B08"]
    assert fb.mean.flatten().tolist() == pytest.approx(MEAN)  # the record, unmoved
    assert "recorded in" in fb.norm_source


def test_without_src_bands_the_bands_stay_unknown(unnamed):
    assert load_backbone(unnamed[0]).bands is None


def test_the_record_names_win(tmp_path):
    model = build_model("vit_tiny", patch_size=8, in_chans=4, depth=1)
    rec = {"mean": MEAN, "std": STD, "bands": ["R", "G", "B", "N"]}
    path = save_backbone(model, tmp_path / "named.safetensors", normalization=rec)
    assert load_backbone(path, src_bands=["red", "green", "blue", "n"]).bands == ["R", "G", "B", "N"]
