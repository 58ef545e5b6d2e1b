"""One image's boxes given twice (a CSV beside the Pascal VOC xml of the same objects, as DeepForest ships them)
are counted once.

Before: read_boxes concatenated the two files' boxes, so a folder with x.csv and x.xml gave every object twice:
trained on twice and, when scored, the second copy of each object was a missed object (recall halved)."""

from __future__ import annotations

import numpy as np
import pytest

from geodino.eval.boxes import match_boxes, read_boxes

BOXES = [(1, 2, 6, 8, "tree"), (10, 10, 20, 18, "tree"), (3, 12, 9, 19, "snag")]


def _csv(path, rows):
    lines = ["image_path,xmin,ymin,xmax,ymax,label"] + [f"x.tif,{a},{b},{c},{d},{lab}" for a, b, c, d, lab in rows]
    path.write_text("\n".join(lines) + "\n")


def _voc(path, rows):
    objs = "".join(
        f"<object><name>{lab}</name><bndbox><xmin>{a}</xmin><ymin>{b}</ymin><xmax>{c}</xmax><ymax>{d}</ymax>"
        "</bndbox></object>"
        for a, b, c, d, lab in rows
    )
    path.write_text(f"<annotation><filename>x.tif</filename>{objs}</annotation>")


def test_the_same_boxes_in_a_csv_and_a_voc_file_count_once(tmp_path):
    _csv(tmp_path / "x.csv", BOXES)
    _voc(tmp_path / "x.xml", BOXES)
    with pytest.warns(UserWarning, match=r"3 of the 3 boxes of x\.tif in .*x\.xml are already given in .*x\.csv"):
        table = read_boxes([tmp_path])
    b = match_boxes(tmp_path / "x.tif", table)
    np.testing.assert_array_equal(b.boxes, [r[:4] for r in BOXES])
    assert b.labels == ["tree", "tree", "snag"]


def test_different_boxes_of_one_image_in_two_files_are_still_joined(tmp_path):
    _csv(tmp_path / "x.csv", BOXES[:2])
    _voc(tmp_path / "x.xml", [(*BOXES[1][:4], "snag"), BOXES[2]])  # same box, another label: kept
    b = match_boxes(tmp_path / "x.tif", read_boxes([tmp_path]))
    assert len(b.boxes) == 4 and b.labels == ["tree", "tree", "snag", "snag"]
