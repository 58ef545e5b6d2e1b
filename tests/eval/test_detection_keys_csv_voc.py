"""CSV and Pascal VOC boxes of images that share a file name in different folders stay apart.

Before: read_csv_boxes keyed rows by the bare name of image_path and read_boxes keyed VOC files by `<filename>`, so
a/x.tif and b/x.tif (two CSV rows, or two VOC xml folders) got one merged box list; each image now gets its own
entry, matched by the folders its path ends in (as COCO's `coco_keys`), and an image matching none or several is
refused in one line."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from geodino.errors import InputError
from geodino.eval.boxes import match_boxes, read_boxes, read_csv_boxes


def _csv(path: Path) -> Path:
    rows = ["image_path,xmin,ymin,xmax,ymax,label", "a/x.tif,1,1,5,5,car", "b/x.tif,10,10,15,15,ship"]
    rows += ["b/x.tif,20,20,25,25,ship", "y.tif,2,2,4,4,car"]
    path.write_text("\n".join(rows) + "\n")
    return path


def test_csv_rows_of_one_name_in_two_folders_stay_apart(tmp_path):
    table = read_csv_boxes(_csv(tmp_path / "boxes.csv"))
    assert sorted(table) == ["a/x.tif", "b/x.tif", "y.tif"]  # a unique name stays keyed by its name
    table = read_boxes([tmp_path / "boxes.csv"])
    a = match_boxes(tmp_path / "data" / "a" / "x.tif", table)
    b = match_boxes(tmp_path / "data" / "b" / "x.tif", table)
    np.testing.assert_array_equal(a.boxes, [[1, 1, 5, 5]])
    assert a.labels == ["car"]
    np.testing.assert_array_equal(b.boxes, [[10, 10, 15, 15], [20, 20, 25, 25]])
    assert b.labels == ["ship", "ship"]
    assert match_boxes(Path("/elsewhere/y.tif"), table).labels == ["car"]
    assert match_boxes(tmp_path / "data" / "a" / "x.png", table).labels == ["car"]  # by stem, still by folder


def test_csv_image_in_neither_folder_is_refused(tmp_path):
    table = read_boxes([_csv(tmp_path / "boxes.csv")])
    with pytest.raises(InputError, match=r"matches none of the CSV images a/x\.tif, b/x\.tif"):
        match_boxes(tmp_path / "c" / "x.tif", table)


def test_an_image_whose_path_ends_in_two_entries_is_refused(tmp_path):
    rows = ["image_path,xmin,ymin,xmax,ymax,label", "a/x.tif,1,1,5,5,car", "b/a/x.tif,10,10,15,15,ship"]
    (tmp_path / "boxes.csv").write_text("\n".join(rows) + "\n")
    table = read_boxes([tmp_path / "boxes.csv"])
    assert match_boxes(tmp_path / "a" / "x.tif", table).labels == ["car"]
    with pytest.raises(InputError, match=r"matches several of the CSV images a/x\.tif, b/a/x\.tif"):
        match_boxes(tmp_path / "b" / "a" / "x.tif", table)


def _voc(path: Path, filename: str, box: tuple[int, int, int, int], label: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    x0, y0, x1, y1 = box
    path.write_text(
        f"<annotation><filename>{filename}</filename><object><name>{label}</name><bndbox><xmin>{x0}</xmin>"
        f"<ymin>{y0}</ymin><xmax>{x1}</xmax><ymax>{y1}</ymax></bndbox></object></annotation>"
    )


def test_voc_files_of_one_name_in_two_folders_stay_apart(tmp_path):
    _voc(tmp_path / "ann" / "a" / "x.xml", "x.tif", (1, 1, 5, 5), "car")
    _voc(tmp_path / "ann" / "b" / "x.xml", "x.tif", (10, 10, 15, 15), "ship")
    _voc(tmp_path / "ann" / "b" / "y.xml", "y.tif", (2, 2, 4, 4), "car")
    table = read_boxes([tmp_path / "ann" / "a", tmp_path / "ann" / "b"])  # two VOC xml folders
    assert sorted(table) == ["a/x.tif", "b/x.tif", "y.tif"]
    assert match_boxes(tmp_path / "img" / "a" / "x.tif", table).labels == ["car"]
    assert match_boxes(tmp_path / "img" / "b" / "x.tif", table).labels == ["ship"]
    assert match_boxes(tmp_path / "img" / "y.tif", table).labels == ["car"]
    with pytest.raises(InputError, match=r"matches none of the VOC images a/x\.tif, b/x\.tif"):
        match_boxes(tmp_path / "img" / "x.tif", table)
