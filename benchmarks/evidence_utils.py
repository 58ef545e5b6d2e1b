"""Shared helpers of the evidence benchmarks (gram_evidence.py, distill_evidence.py): real sample data, probes.

The sample data lives beside the project (`../shared/data`, or `$GEODINO_SAMPLE_DATA`); the benchmarks skip
cleanly when it is absent. Probes are deliberately small and standard:
- EuroSAT sample: DINO-style weighted kNN on L2-normalised CLS tokens (k=10/20, T=0.07), stratified 5-fold CV;
- NEON SJER_052: a tree / no-tree patch labelling from the LiDAR CHM (> 2 m), co-registered to the RGB by bounds,
  probed with logistic regression and patch kNN on the patch tokens, 4-fold spatial (quadrant) cross-validation;
- CLS-patch cosine similarity: mean cosine between each image's CLS and its patch tokens (rises when dense
  features lose locality, the drift Gram anchoring counters).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.nn import functional as F

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("GEODINO_SAMPLE_DATA", ROOT.parent / "shared" / "data"))


def require_data() -> Path:
    """The sample-data folder, or exit 0 with a note when it is absent (benchmarks skip cleanly)."""
    if not (DATA / "neon_sjer" / "SJER_052.tif").is_file():
        print(f"sample data not found at {DATA}; set GEODINO_SAMPLE_DATA to run this benchmark (skipped)")
        sys.exit(0)
    return DATA


def teacher_from_checkpoint(path: str | Path, which: str = "teacher") -> torch.nn.Module:
    """The EMA teacher (or student) backbone of a geodino pretraining checkpoint, in eval mode."""
    from geodino.models import build_model
    from geodino.train.checkpointing import load_file, sub_state

    obj = load_file(path)
    cfg = dict(obj["geodino"]["backbone"])
    model = build_model(**cfg)
    model.load_state_dict(sub_state(obj["state_dict"], f"arch.{which}.backbone."), strict=True)
    return model.eval()


def load_eurosat(size: int = 64) -> tuple[torch.Tensor, torch.Tensor, list[str]]:
    """EuroSAT sample images as reflectance [N,3,size,size] (scaled /255), labels [N], class names."""
    from PIL import Image

    root = DATA / "eurosat_sample"
    classes = sorted(p.name for p in root.iterdir() if p.is_dir())
    xs, ys = [], []
    for ci, c in enumerate(classes):
        for f in sorted((root / c).glob("*.jpg")):
            im = Image.open(f).convert("RGB").resize((size, size), Image.BICUBIC)
            xs.append(torch.from_numpy(np.asarray(im).copy()).permute(2, 0, 1).float() / 255.0)
            ys.append(ci)
    return torch.stack(xs), torch.tensor(ys), classes


@torch.no_grad()
def cls_and_patches(model: torch.nn.Module, x: torch.Tensor, batch: int = 32) -> tuple[torch.Tensor, torch.Tensor]:
    """CLS [N,D] and patch tokens [N,P,D] of normalised images, in batches."""
    cls, pt = [], []
    for i in range(0, x.shape[0], batch):
        out = model.forward_features(x[i : i + batch])
        cls.append(out["x_norm_clstoken"])
        pt.append(out["x_norm_patchtokens"])
    return torch.cat(cls), torch.cat(pt)


def knn_cv_accuracy(feats: torch.Tensor, labels: torch.Tensor, ks: tuple[int, ...] = (10, 20), folds: int = 5) -> dict:
    """Stratified k-fold weighted-kNN top-1 accuracy (DINO kNN, T=0.07) for each k."""
    from sklearn.model_selection import StratifiedKFold

    from geodino.eval.classification import knn_scores

    n_cls = int(labels.max()) + 1
    correct = {k: 0 for k in ks}
    skf = StratifiedKFold(n_splits=folds, shuffle=True, random_state=0)
    for tr, te in skf.split(np.zeros(len(labels)), labels.numpy()):
        scores = knn_scores(feats[tr], labels[tr], feats[te], list(ks), num_classes=n_cls)
        for k in ks:
            correct[k] += int((scores[k].argmax(1) == labels[te]).sum())
    return {f"knn{k}": correct[k] / len(labels) for k in ks}


def eurosat_knn(model: torch.nn.Module, sensor: str = "sat493m", size: int = 64) -> dict[str, float]:
    """kNN accuracy of a backbone's CLS on the EuroSAT sample (5 classes x 40 images, 5-fold CV)."""
    from geodino.data.sensors import get_sensor

    x, y, _ = load_eurosat(size)
    x = get_sensor(sensor).standardize(x)
    cls, _ = cls_and_patches(model, x)
    return knn_cv_accuracy(cls, y)


def sjer_patch_labels(grid: int) -> tuple[torch.Tensor, np.ndarray]:
    """SJER_052 RGB resampled to `grid x grid` patches' pixel size and the tree fraction of each patch.

    Returns the RGB image [3, H, W] (reflectance, H = W = the RGB resampled so that the patch grid covers it) is
    built by the caller; here: the per-patch tree fraction [grid, grid] from the CHM (> 2 m), co-registered by
    bounds (the CHM grid is offset 0.4 m from the RGB grid) with average resampling of the binary mask.
    """
    import rasterio
    from rasterio.transform import from_bounds
    from rasterio.warp import Resampling, reproject

    with rasterio.open(DATA / "neon_sjer" / "SJER_052.tif") as rgb:
        bounds, crs = rgb.bounds, rgb.crs
        img = rgb.read().astype(np.float32)
    with rasterio.open(DATA / "neon_sjer" / "SJER_052_CHM.tif") as chm:
        h = chm.read(1).astype(np.float32)
        nod = chm.nodata
        valid = np.isfinite(h) & ((h > -1e30) if nod is None else (h != nod))
        tree = np.where(valid, (h > 2.0).astype(np.float32), np.nan)
        dst = np.full((grid, grid), np.nan, dtype=np.float32)
        reproject(
            tree,
            dst,
            src_transform=chm.transform,
            src_crs=chm.crs,
            src_nodata=np.nan,
            dst_transform=from_bounds(*bounds, grid, grid),
            dst_crs=crs,
            dst_nodata=np.nan,
            resampling=Resampling.average,
        )
    return torch.from_numpy(img), dst


def sjer_dense_probe(model: torch.nn.Module, sensor: str = "sat493m", grid: int = 25) -> dict[str, float]:
    """Tree / no-tree patch classification on NEON SJER_052 from frozen patch tokens.

    The 400 x 400 RGB (0.1 m) is resized to `grid x patch` pixels, so each patch token covers 40 m / grid
    (1.6 m for grid 25); labels are the patch's CHM tree fraction >= 0.5. 4-fold spatial cross-validation over
    the image quadrants: logistic regression (balanced accuracy, tree IoU) and patch kNN (k=10, accuracy).
    """
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import balanced_accuracy_score, jaccard_score

    from geodino.data.sensors import get_sensor
    from geodino.eval.classification import knn_scores

    p = int(model.patch_size)
    img, frac = sjer_patch_labels(grid)
    x = F.interpolate(
        img[None] / 255.0, size=(grid * p, grid * p), mode="bilinear", antialias=True, align_corners=False
    )
    x = get_sensor(sensor).standardize(x)
    _, pt = cls_and_patches(model, x)
    feats = F.normalize(pt[0].float(), dim=-1).numpy()  # [grid*grid, D], row-major like frac
    labels = frac.reshape(-1)
    ok = np.isfinite(labels)
    y = (labels >= 0.5).astype(int)
    rows, cols = np.divmod(np.arange(grid * grid), grid)
    quadrant = (rows >= grid // 2).astype(int) * 2 + (cols >= grid // 2).astype(int)
    bacc, iou, knn = [], [], []
    for q in range(4):
        tr = ok & (quadrant != q)
        te = ok & (quadrant == q)
        if len(np.unique(y[tr])) < 2 or te.sum() == 0:
            continue
        clf = LogisticRegression(C=1.0, max_iter=2000, class_weight="balanced").fit(feats[tr], y[tr])
        pred = clf.predict(feats[te])
        bacc.append(
            balanced_accuracy_score(y[te], pred) if len(np.unique(y[te])) > 1 else float((pred == y[te]).mean())
        )
        iou.append(jaccard_score(y[te], pred, zero_division=0.0))
        s = knn_scores(
            torch.from_numpy(feats[tr]), torch.from_numpy(y[tr]), torch.from_numpy(feats[te]), [10], num_classes=2
        )[10]
        knn.append(float((s.argmax(1).numpy() == y[te]).mean()))
    return {
        "linear_bacc": float(np.mean(bacc)),
        "tree_iou": float(np.mean(iou)),
        "patch_knn_acc": float(np.mean(knn)),
        "tree_fraction": float(y[ok].mean()),
    }


def eval_crops(n: int = 48, size: int = 64, seed: int = 0) -> torch.Tensor:
    """A fixed set of reflectance crops [n,3,size,size] from the sample rasters (for CLS-patch cosine)."""
    import rasterio

    rng = np.random.default_rng(seed)
    files = [
        DATA / "scenes" / "RGB.byte.tif",
        DATA / "neon_sjer" / "SJER_052.tif",
        DATA / "treecrowns" / "OSBS_029.tif",
    ]
    arrays = []
    for f in files:
        with rasterio.open(f) as src:
            arrays.append(src.read().astype(np.float32) / 255.0)
    out = []
    win = 2 * size
    while len(out) < n:
        a = arrays[len(out) % len(arrays)]
        h, w = a.shape[1:]
        r, c = int(rng.integers(0, h - win)), int(rng.integers(0, w - win))
        crop = a[:, r : r + win, c : c + win]
        if (crop.sum(0) == 0).mean() > 0.05:  # nodata corners of the Landsat scene
            continue
        out.append(torch.from_numpy(crop.copy()))
    x = torch.stack(out)
    return F.interpolate(x, size=(size, size), mode="bilinear", antialias=True, align_corners=False)


def cls_patch_cosine(model: torch.nn.Module, crops: torch.Tensor, sensor: str = "sat493m") -> float:
    """Mean CLS-patch cosine similarity of a backbone on normalised crops (geodino.train.monitors)."""
    from geodino.data.sensors import get_sensor
    from geodino.train.monitors import cls_patch_cosine as cpc

    cls, pt = cls_and_patches(model, get_sensor(sensor).standardize(crops))
    return float(cpc(cls, pt))


def fmt_table(rows: list[dict[str, Any]], cols: list[str]) -> str:
    """A Markdown table of `rows` restricted to `cols` (floats with 3 decimals)."""

    def f(v: Any) -> str:
        return f"{v:.3f}" if isinstance(v, float) else str(v)

    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    lines += ["| " + " | ".join(f(r.get(c, "")) for c in cols) + " |" for r in rows]
    return "\n".join(lines)


def random_backbone(ckpt: str | Path) -> torch.nn.Module:
    """The backbone architecture of a geodino checkpoint at its seed-0 random initialisation, in eval mode."""
    from geodino.models import build_model
    from geodino.train.checkpointing import load_file

    torch.manual_seed(0)
    return build_model(**dict(load_file(ckpt)["geodino"]["backbone"])).eval()


class ColourBackbone(torch.nn.Module):
    """`baseline:colour` (per-band mean, std, 16-bin histogram) of each patch and of the whole image, behind the
    `forward_features` interface `cls_and_patches` calls, so the probes score it with exactly the same code."""

    def __init__(self, in_chans: int, patch_size: int) -> None:
        from geodino.backbones.colour import ColourStatistics

        super().__init__()
        self.stats, self.patch_size = ColourStatistics(in_chans, patch_size=patch_size), patch_size

    def forward_features(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        (maps,), (cls,) = self.stats.features(x, [0])
        return {"x_norm_clstoken": cls, "x_norm_patchtokens": maps.flatten(2).transpose(1, 2)}


def colour_backbone(ckpt: str | Path) -> ColourBackbone:
    """`ColourBackbone` on the patch grid of a geodino checkpoint's backbone (same bands, same patch size)."""
    from geodino.train.checkpointing import load_file

    cfg = load_file(ckpt)["geodino"]["backbone"]
    return ColourBackbone(int(cfg.get("in_chans", 3)), int(cfg["patch_size"])).eval()
