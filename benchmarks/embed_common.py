"""Shared parts of the feature-raster benchmarks (`benchmarks/embed.py` and its part modules): the generated
raster, the backbone-only timing of a plan's tiles, and the switches of the inference path (GEODINO_FAST, compile)."""

from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")


def make_raster(path: Path, size: int, *, block: int = 512, seed: int = 0) -> Path:
    """A size x size 3-band uint8 GeoTIFF (tiled, deflate) with image-like structure, written by windows."""
    import rasterio
    from rasterio.transform import from_origin
    from rasterio.windows import Window

    rng = np.random.default_rng(seed)
    prof = {
        "driver": "GTiff",
        "height": size,
        "width": size,
        "count": 3,
        "dtype": "uint8",
        "crs": "EPSG:32633",
        "transform": from_origin(500000.0, 5000000.0, 10.0, 10.0),
        "tiled": True,
        "blockxsize": 512,
        "blockysize": 512,
        "compress": "deflate",
    }
    with rasterio.open(path, "w", **prof) as dst:
        for r in range(0, size, block):
            h = min(block, size - r)
            yy, xx = np.mgrid[r : r + h, 0:size].astype(np.float32)
            base = np.stack([np.sin(xx / (37 + 9 * k)) * np.cos(yy / (53 + 7 * k)) for k in range(3)])
            img = 120 + 80 * base + rng.integers(0, 30, size=(3, h, size))
            dst.write(np.clip(img, 0, 255).astype(np.uint8), window=Window(0, r, size, h))
    return path


def backbone_only_seconds(
    src_path: Path, bb, *, tile: int, overlap: int, batch: int, layers: str = "last", norm: bool = True
) -> tuple[float, int]:
    """Time of the backbone alone on the plan's tiles, as `geodino embed`'s sweep runs it on a CPU: the same call
    (`Sweeper._infer`: `bb.features(x, layers=parse_layers(layers), norm=norm)` in inference mode, bf16 autocast
    off), on the same batches (per tile row, `Plan.batch_fill` tiles a batch, tiles without a valid pixel left
    out, scaled by the sweep's own `input_scaler`), in the main thread while another thread prepares each batch (cast,
    scale, normalise), as the sweep's reader thread does. The tiles are read beforehand: only the forwards and the
    hand-over are timed.

    The preparing thread is part of the fairness, not only of the work: its torch ops give it its own OpenMP team,
    and libgomp, once it manages more threads than there are CPUs, waits at its barriers passively (a short spin)
    instead of spinning ~300k rounds. On a CPU shared with other processes a forward with only the main thread's
    team lost most of its time spinning: 1.1-2.8 s against 0.6-1.3 s per batch of 3 x 512 px with the thread (ViT-T,
    2 threads, load 4-5), which made end to end read 1.5x faster than backbone-only. The thread stays alive until
    the last forward (the sweep's reader ends a batch or two before the sweep on a large raster)."""
    import queue
    import threading

    import torch

    from geodino.embed.backbone import parse_layers
    from geodino.embed.config import EmbedConfig
    from geodino.embed.input_scaling import as_float32_on, input_scaler
    from geodino.embed.plan import make_plan
    from geodino.embed.sources import open_source

    src = open_source(str(src_path)).open()
    info = src.info
    plan = make_plan(info.height, info.width, info.transform, patch=bb.patch_size, tile=tile, overlap=overlap)
    p, tc = plan.patch, plan.tile_cells
    fill = plan.batch_fill(batch)
    scale, _ = input_scaler(info, EmbedConfig(), bb)
    raw = []  # batches of DN as read, per tile row
    for y in plan.row_starts:
        tiles = []
        for x in plan.col_starts:
            data, valid = src.read(y * p, (y + tc) * p, x * p, (x + tc) * p)
            if valid.any():
                tiles.append(data)
        raw += [np.stack(tiles[i : i + fill]) for i in range(0, len(tiles), fill)]
    src.close()
    chosen = parse_layers(layers)
    ready: queue.Queue = queue.Queue(maxsize=3)  # the sweep's queue between its reader and the forward
    done = threading.Event()

    def prepare() -> None:  # the sweep's `_input` for a batch without nodata, in a thread of its own
        try:
            with torch.inference_mode():
                for b in raw:
                    ready.put(bb.normalize(scale.apply_(as_float32_on(torch.from_numpy(b), "cpu"))))
            ready.put(None)
        except BaseException as exc:  # handed to the main thread, which would otherwise wait for a batch forever
            ready.put(exc)
        done.wait()

    helper = threading.Thread(target=prepare, daemon=True, name="backbone-only-prepare")
    t0 = time.perf_counter()
    helper.start()
    try:
        with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=False):
            while (x := ready.get()) is not None:
                if isinstance(x, BaseException):
                    raise x
                bb.features(x, layers=chosen, norm=norm)
        if torch.cuda.is_available():  # weights on a GPU: the forwards are asynchronous
            torch.cuda.synchronize()
        seconds = time.perf_counter() - t0
    finally:
        done.set()
        helper.join()
    return seconds, sum(len(b) for b in raw)


def _env(value: str):
    """GEODINO_FAST=value for the body of a `with` block (the path is chosen when `embed_raster` starts)."""
    import contextlib

    @contextlib.contextmanager
    def cm():
        old = os.environ.get("GEODINO_FAST")
        os.environ["GEODINO_FAST"] = value
        try:
            yield
        finally:
            if old is None:
                os.environ.pop("GEODINO_FAST", None)
            else:
                os.environ["GEODINO_FAST"] = old

    return cm()


def _force_compile(on: bool) -> None:
    """Override the job-size rules (`geodino.inference.COMPILE_MIN_IMAGES` and, for float32 on CPU at images over
    224 px, `CPU_FLOAT32_LARGE_COMPILE_MIN_IMAGES`): compile every job, or none."""
    import geodino.inference as inference

    inference.COMPILE_MIN_IMAGES = dict.fromkeys(("cpu", "cuda"), 0 if on else 2**62)
    inference.CPU_FLOAT32_LARGE_COMPILE_MIN_IMAGES = 0 if on else 2**62
