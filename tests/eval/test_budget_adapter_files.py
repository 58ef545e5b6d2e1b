"""Label budgets on named adapters record the kept training images from the adapter's file list
(`ProbeDataset.sample_files`): LoveDA's segmentation budget named none (its samples carry no name and the adapter
gave no files), and the VHR-10/DIOR detection budget read every kept sample once to learn its name."""

from __future__ import annotations

import json

import pytest

from geodino.eval.datasets import DatasetConfig, build_dataset
from geodino.eval.detection import DetectionProbeConfig
from geodino.eval.detection_training import budget_images
from geodino.eval.segmentation import SegmentationProbeConfig, run_segmentation
from tests.eval.dense_backbone import tiny_backbone
from tests.eval.test_datasets import make_loveda, make_vhr10
from tests.eval.test_detection_adapters import make_dior


def test_loveda_budget_records_the_kept_image_paths(tmp_path):
    make_loveda(tmp_path / "loveda")  # Train: Urban 0.png 1.png, Rural 0.png 1.png (names repeat across scenes)
    data = DatasetConfig(name="loveda", root=str(tmp_path / "loveda"), test_split="val")
    full = build_dataset(data, "train")
    assert full.sample_files() == [
        f"Train/{scene}/images_png/{i}.png" for scene in ("Rural", "Urban") for i in range(2)
    ]  # torchgeo's sorted order
    cfg = SegmentationProbeConfig(
        data=data, crop_size=16, epochs=1, min_steps=1, plots=0, progress=False, train_fraction=0.5
    )
    run_segmentation(tiny_backbone(), cfg, tmp_path / "out")
    budget = json.loads((tmp_path / "out" / "segmentation_metrics.json").read_text())["label_budget"]
    assert (budget["n_train_full"], budget["n_train"]) == (4, 2)
    kept = budget["train_images"]
    assert len(kept) == 2 and len(set(kept)) == 2 and set(kept) <= set(full.sample_files())


def _counting(ds):
    calls = []
    real = ds._getter
    ds._getter = lambda i: calls.append(i) or real(i)
    return calls


@pytest.mark.parametrize("name", ["vhr10", "dior"])
def test_detection_budget_names_kept_images_without_reading_them(tmp_path, name):
    if name == "vhr10":
        make_vhr10(tmp_path / "d", n=10, size=32)
        data = DatasetConfig(name="vhr10", root=str(tmp_path / "d"))
    else:
        make_dior(tmp_path / "d")
        data = DatasetConfig(name="dior", root=str(tmp_path / "d"), test_split="val")
    ds = build_dataset(data, "train")
    calls = _counting(ds)
    cfg = DetectionProbeConfig(data=data, train_fraction=0.5, progress=False)
    kept, record = budget_images(cfg, ds, ds, None)
    assert calls == []  # no sample read to name the kept images
    names = [ds[i]["name"] for i in kept.indices]  # the names the samples (and COCO outputs) carry
    assert record["train_images"] == names and len(names) == record["n_train"] >= 1
