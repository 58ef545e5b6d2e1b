"""geodino_vit's `out_indices` (TerraTorch's backbone_out_indices): a block listed twice was dropped without a word
([1, 1] returned one feature, so TerraTorch's SelectIndices positions and decoder channel lists were off by it), and
errors named `layers`, geodino's own key, not the option the user set. Runs without TerraTorch."""

from __future__ import annotations

import pytest
import torch

from geodino.errors import ConfigError
from geodino.integrations.terratorch import geodino_vit


def _bb(**kw):
    """A random 12-block vit_tiny (no checkpoint)."""
    return geodino_vit(arch="vit_tiny", patch_size=8, bands=3, **kw)


@pytest.mark.parametrize("indices", [[1, 1], [11, -1], (2, 5, 5)])
def test_a_block_listed_twice_is_refused(indices):
    with pytest.raises(ConfigError, match=r"out_indices=\[.*\] name a block twice .*backbone_out_indices"):
        _bb(out_indices=indices)


def test_errors_name_out_indices_and_valid_lists_still_work():
    with pytest.raises(ConfigError, match=r"^geodino_vit out_indices=\[12\]: layer index 12 out of range"):
        _bb(out_indices=[12])
    bb = _bb(out_indices=[-1, 2])  # block order, negatives counted from the end (as documented)
    assert bb.out_indices == [2, 11] and len(bb(torch.rand(1, 3, 16, 16))) == 2
    assert _bb(out_indices=4).out_indices == [8, 9, 10, 11]  # a count takes the last blocks


@pytest.mark.parametrize(
    ("indices", "said"),
    [
        (99, r"^geodino_vit out_indices=99 asks for the last 99 blocks but the backbone has 12 blocks"),
        ([], r"^geodino_vit out_indices is an empty list"),
        ("first", r"^geodino_vit unknown out_indices 'first'"),
    ],
)
def test_every_layer_refusal_names_out_indices_once(indices, said):
    """layer_indices' other refusals named geodino's `layers` after the out_indices prefix (two keys, one value)."""
    with pytest.raises(ConfigError, match=said) as err:
        _bb(out_indices=indices)
    assert "layers" not in str(err.value)
