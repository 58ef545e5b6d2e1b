"""A layer set no backbone block fits, inside a probe suite's task, names the key the user wrote
(`tasks.es.features.layers=...`): the count and the index refusals named a bare `layers` (or no key at all) there,
while the short-backbone warning of the same module already named the task's key. Outside a task the index
refusal names `layers` too (it said only "layer index 7 out of range"); embed names its own `layers=... (--layers)`
from the refusal's `detail` and TerraTorch's geodino_vit names `out_indices`."""

from __future__ import annotations

import pytest

from geodino.backbones import layer_indices
from geodino.backbones.layers import LayerIndexError
from geodino.errors import ConfigError
from geodino.eval.classification import ClassificationConfig
from geodino.eval.runner_inputs import task_keys_named


@pytest.mark.parametrize(
    ("layers", "said"),
    [
        (99, r"^tasks\.es\.features\.layers=99 asks for the last 99 blocks but the backbone has 2 blocks"),
        ([0, 7], r"^tasks\.es\.features\.layers=\[0, 7\]: layer index 7 out of range for a backbone with 2 blocks"),
        ([], r"^tasks\.es\.features\.layers is an empty list"),
    ],
)
def test_inside_a_task_the_refusal_names_the_task_key(layers, said):
    with pytest.raises(ConfigError, match=said), task_keys_named("es", ClassificationConfig):
        layer_indices(layers, 2)


def test_outside_a_task_the_index_refusal_names_layers():
    with pytest.raises(
        LayerIndexError, match=r"^layers=\[0, 7\]: layer index 7 out of range for a backbone with 2 blocks \(0\.\.1\)$"
    ) as err:
        layer_indices([0, 7], 2)
    assert err.value.detail == "layer index 7 out of range for a backbone with 2 blocks (0..1)"  # what embed names
