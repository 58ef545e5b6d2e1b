"""Detection label budget on a named dataset (VHR-10, DIOR adapters): detection_metrics.json names the kept
training images, as it does for image folders (68ffa69), by the names the adapter gives its samples (and the COCO
outputs use); before, a named dataset's record held the counts only. Samples without a name (a list passed to
run_detection) are recorded by their positions."""

from __future__ import annotations

import json

import torch

from geodino.eval import detection as det
from geodino.eval.datasets import DatasetConfig
from geodino.eval.detection import DetectionProbeConfig, run_detection
from tests.eval.dense_backbone import tiny_backbone
from tests.eval.test_datasets import make_vhr10
from tests.eval.test_detection_adapters import make_dior


def _run(tmp_path, monkeypatch, data: DatasetConfig, **kw) -> tuple[list[str], dict]:
    seen: list[list[str]] = []
    monkeypatch.setattr(
        det, "train_detector", lambda m, d, c: seen.append([d[i]["name"] for i in range(len(d))]) or [1.0]
    )
    cfg = DetectionProbeConfig(
        data=data, detector="retinanet", pyramid_channels=32, tile_size=32, epochs=1, progress=False, **kw
    )
    run_detection(tiny_backbone(), cfg, tmp_path / "out")
    return seen[0], json.loads((tmp_path / "out" / "detection_metrics.json").read_text())["label_budget"]


def test_vhr10_budget_records_the_kept_images(tmp_path, monkeypatch):
    make_vhr10(tmp_path / "v", n=10, size=32)  # torchgeo's 0.6/0.2/0.2 split: 6 training images
    trained, budget = _run(
        tmp_path, monkeypatch, DatasetConfig(name="vhr10", root=str(tmp_path / "v")), train_fraction=0.5
    )
    assert (budget["n_train_full"], budget["n_train"]) == (6, 3)
    assert budget["train_images"] == trained and len(set(trained)) == 3
    assert all(n.endswith(".jpg") and len(n) == 7 for n in trained)  # 001.jpg ... as the COCO outputs name them


def test_dior_budget_records_the_kept_images(tmp_path, monkeypatch):
    make_dior(tmp_path / "d")  # 2 training images (00000.jpg, 00001.jpg), 1 validation image
    data = DatasetConfig(name="dior", root=str(tmp_path / "d"), test_split="val")
    trained, budget = _run(tmp_path, monkeypatch, data, train_fraction=0.5)
    assert (budget["n_train_full"], budget["n_train"]) == (2, 1)
    assert budget["train_images"] == trained and trained[0] in {"00000.jpg", "00001.jpg"}


def test_unnamed_samples_are_recorded_by_position(tmp_path, monkeypatch):
    def sample(i):
        img = torch.full((3, 32, 32), 0.2)
        img[:, 4:16, 4:16] = 0.9
        return {"image": img, "boxes": torch.tensor([[4.0, 4.0, 16.0, 16.0]]), "labels": torch.tensor([0]), "k": i}

    train, val = [sample(i) for i in range(6)], [sample(9)]
    monkeypatch.setattr(det, "train_detector", lambda m, d, c: [1.0])
    cfg = DetectionProbeConfig(
        detector="retinanet", pyramid_channels=32, tile_size=32, epochs=1, progress=False, train_fraction=0.5
    )
    run_detection(tiny_backbone(), cfg, tmp_path / "out", train_data=train, val_data=val, class_names=["obj"])
    budget = json.loads((tmp_path / "out" / "detection_metrics.json").read_text())["label_budget"]
    assert budget["n_train"] == 3 and "train_images" not in budget
    assert len(budget["train_samples"]) == 3 and set(budget["train_samples"]) <= set(range(6))
