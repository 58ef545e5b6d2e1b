"""The ViT refuses what is not a float image batch in one InputError line: raw DN (uint8) reached conv2d and
failed with torch's "Input type (unsigned char) and bias type (float)", and a numpy batch was iterated as a list
of crop groups and reported as "a tensor of shape (C, H, W)". The fast path shares the check."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from geodino.errors import InputError
from geodino.models import build_model
from geodino.models.frozen import FastPath, FastViT


@pytest.fixture(scope="module")
def tiny():
    torch.manual_seed(0)
    return build_model("vit_small", in_chans=3, depth=1, embed_dim=32, num_heads=2).eval()


def test_integer_input_is_refused_pointing_to_preprocess(tiny):
    raw = torch.zeros(1, 3, 32, 32, dtype=torch.uint8)
    with pytest.raises(InputError, match=r"normalised float input, got torch\.uint8 .*preprocess"):
        tiny.forward_features(raw)
    with pytest.raises(InputError, match="normalised float input"):
        tiny.get_intermediate_layers(raw.long())
    with pytest.raises(InputError, match="normalised float input"):
        FastViT(tiny, FastPath(True, "float32")).forward_features(raw)
    assert tiny.forward_features(raw.float())["x_norm_clstoken"].shape == (1, 32)  # the float batch runs


def test_numpy_batch_is_refused_naming_its_type(tiny):
    batch = np.zeros((1, 3, 32, 32), np.float32)
    with pytest.raises(InputError, match=r"takes a torch\.Tensor .* got ndarray"):
        tiny.forward_features(batch)
    with pytest.raises(InputError, match="got ndarray"):
        tiny.get_intermediate_layers(batch)


def test_channels_last_batch_is_named(tiny):
    with pytest.raises(InputError, match=r"has its 3 bands last.*x\.permute\(0, 3, 1, 2\)"):
        tiny.forward_features(torch.zeros(1, 32, 32, 3))
    with pytest.raises(InputError, match="input has 4 bands but the backbone expects 3"):
        tiny.forward_features(torch.zeros(1, 4, 32, 32))
