"""Segmentation on a named dataset is scored on its test split (`data.test_split`), as detection is.

It used to score the adapter's val split whatever `data.test_split` said, so the test split of a dataset with
labelled test images was never used. LoveDA (Test has no public masks) keeps scoring Val through its configs'
`test_split: val`.
"""

from __future__ import annotations

import json

import pytest
import torch

from geodino.errors import ConfigError
from geodino.eval import datasets
from geodino.eval.datasets import DatasetConfig
from geodino.eval.segmentation import SegmentationProbeConfig, run_segmentation
from tests.eval.dense_backbone import tiny_backbone
from tests.eval.test_datasets import make_loveda


class Split(list):
    """A fake adapter split: samples plus the classes and ignore index an adapter carries; logs what is read."""

    classes = ("a", "b")
    ignore_index = 255

    def __init__(self, name: str, n: int, read: list[str]):
        g = torch.Generator().manual_seed(len(name))
        super().__init__(
            {"image": torch.rand(3, 16, 16, generator=g), "mask": torch.randint(0, 2, (16, 16), generator=g),
             "name": f"{name}{i}"}
            for i in range(n)
        )  # fmt: skip
        self.read = read

    def __getitem__(self, i):  # type: ignore[override]
        s = super().__getitem__(i)
        self.read.append(s["name"])
        return s


def test_a_named_dataset_is_scored_on_its_test_split(tmp_path, monkeypatch):
    built: list[str] = []
    read: list[str] = []
    sizes = {"train": 2, "val": 1, "test": 3}

    def fake(cfg: DatasetConfig, split: str) -> Split:
        built.append(split)
        return Split(split, sizes[split], read)

    monkeypatch.setitem(datasets.DATASETS, "fake_seg", fake)
    cfg = SegmentationProbeConfig(
        data=DatasetConfig(name="fake_seg", root=str(tmp_path)),
        crop_size=16,
        epochs=1,
        min_steps=1,
        plots=0,
        progress=False,
    )
    run_segmentation(tiny_backbone(), cfg, tmp_path / "out")
    assert built == ["train", "test"]  # before: ["train", "val"]
    assert [n for n in read if not n.startswith("train")] == ["test0", "test1", "test2"]
    saved = json.loads((tmp_path / "out" / "segmentation_metrics.json").read_text())
    assert saved["scored_split"] == "fake_seg test"


def test_loveda_is_scored_on_val_and_refuses_its_unlabelled_test(tmp_path):
    make_loveda(tmp_path / "loveda")
    data = DatasetConfig(name="loveda", root=str(tmp_path / "loveda"), test_split="val")  # as its configs
    cfg = SegmentationProbeConfig(data=data, crop_size=16, epochs=1, min_steps=1, plots=0, progress=False)
    run_segmentation(tiny_backbone(), cfg, tmp_path / "out")
    saved = json.loads((tmp_path / "out" / "segmentation_metrics.json").read_text())
    assert saved["scored_split"] == "loveda val"
    bare = SegmentationProbeConfig(data=DatasetConfig(name="loveda", root=str(tmp_path / "loveda")), epochs=1)
    with pytest.raises(ConfigError, match="test_split=val"):
        run_segmentation(tiny_backbone(), bare, tmp_path / "out2")
