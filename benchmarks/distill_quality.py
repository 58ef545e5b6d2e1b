"""Does a distilled small ViT keep what its teacher learned? On real chips, against colour statistics.

On `../shared/data/eurosat_3000` (3,000 real Sentinel-2 RGB chips, 5 classes; labels used only for evaluation)
this prints one table, every row scored by the same code as `benchmarks/pretrain_quality.py` (a fixed bank of 2/3
of each class and disjoint queries; kNN k=20 on bank-z-scored CLS + mean patch token; logistic regression):

- colour statistics, twice (raw-chip bins, and geodino's `baseline:colour`): the strongest simple baseline;
- the half-width student (`configs/distill/small_vit_tiny_half.yaml`: width 96, 6 blocks, patch 8) at random
  initialisation;
- the same student pretrained directly with `configs/pretrain/small_vit_tiny.yaml` for as many steps as the
  distillation (the question a user asks: why distil rather than pretrain the small model?);
- the student distilled from the teacher with `geodino distill -c small_vit_tiny_half` (its EMA export, loaded
  back through `load_backbone`);
- the teacher: `configs/pretrain/small_vit_tiny.yaml` pretrained on the same chips for `--teacher-steps`, or any
  small-recipe export with heads given by `--teacher`.

    .venv/bin/python benchmarks/distill_quality.py                         # ~1 h on 2 CPU cores
    .venv/bin/python benchmarks/distill_quality.py --teacher runs/small_vit_tiny/export/teacher.pth --steps 400

Skips cleanly when the data is absent.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch
from bench_cli import Parser, positive

sys.path.insert(0, str(Path(__file__).resolve().parent))

import pretrain_quality as Q  # the same chips, split and scoring as the pretraining benchmark

DISTILL = Q.ROOT / "configs" / "distill" / "small_vit_tiny_half.yaml"
STUDENT = "{depth: 6, layerscale_init: 1.0, n_storage_tokens: 0, embed_dim: 96, num_heads: 3}"


def pretrain_run(out: Path, steps: int, extra: list[str]) -> tuple[Path, float]:
    """The small pretraining recipe on the chips for `steps`; the run folder and its wall-clock."""
    from geodino.train.pretrain import pretrain

    t0 = time.perf_counter()
    run = pretrain(Q._load_cfg(out, steps, Q._images_source(Q.CHIPS), [f"checkpoint.every_n_steps={steps}", *extra]))
    return Path(run), time.perf_counter() - t0


def distill_run(out: Path, teacher: str, steps: int, extra: list[str]) -> tuple[Path, float]:
    """`geodino distill -c small_vit_tiny_half` on the chips; the student's export and the wall-clock."""
    from geodino.config import load_config
    from geodino.train.distill import DistillConfig, distill

    over = [
        f"output_dir={out}",
        f"teacher.spec={teacher}",
        f"data.sources={Q._images_source(Q.CHIPS)}",
        f"train.max_steps={steps}",
        f"train.checkpoint_every_n_steps={steps}",
        "train.progress_bar=false",
        "train.resume=never",
        *extra,
    ]
    t0 = time.perf_counter()
    exports = distill(load_config(DistillConfig, DISTILL, over))
    return Path(exports["vit_tiny_half"]), time.perf_counter() - t0


def distill_losses(run: Path, student: str = "vit_tiny_half") -> str:
    """Where the student's DINO (global) and iBOT losses went: means of the first and last 5 logged rows."""
    import csv

    with open(run / "log.csv") as f:
        rows = list(csv.DictReader(f))
    parts = []
    for key in ("dino_global", "ibot"):
        vals = [float(r[f"{student}/{key}"]) for r in rows if r.get(f"{student}/{key}")]
        if vals:
            head, tail = vals[:5], vals[-5:]
            parts.append(f"{key} {sum(head) / len(head):.3f} -> {sum(tail) / len(tail):.3f}")
    return "; ".join(parts)


def params_m(model: torch.nn.Module) -> float:
    return round(sum(p.numel() for p in model.parameters()) / 1e6, 2)


def main() -> int:
    ap = Parser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default="runs/bench_distill_quality")
    ap.add_argument("--teacher", default="", help="a small-recipe export with heads (skips teacher pretraining)")
    ap.add_argument("--teacher-steps", type=positive, default=1200)
    ap.add_argument("--steps", type=positive, default=1000, help="distillation steps, and the direct run's steps")
    ap.add_argument("--seed", type=int, default=0, help="seed of the distillation and the direct run")
    ap.add_argument("--no-direct", dest="direct", action="store_false", help="skip the directly pretrained student")
    ap.add_argument("--override", nargs="*", default=[], help="extra key=value for the distillation recipe")
    args = ap.parse_args()
    if not Q.CHIPS.is_dir():
        print(f"skipped: {Q.CHIPS} not found (the shared data is absent)")
        return 0
    logging.getLogger("lightning.pytorch").setLevel(logging.ERROR)
    warnings.filterwarnings("ignore")
    from geodino.backbones import load_backbone
    from geodino.models import build_model
    from geodino.train.curves import loss_summary

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    x, y, classes, _ = Q.load_chips(Q.CHIPS)
    print(f"{len(x)} chips, {len(classes)} classes: {', '.join(classes)}")
    rows: list[dict[str, Any]] = []

    def row(name: str, feats: np.ndarray, params: float | str, note: str) -> None:
        r = {"features": name, "params_M": params, **Q.evaluate(feats, y), "note": note}
        rows.append(r)
        print(f"  {name}: kNN {r['knn']} %, logistic regression {r['logreg']} %  ({note})", flush=True)

    row("colour statistics (raw chip)", Q.colour_stats(x), "-", "54 numbers per chip")
    row("`baseline:colour`", Q.baseline_colour(x), "-", "the baseline `geodino probe` reports")
    torch.manual_seed(0)
    # the student of small_vit_tiny_half.yaml as distillation and the direct run build it: LayerScale 1.0, as in its
    # `overrides` (the official default 1e-5 leaves every residual branch ~0 at init, so a random ViT's CLS token is
    # the same for every chip and only the mean patch token carries colour: a weaker row than the student at init)
    random_student = build_model(
        "vit_tiny", patch_size=8, depth=6, embed_dim=96, num_heads=3, n_storage_tokens=0, layerscale_init=1.0
    )
    row(
        "student, random init",
        Q.vit_features(random_student, x),
        params_m(random_student),
        "width 96, 6 blocks, LayerScale 1.0",
    )

    teacher = args.teacher
    if not teacher:
        print(f"teacher: {Q.RECIPE.name} for {args.teacher_steps} steps")
        run, wall = pretrain_run(out / "teacher", args.teacher_steps, [])
        teacher = str(run / "export" / "teacher.pth")
        loss = loss_summary(run)
        t_note = f"{args.teacher_steps} steps, {wall / 60:.1f} min; DINO loss {loss.get('first')} -> {loss.get('end')}"
    else:
        t_note = f"given: {teacher}"

    if args.direct:
        print(f"student pretrained directly: {Q.RECIPE.name} at width 96 for {args.steps} steps")
        run, wall = pretrain_run(out / "direct", args.steps, [f"ssl.student.overrides={STUDENT}", f"seed={args.seed}"])
        loss = loss_summary(run)
        model = Q.load_teacher(run)
        row(
            "student, pretrained directly",
            Q.vit_features(model, x),
            params_m(model),
            f"{args.steps} steps, {wall / 60:.1f} min; DINO loss {loss.get('first')} -> {loss.get('end')}",
        )

    print(f"student distilled: {DISTILL.name} for {args.steps} steps from {teacher}")
    export, wall = distill_run(out / "distill", teacher, args.steps, [f"train.seed={args.seed}", *args.override])
    student = load_backbone(str(export)).model
    note = f"{args.steps} steps, {wall / 60:.1f} min; {distill_losses(out / 'distill')}"
    row("student, distilled", Q.vit_features(student, x), params_m(student), note)
    tmodel = load_backbone(teacher).model
    row("teacher", Q.vit_features(tmodel, x), params_m(tmodel), t_note)

    print()
    print("| features | params (M) | kNN top-1 (%) | logistic regression (%) | note |")
    print("|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['features']} | {r['params_M']} | {r['knn']} | {r['logreg']} | {r['note']} |")
    by = {r["features"]: r for r in rows}
    s, t = by["student, distilled"], by["teacher"]
    colour = max(rows[:2], key=lambda r: r["knn"])
    print(
        f"\ndistilled student / teacher kNN: {s['knn']} / {t['knn']} = {s['knn'] / max(t['knn'], 1e-9):.3f} "
        f"with {t['params_M'] / max(float(s['params_M']), 1e-9):.1f}x fewer parameters; "
        f"against the stronger colour baseline ({colour['features']}): kNN {s['knn'] - colour['knn']:+.1f}, "
        f"logistic regression {s['logreg'] - colour['logreg']:+.1f}"
    )
    if "student, pretrained directly" in by:
        d = by["student, pretrained directly"]
        print(
            f"distilled against directly pretrained (same steps): kNN {s['knn'] - d['knn']:+.1f}, "
            f"logistic regression {s['logreg'] - d['logreg']:+.1f}"
        )
    (out / "results.json").write_text(json.dumps({"args": vars(args), "rows": rows}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
