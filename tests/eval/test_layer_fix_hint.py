"""A four-map head refused on a shallow backbone (the one-block baseline:colour) names a fix that runs.

The hint was `head=linear` alone; with the task's layers a four-block choice (canopy's default four_even, or an
explicit four_even/pangaea on segmentation) the linear head was then refused in turn (`layers=last` needed), so
following the first error led to a second one. Segmentation's `layers: auto` still needs `head=linear` only.
"""

from __future__ import annotations

import dataclasses
import json
from types import SimpleNamespace

import pytest

from geodino.errors import ConfigError
from geodino.eval.layer_choice import LayerError

ONE_BLOCK = SimpleNamespace(n_blocks=1, spec="baseline:colour")


def _apply(cfg, fixes):
    """The config after the `key=value` fixes a LayerError names."""
    return dataclasses.replace(cfg, **dict(f.split("=", 1) for f in fixes))


def test_canopy_dpt_hint_is_enough_to_run():
    from geodino.eval.canopy import CanopyProbeConfig, head_layers

    cfg = CanopyProbeConfig(head="dpt")  # layers: four_even, the default
    with pytest.raises(LayerError) as info:
        head_layers(ONE_BLOCK, cfg)
    assert "layers=last" in str(info.value) and "\n" not in str(info.value)
    assert head_layers(ONE_BLOCK, _apply(cfg, info.value.fixes)) == "last"  # the hint runs: no second refusal


def test_canopy_linear_reason_names_the_layers_not_the_head():
    from geodino.eval.canopy import CanopyProbeConfig, head_layers

    with pytest.raises(LayerError) as info:
        head_layers(ONE_BLOCK, CanopyProbeConfig(head="linear"))
    assert info.value.fixes == ("layers=last",)
    assert "four_even" in info.value.reason and "head=linear needs four layers" not in info.value.reason


@pytest.mark.parametrize(
    ("layers", "fixes"), [("auto", ("head=linear",)), ("four_even", ("head=linear", "layers=last"))]
)
def test_segmentation_hint_follows_the_layers_key(layers, fixes):
    from geodino.eval.segmentation import SegmentationProbeConfig, head_layers

    cfg = SegmentationProbeConfig(head="upernet", layers=layers)
    with pytest.raises(LayerError) as info:
        head_layers(ONE_BLOCK, cfg)
    assert info.value.fixes == fixes and info.value.fix == "head=linear"
    assert head_layers(ONE_BLOCK, _apply(cfg, info.value.fixes)) == "last"


def test_suite_error_names_every_key_to_set(tmp_path):
    from geodino.config import load_config
    from geodino.eval import SuiteConfig, run_suite
    from tests.eval.test_segmentation import make_folder

    img, msk = make_folder(tmp_path / "seg", n=2, size=32)
    seg = {"type": "segmentation", "train_images": str(img), "train_masks": str(msk), "num_classes": 2,
           "crop_size": 32, "epochs": 1, "batch_size": 4, "plots": 0, "channels": 16}  # fmt: skip
    suite = {"name": "s", "progress": False, "tasks": {"seg": {**seg, "head": "upernet", "layers": "four_even"}}}
    path = tmp_path / "suite.yaml"
    path.write_text(json.dumps(suite))
    with pytest.raises(ConfigError) as info:
        run_suite(load_config(SuiteConfig, str(path)), "baseline:colour?patch_size=8", tmp_path / "out")
    assert "set tasks.seg.head=linear and tasks.seg.layers=last" in str(info.value)
    assert not (tmp_path / "out" / "results.json").exists()
