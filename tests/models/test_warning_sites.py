"""Warnings of the public API name the caller's line, not geodino's: `resolve_bands`' unmatched-band warning had
stacklevel=2, so "file:line" pointed at the line of `load_model` (or `load_backbone`, `geodino_vit`) that called it.
And `layers=four_last` on a backbone of fewer than four blocks says it gives fewer than four maps."""

from __future__ import annotations

import warnings

import pytest
import torch

from geodino.backbones import layer_indices, load_backbone
from geodino.integrations.terratorch import geodino_vit
from geodino.models import build_model
from geodino.models.caller import user_stacklevel
from geodino.models.checkpoints import load_model, save_backbone


@pytest.fixture(scope="module")
def rgb_file(tmp_path_factory):
    torch.manual_seed(0)
    model = build_model("vit_small", in_chans=3, depth=2, embed_dim=32, num_heads=2, patch_size=8)
    return save_backbone(model, tmp_path_factory.mktemp("w") / "rgb.pth")


def _sites(call) -> list[tuple[str, str]]:
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        call()
    return [(w.filename, str(w.message)) for w in seen]


def _named_here(sites: list[tuple[str, str]], text: str) -> None:
    hits = [f for f, m in sites if text in m]
    assert hits, f"no warning with {text!r}: {sites}"
    assert hits == [__file__] * len(hits), hits


def test_unmatched_band_warning_names_the_callers_line(rgb_file):
    _named_here(_sites(lambda: load_model(rgb_file, bands=["red", "green", "blue", "swir9"])), "swir9")
    _named_here(_sites(lambda: load_backbone(f"{rgb_file}?bands=red,green,blue,swir9")), "swir9")
    _named_here(_sites(lambda: geodino_vit(str(rgb_file), bands=["red", "green", "blue", "swir9"])), "swir9")


def test_four_last_on_a_shallow_backbone_warns_at_the_callers_line():
    fb = load_backbone("arch:vit_small?depth=2&embed_dim=32&num_heads=2&patch_size=8")
    out: list = []
    sites = _sites(lambda: out.append(fb.features(torch.randn(1, 3, 16, 16), layers="four_last")))
    _named_here(sites, "layers=four_last on a backbone with 2 blocks gives 2 maps (blocks 0..1), not 4")
    assert len(out[0][0]) == 2  # still the two blocks there are: the probes' default keeps working
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert layer_indices("four_last", 4) == [0, 1, 2, 3]  # four blocks or more: quiet
        assert layer_indices(2, 2) == [0, 1]  # the count says it on purpose


def test_user_stacklevel_of_a_call_from_user_code_is_its_own_line():
    assert user_stacklevel() == 1  # called from this (non-geodino) module: its own line
