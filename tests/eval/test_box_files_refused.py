"""Box files the detection probe cannot read are refused in one line, never with a traceback.

Before: `train_boxes: [boxes.gpkg]` (map-coordinate boxes from a GIS) was read as a CSV and stopped with
UnicodeDecodeError, `boxes.geojson` with TypeError (a CSV row with more fields than its header has a None key), and a
GeoJSON named `.json` was called "not a COCO detection json" without saying that map geometries are not pixel boxes.
"""

from __future__ import annotations

import json

import pytest

from geodino.errors import InputError
from geodino.eval.boxes import read_boxes

FC = {"type": "FeatureCollection", "features": [{"type": "Feature", "properties": {"label": "tree"},
      "geometry": {"type": "Polygon", "coordinates": [[[0, 0], [1, 0], [1, 1], [0, 1], [0, 0]]]}}]}  # fmt: skip


@pytest.mark.parametrize("name", ["boxes.geojson", "boxes.gpkg", "boxes.json"])
def test_a_vector_file_is_refused_naming_pixel_boxes(tmp_path, name):
    path = tmp_path / name
    if name.endswith("gpkg"):
        path.write_bytes(b"SQLite format 3\x00" + bytes(range(256)) * 4)  # binary, as a GeoPackage is
    else:
        path.write_text(json.dumps(FC, indent=1))
    with pytest.raises(InputError, match=r"is a vector file of map geometries; .* boxes in image pixels") as err:
        read_boxes([path])
    assert "\n" not in str(err.value)


def test_a_csv_that_does_not_decode_or_lacks_columns_is_one_line(tmp_path):
    latin = tmp_path / "boxes.csv"
    latin.write_bytes("xmin,ymin,xmax,ymax,label\n1,1,5,5,ch\xeane\n".encode("latin-1"))
    with pytest.raises(InputError, match=r"is not a UTF-8 text CSV .*; save the boxes as a UTF-8 CSV"):
        read_boxes([latin])
    ragged = tmp_path / "ragged.csv"
    ragged.write_text("x,y\n1,2,3\n")
    with pytest.raises(InputError, match=r"must have columns xmin,ymin,xmax,ymax,label \(has x, y\)$"):
        read_boxes([ragged])
