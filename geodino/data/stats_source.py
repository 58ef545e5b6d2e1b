"""The source `geodino data stats` reads, built and checked before any pixel is read: its arguments normalised,
the first raster's alpha bands left out (and said once), the archive, datacube or image source built with the
sensor read with, and each scene's data type checked against complex data and --nodata."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from geodino.data.sensors import Sensor
from geodino.data.stats_first import first_bands as _first_bands
from geodino.data.stats_first import first_named as _first_named
from geodino.data.stats_windows import check_tile_size
from geodino.errors import InputError

STATS_HINTS = {
    "bands": "--bands",
    "band_names": "--band-names",
    "nodata": "pass a --nodata (nodata= in Python)",
    "sensor": "--sensor",
    "skip": "pass --on-error skip",
    "split": "run data stats on each kind separately",
}
"""How raster messages name the settings: data stats' flags."""


def _checked_arguments(
    type: str, bands: Any, band_names: Any, samples: Any, tile_size: Any, seed: Any, scale: Any = None
) -> tuple[list[str] | None, list[str] | None, int, int, int]:
    """(bands, band_names, samples, tile_size, seed) checked and normalised, and `scale` checked (a DN -> reflectance
    factor <= 0 would write statistics of negated or zeroed pixels), before any file is read."""
    if scale is not None and not (np.isfinite(np.asarray(scale, float)).all() and (np.asarray(scale) > 0).all()):
        raise InputError(
            f"--scale {f'{float(scale):g}' if np.ndim(scale) == 0 else scale} (scale= in Python) must be a positive DN "
            "-> reflectance "
            "factor (e.g. 0.0001 for Sentinel-2 DN); pass one, or leave --scale out to use the files' declared scale, "
            "else the dtype rule (uint8 / 255, uint16 and int16 / 10000, floats as given)"
        )
    from geodino.config import whole_number
    from geodino.data.config import band_list, check_source_type

    check_source_type(type, "type")  # before any file is read: a typo would otherwise be read as image folders
    bands, band_names = band_list(bands, "bands"), band_list(band_names, "band_names")  # "red,nir" is two bands
    check_tile_size(type, tile_size)
    samples, tile_size, seed = (
        whole_number(samples, "samples", 256),
        whole_number(256 if tile_size is None else tile_size, "tile_size", 256),
        whole_number(seed, "seed", 0),
    )
    if samples <= 0:
        raise InputError(f"samples must be > 0, got {samples}")
    if seed < 0:  # numpy's generator refused it with a traceback
        raise InputError(f"seed={seed} (--seed) must be a whole number >= 0")
    return bands, band_names, samples, tile_size, seed


def _stats_source(
    paths: Any,
    type: str,
    sensor: str | None,
    bands: Sequence[str] | None,
    band_names: Sequence[str] | None,
    base: Sensor,
    nodata: float | None,
    tile_size: int,
    on_error: str,
) -> Any:
    """The source the statistics read (every tile kept, whatever its nodata), checked before any pixel is read."""
    from geodino.data.loaders import SourceConfig, build_source

    cfg = SourceConfig(
        name="stats",
        type=type,
        paths=[str(p) for p in ([paths] if isinstance(paths, (str, Path)) else paths)],
        sensor=None,
        bands=list(bands) if bands else None,
        # rasters name their own bands (descriptions, else b1..bN, as the neutral sensor does): a folder of mixed
        # band counts then fails on the archive's clear message, not on band_names the user never gave
        # (datacubes likewise: their band coordinate, else the neutral sensor's b1..bN)
        band_names=list(band_names)
        if band_names
        else (list(base.bands) if sensor is None and type not in ("raster", "cube") else None),
        nodata=nodata,
        tile_size=tile_size,
        max_nodata_fraction=1.0,
        on_error=on_error,
    )
    source = _build_with_sensor(cfg, base, build_source)
    _check_scenes(source, type, nodata)  # before any pixel is read
    return source


def _warn_alpha(paths: Any, type: str, alpha: tuple[int, ...]) -> None:
    """Say once that the first raster's alpha bands are left out of the statistics, and how to include them."""
    import warnings

    from geodino.data.rasters import alpha_is_data

    one, first = len(alpha) == 1, _first_named(paths, type).rstrip(",")
    which = f"band {alpha[0]} is an alpha band" if one else f"bands {', '.join(map(str, alpha))} are alpha bands"
    count, _, dtype, _ = _first_bands(paths)
    warnings.warn(
        f"{which} (the validity mask) in {first}: left out of the statistics, its mask applied; name the bands "
        f"with --bands (bands= in Python) to include {'it' if one else 'them'}, or "
        f"{alpha_is_data(alpha, first.split(' ')[-1], count, dtype)}",
        stacklevel=3,
    )


def _alpha_left_out(paths: Any, type: str, bands: Sequence[str] | None) -> tuple[int, ...]:
    """The first raster's alpha bands (RGBA: band 4), which the statistics leave out unless the user chose the
    bands (--bands)."""
    if type != "raster" or bands:
        return ()
    return _first_bands(paths)[3]


def _without_alpha(
    base: Sensor, alpha: tuple[int, ...], sensor: str | None, band_names: Sequence[str] | None
) -> tuple[list[str], list[str] | None]:
    """(bands to read, names of every file band) that leave the alpha bands out."""
    if band_names:
        return [n for i, n in enumerate(band_names, start=1) if i not in alpha], list(band_names)
    if sensor is None:  # the neutral sensor holds the other bands' names already; the archive names the file's
        return list(base.bands), None
    names, data = [], iter(base.bands)
    for i in range(1, len(base.bands) + len(alpha) + 1):
        names.append(f"alpha{i}" if i in alpha else next(data))
    return list(base.bands), names


def _check_scenes(source: Any, type: str, nodata: float | None) -> None:
    """Refuse complex data and a --nodata the data type cannot hold (300 or 2.5 for uint8), naming the file, before
    any window is read (one line, not a failed read blamed on the file)."""
    from geodino.data.validity import check_nodata, check_real

    archive = getattr(source, "archive", None)
    if archive is not None:
        scenes = [(sc.path, sc.dtype) for sc in archive.scenes]
    elif type == "cube":
        scenes = [(sc.path, str(sc.array.dtype)) for sc in source.scenes]
    else:
        return
    what = "raster" if archive is not None else "datacube"
    for path, dtype in dict.fromkeys(scenes):
        check_real(dtype, f"{what} {path}")
        check_nodata(nodata, dtype, f"{what} {path}")


def _build_with_sensor(cfg: Any, sensor: Sensor, build_source: Any) -> Any:
    """build_source with a Sensor object (SourceConfig only holds names/paths)."""
    from geodino.data import loaders

    if cfg.type == "raster":
        from types import SimpleNamespace

        from geodino.data.archive import RasterArchive

        archive = RasterArchive(
            cfg.paths,
            bands=cfg.bands,
            sensor=sensor,
            band_names=cfg.band_names,
            nodata=cfg.nodata,
            on_error=cfg.on_error or "stop",
            hints=STATS_HINTS,
        )
        # read by grid windows (clipped at the edges, so rasters smaller than a tile are fine): no tile sampler
        return SimpleNamespace(archive=archive, sensor=archive.sensor, band_names=list(archive.band_names))
    if cfg.type == "cube":
        from geodino.data.cubes import CubeSource

        # read by grid windows (`CubeSource.read`, clipped at the edges): no tile sampler
        return CubeSource(
            cfg.paths,
            sensor=sensor,
            bands=cfg.bands,
            band_names=cfg.band_names,
            nodata=cfg.nodata,
            tile_size=None,
            name=cfg.name,
            allow_no_crs=True,  # statistics need no CRS
        )
    cfg = dataclasses.replace(cfg, sensor=None)
    src = loaders.build_source(cfg, shuffle=False)  # image k is sample k: `read_images` reads each once
    src.sensor = sensor if sensor.n_bands == len(src.band_names) else src.sensor
    src.max_tries, src.replace = 1, False  # a corrupt image is left out (said once by the source), not replaced
    src.skip_hint = STATS_HINTS["skip"]
    return src
