"""Band names from a raster's colour interpretation: the one rule for files without band descriptions.

GDAL writes an RGB (or RGBA) GeoTIFF with PHOTOMETRIC=RGB, so its bands read back as red, green, blue (and alpha)
without any band description (rasterio's `src.colorinterp`). Those names are what the file says its bands are, so
the readers use them instead of positions (b1..bN): `data stats` writes them and `rgb_bands` into the sensor YAML,
and a source's `bands: [red, green, blue]` or a backbone's RGB bands match them. Anything else (grey, undefined,
palette, a colour named twice) says nothing about the bands, and positions stay.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

__all__ = ["RGB", "colour_band_names", "colour_positions", "file_band_names"]

RGB = ("red", "green", "blue")


def colour_band_names(colours: Sequence[Any] | None, count: int) -> tuple[str, ...] | None:
    """The bands' colour interpretations as names (rasterio `ColorInterp` members or their names) when they name
    red, green and blue once each and every other band alpha; else None."""
    names = tuple(str(getattr(c, "name", c)).lower() for c in colours or ())
    if len(names) != count or sorted(n for n in names if n != "alpha") != sorted(RGB):
        return None
    return names


def file_band_names(src: Any, sensor: Any = None) -> tuple[str, ...] | None:
    """The names a raster gives its bands (`src`: an open rasterio dataset, or a header with `descriptions`,
    `count` and `colours`): its band descriptions when every band has one, all different; else its colour
    interpretation's names (`colour_band_names`) unless `sensor` (a Sensor) has the file's band count: its names
    then name the bands by position, as before (GDAL marks every 3- or 4-band 8-bit GeoTIFF RGB(A) unless told
    otherwise, so a false-colour file read with its own sensor must not be renamed red/green/blue), unless they are
    the file's colours in another order (`_reordered`); else None (the caller then uses the sensor's names or
    b1..bN)."""
    count = int(src.count)
    desc = tuple(d for d in (src.descriptions or ()) if d)
    if len(desc) == count and len(set(desc)) == count:
        return desc
    colours = colour_band_names(getattr(src, "colorinterp", None) or getattr(src, "colours", None), count)
    if sensor is not None and getattr(sensor, "n_bands", None) == count:
        return colours if _reordered(colours, getattr(sensor, "bands", ())) else None
    return colours


def _reordered(colours: Sequence[str] | None, bands: Sequence[str]) -> bool:
    """Whether a sensor of the file's band count names the file's colours in another order (blue, green, red of an
    RGB file: the YAML `data stats --bands blue,green,red` writes): its bands are then found by name, so band 1 (red)
    is not read as the sensor's first band (blue). A sensor naming other bands (nir, r, g of a false-colour file
    GDAL tagged RGB) still names the file's bands by position."""
    own = [str(b).lower() for b in bands]
    return colours is not None and sorted(own) == sorted(colours) and own != list(colours)


def colour_positions(names: Sequence[str]) -> dict[str, int]:
    """{"b1": 0, ...} (0-based) when `names` are a colour interpretation's (red, green, blue, alpha), else {}: those
    files were named b1..bN before their colours were read, and a config or command that says b1..bN still means
    them by position (no colour name can be taken for a position)."""
    if not names or not {str(n).lower() for n in names} <= {*RGB, "alpha"}:
        return {}
    return {f"b{i}": i - 1 for i in range(1, len(names) + 1)}
