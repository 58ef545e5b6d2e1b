"""Footprints of rasters on the map: the outline of a raster's pixels in another CRS (EPSG:4326 for `geodino data
index --out`), for rotated and sheared grids too, split at the antimeridian as GeoJSON (RFC 7946) wants.

Hand-written rather than `rasterio.features.dataset_features` or `gdal_footprint`: those trace the valid pixels (a
read of every pixel); an archive index needs only each file's header.
"""

from __future__ import annotations

import dataclasses
import re
import warnings
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from geodino.data.rasters import SceneGrid, SceneInfo
from geodino.errors import one_line

__all__ = ["FOOTPRINT_POINTS", "MAX_POINTS", "footprint", "geojson_bbox", "oriented", "union_footprint"]

FOOTPRINT_POINTS = 21  # points per edge, as GDAL densifies bounds (`GDALTransformBounds`, OCTTransformBounds)
MAX_POINTS = 1000  # a union footprint is simplified to at most this many vertices (it goes into JSON metadata)


def footprint(scene: SceneInfo, crs: str = "EPSG:4326") -> tuple[Any, str]:
    """(footprint in `crs`, "") or (None, why it has none). The footprint is the outline of the raster's pixels
    through its geotransform (so a rotated or sheared grid gives its true quadrilateral, not an axis-aligned box),
    with `FOOTPRINT_POINTS` per edge so the curved edges of a reprojected outline are followed. In a geographic
    `crs` a footprint that crosses the antimeridian is split into a MultiPolygon at +-180 degrees and longitudes
    are kept in [-180, 180] (RFC 7946, GeoJSON); exterior rings run counter-clockwise."""
    from rasterio.crs import CRS

    if not scene.crs:
        return None, "it has no CRS, so it cannot be placed on the map (assign one: gdal_edit.py -a_srs EPSG:... FILE)"
    src, dst = CRS.from_wkt(scene.crs), CRS.from_user_input(crs)
    if dst.is_geographic and src != dst:
        # GDAL's antimeridian cut (WRAPDATELINE) gets some crossings wrong: EPSG:3857 past x = 20037508 m gives an
        # invalid globe-wide polygon, EPSG:3413 across 180 E a valid band round the whole globe. The outline is cut
        # by hand instead; GDAL's cut is kept for outlines round a pole, which the unwrapping cannot close.
        geom = _unwrapped(_outline(scene), src, dst)
        if geom is not None:
            return geom, ""
    return _project(_outline(scene), src, dst)


def footprint_table(scenes: Sequence[SceneInfo], crs: str, place: Callable[[SceneInfo], tuple[Any, str]]) -> Any:
    """The footprints `place` gives `scenes` ((geometry in `crs`, "") or (None, why)) as a GeoDataFrame, the
    torchgeo-style index (`filepath`, geometry); a scene it cannot place is left out with a warning naming it and
    why, attributed to the caller of the function that called this (`RasterArchive.to_geodataframe` and
    `valid_geodataframe`: header and valid-pixel footprints)."""
    import geopandas as gpd

    placed = []
    for s in scenes:
        geom, why = place(s)
        if geom is None:
            warnings.warn(f"{s.path} left out of the footprints: {why}", stacklevel=3)
        else:
            placed.append((s.path, geom))
    return gpd.GeoDataFrame({"filepath": [p for p, _ in placed]}, geometry=[g for _, g in placed], crs=crs)


def _unwrapped(outline: Any, src: Any, dst: Any) -> Any | None:
    """`outline` in the geographic CRS `dst`, cut at the antimeridian by hand: its longitudes made continuous (a
    step of more than 180 degrees between neighbouring points is a wrap, not an edge), then cut at +-180 and shifted
    into [-180, 180]. None for an outline round a pole (its longitudes wind through 360 degrees), one that does not
    transform, or one that is not a valid polygon once unwrapped."""
    import shapely
    from rasterio.warp import transform

    xy = shapely.get_coordinates(outline)
    try:
        lon, lat = (np.asarray(v, dtype=float) for v in transform(src, dst, xy[:, 0], xy[:, 1]))
    except Exception:  # no coordinate operation / out of domain: `_project` says why in one line
        return None
    if not (np.isfinite(lon).all() and np.isfinite(lat).all()):
        return None
    lon = np.unwrap(lon, period=360.0)
    if abs(lon[-1] - lon[0]) > 180.0:  # the ring does not close: it winds round a pole
        return None
    geom = shapely.Polygon(np.column_stack([lon, lat]))
    if not geom.is_valid:
        return None
    return oriented(_wrap_longitudes(geom))


def _outline(scene: SceneGrid) -> Any:
    """The outline of `scene`'s pixels in its own CRS, `FOOTPRINT_POINTS` per edge."""
    import shapely

    k = np.linspace(0.0, 1.0, FOOTPRINT_POINTS)[:-1]
    w, h = float(scene.width), float(scene.height)
    cols = np.concatenate([k * w, np.full_like(k, w), (1 - k) * w, np.zeros_like(k)])
    rows = np.concatenate([np.zeros_like(k), k * h, np.full_like(k, h), (1 - k) * h])
    t = scene.affine
    return shapely.Polygon(np.column_stack([t.a * cols + t.b * rows + t.c, t.d * cols + t.e * rows + t.f]))


def _project(geom: Any, src: Any, dst: Any) -> tuple[Any, str]:
    """(`geom`, an outline in the rasterio CRS `src`, in the CRS `dst`, "") or (None, why it cannot be placed):
    split at the antimeridian and wrapped into [-180, 180] for a geographic `dst`, rings oriented (RFC 7946)."""
    import shapely
    from rasterio.warp import transform_geom

    try:
        if src != dst:  # GDAL's WRAPDATELINE splits an outline that crosses the antimeridian to a geographic CRS
            mapping = shapely.geometry.mapping(geom)
            geom = shapely.geometry.shape(transform_geom(src, dst, mapping, antimeridian_cutting=dst.is_geographic))
    except Exception as exc:  # GDAL/PROJ raise several CPLE_* kinds: no coordinate operation, out of domain
        found = re.search(r'"([^"]*)"', src.to_wkt())
        name = f'"{found.group(1)}"' if found else src.to_string()[:60]
        if not (src.is_geographic or src.is_projected):  # LOCAL_CS / engineering: a plane with no place on Earth
            return None, f"its CRS {name} is a local (engineering) CRS, which has no place on the map"
        why = one_line(exc, 160)
        return None, f"its CRS {name} cannot be transformed to {dst.to_string()} ({why})"
    coords = shapely.get_coordinates(geom)
    if geom.is_empty or not np.isfinite(coords).all():
        return None, f"its corners do not transform to {dst.to_string()} (outside the CRS's area of use?)"
    if dst.is_geographic:
        geom = _wrap_longitudes(geom)
    return oriented(geom), ""


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


def oriented(geom: Any) -> Any:
    """Exterior rings counter-clockwise, holes clockwise (the right-hand rule of RFC 7946)."""
    import shapely
    from shapely.geometry.polygon import orient

    if geom.geom_type == "Polygon":
        return orient(geom, 1.0)
    if geom.geom_type == "MultiPolygon":
        return shapely.MultiPolygon([orient(p, 1.0) for p in geom.geoms])
    return geom


def geojson_bbox(geom: Any) -> list[float]:
    """The RFC 7946 bbox of an EPSG:4326 footprint: a MultiPolygon split at the antimeridian runs from its west
    part's west edge to its east part's east edge (west > east); one that wraps the globe is -180..180."""
    x0, y0, x1, y1 = (float(v) for v in geom.bounds)
    if geom.geom_type == "MultiPolygon" and x0 <= -180.0 + 1e-9 and x1 >= 180.0 - 1e-9:
        parts = [p.bounds for p in geom.geoms]
        west = min(b[0] for b in parts if b[2] >= 180.0 - 1e-9)
        east = max(b[2] for b in parts if b[0] <= -180.0 + 1e-9)
        lons = sum(b[2] - b[0] for b in parts)  # the parts' longitudes: 360 for a global (e.g. 0..360) grid
        x0, x1 = (-180.0, 180.0) if lons >= 360.0 - 1e-6 or west <= east else (west, east)
    return [x0, y0, x1, y1]


def union_footprint(
    scenes: Sequence[SceneInfo], regions: Sequence[Any] | None = None, crs: str = "EPSG:4326"
) -> Any | None:
    """The outline in `crs` of all `scenes` together (a training archive's extent, for its model's STAC item), or
    None when none can be placed. `regions`: per scene, the part in use in pixel coordinates (a ROI's, as
    `TileSampler.roi_px` holds it; None: the whole scene; empty: none of it). Scenes are merged in their own CRS
    first (one union per CRS, straight pixel edges), then each union is densified (`_densified`: each polygon as
    one scene's footprint) and projected, so 10^5 tiles cost one projection per CRS; the result is fitted to at
    most `MAX_POINTS` vertices without cutting into the data (`_fit`: simplified, then grown, by the smallest
    doubling tolerance that fits)."""
    import shapely
    from rasterio.crs import CRS
    from shapely import affinity  # not imported by `import shapely` in shapely 2.0

    groups: dict[str, list[Any]] = {}
    for k, scene in enumerate(scenes):
        region = regions[k] if regions is not None and k < len(regions) else None
        if not scene.crs or (region is not None and region.is_empty):
            continue
        box = shapely.box(0.0, 0.0, float(scene.width), float(scene.height))
        px = box if region is None else box.intersection(region)
        t = scene.affine
        poly = affinity.affine_transform(px, [t.a, t.b, t.d, t.e, t.c, t.f])
        # read through a WarpedVRT (a datacube's store never is): the target rectangle's corners beyond the file are
        # nodata
        if getattr(scene, "warped", False):
            native = _native_outline(scene)
            poly = poly if native is None else _polygons(poly.intersection(native))
        groups.setdefault(scene.crs, []).append(poly)
    dst = CRS.from_user_input(crs)
    placed = []
    for wkt, polys in groups.items():
        merged = shapely.union_all(polys).simplify(0.0)  # tile corners along a straight edge: not vertices
        geom, _ = _project(_densified(merged), CRS.from_wkt(wkt), dst)
        if geom is not None:
            placed.append(geom)
    if not placed:
        return None
    return oriented(_fit(shapely.union_all(placed), MAX_POINTS, world=dst.is_geographic))


def _native_outline(scene: SceneInfo) -> Any | None:
    """For a scene read through a WarpedVRT (`crs`/`res` set): the outline of the file's own pixels in the read
    CRS, densified like a footprint. The warped grid is the axis-aligned rectangle around it, so without this a
    UTM scene read in another zone (or a rotated one) claims the nodata corners of that rectangle as covered.
    None when the file cannot be opened again or its outline does not transform (the rectangle is kept)."""
    import rasterio
    import shapely
    from rasterio.crs import CRS
    from rasterio.warp import transform_geom

    try:
        with rasterio.open(scene.path) as src:
            if src.crs is None:
                return None
            native = dataclasses.replace(scene, transform=tuple(src.transform)[:6], width=src.width, height=src.height)
            src_crs = src.crs
        ring = shapely.geometry.mapping(_outline(native))
        out = shapely.geometry.shape(transform_geom(src_crs, CRS.from_wkt(scene.crs), ring))
    except Exception:  # GDAL/PROJ errors of many kinds: the warped rectangle is still a cover of the data
        return None
    coords = shapely.get_coordinates(out)
    return out if out.is_valid and not out.is_empty and np.isfinite(coords).all() else None


def _densified(geom: Any) -> Any:
    """Each polygon of `geom` with `FOOTPRINT_POINTS` per edge length of its own extent (as one scene's
    footprint): a step from the extent of all of them left the scenes of an archive spread over a zone with
    straight edges, whose projected curves then cut up to ~0.5 km off a Sentinel-2 tile."""
    import shapely

    parts = []
    polys = _polygons(geom)  # a ROI's lines and points (a GeometryCollection) have no area: left out
    x0, y0, x1, y1 = polys.bounds if not polys.is_empty else (0.0, 0.0, 0.0, 0.0)
    # a chord of 1/500 of the whole extent bends by ~1e-6 of it once projected: thousands of small tiles spread
    # far apart keep a few points per edge, not FOOTPRINT_POINTS each
    floor = max(x1 - x0, y1 - y0) / 500.0
    for p in getattr(polys, "geoms", [polys]):
        x0, y0, x1, y1 = p.bounds
        step = max(max(x1 - x0, y1 - y0) / (FOOTPRINT_POINTS - 1), floor)
        parts.append(shapely.segmentize(p, step) if step > 0 else p)
    return parts[0] if len(parts) == 1 else shapely.MultiPolygon(parts)  # none: an empty one, placed nowhere


def _fit(geom: Any, limit: int, *, world: bool) -> Any:
    """`geom` with at most `limit` vertices and still covering all of it: simplified by a tolerance `tol`
    (Douglas-Peucker, topology kept: no point of `geom` ends up farther than `tol` outside), then grown by `tol`
    (mitred, so a box stays a box), with the smallest doubling `tol` that fits. The outline claims at most 2 `tol`
    beyond the data and never cuts into it; parts and holes closer than 2 `tol` merge. Douglas-Peucker alone keeps
    every part and hole as a ring of at least four vertices (300 scattered scenes, or a tile grid with 300 gaps,
    never fitted and the loop never ended) and turns a lone square into a triangle that misses half of it.
    `world`: clipped to -180..180, -90..90 (a geographic CRS)."""
    import shapely

    if shapely.get_num_coordinates(geom) <= limit:
        return _polygons(geom)
    x0, y0, x1, y1 = geom.bounds
    span = max(x1 - x0, y1 - y0, 1e-9)
    clip = shapely.box(-180.0, -90.0, 180.0, 90.0) if world else None
    tol = span * 1e-4
    while tol <= 4.0 * span:  # a blob of the extent's own size has a handful of vertices: reached long before
        out = shapely.buffer(geom.simplify(tol, preserve_topology=True), tol, join_style="mitre")
        out = _polygons(out.intersection(clip) if clip is not None else out)
        if shapely.get_num_coordinates(out) <= limit:
            return out
        tol *= 2
    return _polygons(shapely.box(x0, y0, x1, y1))


def _polygons(geom: Any) -> Any:
    """The polygons of `geom` (a union or a clip can leave slivers as lines or points in a GeometryCollection)."""
    import shapely

    if geom.geom_type in ("Polygon", "MultiPolygon"):
        return geom
    polys = [p for g in getattr(geom, "geoms", [geom]) for p in getattr(g, "geoms", [g]) if p.geom_type == "Polygon"]
    return polys[0] if len(polys) == 1 else shapely.MultiPolygon([p for p in polys if p.area > 0])
