"""Part 1b-1d of the feature-raster benchmark (run through `benchmarks/embed.py`, whose docstring describes them):
the fast inference paths against the eager one (1b, `--only-fast`), the pipeline without a forward (1c,
`--only-pipeline`) and the sweep on a GPU against the CPU (1d, `--device-check`)."""

from __future__ import annotations

import contextlib
import shutil
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from embed_common import _env, _force_compile, backbone_only_seconds

FAST_MODES = {  # row -> GEODINO_FAST
    "eager": "0",
    "fast-float32": "float32",
    "fast-float32-mkl": "float32-mkl",  # the CPU float32 route before the oneDNN projections (session 51)
    "fast-bfloat16": "bfloat16",
    # the batching before balanced batches: batches of batch_size per tile row, a partial last one always padded
    # to the compiled batch (`_padded_batches`), so that the change is measured side by side
    "fast-float32-padded": "float32",
    "fast-bfloat16-padded": "bfloat16",
}


@contextlib.contextmanager
def _padded_batches(on: bool):
    """The previous batching for the body of a `with` block when `on`: `Plan.batch_fill` returns `batch_size`
    and every partial batch is zero-padded to the compiled one (`PAD_MIN_SHARE` 0)."""
    if not on:
        yield
        return
    import geodino.models.frozen as frozen
    from geodino.embed.plan import Plan

    fill, share = Plan.batch_fill, dict(frozen.PAD_MIN_SHARE)
    Plan.batch_fill = lambda self, batch_size: batch_size
    frozen.PAD_MIN_SHARE.update(dict.fromkeys(share, 0.0))
    try:
        yield
    finally:
        Plan.batch_fill = fill
        frozen.PAD_MIN_SHARE.update(share)


def pipeline_only(
    src: Path,
    work: Path,
    *,
    rounds: int,
    dim: int = 384,
    dtype: str = "float16",
    device: str = "cpu",
    read_threads: int = 0,
) -> dict:
    """Median wall time of `embed_raster` runs whose backbone returns random features [B, dim, h, w] at once: the
    reader, scaling, normalisation, blending, encoding and writing (as `dtype`), without the forward. The eager path
    (`GEODINO_FAST=0`) so that nothing is compiled; the store is created and finalised in every run, as in a
    real one. On `device` "cuda" the batch crosses to the GPU and is prepared and blended there, as a GPU run does;
    `read_threads`: the run's `read_threads` (0: the sweep's own choice for the device)."""
    import rasterio
    import torch

    from geodino.backbones import load_backbone
    from geodino.embed import embed_raster

    bb = load_backbone("arch:vit_small?seed=0&depth=1")
    patch = bb.patch_size

    seen = [0]
    pool: dict[tuple, list] = {}

    def features(x, layers=None, norm=True):
        """Random features (so the encoder compresses what a real run would) drawn once per shape: a fresh copy of one
        of four, as a real forward hands over a new tensor, without the cost of drawing 3 M numbers per batch on the
        clock (before session 53 that draw was timed: ~40 % of this part's main thread on 2 cores)."""
        key = (x.shape[0], x.shape[-2] // patch, x.shape[-1] // patch, x.device)
        if key not in pool:
            gen = torch.Generator(device=x.device).manual_seed(0)
            pool[key] = [torch.rand(key[0], dim, key[1], key[2], device=x.device, generator=gen) for _ in range(4)]
        f = pool[key][seen[0] % 4].clone()
        seen[0] += x.shape[0]
        return [f], [f[:, :, 0, 0]]

    bb.features = features
    with rasterio.open(src) as ds:
        side = ds.width
    from geodino.embed.read_ahead import read_threads as threads_for

    times = []
    with _env("0"):
        for k in range(rounds):
            t0 = time.perf_counter()
            out = work / f"pipe{k}.zarr"
            kw = dict(tile=512, overlap=128, batch_size=8, progress=False, dtype=dtype, device=device)
            embed_raster(src, bb, out, read_threads=read_threads, **kw)
            if device.startswith("cuda"):
                torch.cuda.synchronize()
            times.append(time.perf_counter() - t0)
            shutil.rmtree(out, ignore_errors=True)  # rounds alike: no earlier output's pages in the cache
    s, tiles = statistics.median(times), seen[0] // rounds
    threads = threads_for(torch.device(device).type, read_threads)
    return {"tiles": tiles, "s": s, "tiles_s": tiles / s, "px_s": side * side / s, "threads": threads}


def device_check(work: Path, device: str, size: int = 1024) -> dict:
    """The sweep on `device` against the same sweep on the CPU (eager float32, a random ViT-S with LayerScale 1.0, so
    that a wrong block on the device shows: at the official 1e-5 the features are the patch embedding's, the blocks
    scaled to nothing; a generated uint16 raster with a nodata hole: the path that crosses to the device in the
    raster's dtype, is masked back to unsigned, prepared and blended there): the largest feature difference and the
    lowest cosine per cell, and whether the store of one reader thread equals that of the sweep's own count, byte for
    byte. A correctness check, not a timing."""
    import rasterio
    from rasterio.transform import from_origin

    from geodino.backbones import load_backbone
    from geodino.embed import embed_raster

    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    img = 3000 + 2500 * np.stack([np.sin(xx / (31 + 7 * k)) * np.cos(yy / (47 + 5 * k)) for k in range(3)])
    img = (img + rng.integers(0, 400, img.shape)).astype(np.uint16)
    img[:, size // 4 : size // 3, size // 5 : size // 2] = 0
    src = work / "check_u16.tif"
    prof = dict(driver="GTiff", height=size, width=size, count=3, dtype="uint16", crs="EPSG:32633", nodata=0)
    with rasterio.open(src, "w", transform=from_origin(5e5, 5e6, 10, 10), tiled=True, compress="deflate", **prof) as d:
        d.write(img)
    bb = load_backbone("arch:vit_small?seed=0&layerscale_init=1.0")  # at 1e-5 the blocks would hardly show
    stores = {}
    with _env("0"):
        for name, dev, threads in (("cpu", "cpu", 1), ("dev-1", device, 1), ("dev-auto", device, 0)):
            out = work / f"check_{name}.zarr"
            embed_raster(src, bb, out, progress=False, overwrite=True, device=dev, read_threads=threads, scale=1e-4)
            with rasterio.open(out) as ds:
                stores[name] = ds.read()
    ref, got = stores["cpu"], stores["dev-1"]
    ok = ~np.isnan(ref).any(0)
    cos = (ref * got).sum(0)[ok] / (np.linalg.norm(ref, axis=0) * np.linalg.norm(got, axis=0))[ok]
    same_nodata = bool((np.isnan(ref) == np.isnan(got)).all())
    return {
        "max_abs": float(np.nanmax(np.abs(got - ref))),
        "min_cos": float(cos.min()),
        "nodata_same": same_nodata,
        "readers_identical": stores["dev-1"].tobytes() == stores["dev-auto"].tobytes(),
    }


def fast_vs_eager(
    src_path: Path, spec: str, *, tile: int, overlap: int, batch: int, rounds: int, work: Path, modes: list[str]
) -> list[dict]:
    """End-to-end .zarr px/s and backbone-only px/s per inference path, rounds interleaved (load hits all alike).

    Fast rows are compiled whatever the job size (`COMPILE_MIN_IMAGES` set to 0 here). px/s are steady state: the
    warm-up (compile of the tile shape + its forward, paid once per run and process) falls in a first run per path
    that is timed apart and reported as first run - steady run, with the number of tiles a run needs to repay it.
    Steady state rather than a raster big enough to amortise the warm-up: ViT-S compiles in 15-60 s on a 2-core CPU;
    to make it under a tenth of a float32 run takes ~200 tiles of 512 px (~3 min per run and path there), far past a
    short interleaved benchmark of three paths."""
    import rasterio

    from geodino.backbones import load_backbone
    from geodino.embed import embed_raster
    from geodino.inference import fast_backbone

    _force_compile(True)
    with rasterio.open(src_path) as ds:
        px = ds.width * ds.height
    bbs, warm, path = {}, {}, {}
    for m in modes:
        bbs[m] = load_backbone(spec)
        with _env(FAST_MODES[m]), _padded_batches(m.endswith("-padded")):
            t0 = time.perf_counter()
            embed_raster(src_path, bbs[m], work / f"w_{m}.zarr", tile=tile, overlap=overlap, batch_size=batch,
                         progress=False, overwrite=True)  # fmt: skip
            warm[m] = time.perf_counter() - t0
            with fast_backbone(bbs[m]) as p:  # embed_raster restores the eager model; this reuses its FastViT
                path[m] = p.name + (" (padded batches)" if m.endswith("-padded") else "")
                backbone_only_seconds(src_path, bbs[m], tile=tile, overlap=overlap, batch=batch)
    t_e2e: dict[str, list[float]] = {m: [] for m in modes}
    t_bb: dict[str, list[float]] = {m: [] for m in modes}
    for _ in range(rounds):
        for m in modes:
            with _env(FAST_MODES[m]), _padded_batches(m.endswith("-padded")):
                with fast_backbone(bbs[m]):
                    t, n_tiles = backbone_only_seconds(src_path, bbs[m], tile=tile, overlap=overlap, batch=batch)
                t_bb[m].append(t)
                t0 = time.perf_counter()
                embed_raster(src_path, bbs[m], work / f"f_{m}.zarr", tile=tile, overlap=overlap, batch_size=batch,
                             progress=False, overwrite=True)  # fmt: skip
                t_e2e[m].append(time.perf_counter() - t0)
    base = modes[0]
    rows = []
    for m in modes:
        steady = statistics.median(t_e2e[m])
        vs_base = [b / e for b, e in zip(t_e2e[base], t_e2e[m])]  # per-round ratios: drift between rounds shows here
        of_bb = [b / e for b, e in zip(t_bb[m], t_e2e[m])]
        warmup = max(warm[m] - steady, 0.0)  # the first run minus a steady one: compile + its forward
        saved = (statistics.median(t_e2e[base]) - steady) / n_tiles  # s saved per tile against the first mode
        rows.append(
            {
                "mode": m,
                "path": path[m],
                "e2e_px_s": px / steady,
                "vs_eager": statistics.median(vs_base),
                "rounds": vs_base,
                "rounds_bb": of_bb,
                "backbone_px_s": px / statistics.median(t_bb[m]),
                "of_backbone": statistics.median(of_bb),
                "first_run_s": warm[m],
                "warmup_s": warmup,
                # tiles (of this size) a run needs before the warm-up is repaid: the break-even job size
                "break_even_tiles": (warmup / saved if saved > 0 else float("inf")) if m != base else 0.0,
            }
        )
    return rows
