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
"""

from __future__ import annotations

import dataclasses
import json
import os
import queue
import sys
import threading
import time
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from geodino.embed.backbone import describe_backbone, layer_indices, parse_layers, resolve_backbone
from geodino.embed.blend import BLEND_MODES, tile_weights
from geodino.embed.plan import Block, Plan, auto_chunk, make_plan
from geodino.embed.sources import open_source
from geodino.embed.writers import DEQUANT_RULE, DTYPES, ZarrBlockWriter, create_store, encode
from geodino.errors import ConfigError, GeoDinoError, InputError, did_you_mean

PLAN_FILE = "plan.json"
IDENT_KEYS = ("blend", "margin", "layers", "layer_mode", "norm", "dtype", "bands", "nodata", "upsample")
STORE = "store.zarr"
DONE = "done"


@dataclasses.dataclass
class EmbedConfig:
    """Options of `geodino embed` / `embed_raster` (YAML keys; CLI flags use the same names with dashes)."""

    backbone: str = ""  # spec: checkpoint path, arch:vit_small?bands=4, timm:NAME ...
    out: str = ""  # OUT.tif (COG) or OUT.zarr (GeoZarr v2)
    tile: int = 512  # tile size in input pixels (multiple of the patch size)
    overlap: int = 128  # overlap between tiles in input pixels (multiple of the patch size, <= tile/2)
    blend: str = "cosine"  # cosine | hann | center
    margin: int | None = None  # px at inner tile borders given weight 0 (cosine/hann); None: overlap/4
    batch_size: int = 8
    layers: str = "last"  # last | four_last | four_even | block indices "4,8,11"
    layer_mode: str = "concat"  # concat | mean (of several layers)
    norm: bool = True  # apply the backbone's final LayerNorm to the patch features
    l2_normalize: bool | None = None  # unit-length vectors; None: on for int8, off otherwise
    dtype: str = "float32"  # float32 | float16 | int8
    chunk: int = 0  # storage chunk in output cells; 0: auto (whole pixel vectors, <= 16 MB)
    block_rows: int = 0  # rows of a resume/parallel block (multiple of chunk); 0: one chunk
    max_block_cols: int = 512  # widest column block (cells): bounds the blending band's memory
    upsample: bool = False  # write at the input resolution (bilinear) instead of the patch grid
    sensor: str | None = (
        None  # the data's sensor: its DN -> reflectance scale (the backbone's stats come with its spec)
    )
    scale: float | None = None  # explicit DN -> reflectance factor (overrides the dtype default)
    bands: list[int] | None = None  # 1-based input bands to use (default: all)
    nodata: float | None = None  # override the input's declared nodata value
    variable: str | None = None  # variable of a Zarr/NetCDF cube input
    allow_no_crs: bool = False
    overwrite: bool = False
    resume: bool = False
    amp: bool = False  # bf16 autocast for inference
    device: str = "cpu"
    workers: int = 1  # spawn this many processes on disjoint blocks
    world_size: int = 1  # or: this process is `rank` of `world_size` launched externally (e.g. SLURM)
    rank: int = 0
    threads: int = 0  # torch intra-op threads (0: default)
    gdal_cache_mb: int = 64  # GDAL block cache while reading/converting (GDAL's default, 5% of RAM, grows with size)
    progress: bool = True

    def validate(self) -> None:
        if self.blend not in BLEND_MODES:
            raise ConfigError(f"blend={self.blend!r} is not valid; choose one of {', '.join(BLEND_MODES)}")
        if self.dtype not in DTYPES:
            raise ConfigError(f"dtype={self.dtype!r} is not valid; choose one of {', '.join(DTYPES)}")
        if self.layer_mode not in ("concat", "mean"):
            raise ConfigError(f"layer_mode={self.layer_mode!r} is not valid; choose concat or mean")
        if self.dtype == "int8" and self.l2_normalize is False:
            raise ConfigError("dtype=int8 stores unit-length vectors (AlphaEarth rule); drop l2_normalize=false")
        if self.tile < 1:
            raise ConfigError(f"tile={self.tile} must be positive; pass --tile 512 (a multiple of the patch size)")
        if self.overlap < 0:
            raise ConfigError(
                f"overlap={self.overlap} must be >= 0; pass --overlap 0 or a positive multiple of the patch size "
                f"(default {EmbedConfig.overlap})"
            )
        if self.margin is not None and (self.margin < 0 or 2 * self.margin > self.overlap):
            raise ConfigError(
                f"margin={self.margin} must be between 0 and overlap/2 ({self.overlap // 2}); pass a --margin in "
                f"that range or leave it out (default overlap/4)"
            )
        if self.batch_size < 1 or self.workers < 1 or self.world_size < 1:
            raise ConfigError("batch_size, workers and world_size must be >= 1")
        if not 0 <= self.rank < self.world_size:
            raise ConfigError(f"rank={self.rank} must be in 0..{self.world_size - 1} for world_size={self.world_size}")
        if self.workers > 1 and self.world_size > 1:
            raise ConfigError("use either workers=N (spawned here) or world_size/rank (launched outside), not both")
        parse_layers(self.layers)


def work_dir_for(out: Path) -> Path:
    """The deterministic work folder of an output (shared by resumed runs and parallel ranks)."""
    return out.with_name(f".{out.name}.partial")


# ---------------------------------------------------------------------------------------------------------------
# input scaling


def input_scaler(info: Any, cfg: EmbedConfig) -> tuple[Callable[[np.ndarray], np.ndarray], str]:
    """DN -> reflectance for the input (the data's sensor decides), and a description for the metadata."""
    if cfg.sensor:
        from geodino.data.sensors import get_sensor

        sensor = get_sensor(cfg.sensor)
        if sensor.n_bands != info.count:
            raise InputError(
                f"sensor {sensor.name!r} has {sensor.n_bands} bands but input {info.path} has {info.count}; "
                f"pick matching bands with --bands or another --sensor"
            )
        return (lambda x: np.asarray(sensor.to_reflectance(x), dtype=np.float32)), f"sensor:{sensor.name}"
    if cfg.scale is not None:
        s = float(cfg.scale)
        return (lambda x: x * np.float32(s)), f"x*{s}"
    dt = np.dtype(info.dtype)
    if dt == np.uint8:
        return (lambda x: x * np.float32(1 / 255)), "x/255 (uint8)"
    if dt.kind in "iu":
        warnings.warn(
            f"input {info.path} is {dt.name}: assuming reflectance = DN / 10000 (Sentinel-2/Landsat L2 convention); "
            f"pass --sensor NAME or --scale FACTOR if that is wrong",
            stacklevel=3,
        )
        return (lambda x: x * np.float32(1e-4)), f"x/10000 ({dt.name}, assumed)"
    return (lambda x: x), "x (float input used as reflectance)"


# ---------------------------------------------------------------------------------------------------------------
# preparation (shared by every process of a run)


def _layer_label(idx: list[int], mode: str) -> list[str]:
    return [f"L{i}" for i in idx] if mode == "concat" and len(idx) > 1 else [""]


def _probe_dim(bb: Any, layers: Any, mode: str, norm: bool, device: str) -> tuple[int, int]:
    """(output bands, number of layer maps) from a tiny forward (works for any backbone implementation)."""
    p = int(bb.patch_size)
    x = torch.zeros(1, int(bb.in_chans), 2 * p, 2 * p, device=device)
    with torch.inference_mode():
        maps, _ = bb.features(x, layers=layers, norm=norm)
    d = int(maps[0].shape[1])
    return (d * len(maps) if mode == "concat" else d), len(maps)


def _prepare(inp: Any, cfg: EmbedConfig, bb: Any) -> dict[str, Any]:
    """Everything a process needs: source, plan, band names, metadata (no pixels read yet)."""
    source = open_source(inp, variable=cfg.variable, bands=cfg.bands, nodata=cfg.nodata)
    info = source.info
    if info.crs is None and not cfg.allow_no_crs:
        raise InputError(f"input {info.path} has no CRS; set one (gdal_edit.py -a_srs EPSG:...) or pass --allow-no-crs")
    t = info.transform
    if cfg.upsample and (t.b != 0 or t.d != 0):
        raise InputError(f"input {info.path} has a rotated geotransform; upsampling needs a north-up grid")
    if info.count != int(bb.in_chans):
        spec = getattr(bb, "spec", type(bb).__name__)
        raise InputError(
            f"input {info.path} has {info.count} bands but backbone {spec} takes {bb.in_chans}; select "
            f"{bb.in_chans} bands with --bands (e.g. --bands 3,2,1) or adapt the backbone to {info.count} bands "
            f"(band adaptation: a spec option such as arch:vit_small?bands={info.count}, "
            f"or load_backbone(spec, bands=...))"
        )
    p = int(bb.patch_size)
    if cfg.tile % p == 0 and cfg.overlap % p == 0 and 2 * cfg.overlap > cfg.tile:
        src = " (the default)" if cfg.overlap == EmbedConfig.overlap else ""
        raise ConfigError(
            f"overlap={cfg.overlap}{src} must be at most half of tile={cfg.tile}; pass --overlap "
            f"{cfg.tile // 2 // p * p} or less (a multiple of the patch size {p}), or a --tile of at least "
            f"{2 * cfg.overlap}"
        )
    layers = parse_layers(cfg.layers)
    dim, n_maps = _probe_dim(bb, layers, cfg.layer_mode, cfg.norm, cfg.device)
    itemsize = {"float32": 4, "float16": 2, "int8": 1}[cfg.dtype]
    chunk = cfg.chunk or auto_chunk(dim, itemsize)
    plan = make_plan(
        info.height,
        info.width,
        info.transform,
        patch=int(bb.patch_size),
        tile=cfg.tile,
        overlap=cfg.overlap,
        chunk=chunk,
        block_rows=cfg.block_rows or None,
        max_block_cols=cfg.max_block_cols,
    )
    if cfg.margin is None:
        cfg.margin = (cfg.overlap // 4) // p * p
    if cfg.margin % p or cfg.margin < 0 or 2 * cfg.margin > cfg.overlap:
        raise ConfigError(
            f"margin={cfg.margin} must be a multiple of the patch size {p} and at most overlap/2 ({cfg.overlap // 2}); "
            f"pass another --margin or leave it out (default overlap/4)"
        )
    check_memory(plan, cfg, info, dim, int(getattr(bb, "embed_dim", 0) or dim))
    idx = layer_indices(layers, int(getattr(bb, "n_blocks", 1) or 1))
    if len(idx) != n_maps:
        idx = list(range(n_maps))
    per = dim // len(_layer_label(idx, cfg.layer_mode))
    band_names = [f"{lab}{'_' if lab else ''}E{i:03d}" for lab in _layer_label(idx, cfg.layer_mode) for i in range(per)]
    _, scale_desc = input_scaler(info, cfg) if cfg.sensor or cfg.scale is not None else (None, "")
    l2 = cfg.dtype == "int8" if cfg.l2_normalize is None else bool(cfg.l2_normalize)
    from geodino import __version__

    meta = {
        "geodino_version": __version__,
        **describe_backbone(bb),
        "layers": idx,
        "layer_mode": cfg.layer_mode,
        "final_norm": cfg.norm,
        "l2_normalize": l2,
        "dtype": cfg.dtype,
        "dequantization": DEQUANT_RULE if cfg.dtype == "int8" else "none",
        "nodata": "-128" if cfg.dtype == "int8" else "nan",
        "input": str(info.path),
        "input_bands": cfg.bands or list(range(1, info.count + 1)),
        "input_scale": scale_desc or _default_scale_desc(info.dtype),
        "tile": cfg.tile,
        "overlap": cfg.overlap,
        "blend": cfg.blend,
        "margin": cfg.margin,
        "grid": "input pixels (bilinear upsampling)" if cfg.upsample else f"patch grid ({bb.patch_size} px cells)",
    }
    ident = {
        "plan": plan.to_dict(),
        "input": str(info.path),
        "shape": [info.count, info.height, info.width],
        "backbone": meta["model_spec"],
        "fingerprint": meta["model_fingerprint"],
        "dim": dim,
        **{k: getattr(cfg, k) for k in IDENT_KEYS},
        "scale": scale_desc,
        "l2": l2,
    }
    return {
        "source": source,
        "plan": plan,
        "dim": dim,
        "band_names": band_names,
        "meta": meta,
        "ident": ident,
        "l2": l2,
    }


def available_memory() -> int | None:
    """Bytes of memory this process can still get: MemAvailable, capped by a cgroup limit; None if unknown."""
    avail: int | None = None
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    avail = int(line.split()[1]) * 1024
                    break
    except OSError:
        try:
            avail = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
        except (ValueError, OSError, AttributeError):
            return None
    try:  # cgroup v2 limit (containers, SLURM jobs)
        limit = Path("/sys/fs/cgroup/memory.max").read_text().strip()
        if limit != "max":
            used = int(Path("/sys/fs/cgroup/memory.current").read_text())
            room = max(0, int(limit) - used)
            avail = room if avail is None else min(avail, room)
    except (OSError, ValueError):
        pass
    return avail


def estimate_memory(plan: Plan, cfg: EmbedConfig, in_chans: int, dim: int, embed_dim: int) -> dict[str, int]:
    """Bytes the biggest allocations of a sweep need: the blending band, a batch of input tiles (read, scaled,
    normalised copies), its feature maps, and the backbone's activations (CPU inference)."""
    tc = plan.tile_cells
    width = 0
    for c0, c1 in plan.col_blocks():
        cols = plan.tiles_touching(plan.col_starts, c0, c1)
        width = max(width, plan.col_starts[cols[-1]] + tc - plan.col_starts[cols[0]])
    batch = max(1, min(int(cfg.batch_size), len(plan.col_starts)))
    px = plan.tile_px * plan.tile_px
    parts = {
        "blending band": dim * tc * width * 4 + tc * width * 5,
        "input tiles": batch * px * (in_chans * 4 * 4 + 2),
        "feature maps": batch * dim * tc * tc * 4 * 2,
    }
    parts["activations"] = batch * (tc * tc + 5) * embed_dim * 4 * 12  # qkv, MLP hidden, residuals
    return parts


def check_memory(plan: Plan, cfg: EmbedConfig, info: Any, dim: int, embed_dim: int) -> None:
    """Refuse, before anything is written, a tile/batch whose buffers cannot fit in the memory left."""
    parts = estimate_memory(plan, cfg, info.count, dim, embed_dim)
    where = "memory"
    avail = available_memory()
    if torch.device(cfg.device).type == "cuda" and torch.cuda.is_available():
        # the device holds the batch, its activations and its features; the host the band and the tiles read
        dev_parts = {k: parts[k] for k in ("input tiles", "feature maps", "activations")}
        free = torch.cuda.mem_get_info(torch.device(cfg.device))[0]
        if sum(dev_parts.values()) > 0.8 * free:
            parts, avail, where = dev_parts, free, f"{cfg.device} memory"
        else:
            parts = {k: v for k, v in parts.items() if k != "activations"}
    if avail is None:
        return
    need = sum(parts.values())
    if need <= 0.8 * avail:
        return
    gib = 2**30
    detail = ", ".join(f"{k} {v / gib:.1f}" for k, v in parts.items() if v >= 0.05 * need)
    small = ""
    if plan.tile_px > max(info.height, info.width):
        small = f"; the raster is only {info.height}x{info.width} px, so a tile larger than it gains nothing"
    raise ConfigError(
        f"tile={cfg.tile} with batch_size={cfg.batch_size} needs about {need / gib:.1f} GiB of {where} ({detail} GiB) "
        f"but {avail / gib:.1f} GiB are available{small}; pass a smaller --tile (default {EmbedConfig.tile}) "
        f"or --batch-size"
    )


def _default_scale_desc(dtype: str) -> str:
    dt = np.dtype(dtype)
    if dt == np.uint8:
        return "x/255 (uint8)"
    if dt.kind in "iu":
        return f"x/10000 ({dt.name}, assumed)"
    return "x (float input used as reflectance)"


def _init_work_dir(work: Path, prep: dict[str, Any], *, join: bool) -> None:
    """Create (or check, when resuming/joining) the work folder: plan record, empty store, progress folder."""
    plan_file = work / PLAN_FILE
    if not join and work.exists():
        raise InputError(f"partial output {work} exists; pass --resume to finish it or --overwrite to start again")
    if plan_file.exists():
        old = json.loads(plan_file.read_text())
        diff = sorted(k for k in set(old) | set(prep["ident"]) if old.get(k) != _jsonable(prep["ident"]).get(k))
        if diff:
            raise InputError(
                f"the partial output {work} was started with other settings ({', '.join(diff)}); "
                f"rerun with the same settings or pass --overwrite to start again"
            )
        return
    work.mkdir(parents=True, exist_ok=True)
    plan: Plan = prep["plan"]
    info = prep["source"].info
    create_store(
        work / STORE,
        height=plan.out_height,
        width=plan.out_width,
        transform=plan.out_transform,
        crs=info.crs,
        band_names=prep["band_names"],
        dtype=prep["ident"]["dtype"],
        chunk=plan.chunk,
        metadata=prep["meta"],
    )
    (work / DONE).mkdir(exist_ok=True)
    tmp = plan_file.with_suffix(f".tmp{os.getpid()}")
    tmp.write_text(json.dumps(_jsonable(prep["ident"]), indent=1))
    os.replace(tmp, plan_file)  # written last: its presence means the store is ready


def _jsonable(d: dict[str, Any]) -> dict[str, Any]:
    return json.loads(json.dumps(d, default=str))


def done_blocks(work: Path) -> set[int]:
    d = work / DONE
    return {int(p.stem) for p in d.glob("*.done")} if d.exists() else set()


def _mark_done(work: Path, index: int, n_valid: int | None = None) -> None:
    """Record block `index` as written (its file holds the block's count of valid cells)."""
    (work / DONE / f"{index}.done").write_text("" if n_valid is None else str(int(n_valid)))


def _mark_rows(work: Path, index: int, rows_done: int, n_valid: int) -> None:
    """Record that block `index` is written up to output row `rows_done` (exclusive), with `n_valid` valid cells
    so far: a resume restarts the block there instead of at its top (atomic replace, after the data write)."""
    path = work / DONE / f"{index}.rows"
    tmp = path.with_name(f".{index}.rows.tmp{os.getpid()}")
    tmp.write_text(f"{int(rows_done)} {int(n_valid)}")
    os.replace(tmp, path)


def partial_blocks(work: Path) -> dict[int, tuple[int, int]]:
    """Blocks written part-way: index -> (first output row still to write, valid cells written so far)."""
    out: dict[int, tuple[int, int]] = {}
    for f in (work / DONE).glob("*.rows") if (work / DONE).exists() else ():
        try:
            rows, n_valid = (int(v) for v in f.read_text().split())
        except ValueError:  # unreadable record: redo the whole block
            continue
        out[int(f.stem)] = (rows, n_valid)
    return out


def valid_cells(work: Path) -> int | None:
    """Valid (not nodata) cells over all finished blocks; None when a block did not record its count."""
    total = 0
    for f in (work / DONE).glob("*.done"):
        text = f.read_text().strip()
        if not text.isdigit():
            return None
        total += int(text)
    return total


# ---------------------------------------------------------------------------------------------------------------
# the sweep: one run of consecutive blocks of one column block


class _Failure:
    def __init__(self, exc: BaseException) -> None:
        self.exc = exc


def _put(q: queue.Queue, item: Any, stop: threading.Event) -> None:
    """Put unless the consumer has stopped (so a failed run never leaves the reader blocked on a full queue)."""
    while not stop.is_set():
        try:
            q.put(item, timeout=0.1)
            return
        except queue.Full:
            continue


def _runs(blocks: Sequence[Block]) -> list[list[Block]]:
    """Group blocks into runs a single sweep can carry the blending band through (same column block, adjacent)."""
    runs: list[list[Block]] = []
    for b in blocks:
        if runs and runs[-1][-1].col_block == b.col_block and runs[-1][-1].r1 == b.r0:
            runs[-1].append(b)
        else:
            runs.append([b])
    return runs


class _Sweeper:
    """Reads, infers, blends and writes the blocks given to this process."""

    def __init__(self, prep: dict[str, Any], bb: Any, cfg: EmbedConfig, work: Path) -> None:
        self.prep, self.bb, self.cfg, self.work = prep, bb, cfg, work
        self.plan: Plan = prep["plan"]
        self.scale, _ = input_scaler(prep["source"].info, cfg)
        self.layers = parse_layers(cfg.layers)
        self.weight_cache: dict[tuple, np.ndarray] = {}
        self.start_counts: dict[int, int] = {}  # valid cells already written in blocks resumed part-way

    # -- reader thread ------------------------------------------------------------------------------------------
    def _reader(self, runs: list[list[Block]], out_q: queue.Queue, stop: threading.Event) -> None:
        """Tiles in sweep order, batched per tile row (so batch composition never depends on where a sweep starts)."""
        import rasterio

        plan, p, tc = self.plan, self.plan.patch, self.plan.tile_cells
        try:
            env = rasterio.Env(GDAL_CACHEMAX=int(self.cfg.gdal_cache_mb) * 2**20)
            env.__enter__()
            src = self.prep["source"].open()
            try:
                for run in runs:
                    _put(out_q, ("run_start", None, run, 0), stop)
                    trows = plan.tiles_touching(plan.row_starts, run[0].r0, run[-1].r1)
                    tcols = plan.tiles_touching(plan.col_starts, run[0].c0, run[0].c1)
                    for i in trows:
                        y = plan.row_starts[i]
                        batch: list[tuple[int, np.ndarray, np.ndarray]] = []
                        skipped = 0
                        for j in tcols:
                            if stop.is_set():
                                return
                            x = plan.col_starts[j]
                            data, valid = src.read(y * p, (y + tc) * p, x * p, (x + tc) * p)
                            if not valid.any():  # all nodata: skipped, its cells stay nodata
                                skipped += 1
                                continue
                            img = self.scale(data)
                            img[:, ~valid] = 0.0
                            batch.append((j, img, valid))
                            if len(batch) == self.cfg.batch_size:
                                _put(out_q, ("batch", i, batch, skipped), stop)
                                batch, skipped = [], 0
                        _put(out_q, ("batch", i, batch, skipped), stop)
                        _put(out_q, ("row_end", i, run, 0), stop)
            finally:
                src.close()
                env.__exit__(None, None, None)
            _put(out_q, ("end", None, None, 0), stop)
        except BaseException as exc:  # handed to the main thread, which re-raises it
            _put(out_q, ("error", None, _Failure(exc), 0), stop)

    # -- writer thread ------------------------------------------------------------------------------------------
    def _writer(self, in_q: queue.Queue, errors: list[BaseException]) -> None:
        writer = ZarrBlockWriter(self.work / STORE)
        while True:
            job = in_q.get()
            if job is None:
                return
            if errors:
                continue
            try:
                kind, a, b = job
                if kind == "data":
                    writer.write(a[0], a[1], b)
                elif kind == "done":  # after every write of the block (the queue is ordered)
                    _mark_done(self.work, a, b)
                    (self.work / DONE / f"{a}.rows").unlink(missing_ok=True)
                elif kind == "rows":  # a block written up to a row: finer-grained resume
                    _mark_rows(self.work, a, b[0], b[1])
            except BaseException as exc:
                errors.append(exc)

    # -- inference ----------------------------------------------------------------------------------------------
    def _infer(self, imgs: list[np.ndarray], valids: list[np.ndarray]) -> np.ndarray:
        """Normalised, nodata pixels set to 0 (the backbone's mean), features of the requested layers [B,D,h,w]."""
        cfg, bb = self.cfg, self.bb
        try:
            x = torch.from_numpy(np.stack(imgs)).to(cfg.device)
            mask = torch.from_numpy(np.stack(valids))[:, None].to(cfg.device)
            with torch.inference_mode():
                x = bb.normalize(x) * mask
                dev = torch.device(cfg.device).type
                with torch.autocast(dev, dtype=torch.bfloat16, enabled=cfg.amp):
                    maps, _ = bb.features(x, layers=self.layers, norm=cfg.norm)
                maps = [m.float() for m in maps]
                f = torch.cat(maps, dim=1) if cfg.layer_mode == "concat" else torch.stack(maps).mean(0)
            return f.cpu().numpy()
        except torch.OutOfMemoryError as exc:  # the estimate before the run does not know the device's other users
            raise InputError(
                f"a batch of {len(imgs)} tiles of {self.plan.tile_px} px does not fit in {cfg.device} memory; pass a "
                "smaller --batch-size or --tile"
            ) from exc

    def _weights(self, i: int, j: int) -> np.ndarray:
        plan = self.plan
        ry = plan.ramps(plan.row_starts, i, plan.out_height)
        rx = plan.ramps(plan.col_starts, j, plan.out_width)
        if (ry, rx) not in self.weight_cache:
            margin = self.cfg.margin // plan.patch  # type: ignore[operator]
            self.weight_cache[(ry, rx)] = tile_weights(plan.tile_cells, ry, rx, self.cfg.blend, margin)
        return self.weight_cache[(ry, rx)]

    # -- main loop ----------------------------------------------------------------------------------------------
    def run(self, blocks: list[Block], *, fail_after: int | None = None, fail_after_rows: int | None = None) -> None:
        """Process `blocks` (skipping none: the caller removed finished ones); raise on any thread's error."""
        if not blocks:
            return
        plan, cfg = self.plan, self.cfg
        runs = _runs(blocks)
        n_tiles = sum(
            len(plan.tiles_touching(plan.row_starts, r[0].r0, r[-1].r1))
            * len(plan.tiles_touching(plan.col_starts, r[0].c0, r[0].c1))
            for r in runs
        )
        in_q: queue.Queue = queue.Queue(maxsize=3)
        out_q: queue.Queue = queue.Queue(maxsize=3)
        stop = threading.Event()
        werrors: list[BaseException] = []
        reader = threading.Thread(target=self._reader, args=(runs, in_q, stop), daemon=True, name="embed-reader")
        writer = threading.Thread(target=self._writer, args=(out_q, werrors), daemon=True, name="embed-writer")
        reader.start()
        writer.start()
        bar = _progress(n_tiles, cfg, desc=f"embed rank {cfg.rank}" if cfg.world_size > 1 else "embed")
        n_done = n_rows = 0
        band: _Band | None = None
        try:
            while True:
                kind, i, payload, skipped = in_q.get()
                if werrors:
                    raise werrors[0]
                if kind == "error":
                    raise payload.exc
                if kind == "end":
                    break
                if kind == "run_start":
                    band = _Band(plan, payload, self.prep["dim"], self.start_counts)
                elif kind == "batch":
                    if payload:
                        feats = self._infer([b[1] for b in payload], [b[2] for b in payload])
                        band.add(i, payload, feats, self._weights)
                    bar.update(len(payload) + skipped)
                elif kind == "row_end":
                    n_done += band.flush_after(i, out_q, self.prep["l2"], self.prep["ident"]["dtype"])
                    n_rows += 1
                    if fail_after is not None and n_done >= fail_after:
                        raise KeyboardInterrupt(f"simulated kill after {n_done} blocks")
                    if fail_after_rows is not None and n_rows >= fail_after_rows:
                        raise KeyboardInterrupt(f"simulated kill after {n_rows} tile rows")
        except BaseException:
            stop.set()
            _drain(in_q)
            raise
        finally:
            out_q.put(None)
            writer.join()
            bar.close()
            stop.set()
            _drain(in_q)
            reader.join(timeout=30)
        if werrors:
            raise werrors[0]


class _Band:
    """Blending accumulators one tile high over one column block: feature sum, weight sum and cell validity."""

    def __init__(self, plan: Plan, run: list[Block], dim: int, start_counts: dict[int, int] | None = None) -> None:
        self.plan, self.run = plan, run
        tc = plan.tile_cells
        self.trows = plan.tiles_touching(plan.row_starts, run[0].r0, run[-1].r1)
        tcols = plan.tiles_touching(plan.col_starts, run[0].c0, run[0].c1)
        self.x_lo = plan.col_starts[tcols[0]]
        width = plan.col_starts[tcols[-1]] + tc - self.x_lo
        self.base = plan.row_starts[self.trows[0]]
        self.acc = np.zeros((dim, tc, width), np.float32)
        self.wsum = np.zeros((tc, width), np.float32)
        self.valid = np.zeros((tc, width), bool)
        self.n_valid = {b.index: (start_counts or {}).get(b.index, 0) for b in run}  # valid cells written per block

    def add(self, i: int, batch: list, feats: np.ndarray, weights: Callable[[int, int], np.ndarray]) -> None:
        plan, tc, p = self.plan, self.plan.tile_cells, self.plan.patch
        if feats.shape[-2:] != (tc, tc):
            raise InputError(
                f"the backbone returned {tuple(feats.shape[-2:])} feature maps for {plan.tile_px}-px tiles; "
                f"expected {tc}x{tc} (tile / patch size)"
            )
        assert plan.row_starts[i] == self.base
        for (j, _, valid_px), f in zip(batch, feats):
            x = plan.col_starts[j] - self.x_lo
            w = weights(i, j)
            self.acc[:, :, x : x + tc] += f * w
            self.wsum[:, x : x + tc] += w
            # a cell is valid when any of its input pixels is
            self.valid[:, x : x + tc] |= valid_px.reshape(tc, p, tc, p).any(axis=(1, 3))

    def flush_after(self, i: int, out_q: queue.Queue, l2: bool, dtype: str) -> int:
        """Send the rows no later tile row touches to the writer, shift the band up; return blocks completed."""
        plan, tc, run = self.plan, self.plan.tile_cells, self.run
        last = i == self.trows[-1]
        nxt = self.base + tc if last else plan.row_starts[i + 1]
        lo, hi = max(self.base, run[0].r0), min(nxt, run[-1].r1, plan.out_height)
        completed = 0
        if hi > lo:
            c0, c1 = run[0].c0, run[0].c1
            xs, rs = slice(c0 - self.x_lo, c1 - self.x_lo), slice(lo - self.base, hi - self.base)
            wsum = self.wsum[rs, xs]
            valid = self.valid[rs, xs] & (wsum > 0)
            feats = self.acc[:, rs, xs] / np.where(wsum > 0, wsum, 1.0)
            if l2:
                feats /= np.maximum(np.sqrt(np.sum(feats * feats, axis=0, keepdims=True)), 1e-12)
            out_q.put(("data", (lo, c0), encode(feats, valid, dtype)))
            for b in run:
                r0, r1 = max(lo, b.r0), min(hi, b.r1)
                if r1 > r0:
                    self.n_valid[b.index] += int(valid[r0 - lo : r1 - lo].sum())
                if lo < b.r1 <= hi:
                    out_q.put(("done", b.index, self.n_valid[b.index]))
                    completed += 1
                elif b.r0 < hi < b.r1:  # written part-way: record the rows done
                    out_q.put(("rows", b.index, (hi, self.n_valid[b.index])))
        if not last:
            shift = nxt - self.base
            for arr in (self.acc, self.wsum, self.valid):
                arr[..., : tc - shift, :] = arr[..., shift:, :]
                arr[..., tc - shift :, :] = 0
            self.base = nxt
        return completed


def _drain(q: queue.Queue) -> None:
    try:
        while True:
            q.get_nowait()
    except queue.Empty:
        pass


def _progress(total: int, cfg: EmbedConfig, desc: str) -> Any:
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, unit="tile", disable=not cfg.progress, file=sys.stderr, dynamic_ncols=True)


# ---------------------------------------------------------------------------------------------------------------
# orchestration


def _out_kind(out: Path) -> str:
    suffix = out.suffix.lower()
    if suffix in (".tif", ".tiff"):
        return "cog"
    if suffix == ".zarr":
        return "zarr"
    raise ConfigError(f"output {out} must end in .tif (COG) or .zarr (GeoZarr)")


def rank_blocks(blocks: Sequence[Block], rank: int, world_size: int) -> list[Block]:
    """The contiguous share of blocks of one rank (contiguous, so each rank carries its band through its share)."""
    n = len(blocks)
    return list(blocks[rank * n // world_size : (rank + 1) * n // world_size])


def _wait_for(path: Path, timeout: float = 600.0) -> None:
    t0 = time.monotonic()
    while not path.exists():
        if time.monotonic() - t0 > timeout:
            raise InputError(f"rank waited {timeout:.0f}s for {path}; is rank 0 running with the same output?")
        time.sleep(0.2)


def _finalize(work: Path, out: Path, prep: dict[str, Any], cfg: EmbedConfig) -> None:
    """Turn the finished store into the output under its final name (the only step that creates `out`)."""
    from geodino.embed.upsample import upsample_store
    from geodino.embed.writers import finalize_store, remove_tree, store_to_cog
    from geodino.io import atomic_path

    store = work / STORE
    n_valid = valid_cells(work)
    if n_valid == 0:
        remove_tree(work)
        info = prep["source"].info
        why = "NaN or masked" if info.nodata is None else f"nodata ({info.nodata:g}), NaN or masked"
        raise InputError(
            f"input {info.path} has no valid pixel (every one is {why}), so the feature raster would be empty; "
            f"check the file, or pass --nodata to override a wrong declared nodata value"
        )
    prep["n_valid"] = n_valid
    if cfg.upsample:
        up = work / "upsampled.zarr"
        remove_tree(up)
        upsample_store(store, up, prep, progress=cfg.progress)
        store = up
    finalize_store(store)
    with atomic_path(out, overwrite=True) as tmp:
        if _out_kind(out) == "zarr":
            os.replace(store, tmp)
        else:
            store_to_cog(store, tmp, cache_mb=cfg.gdal_cache_mb, progress=cfg.progress)
    remove_tree(work)


def _bound_heap_growth() -> None:
    """Ask glibc to mmap every allocation >= 1 MiB (tiles, batches, feature rows) so freed ones go back to the OS.

    glibc raises its mmap threshold dynamically after such blocks are freed and then serves them from thread
    arenas that fragment: measured RSS grew with the raster size (8k vs 2k: +50%) although live memory did not.
    """
    import ctypes
    import ctypes.util

    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        libc.mallopt(-3, 1 << 20)  # M_MMAP_THRESHOLD
    except (OSError, AttributeError):  # not glibc: nothing to tune
        pass


def embed_raster(
    input: Any,
    backbone: Any = None,
    out: str | Path | None = None,
    *,
    config: EmbedConfig | None = None,
    _fail_after_blocks: int | None = None,
    _fail_after_rows: int | None = None,
    _finalize_here: bool = True,
    **options: Any,
) -> Path:
    """Write the backbone's patch features of a raster as a georeferenced COG (.tif) or GeoZarr (.zarr).

    `input`: a raster path (GeoTIFF, COG, VRT...), a Zarr/NetCDF cube path or an xarray object.
    `backbone`: a spec string for `geodino.backbones.load_backbone` or a backbone object (see
    `geodino.embed.backbone.Backbone`). `options` are `EmbedConfig` fields (tile, overlap, blend, layers, dtype,
    resume, workers ...). Returns the output path, which exists only once the raster is complete.
    """
    cfg = dataclasses.replace(config) if config is not None else EmbedConfig()
    unknown = sorted(set(options) - {f.name for f in dataclasses.fields(EmbedConfig)})
    if unknown:
        close = [did_you_mean(k, [f.name for f in dataclasses.fields(EmbedConfig)]) for k in unknown]
        hint = "; ".join(f"{k}" + (f" (did you mean {c[0]}?)" if c else "") for k, c in zip(unknown, close))
        raise ConfigError(f"unknown embed option(s): {hint}")
    for k, v in options.items():
        setattr(cfg, k, v)
    if backbone is not None:
        cfg.backbone = backbone  # type: ignore[assignment]
    if out is not None:
        cfg.out = str(out)
    cfg.validate()
    if not cfg.out:
        raise ConfigError("no output given; pass --out OUT.tif or OUT.zarr")
    out_path = Path(cfg.out).expanduser()
    _out_kind(out_path)
    work = work_dir_for(out_path)
    primary = cfg.rank == 0
    if out_path.exists():
        if cfg.resume and not cfg.overwrite:
            print(f"geodino: {out_path} is already complete; nothing to resume", file=sys.stderr)
            return out_path
        if not cfg.overwrite:
            raise InputError(f"output {out_path} already exists; pass --overwrite to replace it or --resume to keep it")
    if cfg.overwrite and not cfg.resume and primary and work.exists() and _finalize_here:
        from geodino.embed.writers import remove_tree

        remove_tree(work)
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
    _bound_heap_growth()
    with rasterio.Env(GDAL_CACHEMAX=int(cfg.gdal_cache_mb) * 2**20):
        return _embed(input, cfg, out_path, work, primary, t0, _fail_after_blocks, _finalize_here, _fail_after_rows)


def _embed(input, cfg, out_path, work, primary, t0, _fail_after_blocks, _finalize_here, _fail_after_rows=None) -> Path:
    """The body of `embed_raster` (inside a bounded GDAL cache)."""
    bb = resolve_backbone(cfg.backbone, device=cfg.device, amp=cfg.amp)
    prep = _prepare(input, cfg, bb)
    plan: Plan = prep["plan"]
    if cfg.workers > 1:
        _spawn_workers(input, bb, cfg, work, prep)
    else:
        fresh = primary and _finalize_here and cfg.world_size == 1 and not work.exists()
        if primary:
            _init_work_dir(work, prep, join=cfg.resume or cfg.world_size > 1 or not _finalize_here)
        else:
            _wait_for(work / PLAN_FILE)
            _init_work_dir(work, prep, join=True)  # checks that the settings match rank 0's
        blocks = plan.blocks()
        done = done_blocks(work)
        todo = [b for b in rank_blocks(blocks, cfg.rank, cfg.world_size) if b.index not in done]
        sweeper = _Sweeper(prep, bb, cfg, work)
        partial = partial_blocks(work)
        for k, b in enumerate(todo):  # a block written part-way restarts at the first row not written
            rows, n_valid = partial.get(b.index, (b.r0, 0))
            if b.r0 < rows < b.r1:
                todo[k] = dataclasses.replace(b, r0=rows)
                sweeper.start_counts[b.index] = n_valid
        try:
            sweeper.run(todo, fail_after=_fail_after_blocks, fail_after_rows=_fail_after_rows)
        except GeoDinoError:
            # bad input (an unreadable block...): a resume cannot fix it, so a run that started the partial output
            # removes it; kills and interrupts keep it for --resume
            if fresh:
                from geodino.embed.writers import remove_tree

                remove_tree(work)
            raise
        if not _finalize_here:
            return out_path
    if len(done_blocks(work)) < len(plan.blocks()):
        return out_path  # another rank is still working; the last one to finish finalises
    if cfg.world_size > 1:  # ranks launched outside: the first to grab the lock finalises
        try:
            os.close(os.open(work / "finalize.lock", os.O_CREAT | os.O_EXCL | os.O_WRONLY))
        except FileExistsError:
            return out_path
    _finalize(work, out_path, prep, cfg)
    if cfg.progress:
        print(
            f"geodino: wrote {out_path} ({prep['dim']} bands, {plan.out_height}x{plan.out_width} cells of "
            f"{plan.patch} px{_valid_note(prep.get('n_valid'), plan)}, {time.perf_counter() - t0:.1f}s)",
            file=sys.stderr,
        )
    return out_path


def _valid_note(n_valid: int | None, plan: Plan) -> str:
    total = plan.out_height * plan.out_width
    if n_valid is None or n_valid == total:
        return ""
    return f", {n_valid} valid ({100 * n_valid / total:.1f}%; the rest is nodata)"


def _worker_main(input: Any, bb: Any, cfg: EmbedConfig) -> None:
    torch.set_num_threads(max(1, cfg.threads or 1))
    embed_raster(input, bb, cfg.out, config=cfg, _finalize_here=False)


def _spawn_workers(input: Any, bb: Any, cfg: EmbedConfig, work: Path, prep: dict[str, Any]) -> None:
    """Run `cfg.workers` processes on disjoint contiguous shares of the blocks of one store; wait for all."""
    import multiprocessing as mp

    if not isinstance(input, (str, Path)):
        raise ConfigError("workers > 1 needs the input as a path (each process opens it itself)")
    _init_work_dir(work, prep, join=cfg.resume)
    n = cfg.workers
    threads = cfg.threads or max(1, (os.cpu_count() or 1) // n)
    ctx = mp.get_context("spawn")
    procs = []
    for r in range(n):
        wcfg = dataclasses.replace(cfg, workers=1, world_size=n, rank=r, resume=True, overwrite=False, threads=threads)
        wcfg.progress = cfg.progress and r == 0
        proc = ctx.Process(target=_worker_main, args=(str(input), bb, wcfg), name=f"geodino-embed-{r}")
        proc.start()
        procs.append(proc)
    failed = []
    for r, proc in enumerate(procs):
        proc.join()
        if proc.exitcode != 0:
            failed.append(r)
    if failed:
        raise InputError(
            f"embedding worker(s) {failed} failed (see their messages above); rerun with --resume to finish {cfg.out}"
        )
