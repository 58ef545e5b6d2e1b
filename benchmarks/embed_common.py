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


def backbone_only_seconds(src_path: Path, bb, *, tile: int, overlap: int, batch: int) -> tuple[float, int]:
    """Time of the backbone alone on the plan's tiles (pre-read, pre-normalised, batched per tile row as the sweep
    batches them: `Plan.batch_fill` tiles a batch)."""
    import torch

    from geodino.embed.plan import make_plan
    from geodino.embed.sources import open_source

    src = open_source(str(src_path)).open()
    info = src.info
    plan = make_plan(info.height, info.width, info.transform, patch=bb.patch_size, tile=tile, overlap=overlap)
    p, tc = plan.patch, plan.tile_cells
    batch = plan.batch_fill(batch)
    rows = []
    for y in plan.row_starts:
        tiles = []
        for x in plan.col_starts:
            data, valid = src.read(y * p, (y + tc) * p, x * p, (x + tc) * p)
            if valid.any():
                tiles.append(torch.from_numpy(data / 255.0).float())
        rows.append([torch.stack(tiles[i : i + batch]) for i in range(0, len(tiles), batch)])
    src.close()
    n = sum(len(b) for r in rows for b in r)
    t0 = time.perf_counter()
    with torch.inference_mode():
        for r in rows:
            for b in r:
                bb.features(bb.normalize(b), layers="last")
    return time.perf_counter() - t0, n


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
