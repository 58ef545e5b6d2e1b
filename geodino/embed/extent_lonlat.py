"""A bbox against a scene's footprint in lon/lat (`geodino.embed.extent`): whether they meet, and the part of a
bbox near the scene placed on its pixels when the whole bbox cannot be projected into the scene's CRS (a bbox tens
of degrees from a UTM zone, which PROJ refuses or folds onto other ground).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from geodino.embed.extent_settings import _crs_of

_EDGE_POINTS = 21  # points per bbox edge when it is reprojected (as rasterio's transform_bounds densifies)
_MAX_POINTS = 20000  # points on a projected bbox's outline taken to lon/lat (`_bbox_lonlat`)


def _place_errors() -> tuple[type[BaseException], ...]:
    """What placing a bbox raises when PROJ cannot take its points (GDAL's CPLE_* errors from rasterio's
    transform_geom/transform_bounds: 'Full reprojection failed', 'Reprojection failed, err = 2050'; rasterio's own
    errors; GEOS on a folded outline; SystemError, rasterio's 'Unknown GDAL Error' when GDAL fails silently, as it
    does on a second failing transform of one CRS pair): a fallback, not a bug, so these and nothing else are
    caught."""
    import shapely.errors
    from rasterio._err import CPLE_BaseError
    from rasterio.errors import CRSError, RasterioError

    return (CPLE_BaseError, RasterioError, CRSError, shapely.errors.ShapelyError, SystemError)


def _footprint_lonlat(info: Any, bbox_crs: str) -> Any:
    """The raster's outline (edges densified) in a geographic `bbox_crs`, or None: a projected bbox CRS, an outline
    that does not transform, or one over 180 degrees of longitude wide (across the antimeridian)."""
    import shapely
    from rasterio.warp import transform_geom

    crs = _crs_of(bbox_crs)
    if not crs.is_geographic or not info.crs:
        return None
    W, H, t = int(info.width), int(info.height), info.transform
    foot = shapely.Polygon([t * (c, r) for c, r in ((0, 0), (W, 0), (W, H), (0, H))])
    edge = max(abs(t.a) * W, abs(t.e) * H, abs(t.b) * H, abs(t.d) * W) / (_EDGE_POINTS - 1)
    try:
        geo = shapely.geometry.shape(
            transform_geom(info.crs, crs, shapely.geometry.mapping(shapely.segmentize(foot, edge)))
        )
    except _place_errors():
        return None
    x0, y0, x1, y1 = geo.bounds
    if not all(math.isfinite(v) for v in (x0, y0, x1, y1)) or x1 - x0 > 180 or not geo.is_valid:
        return None
    return geo


def _lonlat_crs(bbox_crs: str) -> str:
    """The geographic CRS a bbox is compared with a scene in: its own when geographic, else WGS 84."""
    return bbox_crs if _crs_of(bbox_crs).is_geographic else "EPSG:4326"


def _bbox_lonlat(cfg: Any, geo: Any) -> Any:
    """`cfg.bbox` as a polygon in lon/lat (`_lonlat_crs`), or None when that cannot be told: a projected bbox's
    outline is densified (finer than a twentieth of the scene's footprint `geo`, at most `_MAX_POINTS` points) and
    taken to lon/lat, its longitudes made continuous across the antimeridian; an outline PROJ cannot take, or one
    around a pole, gives None."""
    import shapely
    from rasterio.warp import transform_geom

    box = shapely.box(*cfg.bbox)
    if _crs_of(cfg.bbox_crs).is_geographic:
        return box
    x0, y0, x1, y1 = cfg.bbox
    seg = max(x1 - x0, y1 - y0) / (_EDGE_POINTS - 1)
    gx0, gy0, gx1, gy1 = geo.bounds  # the footprint's size in degrees, as metres (~111 km a degree): a finer step
    seg = max(min(seg, 111_000 * max(gx1 - gx0, gy1 - gy0) / 20), 2 * (x1 - x0 + y1 - y0) / _MAX_POINTS)
    try:
        ring = transform_geom(cfg.bbox_crs, "EPSG:4326", shapely.geometry.mapping(shapely.segmentize(box, seg)))
    except _place_errors():
        return None
    pts = np.asarray(ring["coordinates"][0], dtype=float)
    if not np.isfinite(pts).all():
        return None
    lon = np.degrees(np.unwrap(np.radians(pts[:, 0])))  # continuous across the antimeridian
    if abs(lon[-1] - lon[0]) > 1e-6:  # the outline goes around a pole: no polygon of lon/lat holds it
        return None
    out = shapely.Polygon(np.column_stack([lon, pts[:, 1]]))
    return out if out.is_valid else None


def _near_scene(info: Any, cfg: Any) -> tuple[Any, Any, float | None] | None:
    """(scene footprint, bbox, longitude shift that brings the bbox onto the footprint) in lon/lat, the shift None
    when they do not meet; None when that cannot be told (`_footprint_lonlat`, `_bbox_lonlat`)."""
    import shapely
    import shapely.affinity  # not imported by `import shapely`

    geo = _footprint_lonlat(info, _lonlat_crs(cfg.bbox_crs))
    box = _bbox_lonlat(cfg, geo) if geo is not None else None
    if geo is None or box is None:
        return None
    dx = next((d for d in (0.0, -360.0, 360.0) if shapely.affinity.translate(box, d).intersects(geo)), None)
    return geo, box, dx


def _reaches_far(near: tuple[Any, Any, float | None]) -> bool:
    """Whether the bbox reaches more than the footprint's size beyond the footprint (`_near_scene`'s answer, in
    lon/lat). Projected whole into the scene's CRS, such a bbox's edges (21 points each) are chords kilometres off
    the scene (a Web Mercator band over all longitudes cut a UTM scene 83 rows too low), and its far points fold."""
    import shapely.affinity

    geo, box, dx = near
    assert dx is not None  # asked only of a bbox that meets the scene
    x0, y0, x1, y1 = geo.bounds
    return not shapely.affinity.translate(box, dx).within(geo.buffer(max(x1 - x0, y1 - y0)))


def _meets_footprint(info: Any, cfg: Any) -> bool | None:
    """Whether `cfg.bbox` (in `cfg.bbox_crs`, lon/lat or projected) meets the scene's footprint, tested in lon/lat.
    A bbox tens of degrees from a scene's UTM zone cannot be projected into that zone (PROJ: 'Point outside of
    projection domain', and the run failed instead of skipping the scene), or lands on the wrong ground (transverse
    Mercator folds longitudes more than 90 degrees from its meridian back: a scene half the globe away was kept,
    and a Web Mercator band over the scene was said to miss it); the scene's own small footprint projects well.
    None (left to the bbox-side test) when that cannot be told."""
    found = _near_scene(info, cfg)
    return None if found is None else found[2] is not None


def _misses_footprint(info: Any, cfg: Any) -> bool:
    """Whether `cfg.bbox` surely misses the scene (`_meets_footprint` is False)."""
    return _meets_footprint(info, cfg) is False


def _clipped_bbox_pixels(info: Any, cfg: Any, w: int, h: int, near: Any = None) -> Any:
    """`_bbox_pixels` of the bbox cut, in lon/lat, to the raster's footprint (grown by a tenth of its size, so the
    cut lies outside the raster), for a bbox that meets the raster but reaches too far from its UTM zone to be
    projected whole (PROJ refuses points ~90 degrees off the zone's meridian, or folds them); None when that
    cannot be done."""
    import shapely
    import shapely.affinity

    from geodino.data.tiling import roi_in_pixels

    found = near or _near_scene(info, cfg)
    if found is None or found[2] is None:
        return None
    geo, box, dx = found
    x0, y0, x1, y1 = geo.bounds
    grown = geo.buffer(0.1 * max(x1 - x0, y1 - y0))
    # cut to the grown footprint's rectangle before densifying: a continent-wide bbox over a 32 px scene was
    # densified whole at the scene's step (~1.6 M vertices, ~0.7 s of shapely per run)
    box = shapely.clip_by_rect(shapely.affinity.translate(box, dx), *grown.bounds)
    box = shapely.segmentize(box, max(x1 - x0, y1 - y0) / (_EDGE_POINTS - 1))
    part = box.intersection(grown)
    if part.is_empty:
        return None
    try:
        return roi_in_pixels(part, info.transform, w, h, roi_crs=_lonlat_crs(cfg.bbox_crs), crs=info.crs)
    except _place_errors():
        return None
