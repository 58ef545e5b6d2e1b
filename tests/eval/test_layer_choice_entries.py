"""Probe layer lists: entries that are not whole block numbers, and an empty list, are one ConfigError line."""

from __future__ import annotations

import numpy as np
import pytest

from geodino.errors import ConfigError
from geodino.eval.layer_choice import resolve_layers


@pytest.mark.parametrize("layers", [[2.5], [True, 1], ["a"], []])
def test_bad_entries_are_one_config_error(layers):
    with pytest.raises(ConfigError) as exc:
        resolve_layers(layers, 12, need_four=False)
    assert "layers" in str(exc.value) and "\n" not in str(exc.value)


def test_whole_numbers_of_any_kind_still_name_blocks():
    assert resolve_layers([np.int64(2), "5", 8.0, 11], 12, need_four=True) == [2, 5, 8, 11]
