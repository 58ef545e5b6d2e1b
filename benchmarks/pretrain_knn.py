"""Does a few minutes of CPU pretraining help? kNN accuracy of a tiny ViT before and after `geodino pretrain`.

A tiny ViT (vit_tiny width, 6 blocks, patch 8) is pretrained with the full DINOv3 recipe (DINO + iBOT + KoLeo,
EMA teacher, Sinkhorn-Knopp) through `geodino.train.pretrain` on the EuroSAT RGB sample in `../shared/data`
(200 images, 5 classes; labels unused), then its EMA-teacher backbone (the export) and the same architecture
randomly initialised (the same seed: the very weights the run started from) are compared by weighted cosine
kNN (DINO protocol, T = 0.07) on the CLS token, with 5-fold cross-validation over the 200 labelled images.
The SSL run sees the same images without labels (transductive, as a smoke-scale check; the point is the gap).

    .venv/bin/python benchmarks/pretrain_knn.py                 # 300 steps, batch 32 (a few minutes on 2 cores)
    .venv/bin/python benchmarks/pretrain_knn.py --steps 600 --out runs/bench_knn

Skips cleanly when the sample data is absent.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "eurosat_sample"

CONFIG = """\
name: bench_knn
output_dir: {out}
seed: 0
batch_size: {batch}
num_workers: 1
ssl:
  student: {{arch: vit_tiny, patch_size: 8, in_chans: 3, drop_path_rate: 0.0, overrides: {{depth: 6}}}}
  dino: {{head_n_prototypes: 1024, head_hidden_dim: 512, head_bottleneck_dim: 128}}
  ibot: {{head_n_prototypes: 1024, head_hidden_dim: 512, head_bottleneck_dim: 128}}
  optim: {{freeze_last_layer_iters: 20, clip_grad: 3.0, layerwise_decay: 1.0}}
  monitor: {{every: 25, warmup_iters: 100}}
  schedules:
    kind: v1
    lr: {{start: 0.0, peak: 1.0e-3, end: 1.0e-5, warmup_iters: 30}}
    weight_decay: {{start: 0.04, peak: 0.04, end: 0.2}}
    momentum: {{start: 0.99, peak: 0.99, end: 1.0}}
    teacher_temp: {{start: 0.04, peak: 0.07, end: 0.07, warmup_iters: 50}}
data:
  sources: [{{type: images, paths: [{data}], sensor: imagenet}}]
crops: {{global_size: 48, local_size: 24, n_local: 4}}
trainer: {{max_steps: {steps}, accelerator: cpu, precision: 32-true, loggers: [csv], log_every_n_steps: 10}}
checkpoint: {{every_n_steps: 100, keep_last: 1}}
"""


def load_images(root: Path) -> tuple[torch.Tensor, torch.Tensor, list[str]]:
    """All images as ImageNet-standardised float tensors [N, 3, 64, 64] with class ids from the folder names."""
    from PIL import Image

    classes = sorted(p.name for p in root.iterdir() if p.is_dir())
    xs, ys = [], []
    for c, name in enumerate(classes):
        for f in sorted((root / name).iterdir()):
            xs.append(np.asarray(Image.open(f).convert("RGB"), dtype=np.float32) / 255.0)
            ys.append(c)
    x = torch.from_numpy(np.stack(xs)).permute(0, 3, 1, 2)
    mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    return (x - mean) / std, torch.tensor(ys), classes


@torch.no_grad()
def cls_features(model: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
    model.eval()
    return torch.cat([model.forward_features(x[i : i + 50])["x_norm_clstoken"] for i in range(0, len(x), 50)])


def knn_cv(feats: torch.Tensor, labels: torch.Tensor, k: int, folds: int = 5) -> float:
    """Top-1 accuracy of weighted cosine kNN (T=0.07), `folds`-fold cross-validation."""
    from geodino.eval.classification import knn_scores

    idx = torch.arange(len(labels))
    correct = 0
    for f in range(folds):
        test, train = idx[idx % folds == f], idx[idx % folds != f]
        votes = knn_scores(feats[train], labels[train], feats[test], [k], num_classes=int(labels.max()) + 1)[k]
        correct += int((votes.argmax(1) == labels[test]).sum())
    return correct / len(labels)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--steps", type=int, default=300)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--out", default="runs/bench_pretrain_knn")
    ap.add_argument("--data", default=str(DATA))
    args = ap.parse_args()
    data = Path(args.data)
    if not data.is_dir():
        print(f"skip: {data} not found (the EuroSAT sample lives in ../shared/data)")
        return 0

    from geodino.config import load_config
    from geodino.models import build_model
    from geodino.train.pretrain import PretrainConfig, pretrain

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    cfg_path = out / "bench.yaml"
    cfg_path.write_text(CONFIG.format(out=out / "run", data=data, steps=args.steps, batch=args.batch))
    cfg = load_config(PretrainConfig, cfg_path, ["checkpoint.resume=never"] if not (out / "run").exists() else [])

    # the random-init baseline: exactly the weights the run starts from (same seed, same build order)
    torch.manual_seed(cfg.seed)
    from geodino.train.ssl import SSLMetaArch

    random_backbone = SSLMetaArch(cfg.ssl).teacher["backbone"]

    t0 = time.perf_counter()
    run = pretrain(cfg)
    minutes = (time.perf_counter() - t0) / 60

    heads = torch.load(run / "export" / "teacher.heads.pth", weights_only=True)
    trained = build_model(**heads["backbone"])
    trained.load_state_dict(torch.load(run / "export" / "teacher.pth", weights_only=True), strict=True)

    x, y, classes = load_images(data)
    rows = []
    for name, model in (("random init", random_backbone), ("pretrained (EMA teacher)", trained)):
        f = cls_features(model, x)
        rows.append((name, knn_cv(f, y, 10), knn_cv(f, y, 20)))
    print(
        f"\npretraining: {args.steps} steps x batch {args.batch} on {len(y)} EuroSAT images "
        f"({len(classes)} classes), {minutes:.1f} min wall on this machine"
    )
    print("| backbone (vit_tiny width, 6 blocks, patch 8) | kNN top-1, k=10 | kNN top-1, k=20 |")
    print("|---|---|---|")
    for name, a10, a20 in rows:
        print(f"| {name} | {100 * a10:.1f} % | {100 * a20:.1f} % |")
    print(f"| gain | {100 * (rows[1][1] - rows[0][1]):+.1f} pts | {100 * (rows[1][2] - rows[0][2]):+.1f} pts |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
