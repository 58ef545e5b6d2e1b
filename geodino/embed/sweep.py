"""The sweep: one process reads, infers, blends and writes its blocks, in three overlapping threads.

A reader thread (windowed reads, nodata masks, all-nodata tiles skipped; on a CPU also scaling and normalising),
the main thread (batched inference, blending into a band of accumulators one tile high, on the inference device)
and a writer thread (Zarr writes and progress records). On an accelerator a batch crosses in the raster's own
dtype (uint8: a quarter of float32's bytes; pinned on CUDA) and is scaled, normalised and blended there, so the
host copies each cell's features once, when its rows are finished, not once per tile covering it. See
`geodino.embed.pipeline` for the whole run; the DN -> reflectance rule the sweep applies is
`geodino.embed.input_scaling`. The blending band is `geodino.embed.sweep_band` and the writer thread
`geodino.embed.sweep_writer`; this module keeps the `Sweeper` (its reader thread, inference and main loop).
"""

from __future__ import annotations

import contextlib
import queue
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from geodino.data.sensors import check_read_values
from geodino.embed import sweep_writer
from geodino.embed.backbone import parse_layers
from geodino.embed.blend import tile_weights
from geodino.embed.config import EmbedConfig
from geodino.embed.input_scaling import as_float32_on, input_scaler, recorded_scale, scaling_sensor  # re-exported
from geodino.embed.plan import Block, Plan
from geodino.embed.read_ahead import read_ahead, read_threads
from geodino.embed.sweep_band import _Band
from geodino.embed.time_line import time_line
from geodino.errors import InputError, plural

__all__ = ["Sweeper", "input_scaler", "recorded_scale", "scaling_sensor", "time_line"]


def _after_row(n_blocks: int, n_rows: int) -> None:
    """Called after every tile row with the blocks and tile rows finished so far: a seam for tests that simulate
    a kill mid-run (they monkeypatch it to raise)."""


@dataclass
class _Tiles:
    """One batch of a tile row, stacked by the reader thread (the main thread only hands it to the backbone)."""

    size: int  # slots: the batch size
    pin: bool = False  # hold the values in page-locked memory (CUDA: an asynchronous, faster copy to the device)
    cols: list[int] = field(default_factory=list)  # tile column index of each tile
    x: np.ndarray | None = None  # [n, C, H, W] as read (the raster's dtype); nodata pixels hold what was read
    valid: np.ndarray | None = None  # [n, H, W] bool pixel validity
    full: list[bool] = field(default_factory=list)  # per tile: every pixel valid (the common case skips masking)
    ready: torch.Tensor | None = None  # the backbone's input, when the reader prepared it (CPU inference)
    held: torch.Tensor | None = None  # the tensor `x` is a view of (pinned memory), for the copy to the device
    held_valid: torch.Tensor | None = None  # the tensor `valid` is a view of (pinned too: the mask crosses async)
    slot: torch.Tensor | None = None  # the reader's pooled buffer `ready` is a view of (`Sweeper._ready`)
    spare: np.ndarray | None = None  # a values array the reader may fill again (CPU order: `x` is read only there)
    valid_pool: Callable[[tuple[int, ...]], np.ndarray] | None = None  # CPU order: `Sweeper._valid_slot`
    valid_slot: np.ndarray | None = None  # the pooled array `valid` is (a view of), given back after blending

    def __len__(self) -> int:
        return len(self.cols)

    def add(self, col: int, x: np.ndarray, valid: np.ndarray) -> bool:
        """Copy one tile into the next slot (the arrays are allocated at the first, a new pair per batch: the main
        thread may still hold the previous one); True when the batch is full."""
        if self.x is None or self.valid is None:
            shape, dtype = (self.size, *x.shape), x.dtype.newbyteorder("=")  # torch takes the machine's order only
            vshape = (self.size, *valid.shape)
            if self.pin:
                self.held = torch.empty(shape, dtype=torch.from_numpy(np.empty(0, dtype)).dtype, pin_memory=True)
                self.held_valid = torch.empty(vshape, dtype=torch.bool, pin_memory=True)
                self.x, self.valid = self.held.numpy(), self.held_valid.numpy()
            else:
                spare = self.spare
                fits = spare is not None and spare.shape == shape and spare.dtype == dtype
                self.x = spare if spare is not None and fits else np.empty(shape, dtype)
                if self.valid_pool is not None:  # given back with the input buffer, once the batch is blended
                    self.valid = self.valid_slot = self.valid_pool(vshape)
                else:
                    self.valid = np.empty(vshape, bool)
        self.x[len(self.cols)] = x
        self.valid[len(self.cols)] = valid
        self.full.append(bool(valid.all()))
        self.cols.append(col)
        return len(self.cols) == self.size

    def trimmed(self) -> _Tiles:
        """The batch cut to its tiles (views, no copy)."""
        n = len(self.cols)
        if self.x is None or self.valid is None or n == self.size:
            return self
        held = None if self.held is None else self.held[:n]
        held_valid = None if self.held_valid is None else self.held_valid[:n]
        return _Tiles(
            n,
            self.pin,
            self.cols,
            self.x[:n],
            self.valid[:n],
            self.full,
            self.ready,
            held,
            held_valid,
            self.slot,
            valid_slot=self.valid_slot,
        )


# raster dtypes a float32 tensor's `copy_` casts exactly as `.float()` does (the unsigned ones go through
# `as_float32_on`, which widens them first)
_COPY_CASTS = frozenset(
    (torch.uint8, torch.int8, torch.int16, torch.int32, torch.int64, torch.float16, torch.float32, torch.float64)
)


# unsigned dtypes torch widens before its cast (`as_float32_on`); numpy's cast into the buffer gives the same floats
_WIDENED = frozenset((torch.uint16, torch.uint32))


def _in_place_normalize(bb: Any) -> Callable[[torch.Tensor], torch.Tensor] | None:
    """`bb.normalize_` where it is the in-place form of the `normalize` the backbone uses (both defined by the same
    class, `FrozenBackbone`'s); None for a backbone with only `normalize`, or one that overrides it."""
    own = getattr(bb, "__dict__", {})
    if "normalize" in own or "normalize_" in own:  # set on the instance: that one is used, as it is
        return None
    owner = next((k for k in type(bb).__mro__ if "normalize" in vars(k)), None)
    return bb.normalize_ if owner is not None and "normalize_" in vars(owner) else None


def _mapped(shape: tuple[int, ...], dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """A host tensor in its own anonymous memory map, outside malloc's arenas: a batch (19 MB for 6 x 3 x 512 x 512
    float32) made by the reader thread would land in that thread's arena, whose 64 MiB heaps hold three of them at
    most beside the normaliser's temporaries, and the gaps they leave stay resident (an 8192 px sweep: its arena
    220 MiB, half of it free). The map is returned to the system when the tensor goes."""
    import mmap
    import warnings

    n = int(np.prod(shape))
    size = torch.empty(0, dtype=dtype).element_size()
    with warnings.catch_warnings():  # torch warns that a buffer is not resizable: it never is resized here
        warnings.simplefilter("ignore", UserWarning)
        return torch.frombuffer(mmap.mmap(-1, max(n, 1) * size), dtype=dtype, count=n).view(shape)


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


class Sweeper:
    """Reads, infers, blends and writes the blocks given to this process."""

    def __init__(self, prep: Any, bb: Any, cfg: EmbedConfig, work: Path) -> None:
        """`prep` is the `PreparedRun` of `geodino.embed.pipeline`."""
        self.prep, self.bb, self.cfg, self.work = prep, bb, cfg, work
        self.plan: Plan = prep.plan
        self.margin = cfg.effective_margin(self.plan.patch)
        n_in = getattr(prep.source, "input_count", None)
        self.scale, _ = input_scaler(prep.source.info, cfg, bb, n_in, prep.declared)
        self.sensor = scaling_sensor(cfg, bb, n_in, prep.source.info.descriptions)  # 8-bit: refuses DN > 255
        self.fill = self.plan.batch_fill(cfg.batch_size)  # tiles per batch (<= batch_size, balanced per row)
        self.layers = parse_layers(cfg.layers)
        if self.layers == "four_last" and len(prep.ident["blocks"]) < 4:  # a short backbone: every block it has
            self.layers = list(prep.ident["blocks"])  # the same maps; `prepare` said so once, not again per forward
        self.weight_cache: dict[tuple, torch.Tensor] = {}  # blending weights on the device, per ramp pair
        self.device = torch.device(cfg.device)  # the backbone object's own, when it has weights (`_embed`)
        # a CPU reader thread prepares the backbone's input; an accelerator gets the raw batch and prepares it there
        self.prep_in_reader = self.device.type == "cpu"
        self.pin = self.device.type == "cuda" and torch.cuda.is_available()
        # the backbone's in-place normalisation, used on the reader's pooled buffers (`_input`)
        self.normalize_ = _in_place_normalize(bb) if self.prep_in_reader else None
        # the reader's float32 input buffers, given back by the main thread once a batch is blended (`_ready`)
        self.free_inputs: queue.SimpleQueue[torch.Tensor] = queue.SimpleQueue()
        self.free_valid: queue.SimpleQueue[np.ndarray] = queue.SimpleQueue()  # their validity arrays, likewise
        self.input_buffers = 0  # buffers the pool allocated (bounded by the batches in flight, not the raster)
        self.valid_buffers = 0  # validity arrays the pool allocated (likewise)
        # the reader's mask of a batch's nodata pixels (`_input`): one buffer, filled again for each masked batch
        self.invalid: torch.Tensor | None = None
        self.start_counts: dict[int, int] = {}  # valid cells already written in blocks resumed part-way
        # main-thread seconds per step of the sweep (see `time_line`), and the tiles that went through the backbone
        self.timing: dict[str, float] = dict.fromkeys(("forward", "waiting", "blending", "rows"), 0.0)
        self.tiles = 0

    # -- reader thread ------------------------------------------------------------------------------------------
    def _reader(self, runs: list[list[Block]], out_q: queue.Queue, stop: threading.Event) -> None:
        """Tiles in sweep order, batched per tile row (so batch composition never depends on where a sweep starts),
        `self.fill` tiles a batch (`Plan.batch_fill`)."""
        import rasterio

        plan, p, tc = self.plan, self.plan.patch, self.plan.tile_cells
        spare: list[np.ndarray | None] = [None]  # CPU order: the last batch's values array, filled again
        pool = self._valid_slot if self.prep_in_reader else None  # CPU order: pooled validity arrays

        def new() -> _Tiles:
            return _Tiles(self.fill, self.pin, spare=spare[0], valid_pool=pool)

        def ready(tiles: _Tiles) -> _Tiles:
            x, prepared = tiles.x, self._ready(tiles)
            if prepared.ready is not None and x is not None:  # prepared here: the main thread never reads values
                spare[0], prepared.x = (x if x.base is None else x.base), None
            return prepared

        grids = [(run, *plan.run_tiles(run)) for run in runs]  # the reads are asked for in this order, stacked in it

        def order() -> Iterator[tuple[int, int, int, int]]:  # the windows of every tile, in sweep order
            for _, rows, cols in grids:
                for y, x in ((plan.row_starts[i], plan.col_starts[j]) for i in rows for j in cols):
                    yield y * p, (y + tc) * p, x * p, (x + tc) * p

        try:
            env = rasterio.Env(GDAL_CACHEMAX=int(self.cfg.gdal_cache_mb) * 2**20)
            env.__enter__()
            threads = read_threads(self.device.type, self.cfg.read_threads)
            try:
                with contextlib.closing(read_ahead(self.prep.source, order(), self._read, threads, stop)) as reads:
                    for run, rows, cols in grids:
                        _put(out_q, ("run_start", None, run, 0), stop)
                        for i in rows:
                            tiles, skipped = new(), 0
                            for j in cols:
                                got = next(reads, None)
                                if got is None:  # stopped
                                    return
                                data, valid = got[1]
                                if not valid.any():  # all nodata: skipped, its cells stay nodata
                                    skipped += 1
                                    continue
                                # stacked here, off the main thread; nodata is masked once, in `_input`
                                if tiles.add(j, data, valid):
                                    _put(out_q, ("batch", i, ready(tiles), skipped), stop)
                                    tiles, skipped = new(), 0
                            _put(out_q, ("batch", i, ready(tiles.trimmed()), skipped), stop)
                            _put(out_q, ("row_end", i, run, 0), stop)
            finally:
                env.__exit__(None, None, None)
            _put(out_q, ("end", None, None, 0), stop)
        except BaseException as exc:  # handed to the main thread, which re-raises it
            _put(out_q, ("error", None, _Failure(exc), 0), stop)

    def _read(self, src: Any, window: tuple[int, int, int, int]) -> tuple[np.ndarray, np.ndarray]:
        """One tile's (values, validity) from the open source `src` (on a reading thread), its bit depth checked."""
        data, valid = src.read(*window)
        if valid.any():
            check_read_values(
                self.prep.source.info.path, data, valid, self.sensor, kind=self.prep.source.kind, setting="--sensor"
            )
        return data, valid

    # -- writer thread (sweep_writer.py) -------------------------------------------------------------------------
    _writer = sweep_writer._writer  # store rows a chunk row at a time, records once their rows are stored
    _store_error = sweep_writer._store_error  # a work folder removed or damaged under the writer: one line

    # -- inference ----------------------------------------------------------------------------------------------
    def _ready(self, tiles: _Tiles) -> _Tiles:
        """On a CPU, the batch's backbone input prepared here in the reader thread (`_input`), off the main thread,
        and copied into a buffer of a small pool the main thread gives back after blending (`_give_back`).

        Handed on as they were made, the float32 batches (and the normaliser's) were allocated in the reader
        thread's malloc arena and freed by the main thread, out of order, while that arena made more: glibc kept
        the gaps in that arena (it never trims it under `heap_for_forward`'s thresholds): at 8192 px it held 410
        MiB, 370 of them free, at the peak. Now the reader frees its temporaries itself, batch after batch, and the
        batches in flight reuse the same few mapped buffers (`_mapped`)."""
        if self.prep_in_reader and tiles and tiles.x is not None:
            with torch.inference_mode():
                slot = self._slot(tiles.x.shape)
                x = self._input(tiles, slot[: len(tiles)])
                if (
                    x.untyped_storage().data_ptr() != slot.untyped_storage().data_ptr()
                    and x.shape == slot[: len(x)].shape
                ):
                    x = slot[: len(x)].copy_(x)  # the normaliser's new tensor: the same bits, back in the pool
                tiles.slot, tiles.ready = slot, x
        return tiles

    def _slot(self, shape: tuple[int, ...]) -> torch.Tensor:
        """A free pooled float32 buffer for a batch of `shape` (a new one when none is free: the pool grows to the
        batches in flight, a handful, and no further), mapped on its own (`_mapped`)."""
        try:
            slot: torch.Tensor | None = self.free_inputs.get_nowait()
        except queue.Empty:
            slot = None
        if slot is None or slot.shape[1:] != shape[1:] or slot.shape[0] < shape[0]:
            slot = _mapped((max(self.fill, shape[0]), *shape[1:]))
            self.input_buffers += 1
        return slot

    def _valid_slot(self, shape: tuple[int, ...]) -> np.ndarray:
        """A free pooled validity array for a batch (CPU order): the reader fills it, `_input` masks with it, the
        main thread blends with it and gives it back (`_give_back`). One made per batch and freed by the main thread
        stayed in the reader's arena, between the batches' other allocations."""
        try:
            valid: np.ndarray | None = self.free_valid.get_nowait()
        except queue.Empty:
            valid = None
        if valid is None or valid.shape != shape:
            valid = _mapped(shape, torch.bool).numpy()
            self.valid_buffers += 1
        return valid

    def _give_back(self, tiles: _Tiles) -> None:
        """The batch's pooled buffers back to the reader (the main thread has blended its features)."""
        if tiles.slot is not None:
            slot, tiles.slot, tiles.ready = tiles.slot, None, None
            self.free_inputs.put(slot)
        if tiles.valid_slot is not None:
            valid, tiles.valid_slot, tiles.valid = tiles.valid_slot, None, None
            self.free_valid.put(valid)

    def _input(self, tiles: _Tiles, out: torch.Tensor | None = None) -> torch.Tensor:
        """The backbone's input of a batch on the inference device: the values as read, copied there (in their own
        dtype), cast to float32, scaled to reflectance (`InputScale`), normalised, nodata pixels set to 0 (the
        backbone's mean). The one place nodata is masked: whatever value a nodata pixel holds (NaN included) is
        replaced here. The same float32 operations in the same order as the numpy steps before them: same bits.
        `out` (a host batch's pooled buffer, `_ready`) takes the float32 values (torch's copy casts as `.float()` does,
        numpy's as `as_float32_on` does for unsigned integers), and then every step is done in it: scaling, a
        backbone's own in-place normalisation (`normalize_`) and the nodata mask (negated into one reused buffer),
        so the reader allocates nothing per batch. Otherwise (an accelerator, a backbone with only `normalize`) the
        steps make new tensors, as before."""
        src = tiles.held if tiles.held is not None else torch.from_numpy(tiles.x)
        if out is not None and out.shape == src.shape and src.dtype in _COPY_CASTS:
            x = out.copy_(src)
        elif out is not None and out.shape == src.shape and src.dtype in _WIDENED and tiles.x is not None:
            np.copyto(out.numpy(), tiles.x, casting="unsafe")  # the same exact widening, without int32/int64 copies
            x = out
        else:
            x = as_float32_on(src, self.device, non_blocking=tiles.held is not None)
        x = self.scale.apply_(x)  # in place: a float32 batch is this batch's own copy
        in_place = self.normalize_ if x is out else None
        mine = in_place is not None
        x = in_place(x) if in_place is not None else self.bb.normalize(x)
        if not all(tiles.full):  # masked_fill, not a product: nodata may be NaN or inf, and 0 * NaN is NaN
            assert tiles.valid is not None  # set with the batch's first tile, as `full` is
            if mine:
                x.masked_fill_(torch.logical_not(torch.from_numpy(tiles.valid)[:, None], out=self._mask(x)), 0.0)
                return x
            # pinned (CUDA): the mask crosses as the values do, without the host waiting, and is negated there
            valid = tiles.held_valid if tiles.held_valid is not None else torch.from_numpy(tiles.valid)
            invalid = valid[:, None].to(self.device, non_blocking=tiles.held_valid is not None).logical_not()
            x = x.masked_fill(invalid, 0.0)
        return x

    def _mask(self, x: torch.Tensor) -> torch.Tensor:
        """The reader's reused bool buffer [n, 1, H, W] for a host batch `x`'s nodata pixels (`_input`)."""
        n, _, h, w = x.shape
        if self.invalid is None or self.invalid.shape[0] < n or self.invalid.shape[2:] != (h, w):
            self.invalid = _mapped((max(self.fill, n), 1, h, w), torch.bool)
        return self.invalid[:n]

    def _infer(self, tiles: _Tiles) -> torch.Tensor:
        """Features of the requested layers [B,D,h,w] float32 on the inference device (one layer: the backbone's own
        tensor, not a copy; blending reads it)."""
        cfg, bb = self.cfg, self.bb
        try:
            with torch.inference_mode():
                x = tiles.ready if tiles.ready is not None else self._input(tiles)
                with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=cfg.amp):
                    maps, _ = bb.features(x, layers=self.layers, norm=cfg.norm)
                maps = [m.to(self.device, torch.float32) for m in maps]  # a duck-typed backbone may answer elsewhere
                if len(maps) == 1:  # one layer: no concatenation copy
                    return maps[0]
                return torch.cat(maps, dim=1) if cfg.layer_mode == "concat" else torch.stack(maps).mean(0)
        except torch.OutOfMemoryError as exc:  # the estimate before the run does not know the device's other users
            raise InputError(
                f"a batch of {plural(len(tiles), 'tile')} of {self.plan.tile_px} px does not fit in {cfg.device} "
                "memory; pass a smaller --batch-size or --tile (batch_size= or tile= in Python)"
            ) from exc

    def _weights(self, i: int, j: int) -> torch.Tensor:
        plan = self.plan
        ry = plan.ramps(plan.row_starts, i, plan.out_height)
        rx = plan.ramps(plan.col_starts, j, plan.out_width)
        if (ry, rx) not in self.weight_cache:
            margin = self.margin // plan.patch
            w = tile_weights(plan.tile_cells, ry, rx, self.cfg.blend, margin)
            self.weight_cache[(ry, rx)] = torch.from_numpy(w).to(self.device)
        return self.weight_cache[(ry, rx)]

    # -- main loop ----------------------------------------------------------------------------------------------
    def run(self, blocks: list[Block]) -> None:
        """Process `blocks` (skipping none: the caller removed finished ones); raise on any thread's error."""
        if not blocks:
            return
        plan, cfg = self.plan, self.cfg
        runs = _runs(blocks)
        n_tiles = sum(len(rows) * len(cols) for rows, cols in map(plan.run_tiles, runs))
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
        timing, clock = self.timing, time.perf_counter
        try:
            while True:
                t = clock()
                kind, i, payload, skipped = in_q.get()
                timing["waiting"] += clock() - t
                if werrors:
                    raise werrors[0]
                if kind == "error":
                    raise payload.exc
                if kind == "end":
                    break
                if kind == "run_start":
                    band = _Band(plan, payload, self.prep.dim, self.device, self.start_counts)
                elif kind == "batch":
                    assert band is not None, "the reader sends run_start before a run's batches"
                    if payload:
                        t = clock()
                        feats = self._infer(payload)
                        t1 = clock()
                        band.add(i, payload, feats, self._weights)
                        self._give_back(payload)
                        timing["forward"] += t1 - t
                        timing["blending"] += clock() - t1
                        self.tiles += len(payload)
                    bar.update(len(payload) + skipped)
                elif kind == "row_end":
                    assert band is not None, "the reader sends run_start before a run's rows"
                    t = clock()
                    n_done += band.flush_after(i, out_q, self.prep.l2, self.prep.ident["dtype"])
                    timing["rows"] += clock() - t
                    n_rows += 1
                    _after_row(n_done, n_rows)
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


def _drain(q: queue.Queue) -> None:
    try:
        while True:
            q.get_nowait()
    except queue.Empty:
        pass


def _progress(total: int, cfg: EmbedConfig, desc: str) -> Any:
    from geodino.progress import progress_bar

    return progress_bar(
        total=total, desc=desc, unit="tile", disable=not cfg.progress, file=sys.stderr, dynamic_ncols=True
    )
