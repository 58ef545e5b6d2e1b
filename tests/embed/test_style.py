"""QGIS styles (`.qml`) next to every product COG: valid XML, the right renderer, band numbers and entries."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

from geodino.embed import cluster_map, pca_map, similarity_map
from geodino.embed.style import palette_qml, qml_path, ramp_qml, rgb_qml


def renderer(qml: Path) -> ET.Element:
    text = qml.read_text()
    assert text.startswith("<!DOCTYPE qgis")
    root = ET.fromstring(text.split("\n", 1)[1])  # well-formed XML, or this raises
    assert root.tag == "qgis" and root.get("version", "").startswith("3.")
    r = root.find("pipe/rasterrenderer")
    assert r is not None
    return r


def test_pca_cluster_similarity_cogs_get_their_styles(tmp_path, feats):
    import rasterio

    r = renderer(qml_path(pca_map(feats, tmp_path / "pca.tif")))
    assert r.get("type") == "multibandcolor"
    assert (r.get("redBand"), r.get("greenBand"), r.get("blueBand")) == ("1", "2", "3")
    for c in ("red", "green", "blue"):
        ce = r.find(f"{c}ContrastEnhancement")
        assert (ce.findtext("minValue"), ce.findtext("maxValue")) == ("1.0", "255.0")  # the stored 1..255 stretch

    out = cluster_map(feats, tmp_path / "k.tif", k=3)
    r = renderer(tmp_path / "k.qml")
    assert r.get("type") == "paletted" and r.get("band") == "1"
    entries = list(r.iter("paletteEntry"))
    assert [e.get("value") for e in entries] == ["0", "1", "2"]
    assert [e.get("label") for e in entries] == ["cluster 0", "cluster 1", "cluster 2"]
    with rasterio.open(out) as ds:
        cmap = ds.colormap(1)
    assert [e.get("color") for e in entries] == ["#{:02x}{:02x}{:02x}".format(*cmap[i][:3]) for i in range(3)]

    similarity_map(feats, tmp_path / "s.tif", point=(500000.0 + 40 * 5.5, 4000000.0 - 40 * 10.5))
    r = renderer(tmp_path / "s.qml")
    assert r.get("type") == "singlebandpseudocolor" and r.get("band") == "1"
    shader = r.find("rastershader/colorrampshader")
    values = [float(i.get("value")) for i in shader.iter("item")]
    assert values == sorted(values) and values[-1] == 1.0 and float(shader.get("maximumValue")) == 1.0
    assert values[0] < 0.5  # the low end follows the data (the other half is dissimilar)


def test_writers_escape_names_and_sample_the_ramp(tmp_path):
    palette_qml(tmp_path / "c.tif", {0: ((1, 2, 3), 'a <"b"> & c'), 5: ((255, 255, 255, 0), "nodata-ish")}, band=2)
    r = renderer(tmp_path / "c.qml")
    assert r.get("band") == "2"
    e = list(r.iter("paletteEntry"))
    assert e[0].get("label") == 'a <"b"> & c' and e[0].get("color") == "#010203" and e[1].get("alpha") == "0"
    ramp_qml(tmp_path / "d.tif", vmin=0.0, vmax=2.0, ramp="magma", steps=5)
    items = list(renderer(tmp_path / "d.qml").iter("item"))
    assert [float(i.get("value")) for i in items] == [0.0, 0.5, 1.0, 1.5, 2.0]
    assert items[0].get("color") == "#000004" and items[-1].get("color") == "#fcfdbf"  # magma's ends
    rgb_qml(tmp_path / "e.tif", bands=(4, 3, 2))
    r = renderer(tmp_path / "e.qml")
    assert (r.get("redBand"), r.get("greenBand"), r.get("blueBand")) == ("4", "3", "2")


def test_ramp_labels_read_apart_on_a_narrow_range(tmp_path):
    """A change map of two close dates (0 to 0.001) was labelled 0.00 at all 9 stops, in QGIS's legend and the .sld;
    a usual range keeps 2 decimals."""
    ramp_qml(tmp_path / "c.tif", vmin=0.0, vmax=0.001, ramp="magma")
    shader = renderer(tmp_path / "c.qml").find("rastershader/colorrampshader")
    labels = [i.get("label") for i in shader.iter("item")]
    assert len(set(labels)) == len(labels) == 9 and shader.get("labelPrecision") == "4"
    assert labels[0] == "0.0000" and labels[-1] == "0.0010"
    sld = ET.parse(tmp_path / "c.sld").getroot()
    assert [e.get("label") for e in sld.iter("{http://www.opengis.net/sld}ColorMapEntry")] == labels
    ramp_qml(tmp_path / "s.tif", vmin=-0.43, vmax=1.0)
    shader = renderer(tmp_path / "s.qml").find("rastershader/colorrampshader")
    assert shader.get("labelPrecision") == "2" and [i.get("label") for i in shader.iter("item")][::8] == [
        "-0.43",
        "1.00",
    ]
