"""The probe runner's input check (`runner_inputs.precheck_inputs`): a missing or empty folder in any task's file
keys (segmentation masks, canopy CHMs, detection boxes) stops the suite before any task runs, with one line naming
`tasks.<name>.<key>` and exit code 2."""

from __future__ import annotations

import numpy as np
import pytest

import geodino.cli
from geodino.errors import InputError
from geodino.eval import runner
from geodino.eval.runner_inputs import precheck_inputs
from tests.eval.class_folder import class_folder

SUITE = """
name: two_tasks
tasks:
  folder_knn:
    type: classification
    data: {{name: image_folder, root: {root}, val_fraction: 0.25, test_fraction: 0.25}}
    features: {{batch_size: 8}}
    knn: {{ks: [1]}}
    linear: {{enabled: false}}
  heights:
    type: canopy
    train_images: [{images}]
    train_chms: [{chms}]
"""


def _suite(tmp_path, images, chms):
    class_folder(tmp_path / "imgs")
    path = tmp_path / "suite.yaml"
    path.write_text(SUITE.format(root=tmp_path / "imgs", images=images, chms=chms))
    return path


def test_a_missing_canopy_folder_stops_the_suite_before_the_first_task(
    tmp_path, monkeypatch, capsys, tiny_probe_backbone
):
    monkeypatch.setattr(geodino.cli, "COMMAND_MODULES", ("geodino.eval.commands",))
    ran = []
    call = runner._call_task
    monkeypatch.setattr(runner, "_call_task", lambda fn, *a: ran.append(fn.__name__) or call(fn, *a))
    (tmp_path / "chm").mkdir()
    suite = _suite(tmp_path, tmp_path / "no_such_rgb", tmp_path / "chm")
    out = tmp_path / "out"
    code = geodino.cli.main(["probe", "-c", str(suite), "-b", "tiny", "--out", str(out), "progress=false"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and ran == []  # before: the classification task ran first, then the canopy task failed
    assert err[-1].startswith("geodino: error: tasks.heights.train_images: image ") and "not found" in err[-1]
    assert not (out / "results.json").exists() and not (out / "folder_knn").exists()


def test_an_empty_chm_folder_is_named_with_its_key(tmp_path, tiny_probe_backbone):
    (tmp_path / "rgb").mkdir()
    (tmp_path / "rgb" / "a.tif").write_bytes(b"")  # listed only: nothing is read before the task runs
    (tmp_path / "chm").mkdir()
    (tmp_path / "chm" / "notes.txt").write_text("no rasters here")
    suite = _suite(tmp_path, tmp_path / "rgb", tmp_path / "chm")
    from geodino.config import load_config

    cfg = load_config(runner.SuiteConfig, suite, ["progress=false"])
    with pytest.raises(InputError, match=r"^tasks\.heights\.train_chms: no CHM files found in "):
        runner.run_suite(cfg, "tiny", tmp_path / "out")


def test_segmentation_and_detection_file_keys(tmp_path):
    from geodino.eval.detection import DetectionProbeConfig
    from geodino.eval.segmentation import SegmentationProbeConfig

    (tmp_path / "img").mkdir()
    np.save(tmp_path / "img" / "x.npy", np.zeros(2))  # no image suffix: the folder holds no images
    seg = SegmentationProbeConfig(train_images=str(tmp_path / "img"), train_masks=str(tmp_path / "m"), num_classes=2)
    with pytest.raises(InputError, match=r"^tasks\.s\.train_images: no image files found in "):
        precheck_inputs("s", "segmentation", seg, None)
    (tmp_path / "img" / "a.png").write_bytes(b"")
    with pytest.raises(InputError, match=r"^tasks\.s\.train_masks: mask .*/m not found"):
        precheck_inputs("s", "segmentation", seg, None)
    det = DetectionProbeConfig(train_images=[str(tmp_path / "img")], train_boxes=[str(tmp_path / "img" / "*.xml")])
    with pytest.raises(InputError, match=r"^tasks\.d\.train_boxes: no box annotation files found in "):
        precheck_inputs("d", "detection", det, None)
    (tmp_path / "img" / "a.xml").write_text("<annotation/>")
    precheck_inputs("d", "detection", det, None)  # every key lists its files: no error


def test_a_task_fed_by_a_named_dataset_skips_its_folder_keys(tmp_path):
    from geodino.eval.datasets import DatasetConfig
    from geodino.eval.segmentation import SegmentationProbeConfig

    class_folder(tmp_path / "imgs")
    seg = SegmentationProbeConfig(train_images=str(tmp_path / "unused"), num_classes=2)
    data = DatasetConfig(name="image_folder", root=str(tmp_path / "imgs"))
    precheck_inputs("s", "segmentation", seg, data)  # the adapter gives the samples: train_images is not read
    data.root = str(tmp_path / "gone")
    with pytest.raises(InputError, match="gone"):
        precheck_inputs("s", "segmentation", seg, data)
