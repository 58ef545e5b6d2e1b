"""Feature-raster benchmarks: throughput, memory scaling and seams of `geodino embed`.

1. Throughput: end-to-end `embed_raster` pixels/s against backbone-only pixels/s on the same tiles (the tiles
   read into memory beforehand; the sweep's forward call on its batches, prepared in a second thread as its reader
   prepares them: `embed_common.backbone_only_seconds`; both on the inference path the raster records): target
   >= 0.85.
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

Run: `.venv/bin/python benchmarks/embed.py` (add `--quick` for a smaller run, `--skip-rss` to skip part 2;
`--only-throughput --size N --rounds N` runs part 1 alone).
This file holds part 1 and the command line; parts 1b-1d live in embed_paths.py, part 2 (with the entry point of its
fresh processes) in embed_memory.py, part 3 in embed_seams.py, the generated raster in embed_common.py.
Uses ../shared/data/scenes/RGB.byte.tif as a real example when present. Ratios are measured side by side in one
run: the machine is shared, absolute numbers are noisy.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

from bench_cli import Parser, positive

sys.path.insert(0, str(Path(__file__).resolve().parent))

from embed_common import backbone_only_seconds, make_raster
from embed_memory import rss, rss_child
from embed_paths import FAST_MODES, device_check, fast_vs_eager, pipeline_only
from embed_seams import seams

__all__ = ["backbone_only_seconds", "make_raster", "throughput"]  # make_raster: gpu.sh and embed_versions.py
ROOT = Path(__file__).resolve().parents[1]
REAL = ROOT.parent / "shared" / "data" / "scenes" / "RGB.byte.tif"


# ------------------------------------------------------------------------------------------------------------
# 1. throughput


def throughput(src_path: Path, spec: str, *, tile: int, overlap: int, batch: int, rounds: int, work: Path) -> dict:
    from geodino.backbones import load_backbone
    from geodino.embed import embed_raster
    from geodino.inference import fast_backbone

    bb = load_backbone(spec)
    _, n_tiles = backbone_only_seconds(src_path, bb, tile=tile, overlap=overlap, batch=batch)  # eager warm-up

    def backbone_only() -> tuple[float, int, str]:
        # the path embed_raster picks for this job (same tile count and size): the ratio e2e / backbone-only
        # compares one forward with itself (it divided the fast pipeline by the eager forward before)
        with fast_backbone(bb, n_images=n_tiles, image_size=(tile, tile)) as path:
            return (*backbone_only_seconds(src_path, bb, tile=tile, overlap=overlap, batch=batch), path.name)

    backbone_only()  # the fast path's warm-up (its compile, when the job size asks for one)
    t_bb, t_zarr, t_cog = [], [], []
    for r in range(rounds):
        t, n_tiles, bb_path = backbone_only()
        t_bb.append(t)
        for out, acc in ((work / f"e{r}.zarr", t_zarr), (work / f"e{r}.tif", t_cog)):
            t0 = time.perf_counter()
            embed_raster(
                src_path, bb, out, tile=tile, overlap=overlap, batch_size=batch, progress=False, overwrite=True
            )
            acc.append(time.perf_counter() - t0)
            check_same_path(out, bb_path)
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
        "rounds": [(b / z, b / c) for b, z, c in zip(t_bb, t_zarr, t_cog)],
    }


def check_same_path(out: Path, bb_path: str) -> None:
    """Stop when the feature raster `out` records another inference path than backbone-only ran: the ratio would
    divide one forward by another's."""
    from geodino.embed.reader import EmbeddingReader

    with EmbeddingReader(out) as r:
        ran = r.metadata.get("inference_path")
    if ran != bb_path:
        raise SystemExit(f"{out.name} ran inference path {ran!r} but backbone-only ran {bb_path!r}: not comparable")


# ------------------------------------------------------------------------------------------------------------


def main() -> None:
    ap = Parser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="smaller rasters (1024 px throughput, 2k vs 8k memory)")
    ap.add_argument("--skip-rss", action="store_true")
    ap.add_argument("--only-rss", action="store_true", help="run only the memory benchmark")
    ap.add_argument("--only-throughput", action="store_true", help="run only part 1 (e2e vs backbone-only)")
    ap.add_argument("--size", type=positive, default=None, help="part 1's generated raster side (1024 quick, 3072)")
    ap.add_argument("--rounds", type=positive, default=None, help="rounds of part 1 (2 quick, 4)")
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
        type=positive,
        nargs="+",
        default=[8, 6],
        help="batch sizes of the memory runs (default 8 6: embed's default, and one with the same tiles per forward "
        "at both sizes)",
    )
    ap.add_argument(
        "--fast-backbone", default="arch:vit_small?seed=0", help="backbone of part 1b (fast path vs eager); '' skips"
    )
    ap.add_argument("--fast-size", type=positive, default=1536, help="raster side of part 1b (1536: 16 tiles of 512)")
    ap.add_argument("--fast-rounds", type=positive, default=2)
    ap.add_argument(  # geodino embed's default; batch 4 on rows of 4 or 8 tiles hid the padding of partial batches
        "--fast-batch", type=positive, default=8, help="batch size of part 1b (default 8, as geodino embed)"
    )
    ap.add_argument("--fast-modes", nargs="+", default=list(FAST_MODES), choices=list(FAST_MODES))
    ap.add_argument("--only-fast", action="store_true", help="run only part 1b")
    ap.add_argument("--only-pipeline", action="store_true", help="run only part 1c")
    ap.add_argument("--pipeline-size", type=positive, default=4096, help="raster side of part 1c")
    ap.add_argument("--pipeline-rounds", type=positive, default=3)
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
        size = args.size or (1024 if args.quick else 3072)  # 3072: 64 tiles: pipeline fill and drain (~0.5 s) amortised
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
        if args.only_rss or args.only_fast:
            srcs = []
        else:
            srcs = [make_raster(work / "thr.tif", size)] + ([REAL] if REAL.exists() else [])
        rounds = args.rounds or (2 if args.quick else 4)
        if srcs:  # --only-rss / --only-fast printed this header over an empty table
            print(
                f"\n## 1. throughput (tile 512, overlap 128, batch 4; px/s: best of {rounds} rounds; "
                f"ratio: median of per-round ratios; load average {os.getloadavg()[0]:.1f})\n"
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
            per_round = ", ".join(f"{z:.2f} / {c:.2f}" for z, c in r["rounds"])
            load = os.getloadavg()[0]
            print(f"  per-round ratios .zarr / .tif: {per_round} (load average after: {load:.1f})", flush=True)
        if args.only_throughput:
            return
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
        if not args.only_rss:  # --only-rss printed this header and an empty table
            print("\n## 3. seams\n")
            seam_size = 1024 if args.quick else 1536  # whole-image inference is the reference: keep it small
            seam_src = make_raster(work / "seam.tif", seam_size)
            print(
                f"raster: {seam_src.name} ({seam_size} px, no nodata), tile 128 px, backbone {args.seam_backbone}. "
                "seam ratio = mean "
                "adjacent-cell feature distance across tile edges / elsewhere (whole-image inference gives the "
                "baseline in the last column); error = |tiled - whole-image| / mean |whole-image|, cells next to a "
                "tile edge vs the rest.\n"
            )
            print("| tiling | seam ratio | error at tile edges | error elsewhere | seam ratio, whole image |")
            print("|---|---|---|---|---|")
            for row in seams(seam_src, args.seam_backbone, work, tile=128):
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
