"""Probe feature extraction speed: EuroSAT RGB at 224 px through `extract_features`, fast path vs today's eager.

Each mode (`off` = the eager model as before issue 15, then the fast-path modes) extracts the same images with the
same backbone and batch; modes alternate over `--rounds` (round-robin, so machine load hits all alike). Printed:
images/s (median over rounds), the ratio to `off`, and the lowest CLS cosine to the `off` features (the default
backbone is a random ViT-S/16 with LayerScale 1.0, so that its CLS differs from image to image: at the official
init 1e-5 every image's CLS is the same and that cosine was 1.00000 whatever a path computed). Every mode first
runs one untimed extraction of the same images (`--warmup-rounds`): the compile warm-up when `--compile` is given,
and for every mode the first-call costs (thread pools, oneDNN primitives, allocator growth, a compile of a partial
last batch), which otherwise fell in the first timed round of whichever mode ran first (`off`).

    .venv/bin/python benchmarks/probe_features.py [--images 64] [--modes off float32 bfloat16] [--compile]
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from pathlib import Path

from bench_cli import Parser, positive

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data" / "eurosat_sample"


def main() -> None:
    ap = Parser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument(  # LayerScale 1.0: at the official 1e-5 a random ViT's CLS is the same for every image
        "--backbone", default="arch:vit_small?seed=0&layerscale_init=1.0", help="backbone spec (random init)"
    )
    ap.add_argument("--images", type=positive, default=64, help="images of eurosat_sample (max 200)")
    ap.add_argument("--batch", type=positive, default=16)
    ap.add_argument(  # the modes of geodino.models.fast_choice.MODES that name one path (not "auto")
        "--modes",
        nargs="+",
        default=["off", "float32", "bfloat16"],
        choices=["off", "float32", "float32-ieee", "float32-mkl", "bfloat16", "int8"],
    )
    ap.add_argument("--compile", action="store_true", help="compile the fast path (warm-up untimed)")
    ap.add_argument("--rounds", type=positive, default=2)
    ap.add_argument("--warmup-rounds", type=int, default=1, help="untimed extractions per mode before the timed ones")
    ap.add_argument("--threads", type=positive, default=2)
    args = ap.parse_args()
    if not DATA.is_dir():
        print(f"skipped: {DATA} not found")
        return
    from geodino.backbones import load_backbone
    from geodino.eval.datasets import DatasetConfig, image_folder
    from geodino.eval.features import FeatureConfig, extract_features
    from geodino.inference import accelerate

    torch.set_num_threads(args.threads)
    ds = image_folder(
        DatasetConfig(root=str(DATA), max_samples=args.images, test_fraction=0.0, val_fraction=0.0), "train"
    )
    backbones = {}
    for mode in args.modes:  # one backbone per mode so each keeps its compiled graphs between rounds
        fb = load_backbone(args.backbone)
        if mode != "off":
            accelerate(fb, mode=mode, compile=args.compile)
            if args.compile:
                fb.model.warmup(args.batch, 224, 224, [fb.n_blocks - 1])
        backbones[mode] = fb
    cfg = {
        m: FeatureConfig(layers="last", image_size=224, batch_size=args.batch, cache=False, fast=m) for m in args.modes
    }
    times: dict[str, list[float]] = {m: [] for m in args.modes}
    feats = {}
    for r in range(args.warmup_rounds + args.rounds):
        for m in args.modes:
            t0 = time.perf_counter()
            feats[m] = extract_features(backbones[m], ds, cfg[m], progress=False)
            if r >= args.warmup_rounds:
                times[m].append(time.perf_counter() - t0)
    n = len(ds)
    base = n / statistics.median(times["off"]) if "off" in times else None
    print(f"torch {torch.__version__}, {args.threads} threads, {n} EuroSAT images at 224 px, batch {args.batch}")
    print("| mode | path | img/s | vs off | min CLS cosine to off |")
    print("|---|---|---|---|---|")
    for m in args.modes:
        ips = n / statistics.median(times[m])
        # without the `off` mode there is nothing to compare with: "-", not a cosine of 1.0 that was never measured
        cos = (
            f"{torch.nn.functional.cosine_similarity(feats[m].cls[:, -1], feats['off'].cls[:, -1]).min().item():.5f}"
            if base
            else "-"
        )
        ratio = f"{ips / base:.2f}" if base else "-"
        print(f"| {m} | {feats[m].meta['path']} | {ips:.1f} | {ratio} | {cos} |")


if __name__ == "__main__":
    main()
