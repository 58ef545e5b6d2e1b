"""Shared spec options on spec kinds they do nothing for: `?subset=` and `?fill=` (a checkpoint's band adaptation)
on `arch:`, `timm:` and `baseline:` specs, `?seed=` on a baseline or checkpoint, and options a `timm:` spec does not
read (`?depth=1`) were accepted and dropped without a word (the same model as without them). Each is now refused in
one line naming the spec and where the option applies (exit 2 from the CLI); where it has meaning it still acts."""

from __future__ import annotations

import pytest
import torch

from geodino.backbones import load_backbone
from geodino.backbones.load import check_spec
from geodino.errors import ConfigError
from geodino.models import build_model
from tests.helpers import four_band_backbone
from tests.test_bad_inputs import one_line_exit_2

ARCH = "arch:vit_tiny?depth=1&patch_size=8"
TIMM = "timm:vit_tiny_patch16_224"
BASE = "baseline:colour?patch_size=8"
CHECKPOINT_ONLY = "applies to checkpoint specs only"


def _join(spec: str, option: str) -> str:
    return f"{spec}{'&' if '?' in spec else '?'}{option}"


@pytest.fixture(scope="module")
def four_band_file(tmp_path_factory):
    return four_band_backbone(tmp_path_factory.mktemp("k") / "four.safetensors")


@pytest.mark.parametrize("spec", [ARCH, TIMM, BASE])
@pytest.mark.parametrize("option", ["subset=rescale", "subset=copy", "fill=zeros", "fill=mean"])
def test_band_adaptation_options_are_refused_where_nothing_is_adapted(spec, option):
    full = _join(spec, option)
    kind = spec.split(":")[0]
    pattern = rf"^backbone spec {full.replace('?', '[?]')}: [?]{option.split('=')[0]}= {CHECKPOINT_ONLY} .*{kind}:"
    for load in (load_backbone, check_spec):
        with pytest.raises(ConfigError, match=pattern):
            load(full)


@pytest.mark.parametrize("spec", [ARCH, TIMM, BASE])
def test_band_adaptation_arguments_are_refused_where_nothing_is_adapted(spec):
    for kwargs in ({"fill": "zeros"}, {"subset": "rescale"}):
        key = next(iter(kwargs))
        with pytest.raises(ConfigError, match=rf"^backbone spec .*: {key}= {CHECKPOINT_ONLY}"):
            load_backbone(spec, **kwargs)
    model = build_model("vit_small", in_chans=3, depth=1, embed_dim=32, num_heads=2, patch_size=8)
    with pytest.raises(ConfigError, match=rf"^backbone spec <module>: subset= {CHECKPOINT_ONLY}.*in-memory"):
        load_backbone(model, subset="rescale")


def test_seed_is_refused_where_no_random_weights_are_drawn(four_band_file):
    for spec in (_join(BASE, "seed=3"), f"{four_band_file}?seed=1"):
        for load in (load_backbone, check_spec):
            with pytest.raises(ConfigError, match=r": [?]seed= applies to arch: and timm: specs only"):
                load(spec)


def test_timm_options_it_does_not_read_are_refused():
    for load in (load_backbone, check_spec):
        with pytest.raises(ConfigError, match=r"^1 unknown option in backbone spec timm:.*: depth; timm: specs accept"):
            load(_join(TIMM, "depth=1"))
        # pretrained weights are timm's whatever the seed (no head: num_classes=0); only the fingerprint changed
        with pytest.raises(ConfigError, match=r"[?]seed= draws random weights, but pretrained=true loads timm's"):
            load(_join(TIMM, "pretrained=true&seed=1"))


def test_the_options_still_act_where_they_have_meaning(four_band_file):
    w = load_backbone(four_band_file).model.patch_embed.proj.weight.detach()
    rescaled = load_backbone(f"{four_band_file}?bands=red,nir&subset=rescale")
    torch.testing.assert_close(rescaled.model.patch_embed.proj.weight, w[:, [2, 3]] * 2)
    with pytest.warns(UserWarning, match="B11"):
        zeros = load_backbone(f"{four_band_file}?bands=red,nir,B11&fill=zeros&sensor=sentinel2_l2a")
    assert torch.equal(zeros.model.patch_embed.proj.weight[:, 2], torch.zeros_like(w[:, 0]))
    a, b = load_backbone(_join(ARCH, "seed=1")), load_backbone(_join(ARCH, "seed=2"))
    assert not torch.equal(a.model.patch_embed.proj.weight, b.model.patch_embed.proj.weight)
    t = load_backbone(_join(TIMM, "img_size=32&seed=1"))
    assert t.in_chans == 3


def test_cli_refuses_in_one_line(capsys, tmp_path):
    one_line_exit_2(
        capsys, tmp_path, "info", _join(ARCH, "subset=rescale"), expect=("?subset=", CHECKPOINT_ONLY, "arch:")
    )
