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


def test_boxes_of_other_images_name_both_sides_in_plain_paths(tmp_path):
    """The line printed Python lists (`in ['/d/img'] has boxes in ['/d/b.csv']`) and no name of either side."""
    from geodino.eval.detection import DetectionProbeConfig, load_detection_set
    from tests.eval.test_detection import _scene

    _scene(tmp_path)  # scene.tif
    rows = "image_path,xmin,ymin,xmax,ymax,label\n" + "".join(f"tile_{i}.tif,1,1,5,5,tree\n" for i in range(4))
    (tmp_path / "boxes.csv").write_text(rows)
    with pytest.raises(InputError) as err:
        load_detection_set([str(tmp_path / "scene.tif")], [str(tmp_path / "boxes.csv")], DetectionProbeConfig(), None)
    assert str(err.value) == (
        f"image {tmp_path / 'scene.tif'} has no boxes in {tmp_path / 'boxes.csv'} (they name tile_0.tif, tile_1.tif, "
        "tile_2.tif ...); annotation entries must name the images (file name or stem)"
    )
    (tmp_path / "more").mkdir()
    for name in ("a.tif", "b.tif"):
        (tmp_path / "more" / name).write_bytes((tmp_path / "scene.tif").read_bytes())
    with pytest.raises(InputError, match=r"^none of the 2 images in .*more \(e\.g\. a\.tif\) has boxes in "):
        load_detection_set([str(tmp_path / "more")], [str(tmp_path / "boxes.csv")], DetectionProbeConfig(), None)
