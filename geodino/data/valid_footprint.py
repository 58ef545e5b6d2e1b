"""Valid-pixel footprints (`geodino data index --valid`): the outline of where a raster holds data, not of its grid.

A header footprint (`footprints.footprint`) covers a scene's whole grid, so the rotated no-data corners of a Landsat
or Sentinel-2 scene, or a swath's empty half, count as covered. This traces the file's validity instead: GDAL's
dataset mask (its nodata value, internal mask or alpha band; valid where any band is valid, geodino's rule) read
at most `MAX_SIDE` pixels a side (from overviews when the file has them), polygonised with
`rasterio.features.shapes`, islands and holes under `MIN_RING_PIXELS` read pixels left out, simplified by one
read pixel, and placed in the index CRS as header footprints are.
The outline is exact to about one read pixel (the file's pixel size times its decimation factor).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from geodino.data.rasters import SceneInfo
from geodino.errors import one_line

__all__ = ["MAX_SIDE", "valid_footprint", "valid_geodataframe"]

MIN_RING_PIXELS = 16
"""Islands and holes under this many read pixels (4 x 4) are left out of a footprint: stray pixels, not coverage."""

MAX_SIDE = 1024
"""Longest side, in pixels, of the mask read per file: a 10980 px Sentinel-2 tile is read 11x decimated."""


def _valid_mask(src: Any, shape: tuple[int, int], nodata: float | None) -> np.ndarray:
    """Bool mask [h, w] of the valid pixels of the open dataset `src` read at `shape` (nearest): GDAL's dataset
    mask, and with a `nodata` the file does not declare (a sensor's), the pixels where every band equals it too."""
    from geodino.data.validity import valid_pixels

    mask = src.dataset_mask(out_shape=shape) > 0
    declared = src.nodata
    if nodata is not None and not (declared is not None and (declared == nodata or np.isnan([declared, nodata]).all())):
        mask &= valid_pixels(src.read(out_shape=(src.count, *shape)), nodata)
    return mask


def _without_specks(geom: Any, min_area: float) -> Any:
    """`geom` without the islands and holes smaller than `min_area` (a few stray valid or nodata pixels: a dark
    pixel equal to nodata inside a scene is a hole, not a gap in its coverage); the largest part is always kept."""
    import shapely

    parts = sorted(getattr(geom, "geoms", [geom]), key=lambda p: p.area, reverse=True)
    kept = [
        shapely.Polygon(p.exterior, [r for r in p.interiors if shapely.Polygon(r).area >= min_area])
        for k, p in enumerate(parts)
        if k == 0 or p.area >= min_area
    ]
    return kept[0] if len(kept) == 1 else shapely.MultiPolygon(kept)


def valid_footprint(scene: SceneInfo, crs: str = "EPSG:4326", max_side: int = MAX_SIDE) -> tuple[Any, str]:
    """(outline of `scene`'s valid pixels in `crs`, "") or (None, why it has none): see the module doc. The mask is
    read at most `max_side` pixels a side, so the outline is exact to one read pixel, and simplified by as much."""
    import rasterio
    import shapely
    from affine import Affine
    from rasterio._err import CPLE_BaseError
    from rasterio.crs import CRS
    from rasterio.errors import RasterioError
    from rasterio.features import shapes

    from geodino.data.footprints import _densified, _project

    if not scene.crs:
        return None, "it has no CRS, so it cannot be placed on the map (assign one: gdal_edit.py -a_srs EPSG:... FILE)"
    try:
        with rasterio.open(scene.path) as src:
            step = max(1.0, max(src.width, src.height) / float(max_side))
            shape = (max(1, round(src.height / step)), max(1, round(src.width / step)))
            mask = _valid_mask(src, shape, scene.nodata)
            transform = src.transform * Affine.scale(src.width / shape[1], src.height / shape[0])
            src_crs = src.crs
    except (CPLE_BaseError, RasterioError, OSError, ValueError) as exc:  # GDAL/rasterio errors: named, as a skip
        return None, f"its valid pixels could not be read ({type(exc).__name__}: {one_line(exc, 160)})"
    if not mask.any():
        return None, "it has no valid pixel (all nodata or masked)"
    polys = [shapely.geometry.shape(g) for g, v in shapes(mask.astype(np.uint8), mask=mask, transform=transform) if v]
    pixel = max(abs(transform.a), abs(transform.e), float(np.hypot(transform.b, transform.d)))
    geom = _without_specks(shapely.union_all(polys), MIN_RING_PIXELS * abs(transform.determinant))
    geom = geom.simplify(pixel, preserve_topology=True)
    return _project(_densified(geom), src_crs or CRS.from_wkt(scene.crs), CRS.from_user_input(crs))


def valid_geodataframe(scenes: list[SceneInfo], crs: str = "EPSG:4326", max_side: int = MAX_SIDE) -> Any:
    """Valid-pixel footprints as a GeoDataFrame (`filepath`, geometry in `crs`), as `RasterArchive.to_geodataframe`
    gives header footprints; a raster with none (no CRS, no valid pixel, unreadable) is left out with a warning."""
    from geodino.data.footprints import footprint_table

    return footprint_table(scenes, crs, lambda s: valid_footprint(s, crs, max_side))
