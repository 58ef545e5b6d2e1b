"""An image read channels-last ([H, W, C], as PIL and numpy give it) was refused as "input has 64 bands"; the
line now says the bands are last and how to move them. Other band-count errors keep their line."""

from __future__ import annotations

import pytest
import torch

from geodino.backbones import load_backbone
from geodino.errors import InputError


@pytest.fixture(scope="module")
def fb():
    return load_backbone("arch:vit_small?depth=1&embed_dim=32&num_heads=2")


def test_channels_last_is_named_with_the_permute(fb):
    with pytest.raises(InputError, match=r"shape \(64, 48, 3\) has its 3 bands last.*x\.permute\(2, 0, 1\)"):
        fb.preprocess(torch.zeros(64, 48, 3, dtype=torch.uint8))
    with pytest.raises(InputError, match=r"bands last.*x\.permute\(0, 3, 1, 2\)"):
        fb.features(torch.zeros(2, 64, 48, 3))
    fixed = fb.preprocess(torch.zeros(64, 48, 3, dtype=torch.uint8).permute(2, 0, 1))[None]
    assert fb.features(fixed)[0][0].shape == (1, 32, 4, 3)


def test_other_band_counts_keep_their_line(fb):
    with pytest.raises(InputError, match="input has 4 bands but backbone arch:vit_small"):
        fb.normalize(torch.zeros(1, 4, 32, 32))


def test_an_image_without_batch_axis_is_told_to_add_it(fb):
    """`preprocess` takes [C, H, W] (as read_image gives it) and returns it so; `features` needs the batch axis."""
    x = fb.preprocess(torch.zeros(3, 32, 32, dtype=torch.uint8))
    with pytest.raises(InputError, match=r"got shape \(3, 32, 32\); add the batch axis: x\[None\]"):
        fb.features(x)
    with pytest.raises(InputError, match=r"add the batch axis"):
        fb.model.forward_features(x)
    assert fb.features(x[None])[0][0].shape == (1, 32, 2, 2)
