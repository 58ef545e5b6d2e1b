"""Annotation files that hold no box at all (a header-only DeepForest CSV, a VOC xml or a COCO json without
objects) are refused in one line naming them.

Before: the CSV was refused as a file-name mismatch ('annotation file names must match images', though the names
matched), and the VOC/COCO files asked for class_names, then with them trained a detector on no object and
reported NaN for every metric (exit 0).
"""

from __future__ import annotations

import json

import pytest

from geodino.errors import InputError
from geodino.eval.boxes import read_boxes


def _empty_files(tmp_path):
    csv = tmp_path / "scene.csv"
    csv.write_text("xmin,ymin,xmax,ymax,label\n")
    voc = tmp_path / "scene.xml"
    voc.write_text("<annotation><filename>scene.tif</filename></annotation>")
    coco = tmp_path / "scene.json"
    coco.write_text(
        json.dumps(
            {
                "images": [{"id": 1, "file_name": "scene.tif", "width": 8, "height": 8}],
                "annotations": [],
                "categories": [{"id": 1, "name": "tree"}],
            }
        )
    )
    zero = tmp_path / "zero.csv"
    zero.write_text("image_path,xmin,ymin,xmax,ymax,label\nscene.tif,0,0,0,0,tree\n")  # a negative image only
    return [csv, voc, coco, zero]


def test_annotation_files_without_any_box_are_refused(tmp_path):
    for f in _empty_files(tmp_path):
        with pytest.raises(InputError, match=r"hold no box for any image") as err:
            read_boxes([f])
        assert str(f) in str(err.value) and "\n" not in str(err.value)


def test_an_empty_file_beside_one_with_boxes_is_kept(tmp_path):
    empty = _empty_files(tmp_path)[0]
    other = tmp_path / "other.csv"
    other.write_text("image_path,xmin,ymin,xmax,ymax,label\nother.tif,1,1,5,5,tree\n")
    table = read_boxes([empty, other])
    assert len(table["other.tif"].boxes) == 1


def test_images_whose_entries_list_no_object_are_refused(tmp_path):
    from geodino.eval.detection import DetectionProbeConfig, load_detection_set
    from tests.eval.test_detection import _scene

    _scene(tmp_path)  # scene.tif
    rows = "image_path,xmin,ymin,xmax,ymax,label\nscene.tif,0,0,0,0,tree\nother.tif,1,1,5,5,tree\n"
    (tmp_path / "boxes.csv").write_text(rows)  # boxes for another image only; scene.tif is a negative image
    with pytest.raises(InputError, match=r"list no object for any of the images") as err:
        load_detection_set([str(tmp_path / "scene.tif")], [str(tmp_path / "boxes.csv")], DetectionProbeConfig(), None)
    assert "boxes.csv" in str(err.value) and "\n" not in str(err.value)
