"""What does pretraining teach at a budget a user runs first? Side by side on real chips, at equal wall-clock.

On `../shared/data/eurosat_3000` (3,000 real Sentinel-2 RGB chips, 64x64 px, 5 classes; SSL sees the images,
labels are used only for evaluation) this prints one table:

- per-channel colour statistics (mean, std, 16-bin histograms): the strongest simple baseline on EuroSAT, twice:
  bins over [0, 1] of the raw chip, and geodino's `baseline:colour` (bins over +-3 standard units of the
  normalised chip, the baseline `geodino probe` and `make demo` report); the verdict uses the stronger;
- the same ViT as the recipe at random initialisation (CLS + mean patch token);
- geodino pretrained with `configs/pretrain/small_vit_tiny.yaml` for `--minutes` of this machine;
- LightlyTrain (`lightly-train` 0.18.0, method `dinov2`) for the same wall-clock, installed by
  `peer_lightly_train.py` into its own virtual environment (never a geodino dependency), features from its own
  `embed` command. Model `dinov3/vitt16-notpretrained` (ViT-T/16, 5.5 M parameters, random init), the smallest
  ViT LightlyTrain ships; it is not one its docs list for `dinov2` (`dinov2/vits14|vitb14|vitl14|vitg14`, ViT-S/14
  the smallest, `peer_lightly_train.py`'s own default): LightlyTrain documents ViT-T/16 for its `distillation`
  method (distilled from DINOv3 ViT-L/16), but 0.18.0 runs it under `dinov2`, which the README row did;
- continued pretraining (on unless `--no-continued`), the path most users take: a backbone pretrained on other
  real imagery (64 px chips cut from the Landsat-7 and NEON aerial rasters of ../shared/data), exported in the
  official layout, then `init_from` it with a heads-only warm-up on the EuroSAT chips; kNN before and after.

Evaluation, the same code for every row: a fixed labelled bank (2/3 of each class) and disjoint queries (1/3);
features are z-scored with the bank's statistics; weighted cosine kNN (k=20, T=0.07, as DINO) and multinomial
logistic regression (L2 chosen by 3-fold CV on the bank). The geodino row also reports where its DINO loss went:
a run whose DINO loss stays at ln K taught nothing through the DINO and iBOT terms, whatever the kNN says.

    .venv/bin/python benchmarks/pretrain_quality.py                  # 10 minutes per trained row (~35 min)
    .venv/bin/python benchmarks/pretrain_quality.py --minutes 3 --no-lightly --no-continued

Skips cleanly when the data is absent.
"""

from __future__ import annotations

import argparse
import json
import math
import shutil
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from bench_cli import Parser

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
CHIPS = DATA / "eurosat_3000"
OTHER = [DATA / "scenes" / "RGB.byte.tif", DATA / "neon_sjer" / "SJER_052.tif", DATA / "treecrowns" / "OSBS_029.tif"]
RECIPE = ROOT / "configs" / "pretrain" / "small_vit_tiny.yaml"
MEAN = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)  # the images source standardises with ImageNet stats
STD = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)


# ------------------------------------------------------------------------------------------------ data and eval
def load_chips(root: Path) -> tuple[np.ndarray, np.ndarray, list[str], list[str]]:
    """uint8 [N,3,H,W] chips, class ids, class names and relative paths (sorted by class, then file name)."""
    from PIL import Image

    classes = sorted(p.name for p in root.iterdir() if p.is_dir())
    xs, ys, names = [], [], []
    for c, name in enumerate(classes):
        for f in sorted((root / name).iterdir()):
            xs.append(np.asarray(Image.open(f).convert("RGB")).transpose(2, 0, 1).copy())
            ys.append(c)
            names.append(f"{name}/{f.name}")
    return np.stack(xs), np.asarray(ys), classes, names


def split(y: np.ndarray, seed: int = 0, bank_frac: float = 2 / 3) -> tuple[np.ndarray, np.ndarray]:
    """Per-class split into a labelled bank and disjoint queries (fixed seed: every row sees the same split)."""
    rng = np.random.default_rng(seed)
    bank: list[int] = []
    query: list[int] = []
    for c in np.unique(y):
        idx = rng.permutation(np.flatnonzero(y == c))
        nb = round(len(idx) * bank_frac)
        bank += idx[:nb].tolist()
        query += idx[nb:].tolist()
    return np.asarray(bank), np.asarray(query)


def colour_stats(x: np.ndarray) -> np.ndarray:
    """Per-channel mean, std and 16-bin histogram (fractions) of each chip: 54 numbers for RGB."""
    f = x.astype(np.float32) / 255.0
    hist = np.stack([np.stack([np.histogram(img[c], bins=16, range=(0, 1))[0] for c in range(len(img))]) for img in f])
    hist = hist.reshape(len(f), -1) / (f.shape[2] * f.shape[3])
    return np.concatenate([f.mean((2, 3)), f.std((2, 3)), hist], 1)


@torch.no_grad()
def baseline_colour(x: np.ndarray, batch: int = 500) -> np.ndarray:
    """geodino's `baseline:colour` backbone on the chips (ImageNet-standardised, as the images source feeds the
    ViTs): its whole-image statistics, the features `geodino probe` gives kNN and linear heads."""
    from geodino.backbones import load_backbone

    fb = load_backbone("baseline:colour")
    out = [
        fb.features(fb.normalize(torch.from_numpy(x[i : i + batch]).float() / 255.0), "last")[1][0]
        for i in range(0, len(x), batch)
    ]
    return torch.cat(out).numpy()


@torch.no_grad()
def vit_features(model: torch.nn.Module, x: np.ndarray, batch: int = 100) -> np.ndarray:
    """CLS token and mean patch token of the final (normed) layer, concatenated, for whole chips."""
    model.eval()
    out = []
    for i in range(0, len(x), batch):
        t = (torch.from_numpy(x[i : i + batch]).float() / 255.0 - MEAN) / STD
        o = model.forward_features(t)
        out.append(torch.cat([o["x_norm_clstoken"], o["x_norm_patchtokens"].mean(1)], 1))
    return torch.cat(out).numpy()


def _fit_logreg(x: torch.Tensor, y: torch.Tensor, n_classes: int, l2: float) -> tuple[torch.Tensor, torch.Tensor]:
    w = torch.zeros(x.shape[1], n_classes, requires_grad=True)
    b = torch.zeros(n_classes, requires_grad=True)
    opt = torch.optim.LBFGS([w, b], lr=1, max_iter=200, history_size=20, line_search_fn="strong_wolfe")

    def closure() -> torch.Tensor:
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(x @ w + b, y) + l2 * (w * w).sum()
        loss.backward()
        return loss

    opt.step(closure)
    return w.detach(), b.detach()


def logreg_accuracy(xb: np.ndarray, yb: np.ndarray, xq: np.ndarray, yq: np.ndarray, seed: int = 0) -> float:
    """Multinomial logistic regression, L2 from {1e-4, 1e-3, 1e-2} by 3-fold CV on the bank, refit on the bank.

    Full-batch L-BFGS in torch rather than sklearn: sklearn's lbfgs took ~50 s per row on these 2 cores (it runs
    to max_iter on near-separable standardised ViT features); this is the same model and takes ~1 s.
    """
    tb, tq = torch.from_numpy(xb).float(), torch.from_numpy(xq).float()
    mu, sd = tb.mean(0), tb.std(0) + 1e-6
    tb, tq = (tb - mu) / sd, (tq - mu) / sd
    yb_t, yq_t = torch.from_numpy(yb).long(), torch.from_numpy(yq).long()
    k = int(yb_t.max()) + 1
    perm = np.random.default_rng(seed).permutation(len(yb_t))
    best, best_acc = 1e-4, -1.0
    for l2 in (1e-4, 1e-3, 1e-2):
        acc = 0.0
        for fold in range(3):
            val = torch.from_numpy(perm[fold::3])
            tr = torch.from_numpy(np.setdiff1d(perm, perm[fold::3]))
            w, b = _fit_logreg(tb[tr], yb_t[tr], k, l2)
            acc += float(((tb[val] @ w + b).argmax(1) == yb_t[val]).float().mean())
        if acc > best_acc:
            best, best_acc = l2, acc
    w, b = _fit_logreg(tb, yb_t, k, best)
    return float(((tq @ w + b).argmax(1) == yq_t).float().mean())


def evaluate(f: np.ndarray, y: np.ndarray) -> dict[str, float]:
    """kNN (k=20, T=0.07, cosine on bank-z-scored features) and logistic regression top-1, in %."""
    from geodino.eval.classification import knn_scores

    bank, query = split(y)
    mu, sd = f[bank].mean(0), f[bank].std(0) + 1e-6
    z = torch.from_numpy((f - mu) / sd).float()
    votes = knn_scores(z[bank], torch.from_numpy(y[bank]), z[query], [20], num_classes=int(y.max()) + 1)[20]
    knn = float((votes.argmax(1).numpy() == y[query]).mean())
    lr = logreg_accuracy(f[bank], y[bank], f[query], y[query])
    return {"knn": round(100 * knn, 1), "logreg": round(100 * lr, 1)}


# ------------------------------------------------------------------------------------------------ geodino runs
def _load_cfg(out: Path, steps: int, sources: str, extra: list[str]) -> Any:
    from geodino.config import load_config
    from geodino.train.pretrain import PretrainConfig

    over = [
        f"output_dir={out}",
        f"trainer.max_steps={steps}",
        f"data.sources={sources}",
        "trainer.progress_bar=false",
        "checkpoint.resume=never",
        *extra,
    ]
    return load_config(PretrainConfig, RECIPE, over)


def _images_source(path: Path) -> str:
    return f"[{{name: chips, type: images, paths: [{path}], sensor: imagenet}}]"


def chips_from_rasters(paths: list[Path], folder: Path, size: int = 64, stride: int = 32) -> int:
    """Cut RGB rasters into `size` px PNG chips on a grid (tiles touching nodata are skipped); returns the count.

    Random windows through the raster source read ~70 ms per 64 px tile here (a 32-chip batch costs more than
    the training step), so the source stage reads pre-cut chips: the same pixels, read once.
    """
    import rasterio
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    n = 0
    for path in paths:
        with rasterio.open(path) as src:
            img = src.read(indexes=[1, 2, 3])
            valid = src.read_masks(1) > 0
        for top in range(0, img.shape[1] - size + 1, stride):
            for left in range(0, img.shape[2] - size + 1, stride):
                if not valid[top : top + size, left : left + size].all():
                    continue
                chip = img[:, top : top + size, left : left + size].transpose(1, 2, 0)
                Image.fromarray(chip.astype(np.uint8)).save(folder / f"{path.stem}_{top}_{left}.png")
                n += 1
    return n


def timed_pretrain(out: Path, minutes: float, sources: str, extra: list[str], log: Any = print) -> dict[str, Any]:
    """Calibrate the step time with a short run, then pretrain for as many steps as fit `minutes` (start-up
    included), so the schedules (fractions of the run) end when the budget does. Returns the run's facts."""
    from geodino.train.pretrain import pretrain

    cal = out.parent / f"{out.name}_calibration"
    shutil.rmtree(cal, ignore_errors=True)
    times = []
    lengths = (8, 56)  # two lengths separate the fixed start-up from the per-step cost; 4 and 16 steps measured
    for n in lengths:  # 0.83 s/step where the 712-step run then took 1.06: calibrate on more steps
        t0 = time.perf_counter()
        pretrain(_load_cfg(cal / str(n), n, sources, [*extra, "checkpoint.every_n_steps=1000000"]))
        times.append(time.perf_counter() - t0)
    per_step = max((times[1] - times[0]) / (lengths[1] - lengths[0]), 1e-3)
    startup = max(times[0] - lengths[0] * per_step, 0.0)
    steps = max(int((minutes * 60 - startup) / per_step), 20)
    log(f"  calibration: {per_step:.2f} s/step, start-up {startup:.0f} s -> {steps} steps for {minutes:g} min")
    shutil.rmtree(cal, ignore_errors=True)
    shutil.rmtree(out, ignore_errors=True)
    t0 = time.perf_counter()
    run = pretrain(_load_cfg(out, steps, sources, extra))
    wall = time.perf_counter() - t0
    if wall > 1.05 * minutes * 60:
        log(f"  note: the run took {wall / 60:.1f} min, over the {minutes:g} min budget (steps slower than calibrated)")
    return {"run": run, "steps": steps, "wall_s": round(wall, 1), "s_per_step": round(per_step, 3)}


def load_teacher(run: Path) -> torch.nn.Module:
    from geodino.models import build_model

    heads = torch.load(run / "export" / "teacher.heads.pth", weights_only=True)
    model = build_model(**heads["backbone"])
    model.load_state_dict(torch.load(run / "export" / "teacher.pth", weights_only=True), strict=True)
    return model


# ------------------------------------------------------------------------------------------------ main
def _geodino_row(out: Path, args: argparse.Namespace, x: np.ndarray, row: Any) -> dict[str, Any]:
    """Pretrain with the recipe at the budget, evaluate the exported teacher, keep its curves."""
    print("geodino: pretraining with", RECIPE.relative_to(ROOT))
    g = timed_pretrain(out / "geodino", args.minutes, _images_source(CHIPS), list(args.override))
    from geodino.train.curves import loss_summary

    loss = loss_summary(g["run"])
    row(
        f"geodino {RECIPE.stem}",
        vit_features(load_teacher(g["run"]), x),
        f"{g['steps']} steps, {g['wall_s'] / 60:.1f} min; DINO loss {loss.get('first')} -> {loss.get('end')} "
        f"(ln K {loss.get('ln_k')}; 0.1 below at step {loss.get('left_plateau_at')})",
    )
    curves = g["run"] / "curves.png"
    if curves.exists():
        shutil.copy(curves, out / "geodino_curves.png")
    return {**{k: v for k, v in g.items() if k != "run"}, "loss": loss}


def main() -> int:
    ap = Parser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--minutes", type=float, default=10.0, help="wall-clock budget of each trained row")
    ap.add_argument("--out", default="runs/bench_pretrain_quality")
    ap.add_argument("--no-lightly", dest="lightly", action="store_false", help="skip the LightlyTrain row")
    ap.add_argument("--no-continued", dest="continued", action="store_false", help="skip continued pretraining")
    ap.add_argument("--only-continued", action="store_true", help="colour, random init and continued pretraining only")
    ap.add_argument("--override", nargs="*", default=[], help="extra key=value for the geodino recipe")
    args = ap.parse_args()
    if not CHIPS.is_dir():
        print(f"skip: {CHIPS} not found (the EuroSAT chips live in ../shared/data)")
        return 0
    import logging

    logging.getLogger("lightning").setLevel(logging.ERROR)
    logging.getLogger("lightning.pytorch").setLevel(logging.ERROR)
    out = Path(args.out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    x, y, classes, names = load_chips(CHIPS)
    print(f"{len(y)} chips, classes {classes}; torch threads {torch.get_num_threads()}; budget {args.minutes:g} min")
    rows: list[tuple[str, dict[str, float], str]] = []

    def row(name: str, f: np.ndarray, note: str = "") -> None:
        t0 = time.perf_counter()
        r = evaluate(f, y)
        rows.append((name, r, note))
        print(f"  {name}: kNN {r['knn']:.1f} %, logreg {r['logreg']:.1f} % ({time.perf_counter() - t0:.0f} s eval)")

    row("colour statistics (mean, std, 16-bin histograms)", colour_stats(x), f"{colour_stats(x[:1]).shape[1]} dims")
    row("geodino baseline:colour (same statistics, standardised bins)", baseline_colour(x), "whole-chip statistics")

    from geodino.config import load_config
    from geodino.train.pretrain import PretrainConfig
    from geodino.train.ssl import SSLMetaArch

    cfg = load_config(PretrainConfig, RECIPE, [])
    torch.manual_seed(cfg.seed)
    random_vit = SSLMetaArch(cfg.ssl).teacher["backbone"]
    row("same ViT, random init", vit_features(random_vit, x), "CLS + mean patch")

    facts: dict[str, Any] = {}
    if args.only_continued:
        args.lightly = False
    else:
        facts["geodino"] = _geodino_row(out, args, x, row)

    if args.lightly:
        sys.path.insert(0, str(Path(__file__).resolve().parent))
        from peer_lightly_train import run_lightly_train

        print("LightlyTrain: installing (first time) and pretraining at the same budget")
        # its smallest ViT (ViT-T/16, 5.5 M parameters; documented for `distillation`, not listed for `dinov2`, run
        # under `dinov2` all the same: see the docstring), crops at the chip size (patch 16: 64 / 32 px), the same
        # heads, momentum and local-crop count as the geodino recipe where its DINOv2Args has the setting
        feats, files, info = run_lightly_train(
            CHIPS,
            out / "lightly_train",
            args.minutes,
            batch_size=cfg.batch_size,
            model="dinov3/vitt16-notpretrained",
            image_size=64,
            local_size=32,
            n_local=cfg.crops.n_local,
            num_workers=cfg.num_workers,
            method_args={
                "output_dim": cfg.ssl.dino.head_n_prototypes,
                "hidden_dim": cfg.ssl.dino.head_hidden_dim,
                "dino_bottleneck_dim": cfg.ssl.dino.head_bottleneck_dim,
                "ibot_bottleneck_dim": cfg.ssl.ibot.head_bottleneck_dim,
                "momentum_start": 0.99,
            },
        )
        order = {n: i for i, n in enumerate(files)}
        missing = [n for n in names if n not in order]
        if missing:
            raise SystemExit(f"LightlyTrain embeddings miss {len(missing)} chips, e.g. {missing[0]}")
        feats = feats[[order[n] for n in names]]
        row(
            f"LightlyTrain {info.get('version', '')} dinov2 {info.get('model', '')}",
            feats,
            f"{info.get('steps')} steps, {info.get('wall_s', float('nan')) / 60:.1f} min",
        )
        facts["lightly_train"] = info

    if args.continued:
        half = args.minutes / 2
        print(f"continued pretraining: {half:g} min on other imagery, export, then {half:g} min on the chips")
        n_other = chips_from_rasters([p for p in OTHER if p.exists()], out / "source_chips")
        print(f"  {n_other} chips of 64 px from {', '.join(p.name for p in OTHER if p.exists())}")
        a = timed_pretrain(out / "source", half, _images_source(out / "source_chips"), list(args.override))
        from geodino.train.checkpointing import export

        exported = out / "source_export" / "backbone.pth"
        export(a["run"] / "checkpoints" / "last.ckpt", exported, overwrite=True)
        before = load_teacher(a["run"])
        row("other imagery only (exported backbone)", vit_features(before, x), f"{a['steps']} steps")
        c = timed_pretrain(
            out / "continued",
            half,
            _images_source(CHIPS),
            [*args.override, f"init_from={exported}", "head_warmup_steps=0.1"],  # a fraction: calibration fits too
        )
        warm = round(0.1 * c["steps"])
        row(
            "  + continued on the chips (init_from, heads-only warm-up)",
            vit_features(load_teacher(c["run"]), x),
            f"{c['steps']} steps incl. {warm} heads-only",
        )
        facts["continued"] = {"source_steps": a["steps"], "target_steps": c["steps"], "warmup": warm}

    colour = max((r for n, r, _ in rows[:2]), key=lambda r: r["knn"])  # the stronger colour row
    print(f"\n| features ({len(y)} EuroSAT chips, bank 2/3, queries 1/3) | kNN top-1 | logreg top-1 | notes |")
    print("|---|---|---|---|")
    for name, r, note in rows:
        print(f"| {name} | {r['knn']:.1f} % | {r['logreg']:.1f} % | {note} |")
    geo = next((r for n, r, _ in rows if n.startswith("geodino")), None)
    if geo:
        print(f"\ngeodino - colour statistics: kNN {geo['knn'] - colour['knn']:+.1f} pts (target >= +5)")
    lt = next((r for n, r, _ in rows if n.startswith("LightlyTrain")), None)
    if lt and geo:
        print(
            f"geodino - LightlyTrain: kNN {geo['knn'] - lt['knn']:+.1f} pts, logreg {geo['logreg'] - lt['logreg']:+.1f}"
        )
    facts["rows"] = [{"name": n, **r, "note": note} for n, r, note in rows]
    (out / "results.json").write_text(json.dumps(facts, indent=2, default=str))
    print(f"results: {out / 'results.json'}; geodino curves: {out / 'geodino_curves.png'}")
    return 0 if all(math.isfinite(r["knn"]) for _, r, _ in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
