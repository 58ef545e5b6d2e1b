"""Label values a GIS writes that made odd classes: a text attribute left blank ('' or spaces, as QGIS can store an
unfilled field) became a class named '' with a blank legend entry; it is no value now, left out with the labels
without one. Negative class codes sorted after the positive ones ('300' before '-1'): they sort by value now."""

from __future__ import annotations

import geopandas as gpd
import pytest

from geodino.embed.classify import classify_map, natural_order
from tests.embed.test_classify import feature_raster, polygons, stripes


def test_blank_text_labels_are_no_value(tmp_path):
    lab = gpd.read_file(polygons(tmp_path / "lab.gpkg", crs="EPSG:32633"))
    lab["kind"] = ["a", "a", "b", "b", "", "  "]  # the third stripe's two polygons left blank
    lab.to_file(tmp_path / "blank.gpkg")
    with pytest.warns(UserWarning, match=r"2 of 6 labels in .*blank\.gpkg have no 'kind' value or no geometry"):
        m = classify_map(
            feature_raster(tmp_path / "f.tif", stripes()), tmp_path / "blank.gpkg", tmp_path / "m.tif", column="kind"
        )
    assert m["classes"] == ["a", "b"] and m["values"] == {"a": 0, "b": 1}


def test_negative_codes_sort_by_value():
    assert natural_order(["300", "-1", "0", "class_10", "-20", "class_2"]) == [
        "-20", "-1", "0", "300", "class_2", "class_10"
    ]  # fmt: skip
