"""Probe speed: frozen feature extraction (images/s) and a linear probe on cached features vs re-extracting.

Measured side by side in one run on the same images and backbone:

1. extraction throughput of `geodino.eval.features.extract_features` (images/s, batch 32), and the cache read
   of the same features;
2. the linear probe as geodino trains it (features extracted once and cached, every head of the lr grid trained
   together on the cached tensors) against the obvious alternative: a linear head trained with the backbone in
   the loop, re-extracting the features every epoch. Both train the same number of epochs on the same images, and
   both extract through the same inference path (`extract_features` runs the fast path its job-size rule picks;
   the alternative's loop ran the eager model, about 2x slower per image on this CPU, so at 1 epoch, where caching
   buys nothing, the ratio still read 2.09x; it now runs inside `fast_backbone` with the same job).

Uses the EuroSAT sample in ../shared/data/eurosat_sample when present (class-per-folder JPEGs), else random
images. Run: `.venv/bin/python benchmarks/probes.py [--backbone arch:vit_small] [--image-size 224] [--epochs 5]`.
"""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path

import torch
from bench_cli import Parser, positive

os.environ.setdefault("HF_HUB_OFFLINE", "1")

SAMPLE = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "eurosat_sample"


def _dataset(n_random: int):
    from geodino.eval.datasets import DatasetConfig, ProbeDataset, build_dataset

    if SAMPLE.is_dir():
        cfg = DatasetConfig(name="image_folder", root=str(SAMPLE), val_fraction=0.0, test_fraction=0.0)
        return build_dataset(cfg, "train"), f"EuroSAT sample ({SAMPLE})"
    g = torch.Generator().manual_seed(0)
    imgs = torch.rand(n_random, 3, 64, 64, generator=g)
    ds = ProbeDataset(
        name="random", root="/random", split="train", classes=["a", "b"], bands=["R", "G", "B"], length=n_random,
        getter=lambda i: {"image": imgs[i], "label": torch.tensor(i % 2)},
    )  # fmt: skip
    return ds, f"{n_random} random 64x64 images (EuroSAT sample not found)"


def main() -> None:
    ap = Parser(description=__doc__.splitlines()[0])
    ap.add_argument("--backbone", default="arch:vit_small?seed=0")
    ap.add_argument("--image-size", type=positive, default=224)
    ap.add_argument("--epochs", type=positive, default=5)
    ap.add_argument("--batch-size", type=positive, default=32)
    args = ap.parse_args()

    from geodino.backbones import load_backbone
    from geodino.eval.features import FeatureConfig, extract_features
    from geodino.eval.linear import LinearConfig, linear_probe
    from geodino.inference import fast_backbone, plan_path

    ds, what = _dataset(200)
    bb = load_backbone(args.backbone)
    print(f"data: {what}, {len(ds)} images -> {args.image_size}px; backbone {args.backbone}; "
          f"{torch.get_num_threads()} threads")  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp:
        fcfg = FeatureConfig(layers="four_last", image_size=args.image_size, batch_size=args.batch_size,
                             cache_dir=tmp)  # fmt: skip
        t0 = time.perf_counter()
        feats = extract_features(bb, ds, fcfg, progress=False)
        t_extract = time.perf_counter() - t0
        t0 = time.perf_counter()
        cached = extract_features(bb, ds, fcfg, progress=False)
        t_cache = time.perf_counter() - t0
        assert cached.from_cache
    n = len(ds)
    # geodino: the whole lr grid (13 lrs x 2 wds x {1,4} blocks x {cls, cls+avgpool} = 104 heads) on cached features
    lcfg = LinearConfig(epochs=args.epochs, min_iterations=1, batch_size=args.batch_size)
    t0 = time.perf_counter()
    _, rows = linear_probe(feats, feats, len(ds.classes), lcfg, progress=False)
    t_grid = time.perf_counter() - t0
    # the alternative: one head (one grid point), backbone in the loop, features re-extracted every epoch
    t0 = time.perf_counter()
    lin = torch.nn.Linear(bb.embed_dim, len(ds.classes))
    opt = torch.optim.SGD(lin.parameters(), lr=1e-3, momentum=0.9)
    loader = torch.utils.data.DataLoader(ds, batch_size=args.batch_size, shuffle=True)
    size = (args.image_size,) * 2
    # the inference path extract_features picked for this job (same mode, image count and size), so that the ratio
    # measures caching and the grid, not eager against the fast path
    planned = plan_path(bb, mode=fcfg.fast, n_images=n, image_size=size)  # what extract_features entered
    with fast_backbone(bb, mode=fcfg.fast, n_images=n, image_size=size) as path:
        for _ in range(args.epochs):
            for batch in loader:
                x = torch.nn.functional.interpolate(batch["image"], size=size, mode="bilinear", antialias=True)
                with torch.no_grad():
                    cls = bb.features(bb.normalize(x), layers="last")[1][0]
                loss = torch.nn.functional.cross_entropy(lin(cls), batch["label"])
                opt.zero_grad()
                loss.backward()
                opt.step()
    t_loop = time.perf_counter() - t0
    print(f"inference path: extract_features {planned.name}, the re-extracting loop {path.name}")
    t_geodino = t_extract + t_grid
    print()
    print("| step | seconds | rate |")
    print("|---|---|---|")
    print(f"| feature extraction ({n} images) | {t_extract:.2f} | {n / t_extract:.1f} images/s |")
    print(f"| feature cache read | {t_cache:.3f} | {n / max(t_cache, 1e-9):.0f} images/s |")
    print(f"| linear grid on cached features ({len(rows)} heads, {args.epochs} epochs) | {t_grid:.2f} | "
          f"{len(rows) * args.epochs * n / t_grid:.0f} head-sample-epochs/s |")  # fmt: skip
    print(f"| 1 head, re-extracting every epoch ({args.epochs} epochs) | {t_loop:.2f} | "
          f"{args.epochs * n / t_loop:.1f} images/s |")  # fmt: skip
    print()
    print(f"extract once + {len(rows)}-head grid: {t_geodino:.2f} s; 1 head re-extracting: {t_loop:.2f} s")
    print(f"ratio (re-extract, 1 head) / (geodino, {len(rows)} heads): {t_loop / t_geodino:.2f}x")
    per_head_loop = t_loop
    print(f"per grid point: re-extracting {per_head_loop:.2f} s vs cached {t_grid / len(rows):.4f} s "
          f"-> {per_head_loop / (t_grid / len(rows)):.0f}x")  # fmt: skip
    print(f"a second probe run (cache hit) instead of extracting again: {t_extract / t_cache:.0f}x faster to features")


if __name__ == "__main__":
    main()
