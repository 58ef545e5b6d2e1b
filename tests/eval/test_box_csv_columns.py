"""A box CSV naming its images or classes in another tool's column (`image`, `filename`; `class`, `category`) is
refused in one line naming the column to rename. Before: an `image` column was an unread extra column, every row
went to the image named like the CSV, and the run stopped with "none of the images in [...] has boxes in [...];
annotation file names must match images"; a `class` column made every box the one class 'object', silently."""

from __future__ import annotations

import pytest

from geodino.errors import InputError
from geodino.eval.boxes import read_csv_boxes


def _csv(tmp_path, head, row="a.tif,4,4,30,30,building"):
    path = tmp_path / "boxes.csv"
    path.write_text(f"{head}\n{row}\n")
    return path


@pytest.mark.parametrize("column", ["image", "filename", "Image"])
def test_an_image_column_of_another_spelling_is_refused(tmp_path, column):
    path = _csv(tmp_path, f"{column},xmin,ymin,xmax,ymax,label")
    with pytest.raises(InputError, match=rf"boxes.csv has a column '{column}' but no 'image_path', so every row is "):
        read_csv_boxes(path)


def test_a_class_column_of_another_spelling_is_refused(tmp_path):
    path = _csv(tmp_path, "image_path,xmin,ymin,xmax,ymax,class")
    with pytest.raises(InputError, match=r"a column 'class' but no 'label', so every box is read as one class"):
        read_csv_boxes(path)


def test_the_documented_columns_still_read(tmp_path):
    boxes = read_csv_boxes(_csv(tmp_path, "image_path,xmin,ymin,xmax,ymax,label,name", "a.tif,4,4,30,30,building,x"))
    assert list(boxes) == ["a.tif"] and boxes["a.tif"].labels == ["building"]
    alone = read_csv_boxes(_csv(tmp_path, "xmin,ymin,xmax,ymax,label", "4,4,30,30,car"))
    assert list(alone) == ["boxes"] and alone["boxes"].labels == ["car"]
