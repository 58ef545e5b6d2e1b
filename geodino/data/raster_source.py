"""Tiles of a raster archive as a pure function of (seed, sample index): `RasterSource`.

Random sampling (a tile redrawn while it is mostly nodata) and grid sampling (every tile once per epoch, in a
per-epoch order, after a decimated pre-scan drops mostly-nodata tiles). Kept apart from the archive's index
(`archive.py`: which scenes, bands, sensor and scale; it re-exports `RasterSource`) because sampling windows is a
concern of its own that `data/tiling.py` and `data/cubes.py` share.
"""

from __future__ import annotations

import os
import typing
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np

from geodino.data.rasters import file_mask, read_bands, stream_id
from geodino.data.tiling import EpochOrder, TileSampler, least_nodata
from geodino.data.validity import valid_pixels
from geodino.errors import InputError

if typing.TYPE_CHECKING:
    from geodino.data.archive import RasterArchive

__all__ = ["RasterSource"]

_failed_reads = 0  # reads that failed under on_error: skip, in this process (as images' _skipped_count)
# scene path -> (its `_stamp` when it failed, the error): left out by any raster source of this process; keyed by
# path so that a read of another scene costs no stat once some scene failed (per tile, not per failure)
_left_out: dict[str, tuple[tuple[Any, ...], Exception]] = {}


def _stamp(path: str) -> tuple[Any, ...]:
    """A scene file as it is now (path, size, mtime, inode; the path alone where it does not stat, e.g. /vsis3/): a
    file replaced since it failed (re-downloaded, in the same notebook session) is read again."""
    try:
        st = os.stat(path)
    except OSError:
        return (path,)
    return (path, st.st_size, st.st_mtime_ns, st.st_ino)


class RasterSource:
    """Tiles of a `RasterArchive`: `get(index, seed)` returns one sample, the same one for the same arguments.

    Random sampling redraws a tile whose nodata fraction exceeds `max_nodata_fraction` (up to `max_tries`, then
    keeps the best draw). Grid sampling enumerates tiles (optionally dropping mostly-nodata ones after a
    decimated pre-scan) and visits them in a per-epoch permutation of (seed, epoch): indices [e·N, (e+1)·N) cover
    every tile exactly once, so disjoint index ranges on ranks and workers never duplicate a tile.
    """

    def __init__(
        self,
        archive: RasterArchive,
        *,
        tile_size: float | Sequence[float] = 256,
        units: str = "px",
        sampling: str = "random",
        stride: float | Sequence[float] | None = None,
        roi: Any = None,
        roi_crs: str = "EPSG:4326",
        max_nodata_fraction: float = 0.5,
        max_tries: int = 10,
        shuffle: bool = True,
        name: str = "raster",
        prescan: bool = True,
    ) -> None:
        self.archive = archive
        self.name = name
        self.sensor = archive.sensor
        self.band_names = list(archive.band_names)
        self.max_nodata_fraction = float(max_nodata_fraction)
        self.max_tries = max(1, int(max_tries))
        self.shuffle = shuffle
        self.stream = stream_id(name)
        self.tiles = TileSampler(
            archive.scenes, tile_size, units=units, stride=stride, sampling=sampling, roi=roi, roi_crs=roi_crs
        )
        self.redraws = 0
        self.failed_scenes: set[int] = set()  # scenes whose read failed mid-run (on_error: skip): not read again
        self._order = EpochOrder(self.stream, shuffle=shuffle)
        if sampling == "grid" and prescan and self.max_nodata_fraction < 1.0:
            self._prescan_grid()

    def placed_scenes(self) -> list[Any]:
        """The archive's scenes, whose grids place this source's tiles on the ground (the STAC footprint of an
        export reads them)."""
        return list(self.archive.scenes)

    def __len__(self) -> int:
        return len(self.tiles)

    def _prescan_grid(self, cells_per_tile: int = 8) -> None:
        """Drop grid tiles whose nodata fraction, estimated on a decimated read, exceeds the threshold."""
        t = self.tiles
        keep = np.ones(t.grid_scene.size, dtype=bool)
        for k, sid in enumerate(t.scene_ids):
            sel = np.flatnonzero(t.grid_scene == k)
            if sel.size == 0:
                continue
            s = self.archive.scenes[sid]
            hpx, wpx = t.tile_px[k]
            factor = max(1, min(hpx, wpx) // cells_per_tile)
            oh, ow = max(1, s.height // factor), max(1, s.width // factor)
            ds = self.archive.dataset(sid)
            data = read_bands(ds, s.band_indexes, out_shape=(oh, ow))
            valid = valid_pixels(data, s.nodata, band_axis=0)  # the one rule (nodata in every band; non-finite)
            if s.has_mask:  # the file's own mask, also under a nodata value from the sensor or the user
                m = file_mask(ds, s.band_indexes, out_shape=(oh, ow))
                if m is not None:
                    valid &= m
            self.archive.check_values(sid, data, valid)  # every scene's pixels, read here anyway
            integral = np.pad(valid.astype(np.int64).cumsum(0).cumsum(1), ((1, 0), (1, 0)))
            sy, sx = oh / s.height, ow / s.width
            r0 = np.clip(np.floor(t.grid_row[sel] * sy).astype(int), 0, oh)
            c0 = np.clip(np.floor(t.grid_col[sel] * sx).astype(int), 0, ow)
            r1 = np.clip(np.ceil((t.grid_row[sel] + hpx) * sy).astype(int), 0, oh)
            c1 = np.clip(np.ceil((t.grid_col[sel] + wpx) * sx).astype(int), 0, ow)
            area = np.maximum((r1 - r0) * (c1 - c0), 1)
            n_valid = integral[r1, c1] - integral[r0, c1] - integral[r1, c0] + integral[r0, c0]
            keep[sel] = 1.0 - n_valid / area <= self.max_nodata_fraction
        if keep.size and not keep.any():  # name what was scanned (it said only "every grid tile is mostly nodata")
            scenes = [self.archive.scenes[sid] for sid in t.scene_ids]
            more = f" and {len(scenes) - 1} more" if len(scenes) > 1 else ""
            values = sorted({"none" if sc.nodata is None else f"{sc.nodata:g}" for sc in scenes})
            fix = self.archive.hints.get("nodata") or "set nodata"
            raise InputError(
                f"source {self.name!r} ({scenes[0].path}{more}): every one of its {keep.size} grid tiles has more "
                f"nodata than max_nodata_fraction={self.max_nodata_fraction:g} (nodata value {', '.join(values)}, NaN "
                f"or masked pixels); check the "
                f"files and their nodata value ({fix} to override a wrong one), or raise max_nodata_fraction"
            )
        t.keep_grid(keep)

    def _grid_index(self, index: int, seed: int) -> int:
        return self._order.position(index, seed, len(self.tiles))

    def tile(self, index: int, seed: int) -> tuple[int, int, int, int, int]:
        """The (scene, col, row, width, height) of sample `index` (first draw only, for random sampling)."""
        if self.tiles.sampling == "grid":
            return self.tiles.grid_tile(self._grid_index(index, seed))
        rng = np.random.default_rng([int(seed), self.stream, int(index)])
        return self.tiles.random_tile(rng)

    def _read(self, tile: tuple[int, int, int, int, int]) -> dict[str, Any] | None:
        """The sample of `tile`, or None when its file fails mid-run and on_error is "skip": warned once per scene
        with this process's count of failed reads, and the scene is left out of sampling (not read again: a broken
        file retried on every draw cost a failed read each time, and said nothing after the first warning). A scene
        another source of this process left out (the same file in a second source or a rebuilt one) is left out
        without a read or a second warning; draws that land on a left-out scene are drawn again, not counted."""
        global _failed_reads
        if tile[0] in self.failed_scenes:
            return None
        path = str(self.archive.scenes[tile[0]].path)
        skip = self.archive.on_error == "skip"  # a source that stops on errors reads (and names) the file itself
        left = _left_out.get(path) if skip else None
        if left is not None and left[0] == _stamp(path):
            self.last_error = left[1]
            self.failed_scenes.add(tile[0])
            return None
        try:
            return self.archive.sample(*tile)
        except InputError as exc:
            if not skip:
                raise
            self.last_error = exc
            _left_out[path] = (_stamp(path), exc)
            self.failed_scenes.add(tile[0])
            _failed_reads += 1
            warnings.warn(
                f"{exc}; scene left out of sampling, drawing another tile (on_error: skip); "
                f"{len(self.failed_scenes)} scene(s) of source {self.name!r} left out, {_failed_reads} failed "
                f"read(s) so far in process {os.getpid()}",
                stacklevel=3,
            )
            return None

    def get(self, index: int, seed: int) -> dict[str, Any]:
        """Sample `index`: reflectance `image` float32 [C,H,W], `valid` [H,W], `crs`, `transform`, `bands`."""
        if self.tiles.sampling == "grid":
            n = len(self.tiles)
            for k in range(n):  # a tile whose file broke since indexing: the next one of the epoch order
                sample = self._read(self.tiles.grid_tile(self._grid_index(index + k, seed)))
                if sample is not None:
                    return sample
            last = getattr(self, "last_error", None)
            raise InputError(
                f"every grid tile of source {self.name!r} failed to read, the last: {last}; re-download or remove "
                "the broken file(s)"
            )
        rng = np.random.default_rng([int(seed), self.stream, int(index)])
        failures = 0

        def draw() -> dict[str, Any]:  # a tile that reads; failed reads (on_error: skip) are drawn again
            nonlocal failures
            while (sample := self._read(self.tiles.random_tile(rng))) is None:
                failures += 1
                if failures > 10 * self.max_tries:
                    last = getattr(self, "last_error", None)
                    raise InputError(
                        f"{failures} tile reads failed in a row in source {self.name!r}, the last: {last}; "
                        "re-download or remove the broken file(s) (or fix the archive's paths)"
                    )
            return sample

        best, draws = least_nodata(draw, self.max_tries, self.max_nodata_fraction)
        self.redraws += draws - 1
        return best
