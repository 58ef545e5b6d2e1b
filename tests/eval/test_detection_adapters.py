"""The detection probe fed by the DIOR and VHR-10 adapters (tiny copies in torchgeo 0.8's on-disk layouts).

Before: DIOR objects flagged `<difficult>1` reached the probe as regular boxes (torchgeo's VOC reader drops the
flag), so they were trained on and counted as positives; files read with the probe's own VOC reader ignored them.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from geodino.eval.datasets import DatasetConfig, build_dataset
from geodino.eval.detection import DetectionProbeConfig, run_detection
from tests.eval.dense_backbone import tiny_backbone

OBJECTS = [("ship", (1, 2, 11, 12), 0), ("windmill", (5, 6, 20, 30), 1), ("vehicle", (14, 3, 24, 9), 0)]


def make_dior(root: Path, size: int = 32) -> None:
    """torchgeo's DIOR layout: sample_df.csv (image_path, label_path, split), JPEGs and VOC XML with `<difficult>`."""
    rng = np.random.default_rng(0)
    rows = ["image_path,label_path,split"]
    for i, split in enumerate(["train", "train", "val"]):
        img, xml = f"Images_trainval/{i:05d}.jpg", f"Annotations_trainval/{i:05d}.xml"
        for p in (root / img, root / xml):
            p.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(rng.integers(0, 255, (size, size, 3), np.uint8)).save(root / img)
        objs = "".join(
            f"<object><name>{n}</name><pose>Unspecified</pose><truncated>0</truncated><difficult>{d}</difficult>"
            f"<bndbox><xmin>{b[0]}</xmin><ymin>{b[1]}</ymin><xmax>{b[2]}</xmax><ymax>{b[3]}</ymax></bndbox></object>"
            for n, b, d in OBJECTS
        )
        (root / xml).write_text(f"<annotation><filename>{i:05d}.jpg</filename>{objs}</annotation>")
        rows.append(f"{img},{xml},{split}")
    (root / "sample_df.csv").write_text("\n".join(rows) + "\n")


def test_dior_difficult_objects_arrive_as_ignore_boxes(tmp_path):
    make_dior(tmp_path)
    ds = build_dataset(DatasetConfig(name="dior", root=str(tmp_path), test_split="val"), "train")
    s = ds[0]
    assert s["boxes"].tolist() == [[1, 2, 11, 12], [14, 3, 24, 9]]  # xyxy pixels as written
    assert [ds.classes[k] for k in s["labels"].tolist()] == ["ship", "vehicle"]
    assert s["ignore_boxes"].tolist() == [[5, 6, 20, 30]]
    assert [ds.classes[k] for k in s["ignore_labels"].tolist()] == ["windmill"]


def test_dior_without_difficult_objects_has_no_ignore_boxes(tmp_path):
    from tests.eval.test_datasets import make_dior as make_plain_dior  # no <difficult> elements

    make_plain_dior(tmp_path)
    s = build_dataset(DatasetConfig(name="dior", root=str(tmp_path), test_split="val"), "train")[0]
    assert "ignore_boxes" not in s and s["boxes"].shape == (2, 4)


@pytest.mark.parametrize("name", ["dior", "vhr10"])
def test_the_probe_runs_through_the_detection_adapters(tmp_path, name):
    """Train one epoch on the adapter's train split and score its test split (DIOR: val); the metrics json holds the
    COCO, VOC and DeepForest numbers and the class names are the adapter's."""
    from tests.eval.test_datasets import make_vhr10

    root = tmp_path / name
    extra = {"test_split": "val"} if name == "dior" else {}
    if name == "dior":
        make_dior(root)
    else:
        make_vhr10(root, n=6, size=32)
    cfg = DetectionProbeConfig(
        data=DatasetConfig(name=name, root=str(root), **extra),
        detector="retinanet",
        pyramid_channels=32,
        tile_size=32,
        epochs=1,
        progress=False,
    )
    with pytest.warns(UserWarning, match="optimiser step"):  # a one-epoch head: the short-budget warning
        metrics = run_detection(tiny_backbone(), cfg, tmp_path / "out")
    saved = json.loads((tmp_path / "out" / "detection_metrics.json").read_text())
    for key in ("mAP", "mAP50", "voc_mAP50", "voc07_mAP50", "box_recall"):
        assert key in metrics and key in saved
    head = torch.load(tmp_path / "out" / "detection_head.pt", weights_only=False)
    assert len(head["class_names"]) == (20 if name == "dior" else 10)


def test_samples_without_a_raster_are_not_predicted_again_after_scoring(tmp_path, monkeypatch):
    """A named dataset's samples have no raster to write predictions for: the export predicts the first one (for
    the overlay) and stops. Before, it predicted every sample of the test split a second time and wrote nothing."""
    import geodino.eval.detection as det

    calls = []

    def fake_predict(model, image, cfg, whole_image_cap=True):
        calls.append(image.shape)
        return {"boxes": torch.zeros(0, 4), "scores": torch.zeros(0), "labels": torch.zeros(0, dtype=torch.long)}

    monkeypatch.setattr(det, "predict_image", fake_predict)
    samples = [{"image": torch.rand(3, 32, 32), "boxes": torch.zeros(0, 4), "labels": torch.zeros(0).long()}] * 5
    bb = tiny_backbone()
    cfg = DetectionProbeConfig(tile_size=32)
    det._export_predictions(None, cfg, bb, None, tmp_path, ["a"], samples, samples)
    assert len(calls) == 1 and (tmp_path / "detection_boxes.png").exists()
    assert not list(tmp_path.glob("*_boxes.*json"))
