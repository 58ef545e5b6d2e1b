"""read -> infer -> blend -> write: streaming, seam-free, resumable and parallel feature rasters.

How it runs (see docs/embed.md for the user view):

- The output is cut into chunk-aligned blocks (`plan.Plan.blocks`). A process sweeps runs of consecutive
  blocks of one column block top to bottom, tile row by tile row. It keeps only a band of accumulators one tile
  high and one column block wide (weighted feature sum, weight sum, validity); after each tile row the rows no
  later tile touches are final: they are divided by the weight sum, optionally L2-normalised, encoded
  (float32 / float16 / int8) and handed to the writer. Memory therefore depends on the tile batch and the band,
  not on the raster's size.
- Three threads overlap: a reader (windowed reads, scaling, normalisation, nodata masks, all-nodata tiles
  skipped), the main thread (batched inference, optional bf16 autocast, blending) and a writer (Zarr writes
  and progress records).
- Everything goes into a Zarr v2 store inside a work folder next to the output (`.NAME.partial/`). When all
  blocks are recorded done, one process converts/renames it into the output: the final name appears only
  when the file is complete.
- `resume=True` skips blocks recorded done and restarts a block written part-way at its first unwritten row
  (progress is recorded after every row range written, so a kill loses at most a tile row). A block's values
  are a pure function of the plan and the inputs (tiles are batched per tile row and column block,
  accumulators add tile rows in the same order however a sweep starts), so a resumed run, a run split over N
  processes and an uninterrupted run give identical bytes.

What a run says on stderr (input scaling, inference path, time, "wrote ...") goes through `Console` and `says`:
the `geodino embed` command always says it (`run_lines`), a Python call only with its progress bar, so
`embed_raster(..., progress=False)` in a notebook or a script is quiet; what went wrong is a warning regardless.
"""

from __future__ import annotations

import dataclasses
import os
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path
from typing import Any

import torch

from geodino.embed.backbone import inference_device, inference_path, resolve_backbone
from geodino.embed.config import EmbedConfig, make_config
from geodino.embed.console import Console, rank_done
from geodino.embed.extent import WindowSource, describe_window, has_extent, windowed
from geodino.embed.memory import (
    bound_heap_growth,
    check_memory,
    estimate_memory,
    heap_for_forward,
    store_threads,
)
from geodino.embed.plan import Block, Plan
from geodino.embed.prepare import PreparedRun, out_kind, prepare
from geodino.embed.sweep import Sweeper, time_line
from geodino.embed.workdir import (
    PLAN_FILE,
    STORE,
    WorkDirGone,
    check_grid,
    check_partial,
    check_store,
    damaged,
    done_blocks,
    flat_settings,
    init_work_dir,
    kept_for_resume,
    output_lock,
    partial_blocks,
    remove_stale_temps,
    settings_diff,
    valid_cells,
    wait_for,
    work_dir_for,
)
from geodino.errors import ConfigError, GeoDinoError, InputError, plural
from geodino.io import removes_created_dirs

__all__ = [
    "Console",
    "EmbedConfig",
    "PreparedRun",
    "check_complete",
    "check_memory",
    "check_resume",
    "check_started",
    "embed_raster",
    "estimate_memory",
    "partial_blocks",
    "rank_blocks",
    "run_lines",
    "says",
    "work_dir_for",
]

_RUN_LINES: ContextVar[bool] = ContextVar("geodino_embed_run_lines", default=False)


@contextmanager
def run_lines() -> Iterator[None]:
    """Within it, embed runs say what they used and wrote on stderr also without the progress bar (`--no-progress`
    holds the lines to the end instead): the `geodino embed` command's way (`commands.run`). A context variable,
    not a setting: it is how the run is called, not what it writes, so it stays out of the record and the config."""
    token = _RUN_LINES.set(True)
    try:
        yield
    finally:
        _RUN_LINES.reset(token)


def says(cfg: EmbedConfig) -> bool:
    """Whether a run prints its lines (input scaling, inference path, time, wrote ...): under `run_lines` (the
    command line) or with the progress bar (someone is watching); `embed_raster(..., progress=False)` from Python
    is quiet. Warnings are not lines: they reach the user either way."""
    return bool(cfg.progress) or _RUN_LINES.get()


def rank_blocks(blocks: Sequence[Block], rank: int, world_size: int) -> list[Block]:
    """The contiguous share of blocks of one rank (contiguous, so each rank carries its band through its share)."""
    n = len(blocks)
    return list(blocks[rank * n // world_size : (rank + 1) * n // world_size])


def _finalize(work: Path, out: Path, prep: PreparedRun, cfg: EmbedConfig) -> None:
    """Turn the finished store into the output under its final name (the only step that creates `out`)."""
    from geodino.embed.upsample import upsample_store
    from geodino.embed.writers import StoreReadError, finalize_store, missing_chunks, remove_tree, store_to_cog
    from geodino.io import atomic_path

    store = work / STORE
    check_store(work)
    missing = missing_chunks(store)
    if missing:  # every chunk is written (also all-nodata ones): done records without their data
        raise damaged(work, f"{plural(len(missing), 'chunk file')} of {STORE} missing, e.g. {missing[0]}")
    n_valid = valid_cells(work)
    if n_valid == 0:
        remove_tree(work)
        info = prep.source.info
        why = "NaN, +/-inf or masked" if info.nodata is None else f"nodata ({info.nodata:g}), NaN, +/-inf or masked"
        raise InputError(
            f"input {info.path} has no valid pixel (every one is {why}), so the feature raster would be empty; "
            "check the file, or pass --nodata (nodata= in Python) to override a wrong declared nodata value"
        )
    prep.n_valid = n_valid
    if cfg.upsample:
        up = work / "upsampled.zarr"
        remove_tree(up)
        upsample_store(store, up, prep.plan, l2=prep.l2, progress=cfg.progress, source=prep.source)
        store = up
    finalize_store(store)
    with atomic_path(out, overwrite=True) as tmp:
        if out_kind(out) == "zarr":
            os.replace(store, tmp)
        else:
            try:
                counted = store_to_cog(store, tmp, cache_mb=cfg.gdal_cache_mb, progress=cfg.progress)
            except StoreReadError as exc:
                raise damaged(work, f"{STORE}: {exc}") from exc
            if not cfg.upsample:  # what was written, not what the progress records say
                prep.n_valid = counted
    remove_tree(work)
    remove_stale_temps(out)  # a conversion killed earlier (its process is gone) left these


@removes_created_dirs
def embed_raster(
    input: Any,
    backbone: Any = None,
    out: str | Path | None = None,
    *,
    config: EmbedConfig | None = None,
    _prepared: PreparedRun | None = None,
    _stac: Mapping[str, Any] | None = None,
    _rule_from: str | None = None,
    **options: Any,
) -> Path:
    """Write the backbone's patch features of a raster as a georeferenced COG (.tif) or GeoZarr (.zarr).

    `input`: a raster path (GeoTIFF, COG, VRT...), a Zarr/NetCDF cube path or an xarray object.
    `backbone`: a spec string for `geodino.backbones.load_backbone` or a backbone object (see
    `geodino.embed.backbone.Backbone`). `options` are `EmbedConfig` fields (tile, overlap, blend, layers, dtype,
    resume, workers ...). With `progress=False` the run is quiet on stderr (no bar, none of the lines the command
    prints: input scaling, inference path, time, wrote; `run_lines` asks for them); warnings still come.
    Returns the output path, which exists only once the raster is complete. `_prepared` is
    internal: the `prepare` of this very input, config and backbone object when the caller already made it
    (`check_started` of a resumed folder run), so it is not made twice. Once the raster is complete its STAC item
    is written beside it (`OUT.stac.json`, `embed.stac_items`); `_stac` is internal: the source STAC item of a
    scene of a many-scene run, which the item links to; `_rule_from` is internal too: what gave the scene's
    `band_scale`/`band_offset` when the user did not ("its STAC item's raster:bands"), for the line naming the rule.
    """
    if not isinstance(input, str | Path) and not hasattr(input, "dims"):  # not a path, not an xarray object
        raise InputError(
            f"embed_raster takes a raster or cube path or an xarray DataArray/Dataset (with x/y coordinates and a "
            f"CRS), not a {type(input).__module__}.{type(input).__name__}; write the array as a GeoTIFF first so "
            "the features can carry its georeference"
        )
    cfg = _config(config, backbone, out, options)
    from geodino.embed.command_flags import number_band_names
    from geodino.embed.stac_items import write_raster_item

    number_band_names(cfg, [input])  # bands=["red", "nir"]: their numbers in this input

    out_path = Path(cfg.out).expanduser()
    with output_lock(out_path, cfg), kept_for_resume(out_path):
        path = _run(input, cfg, finalize=True, prep=_prepared, rule_from=_rule_from)
        write_raster_item(path, _stac)  # nothing while another rank still finishes the raster
    return path


def _config(config: EmbedConfig | None, backbone: Any, out: Any, options: dict[str, Any]) -> EmbedConfig:
    """A copy of `config` (the caller's is never changed) with the options, backbone and output set, validated."""
    cfg = make_config(config, backbone, out, options)
    if not cfg.out:
        raise ConfigError("no output given; pass --out OUT.tif or OUT.zarr (out= in Python)")
    return cfg


def _run(
    input: Any, cfg: EmbedConfig, *, finalize: bool, prep: PreparedRun | None = None, rule_from: str | None = None
) -> Path:
    """`embed_raster` with a validated config; `finalize=False` (a spawned worker) writes its share of blocks and
    leaves the conversion to the output to the process that spawned it; `prep`: `prepare` already made."""
    out_path = Path(cfg.out).expanduser()
    out_kind(out_path)
    from geodino.embed.map_outputs import check_inputs_kept

    # with --overwrite, `embed in.tif --out in.tif` (or a folder of scenes embedded into itself) replaced the input
    check_inputs_kept("embed", {"--out": cfg.out}, {"input raster": input})
    work = work_dir_for(out_path)
    if out_path.exists() and not cfg.overwrite and not cfg.resume:
        raise InputError(
            f"output {out_path} already exists; pass --overwrite to replace it or --resume to keep it "
            "(overwrite=True or resume=True in Python)"
        )
    from geodino.embed.stac_items import raster_item_path
    from geodino.io import refuse_folder_in_the_way, refuse_long_name

    refuse_folder_in_the_way(out_path)
    # its STAC item's name too (`X.zarr.stac.json` of a 250-byte X.zarr): refused once the raster was written
    refuse_long_name(raster_item_path(out_path), "output's STAC item")
    from geodino.io import make_dirs

    make_dirs(out_path.parent)
    if cfg.threads:
        torch.set_num_threads(int(cfg.threads))
    t0 = time.perf_counter()
    import rasterio

    # GDAL sizes its block cache once per process, from GDAL_CACHEMAX as seen by the first thread that reads a
    # block (the reader thread here, where rasterio's thread-local Env is not visible): without this the cache
    # defaults to 5% of RAM and fills with the input as a large raster streams through (found by the 16k bench).
    os.environ.setdefault("GDAL_CACHEMAX", str(int(cfg.gdal_cache_mb)))
    bound_heap_growth()
    with rasterio.Env(GDAL_CACHEMAX=int(cfg.gdal_cache_mb) * 2**20):
        return _embed(input, cfg, out_path, work, t0, finalize=finalize, prep=prep, rule_from=rule_from)


def check_complete(out: Path, prep: PreparedRun) -> None:
    """Refuse `--resume` onto a finished output that is damaged (truncated, chunks missing: `damage_of`) or was
    written with other settings (one line naming the options that differ, with both values): "nothing to resume"
    must not hide that the file is not what this run would write."""
    from geodino.embed.writers import EmbeddingReader, damage_of, flatten_meta

    why = damage_of(out)
    if why:
        raise InputError(
            f"output {out} exists but is damaged ({why}); pass --overwrite to write it again (overwrite=True in Python)"
        )
    with EmbeddingReader(out) as rd:
        stored = rd.metadata
    if "model_spec" not in stored:
        raise InputError(
            f"output {out} exists but holds no geodino metadata (GEODINO_MODEL_SPEC), so it was not written by "
            f"`geodino embed`; pass --overwrite to replace it or choose another --out (overwrite=True or out= in "
            "Python)"
        )
    diff = settings_diff(flat_settings(stored), flatten_meta(prep.meta))
    if diff:
        raise InputError(
            f"output {out} is complete but was written with other settings: {'; '.join(diff)}; rerun with the same "
            f"settings to keep it, pass --overwrite to replace it, or choose another --out (overwrite=True or out= in "
            "Python)"
        )


def check_resume(input: Any, cfg: EmbedConfig, bb: Any) -> bool:
    """Before a `--resume` run writes anything: check that the output `cfg.out` (finished, or partial) was made
    with `cfg`'s settings (an InputError names those that differ); True when it is finished, so nothing is left."""
    return check_started(input, cfg, bb)[0]


def check_started(input: Any, cfg: EmbedConfig, bb: Any) -> tuple[bool, PreparedRun | None]:
    """`check_resume`, and the preparation the check made (None when `cfg.out` is not started): a caller that goes
    on to resume a partial output passes it to `embed_raster(..., _prepared=)`, so the input is not opened,
    probed and planned a second time (a resumed folder run checks every started scene before writing any)."""
    out = Path(cfg.out).expanduser()
    work = work_dir_for(out)
    if not out.exists() and not (work / PLAN_FILE).exists():
        return False, None
    prep = prepare(input, cfg, bb)
    if out.exists():
        check_complete(out, prep)
        return True, prep
    check_partial(work, prep.ident, input_identity=prep.meta.get("input_identity"))
    return False, prep


def _embed(
    input: Any,
    cfg: EmbedConfig,
    out_path: Path,
    work: Path,
    t0: float,
    *,
    finalize: bool,
    prep: PreparedRun | None,
    rule_from: str | None = None,
) -> Path:
    """The body of `embed_raster` (inside a bounded GDAL cache); `prep` when the caller already prepared the run."""
    source = None
    if prep is None:  # the input's header first: a grid the output cannot hold is refused before the backbone loads
        from geodino.embed.sources import open_source

        source = open_source(
            input, variable=cfg.variable, bands=cfg.bands, nodata=cfg.nodata, time=cfg.time, sensor=cfg.sensor
        )
        patch = patch_of(cfg.backbone)
        # the grid checked is the window's (`prepare` cuts it when patch is unknown; a shared grid's is wider)
        if patch and (has_extent(cfg) or cfg.grid_offset):
            source = windowed(source, cfg, patch)
        if patch or not has_extent(cfg):
            check_grid(out_path, source.info.height, source.info.width, patch, upsample=cfg.upsample)
    # a workers run's parent only probes and fingerprints the weights it sends: a spec is loaded on the host, so the
    # parent opens no context on an accelerator (on GPUs in exclusive-process mode, one on GPU 0 refused worker 0)
    spec_to_workers = cfg.workers > 1 and isinstance(cfg.backbone, str)
    bb = resolve_backbone(cfg.backbone, device="cpu" if spec_to_workers else cfg.device, amp=cfg.amp)
    if not spec_to_workers and inference_device(bb, cfg.device, cfg.workers) != cfg.device:
        # the probe, batches and blending follow the weights of an object the caller passed
        cfg = dataclasses.replace(cfg, device=inference_device(bb, cfg.device, cfg.workers))
    if cfg.workers <= 1:  # a rank's own GPU (cuda:LOCAL_RANK) wins over the object's index: moved there
        from geodino.embed.workers import place_backbone

        bb = place_backbone(bb, cfg.device)
    prep = prep or prepare(source, cfg, bb)
    if cfg.overwrite and not cfg.resume and cfg.rank == 0 and finalize and work.exists():
        # only once the input, the backbone and the settings passed their checks: a refused run keeps the
        # resumable work of an interrupted one
        from geodino.embed.writers import remove_tree

        remove_tree(work)
    if out_path.exists() and not cfg.overwrite:  # --resume (see `_run`): the settings must match before "nothing to do"
        check_complete(out_path, prep)
        if cfg.world_size == 1 and cfg.rank == 0:
            remove_stale_temps(out_path)
        if says(cfg):
            print(f"geodino: {out_path} is already complete; nothing to resume", file=sys.stderr)
        return out_path
    heap_for_forward(prep.plan, cfg, int(getattr(bb, "embed_dim", 0) or prep.dim))
    store_threads(cfg)  # CPU: one zarr codec thread, not one malloc arena per core + 4
    # what the run uses, said once: by rank 0, not again by the workers it spawns (finalize=False)
    console = Console(now=cfg.progress, quiet=not (cfg.rank == 0 and finalize and says(cfg)))
    if isinstance(prep.source, WindowSource):
        console.say(describe_window(prep.source.window, cfg, prep.plan.patch))
    # a STAC scene's band_scale/band_offset come from its item (`rule_from`), not from the user
    console.say(f"geodino: input DN -> reflectance {prep.scale_rule.said(by=rule_from or '')}")
    before, known_eager = getattr(bb, "model", None), getattr(bb, "__dict__", {}).get("_eager_model")
    try:
        prep.meta.update(inference_path(bb, cfg, prep.plan, say=console.say))
        return _write(input, cfg, bb, prep, out_path, work, t0, finalize=finalize, console=console)
    finally:  # the caller's backbone object gets its model back (it may be used for other things next)
        if before is not None and getattr(bb, "model", None) is not before:
            from geodino.inference import restore_model

            restore_model(bb, before, known_eager)


def patch_of(backbone: Any) -> int | None:
    """The patch size of a backbone object, or the one its spec states (`arch:`, `baseline:`); None when only its
    weights say (a checkpoint, a timm model): its grid is then checked once it is loaded."""
    if isinstance(backbone, str | Path):
        from geodino.backbones.spec import stated_patch_size

        return stated_patch_size(backbone)
    patch = getattr(backbone, "patch_size", None)
    return int(patch) if isinstance(patch, int) else None


def _write(
    input: Any,
    cfg: EmbedConfig,
    bb: Any,
    prep: PreparedRun,
    out_path: Path,
    work: Path,
    t0: float,
    *,
    finalize: bool,
    console: Console,
) -> Path:
    """Sweep this rank's blocks into the work store, then (the last process to finish) write the output."""
    primary = cfg.rank == 0
    plan = prep.plan
    sweeper: Sweeper | None = None  # this process's sweep (None when spawned workers did it)
    t_sweep, sweep_s = t0, 0.0
    if cfg.resume and primary and finalize and cfg.world_size == 1:
        remove_stale_temps(out_path)  # of a conversion killed earlier (only files of processes no longer alive)
    # a run that starts the partial output removes it when the input is refused (see below)
    fresh = primary and finalize and cfg.world_size == 1 and not work.exists()
    if cfg.workers > 1:
        from geodino.embed.workers import spawn_workers

        spawn_workers(input, bb, cfg, work, prep, fresh=fresh)
    else:
        if primary:
            init_work_dir(work, prep, join=cfg.resume or cfg.world_size > 1 or not finalize)
        else:
            wait_for(work / PLAN_FILE)
            init_work_dir(work, prep, join=True)  # checks that the settings match rank 0's
        done = done_blocks(work)
        todo = [b for b in rank_blocks(plan.blocks(), cfg.rank, cfg.world_size) if b.index not in done]
        sweeper = Sweeper(prep, bb, cfg, work)
        partial = partial_blocks(work)
        for k, b in enumerate(todo):  # a block written part-way restarts at the first row not written
            rows, n_valid = partial.get(b.index, (b.r0, 0))
            if b.r0 < rows < b.r1:
                todo[k] = dataclasses.replace(b, r0=rows)
                sweeper.start_counts[b.index] = n_valid
        t_sweep = time.perf_counter()
        try:
            sweeper.run(todo)
        except GeoDinoError as exc:
            # bad input (an unreadable block...): a resume cannot fix it, so a run that started the partial output
            # removes it; kills and interrupts keep it for --resume (and a folder removed under this run may be
            # another run's by now)
            if fresh and not isinstance(exc, WorkDirGone):
                from geodino.embed.writers import remove_tree

                remove_tree(work)
            raise
        sweep_s = time.perf_counter() - t_sweep
        if not finalize:
            return out_path
    if len(done_blocks(work)) < len(plan.blocks()):  # another rank is still working; the last one to finish finalises
        return rank_done(console, cfg, out_path)
    if cfg.world_size > 1:  # ranks launched outside: the first to grab the lock finalises
        try:
            os.close(os.open(work / "finalize.lock", os.O_CREAT | os.O_EXCL | os.O_WRONLY))
        except FileExistsError:
            return rank_done(console, cfg, out_path)
    t_fin = time.perf_counter()
    _finalize(work, out_path, prep, cfg)
    t_end = time.perf_counter()
    console.flush()
    if not says(cfg):  # a Python call without the bar: quiet
        return out_path
    if sweeper is not None and cfg.world_size == 1:  # one process did the whole sweep: its clock covers it
        setup = t_sweep - t0
        line = time_line(t_end - t0, setup, sweep_s, t_end - t_fin, sweeper.timing, sweeper.tiles, sweeper.device.type)
        print(f"geodino: {line}", file=sys.stderr)
    # the last line names what was written (on the command line with or without the progress bar)
    print(f"geodino: wrote {out_path} ({written_grid(prep, cfg.upsample)}, {t_end - t0:.1f}s)", file=sys.stderr)
    return out_path


def written_grid(prep: PreparedRun, upsample: bool) -> str:
    """The grid of the output as written, width x height as GDAL reports it: patch-grid cells, or input pixels
    for an upsampled raster (from which cells), and the share of valid cells."""
    plan = prep.plan
    cells = f"{plan.out_width} x {plan.out_height} cells (width x height) of {plan.patch} px"
    valid = _valid_note(prep.n_valid, plan)
    if upsample:
        return (
            f"{prep.dim} bands, {plan.width_px} x {plan.height_px} px (width x height) at the input resolution, "
            f"upsampled from {cells}{valid}"
        )
    return f"{prep.dim} bands, {cells}{valid}"


def _valid_note(n_valid: int | None, plan: Plan) -> str:
    total = plan.out_height * plan.out_width
    if n_valid is None or n_valid == total:
        return ""
    return f", {n_valid} valid cells ({100 * n_valid / total:.1f}%; the rest is nodata)"
