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

__all__ = [
    "RGB",
    "colour_band_names",
    "colour_positions",
    "file_band_names",
    "guessed_colour_pick",
    "only_colour_tags",
    "tags_only_note",
]

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


def only_colour_tags(src: Any, names: Sequence[str] | None) -> bool:
    """Whether `names`, the band names `file_band_names` gave `src`, are its colour tags alone (red, green, blue
    with not every band described): GDAL's default on any 3- or 4-band 8-bit GeoTIFF, so they may be wrong (a
    false-colour file). A file whose descriptions say red, green, blue names its bands itself."""
    described = [d for d in (getattr(src, "descriptions", None) or ()) if d]
    return bool(colour_positions(names or ())) and len(described) < int(src.count)


def guessed_colour_pick(src: Any, names: Sequence[str] | None, sensor: Any) -> str | None:
    """Why a pick by colour name of `src`'s bands would be a guess, or None when it is not. It is when its names
    (`file_band_names`) are GDAL's default colour tags alone (`only_colour_tags`, on an 8-bit file: GDAL's default
    for 3- and 4-band Byte GeoTIFFs) and `sensor`, of another band count, names a band no colour is: nothing then
    says which of its bands the file holds. A colour-infrared product (NAIP's CIR: near infrared, red, green) read
    with the 4-band `naip` sensor took `bands: [R, G]` for its bands 1 and 2, the near infrared and the red, without
    a word; a uint16 file, whose colour tags someone wrote, is still read by them."""
    count = int(src.count)
    if sensor is None or getattr(sensor, "n_bands", count) == count or not only_colour_tags(src, names):
        return None
    dtypes = getattr(src, "dtypes", None) or (getattr(src, "dtype", None),)
    if str(dtypes[0]) != "uint8":
        return None
    resolve = getattr(sensor, "resolve_band", None)
    colours = {str(resolve(c, strict=False) if resolve else c).lower() for c in RGB} | set(RGB)
    other = [str(b) for b in getattr(sensor, "bands", ()) if str(b).lower() not in colours]
    if not other:
        return None
    return (
        f"red, green, blue are only its colour tags (GDAL writes them on any 3- or 4-band 8-bit GeoTIFF, a "
        f"false-colour one too) and the sensor's {len(sensor.bands)} bands include {', '.join(other)}, so its "
        f"{count} bands may be any {count} of them (a colour-infrared product holds near infrared, red, green)"
    )


def tags_only_note(count: int, sensor_setting: str | None) -> str:
    """The clause a refused band pick ends with when a file's red, green, blue are only its colour tags (no band
    descriptions): GDAL tags any 3- or 4-band 8-bit GeoTIFF so, a false-colour (NIR, red, green) one too, and a
    sensor of the file's band count names its bands by position instead (`file_band_names`). The one wording of
    that note for every reader (`data.archive_bands`' refusal, `embed --bands`' numbers), said where
    `only_colour_tags` holds. `sensor_setting`: the
    caller's name for the sensor setting (`--sensor NAME`, `sensor=NAME`, `` `sensor:` ``); None: "a sensor"."""
    return (
        "red, green, blue are only its colour tags (GDAL writes them on any 3- or 4-band 8-bit GeoTIFF, a "
        f"false-colour one too): {sensor_setting or 'a sensor'} of {count} bands names its bands by position"
    )
