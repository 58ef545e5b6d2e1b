"""Two newcomer slips with the dense probes, each now said in one line.

- Another probe's config: `run_canopy(bb, SegmentationProbeConfig(...))` failed on a layer check
  ("canopy head=linear: layers='auto' must be ..."), `run_detection` with a canopy config on a missing attribute.
- A listed image that no annotation entry names was left out of the detection set without a word (a misnamed
  annotation file shrank the training set unseen); now a warning names it.
"""

from __future__ import annotations

import shutil

import pytest

from geodino.errors import ConfigError
from geodino.eval.canopy import CanopyProbeConfig, run_canopy
from geodino.eval.detection import DetectionProbeConfig, load_detection_set, run_detection
from geodino.eval.segmentation import SegmentationProbeConfig, run_segmentation
from tests.eval.test_detection import _scene


@pytest.mark.parametrize(
    ("run", "cfg", "want"),
    [
        (run_canopy, SegmentationProbeConfig(num_classes=2), "run_canopy takes a CanopyProbeConfig, not a Segm"),
        (run_detection, CanopyProbeConfig(), "run_detection takes a DetectionProbeConfig, not a CanopyProbeConfig"),
        (run_segmentation, DetectionProbeConfig(), "run_segmentation takes a SegmentationProbeConfig, not a Detec"),
    ],
)
def test_another_probes_config_is_refused_in_one_line(tmp_path, run, cfg, want):
    with pytest.raises(ConfigError, match=want) as err:
        run("arch:vit_tiny?depth=1&seed=0", cfg, tmp_path / "out")
    assert "\n" not in str(err.value)
    assert not (tmp_path / "out").exists()  # refused before anything is loaded or written


def test_an_image_without_an_annotation_entry_is_named_in_a_warning(tmp_path):
    _scene(tmp_path)  # scene.tif with its boxes in scene.csv
    shutil.copy(tmp_path / "scene.tif", tmp_path / "stray.tif")
    images = [str(tmp_path / "scene.tif"), str(tmp_path / "stray.tif")]
    with pytest.warns(
        UserWarning, match=r"1 listed image \(stray.tif\) has no entry in the box annotations .* and is left out"
    ):
        data, _ = load_detection_set(images, [str(tmp_path / "scene.csv")], DetectionProbeConfig(), None)
    assert [f.name for f, _ in data.items] == ["scene.tif"]
