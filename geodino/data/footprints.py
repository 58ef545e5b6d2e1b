"""Footprints of rasters on the map: the outline of a raster's pixels in another CRS (EPSG:4326 for `geodino data
index --out`), for rotated and sheared grids too, split at the antimeridian as GeoJSON (RFC 7946) wants.

Hand-written rather than `rasterio.features.dataset_features` or `gdal_footprint`: those trace the valid pixels (a
read of every pixel); an archive index needs only each file's header.
"""

from __future__ import annotations

import re
from typing import Any

import numpy as np

from geodino.data.rasters import SceneInfo

__all__ = ["FOOTPRINT_POINTS", "footprint"]

FOOTPRINT_POINTS = 21  # points per edge, as GDAL densifies bounds (`GDALTransformBounds`, OCTTransformBounds)


def footprint(scene: SceneInfo, crs: str = "EPSG:4326") -> tuple[Any, str]:
    """(footprint in `crs`, "") or (None, why it has none). The footprint is the outline of the raster's pixels
    through its geotransform (so a rotated or sheared grid gives its true quadrilateral, not an axis-aligned box),
    with `FOOTPRINT_POINTS` per edge so the curved edges of a reprojected outline are followed. In a geographic
    `crs` a footprint that crosses the antimeridian is split into a MultiPolygon at +-180 degrees and longitudes
    are kept in [-180, 180] (RFC 7946, GeoJSON); exterior rings run counter-clockwise."""
    import shapely
    from rasterio.crs import CRS
    from rasterio.warp import transform_geom

    if not scene.crs:
        return None, "it has no CRS, so it cannot be placed on the map (assign one: gdal_edit.py -a_srs EPSG:... FILE)"
    src, dst = CRS.from_wkt(scene.crs), CRS.from_user_input(crs)
    k = np.linspace(0.0, 1.0, FOOTPRINT_POINTS)[:-1]
    w, h = float(scene.width), float(scene.height)
    cols = np.concatenate([k * w, np.full_like(k, w), (1 - k) * w, np.zeros_like(k)])
    rows = np.concatenate([np.zeros_like(k), k * h, np.full_like(k, h), (1 - k) * h])
    t = scene.affine
    xs, ys = t.a * cols + t.b * rows + t.c, t.d * cols + t.e * rows + t.f
    ring = shapely.Polygon(np.column_stack([xs, ys]))
    try:
        if src == dst:
            geom = ring
        else:  # GDAL's WRAPDATELINE splits an outline that crosses the antimeridian on the way to a geographic CRS
            mapping = shapely.geometry.mapping(ring)
            geom = shapely.geometry.shape(transform_geom(src, dst, mapping, antimeridian_cutting=dst.is_geographic))
    except Exception as exc:  # GDAL/PROJ raise several CPLE_* kinds: no coordinate operation, out of domain
        found = re.search(r'"([^"]*)"', src.to_wkt())
        name = f'"{found.group(1)}"' if found else src.to_string()[:60]
        if not (src.is_geographic or src.is_projected):  # LOCAL_CS / engineering: a plane with no place on Earth
            return None, f"its CRS {name} is a local (engineering) CRS, which has no place on the map"
        why = str(exc).splitlines()[0][:160] if str(exc) else type(exc).__name__
        return None, f"its CRS {name} cannot be transformed to {crs} ({why})"
    coords = shapely.get_coordinates(geom)
    if geom.is_empty or not np.isfinite(coords).all():
        return None, f"its corners do not transform to {crs} (outside the CRS's area of use?)"
    if dst.is_geographic:
        geom = _wrap_longitudes(geom)
    return _oriented(geom), ""


def _wrap_longitudes(geom: Any) -> Any:
    """Longitudes beyond +-180 (a geographic raster from 179.5 to 180.5, or 0..360) cut at the antimeridian and
    shifted by 360 degrees, so every part lies in [-180, 180]."""
    import shapely
    from shapely import affinity  # not imported by `import shapely` in shapely 2.0

    x0, _, x1, _ = geom.bounds
    if x0 >= -180.0 and x1 <= 180.0:
        return geom
    parts = []
    for turn in range(int(np.floor((x0 + 180.0) / 360.0)), int(np.floor((x1 - 180.0) / 360.0)) + 2):
        piece = geom.intersection(shapely.box(-180.0 + 360.0 * turn, -90.0, 180.0 + 360.0 * turn, 90.0))
        if not piece.is_empty and piece.area > 0:
            parts.append(affinity.translate(piece, xoff=-360.0 * turn))
    polys = [p for part in parts for p in getattr(part, "geoms", [part]) if p.geom_type == "Polygon"]
    return polys[0] if len(polys) == 1 else shapely.MultiPolygon(polys)


def _oriented(geom: Any) -> Any:
    """Exterior rings counter-clockwise, holes clockwise (the right-hand rule of RFC 7946)."""
    import shapely
    from shapely.geometry.polygon import orient

    if geom.geom_type == "Polygon":
        return orient(geom, 1.0)
    if geom.geom_type == "MultiPolygon":
        return shapely.MultiPolygon([orient(p, 1.0) for p in geom.geoms])
    return geom
