"""Bad arguments to the frozen-backbone API give one clear error naming the argument and its value, instead of a
raw TypeError or a silently wrong run: `layers` (features, layer_indices), integer input to `features`, `amp` and
`compile` flags given as strings (truthy, so "no" / "false" switched them on)."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch

from geodino.backbones import layer_indices, load_backbone
from geodino.errors import ConfigError, InputError
from geodino.inference import accelerate, job_path

SPEC = "arch:vit_small?depth=2&embed_dim=32&num_heads=2"


@pytest.fixture(scope="module")
def fb():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return load_backbone(SPEC)


@pytest.mark.parametrize("bad", [True, 2.5, None, ["a"], [2.5], [True]])
def test_layers_that_are_not_block_indices_are_one_config_error_naming_layers(bad):
    with pytest.raises(ConfigError, match=r"layers="):
        layer_indices(bad, 12)


def test_layers_keep_accepting_integers_of_every_kind():
    assert layer_indices(2, 12) == [10, 11]  # a count of last blocks, as the official n=int
    assert layer_indices(np.int64(2), 12) == [10, 11]
    assert layer_indices(np.array([3, -1]), 12) == [3, 11]
    assert layer_indices(torch.tensor([1, 0]), 12) == [0, 1]
    assert layer_indices(["3", 1.0], 12) == [1, 3]  # text and integral floats name blocks, as before


def test_features_refuses_raw_dn_integers(fb):
    dn = torch.full((1, 3, 32, 32), 200, dtype=torch.uint8)
    with pytest.raises(InputError, match=r"preprocess"):
        fb.features(dn)
    maps, cls = fb.features(fb.preprocess(dn))  # the way the message names works
    assert maps[0].shape == (1, 32, 2, 2) and torch.isfinite(cls[0]).all()


@pytest.mark.parametrize("amp", ["false", "no", "yes"])
def test_amp_given_as_text_is_refused(amp):
    with pytest.raises(ConfigError, match=r"amp="):
        load_backbone(SPEC, amp=amp)


def test_amp_bool_and_none_load(fb):
    assert load_backbone(SPEC, amp=False).amp is False and fb.amp is None


@pytest.mark.parametrize("compile_", ["no", "false", 2])
def test_compile_given_as_text_is_refused_before_anything_is_compiled(fb, compile_):
    with pytest.raises(ConfigError, match=r"compile="):
        accelerate(fb, compile=compile_)
    with pytest.raises(ConfigError, match=r"compile="):
        job_path(torch.device("cpu"), compile=compile_)
    assert type(fb.model).__name__ == "DinoVisionTransformer"  # left eager


@pytest.mark.parametrize("bad", [3, None, ["arch:vit_small"]])
def test_a_spec_that_is_not_text_a_path_or_a_module_is_one_config_error(bad):
    """load_backbone(3) said "backbone checkpoint 3 not found", as if 3 were a file name."""
    with pytest.raises(ConfigError, match=r"^spec must be a spec string .*, got (int 3|NoneType None|list \[)"):
        load_backbone(bad)
