"""Raster archives: a set of GeoTIFF/COG/VRT scenes indexed once (`RasterArchive`) and the tiles drawn from them
(`RasterSource`, a pure function of seed and sample index, in `geodino.data.raster_source`; re-exported here).

Why not torchgeo's `RasterDataset`, and how scenes are opened and windows read: see `geodino.data.rasters`.
`RasterArchive.to_geodataframe()` gives the torchgeo-style footprint index.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from geodino.data import archive_index, archive_sensor
from geodino.data.archive_bands import (  # noqa: F401  re-exported: band naming and reading order of the files
    CONFIG_HINTS,
    _file_band_names,
    _resolve_bands,
    _unnamed,
    canonical_scenes,
    skip_hint,
    warn_qa_model_bands,
)
from geodino.data.archive_index import _REFETCH
from geodino.data.paths import RASTER_EXTS, resolve_paths
from geodino.data.raster_source import RasterSource  # re-exported: the tiles drawn from an archive
from geodino.data.rasters import SceneInfo, alpha_is_data, open_raster, read_window, window_affine
from geodino.data.sensors import Sensor, check_bit_depth, check_read_values, get_sensor
from geodino.data.validity import check_real
from geodino.errors import InputError, plural

__all__ = ["RasterArchive", "RasterSource"]


def _res_pair(res: float | Sequence[float]) -> tuple[float, float]:
    """(x, y) target resolution from one number (or [n]) or [x, y]; another count is refused in one line (`[10]` was
    blamed on the file: "cannot be read (IndexError ...); re-download it", and `[10, 10, 10]` passed)."""
    values = [float(v) for v in np.ravel(res)]
    if len(values) not in (1, 2):
        raise InputError(f"res={res!r}: give one resolution for both axes or [x, y], in the units of `crs`")
    return values[0], values[-1]


class RasterArchive:
    """A set of raster scenes, indexed once (headers only), read as windows with a `valid` mask.

    Args:
        paths: folder (recursive), glob, `.txt` list, file, or a list of those.
        bands: band names to read (by the file's band descriptions, `band_names`, or the sensor's names/aliases).
        sensor: the data's sensor (name, YAML or Sensor): scale and default band names / nodata.
        band_names: names of the files' bands in order, when the files carry no band descriptions.
        nodata: overrides the files' nodata value (many S2 products declare none or the wrong one).
        crs, res: reproject every scene onto this CRS and resolution (WarpedVRT); default native grids.
        on_error: "stop" raises on an unreadable file or one without CRS; "skip" leaves it out with one warning
            line each once the index is built (none readable: one error naming them instead of a warning each).
        index_cache: a JSON file holding the index; reused while the files (size, mtime) and settings match,
            so a large archive is indexed once.
        check_cut_short: also fail (under `on_error`) a local GeoTIFF whose pixel blocks run past its end (cut after
            an intact header: it opens without a GDAL warning; `headers.tiff_cut_short`, read from the handle the
            header scan has open). `geodino data index` sets it; curate leaves it off and reads such tiles as nodata.
        warn_skipped: one warning per file left out under on_error="skip" once the index is built (default); off for
            a caller that reports `skipped` itself (`geodino data index` prints them in its summary). Files left out
            before another error stopped the index are warned about either way (no summary follows).

    The DN -> physical rule a file declares in its header (GDAL scale/offset, read once per file while indexing)
    must be the sensor's: another is refused up front (`_check_declared`), naming the file and both rules, except
    in a VRT `geodino data stack` wrote from a Sentinel-2 product's metadata: such a scene is read by its own rule
    (`scene_rules`), into the sensor's physical units, then standardised with the sensor's mean/std as any.
    """

    # None only on an inspection-only archive (uniform=False, `geodino data index`), which reads no pixels
    sensor: Sensor

    def __init__(
        self,
        paths: str | Path | Sequence[str | Path],
        *,
        bands: Sequence[str] | None = None,
        sensor: str | Sensor | None = None,
        band_names: Sequence[str] | None = None,
        nodata: float | None = None,
        crs: str | None = None,
        res: float | Sequence[float] | None = None,
        resampling: str = "bilinear",
        on_error: str = "stop",
        recursive: bool = True,
        require_crs: bool = True,
        progress: bool = True,
        uniform: bool = True,
        index_cache: str | Path | None = None,
        hints: Mapping[str, str | None] | None = None,
        check_cut_short: bool = False,
        warn_skipped: bool = True,
    ) -> None:
        if on_error not in ("stop", "skip"):
            raise InputError(f"on_error must be 'stop' or 'skip', got {on_error!r}")
        self.files = resolve_paths(paths, RASTER_EXTS, recursive=recursive, what="raster")
        self.requested_bands = list(bands) if bands else None
        self.band_names_override = tuple(band_names) if band_names else None
        self.nodata_override = nodata
        self.crs = crs
        if res is not None and crs is None:
            raise InputError("`res` needs `crs` (reprojection target); set both, or neither for native grids")
        self.res = None if res is None else _res_pair(res)
        self.resampling = resampling
        self.on_error = on_error
        self.require_crs = require_crs
        self.check_cut_short = check_cut_short
        self.hints = {**CONFIG_HINTS, **(hints or {})}
        self.skipped: list[tuple[str, str]] = []
        # scene path -> (scale, offset) [C, 1, 1] of a `data stack` VRT read by its product's rule (_check_declared);
        # by path, not by index in `scenes`: a later filter or reorder of the scenes cannot give one another's rule
        self.scene_rules: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        self._sensor_arg = sensor
        self.index_cache = Path(index_cache).expanduser() if index_cache else None
        try:
            self.scenes: list[SceneInfo] = self._cached_index(progress)
        except Exception:
            self._warn_skipped()  # the files left out before another error stopped the index
            raise
        if not self.scenes:  # the error names each file and why: a warning for it too said the reason twice
            detail = "; ".join(f"{p}: {why}" for p, why in self.skipped[:3])
            more = f"; and {len(self.skipped) - 3} more" if len(self.skipped) > 3 else ""
            raise InputError(f"no readable raster among {plural(len(self.files), 'file')} ({detail}{more})")
        if warn_skipped:  # off for a caller that lists `skipped` itself (`geodino data index`): one line per file
            self._warn_skipped()
        first = self.scenes[0]
        self.band_names: tuple[str, ...] = first.band_names
        if not uniform:  # inspection only (`geodino data index`): mixed band counts, no sensor needed
            self.sensor = get_sensor(sensor) if sensor is not None else None  # type: ignore[assignment]
            return
        for s in self.scenes[1:]:
            if len(s.band_names) != len(first.band_names):
                raise InputError(
                    f"raster {s.path} gives {plural(len(s.band_names), 'band')} but {first.path} gives "
                    f"{len(first.band_names)}; "
                    f"select the same bands with {self.hints['bands']} or {self.hints['split']}"
                )
        # complex data (SAR SLC) cast to real loses its imaginary part without a word: refused before a read and
        # before asking for a sensor (`data index`, uniform=False, only lists files and keeps them)
        for dtype in dict.fromkeys(sc.dtype for sc in self.scenes):  # named by the first file of each dtype
            check_real(dtype, f"raster {next(sc.path for sc in self.scenes if sc.dtype == dtype)}")
        self.sensor = self._data_sensor(sensor)
        warn_qa_model_bands(self.band_names, self.hints)  # SCL/QA60/QA_PIXEL fed to the backbone: one line
        self._check_declared()
        for dtype in dict.fromkeys(sc.dtype for sc in self.scenes):  # one line for the first file of each dtype
            path = next(sc.path for sc in self.scenes if sc.dtype == dtype)
            check_bit_depth(path, dtype, self.sensor, kind="raster")

    # -- indexing (archive_index.py) -----------------------------------------------------------------------------
    # the moved methods are the functions themselves, not methods calling them: the stack depth that
    # `_warn_alpha_as_data`'s stacklevel counts on is unchanged, and patches of these methods still apply
    def _fail(self, path: str, why: str) -> None:
        """An unreadable file: the error under on_error=stop; under skip, noted in `skipped` (said once the index is
        built, by `_warn_skipped`, or in the error when no file was readable)."""
        if self.on_error == "stop":
            raise InputError(f"raster {path}: {why}{skip_hint(self.hints)}")
        self.skipped.append((path, why))

    def _warn_skipped(self) -> None:
        """One warning line per file the index left out, pointing at the code that built the archive."""
        for path, why in self.skipped:
            warnings.warn(f"skipping raster {path}: {why}", stacklevel=3)

    _index_key = archive_index._index_key  # what the index depends on: files and reading settings
    _cached_index = archive_index._cached_index  # `_index`, or the scenes stored in `index_cache`
    _index = archive_index._index  # each file's header read into a SceneInfo; `_fail` for the unreadable

    def _warn_alpha_as_data(self, path: str, alpha: Sequence[int], count: int, dtype: str, sensor: Sensor) -> None:
        """One warning: the file's alpha bands go in as data, the sensor having a band for each (RGBN as RGBA)."""
        one = len(alpha) == 1
        which = f"band {alpha[0]} is an alpha band" if one else f"bands {', '.join(map(str, alpha))} are alpha bands"
        pick = self.hints["bands"]
        warnings.warn(
            f"{which} (the validity mask) in raster {path} but sensor {sensor.name!r} has {plural(count, 'band')}, "
            f"so {'it goes' if one else 'they go'} in as data; {alpha_is_data(alpha, path, count, dtype)}"
            + (f", else read the other bands with {pick} and a {count - len(alpha)}-band sensor" if pick else ""),
            stacklevel=5,
        )

    # -- the data sensor and its DN rule (archive_sensor.py) --------------------------------------------------------
    _check_declared = archive_sensor._check_declared  # refuse a file's declared scale/offset other than the sensor's
    _sensor_rule = archive_sensor._sensor_rule
    _same_rule = staticmethod(archive_sensor._same_rule)
    _data_sensor = archive_sensor._data_sensor  # the sensor named, matched to the files' band names
    _canonical = archive_sensor._canonical  # read every scene in the sensor's band order
    _check_positions = archive_sensor._check_positions  # refuse names the sensor knows at another position

    # -- reading -------------------------------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.scenes)

    def dataset(self, i: int) -> Any:
        """The cached rasterio handle (or WarpedVRT) of scene `i` in this process."""
        s = self.scenes[i]
        return open_raster(s.path, crs=self.crs, res=self.res, resampling=self.resampling, nodata=s.nodata)

    def read(self, i: int, col: int, row: int, width: int, height: int) -> tuple[np.ndarray, np.ndarray]:
        """Raw window (data in file units [C,h,w], valid [h,w]) of scene `i`; may run past the edges."""
        s = self.scenes[i]
        try:
            return read_window(
                self.dataset(i), s.band_indexes, col, row, width, height, nodata=s.nodata, use_mask=s.has_mask
            )
        except Exception as exc:
            detail = str(exc).replace(" See previous exception for details.", "").rstrip(".") or type(exc).__name__
            fix = f"; {_REFETCH}{skip_hint(self.hints)}" if self.on_error == "stop" else ""  # skip: its callers say
            raise InputError(  # the window as embed's read error names it
                f"raster {s.path}: window read failed at rows {row}..{row + height}, columns {col}..{col + width} "
                f"({detail}; the file may be truncated or corrupt){fix}"
            ) from exc

    def check_values(self, i: int, data: np.ndarray, valid: np.ndarray) -> None:
        """Refuse 16-bit values above 255 in the pixels of scene `i` just read when the sensor scales 8-bit DN."""
        check_read_values(self.scenes[i].path, data, valid, self.sensor, setting=self.hints.get("sensor"))

    def sample(self, i: int, col: int, row: int, width: int, height: int) -> dict[str, Any]:
        """A sample dict with reflectance-scaled `image`, `valid`, `crs`, `transform` (of the window), `bands`."""
        data, valid = self.read(i, col, row, width, height)
        self.check_values(i, data, valid)
        s = self.scenes[i]
        rule = self.scene_rules.get(s.path)
        if rule is None:
            image = self.sensor.to_reflectance(data).astype(np.float32, copy=False)
        else:  # the scene's own rule (a `data stack` VRT of a Sentinel-2 product), into the sensor's units
            image = np.multiply(data, rule[0], dtype=np.float32)
            image += rule[1]
        return {
            "image": image,
            "valid": valid,
            "crs": s.crs,
            "transform": window_affine(s.transform, col, row),
            "bands": list(self.band_names),
            "path": s.path,
        }

    # -- helpers -------------------------------------------------------------------------------------------------
    def to_geodataframe(self, crs: str = "EPSG:4326") -> Any:
        """Footprints as a GeoDataFrame (torchgeo-style index: `filepath`, geometry in `crs`; see `footprint`); a
        raster that cannot be placed in `crs` (no CRS, a LOCAL_CS one) is left out with a warning naming it."""
        from geodino.data.footprints import footprint, footprint_table

        return footprint_table(self.scenes, crs, lambda s: footprint(s, crs))
