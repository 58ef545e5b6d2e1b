"""A raster archive's scene index: each file's header read once (CRS, grid, bands read, nodata, mask, declared
scale/offset) into a `SceneInfo`, a file that cannot be read failed or skipped under `on_error`, and the index kept
in `index_cache` while the files (size, mtime) and the reading settings are unchanged. `RasterArchive`'s
`_index_key`, `_cached_index` and `_index` are these functions (so patches of its methods still apply).

Within one process an index is also kept in memory (`_MEMO`, the last `MEMO_SIZE` indexes) under the same key plus
the settings that change which files are kept (`_memo_name`): pretraining builds its loader twice (a probe batch
read first, then the training loader), and each build read every file's header again, silently the second time (35
s for 20,000 chips on 2 cores). Only an index that left no file out is kept, and only while every file is older
than `io_stamps.RACY_NS` by its ctime (the change time every write sets; the mtime can be set to any time:
`cp -p`, `touch -d`, archive extraction) and mtime: a file changed that recently may change again unseen within its
timestamps' resolution. The memo's name also holds each file's ctime, so a rewrite dated back to the old mtime
(same size) is indexed again even after the window."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import time
import warnings
from collections import OrderedDict
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from geodino.data.archive_bands import _file_band_names, _resolve_bands
from geodino.data.colour_bands import guessed_colour_pick, only_colour_tags
from geodino.data.headers import gdal_read_errors, no_folder_listing, read_error, tiff_cut_short
from geodino.data.rasters import SceneInfo, alpha_bands, declared_scaling, read_dtype, target_grid, warp_nodata
from geodino.data.sensors import Sensor, get_sensor
from geodino.data.validity import check_nodata
from geodino.errors import InputError, one_line, plural

if TYPE_CHECKING:
    from pathlib import Path

    from geodino.data.archive import RasterArchive

_REFETCH = "re-download or re-copy it, or remove it"
MEMO_SIZE = 4  # indexes kept in memory per process: one per source of a run, not every archive ever built
_MEMO: OrderedDict[str, list[SceneInfo]] = OrderedDict()


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


def _memo_name(archive: RasterArchive, key: dict[str, Any], now_ns: int) -> str | None:
    """The in-memory index's name: a hash of `key`, each file's ctime (a rewrite dated back to its old mtime keeps
    `key`), the archive's full sensor (a YAML edited under the same name reads other band names and nodata) and
    `require_crs` (a file without CRS is kept only without it); None when a file did not stat or changed within
    `RACY_NS` of `now_ns` by its ctime (`io_stamps.changed_recently`; its index is then not kept)."""
    from geodino.io_stamps import changed_recently

    ctimes = []
    for f, size, _mtime in key["files"]:
        try:
            ctime = os.stat(f).st_ctime_ns
        except OSError:
            return None
        if size < 0 or changed_recently((ctime,), now_ns):
            return None
        ctimes.append(ctime)
    sensor = repr(get_sensor(archive._sensor_arg)) if archive._sensor_arg is not None else None
    text = json.dumps(
        {**key, "ctimes": ctimes, "sensor_read": sensor, "require_crs": archive.require_crs}, sort_keys=True
    )
    return hashlib.sha256(text.encode()).hexdigest()


def _cached_index(archive: RasterArchive, progress: bool) -> list[SceneInfo]:
    """The scenes stored in `index_cache` (or its file of these settings, `_settings_file`), else those this process
    indexed under the same key (`_remembered`), else `_index`, when files and settings are unchanged; a new index is
    stored where it is looked for."""
    key = archive._index_key()
    stored = _stored(archive, key) if archive.index_cache is not None else None
    if stored is not None:
        return stored
    scenes = _remembered(archive, key, progress)
    if archive.index_cache is not None and not archive.skipped:  # never cache an index that left files out: they
        from geodino.io import atomic_path  # may be fixed next time

        payload = {"key": key, "scenes": [dataclasses.asdict(sc) for sc in scenes]}
        with atomic_path(_index_file(archive, key)) as tmp:
            tmp.write_text(json.dumps(payload))
    return scenes


def _settings(key: Any) -> dict[str, Any] | None:
    """The reading settings of an index key: all but its files and its version (a changed file or an index of an
    older version is replaced in place); None for what is no key."""
    return {k: v for k, v in key.items() if k not in ("files", "version")} if isinstance(key, dict) else None


def _settings_file(cache: Path, key: dict[str, Any]) -> Path:
    """`INDEX.<12 hex of the settings>.json` beside `index_cache` INDEX.json: the index of other settings than those
    `index_cache` holds (two sources or commands sharing one path: other bands, nodata, sensor, CRS). With one file,
    runs alternating two settings rebuilt the index at every start, each overwriting the other's."""
    digest = hashlib.sha256(json.dumps(_settings(key), sort_keys=True).encode()).hexdigest()[:12]
    return cache.with_name(f"{cache.stem}.{digest}{cache.suffix}")


def _index_file(archive: RasterArchive, key: dict[str, Any]) -> Path:
    """Where the index of `key` is kept: `index_cache`, unless it holds the index of other settings
    (`_settings_file`)."""
    assert archive.index_cache is not None
    held = _settings(_read(archive.index_cache).get("key"))
    return archive.index_cache if held in (None, _settings(key)) else _settings_file(archive.index_cache, key)


def _read(path: Path) -> dict[str, Any]:
    """An index file's JSON; {} for no file, or an unreadable (removed since is_file, by a user or another run) one."""
    if not path.is_file():
        return {}
    try:
        stored = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return stored if isinstance(stored, dict) else {}


def _remembered(archive: RasterArchive, key: dict[str, Any], progress: bool) -> list[SceneInfo]:
    """The scenes of `_MEMO` under this key, else `_index` (kept in `_MEMO` when it left no file out)."""
    memo = _memo_name(archive, key, time.time_ns())
    if memo is not None and memo in _MEMO:
        _MEMO.move_to_end(memo)
        return list(_MEMO[memo])
    scenes = archive._index(progress)
    if memo is not None and not archive.skipped:
        _MEMO[memo] = list(scenes)
        while len(_MEMO) > MEMO_SIZE:
            _MEMO.popitem(last=False)
    return scenes


def _stored(archive: RasterArchive, key: dict[str, Any]) -> list[SceneInfo] | None:
    """The scenes `index_cache`, or where it holds other settings' index their file beside it (`_settings_file`),
    holds under `key`, or None (no file, another key, or an unreadable or old one)."""
    assert archive.index_cache is not None
    stored = _read(archive.index_cache)
    if _settings(stored.get("key")) not in (None, _settings(key)):  # another source's or command's index
        stored = _read(_settings_file(archive.index_cache, key))
    if stored.get("key") != key:
        return None
    try:
        one = _sharer()
        return [
            SceneInfo(
                **{
                    **d,
                    "crs": one("crs", d["crs"]),
                    "dtype": one("dtype", d["dtype"]),
                    "transform": tuple(d["transform"]),
                    "band_names": one("band_names", tuple(d["band_names"])),
                    "band_indexes": one("band_indexes", tuple(d["band_indexes"])),
                    "scales": one("scales", tuple(d.get("scales", ()))),
                    "offsets": one("offsets", tuple(d.get("offsets", ()))),
                }
            )
            for d in stored["scenes"]
        ]
    except (ValueError, KeyError, TypeError):
        return None  # an old or damaged cache: rebuild it


def _sharer() -> Callable[[str, Any], Any]:
    """`one(field, value)`: the first value of `field` equal to `value` met by this `one`, so the scenes of an index
    share one CRS WKT, dtype name and band tuples instead of holding a copy each (the WKT, ~650 bytes, was half of a
    scene's ~1.4 KB: 0.8 GB of a 590,000-chip archive's index, in the loader and each of its workers). By field:
    scales (1.0,) equal band indexes (1,), and must stay floats."""
    seen: dict[tuple[str, Any], Any] = {}
    return lambda field, value: seen.setdefault((field, value), value)


def _index(archive: RasterArchive, progress: bool) -> list[SceneInfo]:
    import rasterio

    from geodino.progress import progress_bar

    sensor = get_sensor(archive._sensor_arg) if archive._sensor_arg is not None else None
    scenes: list[SceneInfo] = []
    one = _sharer()
    alpha_warned = False
    it = progress_bar(
        archive.files, desc="indexing rasters", unit="file", disable=not progress or len(archive.files) < 200
    )
    with no_folder_listing():
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
                    own = None if archive.band_names_override else _file_band_names(src, sensor)
                    names = archive.band_names_override or own
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
                        tagged = only_colour_tags(src, own)  # GDAL's RGB tags alone: a refusal says so
                        out_names, idx = _resolve_bands(
                            path, names, archive.requested_bands, sensor, archive.hints, tagged=tagged,
                            guess=guessed_colour_pick(src, own, sensor),
                        )  # fmt: skip
                        # alpha here means the sensor has a band for it (the branch above takes the rest): data,
                        # said once
                        if alpha and sensor is not None and not alpha_warned:
                            alpha_warned = True
                            archive._warn_alpha_as_data(path, alpha, src.count, src.dtypes[0], sensor)
                    nodata = archive.nodata_override
                    if nodata is not None:  # a value no pixel can hold matched nothing, silently
                        check_nodata(
                            nodata, src.dtypes[0], f"raster {path}", archive.hints.get("nodata") or "set nodata"
                        )
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
                            crs=one("crs", crs_wkt),
                            transform=tuple(transform)[:6],
                            width=int(width),
                            height=int(height),
                            count=src.count,
                            dtype=one("dtype", read_dtype(src, idx).name),
                            nodata=None if nodata is None else float(nodata),
                            band_names=one("band_names", tuple(out_names)),
                            band_indexes=one("band_indexes", tuple(idx)),
                            warped=archive.crs is not None,
                            has_mask=has_mask,
                            scales=one("scales", tuple(scales)),
                            offsets=one("offsets", tuple(offsets)),
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
