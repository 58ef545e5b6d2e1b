"""OGC SLD 1.0.0 styles (`.sld`) written next to every product COG, for GeoServer, MapServer and other WMS servers.

`geodino.embed.style` calls these writers with the very colours, values and labels it puts in the `.qml`, so the
two styles cannot drift. One `RasterSymbolizer` per file, elements in the order of the SLD 1.0.0 schema
(`Opacity`, `ChannelSelection`, `ColorMap`); `ColorMapEntry` carries only the schema's `color`, `quantity`,
`opacity` and `label` attributes:

- PCA: `ChannelSelection` red/green/blue = bands 1/2/3 (no contrast enhancement: the bytes are already stretched
  to 1..255; the `.qml` stretches 1..255 to 0..255, at most one grey level apart);
- class maps (clusters, classes, change mask): `ColorMap type="values"` (each value its own colour and legend
  row), entry opacity from the palette's alpha (the change mask's *no change* is transparent), plus the nodata
  value as a transparent entry labelled `nodata`;
- continuous maps (similarity, change distance): `ColorMap` ramp (the default type, interpolated) through the
  `.qml`'s stops, its end colours repeated out to the values the band can take (`ramp_sld`'s bounds). Their
  nodata is NaN, which an SLD quantity cannot name: servers take it from the GeoTIFF.

`type` on `ColorMap` is a GeoServer/GeoTools extension that the 1.0.0 XSD does not declare (a strict schema
validator flags it; MapServer ignores it); without it GeoServer would blend class colours as a ramp. The ramp
maps leave it out and are schema-valid as written.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Sequence
from pathlib import Path

from geodino.io import atomic_path

SLD_NS = "http://www.opengis.net/sld"
OGC_NS = "http://www.opengis.net/ogc"
XLINK_NS = "http://www.w3.org/1999/xlink"
XSI_NS = "http://www.w3.org/2001/XMLSchema-instance"
SCHEMA_LOCATION = f"{SLD_NS} http://schemas.opengis.net/sld/1.0.0/StyledLayerDescriptor.xsd"

# one class entry: (pixel value, "#rrggbb", alpha 0-255, label); one ramp stop: (value, "#rrggbb", label)
ClassEntry = tuple[int, str, int, str]
RampStop = tuple[float, str, str]


def sld_path(cog: str | Path) -> Path:
    """The SLD written for `cog` (same folder and stem, `.sld`)."""
    return Path(cog).with_suffix(".sld")


def _sub(parent: ET.Element, tag: str, text: str | None = None, **attrs: str) -> ET.Element:
    el = ET.SubElement(parent, tag, attrs)
    if text is not None:
        el.text = text
    return el


def _symbolizer(cog: str | Path, title: str) -> tuple[ET.Element, ET.Element]:
    """StyledLayerDescriptor > NamedLayer > UserStyle > FeatureTypeStyle > Rule > RasterSymbolizer (with Opacity)."""
    # names are written unprefixed and the namespaces declared on the root, as SLD files are usually written
    root = ET.Element(
        "StyledLayerDescriptor",
        {
            "version": "1.0.0",
            "xmlns": SLD_NS,
            "xmlns:ogc": OGC_NS,
            "xmlns:xlink": XLINK_NS,
            "xmlns:xsi": XSI_NS,
            "xsi:schemaLocation": SCHEMA_LOCATION,
        },
    )
    name = Path(cog).stem
    layer = _sub(root, "NamedLayer")
    _sub(layer, "Name", name)
    user = _sub(layer, "UserStyle")
    _sub(user, "Name", name)
    _sub(user, "Title", title)
    rule = _sub(_sub(user, "FeatureTypeStyle"), "Rule")
    _sub(rule, "Name", name)
    sym = _sub(rule, "RasterSymbolizer")
    _sub(sym, "Opacity", "1.0")
    return root, sym


def _gray(sym: ET.Element, band: int) -> None:
    _sub(_sub(_sub(sym, "ChannelSelection"), "GrayChannel"), "SourceChannelName", str(band))


def _write(root: ET.Element, path: Path) -> Path:
    ET.indent(root)
    text = '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"
    with atomic_path(path, overwrite=True) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return path


def _opacity(alpha: int) -> str:
    return "1" if alpha >= 255 else "0" if alpha <= 0 else f"{alpha / 255:.3f}"


def rgb_sld(cog: str | Path, *, bands: tuple[int, int, int] = (1, 2, 3)) -> Path:
    """Three bands as red/green/blue, shown as stored (the PCA COG's bytes)."""
    root, sym = _symbolizer(cog, f"{Path(cog).name}: bands {bands[0]}, {bands[1]}, {bands[2]} as RGB")
    sel = _sub(sym, "ChannelSelection")
    for colour, band in zip(("Red", "Green", "Blue"), bands, strict=True):
        _sub(_sub(sel, f"{colour}Channel"), "SourceChannelName", str(band))
    return _write(root, sld_path(cog))


def palette_sld(cog: str | Path, entries: Sequence[ClassEntry], *, band: int = 1, nodata: int | None = None) -> Path:
    """A class map: one `ColorMapEntry` per value (type="values"), and `nodata` (when given and not a class) as a
    transparent entry."""
    root, sym = _symbolizer(cog, f"{Path(cog).name}: classes of band {band}")
    _gray(sym, band)
    cmap = _sub(sym, "ColorMap", type="values")
    rows = sorted(entries)
    if nodata is not None and all(int(v) != int(nodata) for v, *_ in rows):
        rows = sorted([*rows, (int(nodata), "#000000", 0, "nodata")])
    for value, colour, alpha, label in rows:
        _sub(cmap, "ColorMapEntry", color=colour, quantity=str(int(value)), opacity=_opacity(alpha), label=label)
    return _write(root, sld_path(cog))


def ramp_sld(
    cog: str | Path, stops: Sequence[RampStop], *, band: int = 1, bounds: tuple[float, float] | None = None
) -> Path:
    """A continuous map: colours interpolated between the `stops` (ascending values), as the `.qml`'s ramp. With
    `bounds` (the values the map can take: -1..1 for a similarity), the end colours are repeated at those values:
    QGIS (clip off) and the PNG paint values beyond the stops in the end colours, while SLD renderers may not
    (MapServer turns the entries into classes [q_i, q_i+1) and draws nothing outside them, which dropped the 2 %
    least similar cells and the 1 % most changed ones)."""
    if bounds is not None:
        lo, hi = (float(b) for b in bounds)
        first, last = stops[0], stops[-1]
        stops = [
            *([(lo, first[1], f"{lo:.2f}")] if lo < first[0] else []),
            *stops,
            *([(hi, last[1], f"{hi:.2f}")] if hi > last[0] else []),
        ]
    root, sym = _symbolizer(cog, f"{Path(cog).name}: band {band} from {stops[0][0]:.4g} to {stops[-1][0]:.4g}")
    _gray(sym, band)
    cmap = _sub(sym, "ColorMap")
    for value, colour, label in stops:
        _sub(cmap, "ColorMapEntry", color=colour, quantity=repr(float(value)), opacity="1", label=label)
    return _write(root, sld_path(cog))
