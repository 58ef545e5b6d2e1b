"""How the features improve along one run: kNN and logistic regression of the teacher at every checkpoint.

One run of `configs/pretrain/small_vit_tiny.yaml` (plus `--override`) on `../shared/data/eurosat_3000` with a
checkpoint every `--every` steps; each checkpoint's EMA teacher is exported and evaluated exactly as in
`pretrain_quality.py` (kNN k=20 T=0.07 and logistic regression on CLS + mean patch, bank 2/3 / queries 1/3).
Steps, not wall-clock, so it can run on a busy machine. Several runs (`--names`) share one figure, with the
colour-statistics baseline and the +5 kNN target drawn across it.

    .venv/bin/python benchmarks/knn_by_step.py --name base --steps 1800 --every 300
    .venv/bin/python benchmarks/knn_by_step.py --name c32 --steps 1200 --every 300 \\
        --override crops.global_size=32 crops.local_size=16
    .venv/bin/python benchmarks/knn_by_step.py --plot-only --names base c32 --png docs/img/knn_by_step.png
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path
from typing import Any

from bench_cli import Parser, positive

sys.path.insert(0, str(Path(__file__).resolve().parent))

import pretrain_quality as pq


def evaluate_checkpoints(run: Path, x: Any, y: Any) -> dict[str, dict[str, float]]:
    """Export each `step_*.ckpt` teacher of `run` and evaluate it on chips `x`, labels `y`; {step: {"knn": %,
    "logreg": %}}."""
    from geodino.train.checkpointing import export

    out: dict[str, dict[str, float]] = {}
    for ckpt in sorted((run / "checkpoints").glob("step_*.ckpt"), key=lambda p: int(p.stem.split("_")[1])):
        folder = run / "evals" / ckpt.stem
        export(ckpt, folder / "export" / "teacher.pth", overwrite=True)
        out[str(int(ckpt.stem.split("_")[1]))] = scores = pq.evaluate(pq.vit_features(pq.load_teacher(folder), x), y)
        print(f"  step {int(ckpt.stem.split('_')[1])}: {scores}", flush=True)
    return out


def plot(results: dict[str, dict[str, dict[str, float]]], colour: dict[str, float], png: Path) -> None:
    """kNN (solid) and logistic regression (dashed) against steps, one colour per run, baseline lines across."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4))
    for name, by_step in results.items():
        steps = sorted(int(s) for s in by_step)
        line = ax.plot(steps, [by_step[str(s)]["knn"] for s in steps], "o-", label=f"{name} kNN")[0]
        ax.plot(
            steps,
            [by_step[str(s)]["logreg"] for s in steps],
            "s--",
            color=line.get_color(),
            alpha=0.6,
            label=f"{name} logreg",
        )
    ax.axhline(colour["knn"], color="grey", lw=1, label=f"colour statistics kNN {colour['knn']}")
    ax.axhline(colour["knn"] + 5, color="grey", ls=":", lw=1, label="target: colour + 5")
    ax.set_xlabel("step (batch 32)")
    ax.set_ylabel("top-1 % (EuroSAT, 5 classes)")
    ax.legend(fontsize=7, loc="lower right")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    png.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(png, dpi=110)
    print(f"figure: {png}")


def main() -> int:
    ap = Parser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--name", default="base", help="name of this run (its folder under --out)")
    ap.add_argument("--steps", type=positive, default=1800)
    ap.add_argument("--every", type=positive, default=300, help="checkpoint (and evaluate) every N steps")
    ap.add_argument("--override", nargs="*", default=[], help="extra key=value for the recipe")
    ap.add_argument("--out", default="runs/knn_by_step")
    ap.add_argument("--names", nargs="*", default=None, help="runs to draw (default: every run in --out)")
    ap.add_argument("--png", default=None, help="figure path (default: --out/knn_by_step.png)")
    ap.add_argument("--plot-only", action="store_true", help="draw the runs already evaluated, train nothing")
    args = ap.parse_args()
    if not pq.CHIPS.exists():
        print(f"skip: {pq.CHIPS} not found")
        return 0
    out = Path(args.out)
    store = out / "results.json"
    results = json.loads(store.read_text()) if store.exists() else {}
    x, y, _, _ = pq.load_chips(pq.CHIPS)
    if "colour" not in results:
        results["colour"] = pq.evaluate(pq.colour_stats(x), y)
    if not args.plot_only:
        from geodino.train.pretrain import pretrain

        run = out / args.name
        shutil.rmtree(run, ignore_errors=True)
        extra = [*args.override, f"checkpoint.every_n_steps={args.every}", "checkpoint.keep_last=1000"]
        pretrain(pq._load_cfg(run, args.steps, pq._images_source(pq.CHIPS), extra))
        by_step = evaluate_checkpoints(run, x, y)
        results.setdefault("runs", {})[args.name] = {"overrides": args.override, "by_step": by_step}
        store.write_text(json.dumps(results, indent=2))
    runs = results.get("runs", {})
    names = args.names or list(runs)
    print(f"colour statistics: {results['colour']}")
    print("| run | step | kNN % | logreg % |\n|---|---|---|---|")
    for name in names:
        for step, s in sorted(runs[name]["by_step"].items(), key=lambda kv: int(kv[0])):
            print(f"| {name} | {step} | {s['knn']} | {s['logreg']} |")
    if names:
        plot({n: runs[n]["by_step"] for n in names}, results["colour"], Path(args.png or out / "knn_by_step.png"))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
