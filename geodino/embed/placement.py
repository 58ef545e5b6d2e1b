"""Placing points, lines and polygons on a feature raster's grid: cells of any affine grid (north-up, south-up,
rotated), CRS checks with one-line errors, and how extents and CRSs are named in messages. Shared by the map
products (`products.py`: zonal, similar), `labels.py` (classify), `change.py` and `viz attention`.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np

from geodino.embed.writers import EmbeddingReader
from geodino.errors import ConfigError, InputError


def _coord(v: float) -> str:
    return f"{v:.3f}".rstrip("0").rstrip(".") if math.isfinite(v) else str(v)


def apply_affine(transform: Any, x: float, y: float) -> tuple[float, float]:
    """`transform` applied to one point, written out: affine 3 deprecates `*`, and `@` on a tuple is new in it."""
    a, b, c, d, e, f = tuple(transform)[:6]
    return a * x + b * y + c, d * x + e * y + f


def raster_extent(rd: EmbeddingReader) -> str:
    """The raster's CRS and bounds for an error message about things that miss it."""
    return f"CRS {crs_label(rd.crs)}, {raster_bounds(rd)}"


def raster_bounds(rd: EmbeddingReader) -> str:
    """ "bounds x LOW..HIGH, y LOW..HIGH" of the raster, from its four corners: low..high on south-up and rotated
    rasters too (rasterio's bounds put a south-up raster's top below its bottom)."""
    corners = [apply_affine(rd.transform, c, r) for c in (0, rd.width) for r in (0, rd.height)]
    xs, ys = [x for x, _ in corners], [y for _, y in corners]
    return f"bounds x {_coord(min(xs))}..{_coord(max(xs))}, y {_coord(min(ys))}..{_coord(max(ys))}"


def crs_label(crs: Any) -> str:
    """A CRS as messages name it: its code (EPSG:32633) or PROJ string, else its kind and name (Engineering CRS
    'Local Coordinates (m)') instead of a page of WKT; "none" without a CRS."""
    if crs is None:
        return "none"
    text = crs.to_string() if hasattr(crs, "to_string") else str(crs)
    if "[" not in text and "{" not in text:
        return text
    from pyproj import CRS

    c = CRS.from_user_input(crs)
    return f"{c.type_name} {c.name!r}"


NO_OPERATION = "PROJ has no coordinate operation between them"


def transformable(a: Any, b: Any) -> bool:
    """Whether PROJ can transform coordinates from CRS `a` to CRS `b` (false for an engineering/LOCAL_CS CRS and
    a geographic or projected one)."""
    from pyproj import Transformer
    from pyproj.exceptions import ProjError

    try:
        Transformer.from_crs(a, b, always_xy=True)
    except ProjError:
        return False
    return True


def to_raster_crs(gdf: Any, rd: EmbeddingReader, *, what: str, path: str | Path) -> Any:
    """`gdf` (polygons, labels) reprojected to the feature raster's CRS, or one line when one of them has a CRS and
    the other none, or PROJ cannot transform the file's CRS to the raster's (e.g. an engineering/LOCAL_CS raster and
    EPSG:4326). Neither with a CRS (a raster embedded with --allow-no-crs): both are in the raster's own coordinates,
    placed as they are (they were refused whatever the file held: "have no CRS; set one", then "cannot be placed")."""
    if gdf.crs is None and rd.crs is None:
        return gdf
    if gdf.crs is None:
        raise InputError(f"{what} in {path} have no CRS; set one (e.g. with geopandas .set_crs) and retry")
    if rd.crs is None:
        raise InputError(
            f"feature raster {rd.path} has no CRS, so {what} in {crs_label(gdf.crs)} cannot be placed on it; give "
            f"them without a CRS, in the raster's own coordinates ({raster_bounds(rd)})"
        )
    if not transformable(gdf.crs, rd.crs):
        raise InputError(
            f"{what} in {path} ({crs_label(gdf.crs)}) cannot be transformed to the CRS of feature raster "
            f"{rd.path} ({crs_label(rd.crs)}): {NO_OPERATION}; give {what} in the raster's own CRS (another file "
            "or --layer, layer= in Python), or georeference the input raster in a known CRS and embed it again"
        )
    return _across_antimeridian(gdf.to_crs(rd.crs), rd)


def _across_antimeridian(gdf: Any, rd: EmbeddingReader) -> Any:
    """On a lon/lat raster reaching past +-180 (x 179.5..180.5), a geometry at -179.8 is the one at 180.2: moved by
    360 degrees onto the raster when it misses the raster's longitudes and the move meets them (labels, zonal and
    --polygon there were all "outside" the raster)."""
    xs = [apply_affine(rd.transform, c, r)[0] for c in (0, rd.width) for r in (0, rd.height)]
    left, right = min(xs), max(xs)
    if not rd.crs.is_geographic or -180 <= left <= right <= 180:
        return gdf
    from shapely.affinity import translate

    turn = 360.0 if right > 180 else -360.0

    def placed(g: Any) -> Any:
        if g is None or g.is_empty or not finite_bounds(g) or (g.bounds[2] >= left and g.bounds[0] <= right):
            return g
        moved = translate(g, xoff=turn)
        return moved if moved.bounds[2] >= left and moved.bounds[0] <= right else g

    return gdf.set_geometry([placed(g) for g in gdf.geometry], crs=gdf.crs)


EDGE = 1e-6
"""Cells: a line or polygon reaching into the raster by less than this only touches its edge (reprojection
rounding of a polygon that abuts the raster must not make it a sliver of the border cells)."""

POINTS = ("Point", "MultiPoint")
LINES = ("LineString", "MultiLineString", "LinearRing")


def pixel_bounds(transform: Any, geom: Any) -> tuple[float, float, float, float]:
    """(col_min, row_min, col_max, row_max) of `geom` in pixel coordinates of `transform`: exact for any affine
    (north-up, south-up, rotated), where `rasterio.windows.from_bounds` refuses a positive pixel height."""
    return to_pixels(transform, geom).bounds


def to_pixels(transform: Any, geom: Any) -> Any:
    """`geom` in pixel (cell) coordinates of `transform`: column, row from the raster's top-left corner."""
    from affine import Affine
    from shapely import affinity

    inv = ~Affine(*tuple(transform)[:6])
    return affinity.affine_transform(geom, (inv.a, inv.b, inv.d, inv.e, inv.c, inv.f))


def cell_window(transform: Any, geom: Any, width: int, height: int) -> Any:
    """The window of cells a line or polygon can cover (its pixel bounds plus one cell, clipped to the raster), or
    None when it misses the raster or only touches its edge (by less than `EDGE` cells)."""
    from rasterio.windows import Window

    c0, r0, c1, r1 = pixel_bounds(transform, geom)
    if c1 <= EDGE or r1 <= EDGE or c0 >= width - EDGE or r0 >= height - EDGE:
        return None
    col0, row0 = max(0, math.floor(c0) - 1), max(0, math.floor(r0) - 1)
    col1, row1 = min(width, math.ceil(c1) + 1), min(height, math.ceil(r1) + 1)
    return Window(col0, row0, col1 - col0, row1 - row0)


def cell_mask(geom: Any, transform: Any, win: Any, *, all_touched: bool) -> np.ndarray:
    """Cells of `win` a line or polygon covers: every cell a line touches; a polygon's cells whose centre is inside
    (`all_touched`: every cell it touches).

    Rasterised in the whole raster's pixel coordinates (as GDAL's inverse geotransform computes them on a north-up
    or south-up grid), moved by the window's whole-cell offset (exact in floats), so whether a cell is in does not
    depend on the window it is read through. Through the window's own transform (its origin rounded), an edge that
    runs through cell centres (adjacent parcels of a grid, boxes drawn in pixel units) fell on either side by the
    window's rounding: cells of two adjacent polygons were counted in both or in neither. Now each such cell goes to
    exactly one (the scanline rule is half-open in pixel rows and columns), and every touched cell is the one a
    whole-raster `rasterio.features.rasterize(all_touched=True)` gives. Without all_touched, a whole-raster
    rasterize of a north-up grid breaks centre ties the other way in rows and can give a tie row to both of two
    adjacent polygons; here it goes to one."""
    from affine import Affine
    from rasterio.features import geometry_mask
    from shapely import affinity

    a, b, c, d, e, f = (float(v) for v in tuple(transform)[:6])
    col, row = int(win.col_off), int(win.row_off)
    if b == 0 and d == 0:
        # GDALInvGeoTransform's north-up formula, so the touched cells are GDAL's to the last bit
        pixels = affinity.affine_transform(geom, (1.0 / a, 0.0, 0.0, 1.0 / e, -c / a, -f / e))
    else:  # rotated: window-independent all the same
        pixels = to_pixels(transform, geom)
    local = affinity.translate(pixels, -col, -row)  # whole cells: exact
    return geometry_mask(
        [local],
        out_shape=(int(win.height), int(win.width)),
        transform=Affine.identity(),
        invert=True,
        all_touched=all_touched or geom.geom_type in LINES,
    )


def cell_of(transform: Any, x: float, y: float, width: int, height: int) -> tuple[int, int] | None:
    """(row, col) of the cell that holds (x, y) (in the raster's CRS), or None when it misses the raster (pure
    float arithmetic: no NaN/inf casts, so no warnings)."""
    from affine import Affine

    col, row = apply_affine(~Affine(*tuple(transform)[:6]), float(x), float(y))
    if math.isfinite(col) and math.isfinite(row) and 0 <= row < height and 0 <= col < width:
        return math.floor(row), math.floor(col)
    return None


def point_cells(transform: Any, geom: Any, width: int, height: int, footprint: Any = None) -> list[tuple[int, int]]:
    """The cells (row, col) a Point or MultiPoint falls in, each once, in order; with `footprint` (the input's
    extent, `input_footprint`), only its points within it."""
    pts = [geom] if geom.geom_type == "Point" else list(geom.geoms)
    cells = {cell_of(transform, p.x, p.y, width, height) for p in pts if on_input(footprint, p.x, p.y)}
    return sorted(c for c in cells if c is not None)


def input_footprint(rd: EmbeddingReader) -> Any:
    """The input's own extent (`input_bounds` in the raster's metadata: [left, bottom, right, top] in its CRS) as a
    shapely box, or None when the raster does not record it (written before it was recorded) or is a scene mosaic
    (its bounds are the union box of the scenes', gaps between them included; mosaics written before that carried the
    first scene's): then positions are placed on the whole raster as before. The feature grid's last partial
    cells reach up to p-1 input pixels past it; a position there is over no input pixel. On a rotated grid
    `input_bounds` is the envelope of the input's parallelogram, which holds parts of those partial cells: the
    parallelogram itself (`_rotated_footprint`) when the recorded window gives one with that envelope."""
    import json

    from shapely.geometry import box

    value = rd.metadata.get("input_bounds")
    if value is None or str(rd.metadata.get("input", "")).startswith("mosaic of"):  # a mosaic: see above
        return None
    try:
        left, bottom, right, top = (float(v) for v in (json.loads(value) if isinstance(value, str) else value))
    except (TypeError, ValueError):
        return None
    if not all(math.isfinite(v) for v in (left, bottom, right, top)) or right < left or top < bottom:
        return None
    t = rd.transform
    if t.b == 0 and t.d == 0:
        return box(left, bottom, right, top)
    return _rotated_footprint(rd, (left, bottom, right, top)) or box(left, bottom, right, top)


def _rotated_footprint(rd: EmbeddingReader, bounds: tuple[float, float, float, float]) -> Any:
    """`input_corners` of the raster as a shapely polygon, or None."""
    from shapely.geometry import Polygon

    corners = input_corners(rd.transform, rd.metadata, bounds)
    return None if corners is None else Polygon(corners)


def input_corners(transform: Any, meta: Any, bounds: Any) -> list[tuple[float, float]] | None:
    """The four corners of the input's parallelogram on a feature grid `transform` (rotated grids: `input_bounds`
    is its envelope): the window's pixels that lie on the input (`input_window`, col/row/width/height; those before
    its first row or column are not input) in cells of the grid (p input pixels each, 1 on an --upsample grid).
    None when the metadata does not give them, or their envelope is not the recorded `bounds` (a window reaching
    past the input's far edges, whose width there the raster does not record): the caller keeps the envelope."""
    import json

    try:
        window = meta["input_window"]
        col, row, width, height = (int(v) for v in (json.loads(window) if isinstance(window, str) else window))
        step = 1 if str(meta.get("grid", "")).startswith("input pixels") else int(meta["patch_size"])
        left, bottom, right, top = (float(v) for v in (json.loads(bounds) if isinstance(bounds, str) else bounds))
    except (KeyError, TypeError, ValueError):
        return None
    if step < 1 or width < 1 or height < 1:
        return None
    x0, y0 = max(0, -col) / step, max(0, -row) / step
    x1, y1 = width / step, height / step
    corners = [apply_affine(transform, x, y) for x, y in ((x0, y0), (x1, y0), (x1, y1), (x0, y1))]
    xs, ys = [x for x, _ in corners], [y for _, y in corners]
    envelope = (left, bottom, right, top)
    tol = 1e-6 * max(1.0, *(abs(v) for v in envelope))
    if any(abs(u - v) > tol for u, v in zip((min(xs), min(ys), max(xs), max(ys)), envelope)):
        return None
    return corners


def input_bounds_text(footprint: Any) -> str:
    """ "input bounds x LOW..HIGH, y LOW..HIGH" for a message."""
    x0, y0, x1, y1 = footprint.bounds
    return f"input bounds x {_coord(x0)}..{_coord(x1)}, y {_coord(y0)}..{_coord(y1)}"


def on_input(footprint: Any, x: float, y: float) -> bool:
    """Whether (x, y) lies within the input's extent (edges included); True when it is not recorded (None)."""
    if footprint is None:
        return True
    x0, y0, x1, y1 = footprint.bounds
    if not (x0 <= x <= x1 and y0 <= y <= y1):
        return False
    from shapely.geometry import Point

    return footprint.covers(Point(x, y))  # a rotated input's parallelogram (`input_footprint`): not its envelope


def beyond_input(geom: Any, footprint: Any) -> bool:
    """Whether a (placeable) geometry lies wholly beyond the input's extent: every point of a (Multi)Point outside
    it, a line or polygon that does not reach into it (touching its edge is not reaching in). False without a
    recorded extent."""
    if footprint is None or not finite_bounds(geom):
        return False
    if geom.geom_type in POINTS:
        pts = [geom] if geom.geom_type == "Point" else list(geom.geoms)
        return not any(on_input(footprint, p.x, p.y) for p in pts)
    return not footprint.intersects(geom) or footprint.touches(geom)


def _crs(value: Any, what: str, rd: EmbeddingReader) -> Any:
    """`value` (EPSG:4326, a WKT or PROJ string...) as a pyproj CRS, or a one-line error naming `what`."""
    return user_crs(value, what, rd.crs)


def user_crs(value: Any, what: str, own: Any = None) -> Any:
    """`value` (EPSG:4326, a WKT or PROJ string...) as a pyproj CRS, or a one-line error naming `what` (the flag or
    key) and suggesting EPSG:4326 or `own`, the raster's CRS."""
    from pyproj import CRS
    from pyproj.exceptions import CRSError

    try:
        return CRS.from_user_input(value)
    except CRSError as exc:
        own = f" or the raster's own ({own.to_string()})" if own else ""
        raise ConfigError(
            f"{what} {value!r} is not a CRS pyproj knows ({_proj_reason(exc)}); pass an "
            f"EPSG code such as EPSG:4326 for lon,lat{own}"
        ) from exc


def _proj_reason(exc: Exception) -> str:
    """PROJ's own words from a pyproj CRSError ("crs not found: EPSG:99999"), without the wrapping repeats."""
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__  # pyproj's CRSError is one line
    return text.rsplit("proj_create: ", 1)[-1].rstrip(")") if "proj_create: " in text else text


def user_point(point: Any) -> tuple[float, float]:
    """A query point as (x, y) floats: a 2-sequence of numbers ((500100, 4999900), [x, y], numpy) or text as the
    CLI's --point takes it ("500100,4999900", "500100 4999900"); anything else is one InputError naming the value."""
    if isinstance(point, str):
        parts: list[Any] = point.replace(",", " ").split()
    elif hasattr(point, "__len__") and hasattr(point, "__getitem__") and not isinstance(point, bytes | dict):
        parts = list(point)
    else:
        parts = []
    if len(parts) == 2 and not any(isinstance(p, bool) for p in parts):
        try:
            x, y = float(parts[0]), float(parts[1])
        except (TypeError, ValueError):
            pass
        else:
            if math.isfinite(x) and math.isfinite(y):
                return x, y
    raise InputError(
        f"point={point!r} must be two numbers X,Y in the raster's CRS (or point_crs=): point=(500100, 4999900) or "
        "point='500100,4999900' in Python, --point X,Y on the command line"
    )


def point_cell(rd: EmbeddingReader, point: Any, point_crs: Any) -> tuple[int, int]:
    """(row, col) of the cell under `point` (in `point_crs`, else the raster's CRS; any form `user_point` takes), or
    a one-line error naming the raster's CRS and bounds when it misses the raster, or saying why `point_crs` cannot
    place it. On a lon/lat raster a longitude 360 degrees off is the same place (x 179.5..180.5 takes -179.8)."""
    point = user_point(point)
    x, y = point
    where = ""
    if point_crs is not None:
        shown = f"{_coord(x)},{_coord(y)}"
        if rd.crs is None:
            raise InputError(
                f"feature raster {rd.path} has no CRS, so --point-crs {point_crs} (point_crs= in Python) cannot place "
                "the "
                f"point {shown} on it; give --point in the raster's own coordinates ({raster_bounds(rd)}) with a "
                "bare --point-crs or none (point_crs='raster' or None in Python)"
            )
        from pyproj import Transformer

        crs = _crs(point_crs, "--point-crs", rd)
        if not transformable(crs, rd.crs):
            raise InputError(
                f"--point-crs {point_crs} (point_crs= in Python) cannot be transformed to the CRS of feature raster "
                f"{rd.path} ({crs_label(rd.crs)}): {NO_OPERATION}; give --point {shown} in the raster's own "
                f"coordinates ({raster_bounds(rd)}) with a bare --point-crs or none (point_crs='raster' or None in "
                "Python)"
            )
        x, y = Transformer.from_crs(crs, rd.crs, always_xy=True).transform(x, y, errcheck=False)
        shown = f"({_coord(x)}, {_coord(y)})" if math.isfinite(x) and math.isfinite(y) else "no finite point"
        where = f" (in {crs.to_string()}; {shown} in the raster's CRS)"
    cell = cell_of(rd.transform, x, y, rd.width, rd.height)
    if cell is None and rd.crs is not None and rd.crs.is_geographic:  # one place, two longitudes: -179.8 is 180.2
        for turn in (360.0, -360.0):  # on a raster across the antimeridian (x 179.5..180.5, or -180.5..-179.5)
            cell = cell_of(rd.transform, x + turn, y, rd.width, rd.height)
            if cell is not None:
                x += turn
                break
    fp = input_footprint(rd)
    if cell is not None and not on_input(fp, x, y):
        raise InputError(
            f"query point {point}{where} lies outside the input of feature raster {rd.path} ({input_bounds_text(fp)}"
            f", CRS {crs_label(rd.crs)}): it falls in the margin by which the last partial cells reach past the "
            "input's edge, over no input pixel; pick a point within the input"
        )
    if cell is not None:
        return cell
    hint = ""
    if point_crs is None and abs(point[0]) <= 180 and abs(point[1]) <= 90:
        hint = "; --point is read in the raster's CRS: for lon,lat pass --point-crs EPSG:4326"
    raise InputError(
        f"query point {point}{where} lies outside the feature raster {rd.path} ({raster_extent(rd)}){hint}"
    )


def unplaced_hint(n: int, crs: Any) -> str:
    """What to check when PROJ could not place `n` features at all (one line's tail, shared by zonal and classify)."""
    name = crs.to_string() if hasattr(crs, "to_string") else str(crs)
    return (
        f"{n} of them have coordinates that their declared CRS {name} cannot place; check the file's CRS (e.g. "
        "metres declared as lon/lat)"
    )


def unplaced_count(geoms: Any) -> int:
    """How many geometries (non-null, non-empty) PROJ could not place in the raster's CRS (`finite_bounds` false):
    the count `unplaced_hint` speaks of (zonal, similar --polygon, classify labels)."""
    return sum(not finite_bounds(g) for g in geoms if g is not None and not g.is_empty)


def on_raster(rd: EmbeddingReader, geom: Any) -> bool:
    """Whether a geometry reaches the raster's cells at all (a point in a cell, a line or polygon into a cell)."""
    if not finite_bounds(geom):
        return False
    if geom.geom_type in POINTS:
        return bool(point_cells(rd.transform, geom, rd.width, rd.height))
    return cell_window(rd.transform, geom, rd.width, rd.height) is not None


def finite_bounds(geom: Any) -> bool:
    """Whether a (reprojected) geometry has finite coordinates: PROJ returns inf for points its CRS cannot place
    (e.g. metres in a file declared as lon/lat), which would reach numpy casts and warn."""
    return geom is not None and not geom.is_empty and all(math.isfinite(v) for v in geom.bounds)
