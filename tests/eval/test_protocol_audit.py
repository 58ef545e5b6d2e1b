"""Protocol audit: splits, evaluated splits and caches that made probe numbers incomparable with published ones."""

from __future__ import annotations

import pytest

from geodino.errors import ConfigError
from geodino.eval.datasets import DatasetConfig, build_dataset
from tests.eval.test_datasets import make_vhr10

# ------------------------------------------------------------------------------ VHR-10: torchgeo's split, test


def test_vhr10_split_is_torchgeos_datamodule_split(tmp_path):
    """The config says 'seeded 60/20/20 split as torchgeo's datamodule': the parts must hold the same images as
    VHR10DataModule's (random_split with a torch generator seeded 0), not another seeded permutation."""
    pytest.importorskip("pycocotools")
    from torchgeo.datamodules import VHR10DataModule

    make_vhr10(tmp_path, n=20)
    dm = VHR10DataModule(root=str(tmp_path))
    dm.setup("fit")
    expected = {
        "train": sorted(dm.train_dataset.indices),
        "val": sorted(dm.val_dataset.indices),
        "test": sorted(dm.test_dataset.indices),
    }
    cfg = DatasetConfig(name="vhr10", root=str(tmp_path))
    got = {s: build_dataset(cfg, s).indices for s in ("train", "val", "test")}
    assert [len(got[s]) for s in ("train", "val", "test")] == [12, 4, 4]
    assert got == expected


def test_vhr10_fractions_must_leave_a_training_part(tmp_path):
    make_vhr10(tmp_path, n=5)
    with pytest.raises(ConfigError, match="leave a training part"):
        build_dataset(DatasetConfig(name="vhr10", root=str(tmp_path), val_fraction=0.5, test_fraction=0.5), "val")


def test_detection_on_a_named_dataset_is_scored_on_its_test_split(tmp_path):
    """With data.name=vhr10 the probe trained on train and scored the val part, leaving test unused: the count of
    scored images is that of the test part (10 images, val 0.1, test 0.3: floor(1), floor(3) images)."""
    from geodino.eval.detection import DetectionProbeConfig, run_detection
    from tests.eval.dense_backbone import tiny_backbone

    make_vhr10(tmp_path / "vhr10", n=10, size=32)
    data = DatasetConfig(name="vhr10", root=str(tmp_path / "vhr10"), val_fraction=0.1, test_fraction=0.3)
    assert [len(build_dataset(data, s)) for s in ("train", "val", "test")] == [6, 1, 3]
    cfg = DetectionProbeConfig(data=data, tile_size=32, epochs=1, min_steps=1, batch_size=2, progress=False)
    metrics = run_detection(tiny_backbone(), cfg, tmp_path / "out")
    assert metrics["val_images"] == 3.0


def test_dior_detection_needs_test_split_val(tmp_path):
    """DIOR's test images have no boxes in torchgeo: scoring on its test split is refused with the fix."""
    from geodino.eval.detection import DetectionProbeConfig, run_detection
    from tests.eval.dense_backbone import tiny_backbone
    from tests.eval.test_datasets import make_dior

    make_dior(tmp_path / "dior")
    cfg = DetectionProbeConfig(data=DatasetConfig(name="dior", root=str(tmp_path / "dior")), epochs=1)
    with pytest.raises(ConfigError, match="test_split=val"):
        run_detection(tiny_backbone(), cfg, tmp_path / "out")


# ------------------------------------------------------------------- feature cache: labels of class folders


def test_an_image_moved_to_another_class_folder_is_not_read_from_the_cache_with_its_old_label(tmp_path):
    """Relabelling by moving a file between class folders keeps its size and mtime and the split folder's mtime:
    the folder stamp did not change, the cache key neither, and the probe read the old labels from the cache."""
    import os

    from geodino.eval.features import FeatureConfig, extract_features
    from tests.eval.test_datasets import make_folder
    from tests.eval.tiny_backbone import TinyBackbone

    for split in ("train", "val", "test"):
        make_folder(tmp_path / "data" / split, {"a": 2, "b": 2})
    cfg = DatasetConfig(name="image_folder", root=str(tmp_path / "data"))
    bb, fc = TinyBackbone(), FeatureConfig(layers="last", batch_size=4)
    before = extract_features(bb, build_dataset(cfg, "test"), fc, cache_dir=tmp_path / "cache", progress=False)
    assert before.targets.tolist() == [0, 0, 1, 1]
    os.rename(tmp_path / "data/test/a/1.png", tmp_path / "data/test/b/9.png")  # a/1.png was mislabelled
    after = extract_features(bb, build_dataset(cfg, "test"), fc, cache_dir=tmp_path / "cache", progress=False)
    assert not after.from_cache
    assert after.targets.tolist() == [0, 1, 1, 1]
    again = extract_features(bb, build_dataset(cfg, "test"), fc, cache_dir=tmp_path / "cache", progress=False)
    assert again.from_cache and again.targets.tolist() == [0, 1, 1, 1]
