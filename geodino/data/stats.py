"""Per-band statistics of an archive, written as a sensor YAML (`geodino data stats`).

Streaming and nodata-aware: tiles are read one at a time and merged with Chan's parallel mean/variance update in
float64 over the valid pixels only, so memory stays constant whatever the archive size and nodata borders do not
bias the statistics.

Unbiased for rasters and datacubes: every scene (every time step of a cube) is cut into a grid of non-overlapping
windows (the last row/column clipped at the edge). When the grid has at most `samples` windows all are read and
the statistics are exact over every valid pixel; otherwise `samples` windows are drawn uniformly without
replacement, so every pixel has the same chance to be counted (random overlapping windows over-weight the centre
of a small scene: 11-16 % off on a 349x352 Landsat scene). Image folders and tar shards are read whole, each image
once: all of them when there are at most `samples`, else `samples` drawn uniformly without replacement (a corrupt one
is left out, said once, not replaced by a random other); `tile_size` does not apply to them.

The grid windows and their reader are in `geodino.data.stats_windows`; the uniform pixel sample the percentiles
come from in `geodino.data.pixel_sample`; the running mean/variance and the check of its result in
`geodino.data.running_stats`; the first datacube's bands and declared rule in `geodino.data.stats_cube`; the
source read, built and checked before any pixel is read, in `geodino.data.stats_source`; the histograms of `--plot`
in `geodino.data.stats_plot`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from geodino.data.archive_sensor import stack_rule_counts
from geodino.data.band_names import known_rgb_bands, rgb_bands_among
from geodino.data.colour_bands import RGB
from geodino.data.pixel_sample import PERCENTILE_PIXELS, UniformPixelSample, percentiles
from geodino.data.running_stats import MIN_VALID_PIXELS, STD_FLOOR, RunningStats, warn_degenerate  # re-exported
from geodino.data.sensors import Sensor, get_sensor, save_sensor_yaml
from geodino.data.stats_cube import cube_band_variables as _cube_band_variables
from geodino.data.stats_cube import first_cube_bands as _first_cube_bands
from geodino.data.stats_cube import one_or_per_band as _one_or_per_band
from geodino.data.stats_first import first_bands as _first_bands
from geodino.data.stats_first import first_declared as _first_declared
from geodino.data.stats_first import first_named as _first_named
from geodino.data.stats_first import readable_from
from geodino.data.stats_plot import plot_stats
from geodino.data.stats_source import (
    STATS_HINTS,
    _alpha_left_out,
    _checked_arguments,
    _stats_source,
    _warn_alpha,
    _without_alpha,
)
from geodino.data.stats_windows import grid_windows, image_picks, read_images, read_windows
from geodino.errors import InputError, plural

__all__ = ["MIN_VALID_PIXELS", "STD_FLOOR", "RunningStats", "compute_stats", "plot_stats", "write_stats"]


def _base_sensor(
    paths: Any,
    type: str,
    sensor: str | None,
    band_names: Sequence[str] | None,
    scale: float | None,
    offset: float | None,
    nodata: float | None,
    name: str | None,
    alpha: tuple[int, ...] = (),
    bands: Sequence[str] | None = None,
) -> Sensor:
    """The sensor the tiles are read with: the named one (its scale and offset each overridden when given), else a
    neutral one (mean 0, std 1) with the files' (or the first datacube's) band names and, for whichever of scale and
    offset is not given, what the first file declares (GDAL scale/offset tags, CF scale_factor/add_offset), else the
    dtype rule's scale (`_dtype_scale`) and offset 0;
    `alpha`: the first raster's alpha bands, left out of the statistics; `bands`: the datacube bands read (when
    `band_names` does not name every band of the store)."""
    base: Sensor | None = get_sensor(sensor) if sensor else None
    if base is None:
        if type in ("raster", "cube"):
            # element 3: the raster's alpha bands, or the datacube's declared (scales, offsets) or None
            first: tuple[Any, ...] = (
                _first_bands(paths) if type == "raster" else _first_cube_bands(paths, None if band_names else bands)
            )
            count, desc, dtype = first[:3]
            names = tuple(band_names) if band_names else desc or tuple(f"b{i}" for i in range(1, count + 1))
            if band_names and len(band_names) != count:
                raise InputError(
                    f"band_names lists {plural(len(band_names), 'name')} but {_first_named(paths, type)} has "
                    f"{plural(count, 'band')}"
                )
            names = tuple(n for i, n in enumerate(names, start=1) if i not in alpha)
            count -= len(alpha)
        else:
            count, names, dtype = 3, ("R", "G", "B"), "uint8"
        unset = scale is None or offset is None
        declared: tuple[Any, Any] | None = _first_declared(paths, alpha) if type == "raster" and unset else None
        if type == "cube" and unset and first[3] is not None:  # the store's CF scale_factor/add_offset
            declared = (_one_or_per_band(first[3][0]), _one_or_per_band(first[3][1]))
        # the files' own scale/offset (the source refuses files that declare another, bar `data stack` VRTs)
        if declared is not None:
            scale = declared[0] if scale is None else scale
            offset = declared[1] if offset is None else offset
        if scale is None:  # the dtype rule every reader applies (uint16 / 10000): not DN kept as reflectance
            scale = _dtype_scale(dtype, paths, type)
        offset = 0.0 if offset is None else offset
        # a file whose colour interpretation names them (colour_bands), else band names a built-in sensor knows
        # (Sentinel-2 B02..B12): its RGB bands, for previews
        rgb = RGB if set(RGB) <= set(names) else known_rgb_bands(names)
        base = Sensor(
            name or "custom",
            names,
            scale,
            (0.0,) * count,
            (1.0,) * count,
            count == 3,
            nodata=nodata,
            offset=offset,
            rgb_bands=rgb,
        )
    else:
        if type == "raster" and not band_names:  # a band-count mismatch fails now, not after reading every tile
            first = _first_bands(paths)
            count = first[0] - len(alpha)
            descs = [d for i, d in enumerate(first[1] or (), start=1) if i not in alpha]
            # bands the file names as the sensor does (descriptions B02 B03 B04 of sentinel2_l2a) are matched by name,
            # as a training source matches them; only a file without such names needs --band-names
            named = bool(descs) and all(base.resolve_band(d, strict=False) for d in descs)
            if count != base.n_bands and not named:
                alpha_note = f" besides alpha band {', '.join(map(str, alpha))} (the validity mask)" if alpha else ""
                sensor_names = iter(base.bands[:count])
                example = [
                    f"alpha{i}" if i in alpha else next(sensor_names, f"b{i}") for i in range(1, count + len(alpha) + 1)
                ]
                raise InputError(
                    f"{_first_named(paths, type)} has {plural(count, 'band')}{alpha_note} but sensor {base.name!r} has "
                    f"{base.n_bands} ({' '.join(base.bands)}); name the files' bands in order with --band-names (e.g. "
                    f"--band-names {' '.join(example)}; band_names= in Python), or leave out --sensor (sensor= in "
                    "Python)"
                )
        if scale is not None:  # each of --scale / --offset replaces the sensor's own; the other is kept
            base = dataclasses.replace(base, scale=scale)
        if offset is not None:
            base = dataclasses.replace(base, offset=offset)
    return base


def _dtype_scale(dtype: str, paths: Any, type: str) -> float:
    """The DN -> reflectance factor of data of `dtype` that declares no rule: the dtype rule embed, the probes and
    `FrozenBackbone.preprocess` read (`geodino.data.dtype_rule`: uint8 / 255, uint16 and int16 / 10000, floats as
    given). Scale 1 for 16-bit DN kept them as reflectance: the YAML's mean/std agreed with it, but every step that
    takes pixels as reflectance did not (the RGB colour jitter clamps to 0..1, so each crop of a 3-band uint16
    archive came out one flat colour; the `bright` cloud rule of curate; a backbone normalised for reflectance). A
    type without a default (int8, 32/64-bit integers) is refused naming --scale; complex data is left to the
    source's `check_real` line (rasterio's complex_int16 has no numpy dtype)."""
    from geodino.data.dtype_rule import dtype_divisor

    if "complex" in str(dtype):
        return 1.0
    fix = (
        "if it is imagery, pass --scale FACTOR, its DN -> reflectance factor (--scale 1 reads the values as they are; "
    )
    fix += "scale= in Python), or --sensor NAME"
    return 1 / dtype_divisor(dtype, _first_named(paths, type) if type in ("raster", "cube") else "the images", fix)


def compute_stats(
    paths: str | Sequence[str],
    *,
    type: str = "raster",
    sensor: str | None = None,
    bands: Sequence[str] | None = None,
    band_names: Sequence[str] | None = None,
    scale: float | None = None,
    offset: float | None = None,
    nodata: float | None = None,
    samples: int = 256,
    tile_size: int | None = None,
    seed: int = 0,
    on_error: str = "skip",
    name: str | None = None,
    progress: bool = True,
) -> tuple[Sensor, dict[str, Any]]:
    """Per-band mean/std (reflectance units) over at most `samples` grid windows of `tile_size` px (rasters,
    datacubes; default 256) or at most `samples` whole images, each once (image folders, tar shards); returns
    (sensor, provenance)."""
    args = _checked_arguments(type, bands, band_names, samples, tile_size, seed, scale)
    bands, band_names, samples, tile_size, seed = args
    if offset is not None and not np.isfinite(float(offset)):  # NaN made every pixel invalid (no valid pixel)
        raise InputError(f"--offset {offset} (offset= in Python) must be a finite number added after the scale")
    heads = readable_from(paths, type, on_error)  # the first raster's header: under skip, the first intact one
    if type == "cube":  # a store of one variable per band: every variable, by name
        bands = _cube_band_variables(paths, bands, band_names, sensor)
    alpha = _alpha_left_out(heads, type, bands)
    base = _base_sensor(heads, type, sensor, band_names, scale, offset, nodata, name, alpha, bands)
    if alpha:  # read the other bands by name (the alpha band still masks them: GDAL's per-dataset mask)
        bands, band_names = _without_alpha(base, alpha, sensor, band_names)
    source = _stats_source(paths, type, sensor, bands, band_names, base, nodata, tile_size, on_error)
    if alpha:
        _warn_alpha(heads, type, alpha)
    tiles, method, n_windows = _tiles_to_read(source, type, tile_size, samples, seed, on_error, progress)
    stats, kept, n_read, shapes = _accumulate(tiles, list(source.band_names), seed)
    warn_degenerate(list(source.band_names), stats)
    out = _stats_sensor(source, stats, sensor, name, nodata)
    prov: dict[str, Any] = {"tiles": samples, "seed": seed, "method": method}
    own_rule = stack_rule_counts(source)  # `data stack` VRTs of Sentinel-2 products: read by their MTD's rule
    if own_rule:
        prov["own_rule"] = own_rule
    if type in ("images", "tar"):  # read whole: their size (one, or the range of mixed sizes), and how many
        prov["tiles"] = n_read
        hs, ws = [h for h, _ in shapes], [w for _, w in shapes]
        one = len(shapes) == 1
        prov["chip_size"] = list(next(iter(shapes))) if one else {"min": [min(hs), min(ws)], "max": [max(hs), max(ws)]}
    else:
        prov["tile_size"] = tile_size
    if type in ("raster", "cube"):
        prov["tiles"] = n_windows
    prov["pixels"] = [int(c) for c in stats.count]
    _add_percentiles(prov, stats, kept)
    return out, prov


def _tiles_to_read(
    source: Any, type: str, tile_size: int, samples: int, seed: int, on_error: str, progress: bool
) -> tuple[Any, str, int | None]:
    """(lazy iterator of the samples, the method the provenance names, grid windows read or None for images):
    rasters and cubes by non-overlapping grid windows, all or a uniform sample; images whole, each once."""
    archive = getattr(source, "archive", None)
    if archive is None and type != "cube":  # image folders, tar shards: whole images, each once
        picks = image_picks(len(source), samples, seed)
        method = "exact: every image" if len(picks) == len(source) else f"uniform sample of {len(source)} images"
        return read_images(source, picks, seed, progress), method, None
    if archive is not None:  # rasters: non-overlapping grid windows, all of them or a uniform sample
        scenes, read = archive.scenes, archive.sample
    else:  # the same grid over every time step of every store
        units = [
            (i, t) for i, sc in enumerate(source.scenes) for t in (range(len(sc.times)) if sc.time_dim else (None,))
        ]
        scenes = [source.scenes[i] for i, _ in units]

        def read(u: int, x: int, y: int, w: int, h: int) -> dict[str, Any]:
            return source.read(units[u][0], x, y, w, h, units[u][1])

    windows, n_windows = grid_windows(scenes, int(tile_size), samples, seed)
    method = "exact: every pixel" if len(windows) == n_windows else f"uniform sample of {n_windows} grid windows"
    return read_windows(read, windows, on_error, progress), method, len(windows)


def _accumulate(tiles: Any, band_names: list[str], seed: int) -> tuple[RunningStats, UniformPixelSample, int, set]:
    """(stats, kept pixels, samples read, their sizes) over the valid pixels; a band without any is refused."""
    stats = RunningStats(len(band_names))
    kept = UniformPixelSample(PERCENTILE_PIXELS, np.random.default_rng([int(seed), 0x70637431]))
    n_read = 0
    shapes: set[tuple[int, int]] = set()
    paths: dict[str, None] = {}  # the files read, in order: the refusal below names them
    for s in tiles:
        n_read += 1
        paths.setdefault(str(s.get("path", "")))
        image, valid = np.asarray(s["image"]), np.asarray(s["valid"])
        shapes.add((int(image.shape[-2]), int(image.shape[-1])))
        stats.update(image, valid)
        pix = image.reshape(image.shape[0], -1)[:, valid.reshape(-1)]
        if pix.shape[1]:
            kept.add(pix)
    if (stats.count == 0).any():
        empty = [b for b, c in zip(band_names, stats.count) if c == 0]
        files = [p for p in paths if p]
        where = f" of {files[0]}" + (f" and {plural(len(files) - 1, 'other file')}" if len(files) > 1 else "")
        raise InputError(
            f"no valid pixel for {plural(len(empty), 'band')} ({', '.join(empty)}) in the {plural(n_read, 'tile')} "
            f"read{where if files else ''}: every pixel is nodata, NaN or masked; check the files, or "
            f"{STATS_HINTS['nodata']} if their declared nodata value is wrong"
        )
    return stats, kept, n_read, shapes


def _stats_sensor(src: Any, stats: RunningStats, sensor: str | None, name: str | None, nodata: float | None) -> Sensor:
    """The sensor the YAML records: the one read with, with the computed mean/std (and the files' nodata)."""
    sel = src.sensor
    if nodata is None:  # carry the files' own nodata value into the sensor (used when a file declares none)
        scenes = getattr(getattr(src, "archive", None), "scenes", None) or getattr(src, "scenes", [])
        values = {sc.nodata for sc in scenes}
        nodata = values.pop() if len(values) == 1 else sel.nodata
    return Sensor(
        name=name or (f"{sel.name}_custom" if sensor else sel.name),
        bands=tuple(src.band_names),
        scale=sel.scale,
        mean=tuple(round(float(v), 6) for v in stats.mean),
        std=tuple(round(max(float(v), 1e-6), 6) for v in stats.std),
        rgb_like=sel.rgb_like,
        nodata=sel.nodata if nodata is None else nodata,
        offset=sel.offset,
        rgb_bands=rgb_bands_among(sel, tuple(src.band_names)),  # None where --bands left one out
        aliases=sel.aliases,
    )


def _add_percentiles(prov: dict[str, Any], stats: RunningStats, kept: UniformPixelSample) -> None:
    """Add the kept pixels' percentiles to `prov`, and say which pixels they come from."""
    if kept.size:
        sample = kept.result()
        prov.update(percentiles(sample))
        # mean and std use every valid pixel read; the percentiles a random subset of 200k when there are more
        n_valid = int(stats.count.min())
        prov["percentiles_from"] = (
            "every valid pixel read"
            if sample.shape[1] >= n_valid
            else f"a random {sample.shape[1]:,} of the {n_valid:,} valid pixels read (mean and std use them all)"
        )


def write_stats(paths: str | Sequence[str], out: str | Path, *, plot: str | Path | None = None, **kwargs: Any) -> Path:
    """Compute statistics and write them as a sensor YAML (atomically), plus histograms to `plot` (a PNG). Both
    outputs' folders are checked (made, and writable) first: a read-only one failed only after every tile was read."""
    from geodino.io import check_suffix, check_writable

    if plot:  # before any pixel is read: d.txt held a PNG
        check_suffix("--plot", plot, (".png",), command="data stats", writes="a PNG (the per-band histograms)")
    if plot and Path(plot).resolve() == Path(out).resolve():  # the YAML replaced the PNG, and it said it wrote both
        own = (
            Path(out).with_suffix(".png")
            if Path(out).suffix != ".png"
            else Path(out).with_name(f"{Path(out).stem}_hist.png")
        )
        raise InputError(
            f"--plot {plot} is the --out file (plot= and out= in Python); give the histograms a PNG of their own (e.g. "
            f"--plot {own})"
        )
    for target in (out, plot) if plot else (out,):  # a folder that cannot be written: before any pixel is read
        check_writable(target, overwrite=True)  # (replacing an existing file is the caller's choice, as before)
    sensor, prov = compute_stats(paths, **kwargs)
    if plot:
        plot_stats(sensor, prov, plot)
    prov.pop("_sample", None)
    return save_sensor_yaml(sensor, out, extra={"stats": prov})
