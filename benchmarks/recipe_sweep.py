"""Which switch of the small recipe buys what? The same number of steps per variant, the same evaluation.

Step counts, not wall-clock: the quality a step buys does not depend on how busy the machine is, so variants run
on a shared machine still compare fairly (the wall-clock benchmark is `pretrain_quality.py`). Each variant is
`configs/pretrain/small_vit_tiny.yaml` plus overrides, trained on `../shared/data/eurosat_3000`; its exported
teacher is evaluated exactly as in `pretrain_quality.py` (kNN k=20 T=0.07 and logistic regression on CLS + mean
patch, bank 2/3 / queries 1/3), next to the colour-statistics baseline.

    .venv/bin/python benchmarks/recipe_sweep.py --steps 300 --variants base nojitter noblur

Results accumulate in `--out`/results.json: the table also lists variants of earlier invocations, each row with its
step count, those not trained by this invocation marked "(earlier run)".
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from pathlib import Path

from bench_cli import Parser, positive

sys.path.insert(0, str(Path(__file__).resolve().parent))

import pretrain_quality as pq


def _flat(schedule: str, value: float) -> list[str]:
    """Overrides that hold one schedule (`ssl.schedules.<schedule>`) at `value` for the whole run."""
    return [f"ssl.schedules.{schedule}.{k}={value}" for k in ("start", "peak", "end")]


VARIANTS: dict[str, list[str]] = {
    "base": [],
    "nojitter": ["crops.jitter_prob=0.0"],
    "noblur": ["crops.blur_probs=[0.0,0.0,0.0]"],
    "plain": ["crops.jitter_prob=0.0", "crops.blur_probs=[0.0,0.0,0.0]"],
    "lr2e-3": ["ssl.schedules.lr.peak=2.0e-3"],
    "k256": ["ssl.dino.head_n_prototypes=256", "ssl.ibot.head_n_prototypes=256"],
    "crops64": ["crops.global_size=64", "crops.local_size=32"],
    "local8": ["crops.n_local=8"],  # at equal wall-clock (1,000 steps), seed 1: 88.4 % kNN (the recipe 89.0)
    "p4": ["ssl.student.patch_size=4", "crops.global_size=32", "crops.local_size=16"],
    "k4096": ["ssl.dino.head_n_prototypes=4096", "ssl.ibot.head_n_prototypes=4096"],
    "koleo0": ["ssl.koleo.loss_weight=0.0"],
    "koleo005": ["ssl.koleo.loss_weight=0.05"],
    "koleo03": ["ssl.koleo.loss_weight=0.3"],
    "koleo1": ["ssl.koleo.loss_weight=1.0"],
    "gscale": ["crops.global_scale=[0.6,1.0]"],
    "nolocal": ["crops.n_local=0"],
    "b64": ["batch_size=64"],
    "c32": ["crops.global_size=32", "crops.local_size=16"],
    "m99": ["ssl.schedules.momentum.end=0.99"],
    # no annealing at all: lr, weight decay and momentum stay where a long run is at its start (the recipe's own
    # schedules since the flat-schedule change, so `flat` equals `base` now; `annealed` is the earlier recipe)
    "flat": ["ssl.schedules.lr.end=1.0e-3", "ssl.schedules.weight_decay.end=0.04", "ssl.schedules.momentum.end=0.99"],
    "annealed": ["ssl.schedules.lr.end=1.0e-5", "ssl.schedules.weight_decay.end=0.2", "ssl.schedules.momentum.end=1.0"],
    "lrflat": ["ssl.schedules.lr.end=1.0e-3"],
    "mwflat": ["ssl.schedules.weight_decay.end=0.04", "ssl.schedules.momentum.end=0.99"],
    "mlrflat": ["ssl.schedules.lr.end=1.0e-3", "ssl.schedules.momentum.end=0.99"],
    "noreg": ["ssl.student.overrides.n_storage_tokens=0"],  # no register tokens: 9 instead of 14 tokens per local crop
    # warmup-stable-decay: flat as the recipe, then a cosine over the last fifth of the run (lr to 1e-5; with
    # `wsdm` also the teacher momentum to 0.999). Measured (wsdm, 1,200 steps, three seeds): 88.3 % kNN against
    # 88.8 % for `base` on the same seeds, i.e. no gain (docs/recipe.md); `wsd` alone is not measured
    "wsd": ["ssl.schedules.lr.hold_iters=0.7", "ssl.schedules.lr.end=1.0e-5"],
    "wsdm": [
        "ssl.schedules.lr.hold_iters=0.7",
        "ssl.schedules.lr.end=1.0e-5",
        "ssl.schedules.momentum.hold_iters=0.8",
        "ssl.schedules.momentum.end=0.999",
    ],
    # slower teachers; measured at 1,200 steps: m996 88.8 % kNN over three seeds (the recipe 88.8), m998 87.8 on
    # seed 1 (the recipe 89.0): no gain (docs/recipe.md)
    "m996": _flat("momentum", 0.996),  # averages ~250 steps instead of ~100
    "m998": _flat("momentum", 0.998),  # slower still (~500 steps)
    # a wider student at equal wall-clock: vit_small (384 wide) in bf16 autocast costs 0.90 s/step on this 2-core
    # AMX CPU against 0.475 for the recipe's vit_tiny in float32 (bf16 gains nothing at 192 wide), so ~660 steps;
    # measured at 660 steps: 84.2 / 84.7 % kNN on seeds 1 / 2 (the recipe at 1,200 steps: 89.0 / 87.6)
    "s6bf": ["ssl.student.arch=vit_small", "trainer.precision=bf16-mixed"],
    # sharper teacher targets than the recipe's 0.04 (0.07 costs 15 points, so the direction is worth a look);
    # measured at 1,200 steps, seed 1: 0.03 and 0.02 both 89.1 % kNN (the recipe 89.0): level
    "tt03": _flat("teacher_temp", 0.03),
    "tt02": _flat("teacher_temp", 0.02),
    # every global crop masked for iBOT (official: half of them); 1,200 steps, seed 1: 86.5 % kNN (the recipe 89.0)
    "ibotp1": ["ssl.ibot.mask_sample_probability=1.0"],
    # measured at 1,200 steps, seed 1: 73.8 % kNN (the recipe 89.0): near-uniform targets
    "tt07": _flat("teacher_temp", 0.07),
    # DINO v1 mean centering for both heads instead of Sinkhorn-Knopp (a batch of 32 has 64 teacher outputs for
    # 1,024 prototypes, so Sinkhorn-Knopp's equipartition spreads every target over >= 16 prototypes); measured at
    # 1,200 steps, seed 1: 87.5 % kNN, 92.7 % logreg (the recipe 89.0 / 91.2), DINO loss 6.36 -> 3.41, no collapse
    "center": ["ssl.dino.centering=centering", "ssl.ibot.centering=centering"],
    # half the peak lr, held flat like the recipe's (the plateau after ~900 steps could be lr noise); measured at
    # 1,200 steps, seeds 0 / 1 / 2: 88.7 / 89.1 / 90.5 % kNN (mean 89.4; the recipe 89.8 / 89.0 / 87.6, mean 88.8),
    # logreg 91.6 / 92.4 / 92.3 (the recipe 91.2 / 91.2 / 89.7): kNN within noise, logreg up on every seed
    "lr5e-4": ["ssl.schedules.lr.peak=5.0e-4", "ssl.schedules.lr.end=5.0e-4"],
    # larger local crops: 10-40 % of the chip instead of 5-32 % (a 5 % crop of a 64 px chip is 14 px); measured at
    # 1,200 steps, seed 1: 87.7 % kNN, 88.9 % logreg (the recipe 89.0 / 91.2)
    "lscale": ["crops.local_scale=[0.1,0.4]"],
    # stochastic depth 0.1 (the official ViT-S value is 0.1 at 12 blocks; the recipe has none)
    "dp01": ["ssl.student.drop_path_rate=0.1"],  # 1,200 steps, seed 1: 84.8 % kNN, 88.0 % logreg (the recipe 89.0)
}


def main() -> int:
    ap = Parser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--steps", type=positive, default=300)
    ap.add_argument("--variants", nargs="+", default=["base", "nojitter", "noblur", "plain"], choices=list(VARIANTS))
    ap.add_argument("--out", default="runs/recipe_sweep")
    ap.add_argument("--override", nargs="*", default=[], help="extra key=value applied to every variant")
    args = ap.parse_args()
    if not pq.CHIPS.exists():
        print(f"skip: {pq.CHIPS} not found")
        return 0
    from geodino.train.curves import loss_summary
    from geodino.train.pretrain import pretrain

    out = Path(args.out)
    x, y, _, _ = pq.load_chips(pq.CHIPS)
    results = json.loads((out / "results.json").read_text()) if (out / "results.json").exists() else {}
    if "colour" not in results:
        results["colour"] = pq.evaluate(pq.colour_stats(x), y)
    print(f"colour statistics: {results['colour']}", flush=True)
    for name in args.variants:
        run_dir = out / name
        shutil.rmtree(run_dir, ignore_errors=True)
        extra = [*VARIANTS[name], *args.override, "checkpoint.every_n_steps=1000000"]
        t0 = time.perf_counter()
        run = pretrain(pq._load_cfg(run_dir, args.steps, pq._images_source(pq.CHIPS), extra))
        wall = time.perf_counter() - t0
        scores = pq.evaluate(pq.vit_features(pq.load_teacher(run), x), y)
        loss = loss_summary(run)
        results[name] = {**scores, "steps": args.steps, "wall_s": round(wall, 1), "loss": loss, "overrides": extra}
        print(f"{name}: {scores} in {wall / 60:.1f} min; DINO {loss.get('first')} -> {loss.get('end')}", flush=True)
        (out / "results.json").write_text(json.dumps(results, indent=2))
    print("\n" + "\n".join(table(results, args.variants)))
    return 0


def table(results: dict, ran: list[str]) -> list[str]:
    """The Markdown table of `results` (results.json: this run's variants and those kept from earlier runs in the
    same --out). Every row says its step count, and a variant not trained by this invocation is marked as an
    earlier run: its number may come from other steps or other code, so it is not side by side with this run's."""
    lines = ["| variant | steps | kNN % | logreg % | DINO loss first -> end | wall (min) |", "|---" * 6 + "|"]
    c = results["colour"]
    lines.append(f"| colour statistics | | {c['knn']} | {c['logreg']} | | |")
    for name, r in results.items():
        if name != "colour":
            lo, wall = r["loss"], r["wall_s"] / 60
            label = name if name in ran else f"{name} (earlier run)"
            lines.append(
                f"| {label} | {r.get('steps', '?')} | {r['knn']} | {r['logreg']} | {lo.get('first')} -> "
                f"{lo.get('end')} | {wall:.1f} |"
            )
    return lines


if __name__ == "__main__":
    raise SystemExit(main())
