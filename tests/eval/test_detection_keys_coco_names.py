"""Probe samples of image folders are named by their path below the images' common folder (the `file_name` that
detections_coco_gt.json / detections_coco.json write for them).

Before: they were named by the bare file name, so img/a/x.png and img/b/x.png were both "x.png" (told apart in the
COCO files only by id; a reader matching file names back to images could not)."""

from __future__ import annotations

import numpy as np

from geodino.eval.detection import DetectionProbeConfig, load_detection_set


def _png(path, value):
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((16, 16, 3), value, np.uint8)).save(path)


def test_samples_of_one_name_in_two_folders_are_named_by_folder(tmp_path):
    _png(tmp_path / "img" / "a" / "x.png", 10)
    _png(tmp_path / "img" / "b" / "x.png", 200)
    _png(tmp_path / "img" / "b" / "y.png", 50)
    rows = ["image_path,xmin,ymin,xmax,ymax,label", "a/x.png,1,1,5,5,car", "b/x.png,2,2,9,9,ship"]
    rows += ["b/y.png,3,3,6,6,car"]
    (tmp_path / "boxes.csv").write_text("\n".join(rows) + "\n")
    images = [str(tmp_path / "img" / "a"), str(tmp_path / "img" / "b")]
    data, _ = load_detection_set(images, [str(tmp_path / "boxes.csv")], DetectionProbeConfig(), None)
    got = {data[i]["name"]: (data[i]["boxes"].tolist(), float(data[i]["image"].mean())) for i in range(len(data))}
    assert sorted(got) == ["a/x.png", "b/x.png", "b/y.png"]
    assert got["a/x.png"][0] == [[1, 1, 5, 5]] and got["b/x.png"][0] == [[2, 2, 9, 9]]
    assert got["a/x.png"][1] < got["b/x.png"][1]  # each name on its own pixels
    one, _ = load_detection_set(
        [str(tmp_path / "img" / "b")], [str(tmp_path / "boxes.csv")], DetectionProbeConfig(), None
    )
    assert sorted(one[i]["name"] for i in range(len(one))) == ["x.png", "y.png"]  # one folder: file names, as before
