"""Datacubes: xarray-readable stores (Zarr v2 and v3, NetCDF) with (band, y, x) or (time, band, y, x) arrays.

Each store is a "scene": its CRS and affine come from rioxarray (the `spatial_ref`/grid-mapping variable, CF
attributes) or from `crs`/`transform` attributes (GeoZarr-style); tiles come from the same `TileSampler` as
raster archives. Arrays are opened without dask (`chunks=None`), so a tile read touches only the chunks it
covers; with `align_to_chunks` random tile origins move to the tile grid inside each chunk when chunks are at least
the tile size (a tile never straddles chunks, yet every tile-aligned place is drawn), else to the chunk grid (the
fewest chunks per tile); `tiling.chunk_places` is the rule.
Values are kept raw (`mask_and_scale=False`): nodata comes from `_FillValue`/`nodata` or the config; a pixel with a
band outside its CF `valid_range`/`valid_min`/`valid_max` (raw units) is invalid too
(`cube_valid_range.in_valid_range`). One store is opened and described by `geodino.data.cube_scene.open_cube`
(re-exported here); this module reads tiles of the stores (`CubeSource`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from geodino.data.archive_bands import _unnamed, sensor_order, warn_qa_model_bands
from geodino.data.cube_open import cube_paths, is_zarr_store, open_dataset
from geodino.data.cube_rule import check_declared_rule
from geodino.data.cube_scene import CubeScene, open_cube
from geodino.data.cube_valid_range import in_valid_range
from geodino.data.cube_variables import same_bands
from geodino.data.rasters import stream_id, window_affine
from geodino.data.sensors import Sensor, check_bit_depth, check_read_values, get_sensor
from geodino.data.tiling import EpochOrder, TileSampler, chunk_aligned, least_nodata
from geodino.data.validity import valid_pixels
from geodino.errors import InputError, plural

__all__ = ["CubeSource", "is_zarr_store", "open_cube"]

_open_dataset = open_dataset  # the name `geodino.data.stats_cube` imports (cube_open's public open_dataset)


def _aligned(start: int, tile: int, chunk: int, n: int, mirrored: bool) -> int:
    """`tiling.chunk_aligned` on the axis as stored: a store read mirrored (south-up, `north_up`) has its chunk
    boundaries at n - k*chunk in the rows read, so places aligned to k*chunk there straddled two chunks whenever
    n % chunk != 0 (height 100, chunk 32: 2 chunks for most 32-px tiles instead of 1). The origin is aligned in the
    stored order and mirrored back (origins stay uniform over the same number of places)."""
    if not mirrored:
        return chunk_aligned(start, tile, chunk, n)
    return n - tile - chunk_aligned(n - tile - start, tile, chunk, n)


def _check_crs(scenes: Sequence[CubeScene], allow_no_crs: bool, units: str, roi: Any) -> None:
    """Refuse a store without a CRS unless `allow_no_crs`; even then tiles in metres and a ROI, which need one."""
    bare = next((sc for sc in scenes if not sc.crs), None)
    if bare is None:
        return
    if not allow_no_crs and bare.unplaced:
        raise InputError(f"{bare.unplaced}; or set `allow_no_crs: true` in the source to train in pixel coordinates")
    if not allow_no_crs:
        raise InputError(
            f"datacube {bare.path} has no CRS (no spatial_ref/grid_mapping or crs attribute); write one with "
            "rioxarray, or set `allow_no_crs: true` in the source to train on it without one (tiles in px, no roi)"
        )
    if units != "px" or roi is not None:
        what = "tile_units: m" if units != "px" else "a roi"
        raise InputError(
            f"datacube {bare.path} has no CRS, so {what} cannot be placed on it; give tile_size in px"
            f"{' and drop roi' if roi is not None else ''}, or write a CRS with rioxarray"
        )


class CubeSource:
    """Tiles of one or more datacubes as a pure function of (seed, index), like `RasterSource`.

    time_sampling: "random" (one time step per sample; grid mode enumerates every (tile, time) pair),
    "first", "last", or "stack" (all times, `image` [T,C,H,W]; for plain loaders, not multi-crop). first/last
    fall back to the nearest date with a valid pixel in the tile where theirs has none (a missing acquisition).
    allow_no_crs: train on stores without a CRS (web-style cubes): samples carry `crs` "" and the store's own
    coordinates; tiles in px only, no ROI.
    align_to_chunks: random tile origins only at `tiling.chunk_places` (the tile grid inside chunks at least the tile
    size, else the chunk grid), drawn equally often; with a `roi`, a tile whose aligned centre would fall outside it
    keeps its drawn origin; False: uniform origins.
    """

    def __init__(
        self,
        paths: str | Sequence[str],
        *,
        sensor: str | Sensor | None = None,
        variable: str | None = None,
        bands: Sequence[str] | None = None,
        band_dim: str | None = None,
        time_dim: str = "time",
        time_sampling: str = "random",
        nodata: float | None = None,
        tile_size: float | Sequence[float] | None = 256,
        units: str = "px",
        sampling: str = "random",
        stride: float | Sequence[float] | None = None,
        roi: Any = None,
        roi_crs: str = "EPSG:4326",
        max_nodata_fraction: float = 0.5,
        max_tries: int = 10,
        align_to_chunks: bool = True,
        shuffle: bool = True,
        allow_no_crs: bool = False,
        band_names: Sequence[str] | None = None,
        name: str = "cube",
    ) -> None:
        if time_sampling not in ("random", "first", "last", "stack"):
            raise InputError(f"time_sampling must be random, first, last or stack; got {time_sampling!r}")
        items = cube_paths(paths)  # folders searched for stores, globs and .txt lists expanded
        if not items:
            raise InputError("no datacube paths given; set `paths:` to Zarr stores or NetCDF files")
        sensor_obj = get_sensor(sensor) if sensor is not None else None
        self.scenes = [
            open_cube(
                str(p),
                variable=variable,
                bands=bands,
                band_dim=band_dim,
                time_dim=time_dim,
                nodata=nodata,
                require_crs=False,  # refused below, naming the source key
                warn_unplaced=False,  # likewise
                sensor=sensor_obj,
                band_names=band_names,
            )
            for p in items
        ]
        _check_crs(self.scenes, allow_no_crs, units, roi)
        first = self.scenes[0]
        same_bands(self.scenes, sensor_obj)  # by name: stores of B02..B08 and B02..B05 are not one source
        self.band_names = list(first.band_names)
        if sensor_obj is None:
            raise InputError(f"datacube {first.path} needs a sensor: set `sensor:` (built-in name or YAML)")
        # named bands (in the sensor's order, or `bands:`'s): the sensor in the order fed; unnamed: positional
        order = sensor_order(self.band_names, sensor_obj)
        n = len(self.band_names)
        if n != sensor_obj.n_bands and _unnamed(self.band_names) and not set(self.band_names) <= set(sensor_obj.bands):
            raise InputError(  # b1..bN are positions: by name, b1 was the sensor's B01 (a 1-band store read as B01)
                f"datacube {first.path} gives {plural(n, 'unnamed band')} ({', '.join(self.band_names)}) but sensor "
                f"{sensor_obj.name!r} has {sensor_obj.n_bands} ({', '.join(sensor_obj.bands)}); name the store's bands "
                f"(a band coordinate in the store, or `band_names:`) or use a sensor with {plural(n, 'band')}"
            )
        if sensor_obj.n_bands != n or (order is not None and order[0] != sorted(order[0])):
            try:
                sensor_obj = sensor_obj.select(self.band_names)
            except InputError as exc:
                raise InputError(  # the cause names the band: `bands: [B4, QA]` was told to "select bands"
                    f"datacube {first.path} gives {plural(len(self.band_names), 'band')} "
                    f"({', '.join(self.band_names)}) but sensor {sensor_obj.name!r} has {sensor_obj.n_bands}: "
                    f"{str(exc).splitlines()[0]}; select bands the sensor has (`bands:`) or use a matching sensor"
                ) from exc
        self.sensor = sensor_obj
        check_declared_rule(self.scenes, sensor_obj)  # CF scale_factor/add_offset other than the sensor's: refused
        warn_qa_model_bands(self.band_names)  # an SCL/QA60/QA_PIXEL variable fed to the backbone: one line
        for dtype in dict.fromkeys(str(sc.array.dtype) for sc in self.scenes):  # one line: the first store of each
            path = next(sc.path for sc in self.scenes if str(sc.array.dtype) == dtype)
            check_bit_depth(path, dtype, sensor_obj, kind="datacube")  # uint8 with a sensor of 16-bit DN: refused
        self.time_sampling = time_sampling
        self.max_nodata_fraction = float(max_nodata_fraction)
        self.max_tries = max(1, int(max_tries))
        self.align_to_chunks = align_to_chunks
        self.shuffle = shuffle
        self.name = name
        self.stream = stream_id(name)
        self.tiles = (  # None: windows are read with `read` only (data stats' grid windows)
            None
            if tile_size is None
            else TileSampler(
                self.scenes, tile_size, units=units, stride=stride, sampling=sampling, roi=roi, roi_crs=roi_crs
            )
        )
        self._n_times = max(1, len(first.times)) if time_sampling == "random" and first.time_dim else 1
        self._order = EpochOrder(self.stream, shuffle=shuffle)
        self.grid_times: np.ndarray | None = None  # per grid tile time step (a curated list); -1: none
        self.redraws = 0  # random tiles drawn again for too much nodata (as RasterSource counts them)
        self.date_fallbacks = 0  # first/last tiles read at another date: the chosen one had no valid pixel there
        self.empty_tiles = 0  # tiles returned without a valid pixel (after every redraw and date); warned once

    def placed_scenes(self) -> list[CubeScene]:
        """The scenes whose grid places this source's tiles on the ground (CRS, transform, size): every store, whose
        tiles come from the same `TileSampler` as a raster scene's (the STAC footprint of an export reads them)."""
        return list(self.scenes)

    def _sampler(self) -> TileSampler:
        """The tile sampler; a source built without `tile_size` (data stats' windows) only `read`s."""
        if self.tiles is None:
            raise RuntimeError("this datacube source was built without tile_size: it reads windows, it draws no tiles")
        return self.tiles

    def __len__(self) -> int:
        tiles = self._sampler()
        return len(tiles) * (self._n_times if tiles.sampling == "grid" else 1)

    def _time_index(self, scene: CubeScene, rng: np.random.Generator) -> int | None:
        if scene.time_dim is None or self.time_sampling == "stack":
            return None
        n = scene.array.sizes[scene.time_dim]
        return {"first": 0, "last": n - 1}.get(self.time_sampling, int(rng.integers(0, n)))

    def read(self, scene_i: int, col: int, row: int, width: int, height: int, t: int | None) -> dict[str, Any]:
        """A sample of scene `scene_i`: reflectance `image`, `valid`, `crs`, `transform`, `bands`, `time`."""
        s = self.scenes[scene_i]
        da = s.array
        sel: dict[str, Any] = {da.dims[-2]: slice(row, row + height), da.dims[-1]: slice(col, col + width)}
        if t is not None:
            sel[s.time_dim] = t  # type: ignore[index]
        try:
            data = np.asarray(da.isel(sel).values)
        except Exception as exc:
            raise InputError(f"datacube {s.path}: tile read failed ({type(exc).__name__}: {exc})") from exc
        valid = valid_pixels(data, s.nodata)
        if s.valid_ranges:  # CF: a value outside its band's valid range is missing (the whole pixel, see there)
            valid &= in_valid_range(data, s.valid_ranges)
        check_read_values(s.path, data, valid, self.sensor, kind="datacube", setting="`sensor:`")
        if data.ndim == 4:  # stacked times: a pixel is valid when valid at every time
            valid = np.asarray(valid.all(axis=0))  # an array (the stubs allow a scalar)
        image = self.sensor.to_reflectance(data).astype(np.float32, copy=False)
        out = {
            "image": image,
            "valid": valid,
            "crs": s.crs,
            "transform": window_affine(s.affine, col, row),
            "bands": list(self.band_names),
            "path": s.path,
        }
        if t is not None and s.times:
            out["time"] = s.times[t]
        return out

    def dated_read(
        self, scene_i: int, col: int, row: int, width: int, height: int, t: int | None
    ) -> tuple[int | None, dict[str, Any]]:
        """`read` at time step `t` -> (time step read, sample); with time_sampling first/last, when the window holds
        no valid pixel at `t` (an acquisition missing there), the nearest date that has one: the next-latest for last,
        the next-earliest for first (counted in `date_fallbacks`); when no date has one, the window at `t` (nodata
        everywhere). Curation records the time step it returns."""
        sample = self.read(scene_i, col, row, width, height, t)
        s = self.scenes[scene_i]
        if t is None or self.time_sampling not in ("first", "last") or sample["valid"].any():
            return t, sample
        later = range(t - 1, -1, -1) if self.time_sampling == "last" else range(t + 1, s.array.sizes[s.time_dim])
        for k in later:
            other = self.read(scene_i, col, row, width, height, k)
            if other["valid"].any():
                self.date_fallbacks += 1
                return k, other
        return t, sample

    def _checked(self, sample: dict[str, Any], tries: int) -> dict[str, Any]:
        """Count (and say once per source) a tile returned without a valid pixel: it trains as constant crops."""
        if sample["valid"].any():
            return sample
        self.empty_tiles += 1
        if self.empty_tiles == 1:
            import warnings

            dates = " at any date" if self.time_sampling in ("first", "last") and self.scenes[0].time_dim else ""
            warnings.warn(
                f"source {self.name!r}: a tile of datacube {sample['path']} holds no valid pixel{dates} after "
                f"{plural(tries, 'draw')} (nodata everywhere); it is used as it is (`empty_tiles` counts them); "
                "check the store's nodata/_FillValue, the ROI and max_tries",
                stacklevel=3,
            )
        return sample

    def get(self, index: int, seed: int) -> dict[str, Any]:
        rng = np.random.default_rng([int(seed), self.stream, int(index)])
        tiles = self._sampler()
        if tiles.sampling == "grid":
            k, t_pos = divmod(self._order.position(index, seed, len(self)), self._n_times)
            sid, col, row, w, h = tiles.grid_tile(k)
            s = self.scenes[sid]
            if self.grid_times is not None:  # a curated list: the tile at the date it was kept for
                t = int(self.grid_times[k]) if self.grid_times[k] >= 0 and s.time_dim else None
                return self._checked(self.read(sid, col, row, w, h, t), 1)
            t = t_pos if (self.time_sampling == "random" and s.time_dim) else self._time_index(s, rng)
            return self._checked(self.dated_read(sid, col, row, w, h, t)[1], 1)

        def draw() -> dict[str, Any]:
            sid, col, row, w, h = tiles.random_tile(rng)
            s = self.scenes[sid]
            if self.align_to_chunks and s.chunks:
                ch, cw = s.chunks
                acol = _aligned(col, w, cw, s.width, "x" in s.mirrored)
                arow = _aligned(row, h, ch, s.height, "y" in s.mirrored)
                # a ROI's tile centres stay inside it: an aligned place can lie a tile away (a thin strip got
                # none of its tiles centred in it, some wholly outside), so such a tile keeps its drawn origin
                if tiles.centre_in_roi(sid, acol, arow, w, h):
                    col, row = acol, arow
            return self.dated_read(sid, col, row, w, h, self._time_index(s, rng))[1]

        best, draws = least_nodata(draw, self.max_tries, self.max_nodata_fraction)
        self.redraws += draws - 1
        return self._checked(best, draws)
