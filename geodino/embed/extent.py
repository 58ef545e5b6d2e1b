"""The part of a raster an embedding run covers: `bbox` (map coordinates, in `bbox_crs` or the raster's CRS) or
`window` (input pixels), or the whole raster.

The requested area is snapped outward to the input's patch grid (cells start at multiples of the patch size from
the raster's origin, as in a full-scene run) and clipped to the raster, so a cell of the windowed output covers
the same pixels as the same cell of a full-scene run. The window is then read as a raster of its own
(`WindowSource`: pixels outside it are outside the raster), so with a tile covering the whole window the output
equals the embedding of that pixel window cut out with gdal_translate. A bbox is placed with the training tiler's
ROI rule (`geodino.data.tiling.roi_in_pixels`: reprojected to the raster's CRS, then to pixels);
its edges are densified first, so a lon/lat box keeps its curved outline in a projected CRS.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Sequence
from types import SimpleNamespace
from typing import Any

import numpy as np

from geodino.embed.sources import SourceInfo, WindowedSource
from geodino.errors import ConfigError, InputError, one_line

__all__ = [
    "WindowSource",
    "check_extent",
    "describe_window",
    "format_numbers",
    "has_extent",
    "meets_bbox",
    "overlaps",
    "parse_numbers",
    "pixel_window",
    "windowed",
]

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


_SNAP = 1e-6  # a bbox edge this close to a pixel edge (in pixels) is on it: float noise adds no pixel


def parse_numbers(value: Any, key: str, *, integer: bool = False) -> list[float] | list[int] | None:
    """Four numbers from a list (`[-120.5, 37, -119.5, 38]`, the CLI's strings) or comma text
    (`"-120.5,37,-119.5,38"`); None stays None; anything else is one ConfigError naming `key`."""
    if value is None:
        return None
    items = [value] if isinstance(value, str) else list(value) if isinstance(value, Sequence) else [value]
    parts = [p for v in items for p in (str(v).replace(",", " ").split() if isinstance(v, str) else [v])]
    what = "COL ROW WIDTH HEIGHT (input pixels)" if integer else "MINX MINY MAXX MAXY"
    try:
        nums = [float(p) for p in parts]
    except (TypeError, ValueError):
        nums = []
    if len(nums) != 4 or not all(math.isfinite(n) for n in nums) or (integer and any(n != int(n) for n in nums)):
        raise ConfigError(
            f"{key} {_shown(value)} must be four {'whole numbers' if integer else 'numbers'}, {what}, e.g. "
            f"{'--window 0 0 1024 1024' if integer else '--bbox -120.5,37,-119.5,38'} ({key}= in Python)"
        )
    return [int(n) for n in nums] if integer else nums


def _shown(value: Any) -> str:
    return " ".join(map(str, value)) if isinstance(value, list | tuple) else str(value)


def check_extent(cfg: Any) -> None:
    """Normalise and check `cfg.bbox`, `cfg.bbox_crs` and `cfg.window` (an `EmbedConfig`), in place: one of the
    two at most, a bbox with min < max, a window of positive size."""
    cfg.bbox = parse_numbers(cfg.bbox, "bbox")
    cfg.window = parse_numbers(cfg.window, "window", integer=True)
    if cfg.bbox is not None and cfg.window is not None:
        raise ConfigError(
            "bbox and window both choose the area to embed; keep one (--bbox in map coordinates, --window in pixels; "
            "bbox= or window= in Python)"
        )
    if cfg.bbox_crs is not None and cfg.bbox is None:
        raise ConfigError(
            f"bbox_crs={cfg.bbox_crs!r} is given without a bbox; pass --bbox MINX MINY MAXX MAXY (bbox= in Python) too"
        )
    if cfg.bbox is not None:
        x0, y0, x1, y1 = cfg.bbox
        if not (x0 < x1 and y0 < y1):
            ordered = format_numbers([min(x0, x1), min(y0, y1), max(x0, x1), max(y0, y1)])
            if x0 > x1 and y0 < y1 and cfg.bbox_crs is not None and _crs_of(cfg.bbox_crs).is_geographic:
                ordered = f"{format_numbers([x0, y0, x1 + 360, y1])} (across the antimeridian, east past 180)"
            raise ConfigError(
                f"bbox {format_numbers(cfg.bbox)} must be MINX MINY MAXX MAXY with MINX < MAXX and MINY < MAXY "
                f"(west, south, east, north); e.g. --bbox {ordered} (bbox= in Python)"
            )
    if cfg.window is not None:
        c, r, w, h = cfg.window
        if w < 1 or h < 1 or c < 0 or r < 0:
            raise ConfigError(
                f"window {format_numbers(cfg.window)} must be COL ROW WIDTH HEIGHT with COL, ROW >= 0 and WIDTH, "
                "HEIGHT >= 1 (input pixels from the raster's top-left corner)"
            )


def has_extent(cfg: Any) -> bool:
    """Whether the run covers part of the raster (`bbox` or `window` given)."""
    return getattr(cfg, "bbox", None) is not None or getattr(cfg, "window", None) is not None


def format_numbers(values: Sequence[float]) -> str:
    """Numbers as a user writes them: 500000 not 500000.0 or 5e+05, at most 6 decimals."""
    return " ".join(f"{float(v):.6f}".rstrip("0").rstrip(".") for v in values)


def _crs_of(text: str, key: str = "--bbox-crs") -> Any:
    from rasterio.crs import CRS
    from rasterio.errors import CRSError

    try:
        return CRS.from_user_input(text)
    except (CRSError, ValueError, TypeError) as exc:
        raise ConfigError(f"{key} {text!r} (bbox_crs= in Python) is not a CRS GDAL knows; pass e.g. EPSG:4326") from exc


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
    c0, r0 = c0 // patch * patch, r0 // patch * patch
    c1, r1 = min(-(-c1 // patch) * patch, W), min(-(-r1 // patch) * patch, H)
    return c0, r0, c1 - c0, r1 - r0


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


def overlaps(path: str, cfg: Any) -> bool:
    """Whether the raster at `path` (header only) holds any pixel of `cfg.bbox` (a many-scene run skips those
    that do not); an unreadable file is left to the run's own header check."""
    import rasterio

    try:
        with rasterio.open(path) as src:
            info = SimpleNamespace(path=path, width=src.width, height=src.height, crs=src.crs, transform=src.transform)
    except rasterio.errors.RasterioIOError:
        return True
    return meets_bbox(info, cfg, f"scene {path}")


def meets_bbox(info: Any, cfg: Any, what: str) -> bool:
    """Whether a raster's grid `info` (`width`, `height`, `crs`, `transform`) holds any pixel of `cfg.bbox`: its
    footprint is tested in lon/lat first (`_misses_footprint`), then the bbox is placed on its pixels. `what` names
    the raster in the errors of a bbox that cannot be placed. `overlaps` on a header read by another reader (a
    datacube's grid as `embed` reads it)."""
    if cfg.bbox_crs is not None and info.crs and _misses_footprint(info, cfg):
        return False
    return _bbox_cols_rows(info, cfg, what) is not None


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


def _near_scene(info: Any, cfg: Any) -> tuple[Any, Any, float] | None:
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


def _reaches_far(near: tuple[Any, Any, float]) -> bool:
    """Whether the bbox reaches more than the footprint's size beyond the footprint (`_near_scene`'s answer, in
    lon/lat). Projected whole into the scene's CRS, such a bbox's edges (21 points each) are chords kilometres off
    the scene (a Web Mercator band over all longitudes cut a UTM scene 83 rows too low), and its far points fold."""
    import shapely.affinity

    geo, box, dx = near
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
                    b, crs = tuple(src.bounds), src.crs
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
    asked = (
        f"--window {format_numbers(cfg.window)}"
        if cfg.window is not None
        else f"--bbox {format_numbers(cfg.bbox)} ({cfg.bbox_crs or 'the raster CRS'})"
    )
    return (
        f"geodino: {asked} -> input columns {c}..{c + w}, rows {r}..{r + h} ({w} x {h} px, snapped outward to the "
        f"{patch} px patch grid)"
    )


class WindowSource(WindowedSource):
    """A pixel window of a source read as a raster of its own: `info` has the window's size and transform, and
    pixels outside the window read as outside the raster (zero, invalid), as in a file cut out with gdal_translate.
    """

    def __init__(self, base: WindowedSource, window: tuple[int, int, int, int]) -> None:
        from geodino.data.rasters import window_affine

        c, r, w, h = window
        self.base, self.window = base, (int(c), int(r), int(w), int(h))
        self.bands, self.kind = base.bands, base.kind
        self.input_count = base.input_count
        self.path = getattr(base, "path", base.info.path)
        self.user_nodata = getattr(base, "user_nodata", None)
        self.info = dataclasses.replace(
            base.info, height=int(h), width=int(w), transform=window_affine(base.info.transform, c, r)
        )

    def open(self) -> WindowSource:
        """A copy on its own open handle of the source (one per thread)."""
        return WindowSource(self.base.open(), self.window)

    def close(self) -> None:
        self.base.close()

    def read_inside(self, y0: int, y1: int, x0: int, x1: int) -> tuple[np.ndarray, np.ndarray]:
        c, r, _, _ = self.window
        return self.base.read_inside(y0 + r, y1 + r, x0 + c, x1 + c)


def windowed(source: WindowedSource, cfg: Any, patch: int) -> WindowedSource:
    """`source` cut to the run's `bbox`/`window` (snapped to the `patch` grid); itself when it is cut already, or
    when the area covers the whole raster (then the run is the full-scene run, and resumes as one)."""
    if isinstance(source, WindowSource):
        return source
    window = pixel_window(source.info, cfg, patch)
    if window is None or window == (0, 0, source.info.width, source.info.height):
        return source
    return WindowSource(source, window)
