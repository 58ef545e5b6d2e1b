"""Segmentation probe `layers` given as a bare number (or another non-list value): one ConfigError line, exit 2
through `geodino probe`; `default_layers` called `list(2)` and died with a TypeError traceback before
`resolve_layers` could refuse it."""

from __future__ import annotations

import numpy as np
import pytest

from geodino.errors import ConfigError
from geodino.eval.segmentation import SegmentationProbeConfig, head_layers
from tests.eval.test_segmentation import make_folder

SPEC = "arch:vit_tiny?depth=4&patch_size=8&seed=0"


@pytest.fixture(scope="module")
def bb():
    from geodino.backbones import load_backbone

    return load_backbone(SPEC)


@pytest.mark.parametrize(
    "value, want",
    [
        (2, "layers=2 is a bare number"),
        (np.int64(2), "layers=2 is a bare number"),
        (2.5, "layers=2.5 must be auto, last"),
        (True, "layers=True must be auto, last"),
        ({"a": 1}, "must be auto, last"),
    ],
)
def test_non_list_layers_are_one_config_error_line(bb, value, want) -> None:
    cfg = SegmentationProbeConfig(layers=value, head="linear", num_classes=2)
    with pytest.raises(ConfigError, match=want) as info:
        head_layers(bb, cfg)
    assert "\n" not in str(info.value) and "segmentation head=linear" in str(info.value)


def test_lists_tuples_and_names_still_resolve(bb) -> None:
    for value, want in [((1, 3), [1, 3]), ([0, 1, 2, 3], [0, 1, 2, 3]), ("auto", "last"), (None, "last")]:
        assert head_layers(bb, SegmentationProbeConfig(layers=value, head="linear", num_classes=2)) == want
    assert head_layers(bb, SegmentationProbeConfig(layers="auto", head="upernet", num_classes=2)) == "four_even"


def test_geodino_probe_with_layers_2_is_one_line_exit_2(tmp_path, capsys) -> None:
    from geodino.cli import main

    img, msk = make_folder(tmp_path / "seg", n=2, size=16)
    cfg = tmp_path / "seg.yaml"
    cfg.write_text(
        "tasks:\n  lc:\n    type: segmentation\n"
        f"    train_images: {img}\n    train_masks: {msk}\n"
        "    num_classes: 2\n    head: linear\n    layers: 2\n    epochs: 1\n"
    )
    assert main(["probe", "--config", str(cfg), "--backbone", SPEC, "--out", str(tmp_path / "res")]) == 2
    err = capsys.readouterr().err
    lines = [ln for ln in err.splitlines() if ln.startswith("geodino: error:")]
    assert len(lines) == 1 and "Traceback" not in err, err
    assert "layers=2 is a bare number; list the blocks ([2] is block 2)" in lines[0]
