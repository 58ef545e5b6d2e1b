"""The `dataset` column of results.json/results.md names the dataset, not the split or layer folder the training
images sit in (data/neon_canopy/train/RGB read `RGB`, a LoveDA-style train/images folder `images`)."""

from __future__ import annotations

from geodino.eval.canopy import CanopyProbeConfig
from geodino.eval.datasets import DatasetConfig
from geodino.eval.results import dataset_label
from geodino.eval.segmentation import SegmentationProbeConfig


def test_the_label_looks_past_split_and_layer_folders():
    canopy = CanopyProbeConfig(train_images=["data/neon_canopy/train/RGB"], train_chms=["data/neon_canopy/train/CHM"])
    assert dataset_label(canopy) == "neon_canopy"  # before: RGB
    seg = SegmentationProbeConfig(train_images="/srv/potsdam/Train/images/*.tif", num_classes=6)
    assert dataset_label(seg) == "potsdam"  # before: images
    assert dataset_label(CanopyProbeConfig(train_images=["/srv/plots/SJER_052.tif"])) == "plots"
    assert dataset_label(CanopyProbeConfig(train_images=["train/rgb"])) == "rgb"  # nothing else to name it by
    folder = DatasetConfig(name="image_folder", root="/srv/eurosat_sample")
    assert dataset_label(seg, folder) == "image_folder:eurosat_sample"
    assert dataset_label(SegmentationProbeConfig(data=DatasetConfig(name="loveda", root="/x"))) == "loveda"
