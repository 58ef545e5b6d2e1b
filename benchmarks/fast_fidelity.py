"""Feature fidelity of the fast inference paths on real imagery, with a pretrained backbone.

The backbone is a geodino teacher pretrained on EuroSAT (`benchmarks/pretrain_quality.py`'s run; default
`runs/bench_pretrain_quality/geodino` of this checkout, that script's default `--out`; without it the script says
so and exits 0). For each path (`geodino.models.frozen`: fast float32, bf16 weights
and int8 dynamic quantisation, each against the eager float32 model):

- EuroSAT (`../shared/data/eurosat_3000`, 3000 RGB chips at 64 px): cosine of the per-chip feature that the probes
  use (CLS + mean patch token) to eager float32, and the kNN / logistic-regression top-1 that
  `pretrain_quality.evaluate` computes from that path's features (same split, same code);
- real rasters (a Landsat-7 RGB scene and a NEON 0.1 m aerial tile in `../shared/data`): 224 px tiles, cosine of
  every patch token to eager float32 (what a feature raster stores).

    .venv/bin/python benchmarks/fast_fidelity.py [--run RUN_DIR] [--compile]
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import numpy as np
from bench_cli import Parser, positive

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent))

import torch
from pretrain_quality import CHIPS, DATA, MEAN, STD, evaluate, load_chips, load_teacher, vit_features

RUN = (
    Path(__file__).resolve().parents[1] / "runs" / "bench_pretrain_quality" / "geodino"
)  # pretrain_quality.py's default
RASTERS = [DATA / "scenes" / "RGB.byte.tif", DATA / "neon_sjer" / "SJER_052.tif"]


def raster_tiles(path: Path, size: int = 224, limit: int = 16) -> torch.Tensor:
    """Up to `limit` size x size RGB tiles (half-overlapping) without zero (nodata) pixels, normalised as the chips."""
    import rasterio

    with rasterio.open(path) as ds:
        img = ds.read([1, 2, 3]).astype(np.float32)
    if img.max() > 255:  # scale 16-bit imagery into [0, 1] by its 99th percentile
        img = img / np.percentile(img, 99)
    else:
        img = img / 255.0
    tiles = []
    step = size // 2
    for y in range(0, img.shape[1] - size + 1, step):
        for x in range(0, img.shape[2] - size + 1, step):
            t = img[:, y : y + size, x : x + size]
            if (t.sum(0) > 0).all():
                tiles.append(t)
    tiles = tiles[:limit]
    return (torch.from_numpy(np.stack(tiles)).clamp(0, 1) - MEAN) / STD


def main() -> None:
    ap = Parser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--run", type=Path, default=RUN)
    ap.add_argument("--compile", action="store_true", help="compile the float32 / bf16 paths (as large jobs run)")
    ap.add_argument("--threads", type=positive, default=2)
    args = ap.parse_args()
    teacher = args.run / "export" / "teacher.pth"
    missing = [str(p) for p, ok in ((CHIPS, CHIPS.is_dir()), (teacher, teacher.exists())) if not ok]
    if missing:  # name what is missing, and where the teacher comes from
        print(
            f"skipped: {' and '.join(missing)} not found (the teacher is benchmarks/pretrain_quality.py's run: "
            "--out DIR writes DIR/geodino; pass --run DIR/geodino)"
        )
        return
    from geodino.models.frozen import FastPath, FastViT

    torch.set_num_threads(args.threads)
    model = load_teacher(args.run).eval()
    x, y, classes, _ = load_chips(CHIPS)
    paths = {
        "eager float32": model,
        "fast float32": FastViT(model, FastPath(True, "float32", compile=args.compile)),
        "fast bf16": FastViT(model, FastPath(True, "bfloat16", compile=args.compile)),
        "fast int8": FastViT(model, FastPath(True, "int8")),
    }
    tiles = {p.parent.name + "/" + p.name: raster_tiles(p) for p in RASTERS if p.exists()}
    print(
        f"backbone: {args.run} ({model.n_blocks} blocks, dim {model.embed_dim}, patch {model.patch_size}); "
        f"EuroSAT {len(x)} chips {x.shape[-1]} px, {len(classes)} classes; "
        + ", ".join(f"{k}: {len(v)} tiles of 224 px" for k, v in tiles.items())
    )
    feats, tokens = {}, {}
    with torch.inference_mode():
        for name, m in paths.items():
            feats[name] = vit_features(m, x)
            tokens[name] = {k: m.forward_features(t)["x_norm_patchtokens"] for k, t in tiles.items()}
    ref = torch.from_numpy(feats["eager float32"])
    head = "| path | EuroSAT feature cosine mean / min | kNN top-1 | logreg top-1 | "
    head += " | ".join(f"{k} patch-token cosine mean / min" for k in tiles) + " |"
    print(head)
    print("|" + "---|" * (head.count("|") - 1))
    for name in paths:
        cos = torch.nn.functional.cosine_similarity(torch.from_numpy(feats[name]), ref, dim=1)
        scores = evaluate(feats[name], y)
        cells = []
        for k in tiles:
            c = torch.nn.functional.cosine_similarity(tokens[name][k], tokens["eager float32"][k], dim=-1)
            cells.append(f"{c.mean():.5f} / {c.min():.5f}")
        print(
            f"| {name} | {cos.mean():.6f} / {cos.min():.6f} | {scores['knn']:.1f} % | {scores['logreg']:.1f} % | "
            + " | ".join(cells)
            + " |",
            flush=True,
        )


if __name__ == "__main__":
    main()
