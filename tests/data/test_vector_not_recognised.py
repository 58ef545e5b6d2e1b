"""A labels file GDAL reads no vector format in (a Pascal VOC .xml of tree-crown boxes, a damaged file) was refused
with GDAL's advice to prefix a driver ("e.g. 'CSV:path'"), which is no fix for `embed classify` (a CSV is refused
too). The line now names the formats to pass, and for an .xml that VOC boxes are pixels, not map geometries."""

from __future__ import annotations

import pytest

from geodino.data.vectors import read_vector
from geodino.errors import InputError

VOC = "<annotation><object><name>Tree</name><bndbox><xmin>1</xmin><ymin>2</ymin><xmax>3</xmax><ymax>4</ymax>"


def test_a_file_gdal_cannot_read_as_vectors_names_the_formats(tmp_path) -> None:
    xml = tmp_path / "crowns.xml"
    xml.write_text(VOC + "</bndbox></object></annotation>")
    with pytest.raises(InputError) as err:
        read_vector(xml, what="labels")
    line = str(err.value)
    assert line.startswith(f"cannot read labels from {xml}: no vector format GDAL reads, or a damaged file (.xml)")
    assert "GeoPackage, GeoJSON, Shapefile or GeoParquet" in line and "Pascal VOC" in line
    assert "CSV:path" not in line and "\n" not in line
    junk = tmp_path / "labels.gpkg"
    junk.write_bytes(b"\x00not a geopackage" * 8)
    with pytest.raises(InputError, match=r"labels\.gpkg: .*\(\.gpkg\); pass a vector file: GeoPackage") as err:
        read_vector(junk, what="labels")
    assert "Pascal VOC" not in str(err.value)


def test_an_upper_case_xml_suffix_is_a_voc_file_too(tmp_path) -> None:
    # Windows tools write LABELS.XML: the same VOC note, as the suffix checks elsewhere ignore case
    xml = tmp_path / "CROWNS.XML"
    xml.write_text(VOC + "</bndbox></object></annotation>")
    with pytest.raises(InputError, match=r"\(\.XML\); pass a vector file: .* \(Pascal VOC boxes are pixels"):
        read_vector(xml, what="labels")
