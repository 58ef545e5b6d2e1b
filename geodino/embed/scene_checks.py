"""The checks of a many-scene `geodino embed` run (`geodino.embed.scenes`) made before any scene is embedded:
headers (band counts, north-up grids, the scale/offset each scene declares), `--bbox` (which scenes it meets),
existing outputs and the assets of resumed stacks. Each refuses in one line, naming the scenes concerned.
"""

from __future__ import annotations

import sys
from collections.abc import Set as AbstractSet
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from geodino.data.cube_open import CubeUnreadable, is_cube_store
from geodino.data.vrt import north_up
from geodino.embed.config import EmbedConfig, reads_file_rule, user_rule
from geodino.embed.stac import Scene
from geodino.errors import ConfigError, InputError, one_line, plural

__all__ = [
    "check_declared_rules",
    "check_headers",
    "check_stacks",
    "declared_rule",
    "earlier_skip",
    "in_bbox",
    "refuse_existing",
]


def check_headers(
    scenes: list[Scene],
    cfg: EmbedConfig,
    unreadable: dict[str, InputError] | None = None,
    folder: Path | None = None,
    grids: dict[str, Any] | None = None,
) -> set[str]:
    """All scenes readable, reading one number of bands, and north-up (headers only, before any scene is embedded).
    The bands read are `--bands` (or a scene's own, from STAC --asset-bands), so a 6-band and a 3-band scene go
    together with `--bands 1,2,3`; one line naming a band a scene lacks, two scenes whose band counts differ, or
    every scene the mosaic could not take. Returns the names of the scenes read by the GDAL scale/offset their file
    declares for the bands read (`_file_declares`), from the same header read.

    `unreadable` (--on-error skip): a raster GDAL cannot open (a truncated header, a non-raster file named .tif) is
    put there (name -> why, as the skip records it) and left out of the other checks, so one broken file of a large
    archive is skipped by the run instead of refusing it; every scene unreadable is still one line. Without it such
    scenes are refused (all of them in one line, after the other headers are read), saying so when an earlier run
    into `folder` skipped them (a `--resume` that forgot `--on-error skip`).

    `grids`: the headers already read (name -> `_raster_header`, by `in_bbox`), checked without opening them
    again; each raster read here is put there too, for the shared cell grid (`scene_grid.grid_offsets`)."""
    import rasterio

    first: tuple[Scene, int] | None = None
    tilted: list[Scene] = []
    by_file: set[str] = set()
    whys: dict[str, str] = {}  # GDAL's reason for each unreadable scene (--on-error skip)
    stopped: list[tuple[Scene, str, Exception]] = []  # unreadable scenes under --on-error stop
    for s in scenes:
        if unreadable and s.name in unreadable:  # an asset of its stack GDAL cannot open (`scenes.stack_sources`)
            whys[s.name] = str(unreadable[s.name])
            continue
        try:
            if s.sources:  # a STAC stack, checked by stack_sources: one band per source, north-up assets
                count = len(s.sources)
            elif is_cube_store(s.path):  # GDAL reads cubes otherwise (per-band variables: 0 bands, no grid)
                count, upright, declares = _cube_header(s, cfg)
                if not upright:
                    tilted.append(s)
                if declares:
                    by_file.add(s.name)
            else:
                head = (grids or {}).get(s.name)
                if head is None:  # not read yet, or unreadable there: opened here (GDAL's reason, if any)
                    with rasterio.open(s.path) as src:
                        head = _header_of(s.path, src)
                    if grids is not None:
                        grids[s.name] = head
                picked = s.bands or cfg.bands  # the bands read: a scene's own (STAC --asset-bands), else --bands
                _check_picks(s, picked, head.count)
                count = len(picked) if picked else head.count
                if not north_up(head.transform):
                    tilted.append(s)
                if _file_declares(s, head, cfg):
                    by_file.add(s.name)
        except (rasterio.errors.RasterioIOError, CubeUnreadable) as exc:  # a cube: no reader opens it
            why = exc.why if isinstance(exc, CubeUnreadable) else one_line(exc).rstrip(".")
            if unreadable is not None:  # --on-error skip: the scene's own rank skips it (`geodino.embed.scenes`)
                unreadable[s.name] = InputError(f"cannot open its header ({why}); re-download or re-copy it")
                whys[s.name] = why
                continue
            stopped.append((s, why, exc))  # --on-error stop: every such scene named at once, after the others
            continue
        if first is None:
            first = (s, count)
        elif count != first[1]:
            raise InputError(
                f"scenes of different band counts in one run: {first[0].path} has {plural(first[1], 'band')}, "
                f"{s.path} has "
                f"{count}; embed them in separate runs (or choose the same bands with --bands, bands=[...] in Python)"
            )
    if stopped:
        _refuse_unreadable(stopped, len(scenes), folder)
    if unreadable and len(unreadable) == len(scenes):  # nothing would be left to embed: refused, nothing written
        one = scenes[0].origin if scenes[0].sources else scenes[0].path  # a stack's VRT is not written yet
        raise InputError(
            f"none of the {plural(len(scenes), 'scene')} can be read (e.g. {one}: {whys[scenes[0].name]}), "
            "so --on-error skip (on_error='skip' in Python) leaves nothing to embed; check them with gdalinfo, "
            "re-download or re-copy them, or "
            "pass the right files"
        )
    if tilted:
        one, stem = tilted[0].path, Path(tilted[0].path).stem
        warp = f"gdalwarp {one} {stem}_north_up.tif"
        alone = f"geodino embed {one} -b BACKBONE --out {stem}_features.tif"
        if len(tilted) == 1:
            raise InputError(
                f"scene {one} has a rotated or south-up geotransform, which the scenes' mosaic cannot hold; warp it "
                f"north-up first ({warp}) and embed that in its place, or embed it on its own ({alone}) and leave it "
                "out of this run"
            )
        names = ", ".join(s.path for s in tilted[:5]) + (f" and {len(tilted) - 5} more" if len(tilted) > 5 else "")
        raise InputError(
            f"{len(tilted)} of {plural(len(scenes), 'scene')} have a rotated or south-up geotransform ({names}), "
            f"which the scenes' mosaic cannot hold; warp them north-up first (e.g. {warp}) and embed those in their "
            f"place, or embed each on its own (e.g. {alone}) and leave them out of this run"
        )
    return by_file


def _unreadable_line(scene: Scene, why: str, folder: Path | None) -> str:
    """The refusal of a scene whose header GDAL cannot open (--on-error stop), naming it (and its STAC item)."""
    where = f" ({scene.origin})" if scene.origin and scene.origin != scene.path else ""
    check = "open it with xarray" if is_cube_store(scene.path) else "check it with gdalinfo"
    line = (
        f"cannot read scene {scene.path}{where}: {why}; {check}, re-download or re-copy it, or leave it out of this run"
    )
    return line + earlier_skip(folder, scene.name)


def _refuse_unreadable(stopped: list[tuple[Scene, str, Exception]], total: int, folder: Path | None) -> None:
    """Refuse the scenes GDAL cannot open (--on-error stop): one scene by its own line (`_unreadable_line`), several
    in one line (how many, the first's reason, the others' paths, and --on-error skip), as one broken file a run was
    found one run at a time."""
    scene, why, exc = stopped[0]
    if len(stopped) == 1:
        raise InputError(_unreadable_line(scene, why, folder)) from exc
    where = f" ({scene.origin})" if scene.origin and scene.origin != scene.path else ""
    rest = ", ".join(s.path for s, _, _ in stopped[1:6]) + (f" and {len(stopped) - 6} more" if len(stopped) > 6 else "")
    cubes = " (datacubes: open them with xarray)" if any(is_cube_store(s.path) for s, _, _ in stopped) else ""
    skipped = [s.name for s, _, _ in stopped if earlier_skip(folder, s.name)]
    before = (
        f" (an earlier run into {folder} skipped {', '.join(skipped)}: pass --on-error skip again to go on without "
        f"{'it' if len(skipped) == 1 else 'them'})"
        if skipped
        else ""
    )
    raise InputError(
        f"{len(stopped)} of {plural(total, 'scene')} cannot be read: {scene.path}{where}: {why}; also {rest}; check "
        f"them with gdalinfo{cubes}, re-download or re-copy them, or leave them out of this run (--on-error skip "
        f"embeds the others and records the skips){before}"
    ) from exc


def earlier_skip(folder: Path | None, name: str) -> str:
    """What to add to the refusal of an unreadable scene `name` (--on-error stop) that an earlier run into `folder`
    skipped: a `--resume` that forgot `--on-error skip`; else nothing."""
    from geodino.embed.scene_skips import skip_record

    if folder is None or not skip_record(folder, name).exists():
        return ""
    return f" (an earlier run into {folder} skipped it: pass --on-error skip again to go on without it)"


def _cube_header(scene: Scene, cfg: EmbedConfig) -> tuple[int, bool, bool]:
    """A datacube scene's band count read, whether its grid is north-up, and whether it is read by the CF
    scale_factor/add_offset it declares for the bands read (`prepare.cube_rule`), from geodino's own cube reader
    (the variables, grid and bands `embed` reads: per-band variables stacked, south-up rows read north-up)."""
    from geodino.embed.prepare import cube_rule
    from geodino.embed.sources import CubeSource

    picked = scene.bands or cfg.bands
    src = CubeSource(
        scene.path, variable=cfg.variable, nodata=cfg.nodata, time=cfg.time, sensor=cfg.sensor, listing=bool(picked)
    )
    _check_picks(scene, picked, src.input_count)
    read = [b - 1 for b in picked] if picked else list(range(src.input_count))
    rule = SimpleNamespace(  # the CF rule of the bands read, as `prepare` finds it on the scene's own source
        scales=tuple(src.scales[b] for b in read) if src.scales else (),
        offsets=tuple(src.offsets[b] for b in read) if src.offsets else (),
    )
    return len(read), north_up(src.info.transform), cube_rule(rule, cfg) is not None


def _check_picks(scene: Scene, picked: list[int] | None, count: int) -> None:
    """A band number past the scene's band count, refused before any scene is embedded (else the scenes before it
    were embedded first and the run stopped at this one)."""
    past = [b for b in picked or [] if not 1 <= b <= count]
    if past:
        raise InputError(
            f"bands {','.join(map(str, picked or []))} (--bands, bands= in Python) include band {past[0]}, but scene "
            f"{scene.path} has {plural(count, 'band')}; pass bands every scene has (1..{count} there), or embed it in "
            "a separate run"
        )


def _file_declares(scene: Scene, src: Any, cfg: EmbedConfig) -> bool:
    """Whether `scene` will be read by its file's own GDAL scale/offset (`geodino.embed.prepare.file_rule`, which
    decides it again per scene from the same header): `file_scale` on, no rule given, no raster:bands rule of its
    STAC item applied (the item wins over its file's tags), and a band read declaring other than 1/0."""
    from geodino.data.rasters import declared_scaling

    if not reads_file_rule(cfg) or (cfg.stac_scale and scene.radiometry):
        return False
    picked = scene.bands or cfg.bands or list(range(1, src.count + 1))
    if not all(1 <= b <= src.count for b in picked):
        return False  # the reader names the band the file lacks
    return declared_scaling(src, picked) is not None


def declared_rule(scene: Scene, cfg: EmbedConfig) -> dict[str, Any]:
    """`band_scale`/`band_offset` of a STAC scene whose item declares its bands' scale and offset (raster:bands):
    one item of Sentinel-2 processing baseline >= 04.00 (offset -0.1) beside one before it (offset 0) then gives
    the same reflectance for the same ground. Not when the user gave the rule (`scale`, `band_scale`,
    `band_offset`) or turned it off (`stac_scale=false`). With `bands` (1-based, the scene naming none of its own)
    the rules of the bands it picks, in its order (out-of-range picks are left to the reader's own error)."""
    if not scene.radiometry or not cfg.stac_scale:
        return {}
    if cfg.scale is not None or cfg.band_scale is not None or cfg.band_offset is not None:
        return {}
    rule = scene.radiometry
    if not scene.bands and cfg.bands and all(1 <= b <= len(rule) for b in cfg.bands):
        rule = [rule[b - 1] for b in cfg.bands]  # `bands` picks among the item's bands: their rules, in that order
    return {"band_scale": [s for s, _ in rule], "band_offset": [o for _, o in rule]}


def check_declared_rules(scenes: list[Scene], cfg: EmbedConfig, by_file: AbstractSet[str] = frozenset()) -> None:
    """Scenes that declare their scale/offset (a STAC item's raster:bands, or the GDAL scale/offset of the file:
    `by_file`) beside scenes that do not: the first are read by their rule, the others by the sensor's or the
    dtype's, and the mosaic would refuse the mix only after every scene was embedded. Refused up front (every rank
    sees all scenes, so all agree), naming one of each and the ways out."""
    if user_rule(cfg):
        return
    by_item = {s.name for s in scenes if cfg.stac_scale and s.radiometry}
    declared = [s for s in scenes if s.name in by_item or s.name in by_file]
    bare = [s for s in scenes if s.name not in by_item and s.name not in by_file]
    if not declared or not bare:
        return
    rule = (
        "different rules; give one rule for all (--scale FACTOR, scale= in Python, or band_scale=[...] "
        "band_offset=[...])"
    )
    if not by_file:  # STAC items only: as before the rasters' own tags were read
        raise InputError(
            f"{len(declared)} of {plural(len(scenes), 'STAC item')} declare their bands' scale/offset (raster:bands, "
            f"e.g. {declared[0].name}) and {len(bare)} do not (e.g. {bare[0].name}), so their pixels would be read "
            f"by {rule} or ignore the declarations with stac_scale=false"
        )
    d, b = declared[0], bare[0]
    from geodino.data.cube_open import is_cube_store

    # a datacube is read by its CF rule (`geodino.embed.prepare.cube_rule`)
    cube = is_cube_store(str(d.path))
    how = "raster:bands" if d.name in by_item else "CF scale_factor/add_offset" if cube else "GDAL scale/offset"
    off = " and ".join(k for k, on in (("stac_scale=false", by_item), ("file_scale=false", by_file)) if on)
    raise InputError(
        f"{len(declared)} of {plural(len(scenes), 'scene')} declare their bands' scale/offset (e.g. {d.path}: "
        f"{how}) and {len(bare)} do not (e.g. {b.path}), so their pixels would be read by {rule} or ignore the "
        f"declarations with {off}"
    )


def in_bbox(scenes: list[Scene], cfg: EmbedConfig, grids: dict[str, Any] | None = None) -> list[Scene]:
    """The scenes that hold part of `cfg.bbox` (each in its own CRS: `geodino.embed.extent.meets_bbox`; a stack of
    single-band assets on its first asset's grid); the others are skipped with one line saying how many (when the
    run says its lines: `says`). None: one line naming the bbox and the scenes' extent. Without `bbox_crs` over
    scenes in several CRSs, refused (`_one_crs`). Each raster's header is opened once for both checks and put in
    `grids` (name -> `_raster_header`; None when it does not open) for `check_headers` and the shared cell grid."""
    assert cfg.bbox is not None  # called for a run with --bbox (scenes.py)
    from geodino.embed.extent import format_numbers, meets_bbox, scenes_extent
    from geodino.embed.pipeline import says

    grid = {s.name: s.sources[0][1] if s.sources else s.path for s in scenes}
    heads = {n: _raster_header(p) for n, p in grid.items() if not is_cube_store(p)}
    if grids is not None:
        grids.update(heads)
    if not cfg.bbox_crs:
        _one_crs(grid, heads, cfg)

    def meets(s: Scene) -> bool:  # an unreadable raster is left to the run's own header check
        if s.name not in heads:
            return _cube_overlaps(grid[s.name], cfg)
        head = heads[s.name]
        return head is None or meets_bbox(head, cfg, f"scene {grid[s.name]}")

    keep = [s for s in scenes if meets(s)]
    box = f"--bbox {format_numbers(cfg.bbox)} ({cfg.bbox_crs or 'each scene CRS'})"
    if not keep:
        raise InputError(
            f"{box} overlaps none of the {plural(len(scenes), 'scene')}, whose extent is "
            f"{scenes_extent(list(grid.values()), cfg.bbox_crs, lambda p: _cube_grid(p, cfg))}; pass a bbox that "
            "overlaps them"
        )
    if len(keep) < len(scenes) and says(cfg):
        print(
            f"geodino: {box}: skipped {len(scenes) - len(keep)} of {plural(len(scenes), 'scene')} outside it",
            file=sys.stderr,
        )
    return keep


def _raster_header(path: str) -> SimpleNamespace | None:
    """What the checks read of a raster's header (`_header_of`); None when GDAL cannot open it."""
    import rasterio

    try:
        with rasterio.open(path) as src:
            return _header_of(path, src)
    except rasterio.errors.RasterioIOError:
        return None


def _header_of(path: str, src: Any) -> SimpleNamespace:
    """The header fields of an open raster the checks read, kept once it is closed: its grid (`path`, `width`,
    `height`, `crs`, `transform`: what `extent.meets_bbox` reads), `count`, the `scales`/`offsets` it declares
    (`geodino.data.rasters.declared_scaling`), and `dtypes`/`nodata`, so a STAC item's first asset read by the
    `--bbox` check is stacked into its VRT from this read (`scene_stacks.stack_sources`)."""
    return SimpleNamespace(
        path=path, width=src.width, height=src.height, crs=src.crs, transform=src.transform, count=src.count,
        scales=src.scales, offsets=src.offsets, dtypes=src.dtypes, nodata=src.nodata,
    )  # fmt: skip


def _cube_grid(path: str, cfg: EmbedConfig) -> SimpleNamespace:
    """A datacube scene's grid as `embed` reads it (geodino's cube reader: GDAL reads a store of per-band variables
    with no CRS and an identity transform, and a south-up one south-up)."""
    from geodino.embed.sources import CubeSource

    info = CubeSource(path, variable=cfg.variable, nodata=cfg.nodata, time=cfg.time, listing=True).info
    return SimpleNamespace(path=path, width=info.width, height=info.height, crs=info.crs, transform=info.transform)


def _cube_overlaps(path: str, cfg: EmbedConfig) -> bool:
    """`extent.meets_bbox` of a datacube scene, on the grid `_cube_grid` reads."""
    from geodino.embed.extent import meets_bbox

    try:
        grid = _cube_grid(path, cfg)
    except CubeUnreadable:  # left to the header check, as a raster GDAL cannot open (skipped or refused there)
        return True
    return meets_bbox(grid, cfg, f"scene {path}")


def _one_crs(grid: dict[str, str], heads: dict[str, SimpleNamespace | None], cfg: EmbedConfig) -> None:
    """`--bbox` without `--bbox-crs` is read in each scene's own CRS: over scenes in several CRSs (UTM zones) its
    numbers name a different place in each (metres of zone 32 vs zone 33), so refuse it in one line naming two
    CRSs and the way out. `grid`: scene name -> the file read; `heads`: the rasters' headers (`_raster_header`),
    the others are cubes. Unreadable headers are left to the header check."""
    assert cfg.bbox is not None  # from in_bbox
    import rasterio

    from geodino.embed.extent import format_numbers

    seen: dict[str, str] = {}
    for name, p in grid.items():
        if name in heads:
            head = heads[name]
            if head is None:
                continue
            crs = head.crs.to_string() if head.crs else "no CRS"
        else:
            try:
                cube = _cube_grid(p, cfg).crs
            except rasterio.errors.RasterioIOError:
                continue
            crs = cube.to_string() if cube else "no CRS"
        seen.setdefault(crs, p)
    if len(seen) > 1:
        (a, pa), (b, pb) = list(seen.items())[:2]
        raise ConfigError(
            f"--bbox {format_numbers(cfg.bbox)} without --bbox-crs would be read in each scene's own CRS, but the "
            f"scenes span {len(seen)} CRSs ({a}: {Path(pa).name}; {b}: {Path(pb).name}), where the same numbers "
            "name different places; pass --bbox-crs with the bbox's CRS (e.g. --bbox-crs EPSG:4326 for lon/lat; "
            "bbox_crs= in Python)"
        )


def refuse_existing(outs: list[Path], folder: Path) -> None:
    """Without --resume or --overwrite, scene outputs (finished or partial) already in `folder` are refused: one
    line saying whether the run is done (--overwrite redoes it) or can be finished (--resume)."""
    from geodino.embed.pipeline import work_dir_for

    finished = [p for p in outs if p.exists()]
    partial = [p for p in outs if not p.exists() and work_dir_for(p).exists()]
    if not finished and not partial:
        return
    if len(finished) == len(outs):
        raise InputError(
            f"{'the' if len(outs) == 1 else 'all'} {plural(len(outs), 'scene output')} already exist"
            f"{'s' if len(outs) == 1 else ''} in {folder}: this run is done; pass --overwrite to redo "
            f"{'it' if len(outs) == 1 else 'them'} (or "
            "--resume to only rewrite the mosaic; overwrite=True or resume=True in Python)"
        )
    started = finished + partial
    split = f"{len(finished)} finished, {len(partial)} partial; " if finished and partial else ""
    raise InputError(
        f"{len(started)} of {plural(len(outs), 'scene output')} already exist{'s' if len(started) == 1 else ''} "
        f"in {folder} ({split}e.g. {started[0].name}); "
        f"pass --resume to finish the others or --overwrite to redo all (resume=True or overwrite=True in Python)"
    )


def check_stacks(started: list[Scene], stacks: dict[Path, str]) -> None:
    """A resumed scene stacked from single-band assets must be stacked from the same assets: its VRT (the input
    path its output records) keeps its name when `--asset` changes, so compare the VRT's text instead."""
    for s in started:
        vrt = Path(s.path)
        if vrt in stacks and vrt.exists() and vrt.read_text() != stacks[vrt]:
            raise InputError(
                f"scene {s.name} was started from other assets than this run's --asset ({vrt} differs); rerun "
                f"with the same --asset or pass --overwrite to redo it (asset= or overwrite=True in Python)"
            )
