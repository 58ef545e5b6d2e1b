"""A raster archive's scene index: each file's header read once (CRS, grid, bands read, nodata, mask, declared
scale/offset) into a `SceneInfo`, a file that cannot be read failed or skipped under `on_error`, and the index kept
in `index_cache` while the files (size, mtime) and the reading settings are unchanged. `RasterArchive`'s
`_index_key`, `_cached_index` and `_index` are these functions (so patches of its methods still apply)."""

from __future__ import annotations

import dataclasses
import os
import warnings
from typing import TYPE_CHECKING, Any

from geodino.data.archive_bands import _file_band_names, _resolve_bands
from geodino.data.headers import gdal_read_errors, read_error, tiff_cut_short
from geodino.data.rasters import SceneInfo, alpha_bands, declared_scaling, read_dtype, target_grid, warp_nodata
from geodino.data.sensors import Sensor, get_sensor
from geodino.data.validity import check_nodata
from geodino.errors import InputError, one_line, plural

if TYPE_CHECKING:
    from geodino.data.archive import RasterArchive

_REFETCH = "re-download or re-copy it, or remove it"


def _index_key(archive: RasterArchive) -> dict[str, Any]:
    """What the index depends on: the files (path, size, mtime) and the reading settings."""
    files = []
    for f in archive.files:
        try:
            st = os.stat(f)
            files.append([f, st.st_size, int(st.st_mtime_ns)])
        except OSError:
            files.append([f, -1, -1])
    sensor = archive._sensor_arg.name if isinstance(archive._sensor_arg, Sensor) else archive._sensor_arg
    return {
        # 2: warped scenes without a nodata value have has_mask; 3: alpha bands left out; 4: declared scale/offset;
        # 5: a file's own mask kept beside its nodata value; 6: an RGB file's bands named red, green, blue
        # (`colour_bands`; b1..bN before)
        "version": 6,
        "files": files,
        "bands": archive.requested_bands,
        "band_names": list(archive.band_names_override or []),
        "nodata": archive.nodata_override,
        "crs": archive.crs,
        "res": list(archive.res) if archive.res else None,
        "sensor": str(sensor) if sensor is not None else None,
        **({"check_cut_short": True} if archive.check_cut_short else {}),  # a key of its own: old caches stay valid
    }


def _cached_index(archive: RasterArchive, progress: bool) -> list[SceneInfo]:
    """`_index`, or the scenes stored in `index_cache` when files and settings are unchanged."""
    import json

    if archive.index_cache is None:
        return archive._index(progress)
    key = archive._index_key()
    if archive.index_cache.is_file():
        try:
            stored = json.loads(archive.index_cache.read_text())
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
    scenes = archive._index(progress)
    if not archive.skipped:  # never cache an index that left files out: they may be fixed next time
        from geodino.io import atomic_path

        payload = {"key": key, "scenes": [dataclasses.asdict(sc) for sc in scenes]}
        with atomic_path(archive.index_cache) as tmp:
            tmp.write_text(json.dumps(payload))
    return scenes


def _index(archive: RasterArchive, progress: bool) -> list[SceneInfo]:
    import rasterio

    from geodino.progress import progress_bar

    sensor = get_sensor(archive._sensor_arg) if archive._sensor_arg is not None else None
    scenes: list[SceneInfo] = []
    alpha_warned = False
    it = progress_bar(
        archive.files, desc="indexing rasters", unit="file", disable=not progress or len(archive.files) < 200
    )
    for path in it:
        try:
            with warnings.catch_warnings(record=True) as held, gdal_read_errors(path) as broken:
                warnings.simplefilter("always")
                src = rasterio.open(path)
            if broken:  # a header cut short opens without its CRS/nodata: name the cause, not the symptom
                src.close()  # and its "no geotransform" warning, a symptom, is not shown
                archive._fail(path, f"is truncated or corrupt (GDAL: {broken[0]}); {_REFETCH}")
                continue
            with src:
                cut = tiff_cut_short(src, path) if archive.check_cut_short else None
                if cut is not None:
                    archive._fail(
                        path,
                        f"is truncated or corrupt: the file has {cut[1]:,} bytes but its pixel blocks run to "
                        f"byte {cut[0]:,}; {_REFETCH}",
                    )
                    continue
                if src.crs is None and archive.require_crs:
                    archive._fail(path, f"has no CRS; assign one (e.g. `gdal_edit.py -a_srs EPSG:... {path}`)")
                    continue
                for w in held:  # a file kept: GDAL's notes on opening it (one left out is named once, by _fail)
                    warnings.warn(w.message, w.category, stacklevel=2)
                names = archive.band_names_override or _file_band_names(src, sensor)
                if archive.band_names_override and len(archive.band_names_override) != src.count:
                    raise InputError(
                        f"raster {path} has {plural(src.count, 'band')} but band_names lists "
                        f"{len(archive.band_names_override)}"
                    )
                if names is None and sensor is not None and sensor.n_bands == src.count:
                    names = sensor.bands
                if names is None:
                    names = tuple(f"b{i}" for i in range(1, src.count + 1))
                alpha = () if archive.requested_bands else alpha_bands(src)
                if alpha and not (sensor is not None and sensor.n_bands == src.count):
                    # the validity mask, not data (as data stats leaves it out): the other bands are read
                    idx = tuple(b for b in range(1, src.count + 1) if b not in alpha)
                    out_names = tuple(names[b - 1] for b in idx)
                else:
                    out_names, idx = _resolve_bands(path, names, archive.requested_bands, sensor, archive.hints)
                    # alpha here means the sensor has a band for it (the branch above takes the rest): data, said once
                    if alpha and sensor is not None and not alpha_warned:
                        alpha_warned = True
                        archive._warn_alpha_as_data(path, alpha, src.count, src.dtypes[0], sensor)
                nodata = archive.nodata_override
                if nodata is not None:  # a value no pixel can hold matched nothing, silently
                    check_nodata(nodata, src.dtypes[0], f"raster {path}", archive.hints.get("nodata") or "set nodata")
                if nodata is None:
                    nodata = src.nodata
                if nodata is None and sensor is not None:
                    nodata = sensor.nodata
                mask_flags = src.mask_flag_enums[0] if src.count else ()
                # the file's own mask, also beside a nodata value (a `data stack` VRT's coverage mask: GDAL
                # reports per_dataset only for a real mask, never for one derived from nodata)
                has_mask = any(f.name in ("per_dataset", "alpha") for f in mask_flags)
                has_mask = has_mask or bool(alpha)
                if archive.crs is not None:
                    from rasterio.crs import CRS

                    # cells beyond the file: the nodata value, else the alpha band the WarpedVRT adds
                    has_mask = has_mask or warp_nodata(nodata, src.dtypes[0]) is None

                    dst = CRS.from_user_input(archive.crs)
                    transform, width, height = target_grid(src, dst, archive.res)
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
                        warped=archive.crs is not None,
                        has_mask=has_mask,
                        scales=scales,
                        offsets=offsets,
                    )
                )
        except InputError:
            raise
        except Exception as exc:  # GDAL raises many types for corrupt/unsupported files
            why = one_line(exc, 200).rstrip(".") if str(exc).strip() else ""
            truncated = read_error(why, path)  # GDAL's words when part of the file did not read
            if type(exc).__name__ == "CRSError" and archive.crs is not None:  # the target, not the file's bytes
                why = "PROJ has no coordinate operation to it" if "coordinate operation" in why else why[:120]
                archive._fail(
                    path, f"cannot be reprojected onto crs {archive.crs} ({why}); check `crs:` and the file's CRS"
                )
                continue
            archive._fail(
                path,
                f"cannot be read: it is truncated or corrupt (GDAL: {truncated}); {_REFETCH}"
                if truncated
                else f"cannot be read ({type(exc).__name__}: {why}); check it with gdalinfo; {_REFETCH}",
            )
    return scenes
