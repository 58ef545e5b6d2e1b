"""The part of a raster an embedding run covers: `bbox` (map coordinates, in `bbox_crs` or the raster's CRS) or
`window` (input pixels), or the whole raster.

The requested area is snapped outward to the input's patch grid (cells start at multiples of the patch size from
the raster's origin, as in a full-scene run) and clipped to the raster, so a cell of the windowed output covers
the same pixels as the same cell of a full-scene run. The window is then read as a raster of its own
(`WindowSource`: pixels outside it are outside the raster), so with a tile covering the whole window the output
equals the embedding of that pixel window cut out with gdal_translate. A bbox is placed with the training tiler's
ROI rule (`geodino.data.tiling.roi_in_pixels`: reprojected to the raster's CRS, then to pixels);
its edges are densified first, so a lon/lat box keeps its curved outline in a projected CRS.

The settings are parsed and checked in `geodino.embed.extent_settings`, a bbox is tested against a scene's
footprint in lon/lat in `geodino.embed.extent_lonlat`, and the window is read by
`geodino.embed.window_source.WindowSource`; this module places the area on a raster's pixels (and re-exports
those modules' public names).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from geodino.embed.extent_lonlat import (
    _EDGE_POINTS,
    _clipped_bbox_pixels,
    _misses_footprint,
    _near_scene,
    _place_errors,
    _reaches_far,
)
from geodino.embed.extent_settings import _crs_of, check_extent, format_numbers, has_extent, parse_numbers
from geodino.embed.sources import SourceInfo, WindowedSource
from geodino.embed.window_source import WindowSource
from geodino.errors import InputError, one_line

__all__ = [
    "WindowSource",
    "check_extent",
    "describe_window",
    "format_numbers",
    "grid_offset",
    "has_extent",
    "meets_bbox",
    "parse_numbers",
    "pixel_window",
    "windowed",
]


_SNAP = 1e-6  # a bbox edge this close to a pixel edge (in pixels) is on it: float noise adds no pixel


def _bbox_pixels(bbox: Sequence[float], bbox_crs: str | None, crs: Any, transform: Any, w: int, h: int) -> Any:
    """The part of the raster under `bbox` as a shapely geometry in pixel coordinates (empty when none)."""
    import shapely

    from geodino.data.tiling import roi_in_pixels

    box = shapely.box(*bbox)
    if bbox_crs is not None:  # reprojected: its edges curve, so they are densified first
        box = shapely.segmentize(box, max(bbox[2] - bbox[0], bbox[3] - bbox[1]) / (_EDGE_POINTS - 1))
    return roi_in_pixels(box, transform, w, h, roi_crs=bbox_crs, crs=crs)


def _extent_text(crs: Any, transform: Any, w: int, h: int, bbox_crs: str | None) -> str:
    """The raster's extent in its own CRS, and in the bbox's when that is another, for a message."""
    own = _grid_bounds(transform, w, h)
    name = crs.to_string() if crs else "no CRS"
    text = f"{format_numbers(own)} in {name}"
    if bbox_crs is not None and crs and _crs_of(bbox_crs) != crs:
        from rasterio.warp import transform_bounds

        try:
            there = transform_bounds(crs, _crs_of(bbox_crs), *own, densify_pts=_EDGE_POINTS)
            text = f"{format_numbers(there)} in {bbox_crs} ({text})"
        except _place_errors():  # a CRS pair that cannot be transformed: the raster's own extent says enough
            pass
    return text


def _grid_bounds(transform: Any, w: int, h: int) -> list[float]:
    """MINX MINY MAXX MAXY of a `w` x `h` raster on `transform` (any orientation)."""
    corners = [transform * (c, r) for c in (0, w) for r in (0, h)]
    xs, ys = [p[0] for p in corners], [p[1] for p in corners]
    return [min(xs), min(ys), max(xs), max(ys)]


def pixel_window(
    info: SourceInfo | Any, cfg: Any, patch: int, *, what: str | None = None
) -> tuple[int, int, int, int] | None:
    """(col, row, width, height) in input pixels of the run's `bbox`/`window` over a raster `info` (with `height`,
    `width`, `crs`, `transform`), snapped outward to the `patch` grid and clipped to the raster; None when the run
    covers the whole raster. An area outside the raster is one InputError naming both extents (`what`: the input
    as messages name it, default its path)."""
    if not has_extent(cfg):
        return None
    W, H = int(info.width), int(info.height)
    what = what or f"input {info.path}"
    if cfg.window is not None:
        c, r, w, h = cfg.window
        c0, r0, c1, r1 = max(c, 0), max(r, 0), min(c + w, W), min(r + h, H)
        if c0 >= c1 or r0 >= r1:
            raise InputError(
                f"--window {format_numbers(cfg.window)} (COL ROW WIDTH HEIGHT) lies outside {what}, which is {W} x "
                f"{H} px (width x height: columns 0..{W}, rows 0..{H}); pass a window that overlaps it (window= in "
                "Python)"
            )
    else:
        found = _bbox_cols_rows(info, cfg, what)
        if found is None:
            crs, crs_text = info.crs, cfg.bbox_crs
            lonlat = crs_text is None and crs and not crs.is_geographic and _looks_lonlat(cfg.bbox)
            raise InputError(
                f"--bbox {format_numbers(cfg.bbox)} ({crs_text or 'the raster CRS'}) lies outside {what}, whose extent "
                f"is {_extent_text(crs, info.transform, W, H, crs_text)}; pass a bbox that overlaps it (bbox= in "
                + (
                    "Python; lon/lat? pass --bbox-crs EPSG:4326, bbox_crs='EPSG:4326' in Python)"
                    if lonlat
                    else "Python)"
                )
            )
        c0, r0, c1, r1 = found
    dx, dy = grid_offset(cfg, patch)  # cells start dx, dy pixels left of / above the origin (a shared grid)
    c0, r0 = (c0 + dx) // patch * patch - dx, (r0 + dy) // patch * patch - dy
    c1, r1 = min(-(-(c1 + dx) // patch) * patch - dx, W), min(-(-(r1 + dy) // patch) * patch - dy, H)
    return c0, r0, c1 - c0, r1 - r0


def grid_offset(cfg: Any, patch: int) -> tuple[int, int]:
    """(cols, rows) the run's patch grid starts left of / above the raster's origin (`cfg.grid_offset`, set per
    scene by a many-scene run so scenes of one pixel grid share the first scene's cells); (0, 0) by default."""
    off = getattr(cfg, "grid_offset", None)
    return (0, 0) if not off else (int(off[0]) % patch, int(off[1]) % patch)


def _bbox_cols_rows(info: Any, cfg: Any, what: str) -> tuple[int, int, int, int] | None:
    """The pixel columns and rows [c0, c1) x [r0, r1) the bbox covers part of; None when it lies outside."""
    crs, crs_text = info.crs, cfg.bbox_crs
    if crs_text is not None and not crs:
        raise InputError(
            f"--bbox-crs {crs_text} (bbox_crs= in Python) needs an input with a CRS, but {what} has none; give --bbox "
            "in the raster's own coordinates without --bbox-crs"
        )
    if crs_text is not None:
        _crs_of(crs_text)
    W, H = int(info.width), int(info.height)
    # tested in lon/lat first: a bbox far from the scene's zone folds onto other ground when projected into it
    near = _near_scene(info, cfg) if crs_text is not None and crs else None
    meets = None if near is None else near[2] is not None
    if meets is False:
        return None
    if near is not None and _reaches_far(near):  # only its part near the scene is projected (`_clipped_bbox_pixels`)
        px = _clipped_bbox_pixels(info, cfg, W, H, near)
        if px is not None:
            return _cols_rows(px, W, H)
    try:
        px = _bbox_pixels(cfg.bbox, crs_text, crs, info.transform, W, H)
    except _place_errors() as exc:  # a bbox the projection cannot take (e.g. beyond the CRS's area of use)
        px = _clipped_bbox_pixels(info, cfg, W, H) if crs_text is not None else None
        if px is not None:
            return _cols_rows(px, W, H)
        why = one_line(exc)
        raise InputError(
            f"--bbox {format_numbers(cfg.bbox)} ({crs_text or 'the raster CRS'}) cannot be placed on {what} ({why}); "
            f"its extent is {_extent_text(crs, info.transform, W, H, crs_text)}; pass a bbox within it (bbox= in "
            "Python)"
        ) from exc
    found = _cols_rows(px, W, H)
    if found is None and meets:  # it meets the scene but projected whole it lands elsewhere: its part near the scene
        px = _clipped_bbox_pixels(info, cfg, W, H)
        found = _cols_rows(px, W, H) if px is not None else None
    return found


def _cols_rows(px: Any, W: int, H: int) -> tuple[int, int, int, int] | None:
    """The pixel columns and rows [c0, c1) x [r0, r1) holding `px` (pixel coordinates); None when empty."""
    if px.is_empty or px.area <= 0:
        return None
    x0, y0, x1, y1 = px.bounds
    c0, r0 = (math.floor(v + _SNAP) for v in (x0, y0))
    c1, r1 = (math.ceil(v - _SNAP) for v in (x1, y1))
    return max(c0, 0), max(r0, 0), min(max(c1, c0 + 1), W), min(max(r1, r0 + 1), H)


def _looks_lonlat(bbox: Sequence[float]) -> bool:
    return all(-180 <= v <= 180 for v in bbox[::2]) and all(-90 <= v <= 90 for v in bbox[1::2])


def meets_bbox(info: Any, cfg: Any, what: str) -> bool:
    """Whether a raster's grid `info` (`width`, `height`, `crs`, `transform`) holds any pixel of `cfg.bbox`: its
    footprint is tested in lon/lat first (`_misses_footprint`), then the bbox is placed on its pixels. `what` names
    the raster in the errors of a bbox that cannot be placed. A header read by any reader: a raster's (`in_bbox`),
    a datacube's grid as `embed` reads it."""
    if cfg.bbox_crs is not None and info.crs and _misses_footprint(info, cfg):
        return False
    return _bbox_cols_rows(info, cfg, what) is not None


def scenes_extent(paths: Sequence[str], bbox_crs: str | None, grid: Callable[[str], Any] | None = None) -> str:
    """The union of the scenes' extents in the bbox's CRS (or the first scene's), for the line of a bbox that
    meets none of them. `grid` reads a datacube store's grid (`width`, `height`, `crs`, `transform`) as `embed`
    reads it: GDAL reads a store of per-band variables with no CRS and an identity transform."""
    import rasterio
    from rasterio.warp import transform_bounds

    from geodino.data.cube_open import is_cube_store

    boxes, name = [], bbox_crs
    for p in paths:
        try:
            if grid is not None and is_cube_store(p):
                info = grid(p)
                b, crs = _grid_bounds(info.transform, int(info.width), int(info.height)), info.crs
            else:
                with rasterio.open(p) as src:
                    b, crs = list(src.bounds), src.crs
        except (rasterio.errors.RasterioIOError, InputError):
            continue
        name = name or (crs.to_string() if crs else "no CRS")
        try:
            boxes.append(transform_bounds(crs, _crs_of(bbox_crs), *b) if bbox_crs and crs else tuple(b))
        except _place_errors():
            continue
    if not boxes:
        return "unknown"
    a = np.asarray(boxes, dtype=float)
    return f"{format_numbers([a[:, 0].min(), a[:, 1].min(), a[:, 2].max(), a[:, 3].max()])} in {name}"


def describe_window(window: tuple[int, int, int, int], cfg: Any, patch: int) -> str:
    """The line a run says about its window: what was asked, and the pixels read after snapping."""
    c, r, w, h = window
    dx, dy = grid_offset(cfg, patch)
    grid = (
        f"{patch} px patch grid"
        if not (dx or dy)
        else f"{patch} px cells of the run's first scene, starting {dx} px left of and {dy} px above this scene"
    )
    if not has_extent(cfg):
        return (
            f"geodino: input columns {c}..{c + w}, rows {r}..{r + h} ({w} x {h} px on the {grid}; the pixels outside "
            "the scene read as nodata)"
        )
    asked = (
        f"--window {format_numbers(cfg.window)}"
        if cfg.window is not None
        else f"--bbox {format_numbers(cfg.bbox)} ({cfg.bbox_crs or 'the raster CRS'})"
    )
    return (
        f"geodino: {asked} -> input columns {c}..{c + w}, rows {r}..{r + h} ({w} x {h} px, snapped outward to the "
        f"{grid})"
    )


def windowed(source: WindowedSource, cfg: Any, patch: int) -> WindowedSource:
    """`source` cut to the run's `bbox`/`window` (snapped to the `patch` grid); itself when it is cut already, or
    when the area covers the whole raster (then the run is the full-scene run, and resumes as one)."""
    if isinstance(source, WindowSource):
        return source
    window = pixel_window(source.info, cfg, patch)
    dx, dy = grid_offset(cfg, patch)
    if window is None and (dx or dy):  # the whole raster on a grid that starts left of / above it: padded there
        window = (-dx, -dy, source.info.width + dx, source.info.height + dy)
    if window is None or window == (0, 0, source.info.width, source.info.height):
        return source
    return WindowSource(source, window)
