"""Many scenes in one `geodino embed` run: a folder, a glob, a text list of rasters, or a STAC JSON. This module
runs them (`embed_scenes`); the scenes are listed by `scene_list`, checked by `scene_checks`, STAC assets stacked
by `scene_stacks`, and the mosaic and catalog written by `scene_mosaic`.

Each scene gets its own feature raster `OUT/<scene>.tif` (computed by `embed_raster` on the scene's own grid, or
on the first scene's cells when it shares that scene's CRS and pixel grid: `geodino.embed.scene_grid`; those cells
are recorded in `OUT/cell_grid.json` for later ranks and resumes: `scene_grid_file`), then a
VRT mosaic of them (`OUT/mosaic.vrt`, or one per CRS `OUT/mosaic_EPSG_32633.vrt` when the scenes span several) that
carries the feature rasters' metadata, so QGIS, rasterio and the `geodino embed` products read it
like one feature raster.

- Resumable per scene: with `--resume` finished scenes are skipped, a scene killed part-way resumes inside
  (`embed_raster`'s own resume) and the others start; without it, existing outputs are refused up front.
- A scene that fails while it is embedded (data cut short mid-file), or whose header GDAL cannot open (found by
  the header check), stops the run, or with `on_error="skip"` is skipped: its partial output removed, one
  warning, `OUT/<scene>.skipped.json`, left out of the mosaic and catalog, retried by `--resume`
  (`geodino.embed.scene_skips`); every scene unreadable is one line before anything is written.
- Split across processes: with `world_size`/`rank` (e.g. a SLURM array: `--world-size $SLURM_ARRAY_TASK_COUNT
  --rank $SLURM_ARRAY_TASK_ID`) rank r embeds scenes r, r + w, r + 2w, ...; whichever rank finds every scene
  done writes the mosaic. A rank that finishes early leaves it to the last one.
- STAC items with one band per asset (`--asset red,green,blue,nir`) become one VRT per item,
  `OUT/stacked/<item>.vrt`, on the first asset's grid (other resolutions resampled on read; see
  `geodino.data.vrt.stack_files`); the scene is then read from it like any raster, window by window.
- All scenes must have the same band count and a north-up geotransform (checked from their headers before any
  scene is embedded): the vectors of one run come from one input layout, and the mosaic holds north-up rasters
  only (a rotated or south-up scene is refused, naming it, with `gdalwarp` or a run of its own as the way out).

What the run says on stderr (scenes outside --bbox, assets resampled, scenes already done, "wrote ...") follows
`embed_raster`'s rule (`geodino.embed.pipeline.says`): the `geodino embed` command always says it, a Python call
only with its progress bar; a rank without a scene is a warning, which comes either way.
"""

from __future__ import annotations

import contextlib
import dataclasses
import sys
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

from geodino.embed.config import EmbedConfig, make_config
from geodino.embed.scene_checks import (
    check_declared_rules,
    check_headers,
    check_stacks,
    declared_rule,
    in_bbox,
    refuse_existing,
)
from geodino.embed.scene_grid import grid_offsets, vrt_grid
from geodino.embed.scene_grid_file import forget_grid, shared_grid
from geodino.embed.scene_list import is_many, list_scenes
from geodino.embed.scene_mosaic import MOSAIC, write_mosaic, write_scene_catalog
from geodino.embed.scene_stacks import STACKED, stack_sources
from geodino.embed.stac import Scene
from geodino.errors import ConfigError, GeoDinoError, InputError, plural
from geodino.io import removes_created_dirs

if TYPE_CHECKING:
    from geodino.embed.pipeline import PreparedRun

__all__ = ["Scene", "embed_scenes", "is_many", "list_scenes", "scene_outputs", "stack_sources"]


def scene_outputs(out: str | Path) -> tuple[Path, Path]:
    """(folder of the per-scene feature rasters, mosaic path) for `--out FOLDER` or `--out FOLDER/NAME.vrt`."""
    out = Path(out).expanduser()
    if out.suffix.lower() == ".vrt":
        return out.parent, out
    if out.suffix.lower() in (".tif", ".tiff", ".zarr"):
        raise ConfigError(
            f"--out {out} (out= in Python) names one raster, but the input has many scenes; pass an output folder "
            "(--out feats/) or the mosaic's name (--out feats/mosaic.vrt)"
        )
    return out, out / MOSAIC


@removes_created_dirs
def embed_scenes(inputs: str | list[str], config: EmbedConfig | None = None, **options: Any) -> list[Path]:
    """Embed every scene (this rank's share) into `config.out`/<scene>.tif and write the mosaic once all are done.

    `inputs`: a folder, a glob, a `.txt` list, raster paths, or one STAC JSON (with `asset`, `asset_bands`).
    `options` are `EmbedConfig` fields (`backbone` may also be a backbone object, loaded once for every scene).
    Returns the mosaic path(s), or [] when other ranks still have scenes to do (or this rank has none: a warning).
    With `progress=False` the run is quiet on stderr, as `embed_raster` (`run_lines` asks for the lines).
    """
    from geodino.embed.backbone import resolve_backbone

    inputs = [str(inputs)] if isinstance(inputs, (str, Path)) else [str(i) for i in inputs]
    backbone = options.pop("backbone", None)
    cfg = make_config(config, backbone, None, options)
    if not cfg.out:
        raise ConfigError(
            "no output given; pass --out FOLDER (out= in Python) for the per-scene feature rasters and their mosaic"
        )
    if cfg.window is not None:
        raise ConfigError(
            f"--window {' '.join(map(str, cfg.window))} (window= in Python) is in input pixels, which name no common "
            "place in many scenes (each has its own grid); pass --bbox MINX MINY MAXX MAXY (with --bbox-crs EPSG:4326 "
            "for lon/lat; bbox= and bbox_crs= in Python), which each scene takes in its own CRS"
        )
    from geodino.embed.command_flags import number_band_names

    number_band_names(cfg, inputs)  # bands=["red", "nir"]: their numbers, alike in every scene
    folder, mosaic = scene_outputs(cfg.out)
    scenes = list_scenes(inputs, asset=cfg.asset, asset_bands=cfg.asset_bands, exclude=folder)
    if not scenes:
        raise InputError(f"{' '.join(inputs)} holds no raster outside the output folder {folder}; pass the scenes")
    listed = scenes  # the first scene listed gives the cell grid, a --bbox run's too (`scene_grid`)
    grids: dict[str, Any] = {}  # each header the checks read, read once: `check_headers`, `grid_offsets` reuse it
    if cfg.bbox is not None:
        scenes = in_bbox(scenes, cfg, grids)
    from geodino.embed.pipeline import Console, says

    # without the bar, notes come at the end (see Console); a Python call without the bar says none (`says`)
    console = Console(now=cfg.progress, quiet=not says(cfg))
    # --on-error skip: a scene whose header (or a stacked asset's) cannot be opened is skipped by the rank it falls
    # to (`_run_scenes`); the ranks' shares stay those of every scene listed, readable or not
    unreadable: dict[str, InputError] | None = {} if cfg.on_error == "skip" else None
    scenes, stacks = stack_sources(scenes, folder / STACKED, say=console.say, unreadable=unreadable, headers=grids)
    outs = {s.name: folder / f"{s.name}.tif" for s in scenes}
    grids.update({s.name: vrt_grid(stacks[Path(s.path)]) for s in scenes if Path(s.path) in stacks})
    by_file = check_headers(scenes, cfg, unreadable, folder, grids)
    check_declared_rules([s for s in scenes if s.name not in (unreadable or {})], cfg, by_file)
    mine = scenes[cfg.rank :: cfg.world_size]
    if not mine:  # more ranks than scenes (a SLURM array sized for another archive): nothing here, nothing written
        warnings.warn(  # the command line shows it as "geodino: warning: ..." (`geodino.cli`)
            f"rank {cfg.rank} of --world-size {cfg.world_size} has no scene: the run has "
            f"{plural(len(scenes), 'scene')}, done by ranks 0..{len(scenes) - 1}; nothing to do here",
            stacklevel=3,  # the caller of embed_scenes (through removes_created_dirs)
        )
        return []
    if not cfg.resume and not cfg.overwrite:  # only this rank's scenes: other ranks' outputs appear meanwhile
        refuse_existing([outs[s.name] for s in mine], folder)
    bb = resolve_backbone(cfg.backbone, device=cfg.device, amp=cfg.amp)
    # scenes of the first scene's pixel grid embedded on its cells (upsampled output is on the pixel grid already):
    # the cells the output folder records, or those of this run's first readable scene, recorded for later ranks
    patch, wanted, offsets, shared = int(bb.patch_size), [s.name for s in mine], {}, None
    if not cfg.upsample:
        shared = shared_grid(
            folder, listed, patch, outputs=outs.values(), skip=unreadable or {}, grids=grids, overwrite=cfg.overwrite
        )
        if shared is not None:
            ref = shared.crs, shared.transform
            offsets = grid_offsets(listed, patch, skip=unreadable or {}, grids=grids, wanted=wanted, reference=ref)
    scene_cfg = {
        s.name: dataclasses.replace(
            cfg,
            out=str(outs[s.name]),
            world_size=1,
            rank=0,
            bands=s.bands or cfg.bands,
            nodata=cfg.nodata if cfg.nodata is not None else s.nodata,  # --nodata, else the item's raster:bands
            grid_offset=offsets.get(s.name),
            **declared_rule(s, cfg),
        )
        for s in mine
    }
    with contextlib.ExitStack() as locks:  # on any exit (a refused check too), the locks the checks hold are freed
        try:
            return _run_scenes(
                scenes, mine, stacks, outs, scene_cfg, folder, mosaic, cfg, bb, console, locks, unreadable or {}
            )
        except GeoDinoError:  # refused before any scene was written: no cell grid record left behind
            forget_grid(folder, shared, outs.values())
            raise


def _run_scenes(
    scenes: list[Scene],
    mine: list[Scene],
    stacks: dict[Path, str],
    outs: dict[str, Path],
    scene_cfg: dict[str, EmbedConfig],
    folder: Path,
    mosaic: Path,
    cfg: EmbedConfig,
    bb: Any,
    console: Any,
    locks: contextlib.ExitStack,
    unreadable: dict[str, InputError],
) -> list[Path]:
    """The body of `embed_scenes` once the scenes, their settings and the backbone are known: check the started
    scenes (`--resume`), embed the others, write the mosaic and catalog once every scene is done. `unreadable`:
    the scenes whose header could not be read (--on-error skip), skipped here as a scene failing mid-file is."""
    from geodino.data.vrt import write_vrt
    from geodino.embed.pipeline import embed_raster, says
    from geodino.embed.workdir import WorkDirGone, output_lock

    done: set[str] = set()
    prepared: dict[str, PreparedRun] = {}  # partial scenes: the check's preparation, reused by their run
    held: dict[str, contextlib.ExitStack] = {}  # partial scenes' locks, taken for their check, kept for their run
    if cfg.resume and not cfg.overwrite:  # every scene already started must match this run before any is written
        from geodino.embed.pipeline import work_dir_for

        started = [
            s
            for s in mine
            if s.name not in unreadable and (outs[s.name].exists() or work_dir_for(outs[s.name]).exists())
        ]
        check_stacks(started, stacks)
        for s in mine:  # finished by an earlier run, its input unreadable now: kept, not removed by the skip below
            if s.name in unreadable and outs[s.name].exists():
                done.add(s.name)
                warnings.warn(
                    f"scene {s.name} ({s.path}) {unreadable[s.name]}; its output {outs[s.name]} from an earlier "
                    "run is kept, unchecked against this run's settings (the mosaic still compares them with the "
                    "other scenes'); --overwrite skips the scene instead",
                    stacklevel=4,  # the caller of embed_scenes
                )
        for s in started:
            # under the scene's lock: a scene another run writes is refused as such (its pid), not judged from that
            # run's work folder (another run's settings, or a folder it is rewriting)
            lock = held[s.name] = locks.enter_context(contextlib.ExitStack())
            lock.enter_context(output_lock(outs[s.name], scene_cfg[s.name]))
            if Path(s.path) in stacks:  # a started stack's VRT is the input it was read from
                write_vrt(stacks[Path(s.path)], s.path)
            finished, prep = _check_started_scene(s, scene_cfg, bb)
            if finished:
                done.add(s.name)
                held.pop(s.name).close()  # nothing left to write there
            elif prep is not None:
                prepared[s.name] = prep
    from geodino.io import make_dirs

    make_dirs(folder)
    for path, text in stacks.items():
        write_vrt(text, path)
    from geodino.embed.scene_skips import add_to_catalog, clear_skip, read_skips, skip_scene

    for k, s in enumerate(mine, start=1):
        if s.name in done:
            continue
        if cfg.progress:  # a progress line, like the bar (each scene's own lines name it)
            print(f"geodino: scene {k}/{len(mine)} {s.name} ({s.path})", file=sys.stderr)
        clear_skip(folder, s.name)  # skipped by an earlier run: tried again
        # the scene's lock is held here too: a scene another run writes stops this one (never skipped), and a skip
        # removes only what this run wrote
        with output_lock(outs[s.name], scene_cfg[s.name]):
            if s.name in unreadable:  # its header could not be read (--on-error skip): nothing of it to embed
                skip_scene(s, outs[s.name], unreadable[s.name])
                continue
            try:  # writes the scene's STAC item (linked to its source item) once its raster is in place
                # its band_scale/band_offset: the item's raster:bands, or its Sentinel-2 properties' rule
                item = (s.radiometry_from or "declared by its STAC item") if declared_rule(s, cfg) else None
                embed_raster(
                    s.path, bb, config=scene_cfg[s.name], _prepared=prepared.pop(s.name, None), _stac=s.stac,
                    _rule_from=item,
                )  # fmt: skip
            except InputError as exc:  # this scene's input (a truncated file...); settings errors are ConfigErrors
                if cfg.on_error != "skip" or isinstance(exc, WorkDirGone):
                    raise
                skip_scene(s, outs[s.name], exc)
        if s.name in held:  # taken for its check: freed once the scene is done
            held.pop(s.name).close()
    console.flush()
    if done and says(cfg):
        print(f"geodino: {plural(len(done), 'scene')} already done with these settings, skipped", file=sys.stderr)
    skips = read_skips(folder, [n for n, p in outs.items() if not p.exists()])
    made = {n: p for n, p in outs.items() if p.exists()}
    if len(made) + len(skips) < len(outs):
        return []  # other ranks are still working: the last to finish writes the mosaic
    if not made:
        raise InputError(
            f"none of the {plural(len(outs), 'scene')} could be embedded (each was skipped under --on-error skip, "
            "on_error='skip' in Python, "
            f"e.g. {skips[0]['scene']}: {skips[0]['reason']}); fix or remove the files and run again"
        )
    # bands chosen by name (STAC --asset-bands) may have other numbers in each item: their names are the setting
    identity = ("input_bands",) if cfg.asset_bands else ()
    written = write_mosaic(list(made.values()), mosaic, skip=identity, skipped=[r["scene"] for r in skips])
    add_to_catalog(write_scene_catalog([s for s in scenes if s.name in made], made, folder, written), skips)
    if says(cfg):  # the last line names what was written (a Python call without the bar: quiet)
        wrote = f"{plural(len(made), 'feature raster')} in {folder} and {', '.join(map(str, written))}"
        if skips:
            wrote += f" ({plural(len(skips), 'scene')} skipped as unreadable: {', '.join(r['scene'] for r in skips)})"
        print(f"geodino: wrote {wrote}", file=sys.stderr)
    return written


def _check_started_scene(s: Scene, scene_cfg: dict[str, EmbedConfig], bb: Any) -> tuple[bool, PreparedRun | None]:
    """`check_started` of a scene of a resumed run. A scene this run puts on the first scene's cells (its
    `grid_offset`) that an earlier version started on its own grid is resumed (or kept) on that grid rather than
    refused: its `scene_cfg` loses the offset, and the mosaic warns that it lies off the first scene's cells."""
    from geodino.embed.pipeline import check_started

    cfg = scene_cfg[s.name]
    try:
        return check_started(s.path, cfg, bb)
    except InputError as exc:
        if cfg.grid_offset is None:
            raise
        own = dataclasses.replace(cfg, grid_offset=None)
        try:
            found = check_started(s.path, own, bb)
        except InputError:
            raise exc from None
        scene_cfg[s.name] = own
        return found
