"""Tile geometry over a set of scenes: random and grid windows, sizes in pixels or metres, optional ROI polygon.

A tile is (scene, col, row, width, height) in the scene's read grid. Random tiles are drawn from an explicit
numpy Generator (so a tile is a pure function of the seed and sample index); grid tiles are enumerated once into
compact numpy arrays so that tile k is O(1) and rank/worker sharding is plain index arithmetic.
"""

from __future__ import annotations

import functools
import math
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from geodino.errors import InputError, plural

__all__ = ["EpochOrder", "TileSampler", "chunk_aligned", "chunk_places", "least_nodata", "load_roi", "roi_in_pixels"]

GRID_SALT = 0x67726964  # "grid": keeps the epoch permutation apart from the random draws of the same stream


class EpochOrder:
    """Positions of a source's `n` items in a per-epoch permutation of (seed, stream, epoch, salt).

    Indices [e·n, (e+1)·n) visit every item exactly once in epoch e, so disjoint index ranges on ranks and workers
    never repeat an item; the permutation of the current epoch is cached (one per source and worker).
    """

    def __init__(self, stream: int, *, shuffle: bool = True, salt: int = GRID_SALT) -> None:
        self.stream, self.shuffle, self.salt = stream, shuffle, salt
        self._key: tuple[int, int, int] | None = None
        self._perm: np.ndarray | None = None

    def position(self, index: int, seed: int, n: int) -> int:
        """The item of sample `index` (in 0..n-1)."""
        epoch, pos = divmod(int(index), n)
        if not self.shuffle:
            return pos
        if self._key != (int(seed), epoch, n):
            self._perm = np.random.default_rng([int(seed), self.stream, epoch, self.salt]).permutation(n)
            self._key = (int(seed), epoch, n)
        return int(self._perm[pos])  # type: ignore[index]


@functools.lru_cache(maxsize=64)
def chunk_places(tile: int, chunk: int, n: int) -> np.ndarray:
    """The tile origins along one axis (`n` px, `chunk`-px chunks, `tile`-px tiles) that chunked reads allow.

    A chunk at least as large as the tile: the tile grid inside every chunk plus one place flush with the chunk's
    end (as the grid places its last tile flush with the edge), so a tile never straddles a chunk boundary, every
    tile-aligned place of a chunk is there (a 128-px chunk with 64-px tiles: two places, not one) and every pixel
    can be drawn; a last chunk cut by the array's edge to less than a tile gets the one place flush with the edge.
    A chunk smaller than the tile: the chunk grid (and the place flush with the edge), so a tile covers the fewest
    chunks (a 256-px tile on 128-px chunks reads two, not three)."""
    if chunk < tile:
        places = list(range(0, n - tile + 1, chunk))
    else:
        places = []
        for c0 in range(0, n, chunk):
            extent = min(chunk, n - c0)
            places += [c0 + int(k) for k in TileSampler.starts(extent, tile, tile)] if extent >= tile else []
    if not places or places[-1] != n - tile:  # the last pixels of the axis
        places.append(n - tile)
    return np.asarray(places, dtype=np.int64)


def chunk_aligned(start: int, tile: int, chunk: int, n: int) -> int:
    """A random tile origin along one axis (`start`, uniform over 0..n-tile) moved to one of `chunk_places`: the
    place of the same rank (start·P // (n-tile+1) of P places), so the places are drawn equally often (snapping to the
    nearest place below would leave the last places of the axis almost never drawn) and the order is kept."""
    places = chunk_places(int(tile), int(chunk), int(n))
    return int(places[min(len(places) - 1, int(start) * len(places) // (int(n) - int(tile) + 1))])


def least_nodata(
    draw: Callable[[], dict[str, Any]], max_tries: int, max_nodata_fraction: float
) -> tuple[dict[str, Any], int]:
    """Random sampling's redraw rule: up to `max_tries` draws, the first whose nodata fraction is at most
    `max_nodata_fraction`, else the draw with the least nodata; sets its `nodata_fraction`. Returns the sample and
    the number of draws made."""
    best: dict[str, Any] | None = None
    best_frac = 2.0
    draws = 0
    while draws < max_tries:
        sample = draw()
        draws += 1
        frac = 1.0 - float(sample["valid"].mean())
        if frac < best_frac:
            best, best_frac = sample, frac
        if frac <= max_nodata_fraction:
            break
    assert best is not None
    best["nodata_fraction"] = best_frac
    return best, draws


class _Scene(Protocol):
    """What the sampler reads of a scene (read-only: `SceneInfo` is a frozen dataclass)."""

    @property
    def path(self) -> str: ...

    @property
    def crs(self) -> str: ...

    @property
    def width(self) -> int: ...

    @property
    def height(self) -> int: ...

    @property
    def res(self) -> tuple[float, float]: ...

    @property
    def affine(self) -> Any: ...


def roi_in_pixels(roi: Any, transform: Any, width: int, height: int, *, roi_crs: Any = None, crs: Any = None) -> Any:
    """The part of a width x height raster under `roi` (a shapely geometry in map coordinates) as a geometry in
    its pixel coordinates (col, row), empty when none: reprojected from `roi_crs` to the raster's `crs` when both
    are given, then mapped through the inverse of the raster's affine `transform`, then clipped to the raster.

    One rule for the training tiler's ROI and `geodino embed --bbox`, so both place an area on the same pixels."""
    import shapely
    import shapely.affinity  # not imported by `import shapely` (shapely 2.0 fails without it)
    from rasterio.warp import transform_geom

    geom = roi
    if crs and roi_crs:
        geom = shapely.geometry.shape(transform_geom(roi_crs, crs, shapely.geometry.mapping(roi)))
    inv = ~transform
    px = shapely.affinity.affine_transform(geom, [inv.a, inv.b, inv.d, inv.e, inv.c, inv.f])
    return px.intersection(shapely.box(0, 0, width, height))


def load_roi(roi: Any) -> Any:
    """A shapely geometry from a geometry, WKT text, GeoJSON-like dict or a vector file (union of its shapes).

    Returns (geometry, crs or None): a vector file's own CRS wins over `roi_crs`.
    """
    import shapely

    if roi is None:
        return None, None
    if hasattr(roi, "geom_type"):
        return roi, None
    if isinstance(roi, dict):
        return shapely.geometry.shape(roi), None
    text = str(roi).strip()
    if Path(text).expanduser().exists():
        from geodino.data.vectors import read_vector

        gdf = read_vector(Path(text).expanduser(), what="ROI", require_crs=False)
        return shapely.union_all(gdf.geometry.values), (gdf.crs.to_wkt() if gdf.crs else None)
    try:
        return shapely.from_wkt(text), None
    except Exception as exc:
        raise InputError(f"ROI {text[:60]!r} is neither an existing vector file nor WKT") from exc


def _metres_per_unit(scene: _Scene) -> tuple[float, float]:
    """Metres per CRS unit along x and y (projected CRS: its linear unit; geographic: at the scene centre)."""
    from rasterio.crs import CRS

    if not scene.crs:
        return (1.0, 1.0)
    crs = CRS.from_user_input(scene.crs)
    if crs.is_geographic:
        t = scene.affine
        _, lat = t @ (scene.width / 2, scene.height / 2)
        return (111_320.0 * math.cos(math.radians(lat)), 110_574.0)
    factor = crs.linear_units_factor[1] if crs.linear_units_factor else 1.0
    return (factor, factor)


class TileSampler:
    """Random or grid windows over scenes.

    Args:
        scenes: objects with `width`, `height`, `crs`, `affine`, `res`, `path`.
        size: tile size (one number or (height, width)), in pixels (`units="px"`) or metres (`units="m"`).
        stride: grid stride in the same units (default: size).
        sampling: "random" or "grid".
        roi: polygon (shapely, WKT or vector file) in `roi_crs`; random tiles have their centre inside it, grid
            tiles intersect it.
    """

    def __init__(
        self,
        scenes: Sequence[_Scene],
        size: float | Sequence[float],
        *,
        units: str = "px",
        stride: float | Sequence[float] | None = None,
        sampling: str = "random",
        roi: Any = None,
        roi_crs: str = "EPSG:4326",
    ) -> None:
        if units not in ("px", "m"):
            raise InputError(f"tile units must be 'px' or 'm', got {units!r}")
        if sampling not in ("random", "grid"):
            raise InputError(f"sampling must be 'random' or 'grid', got {sampling!r}")
        self.sampling = sampling
        sh, sw = (float(size), float(size)) if np.isscalar(size) else map(float, size)  # type: ignore[arg-type]
        if stride is None:
            th, tw = sh, sw
        else:
            th, tw = (float(stride), float(stride)) if np.isscalar(stride) else map(float, stride)  # type: ignore[arg-type]
        if min(sh, sw, th, tw) <= 0:
            raise InputError(f"tile size and stride must be > 0, got size={size} stride={stride}")
        roi_geom, file_crs = load_roi(roi)
        roi_crs = file_crs or roi_crs
        self.scene_ids: list[int] = []
        self.tile_px: list[tuple[int, int]] = []  # (h, w) per kept scene
        self.stride_px: list[tuple[int, int]] = []
        self.roi_px: list[Any] = []
        # per kept scene, the pixels a random tile's origin can take: (H - h + 1) x (W - w + 1) for an h x w tile
        # in an H x W scene, or the area of its ROI part in pixels; the random scene weights and `__len__` read it
        self.areas: list[float] = []
        self._hw: list[tuple[int, int]] = []
        self._mirrored: list[tuple[str, ...]] = []  # per kept scene, the axes read reversed (a cube's `mirrored`)
        too_small: list[str] = []
        largest = (0, 0, "")
        for i, s in enumerate(scenes):
            if units == "m":
                mx, my = _metres_per_unit(s)
                rx, ry = s.res
                hpx, wpx = round(sh / (ry * my)), round(sw / (rx * mx))
                shpx, swpx = max(1, round(th / (ry * my))), max(1, round(tw / (rx * mx)))
            else:
                hpx, wpx, shpx, swpx = round(sh), round(sw), max(1, round(th)), max(1, round(tw))
            if s.width * s.height > largest[0] * largest[1]:
                largest = (s.height, s.width, s.path)
            if hpx > s.height or wpx > s.width:
                too_small.append(f"{s.path} ({s.width}x{s.height} px < tile {wpx}x{hpx} px)")
                continue
            region = None
            area = float((s.height - hpx + 1) * (s.width - wpx + 1))
            if roi_geom is not None:
                region = roi_in_pixels(roi_geom, s.affine, s.width, s.height, roi_crs=roi_crs, crs=s.crs)
                if region is None or region.is_empty:
                    continue
                area = float(region.area)
                if area <= 0:
                    continue
            self.scene_ids.append(i)
            self.tile_px.append((hpx, wpx))
            self.stride_px.append((shpx, swpx))
            self.roi_px.append(region)
            self.areas.append(area)
            self._hw.append((s.height, s.width))
            self._mirrored.append(tuple(getattr(s, "mirrored", ())))
        if not self.scene_ids:
            if too_small and len(too_small) == len(scenes):
                h, w, p = largest
                raise InputError(
                    f"tile size {size} {units} is larger than every raster (largest: {p}, {w}x{h} px); "
                    "use a smaller tile_size"
                )
            if roi_geom is not None:
                raise InputError(
                    f"the ROI does not intersect {'the' if len(scenes) == 1 else 'any of the'} "
                    f"{plural(len(scenes), 'raster')}; check roi and roi_crs"
                )
            raise InputError("no scene can hold a tile; check tile_size and the rasters")
        if too_small:
            warnings.warn(
                f"{plural(len(too_small), 'raster')} smaller than the tile {'is' if len(too_small) == 1 else 'are'} "
                f"left out, e.g. {too_small[0]}",
                stacklevel=2,
            )
        weights = np.asarray(self.areas, dtype=np.float64)
        self.weights = weights / weights.sum()
        self._cum = np.cumsum(self.weights)
        if sampling == "grid":
            self._build_grid()

    # -- grid ----------------------------------------------------------------------------------------------------
    @staticmethod
    def starts(n: int, tile: int, stride: int, mirrored: bool = False) -> np.ndarray:
        """Tile origins along one axis: every `stride`, plus a last one flush with the edge (no padding).

        `mirrored`: the axis is read reversed (a south-up or east-west cube read north-up, `cube_grid.north_up`), so
        the origins are laid out from the far edge, as stored: on the read order's grid the stored origins were
        n - tile - k*stride, off the chunk grid whenever n % chunk != 0 (most windows then read two chunks)."""
        starts = np.arange(0, n - tile + 1, stride, dtype=np.int64)
        if starts.size == 0 or starts[-1] != n - tile:
            starts = np.append(starts, n - tile)
        return (n - tile - starts)[::-1] if mirrored else starts

    def _build_grid(self) -> None:
        import shapely

        scene_col: list[np.ndarray] = []
        cols: list[np.ndarray] = []
        rows: list[np.ndarray] = []
        for k in range(len(self.scene_ids)):
            hpx, wpx = self.tile_px[k]
            shpx, swpx = self.stride_px[k]
            h, w = self._hw[k]
            ys = self.starts(h, hpx, shpx, "y" in self._mirrored[k])
            xs = self.starts(w, wpx, swpx, "x" in self._mirrored[k])
            yy, xx = np.meshgrid(ys, xs, indexing="ij")
            yy, xx = yy.ravel(), xx.ravel()
            if self.roi_px[k] is not None:
                boxes = shapely.box(xx, yy, xx + wpx, yy + hpx)
                keep = shapely.intersects(boxes, self.roi_px[k])
                yy, xx = yy[keep], xx[keep]
            scene_col.append(np.full(yy.shape, k, dtype=np.int32))
            cols.append(xx.astype(np.int64))
            rows.append(yy.astype(np.int64))
        self.grid_scene = np.concatenate(scene_col)
        self.grid_col = np.concatenate(cols)
        self.grid_row = np.concatenate(rows)

    def __len__(self) -> int:
        """Number of grid tiles; for random sampling the tiles of one nominal pass: each scene's tile origins (or its
        ROI part's pixels: `areas`) over the tile's pixels, summed and rounded, at least 1. Not the scenes' area: a
        791 x 718 px scene with 256 px tiles counts 463 * 536 / 256**2, 4 tiles (its area holds 8.7)."""
        if self.sampling == "grid":
            return int(self.grid_scene.size)
        return int(sum(a / (h * w) for a, (h, w) in zip(self.areas, self.tile_px)) + 0.5) or 1

    def grid_tile(self, k: int) -> tuple[int, int, int, int, int]:
        """Grid tile `k` as (scene index, col, row, width, height)."""
        j = int(self.grid_scene[k])
        h, w = self.tile_px[j]
        return self.scene_ids[j], int(self.grid_col[k]), int(self.grid_row[k]), w, h

    def keep_grid(self, keep: np.ndarray) -> None:
        """Restrict the grid to tiles where `keep` is True (e.g. after a nodata pre-scan)."""
        self.grid_scene, self.grid_col, self.grid_row = self.grid_scene[keep], self.grid_col[keep], self.grid_row[keep]
        if self.grid_scene.size == 0:
            raise InputError("every grid tile is mostly nodata; raise max_nodata_fraction or check the nodata value")

    # -- random --------------------------------------------------------------------------------------------------
    def _point_in_roi(self, k: int, rng: np.random.Generator) -> tuple[float, float]:
        """A point uniform over kept scene `k`'s ROI part: a triangle of its constrained Delaunay triangulation
        chosen by area, then a uniform point in it. Built once per scene, only when rejection sampling failed."""
        import shapely

        cache = self.__dict__.setdefault("_roi_triangles", {})
        if k not in cache:
            parts = shapely.get_parts(shapely.get_parts(self.roi_px[k]))  # a collection's (multi)polygons, flat
            polys = [p for p in parts if p.geom_type == "Polygon" and p.area > 0]
            tris = shapely.constrained_delaunay_triangles(shapely.MultiPolygon(polys))
            corners = np.array([np.asarray(t.exterior.coords)[:3] for t in tris.geoms], dtype=np.float64)
            cache[k] = (corners, np.cumsum([t.area for t in tris.geoms]))
        corners, cum = cache[k]
        a, b, c = corners[min(int(np.searchsorted(cum, rng.random() * cum[-1], side="right")), len(cum) - 1)]
        u, v = rng.random(), rng.random()
        if u + v > 1.0:  # the other half of the parallelogram, folded back into the triangle
            u, v = 1.0 - u, 1.0 - v
        x, y = a + u * (b - a) + v * (c - a)
        return float(x), float(y)

    def centre_in_roi(self, scene: int, col: int, row: int, width: int, height: int) -> bool:
        """Whether the centre of the tile (`col`, `row`, `width`, `height`) of scene `scene` (its index among the
        scenes given) lies in the ROI (on its edge counts); True without a ROI. For origins moved after the draw
        (a cube's chunk alignment), which must keep the ROI's promise of `random_tile`."""
        region = self.roi_px[self.scene_ids.index(scene)]
        if region is None:
            return True
        import shapely

        return bool(shapely.intersects_xy(region, col + width / 2, row + height / 2))

    def random_tile(self, rng: np.random.Generator) -> tuple[int, int, int, int, int]:
        """A random tile (scene chosen by its count of tile origins, `areas`; origin uniform; centre inside the ROI
        when one is set)."""
        import shapely

        k = int(np.searchsorted(self._cum, rng.random() * self._cum[-1], side="right"))
        k = min(k, len(self.scene_ids) - 1)
        hpx, wpx = self.tile_px[k]
        h, w = self._hw[k]
        region = self.roi_px[k]
        if region is None:
            return self.scene_ids[k], int(rng.integers(0, w - wpx + 1)), int(rng.integers(0, h - hpx + 1)), wpx, hpx
        x0, y0, x1, y1 = region.bounds
        for _ in range(100):  # rejection sampling of the tile centre inside the ROI
            cx, cy = rng.uniform(x0, x1), rng.uniform(y0, y1)
            if shapely.contains_xy(region, cx, cy):
                break
        else:  # a thin or scattered ROI (a road, plots far apart) that fills little of its bounds: the last miss
            # would place a tile outside it (a held-out area, say), so draw uniformly over its triangles instead
            cx, cy = self._point_in_roi(k, rng)
        col = int(np.clip(round(cx - wpx / 2), 0, w - wpx))
        row = int(np.clip(round(cy - hpx / 2), 0, h - hpx))
        return self.scene_ids[k], col, row, wpx, hpx
