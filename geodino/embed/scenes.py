"""Many scenes in one `geodino embed` run: a folder, a glob, a text list of rasters, or a STAC JSON.

Each scene gets its own feature raster `OUT/<scene>.tif` (computed by `embed_raster` on the scene's own grid),
then a VRT mosaic of them (`OUT/mosaic.vrt`, or one per CRS `OUT/mosaic_EPSG_32633.vrt` when the scenes span
several) that carries the feature rasters' metadata, so QGIS, rasterio and the `geodino embed` products read it
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
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from geodino.data.paths import RASTER_EXTS, resolve_paths
from geodino.embed.config import DECLARED_BY_CF, DECLARED_BY_FILE, EmbedConfig, make_config
from geodino.embed.scene_checks import (
    check_declared_rules,
    check_headers,
    check_stacks,
    declared_rule,
    earlier_skip,
    in_bbox,
    refuse_existing,
)
from geodino.embed.stac import Scene, is_stac, read_stac
from geodino.embed.stac_items import raster_item_path, write_catalog, write_raster_item
from geodino.errors import ConfigError, InputError, plural
from geodino.io import removes_created_dirs

if TYPE_CHECKING:
    from geodino.embed.pipeline import PreparedRun

__all__ = ["Scene", "embed_scenes", "is_many", "list_scenes", "scene_outputs", "stack_sources"]

MOSAIC = "mosaic.vrt"
STACKED = "stacked"  # OUT/stacked/<item>.vrt: the per-item VRTs of one-band-per-asset STAC items


def is_many(inputs: list[str]) -> bool:
    """Whether `geodino embed` inputs name many scenes (several paths, a folder that is not a Zarr store, a glob,
    a `.txt` list or STAC JSON) rather than one raster or cube."""
    from geodino.data.cubes import is_zarr_store

    if len(inputs) != 1:
        return True
    text = str(inputs[0])
    if is_stac(text) or any(ch in text for ch in "*?[") or text.lower().endswith(".txt"):
        return True
    return Path(text).expanduser().is_dir() and not is_zarr_store(text)


def list_scenes(
    inputs: list[str], *, asset: str | None = None, asset_bands: list[str] | None = None, exclude: Path | None = None
) -> list[Scene]:
    """The scenes of a run, in a stable order, with unique output names; files under `exclude` (the output folder:
    `embed archive/ --out archive/feats/` must not take its own outputs for scenes on a rerun) are left out."""
    if len(inputs) == 1 and is_stac(inputs[0]):
        return read_stac(str(inputs[0]), asset, asset_bands)
    if asset or asset_bands:
        raise ConfigError(_asset_not_stac(inputs, asset))
    paths = _scene_paths(inputs)
    if exclude is not None:
        paths = [p for p in paths if p.startswith("/vsi") or "://" in p or not _inside(p, exclude)]
    names = _scene_names(paths)
    scenes = [Scene(name, str(p), None, p) for p, name in zip(paths, names)]
    if dup := sorted(n for n, c in Counter(names).items() if c > 1):
        raise InputError(f"scenes {dup[0]!r} appear twice in the input list; list each raster once")
    return scenes


def _asset_not_stac(inputs: list[str], asset: str | None) -> str:
    """Why --asset/--asset-bands cannot serve these inputs, naming the input(s) that are not STAC JSON. An unquoted
    `--asset red nir item.json` gives `nir` as an input: when those inputs are asset names of the one STAC input, the
    comma spelling (`--asset red,nir`) is the way out."""
    from geodino.embed.stac import asset_names_in

    only = (
        "--asset and --asset-bands (asset= and asset_bands= in Python) apply to STAC input (a .json ItemCollection, "
        "catalog or item) only"
    )
    stac = [str(i) for i in inputs if is_stac(str(i))]
    other = [str(i) for i in inputs if not is_stac(str(i))]
    if not stac:
        return only
    if not other:
        return f"{only}, one per run; got {len(stac)} STAC inputs ({', '.join(stac)}): embed each in a run of its own"
    shown = ", ".join(other[:3]) + (f" and {len(other) - 3} more" if len(other) > 3 else "")
    line = f"{only}, but {shown} {'is' if len(other) == 1 else 'are'} not STAC input beside {stac[0]}"
    if len(stac) == 1 and asset and (names := asset_names_in(stac[0], other)) == other:
        return (
            f"{line}: {' '.join(names)} {'is an asset' if len(names) == 1 else 'are assets'} of {stac[0]}; "
            f"give several single-band assets apart by commas (--asset {','.join([asset, *names])})"
        )
    return line + "; embed the STAC input and the rasters in separate runs"


_HINT = "pass a folder, a glob or a .txt list of the scenes (rasters, or Zarr stores and NetCDF files)"


def _scene_paths(inputs: list[str]) -> list[str]:
    """The scenes the inputs name, in order, each once: rasters (`resolve_paths`: folders, globs, lists, files) and
    datacubes (`cube_open.cube_paths`): a Zarr store or NetCDF file named, and those a folder or glob holds beside
    its rasters. Before, a Zarr store named among several inputs was searched as a folder of rasters, and a folder
    or glob of cubes was refused as holding "no raster files" (a .txt list of them was the only way)."""
    from geodino.data.cube_open import cube_paths, is_cube_store
    from geodino.data.paths import _has_magic

    found: list[str] = []
    for item in inputs:
        text = str(item)
        local = not (text.startswith("/vsi") or "://" in text)
        p = Path(text).expanduser()
        if local and is_cube_store(p) and p.exists():
            found.append(str(p))
            continue
        many = local and (p.is_dir() or _has_magic(text))
        try:
            cubes = cube_paths(text) if many else []
        except InputError:  # none there: the rasters' line below says what was looked for
            cubes = []
        try:
            found += resolve_paths(text, RASTER_EXTS, what="raster", hint=_HINT)
        except InputError:
            if not cubes:
                raise
        found += cubes
    return list(dict.fromkeys(found))


def _scene_names(paths: list[str]) -> list[str]:
    """Output names: the stem; a stem in several folders gets its two folders in front (x/y/s.tif -> x_y_s), more
    of its path while those are alike (a/2024/06/s.tif, b/2024/06/s.tif -> a_2024_06_s, b_2024_06_s), and one still
    shared in one folder its format (x/y/s.tif, x/y/s.zarr -> x_y_s_tif). A file listed twice keeps one name."""
    stems = [Path(p).stem for p in paths]
    parents = [Path(p).resolve().parts[:-1] for p in paths]
    names = list(stems)
    for k in range(2, max(map(len, parents), default=0) + 1):
        count, folders = Counter(names), Counter(n for n, _ in set(zip(names, parents)))
        clash = {n for n in names if count[n] > 1 and (k == 2 or folders[n] > 1)}
        if not clash:
            break
        names = ["_".join((*q[-k:], s)) if n in clash else n for n, q, s in zip(names, parents, stems)]
    count = Counter(names)
    fmt = [Path(p.rstrip("/")).suffix.lstrip(".").lower() or "raster" for p in paths]  # "tif", "zarr", "vrt"
    return [f"{n}_{f}" if count[n] > 1 else n for f, n in zip(fmt, names)]


def _inside(path: str, folder: Path) -> bool:
    return Path(path).resolve().is_relative_to(folder.resolve())


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


def stack_sources(
    scenes: list[Scene],
    folder: Path,
    *,
    say: Callable[[str], None] | None = None,
    unreadable: dict[str, InputError] | None = None,
) -> tuple[list[Scene], dict[Path, str]]:
    """Scenes with `sources` (several single-band STAC assets) pointed at `folder`/<scene>.vrt, and the XML to
    write there (`geodino.data.vrt.write_vrt`) once the run has passed its checks: every item is checked (asset
    headers only, remote ones by range requests) before anything is written, so bad input leaves no files.
    `say` is told which assets are resampled on read. `unreadable` (--on-error skip): a scene with an asset GDAL
    cannot open is put there (name -> why) and gets no VRT, as `check_headers` does with a raster."""
    from geodino.data.vrt import SourceUnreadable, stack_files_xml

    out, pending, notes = [], {}, []
    for s in scenes:
        if not s.sources:
            out.append(s)
            continue
        path = folder / f"{s.name}.vrt"
        try:
            pending[path], resampled = stack_files_xml(s.sources, where=s.origin)
        except SourceUnreadable as exc:
            if unreadable is None:  # a --resume that forgot --on-error skip is told so
                raise InputError(f"{exc}{earlier_skip(folder.parent, s.name)}") from exc
            why = exc.why.rstrip(".") if exc.path in exc.why else f"{exc.path}: {exc.why.rstrip('.')}"
            unreadable[s.name] = InputError(f"cannot open its asset {exc.label!r} ({why}); re-download or re-copy it")
            resampled = []
        notes += resampled
        out.append(dataclasses.replace(s, path=str(path)))
    if say is not None and notes:
        say(
            f"geodino: resampled on read onto each item's first asset grid: {'; '.join(sorted(set(notes)))} "
            f"({plural(len(notes), 'asset')}); list the finest band first to keep its resolution"
        )
    return out, pending


# metadata every scene of one mosaic must share: its bands mean the same thing everywhere (the weights, not the
# spec text that named them: a relative and an absolute path to one file are one backbone), computed from inputs
# read the same way (input bands and DN scaling: ranks of one SLURM array launched with `--scale 0.0001 --bands
# 3,2,1` and without both wrote scenes, and the mosaic mixed them)
MOSAIC_IDENTITY = (
    "model_fingerprint",
    "layers",
    "layer_mode",
    "final_norm",
    "l2_normalize",
    "dtype",
    "input_bands",
    "input_scale",
)


def _scale_setting(desc: str | None) -> str | None:
    """The input scaling as a setting: the dtype defaults ("x/255 (uint8)", "x/10000 (uint16, assumed)", floats
    as they are) are one setting, "by the input's data type", so scenes of different data types are not refused."""
    from geodino.embed.memory import default_scale_desc

    if desc is not None and (desc.startswith(("x/255 (", "x/10000 (")) or desc == default_scale_desc("float32")):
        return "default (by the input's data type)"
    # each scene's own rule (a STAC item's raster:bands, the GDAL scale/offset of its file, a cube's CF rule): one
    if desc is not None and desc.endswith(("(band_scale/band_offset)", f"({DECLARED_BY_FILE})", f"({DECLARED_BY_CF})")):
        return "per scene (band_scale/band_offset, or the scale/offset each scene declares)"
    return desc


def _mosaic(
    paths: list[Path], mosaic: Path, *, skip: tuple[str, ...] = (), skipped: list[str] | None = None
) -> list[Path]:
    """One VRT of every scene per CRS (`mosaic` itself when they share one), with the first scene's GEODINO tags;
    scenes written with another backbone, other layers or other input settings (`MOSAIC_IDENTITY` less `skip`)
    are refused, naming the setting and both values (they cannot share one set of bands). `skipped`: the scenes
    left out under --on-error skip, recorded as GEODINO_SKIPPED_SCENES."""
    import rasterio

    groups: dict[str, list[Path]] = {}
    tags: dict[str, str] = {}

    def setting(t: dict[str, str], k: str) -> str | None:
        v = t.get(f"GEODINO_{k.upper()}")
        return _scale_setting(v) if k == "input_scale" else v

    for p in paths:
        with rasterio.open(p) as src:
            key = src.crs.to_string() if src.crs else "none"
            own = {k: v for k, v in src.tags().items() if k.startswith("GEODINO_")}
        if not tags:
            tags, first = own, p
        differ = [k for k in MOSAIC_IDENTITY if k not in skip and setting(tags, k) != setting(own, k)]
        if differ:
            names = [f"GEODINO_{k.upper()}" for k in differ]
            both = "; ".join(
                f"{k} {tags.get(n, 'not recorded')} vs {own.get(n, 'not recorded')}"
                for k, n in zip(differ, names, strict=True)
            )
            raise InputError(
                f"scene outputs {first.name} and {p.name} in {p.parent} were written with other settings "
                f"({both}), so they cannot share one mosaic; redo the run with the same settings on every rank and "
                "--overwrite (overwrite=True in Python)"
            )
        groups.setdefault(key, []).append(p)
    tags["GEODINO_INPUT"] = f"mosaic of {plural(len(paths), 'scene')}"
    if skipped:
        tags["GEODINO_SKIPPED_SCENES"] = ", ".join(skipped)
    from geodino.data.vrt import mosaic_vrt

    if len(groups) == 1:
        return [mosaic_vrt(paths, mosaic, metadata=tags)]
    written = []
    for key, group in groups.items():
        label = "".join(ch if ch.isalnum() else "_" for ch in key)
        written.append(mosaic_vrt(group, mosaic.with_name(f"{mosaic.stem}_{label}{mosaic.suffix}"), metadata=tags))
    return written


def _catalog(scenes: list[Scene], outs: dict[str, Path], folder: Path, mosaics: list[Path]) -> Path | None:
    """The scenes' STAC items (those another rank, or an earlier run, has not written yet) and `catalog.json` (its
    path; None when a catalog.json geodino did not write is in the way)."""
    for s in scenes:
        if not raster_item_path(outs[s.name]).exists():
            write_raster_item(outs[s.name], s.stac)
    items = [raster_item_path(outs[s.name]) for s in scenes]
    return write_catalog(folder, [p for p in items if p.exists()], mosaics=mosaics)


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
    if cfg.bbox is not None:
        scenes = in_bbox(scenes, cfg)
    from geodino.embed.pipeline import Console, says

    # without the bar, notes come at the end (see Console); a Python call without the bar says none (`says`)
    console = Console(now=cfg.progress, quiet=not says(cfg))
    # --on-error skip: a scene whose header (or a stacked asset's) cannot be opened is skipped by the rank it falls
    # to (`_run_scenes`); the ranks' shares stay those of every scene listed, readable or not
    unreadable: dict[str, InputError] | None = {} if cfg.on_error == "skip" else None
    scenes, stacks = stack_sources(scenes, folder / STACKED, say=console.say, unreadable=unreadable)
    outs = {s.name: folder / f"{s.name}.tif" for s in scenes}
    by_file = check_headers(scenes, cfg, unreadable, folder)
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
    scene_cfg = {
        s.name: dataclasses.replace(
            cfg,
            out=str(outs[s.name]),
            world_size=1,
            rank=0,
            bands=s.bands or cfg.bands,
            nodata=cfg.nodata if cfg.nodata is not None else s.nodata,  # --nodata, else the item's raster:bands
            **declared_rule(s, cfg),
        )
        for s in mine
    }
    with contextlib.ExitStack() as locks:  # on any exit (a refused check too), the locks the checks hold are freed
        return _run_scenes(
            scenes, mine, stacks, outs, scene_cfg, folder, mosaic, cfg, bb, console, locks, unreadable or {}
        )


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
        from geodino.embed.pipeline import check_started, work_dir_for

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
            finished, prep = check_started(s.path, scene_cfg[s.name], bb)
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
                item = "declared by its STAC item" if declared_rule(s, cfg) else None  # its band_scale/band_offset
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
    written = _mosaic(list(made.values()), mosaic, skip=identity, skipped=[r["scene"] for r in skips])
    add_to_catalog(_catalog([s for s in scenes if s.name in made], made, folder, written), skips)
    if says(cfg):  # the last line names what was written (a Python call without the bar: quiet)
        wrote = f"{plural(len(made), 'feature raster')} in {folder} and {', '.join(map(str, written))}"
        if skips:
            wrote += f" ({plural(len(skips), 'scene')} skipped as unreadable: {', '.join(r['scene'] for r in skips)})"
        print(f"geodino: wrote {wrote}", file=sys.stderr)
    return written
