"""What a newcomer following docs/backbone.md and docs/fast_inference.md met (session 64 walkthrough): an empty
batch failed deep in torch, a count of last blocks past the depth said nothing of what to pass, and an explicit
fast-path mode that could not apply (a timm / baseline backbone, or one accelerated to another mode before) was
dropped without a word."""

from __future__ import annotations

import warnings

import pytest
import torch

from geodino.backbones import layer_indices, load_backbone
from geodino.errors import ConfigError, InputError
from geodino.inference import accelerate, path_of
from geodino.models import build_model

SPEC = "arch:vit_tiny?depth=1&embed_dim=32&num_heads=2"


@pytest.fixture()
def fb():
    return load_backbone(SPEC)


def _warned(call) -> list[str]:
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        call()
    return [str(w.message) for w in seen]


def test_count_past_the_depth_says_what_to_pass():
    with pytest.raises(
        ConfigError,
        match=r"layers=7 asks for the last 7 blocks but the backbone has 6 blocks; pass a "
        r"count from 1 to 6, block indices \(0\.\.5\)",
    ):
        layer_indices(7, 6)
    with pytest.raises(ConfigError, match="pass a count from 1 to 6"):
        layer_indices(0, 6)


def test_empty_batch_is_one_line(fb):
    for mode in ("off", "float32"):
        accelerate(fb, mode=mode, compile=False)
        with pytest.raises(InputError, match=r"empty batch \(shape \(0, 3, 32, 32\)\)"):
            fb.features(torch.rand(0, 3, 32, 32))
    model = build_model("vit_tiny", depth=1, embed_dim=32, num_heads=2).eval()
    with pytest.raises(InputError, match="empty batch"):
        model.forward_features(torch.rand(0, 3, 32, 32))


def test_features_messages_name_its_layout_and_the_sizes(fb):
    with pytest.raises(InputError, match=r"takes bands first \(\[B, C, H, W\]\); pass x.permute\(0, 3, 1, 2\)"):
        fb.features(torch.rand(1, 32, 32, 3))
    with pytest.raises(
        InputError,
        match=r"65x64 is not a multiple of the patch size 16; crop or pad it to 64x64 "
        r"\(or 80x64\)",
    ):
        fb.features(torch.rand(1, 3, 65, 64))


def test_explicit_mode_on_a_backbone_it_cannot_serve_warns():
    colour = load_backbone("baseline:colour")
    said = _warned(lambda: accelerate(colour, mode="int8"))
    assert any("mode='int8' does not apply to backbone baseline:colour" in m for m in said), said
    assert path_of(colour).name == "eager"
    assert not _warned(lambda: accelerate(colour, mode="auto"))  # auto asks for nothing it cannot give
    assert not _warned(lambda: accelerate(colour, mode="int8"))  # once per backbone (a probe plans, then accelerates)


def test_inside_a_probe_task_the_warning_names_the_suite_key():
    from geodino.user_keys import keys_named_by

    colour = load_backbone("baseline:colour")
    with keys_named_by(lambda key: f"tasks.t.features.{key}"):
        said = _warned(lambda: accelerate(colour, mode="bfloat16"))
    assert any(
        "tasks.t.features.fast='bfloat16' does not apply" in m and "tasks.t.features.fast=auto" in m for m in said
    )


def test_other_mode_on_an_accelerated_backbone_warns_and_off_then_mode_applies(fb, monkeypatch):
    monkeypatch.delenv("GEODINO_FAST", raising=False)
    assert accelerate(fb, mode="bfloat16", compile=False).name == "fast-bfloat16"
    said = _warned(lambda: accelerate(fb, mode="float32", compile=False))
    assert any("keeps the fast path fast-bfloat16" in m and "mode='float32' is not applied" in m for m in said), said
    assert path_of(fb).dtype == "bfloat16"
    assert not _warned(lambda: accelerate(fb, mode="bfloat16", compile=False))  # the same numerics: nothing to say
    assert not _warned(lambda: accelerate(fb, mode="auto", compile=False))  # auto keeps it, as documented
    accelerate(fb, mode="off")
    assert accelerate(fb, mode="float32", compile=False).dtype == "float32"


def test_an_accelerated_backbone_picks_up_changed_eager_weights_on_the_next_accelerate(monkeypatch):
    monkeypatch.delenv("GEODINO_FAST", raising=False)
    fb = load_backbone(SPEC + "&layerscale_init=1.0")
    eager = fb.model
    x = torch.randn(1, 3, 32, 32)
    accelerate(fb, mode="float32", compile=False)
    before = fb.features(x)[1][0]
    with torch.no_grad():
        for p in eager.parameters():
            p.mul_(1.5)
    accelerate(fb, mode="float32", compile=False)  # stayed accelerated: it served the old prepared copy
    after = fb.features(x)[1][0]
    fb.model = eager
    want = fb.features(x)[1][0]
    assert not torch.allclose(before, want, atol=1e-3) and torch.allclose(after, want, atol=1e-4)


def test_fastvit_refuses_an_eager_state_dict_in_one_line(fb):
    sd = fb.model.state_dict()
    accelerate(fb, mode="float32", compile=False)
    with pytest.raises(ConfigError, match=r"load the state_dict into the eager model and prepare again"):
        fb.model.load_state_dict(sd)
    fb.model.load_state_dict(fb.model.state_dict())  # its own prepared weights still load


def test_warmup_checks_its_layers_before_compiling(fb, monkeypatch):
    monkeypatch.delenv("GEODINO_FAST", raising=False)
    accelerate(fb, mode="float32", compile=True)
    if not fb.model.path.compile:
        pytest.skip("no compiler here")
    for bad in ([5], [-1], [0, 1]):  # each compiled a graph (~10 s) that no call could run
        with pytest.raises(InputError, match="out of range for a backbone with 1 block"):
            fb.model.warmup(2, 32, 32, layers=bad)
    assert not fb.model._graphs
