"""A dense probe's `val_fraction` outside [0, 1) is refused in one line before the backbone loads.
Before: `val_fraction: 1.5` held out every training tile but one and ran (exit 0, 'IoU/2 nan' in
results.md), -0.1 held out one tile all the same."""

from __future__ import annotations

import pytest

from geodino import cli
from geodino.errors import ConfigError
from geodino.eval import dense
from geodino.eval.segmentation import SegmentationProbeConfig, run_segmentation
from tests import helpers
from tests.embed.conftest import random_image

SPEC = "arch:vit_tiny?depth=1&patch_size=8&bands=3"


@pytest.fixture
def images(tmp_path):
    (folder := tmp_path / "img").mkdir()
    (tmp_path / "msk").mkdir()
    for i in range(2):
        helpers.write_tif(folder / f"{i}.tif", random_image(32, 32, seed=i))
        helpers.write_tif(tmp_path / "msk" / f"{i}.tif", (random_image(32, 32, seed=i)[:1] > 128).astype("uint8"))
    return tmp_path


@pytest.mark.parametrize(
    ("value", "line"),
    [
        ("1.5", "tasks.s.val_fraction=1.5 must be >= 0 and < 1 (the share of the training data held out"),
        ("-0.1", "tasks.s.val_fraction=-0.1 must be >= 0 and < 1"),
    ],
)
def test_the_cli_refuses_a_hold_out_no_split_is_made_with(images, capsys, value, line, monkeypatch):
    monkeypatch.setattr("geodino.backbones.load_backbone", lambda *a, **k: pytest.fail("backbone loaded"))
    args = ["probe", "-b", SPEC, "-o", str(images / "out"), "--no-progress", "tasks.s.type=segmentation"]
    keys = [f"tasks.s.train_images={images / 'img'}", f"tasks.s.train_masks={images / 'msk'}"]
    assert cli.main([*args, *keys, "tasks.s.num_classes=2", f"tasks.s.val_fraction={value}"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("geodino: error: segmentation " + line) or err.startswith("geodino: error: " + line), err
    assert "\n" not in err and not (images / "out" / "results.json").exists()


def test_python_callers_get_the_same_line(images):
    cfg = SegmentationProbeConfig(
        train_images=str(images / "img"), train_masks=str(images / "msk"), num_classes=2, val_fraction=1.0
    )
    with pytest.raises(ConfigError, match=r"^segmentation val_fraction=1\.0 must be >= 0 and < 1"):
        run_segmentation(SPEC, cfg, images / "out")
    cfg.val_fraction, cfg.val_images = 0.0, str(images / "img")  # 0 with validation images: nothing to hold out
    cfg.val_masks = str(images / "msk")
    cfg.epochs, cfg.crop_size, cfg.plots, cfg.progress = 1, 32, 0, False
    with pytest.warns(UserWarning):  # a head this short is barely trained
        assert "mIoU" in run_segmentation(SPEC, cfg, images / "out")


@pytest.mark.parametrize("probe", ["canopy", "detection", "segmentation"])
def test_each_dense_config_checks_its_hold_out_in_validate(probe):
    """The check's one home is the config's `validate` (it was called from `start_probe` and from the suite's input
    check instead), so whatever validates a config refuses the value, with the same line."""
    from geodino.eval.canopy import CanopyProbeConfig
    from geodino.eval.detection import DetectionProbeConfig

    schema = {"canopy": CanopyProbeConfig, "detection": DetectionProbeConfig, "segmentation": SegmentationProbeConfig}
    cfg = schema[probe](val_fraction=1.5)
    with pytest.raises(ConfigError, match=rf"^{probe} val_fraction=1\.5 must be >= 0 and < 1 \(the share"):
        cfg.validate()


def test_reading_a_suite_refuses_it_with_its_task_key(tmp_path):
    """Reading the suite (`parse_tasks`, which validates each task's config) refuses it, naming tasks.<name>.<key>:
    the suite's input check no longer needs its own call."""
    from geodino.config import load_config
    from geodino.eval.runner import SuiteConfig, parse_tasks

    cfg = load_config(SuiteConfig, None, ["backbone=x", "tasks.c.type=canopy", "tasks.c.val_fraction=1.5"])
    with pytest.raises(ConfigError, match=r"^tasks\.c\.val_fraction=1\.5 must be >= 0 and < 1"):
        parse_tasks(cfg, tmp_path)


@pytest.mark.parametrize(("probe", "labels"), [("canopy", "val_chms"), ("detection", "val_boxes")])
def test_a_zero_hold_out_without_validation_data_is_refused(probe, labels):
    """val_fraction: 0 without val_images held out one tile all the same and scored the probe on it, unsaid;
    it is refused in one line saying both ways out. With val_images, 0 is what it says (nothing held out)."""
    from geodino.eval.canopy import CanopyProbeConfig
    from geodino.eval.detection import DetectionProbeConfig

    schema = CanopyProbeConfig if probe == "canopy" else DetectionProbeConfig
    line = (
        rf"^{probe} val_fraction=0 holds no training data out and no val_images are given, so there is nothing to "
        rf"score the probe on; set val_fraction above 0 \(e\.g\. 0\.2\) to hold that share out, or give val_images "
        rf"and {labels}$"
    )
    with pytest.raises(ConfigError, match=line):
        schema(train_images=["a.tif"], val_fraction=0.0).validate()
    schema(train_images=["a.tif"], val_images=["b.tif"], val_fraction=0.0).validate()
    schema(val_fraction=0.0).validate()  # no files of its own: data given in Python, checked where it is split
    with pytest.raises(ConfigError, match=line):
        dense.holdout_indices(8, 0.0, 0, probe)


def test_the_cli_refuses_a_zero_hold_out_before_the_backbone_loads(images, capsys, monkeypatch):
    monkeypatch.setattr("geodino.backbones.load_backbone", lambda *a, **k: pytest.fail("backbone loaded"))
    args = ["probe", "-b", SPEC, "-o", str(images / "out"), "--no-progress", "tasks.s.type=segmentation"]
    keys = [f"tasks.s.train_images={images / 'img'}", f"tasks.s.train_masks={images / 'msk'}"]
    assert cli.main([*args, *keys, "tasks.s.num_classes=2", "tasks.s.val_fraction=0"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("geodino: error: tasks.s.val_fraction=0 holds no training data out and no "), err
    assert "give tasks.s.val_images and tasks.s.val_masks" in err and "\n" not in err, err


def test_python_data_without_validation_is_refused_where_it_is_split(images):
    """Samples given in Python (no train_images in the config) reach the split; 0 is refused there."""
    from geodino.eval.segmentation_data import load_folder

    cfg = SegmentationProbeConfig(num_classes=2, val_fraction=0.0)
    data = load_folder(str(images / "img"), str(images / "msk"), cfg)
    with pytest.raises(ConfigError, match=r"^segmentation val_fraction=0 holds no training data out"):
        run_segmentation(SPEC, cfg, images / "out", train_data=data)
