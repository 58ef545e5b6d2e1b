"""Why a short run sits at ln K, measured: the official initialisation vs the small-budget recipe, switch by switch.

Each variant is `configs/pretrain/small_vit_tiny.yaml` with some of its departures from the official recipe
undone, pretrained for `--steps` on `../shared/data/eurosat_3000` (SSL on the images only) through the public
`geodino.train.pretrain`. Every run logs the plateau diagnostics of `geodino.train.monitors` (teacher CLS spread
across images, head logit std, teacher target entropy, LayerScale size); this script prints them at a few steps
and draws one comparison figure (`--png`, default runs/plateau.png; the docs figure is docs/img/plateau.png).

    .venv/bin/python benchmarks/plateau.py                         # official vs recipe, 200 steps each
    .venv/bin/python benchmarks/plateau.py --variants official layerscale prototypes recipe --steps 300

Skips cleanly when the data is absent.
"""

from __future__ import annotations

import argparse
import math
import shutil
import sys
from pathlib import Path

from bench_cli import Parser, positive

ROOT = Path(__file__).resolve().parents[1]
CHIPS = ROOT.parent / "shared" / "data" / "eurosat_3000"
RECIPE = ROOT / "configs" / "pretrain" / "small_vit_tiny.yaml"

OFFICIAL = {  # the official behaviour of each switch the small recipe changes
    "layerscale": ["ssl.student.overrides.layerscale_init=1.0e-5"],
    "prototypes": ["ssl.dino.head_last_layer=linear", "ssl.ibot.head_last_layer=linear"],
    "teacher_temp": [
        "ssl.schedules.teacher_temp.peak=0.07",
        "ssl.schedules.teacher_temp.end=0.07",
        "ssl.schedules.teacher_temp.warmup_iters=0.3",
    ],
    "augment": [
        "crops.brightness=0.4",
        "crops.contrast=0.4",
        "crops.saturation=0.2",
        "crops.hue=0.1",
        "crops.grayscale_prob=0.2",
        "crops.solarize_prob=0.2",
    ],
}


def _all_but(*keep: str) -> list[str]:
    """The official value of every switch except `keep` (which stay as the recipe has them)."""
    return [o for k, v in OFFICIAL.items() if k not in keep for o in v]


VARIANTS = {
    "official": _all_but(),  # every switch at its official value
    "layerscale": _all_but("layerscale"),  # only LayerScale 1.0
    "prototypes": _all_but("prototypes"),  # only unit prototypes
    "ls+prototypes": _all_but("layerscale", "prototypes"),
    "recipe": [],
}
KEYS = (
    ("dino_global_loss", "DINO"),
    ("ibot_loss", "iBOT"),
    ("monitor/teacher_entropy", "target H"),
    ("monitor/teacher_cls_spread", "CLS spread"),
    ("monitor/teacher_logit_std", "logit std"),
    ("monitor/layerscale_gamma", "|gamma|"),
)


def report_steps(runs: dict[str, dict[str, dict[int, float]]], steps: int) -> list[int]:
    """The distinct logged steps nearest to 0, 1/4, 1/2 and the end of a `steps`-long run (those of the DINO loss,
    else of any series). Distinct: a short run logs only a step or two (steps 0, 9, 19, ... at `log_every_n_steps`
    10; only 9, 19, ... before 9a185a6), and the nearest logged step to each mark was printed once per mark: a
    10-step run printed its step-9 values three times."""
    logged = {s for m in runs.values() for s in m.get(KEYS[0][0], {})}
    logged = logged or {s for m in runs.values() for series in m.values() for s in series}
    if not logged:
        return []
    targets = (0, steps // 4, steps // 2, max(steps - steps % 5 - 5, 0))
    return sorted({min(logged, key=lambda s: (abs(s - t), s)) for t in targets})


def main() -> int:
    ap = Parser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--steps", type=positive, default=200)
    ap.add_argument("--variants", nargs="+", default=["official", "recipe"], choices=sorted(VARIANTS))
    ap.add_argument("--out", default="runs/bench_plateau")
    ap.add_argument("--png", default=str(ROOT / "runs" / "plateau.png"))  # not the tracked docs figure
    args = ap.parse_args()
    if not CHIPS.is_dir():
        print(f"skip: {CHIPS} not found (the EuroSAT chips live in ../shared/data)")
        return 0
    import logging

    logging.getLogger("lightning.pytorch").setLevel(logging.ERROR)
    from geodino.config import load_config
    from geodino.train.curves import find_metrics, read_metrics
    from geodino.train.pretrain import PretrainConfig, pretrain

    source = f"[{{name: chips, type: images, paths: [{CHIPS}], sensor: imagenet}}]"
    runs: dict[str, dict[str, dict[int, float]]] = {}
    for name in args.variants:
        out = Path(args.out) / name
        shutil.rmtree(out, ignore_errors=True)
        over = [
            f"output_dir={out}",
            f"trainer.max_steps={args.steps}",
            f"data.sources={source}",
            "trainer.progress_bar=false",
            "checkpoint.every_n_steps=1000000",
            "ssl.monitor.every=5",
            *VARIANTS[name],
        ]
        print(f"{name}: {' '.join(VARIANTS[name]) or '(the recipe as written)'}", flush=True)
        runs[name] = read_metrics(find_metrics(pretrain(load_config(PretrainConfig, RECIPE, over))))

    ln_k = math.log(load_config(PretrainConfig, RECIPE, []).ssl.dino.head_n_prototypes)
    marks = report_steps(runs, args.steps)
    print(f"\nln K = {ln_k:.3f}; values at the logged steps {marks} (nearest to 0, 1/4, 1/2 and the end of the run)")
    print("| variant | " + " | ".join(label for _, label in KEYS) + " |")
    print("|---|" + "---|" * len(KEYS))
    for name, m in runs.items():
        cells = []
        for key, _ in KEYS:
            series = m.get(key, {})  # a series never logged is '-' (it raised on the empty min() before)
            vals = (
                [series[s if s in series else min(series, key=lambda t: abs(t - s))] for s in marks] if series else []
            )
            cells.append(" / ".join(f"{v:.3g}" for v in vals) if vals else "-")
        print(f"| {name} | " + " | ".join(cells) + " |")
    _plot(runs, ln_k, Path(args.png))
    print(f"figure: {args.png}")
    return 0


def _plot(runs: dict[str, dict[str, dict[int, float]]], ln_k: float, png: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from geodino.io import atomic_path

    fig, axes = plt.subplots(2, 3, figsize=(12, 6.2))
    for ax, (key, label) in zip(axes.flat, KEYS):
        for name, m in runs.items():
            series = m.get(key, {})
            if series:
                steps = sorted(series)
                ax.plot(steps, [series[s] for s in steps], label=name, lw=1.2)
        if key in ("dino_global_loss", "monitor/teacher_entropy"):
            ax.axhline(ln_k, color="k", ls="--", lw=0.8, label="ln K")
        if key == "ibot_loss":
            ax.axhline(ln_k / 2, color="k", ls=":", lw=0.8, label="ln K / 2")
        if key == "monitor/layerscale_gamma":
            ax.set_yscale("log")
        ax.set_title(label, fontsize=9)
        ax.set_xlabel("step", fontsize=8)
    axes.flat[0].legend(fontsize=7)
    fig.suptitle("EuroSAT chips, vit_tiny/8: the official initialisation vs the small-budget recipe", fontsize=10)
    fig.tight_layout()
    png.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(png) as tmp:
        fig.savefig(tmp, format="png", dpi=100)
    plt.close(fig)


if __name__ == "__main__":
    sys.exit(main())
