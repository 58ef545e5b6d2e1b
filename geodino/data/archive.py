"""Raster archives: a set of GeoTIFF/COG/VRT scenes indexed once (`RasterArchive`) and the tiles drawn from them
(`RasterSource`, a pure function of seed and sample index, in `geodino.data.raster_source`; re-exported here).

Why not torchgeo's `RasterDataset`, and how scenes are opened and windows read: see `geodino.data.rasters`.
`RasterArchive.to_geodataframe()` gives the torchgeo-style footprint index.
"""

from __future__ import annotations

import dataclasses
import os
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from geodino.data.archive_bands import (  # re-exported: band naming and reading order of the files
    CONFIG_HINTS,
    _file_band_names,
    _resolve_bands,
    _unnamed,
    canonical_scenes,
    skip_hint,
    warn_qa_model_bands,
)
from geodino.data.headers import gdal_read_errors, read_error, tiff_cut_short
from geodino.data.paths import RASTER_EXTS, resolve_paths
from geodino.data.raster_source import RasterSource  # re-exported: the tiles drawn from an archive
from geodino.data.rasters import (
    SceneInfo,
    alpha_bands,
    alpha_is_data,
    declared_scaling,
    format_rule,
    open_raster,
    read_dtype,
    read_window,
    target_grid,
    warp_nodata,
    window_affine,
)
from geodino.data.sensors import Sensor, check_bit_depth, check_read_values, get_sensor
from geodino.data.validity import check_nodata
from geodino.errors import InputError, one_line, plural

__all__ = ["RasterArchive", "RasterSource"]

_REFETCH = "re-download or re-copy it, or remove it"


def _yaml_value(values: Sequence[float]) -> str:
    """One value, or a YAML list when the bands differ (as a sensor YAML writes `scale:`/`offset:`)."""
    if len(set(values)) == 1:
        return f"{values[0]:g}"
    return "[" + ", ".join(f"{v:g}" for v in values) + "]"


class RasterArchive:
    """A set of raster scenes, indexed once (headers only), read as windows with a `valid` mask.

    Args:
        paths: folder (recursive), glob, `.txt` list, file, or a list of those.
        bands: band names to read (by the file's band descriptions, `band_names`, or the sensor's names/aliases).
        sensor: the data's sensor (name, YAML or Sensor): scale and default band names / nodata.
        band_names: names of the files' bands in order, when the files carry no band descriptions.
        nodata: overrides the files' nodata value (many S2 products declare none or the wrong one).
        crs, res: reproject every scene onto this CRS and resolution (WarpedVRT); default native grids.
        on_error: "stop" raises on an unreadable file or one without CRS; "skip" warns and leaves it out.
        index_cache: a JSON file holding the index; reused while the files (size, mtime) and settings match,
            so a large archive is indexed once.
        check_cut_short: also fail (under `on_error`) a local GeoTIFF whose pixel blocks run past its end (cut after
            an intact header: it opens without a GDAL warning; `headers.tiff_cut_short`, read from the handle the
            header scan has open). `geodino data index` sets it; curate leaves it off and reads such tiles as nodata.

    The DN -> physical rule a file declares in its header (GDAL scale/offset, read once per file while indexing)
    must be the sensor's: another is refused up front (`_check_declared`), naming the file and both rules.
    """

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
        self.res = None if res is None else ((float(res), float(res)) if np.isscalar(res) else tuple(map(float, res)))
        self.resampling = resampling
        self.on_error = on_error
        self.require_crs = require_crs
        self.check_cut_short = check_cut_short
        self.hints = {**CONFIG_HINTS, **(hints or {})}
        self.skipped: list[tuple[str, str]] = []
        self._sensor_arg = sensor
        self.index_cache = Path(index_cache).expanduser() if index_cache else None
        self.scenes: list[SceneInfo] = self._cached_index(progress)
        if not self.scenes:
            detail = "; ".join(f"{p}: {why}" for p, why in self.skipped[:3])
            raise InputError(f"no readable raster among {plural(len(self.files), 'file')} ({detail})")
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
        self.sensor = self._data_sensor(sensor)
        warn_qa_model_bands(self.band_names, self.hints)  # SCL/QA60/QA_PIXEL fed to the backbone: one line
        self._check_declared()
        for dtype in dict.fromkeys(sc.dtype for sc in self.scenes):  # one line for the first file of each dtype
            path = next(sc.path for sc in self.scenes if sc.dtype == dtype)
            check_bit_depth(path, dtype, self.sensor, kind="raster")

    # -- indexing ------------------------------------------------------------------------------------------------
    def _fail(self, path: str, why: str) -> None:
        if self.on_error == "stop":
            raise InputError(f"raster {path}: {why}{skip_hint(self.hints)}")
        self.skipped.append((path, why))
        warnings.warn(f"skipping raster {path}: {why}", stacklevel=3)

    def _index_key(self) -> dict[str, Any]:
        """What the index depends on: the files (path, size, mtime) and the reading settings."""
        files = []
        for f in self.files:
            try:
                st = os.stat(f)
                files.append([f, st.st_size, int(st.st_mtime_ns)])
            except OSError:
                files.append([f, -1, -1])
        sensor = self._sensor_arg.name if isinstance(self._sensor_arg, Sensor) else self._sensor_arg
        return {
            # 2: warped scenes without a nodata value have has_mask; 3: alpha bands left out; 4: declared scale/offset;
            # 5: a file's own mask kept beside its nodata value
            "version": 5,
            "files": files,
            "bands": self.requested_bands,
            "band_names": list(self.band_names_override or []),
            "nodata": self.nodata_override,
            "crs": self.crs,
            "res": list(self.res) if self.res else None,
            "sensor": str(sensor) if sensor is not None else None,
            **({"check_cut_short": True} if self.check_cut_short else {}),  # a key of its own: old caches stay valid
        }

    def _cached_index(self, progress: bool) -> list[SceneInfo]:
        """`_index`, or the scenes stored in `index_cache` when files and settings are unchanged."""
        import json

        if self.index_cache is None:
            return self._index(progress)
        key = self._index_key()
        if self.index_cache.is_file():
            try:
                stored = json.loads(self.index_cache.read_text())
                if stored.get("key") == key:
                    return [
                        SceneInfo(
                            **{
                                **d,
                                "transform": tuple(d["transform"]),
                                "band_names": tuple(d["band_names"]),
                                "band_indexes": tuple(d["band_indexes"]),
                                "scales": tuple(d.get("scales", ())),
                                "offsets": tuple(d.get("offsets", ())),
                            }
                        )
                        for d in stored["scenes"]
                    ]
            except (ValueError, KeyError, TypeError):
                pass  # unreadable or old cache: rebuild it
        scenes = self._index(progress)
        if not self.skipped:  # never cache an index that left files out: they may be fixed next time
            from geodino.io import atomic_path

            payload = {"key": key, "scenes": [dataclasses.asdict(sc) for sc in scenes]}
            with atomic_path(self.index_cache) as tmp:
                tmp.write_text(json.dumps(payload))
        return scenes

    def _index(self, progress: bool) -> list[SceneInfo]:
        import rasterio
        from tqdm import tqdm

        sensor = get_sensor(self._sensor_arg) if self._sensor_arg is not None else None
        scenes: list[SceneInfo] = []
        alpha_warned = False
        it = tqdm(self.files, desc="indexing rasters", unit="file", disable=not progress or len(self.files) < 200)
        for path in it:
            try:
                with warnings.catch_warnings(record=True) as held, gdal_read_errors(path) as broken:
                    warnings.simplefilter("always")
                    src = rasterio.open(path)
                if broken:  # a header cut short opens without its CRS/nodata: name the cause, not the symptom
                    src.close()  # and its "no geotransform" warning, a symptom, is not shown
                    self._fail(path, f"is truncated or corrupt (GDAL: {broken[0]}); {_REFETCH}")
                    continue
                for w in held:
                    warnings.warn(w.message, w.category, stacklevel=2)
                with src:
                    cut = tiff_cut_short(src, path) if self.check_cut_short else None
                    if cut is not None:
                        self._fail(
                            path,
                            f"is truncated or corrupt: the file has {cut[1]:,} bytes but its pixel blocks run to "
                            f"byte {cut[0]:,}; {_REFETCH}",
                        )
                        continue
                    if src.crs is None and self.require_crs:
                        self._fail(path, f"has no CRS; assign one (e.g. `gdal_edit.py -a_srs EPSG:... {path}`)")
                        continue
                    names = self.band_names_override or _file_band_names(src)
                    if self.band_names_override and len(self.band_names_override) != src.count:
                        raise InputError(
                            f"raster {path} has {plural(src.count, 'band')} but band_names lists "
                            f"{len(self.band_names_override)}"
                        )
                    if names is None and sensor is not None and sensor.n_bands == src.count:
                        names = sensor.bands
                    if names is None:
                        names = tuple(f"b{i}" for i in range(1, src.count + 1))
                    alpha = () if self.requested_bands else alpha_bands(src)
                    if alpha and not (sensor is not None and sensor.n_bands == src.count):
                        # the validity mask, not data (as data stats leaves it out): the other bands are read
                        idx = tuple(b for b in range(1, src.count + 1) if b not in alpha)
                        out_names = tuple(names[b - 1] for b in idx)
                    else:
                        out_names, idx = _resolve_bands(path, names, self.requested_bands, sensor, self.hints)
                        if alpha and not alpha_warned:  # the sensor has a band for it: data, said once
                            alpha_warned = True
                            self._warn_alpha_as_data(path, alpha, src.count, src.dtypes[0], sensor)
                    nodata = self.nodata_override
                    if nodata is not None:  # a value no pixel can hold matched nothing, silently
                        check_nodata(nodata, src.dtypes[0], f"raster {path}", self.hints.get("nodata") or "set nodata")
                    if nodata is None:
                        nodata = src.nodata
                    if nodata is None and sensor is not None:
                        nodata = sensor.nodata
                    mask_flags = src.mask_flag_enums[0] if src.count else ()
                    # the file's own mask, also beside a nodata value (a `data stack` VRT's coverage mask: GDAL
                    # reports per_dataset only for a real mask, never for one derived from nodata)
                    has_mask = any(f.name in ("per_dataset", "alpha") for f in mask_flags)
                    has_mask = has_mask or bool(alpha)
                    if self.crs is not None:
                        from rasterio.crs import CRS

                        # cells beyond the file: the nodata value, else the alpha band the WarpedVRT adds
                        has_mask = has_mask or warp_nodata(nodata, src.dtypes[0]) is None

                        dst = CRS.from_user_input(self.crs)
                        transform, width, height = target_grid(src, dst, self.res)
                        crs_wkt = dst.to_wkt()
                    else:
                        transform, width, height = src.transform, src.width, src.height
                        crs_wkt = src.crs.to_wkt() if src.crs else ""
                    scales, offsets = declared_scaling(src, idx) or ((), ())
                    scenes.append(
                        SceneInfo(
                            path=path,
                            crs=crs_wkt,
                            transform=tuple(transform)[:6],
                            width=int(width),
                            height=int(height),
                            count=src.count,
                            dtype=read_dtype(src, idx).name,
                            nodata=None if nodata is None else float(nodata),
                            band_names=out_names,
                            band_indexes=idx,
                            warped=self.crs is not None,
                            has_mask=has_mask,
                            scales=scales,
                            offsets=offsets,
                        )
                    )
            except InputError:
                raise
            except Exception as exc:  # GDAL raises many types for corrupt/unsupported files
                why = one_line(exc, 200).rstrip(".") if str(exc).strip() else ""
                cut = read_error(why, path)
                if type(exc).__name__ == "CRSError" and self.crs is not None:  # the target, not the file's bytes
                    why = "PROJ has no coordinate operation to it" if "coordinate operation" in why else why[:120]
                    self._fail(
                        path, f"cannot be reprojected onto crs {self.crs} ({why}); check `crs:` and the file's CRS"
                    )
                    continue
                self._fail(
                    path,
                    f"cannot be read: it is truncated or corrupt (GDAL: {cut}); {_REFETCH}"
                    if cut
                    else f"cannot be read ({type(exc).__name__}: {why}); check it with gdalinfo; {_REFETCH}",
                )
        return scenes

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

    def _check_declared(self) -> None:
        """Refuse files whose header declares a DN -> physical rule (GDAL scale/offset) other than the sensor's.

        Why not apply each file's rule: two statements disagree and nothing says which is right. The tags may be
        the right one (Sentinel-2 L2A of processing baseline >= 04.00 declares offset -0.1 for DN + 1000) or stale
        (pixels rescaled after the tags were written, a product in other units); the sensor's mean/std, and the
        export that records its scale, assume the sensor's rule. Either silent choice shifts the pixels of some
        scenes (0.1 reflectance in every band) in the pretraining data without a trace, so the user decides, told
        how: files of the declared rule read with a sensor that has it (a source of their own), or the tags
        cleared. A file that declares the sensor's own rule, or none (1/0), passes. Headers were read once while
        indexing (`SceneInfo.scales`/`offsets`), so this costs nothing per window."""
        want_s = self._sensor_rule(self.sensor.scale)
        want_o = self._sensor_rule(self.sensor.offset)
        bad = [sc for sc in self.scenes if sc.scales and not self._same_rule(sc, want_s, want_o)]
        if not bad:
            return
        first = bad[0]
        more = f" (and {plural(len(bad) - 1, 'other raster')} of {len(self.scenes)})" if len(bad) > 1 else ""
        rule = format_rule(first.scales, first.offsets)
        yaml = f"scale: {_yaml_value(first.scales)} and offset: {_yaml_value(first.offsets)}"
        via = f" ({self.hints['sensor']})" if self.hints.get("sensor") else ""
        split = f", {self.hints['split']} if other files follow the sensor's rule" if self.hints.get("split") else ""
        raise InputError(
            f"raster {first.path}{more} declares physical value = {rule} (GDAL scale/offset of bands "
            f"{', '.join(first.band_names)}) but sensor {self.sensor.name!r} reads {format_rule(want_s, want_o)}; if "
            f"the file's rule is right, read it with a sensor YAML of {yaml}{via}{split}; if its tags are wrong, "
            f"clear them (gdal_edit.py -scale 1 -offset 0 FILE, or for a read-only file a VRT: gdal_translate -of "
            f"VRT -a_scale 1 -a_offset 0 FILE FILE.vrt)"
        )

    def _sensor_rule(self, value: float | tuple[float, ...]) -> tuple[float, ...]:
        """The sensor's scale or offset, one value per band read."""
        n = len(self.band_names)
        return tuple(float(v) for v in value) if isinstance(value, tuple) else (float(value),) * n

    @staticmethod
    def _same_rule(sc: SceneInfo, scales: Sequence[float], offsets: Sequence[float]) -> bool:
        """Whether a scene's declared rule is the sensor's, up to the rounding of a float32 tag."""
        import math

        return all(math.isclose(a, b, rel_tol=1e-6) for a, b in zip(sc.scales, scales, strict=True)) and all(
            math.isclose(a, b, rel_tol=1e-6, abs_tol=1e-9) for a, b in zip(sc.offsets, offsets, strict=True)
        )

    def _data_sensor(self, sensor: str | Sensor | None) -> Sensor:
        n = len(self.band_names)
        if sensor is None:
            if n == 3 and self.scenes[0].dtype == "uint8":
                return get_sensor("sat493m")
            raise InputError(
                f"rasters like {self.scenes[0].path} ({plural(n, 'band')}, {self.scenes[0].dtype}) need a sensor: set "
                f"{self.hints['sensor']} to a built-in name or a YAML written by `geodino data stats`"
            )
        s = get_sensor(sensor)
        unnamed = _unnamed(self.band_names)
        # names are matched as `bands:` is (exact, alias, any case): "Blue, Green, Red, NIR" are naip's B, G, R, N in
        # that order; b1..bN (positions) only exactly (a data stats YAML of unnamed bands names them so)
        known = [
            s.resolve_band(b, strict=False) if not unnamed or b in s.bands or b in s.aliases else None
            for b in self.band_names
        ]
        if s.n_bands == n and all(known):
            return self._canonical(s)
        if s.n_bands == n:
            if not unnamed and not self.requested_bands:  # the file's own names (`bands:` picks are the user's)
                self._check_positions(s, known)
            return s
        if _unnamed(self.band_names) and not set(self.band_names) <= set(s.bands):
            # b1..bN only say where a band sits in the file, not what it is: matching them to a sensor by name
            # (b4 -> Sentinel-2 B04) would feed one band as another
            raise InputError(
                f"rasters like {self.scenes[0].path} give {plural(n, 'unnamed band')} ({', '.join(self.band_names)}) "
                f"but sensor "
                f"{s.name!r} has {s.n_bands} ({', '.join(s.bands)}); name the file's bands (band descriptions in the "
                f"file{', or ' + str(self.hints['band_names']) if self.hints['band_names'] else ''}) or use a sensor "
                f"with {plural(n, 'band')}"
            )
        try:
            return self._canonical(s)
        except InputError as exc:
            raise InputError(
                f"rasters give {plural(n, 'band')} ({', '.join(self.band_names)}) but sensor {s.name!r} has "
                f"{s.n_bands} ({', '.join(s.bands)}); select bands with {self.hints['bands']} or use a matching sensor"
            ) from exc

    def _canonical(self, s: Sensor) -> Sensor:
        """The data sensor of bands the sensor names: without `bands:` every scene is read in the sensor's band
        order (`canonical_scenes`), so files (and sources) storing them in other orders agree; `bands:` picks are
        read in the order given."""
        scenes = None if self.requested_bands else canonical_scenes(self.scenes, s, self.hints)
        if scenes is not None:
            self.scenes = scenes
            self.band_names = scenes[0].band_names
        return s.select(list(self.band_names))

    def _check_positions(self, s: Sensor, known: Sequence[str | None]) -> None:
        """Refuse band names the sensor knows at another position than the file's, when the sensor is taken
        positionally (not every name is the sensor's): its statistics would standardise one band as another."""
        moved = [
            (i, name, canon)
            for i, (name, canon) in enumerate(zip(self.band_names, known))
            if canon is not None and s.bands.index(canon) != i
        ]
        if not moved:
            return
        i, name, canon = moved[0]
        fix = " or ".join(h for h in (self.hints["band_names"], self.hints["bands"]) if h)
        raise InputError(
            f"rasters like {self.scenes[0].path} name their bands {', '.join(self.band_names)} but sensor {s.name!r} "
            f"has {', '.join(s.bands)}: file band {i + 1} {name!r} is the sensor's {canon!r} (band "
            f"{s.bands.index(canon) + 1}), so reading them in file order would mix them up; name every band as the "
            f"sensor does" + (f" ({fix})" if fix else "")
        )

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
        image = self.sensor.to_reflectance(data).astype(np.float32, copy=False)
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
