"""`geodino data ...`: stats (sensor YAML from an archive), sensors (built-in table), index (archive summary),
stack (per-band files -> one VRT per scene), preview (a PNG of tiles and their multi-crops), curate
(DINOv2/v3-style curation of an archive into a tile list)."""

from __future__ import annotations

import argparse
from typing import Any

from geodino.cli import CommaList, NumberList, whole_number
from geodino.config import options_for
from geodino.data.config import PREVIEW_MAX_SAMPLES, SOURCE_KEY_FLAGS, name_flags
from geodino.errors import GeoDinoError, plural
from geodino.io import check_suffix

__all__ = ["register"]


def register(subparsers: Any) -> None:
    """Add the `data` command and its sub-commands."""
    what = "data tools: per-band stats, sensors, archive index, band stacks, crop previews, curation"
    p = subparsers.add_parser("data", help=what, description=what[0].upper() + what[1:] + ".")
    sub = p.add_subparsers(dest="data_command", metavar="SUBCOMMAND")
    _add_stats(sub)
    _add_sensors(sub)
    _add_index(sub)
    _add_stack(sub)
    _add_preview(sub)
    _add_curate(sub)
    p.set_defaults(func=lambda args: p.print_help() or 0)


def _add_stats(sub: Any) -> None:
    """`data stats`: per-band mean/std of an archive -> a sensor YAML."""
    s = sub.add_parser(
        "stats",
        help="per-band mean/std over an archive -> sensor YAML",
        description="Stream tiles of an archive and write per-band mean/std (valid pixels only) as a sensor YAML "
        "usable as `sensor: file.yaml`. Rasters and cubes are cut into a grid of windows, all read when they are "
        "at most --samples (exact statistics), else --samples of them drawn uniformly; image folders and tar "
        "shards read each image whole, every image when there are at most --samples, else --samples of them.",
    )
    s.add_argument("paths", nargs="+", help="folders, globs, files or .txt lists (cube: Zarr stores)")
    s.add_argument("--out", "-o", required=True, help="sensor YAML to write")
    s.add_argument("--type", default="raster", choices=["raster", "cube", "images", "tar"],
                   help="archive type of PATHS (default: %(default)s)")  # fmt: skip
    s.add_argument("--sensor", default=None, help="start from a built-in sensor (its scale and band names)")
    s.add_argument("--bands", nargs="+", action=CommaList, default=None, help="band names to keep (B04 B03 or B04,B03)")
    s.add_argument("--band-names", nargs="+", action=CommaList, default=None,
                   help="names of the files' bands, in order")  # fmt: skip
    s.add_argument(
        "--scale",
        type=float,
        default=None,
        help="DN -> reflectance factor (default: --sensor's, else the files' declared scale, else by dtype: 1/255 "
        "for uint8, 1/10000 for uint16 and int16, 1 for floats; other integer types need it)",
    )
    s.add_argument(
        "--offset",
        type=float,
        default=None,
        help="added after scaling (default: --sensor's, else the files' declared offset, else 0)",
    )
    s.add_argument("--nodata", type=float, default=None, help="override the files' nodata value")
    s.add_argument(
        "--samples",
        "--sample",
        dest="samples",
        type=whole_number(1),
        default=256,
        help="windows to read at most (default 256): rasters and cubes read every grid window when there are "
        "no more, else this many drawn uniformly; images and tar shards: whole images, each at most once",
    )
    s.add_argument(
        "--tile-size",
        "--tile",
        dest="tile_size",
        type=whole_number(1),
        default=None,
        help="grid window edge in pixels, rasters and cubes only (default 256)",
    )
    s.add_argument("--seed", type=whole_number(0), default=0, help="seed of the windows drawn (default: %(default)s)")
    s.add_argument("--name", default=None, help="sensor name in the YAML (default: from the file name)")
    s.add_argument("--on-error", default="skip", choices=["skip", "stop"],
                   help="unreadable files: skip or stop (default: %(default)s)")  # fmt: skip
    s.add_argument("--overwrite", action="store_true", help="replace an existing --out file")
    s.add_argument("--plot", default=None, help="also write per-band histograms to this PNG")
    s.add_argument(
        "--no-progress", dest="progress", action="store_false", help="no progress bar, as embed and data curate take it"
    )
    s.set_defaults(func=_stats)


def _add_sensors(sub: Any) -> None:
    """`data sensors`: list the built-in sensors."""
    what = "list the built-in sensors (bands, scale, statistics source)"
    l = sub.add_parser("sensors", help=what, description=what[0].upper() + what[1:] + ".")  # noqa: E741
    l.set_defaults(func=_sensors)


def _add_index(sub: Any) -> None:
    """`data index`: read every raster header of an archive once and summarise it."""
    i = sub.add_parser(
        "index",
        help="index an archive once and print a summary (scenes, CRSs, bands, size)",
        description="Read the header of every raster of an archive (no pixels) and print the scene count, the "
        "pixels in all, the band layouts and the CRSs, and each raster skipped with the reason; with --out also "
        "write the scene footprints (EPSG:4326 outlines of each raster's grid, from its header: nodata areas such "
        "as a scene's rotated no-data corners are inside; with --valid, the outlines of the valid pixels instead) as "
        "GeoParquet or GeoJSON.",
    )
    i.add_argument("paths", nargs="+", help="folders (searched recursively), globs, raster files or .txt lists")
    i.add_argument("--sensor", default=None,
                   help="data sensor: a built-in name or a YAML of `geodino data stats` (its band names; default: "
                   "none, the files' own band descriptions)")  # fmt: skip
    i.add_argument("--on-error", default="skip", choices=["skip", "stop"],
                   help="an unreadable raster: skip it (listed as skipped) or stop at it "
                   "(default: %(default)s)")  # fmt: skip
    i.add_argument("--out", "-o", default=None,
                   help="also write the footprints: GeoParquet (.parquet) or GeoJSON (.geojson), by the "
                   "suffix")  # fmt: skip
    i.add_argument("--overwrite", action="store_true", help="replace an existing --out file")
    i.add_argument("--valid", action="store_true",
                   help="with --out: trace each raster's valid pixels (its nodata / internal mask, read at most 1024 "
                   "px a side, from overviews when it has them) instead of its grid's outline; exact to about one "
                   "read pixel")  # fmt: skip
    i.set_defaults(func=_index)


def _add_stack(sub: Any) -> None:
    """`data stack`: one multi-band VRT per scene folder of one-file-per-band rasters."""
    from geodino.data.vrt import RESAMPLING

    k = sub.add_parser(
        "stack",
        help="one multi-band VRT per scene folder of one-file-per-band rasters (e.g. Sentinel-2 B02/B03/B11)",
        description="Write one multi-band VRT per scene folder under ROOT whose files hold one band each (named "
        "after --bands, e.g. T33UUP_B02_10m.jp2), in the order of --bands, on the grid of the finest band; use "
        "--out as a raster source's path.",
    )
    k.add_argument("root", help="folder of scene folders (each holding one file per band)")
    k.add_argument("--bands", nargs="+", action=CommaList, required=True,
                   help="band names as they appear in the file names, in order")  # fmt: skip
    k.add_argument("--out", "-o", required=True, help="folder for the VRTs (use it as a raster source path)")
    k.add_argument("--resampling", default="bilinear", choices=RESAMPLING,
                   help="for bands coarser than the finest (default bilinear; QA bands SCL, QA60, QA_PIXEL always "
                   "nearest: class codes and bit flags)")  # fmt: skip
    k.add_argument("--overwrite", action="store_true", help="replace VRTs of the same names already in --out")
    k.add_argument("--relative", action="store_true",
                   help="reference every band file by a path relative to the VRT (../ROOT/...), also outside --out, "
                   "so the tree holding ROOT and --out can be moved as a whole (default: relative only for files "
                   "in or below --out, absolute otherwise)")  # fmt: skip
    k.set_defaults(func=_stack)


def _add_preview(sub: Any) -> None:
    """`data preview`: a PNG of sample tiles and their crops for a data config."""
    v = sub.add_parser(
        "preview",
        help="PNG of sample tiles and their multi-crops for a data config (or a pretraining config)",
        description="Draw --samples samples of the first source of a data config (or of a pretraining config's "
        "`data` section, with its own crops) and write one PNG row per sample: the tile as RGB and the global, local "
        "and Gram crops made from it. Check the bands, nodata and scaling before a long run.",
    )
    from geodino.cli import add_config_arguments
    from geodino.data.config import DataConfig

    v.add_argument("--out", "-o", default="data_preview.png", help="PNG to write (default: %(default)s)")
    v.add_argument("--overwrite", action="store_true", help="replace an existing --out file")
    most = whole_number(1, PREVIEW_MAX_SAMPLES, " (a figure row each; more tiles: more previews, other --seed)")
    v.add_argument("--samples", "--sample", dest="samples", type=most, default=4,
                   help=f"samples (rows) to draw, at most {PREVIEW_MAX_SAMPLES} (default: %(default)s)")  # fmt: skip
    v.add_argument(
        "--seed", type=whole_number(0), default=0, help="seed of the samples and crops drawn (default: %(default)s)"
    )
    add_config_arguments(v, DataConfig)
    config = next(a for a in v._actions if a.dest == "config")  # `_shipped_config`: pretraining names work too
    config.help = "YAML data config file, or a pretraining config (a file, or a shipped one by name, e.g. demo) for "
    config.help += "its data section (keys below; _base_ to extend one)"
    v.set_defaults(func=_preview)


def _add_curate(sub: Any) -> None:
    """`data curate`: embed, filter, cluster and sample the tiles of an archive."""
    c = sub.add_parser(
        "curate",
        help="DINOv2/v3-style curation: embed tiles, drop nodata/cloud/near-duplicates, hierarchical k-means, "
        "balanced sampling -> a tile list data.sources accepts",
        description="Embed every tile of an archive (PATHS with --type, or the data.sources of a pretraining "
        "config with --config: image files and tar-shard members one tile each, raster and cube grids of their tile "
        "size) with a frozen backbone (streamed in chunks, resumable), drop tiles with more than --max-nodata nodata "
        "or --max-cloud cloud-like pixels (--cloud-rule: from the sensor's QA or SWIR bands, else bright + white + "
        "smooth on RGB) and near-duplicates (cosine >= --dedup to an earlier kept tile), cluster with hierarchical "
        "k-means (--clusters, finest level first) and sample --size tiles balanced over the cluster tree. Writes "
        "curated.parquet (use it as a source's `paths`; one curated_<name>.parquet per source when there are "
        "several), with --config a config.yaml that pretrains on the curated tiles, tiles.parquet, report.json/.md, "
        "exemplars.png and, for georeferenced tiles, map.png.",
    )
    c.add_argument("paths", nargs="*",
                   help="folders, globs, files or .txt lists (or give --config, then key=value overrides of it, e.g. "
                   "'data.sources=[{type: images, paths: [DIR]}]')")  # fmt: skip
    c.add_argument("--config", "-c", default=None,
                   help="a pretraining config (a file, or a shipped one by name, e.g. small_vit_tiny): curate its "
                   "data.sources (then --type/--sensor/--bands/--tile-size come from each source)")  # fmt: skip
    c.add_argument("--backbone", "-b", required=True, help="backbone spec used to embed the tiles")
    c.add_argument("--out", "-o", required=True, help="output folder (embeddings are cached there for resume)")
    c.add_argument("--size", type=int, required=True, help="number of tiles to keep")
    c.add_argument("--type", default="images", choices=["images", "raster", "cube", "tar"],
                   help="archive type of PATHS (default: %(default)s)")  # fmt: skip
    c.add_argument("--sensor", default=None, help="data sensor (scale, band names, RGB bands for the cloud rule)")
    c.add_argument(
        "--bands",
        nargs="+",
        action=CommaList,
        default=None,
        help="band names to read, rasters and cubes (B04 B03 or B04,B03)",
    )
    c.add_argument("--tile-size", "--tile", dest="tile_size", type=int, default=256,
                   help="raster and cube tile edge in pixels (default: %(default)s)")  # fmt: skip
    c.add_argument("--clusters", nargs="+", action=NumberList, default=[64, 16, 4],
                   help="clusters per k-means level, finest first (default: 64 16 4; or 64,16,4)")  # fmt: skip
    c.add_argument("--resamples", type=int, default=0,
                   help="resampling steps per k-means level (default: %(default)s, plain k-means)")  # fmt: skip
    c.add_argument("--resample-size", nargs="+", action=NumberList, default=10,
                   help="points closest to each centroid used in a resampling step: one for every level, or "
                   "one per --clusters level (finest first; 1 or less skips resampling there) "
                   "(default: %(default)s)")  # fmt: skip
    c.add_argument("--strategy", default="random", choices=["random", "closest"],
                   help="tiles picked within a level-1 cluster: random, or those closest to the centroid "
                   "(default: %(default)s)")  # fmt: skip
    c.add_argument("--dedup", type=float, default=0.95,
                   help="cosine at/above which a tile is a near-duplicate of an earlier kept one (default: "
                   "%(default)s; 1 or above turns it off)")  # fmt: skip
    c.add_argument("--max-nodata", type=float, default=0.5,
                   help="drop tiles with a larger nodata share (default: %(default)s)")  # fmt: skip
    c.add_argument("--cloud-rule", default="auto", choices=["auto", "qa", "swir", "rgb", "bright", "off"],
                   help="cloud test (default: auto: qa, else swir, else rgb by the sensor's bands)")  # fmt: skip
    c.add_argument("--qa-band", default=None, metavar="NAME",
                   help="a QA band of each raster (SCL, QA60 or QA_PIXEL, by band name or 1-based index) read only "
                   "for the cloud screen, never by the backbone; --cloud-rule auto then uses qa")  # fmt: skip
    c.add_argument("--qa-shadow", action="store_true",
                   help="the qa cloud rule also counts cloud shadow as cloud: SCL class 3, QA_PIXEL bit 4 (QA60 "
                   "has no shadow flag; default: shadow is kept)")  # fmt: skip
    c.add_argument("--cloud-threshold", type=float, default=0.5,
                   help="least RGB reflectance of a cloud-like pixel (default: %(default)s)")  # fmt: skip
    c.add_argument("--max-cloud", type=float, default=0.5,
                   help="drop tiles with a larger cloud-like share (default: %(default)s)")  # fmt: skip
    c.add_argument("--chunk", type=int, default=512, help="tiles per cached embedding chunk (default: %(default)s)")
    c.add_argument("--batch-size", type=int, default=64, help="tiles per forward pass (default: %(default)s)")
    c.add_argument("--workers", "--readers", dest="workers", type=int, default=0, metavar="N",
                   help="processes that read and decode tiles (and their QA band) for the embedding pass, a "
                   "DataLoader's num_workers; the backbone runs in the main process either way (default: 0, read in "
                   "the main process)")  # fmt: skip
    c.add_argument(
        "--device", default="cpu", help="torch device of the backbone: cpu, cuda, cuda:1, mps (default: %(default)s)"
    )
    c.add_argument(
        "--seed", type=whole_number(0), default=0, help="seed of k-means and of the sampling (default: %(default)s)"
    )
    c.add_argument("--on-error", default=None, choices=["stop", "skip"],
                   help="an unreadable image: stop (default) or skip it (dropped as nodata); with --config it "
                   "replaces each source's on_error")  # fmt: skip
    c.add_argument("--overwrite", action="store_true",
                   help="replace an earlier curation of another backbone or other inputs in --out (the same "
                   "curation re-uses its cached embeddings without it)")  # fmt: skip
    c.add_argument("--no-progress", dest="progress", action="store_false", help="no progress bars")
    c.set_defaults(func=_curate, overrides=[])


_NO_CURATE_FLAG = ("`band_names:`", "set the source's `nodata:`")  # data curate has no --band-names, --nodata


def _shipped_config(config: str | None) -> str | None:
    """`--config` as `pretrain` takes it: a file, else the shipped pretraining config it names
    (`configs/pretrain/small_vit_tiny.yaml` from any folder, or a bare `small_vit_tiny`), so that the README's
    `data preview` / `data curate` lines run outside a checkout as `pretrain -c` does; unresolved, as given."""
    if not config:
        return config
    from geodino.config import find_config
    from geodino.train.config import PretrainConfig

    return str(find_config(config, PretrainConfig))


def _curate(args: argparse.Namespace) -> int:
    from pathlib import Path

    from geodino.config import is_override
    from geodino.data.curate import CurateConfig, curate

    args.config = _shipped_config(args.config)
    if args.config:  # `key=value` among the positionals: overrides of the config, before its data.sources are read
        args.overrides = [*(a for a in args.paths if is_override(a)), *args.overrides]
        args.paths = [a for a in args.paths if not is_override(a)]
    keys = CurateConfig.__dataclass_fields__
    cfg = CurateConfig(**{k: v for k, v in vars(args).items() if k in keys})
    try:
        r = curate(cfg, args.out, progress=args.progress, overwrite=args.overwrite)
    except GeoDinoError as exc:
        if not args.config:  # a source of PATHS and flags: name the flags, not a source's keys (`sensor:`)
            name_flags(exc, [kf for kf in SOURCE_KEY_FLAGS if kf[0] not in _NO_CURATE_FLAG])
        raise
    rm = r["removed"]
    lists = [f for f in r["files"] if f.startswith("curated") and f.endswith(".parquet")]
    print(f"{plural(r['tiles'], 'tile')}: {rm['nodata']} nodata, {rm['cloud']} cloud, "
          f"{plural(rm['duplicate'], 'near-duplicate')} removed; "
          f"{r['kept']} kept over {plural(r['levels'][-1], 'top-level cluster')} -> "
          + ", ".join(str(Path(args.out) / f) for f in lists))  # fmt: skip
    if r.get("stale_files_removed"):
        print(f"removed {plural(len(r['stale_files_removed']), 'file')} an earlier run wrote to {args.out} and this "
              f"one did not: {', '.join(r['stale_files_removed'])}")  # fmt: skip
    if args.config:
        print(f"pretrain on them: geodino pretrain --config {Path(args.out) / 'config.yaml'}")
    return 0


def _stats(args: argparse.Namespace) -> int:
    from pathlib import Path

    from geodino.data.stats import compute_stats, write_stats
    from geodino.io import check_writable

    out = check_writable(args.out, overwrite=args.overwrite)
    name = args.name or Path(args.out).stem
    try:  # a cube's messages name a source's keys (`bands:`); rasters' already name the flags (STATS_HINTS)
        path = write_stats(args.paths, out, plot=args.plot, **options_for(compute_stats, args, name=name))
    except GeoDinoError as exc:
        name_flags(exc)
        raise
    print(Path(path).read_text().rstrip())
    print(f"wrote {path}" + (f" and {args.plot}" if args.plot else ""))
    return 0


def _stack(args: argparse.Namespace) -> int:
    from geodino.data.vrt import stack_scenes

    paths = stack_scenes(
        args.root,
        args.bands,
        args.out,
        resampling=args.resampling,
        overwrite=args.overwrite,
        relative=args.relative,
        say=print,  # the reflectance rule the SAFE products declare, and where it came from
    )
    print(f"wrote {plural(len(paths), 'VRT')} to {args.out}")
    return 0


def _sensors(args: argparse.Namespace) -> int:
    from geodino.data.sensors import get_sensor, list_sensors

    for name in list_sensors():
        s = get_sensor(name)
        scale = s.scale if isinstance(s.scale, float) else list(s.scale)
        print(f"{name:15s} {s.n_bands:2d} bands  scale={scale:.6g}  rgb_like={s.rgb_like}  ({s.source})")
        print(f"{'':15s} {', '.join(s.bands)}")
    return 0


def _index(args: argparse.Namespace) -> int:
    from collections import Counter

    from geodino.data.archive import RasterArchive
    from geodino.io import check_writable

    if getattr(args, "valid", False) and not args.out:
        from geodino.errors import ConfigError

        raise ConfigError("--valid traces the footprints --out writes; add --out FILE.parquet or FILE.geojson")
    if args.out:  # before indexing: an existing output, or one of no known format, is refused without work
        from pathlib import Path

        from geodino.errors import ConfigError

        if Path(args.out).suffix.lower() not in (".parquet", ".geoparquet", ".geojson", ".json"):
            stem = Path(args.out).with_suffix("")
            raise ConfigError(
                f"--out {args.out}: data index writes GeoParquet (.parquet) or GeoJSON (.geojson), chosen by the "
                f"suffix; name the output {stem}.parquet or {stem}.geojson"
            )
        check_writable(args.out, overwrite=args.overwrite)
    archive = RasterArchive(
        args.paths,
        sensor=args.sensor,
        on_error=args.on_error,
        require_crs=False,
        uniform=False,
        hints={"skip": "pass --on-error skip", "sensor": "--sensor"},
        check_cut_short=True,  # a copy cut after its header is named here; curate reads its tiles as nodata
        warn_skipped=False,  # the summary below names each skipped file and why: a warning too said it twice
    )
    crs: Counter[str] = Counter()
    for s in archive.scenes:
        from rasterio.crs import CRS

        crs[CRS.from_wkt(s.crs).to_string() if s.crs else "none"] += 1
    px = sum(s.width * s.height for s in archive.scenes)
    print(f"{plural(len(archive.scenes), 'scene')}, {len(archive.skipped)} skipped, {px / 1e6:.1f} Mpx")
    bands = Counter(f"{len(s.band_names)} x {s.dtype}" for s in archive.scenes)
    print("bands: " + ", ".join(f"{k} ({plural(n, 'scene')})" for k, n in bands.most_common()))
    for k, n in crs.most_common():
        print(f"  {k}: {plural(n, 'scene')}")
    for path, why in archive.skipped:
        print(f"  skipped {path}: {why}")
    if args.out:
        from geodino.io import atomic_path

        if args.valid:  # the valid pixels traced (a read of each file's mask), not the header outline
            from geodino.data.valid_footprint import valid_geodataframe

            gdf = valid_geodataframe(archive.scenes)
        else:
            gdf = archive.to_geodataframe()  # warns for each raster it leaves out (no place on the map)
        if gdf.empty:
            from geodino.errors import InputError

            n = len(archive.scenes)
            which = f"raster {archive.scenes[0].path} cannot" if n == 1 else f"none of the {n} rasters can"
            if args.valid:
                raise InputError(
                    f"{which} be traced (see the warning{'s' if n > 1 else ''}: no CRS, or no valid pixel), so "
                    f"{args.out} would hold no footprint and was not written; index without --valid for the grids' "
                    "outlines"
                )
            raise InputError(
                f"{which} be placed on the map (see the warning{'s' if n > 1 else ''}), so {args.out} would hold no "
                f"footprint and was not written; give {'it' if n == 1 else 'them'} a CRS (gdal_edit.py -a_srs "
                "EPSG:... FILE) and index again"
            )
        with atomic_path(args.out) as tmp:
            if str(args.out).lower().endswith((".parquet", ".geoparquet")):
                gdf.to_parquet(tmp)
            else:
                from pathlib import Path

                # RFC 7946: lon/lat, right-hand rings, no `crs` member; layer named after --out, not the temporary
                gdf.to_file(tmp, driver="GeoJSON", layer=Path(args.out).stem, RFC7946="YES")
        left = len(archive.scenes) - len(gdf)
        print(f"wrote {args.out}" + (f" ({plural(left, 'raster')} left out: no place on the map)" if left else ""))
    return 0


def _preview(args: argparse.Namespace) -> int:

    from geodino.config import load_config, read_yaml
    from geodino.data.config import PreviewDataConfig
    from geodino.data.preview import write_preview
    from geodino.io import check_writable

    check_suffix("--out", args.out, (".png",), command="data preview", writes="a PNG")  # before the config is read
    check_writable(args.out, overwrite=args.overwrite)
    args.config = _shipped_config(args.config)
    if args.config and "data" in read_yaml(args.config):  # a pretraining config: preview its `data` section
        from geodino.train.config import PretrainConfig

        full = load_config(PretrainConfig, args.config, args.overrides)
        cfg, crops, in_chans = full.data, full.crops, full.ssl.student.in_chans
    else:
        cfg, crops, in_chans = load_config(PreviewDataConfig, args.config, args.overrides), None, None
    path = write_preview(cfg, args.out, samples=args.samples, seed=args.seed, crops=crops, in_chans=in_chans)
    print(f"wrote {path}")
    return 0
