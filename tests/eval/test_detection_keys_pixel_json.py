"""The pixel-coordinate `<name>_boxes.json` names its image by the path below the run's common folder.

Before: every entry's "image" was the bare file name, so the boxes of pred/a/scene.png and pred/b/scene.png (written
to a__scene_boxes.json and b__scene_boxes.json since the output names were fixed) both said "scene.png"."""

from __future__ import annotations

import json

import numpy as np
import torch
from PIL import Image

from geodino.eval import detection as det
from geodino.eval.detection import run_detection
from geodino.eval.detection_outputs import image_paths
from tests.eval.dense_backbone import tiny_backbone
from tests.eval.test_detection_output_names import _cfg, _images


def test_image_paths_are_below_the_common_folder(tmp_path):
    paths = [tmp_path / "a" / "scene.png", tmp_path / "b" / "c" / "scene.png"]
    assert image_paths(paths) == {paths[0]: "a/scene.png", paths[1]: "b/c/scene.png"}
    one = [tmp_path / "a" / "x.png", tmp_path / "a" / "y.png"]
    assert image_paths(one) == {one[0]: "x.png", one[1]: "y.png"}  # one folder: the file name, as before


def test_pixel_json_of_two_images_with_one_name_names_each_by_its_folder(tmp_path, monkeypatch):
    _images(tmp_path / "train", 2)
    for folder in ("a", "b"):
        (tmp_path / "pred" / folder).mkdir(parents=True)
        Image.fromarray(np.full((32, 32, 3), 30, np.uint8)).save(tmp_path / "pred" / folder / "scene.png")
    fixed = {"boxes": torch.tensor([[1.0, 2.0, 9.0, 12.0]]), "scores": torch.tensor([0.9]), "labels": torch.tensor([0])}
    monkeypatch.setattr(det, "train_detector", lambda model, data, cfg: [1.0])
    monkeypatch.setattr(det, "predict_image", lambda *a, **k: fixed)
    cfg = _cfg(tmp_path, predict_images=[str(tmp_path / "pred" / "a"), str(tmp_path / "pred" / "b")])
    cfg.export_threshold = 0.5
    run_detection(tiny_backbone(), cfg, tmp_path / "out")
    for folder in ("a", "b"):
        entries = json.loads((tmp_path / "out" / f"{folder}__scene_boxes.json").read_text())
        assert [e["image"] for e in entries] == [f"{folder}/scene.png"]
        assert entries[0]["bbox"] == [1.0, 2.0, 8.0, 10.0] and entries[0]["label"] == "crown"
