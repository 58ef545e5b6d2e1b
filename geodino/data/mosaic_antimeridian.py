"""Lon/lat mosaics across the antimeridian: scenes west of it placed east past 180 degrees (`antimeridian_shifts`).

A mosaic of lon/lat scenes at 179.9 and -179.9 degrees covered -180..180: about 36,000 columns of 0.01 degrees for
two scenes 4 columns wide, all but 8 empty (on a grid of 1e-4 degrees, about 10 m: 3.6 million), two specks 360
degrees apart. Moved by 360 degrees, the western scenes sit beside the eastern ones: the mosaic runs 179.9..180.1.

Chosen over one mosaic per side (two files for one place, and no mosaic.vrt for the scripts that open it) and
over a warning alone (the huge mosaic stays): longitudes past 180 are the usual way to keep such an area in one
piece (gdalwarp --config CENTER_LONG 180 writes them, PostGIS's ST_ShiftLongitude makes them) and what `--bbox`
across the antimeridian asks for ("east past 180"). GDAL and QGIS open such a raster as it is, PROJ takes longitudes
past 180 to their places when it reprojects (180.05 and -179.95 give one x in EPSG:3857), and geodino's --point and
vector inputs move a -179.8 to 180.2 on it (`geodino.embed.placement`).

Only where it helps: a geographic CRS, the union of the scenes wider than 180 degrees and the moved one no wider
than 180 (scenes around the Pacific). Scenes spread over the world (-170, 0, 170) keep their longitudes.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from geodino.errors import plural

__all__ = ["antimeridian_shifts", "antimeridian_warning"]


def antimeridian_shifts(crs: Any, spans: Sequence[tuple[float, float]]) -> list[float] | None:
    """The x offset of each source, 360.0 for a scene west of the antimeridian (its centre below 0) and 0.0 for the
    rest, when `crs` is a lon/lat CRS in degrees, the `spans` ((left, right) longitudes of each source) reach over
    more than 180 degrees together and no more than 180 once moved; None otherwise (the mosaic as it is)."""
    if crs is None or not crs.is_geographic or not _in_degrees(crs) or len(spans) < 2:
        return None
    shifts = [360.0 if (left + right) / 2 < 0 else 0.0 for left, right in spans]
    width = max(r for _, r in spans) - min(lf for lf, _ in spans)
    moved = max(r + s for (_, r), s in zip(spans, shifts, strict=True)) - min(
        lf + s for (lf, _), s in zip(spans, shifts, strict=True)
    )
    return shifts if width > 180 and moved <= 180 else None


def antimeridian_warning(name: str, spans: Sequence[tuple[float, float]], shifts: Sequence[float]) -> str:
    """The one line saying that mosaic `name` placed its western scenes east past 180, with both sides' longitudes
    and the width it has and would have had."""
    west = [s for s, m in zip(spans, shifts, strict=True) if m]
    east = [s for s, m in zip(spans, shifts, strict=True) if not m]

    def lon(v: float) -> str:
        return f"{v:.6g}"

    def side(boxes: list[tuple[float, float]], shift: float = 0.0) -> str:
        return f"{lon(min(b[0] for b in boxes) + shift)}..{lon(max(b[1] for b in boxes) + shift)}"

    lo = min(min(b[0] for b in east), min(b[0] for b in west) + 360)
    hi = max(max(b[1] for b in east), max(b[1] for b in west) + 360)
    was = max(b[1] for b in spans) - min(b[0] for b in spans)
    return (
        f"mosaic {name}: its lon/lat scenes lie on both sides of the antimeridian ({plural(len(east), 'scene')} at "
        f"longitudes {side(east)}, {len(west)} at {side(west)}), so those west of it are placed east past 180 "
        f"(at {side(west, 360.0)}): the mosaic spans {lon(lo)}..{lon(hi)} ({lon(hi - lo)} degrees) rather than "
        f"{lon(was)} degrees of mostly empty cells; GDAL, QGIS and geodino read longitudes past 180 as those places "
        "(the scenes' own rasters keep theirs)"
    )


def _in_degrees(crs: Any) -> bool:
    """Whether a geographic CRS's longitude is in degrees (not grads or radians): 360 is then once round."""
    from pyproj import CRS

    axes = CRS.from_user_input(crs.to_wkt()).axis_info
    return bool(axes) and all(a.unit_name in ("degree", "degree minute second hemisphere") for a in axes[:2])
