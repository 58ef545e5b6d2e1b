"""Feature-raster benchmarks: throughput, memory scaling and seams of `geodino embed`.

1. Throughput: end-to-end `embed_raster` pixels/s against backbone-only pixels/s on the same tiles (the tiles
   read into memory beforehand, the same batches, the same threads): target >= 0.85.
1b. Inference paths (issue 15): end-to-end px/s of the eager path (`GEODINO_FAST=0`, today's before the fast path)
   against the fast path compiled in float32 and in bf16 (ViT-S by default), and each path's share of its own
   backbone-only px/s: targets >= 1.2x eager and >= 0.85 of backbone-only. `--only-fast` runs just this part;
   `--fast-batch` defaults to `geodino embed`'s batch (8; tables before session 16 used 4), and the modes
   `fast-float32-padded` / `fast-bfloat16-padded` add the batching before balanced batches (`Plan.batch_fill`)
   side by side.
1c. The pipeline alone: `embed_raster` with the backbone's forward replaced by a constant of the right shape
   (what an infinitely fast accelerator leaves: reading, scaling, normalising, blending, encoding, writing), in
   tiles/s and px/s. On a GPU this is the ceiling of a feature raster; `--only-pipeline` runs just this part.
1d. Device check (`--device-check`): the sweep on a GPU (the batch crosses in uint16, is prepared and blended there)
   against the same sweep on the CPU, and one reader against the sweep's own count: a correctness row for gpu.sh.
2. Memory: peak RSS of `embed_raster` on a generated 16k x 16k raster against a 4k x 4k one, each in a fresh
   subprocess (a 1-block ViT-tiny so the 16k run takes minutes): target <= 1.1.
3. Seams: mean |f(c) - f(c')| of adjacent cells across tile borders divided by the same inside tiles
   (1.0 = no visible seam), without overlap, with cosine blending, with Hann and with the centre crop.

Run: `.venv/bin/python benchmarks/embed.py` (add `--quick` for a smaller run, `--skip-rss` to skip part 2).
Uses ../shared/data/scenes/RGB.byte.tif as a real example when present. Ratios are measured side by side in one
run: the machine is shared, absolute numbers are noisy.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")
ROOT = Path(__file__).resolve().parents[1]
REAL = ROOT.parent / "shared" / "data" / "scenes" / "RGB.byte.tif"


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


# ------------------------------------------------------------------------------------------------------------
# 1. throughput


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


def throughput(src_path: Path, spec: str, *, tile: int, overlap: int, batch: int, rounds: int, work: Path) -> dict:
    from geodino.backbones import load_backbone
    from geodino.embed import embed_raster
    from geodino.inference import fast_backbone

    bb = load_backbone(spec)
    _, n_tiles = backbone_only_seconds(src_path, bb, tile=tile, overlap=overlap, batch=batch)  # eager warm-up

    def backbone_only() -> tuple[float, int]:
        # the path embed_raster picks for this job (same tile count and size): the ratio e2e / backbone-only
        # compares one forward with itself (it divided the fast pipeline by the eager forward before)
        with fast_backbone(bb, n_images=n_tiles, image_size=(tile, tile)):
            return backbone_only_seconds(src_path, bb, tile=tile, overlap=overlap, batch=batch)

    backbone_only()  # the fast path's warm-up (its compile, when the job size asks for one)
    t_bb, t_zarr, t_cog = [], [], []
    for r in range(rounds):
        t, n_tiles = backbone_only()
        t_bb.append(t)
        for out, acc in ((work / f"e{r}.zarr", t_zarr), (work / f"e{r}.tif", t_cog)):
            t0 = time.perf_counter()
            embed_raster(
                src_path, bb, out, tile=tile, overlap=overlap, batch_size=batch, progress=False, overwrite=True
            )
            acc.append(time.perf_counter() - t0)
    import rasterio

    with rasterio.open(src_path) as ds:
        px = ds.width * ds.height
    best_bb, best_z, best_c = min(t_bb), min(t_zarr), min(t_cog)
    # this shared machine's speed drifts by +-20 % between runs of identical work: the ratio is the median of
    # the per-round ratios (each round times backbone-only, .zarr and .tif back to back)
    return {
        "raster": src_path.name,
        "pixels": px,
        "tiles": n_tiles,
        "backbone_px_s": px / best_bb,
        "e2e_zarr_px_s": px / best_z,
        "e2e_cog_px_s": px / best_c,
        "ratio_zarr": statistics.median(b / z for b, z in zip(t_bb, t_zarr)),
        "ratio_cog": statistics.median(b / c for b, c in zip(t_bb, t_cog)),
    }


# ------------------------------------------------------------------------------------------------------------
# 1b. fast inference path vs today's eager path

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


def _force_compile(on: bool) -> None:
    """Override the job-size rules (`geodino.inference.COMPILE_MIN_IMAGES` and, for float32 on CPU at images over
    224 px, `CPU_FLOAT32_LARGE_COMPILE_MIN_IMAGES`): compile every job, or none."""
    import geodino.inference as inference

    inference.COMPILE_MIN_IMAGES = dict.fromkeys(("cpu", "cuda"), 0 if on else 2**62)
    inference.CPU_FLOAT32_LARGE_COMPILE_MIN_IMAGES = 0 if on else 2**62


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


# ------------------------------------------------------------------------------------------------------------
# 2. memory


def peak_rss_mib() -> float:
    """This process's own peak RSS: VmHWM of its address space.

    Not `getrusage().ru_maxrss`: Linux carries the parent's peak across fork + exec into it, so a child started
    by a parent that had just generated the 16k raster reported the parent's 1.4 GB (the 1.40 "ratio" of
    session 1 was this artefact).
    """
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def rss_child(src: str, out: str, spec: str, tile: int, overlap: int, compile: str = "auto", batch: int = 8) -> None:
    """Run in a fresh process: embed, then print the peak RSS (MiB), the wall time, the inference path and the batch
    fill (tiles per forward, `Plan.batch_fill`) as JSON.

    `compile`: auto (the job-size rule: a 16k raster compiles, a 4k one does not), on or off (both sizes alike, so
    the ratio shows growth with the raster, not the compiler's fixed cost)."""
    import geodino.inference as inference
    from geodino.embed import embed_raster
    from geodino.embed.plan import Plan

    if compile != "auto":
        _force_compile(compile == "on")
    seen: dict = {}
    prepare, batch_fill = inference.prepare_embed, Plan.batch_fill

    def record(*a, **k):
        seen.update(prepare(*a, **k))
        return seen

    def record_fill(plan: Plan, batch_size: int) -> int:
        seen["fill"] = batch_fill(plan, batch_size)
        return seen["fill"]

    inference.prepare_embed = record
    Plan.batch_fill = record_fill
    t0 = time.perf_counter()
    embed_raster(
        src, spec, out, tile=tile, overlap=overlap, batch_size=batch, dtype="float16", overwrite=True, progress=False
    )
    peak = peak_rss_mib()
    row = {"peak_rss_mib": peak, "seconds": time.perf_counter() - t0, "path": seen.get("inference_path")}
    print(json.dumps({**row, "fill": seen.get("fill")}))


def rss(
    work: Path,
    sizes: tuple[int, int],
    spec: str,
    tile: int,
    overlap: int,
    formats: tuple[str, ...],
    compile: str,
    batches: tuple[int, ...] = (8,),
) -> list[dict]:
    """Peak RSS of one fresh process per (size, batch size, output format); rows are printed as they finish.

    The batch fill goes with each row: tile rows are batched on their own and balanced (`Plan.batch_fill`), so at
    batch size 8 a 4k raster (rows of 11 tiles) runs 6 tiles per forward and a 16k one (22 per column block) 8, a
    third more tiles and activations per forward that do not come from the raster's size. A batch size giving both
    the same fill (6 here) measures the growth with the raster alone."""

    rows = []
    for size in sizes:
        src = make_raster(work / f"gen{size}.tif", size)
        for batch in batches:
            for fmt in formats:
                out = work / f"rss{size}.{fmt}"
                cmd = [sys.executable, __file__, "--rss-child", str(src), str(out), spec, str(tile), str(overlap)]
                res = subprocess.run([*cmd, compile, str(batch)], capture_output=True, text=True, check=False)
                if res.returncode != 0:
                    raise RuntimeError(f"rss child for {size} .{fmt} failed:\n{res.stderr[-2000:]}")
                row = json.loads(res.stdout.strip().splitlines()[-1])
                row["size"], row["format"], row["batch"] = size, fmt, batch
                print(
                    f"| {size} x {size} | .{fmt} | {row['path']} | {batch} | {row['fill']} | "
                    f"{row['peak_rss_mib']:.0f} | {row['seconds']:.0f} |",
                    flush=True,
                )
                rows.append(row)
                if out.is_dir():
                    shutil.rmtree(out, ignore_errors=True)
                else:
                    out.unlink(missing_ok=True)
        src.unlink()
    return rows


# ------------------------------------------------------------------------------------------------------------
# 3. seams


def seam_ratio(feats: np.ndarray, edges: set[int]) -> float:
    """Mean adjacent-cell feature distance across positions in `edges` / elsewhere (both axes, valid cells)."""
    valid = ~np.isnan(feats).any(0)
    f = np.nan_to_num(feats)
    across, inside = [], []
    for axis in (1, 2):
        d = np.linalg.norm(np.diff(f, axis=axis), axis=0)
        ok = valid[1:, :] & valid[:-1, :] if axis == 1 else valid[:, 1:] & valid[:, :-1]
        pos = np.arange(d.shape[axis - 1]) + 1  # boundary between cell i-1 and i
        is_edge = np.isin(pos, sorted(edges))
        m = is_edge[:, None] if axis == 1 else is_edge[None, :]
        across.append(d[ok & m])
        inside.append(d[ok & ~m])
    a, i = np.concatenate(across), np.concatenate(inside)
    return float(a.mean() / i.mean())


def seams(src_path: Path, spec: str, work: Path, tile: int) -> list[dict]:
    """Seam ratio and error against whole-image inference (cells at tile edges vs elsewhere) per tiling."""
    import rasterio
    import torch

    from geodino.backbones import load_backbone
    from geodino.embed import embed_raster
    from geodino.embed.plan import make_plan

    bb = load_backbone(spec)
    p = bb.patch_size
    with rasterio.open(src_path) as ds:
        h, w, t = ds.height, ds.width, ds.transform
        img = ds.read()[:, : h // p * p, : w // p * p]
    with torch.inference_mode():
        whole = bb.features(bb.normalize(torch.from_numpy(img[None] / 255.0).float()))[0][0][0].numpy()
    cases = [
        ("no overlap (tiles abut)", dict(overlap=0)),
        ("overlap 1/4, cosine, margin overlap/4", dict(overlap=tile // 4, blend="cosine")),
        ("overlap 1/4, cosine, no margin", dict(overlap=tile // 4, blend="cosine", margin=0)),
        ("overlap 1/4, hann", dict(overlap=tile // 4, blend="hann")),
        ("overlap 1/4, centre crop", dict(overlap=tile // 4, blend="center")),
    ]
    rows = []
    for name, kw in cases:
        out = embed_raster(src_path, bb, work / "seam.zarr", tile=tile, progress=False, overwrite=True, **kw)
        with rasterio.open(out) as ds:
            f = ds.read()[:, : whole.shape[1], : whole.shape[2]]
        plan = make_plan(h, w, t, patch=p, tile=tile, overlap=kw["overlap"])
        tc = plan.tile_cells
        starts = plan.row_starts + plan.col_starts
        edges = {s for s in starts if s > 0} | {s + tc for s in starts if s + tc < max(f.shape[1:])}
        err = np.linalg.norm(f - whole, axis=0) / np.linalg.norm(whole, axis=0).mean()
        near = np.zeros(err.shape, bool)
        for e in edges:
            near[max(0, e - 1) : e + 1, :] = True
            near[:, max(0, e - 1) : e + 1] = True
        rows.append(
            {
                "case": name,
                "seam_ratio": seam_ratio(f, edges),
                "whole_ratio": seam_ratio(whole, edges),
                "err_edge": float(err[near].mean()),
                "err_inside": float(err[~near].mean()),
            }
        )
    return rows


# ------------------------------------------------------------------------------------------------------------


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="smaller rasters (1024 px throughput, 2k vs 8k memory)")
    ap.add_argument("--skip-rss", action="store_true")
    ap.add_argument("--only-rss", action="store_true", help="run only the memory benchmark")
    ap.add_argument("--backbone", default="arch:vit_tiny?seed=0", help="backbone for throughput and seams")
    ap.add_argument(
        "--seam-backbone",
        default="arch:vit_tiny?seed=0&layerscale_init=1.0",
        help="context-sensitive backbone for the seam measure (a random ViT with the official LayerScale init 1e-5 "
        "is almost purely local, so it shows no seams at all)",
    )
    ap.add_argument("--rss-backbone", default="arch:vit_tiny?seed=0&depth=1", help="fast backbone for the memory runs")
    ap.add_argument("--rss-formats", default="zarr,tif", help="outputs measured by the memory benchmark")
    ap.add_argument(  # 8: geodino embed's default (fills 6 / 8 at 4k / 16k); 6: the same fill at both sizes
        "--rss-batches",
        type=int,
        nargs="+",
        default=[8, 6],
        help="batch sizes of the memory runs (default 8 6: embed's default, and one with the same tiles per forward "
        "at both sizes)",
    )
    ap.add_argument(
        "--fast-backbone", default="arch:vit_small?seed=0", help="backbone of part 1b (fast path vs eager); '' skips"
    )
    ap.add_argument("--fast-size", type=int, default=1536, help="raster side of part 1b (1536: 16 tiles of 512)")
    ap.add_argument("--fast-rounds", type=int, default=2)
    ap.add_argument(  # geodino embed's default; batch 4 on rows of 4 or 8 tiles hid the padding of partial batches
        "--fast-batch", type=int, default=8, help="batch size of part 1b (default 8, as geodino embed)"
    )
    ap.add_argument("--fast-modes", nargs="+", default=list(FAST_MODES), choices=list(FAST_MODES))
    ap.add_argument("--only-fast", action="store_true", help="run only part 1b")
    ap.add_argument("--only-pipeline", action="store_true", help="run only part 1c")
    ap.add_argument("--pipeline-size", type=int, default=4096, help="raster side of part 1c")
    ap.add_argument("--pipeline-rounds", type=int, default=3)
    ap.add_argument("--device-check", action="store_true", help="run only part 1d (the sweep on a GPU vs the CPU)")
    ap.add_argument("--pipeline-device", default=None, help="device of part 1c (default: cuda when there is one)")
    ap.add_argument(
        "--read-threads",
        type=int,
        nargs="+",
        default=None,
        help="part 1c once per reader-thread count (embed's read_threads; 0: the sweep's own choice for the device); "
        "default: the sweep's choice",
    )
    ap.add_argument(
        "--pipeline-dtype",
        default="float16",
        choices=("float32", "float16", "int8"),
        help="stored dtype of part 1c (float16: as the GPU runs of issue 15; before, float32 was written although the "
        "table said float16)",
    )
    ap.add_argument(
        "--rss-compile",
        default="auto",
        choices=("auto", "on", "off"),
        help="fast-path compile in the memory runs: auto (job-size rule: the 16k job compiles, the 4k one does not), "
        "on / off (both alike)",
    )
    ap.add_argument(
        "--rss-child",
        nargs=7,
        metavar=("SRC", "OUT", "SPEC", "TILE", "OVERLAP", "COMPILE", "BATCH"),
        help=argparse.SUPPRESS,
    )
    args = ap.parse_args()
    if args.rss_child:
        src, out, spec, tile, overlap, compile, batch = args.rss_child
        rss_child(src, out, spec, int(tile), int(overlap), compile, int(batch))
        return
    import torch

    print(f"torch threads: {torch.get_num_threads()}, backbone: {args.backbone}")
    with tempfile.TemporaryDirectory(prefix="geodino-embed-bench-") as tmp:
        work = Path(tmp)
        size = 1024 if args.quick else 3072  # 64 tiles: pipeline fill and drain (~0.5 s) amortised
        device = args.pipeline_device or ("cuda" if torch.cuda.is_available() else "cpu")  # parts 1c and 1d
        if args.device_check:
            what = "1024^2 uint16 raster with a nodata hole, ViT-S, eager"
            print(f"\n## 1d. the sweep on {device} against the CPU ({what})\n")
            print("| max abs difference | lowest cell cosine | nodata cells equal | 1 reader == auto readers |")
            print("|---|---|---|---|")
            r = device_check(work, device)
            print(f"| {r['max_abs']:.2e} | {r['min_cos']:.6f} | {r['nodata_same']} | {r['readers_identical']} |")
            return
        if args.only_pipeline:
            psrc = make_raster(work / "pipeline.tif", args.pipeline_size)
            print(
                f"\n## 1c. the pipeline alone ({args.pipeline_size}^2 generated uint8 raster, tile 512, overlap 128, "
                f"batch 8, D 384, .zarr {args.pipeline_dtype}, device {device}; the backbone forward replaced by a "
                f"constant; load average {os.getloadavg()[0]:.1f})\n"
            )
            print("| reader threads | tiles | rounds | s per run (median) | tiles/s | Mpx/s |")
            print("|---|---|---|---|---|---|")
            kw = dict(rounds=args.pipeline_rounds, dtype=args.pipeline_dtype, device=device)
            pipeline_only(psrc, work, **{**kw, "rounds": 1})  # untimed: imports, allocator, first-use costs
            for n in args.read_threads or [None]:  # one row per reader-thread count, in the same process
                r = pipeline_only(psrc, work, read_threads=n or 0, **kw)
                print(
                    f"| {r['threads']}{'' if n else ' (auto)'} | {r['tiles']} | {args.pipeline_rounds} | {r['s']:.2f} "
                    f"| {r['tiles_s']:.1f} | {r['px_s'] / 1e6:.2f} |",
                    flush=True,
                )
            return
        gen = make_raster(work / "thr.tif", size)
        if args.only_rss or args.only_fast:
            srcs = []
        else:
            srcs = [gen] + ([REAL] if REAL.exists() else [])
        rounds = 2 if args.quick else 4
        print(
            f"\n## 1. throughput (tile 512, overlap 128, batch 4; px/s: best of {rounds} rounds; "
            "ratio: median of per-round ratios)\n"
        )
        print("| raster | tiles | backbone-only px/s | e2e .zarr px/s | e2e .tif px/s | ratio .zarr | ratio .tif |")
        print("|---|---|---|---|---|---|---|")
        for src in srcs:
            r = throughput(src, args.backbone, tile=512, overlap=128, batch=4, rounds=rounds, work=work)
            print(
                f"| {r['raster']} ({r['pixels'] / 1e6:.2f} Mpx) | {r['tiles']} | {r['backbone_px_s']:.0f} | "
                f"{r['e2e_zarr_px_s']:.0f} | {r['e2e_cog_px_s']:.0f} | {r['ratio_zarr']:.2f} | {r['ratio_cog']:.2f} |",
                flush=True,
            )
        if args.fast_backbone and not args.only_rss:
            fsize = args.fast_size
            fsrc = make_raster(work / "fast.tif", fsize)
            print(
                f"\n## 1b. inference paths ({args.fast_backbone}, {fsize}^2 generated raster, tile 512, overlap 128, "
                f"batch {args.fast_batch}; medians of {args.fast_rounds} interleaved rounds; load average "
                f"{os.getloadavg()[0]:.1f})\n"
            )
            print(
                "| path | e2e .zarr px/s (steady) | vs eager e2e | backbone-only px/s | e2e / backbone-only | "
                "first run s | warm-up s | tiles to repay it |"
            )
            print("|---|---|---|---|---|---|---|---|", flush=True)
            fast_rows = fast_vs_eager(
                fsrc, args.fast_backbone, tile=512, overlap=128, batch=args.fast_batch, rounds=args.fast_rounds,
                work=work, modes=args.fast_modes,
            )  # fmt: skip
            for r in fast_rows:
                print(
                    f"| {r['path']} | {r['e2e_px_s']:.0f} | {r['vs_eager']:.2f} | {r['backbone_px_s']:.0f} | "
                    f"{r['of_backbone']:.2f} | {r['first_run_s']:.0f} | {r['warmup_s']:.0f} | "
                    f"{r['break_even_tiles']:.0f} |",
                    flush=True,
                )
            print(f"(load average after: {os.getloadavg()[0]:.1f})")
            print(f"per-round ratios (e2e vs {args.fast_modes[0]} e2e; e2e / own backbone-only):")
            for r in fast_rows:
                e2e = ", ".join(f"{x:.2f}" for x in r["rounds"])
                own = ", ".join(f"{x:.2f}" for x in r["rounds_bb"])
                print(f"  {r['path']}: {e2e}; {own}")
            if args.only_fast:
                return
        print("\n## 3. seams\n")
        seam_size = 1024 if args.quick else 1536  # whole-image inference is the reference: keep it small
        seam_src = make_raster(work / "seam.tif", seam_size) if not args.only_rss else gen
        print(
            f"raster: {seam_src.name} ({seam_size} px, no nodata), tile 128 px, backbone {args.seam_backbone}. "
            "seam ratio = mean "
            "adjacent-cell feature distance across tile edges / elsewhere (whole-image inference gives the "
            "baseline in the last column); error = |tiled - whole-image| / mean |whole-image|, cells next to a "
            "tile edge vs the rest.\n"
        )
        print("| tiling | seam ratio | error at tile edges | error elsewhere | seam ratio, whole image |")
        print("|---|---|---|---|---|")
        for row in [] if args.only_rss else seams(seam_src, args.seam_backbone, work, tile=128):
            print(
                f"| {row['case']} | {row['seam_ratio']:.3f} | {row['err_edge']:.4f} | {row['err_inside']:.4f} | "
                f"{row['whole_ratio']:.3f} |",
                flush=True,
            )
        if not args.skip_rss:
            sizes = (2048, 8192) if args.quick else (4096, 16384)
            formats = tuple(f.strip().lstrip(".") for f in args.rss_formats.split(",") if f.strip())
            print(
                f"\n## 2. peak RSS ({args.rss_backbone}, tile 512, overlap 128, float16 output, compile "
                f"{args.rss_compile}, load average {os.getloadavg()[0]:.1f})\n"
            )
            print("| raster | output | inference path | batch size | tiles per forward | peak RSS MiB | seconds |")
            print("|---|---|---|---|---|---|---|", flush=True)
            batches = tuple(args.rss_batches)
            rows = rss(work, sizes, args.rss_backbone, 512, 128, formats, args.rss_compile, batches)
            print()
            for batch in batches:
                for fmt in formats:
                    small, big = (
                        next(r for r in rows if r["size"] == s and r["format"] == fmt and r["batch"] == batch)
                        for s in sizes
                    )
                    print(
                        f"ratio {sizes[1]} / {sizes[0]} (.{fmt}, batch size {batch}, tiles per forward "
                        f"{small['fill']} / {big['fill']}): {big['peak_rss_mib'] / small['peak_rss_mib']:.3f}"
                    )


if __name__ == "__main__":
    main()
