"""Gram anchoring, a controlled CPU experiment on the real sample rasters (a benchmark, not a test).

    .venv/bin/python benchmarks/gram_evidence.py [--base-steps 160 --steps 160 --every 40 --out /tmp/gram_evidence]

1. Pretrain a small ViT (vit_tiny widths, 4 blocks, patch 8, 64-px global crops) with DINO + iBOT + KoLeo for
   `--base-steps` on the sample rasters (Landsat RGB composite, NEON SJER and OSBS aerial RGB) through
   `geodino.train.pretrain.pretrain`, the real Lightning path.
2. Continue from that checkpoint for `--steps` in two arms with the same seed, data and crops (both draw the
   2x-resolution Gram crops): A without Gram anchoring, B with Gram anchoring (Gram teacher = the stage-1 EMA
   teacher, 128-px clean crops, bicubic to the 8x8 grid, weight ramped to `--gram-weight`). Stage chaining is
   `init_from`, as the official Gram stage.
3. Every `--every` steps, the EMA teacher of each arm is evaluated:
   - CLS-patch cosine similarity on 48 fixed crops (dense features losing locality push it up);
   - a dense probe on NEON SJER_052: tree / no-tree patches from the LiDAR CHM (> 2 m), co-registered by bounds;
     logistic-regression balanced accuracy and tree IoU, patch-kNN accuracy (4-fold spatial CV);
   - EuroSAT-sample CLS kNN accuracy (global features; Gram anchoring should not hurt them).
Prints a Markdown table, writes `results.json` and `gram_evidence.png` in `--out`.

With `--config` (e.g. configs/pretrain/small_vit_tiny.yaml) the stages are that config instead of the toy one, on
an images folder (`--data`, default ../shared/data/eurosat_3000, sensor imagenet, as README's first run): the
base run is the config itself for `--base-steps`, saved every `--every` steps (or `--init CKPT` skips it), and
the arms continue its last checkpoint in a stage
shaped like configs/pretrain/demo_gram.yaml (student from the student, flat lr `--cont-lr`, momentum 0.995, local
DINO weight 1 -> 0.5, 2x Gram crops drawn in both arms); arm B adds the Gram loss (teacher = the base EMA teacher,
weight ramped to `--gram-weight` over 1/12 of the stage, refreshed from the EMA teacher every third of it). Each
checkpoint is also scored on the images folder as benchmarks/pretrain_quality.py scores it (kNN k=20 and logistic
regression on CLS + mean patch token, fixed 2/3 : 1/3 split) with the in-domain CLS-patch cosine, and each row
carries the training log's DINO / iBOT / Gram losses and monitor/cls_patch_cosine, averaged over the 50 steps
before it (measured in docs/recipe.md, "Gram anchoring in the small recipe"):

    .venv/bin/python benchmarks/gram_evidence.py --config configs/pretrain/small_vit_tiny.yaml \\
        --base-steps 200 --steps 50 --every 50 --out /tmp/gram_small

`--gram-ckpt CKPT` adds arm C_gram_ckpt: arm B with CKPT's teacher as the Gram teacher (e.g. an earlier checkpoint
of the base run, as the official Gram stage anchors to the pretraining teacher), kept fixed (no refresh).
`--baselines` adds two rows scored by the same probes: the same ViT at random init and `baseline:colour` (per-patch
band mean, std and histogram). `--seed` sets the arms' seed.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
import warnings
from pathlib import Path
from typing import TYPE_CHECKING

from bench_cli import Parser, positive

sys.path.insert(0, str(Path(__file__).resolve().parent))

import evidence_utils as E

if TYPE_CHECKING:
    import torch

CONFIG = """\
name: {name}
output_dir: {out}
seed: 0
batch_size: {batch}
num_workers: {workers}
init_from: {init_from}
ssl:
  student: {{arch: vit_tiny, patch_size: 8, in_chans: 3, drop_path_rate: 0.1, overrides: {{depth: 4}}}}
  dino: {{head_n_prototypes: 512, head_hidden_dim: 256, head_bottleneck_dim: 64}}
  ibot: {{head_n_prototypes: 512, head_hidden_dim: 256, head_bottleneck_dim: 64}}
  optim: {{freeze_last_layer_iters: {freeze}, clip_grad: 3.0, layerwise_decay: 1.0}}
  schedules:
    kind: v2
    lr: {{start: 0.0, peak: {lr}, end: {lr}, warmup_iters: {warmup}}}
    weight_decay: {{start: 0.04, peak: 0.04, end: 0.04}}
    momentum: {{start: 0.99, peak: 0.99, end: 0.99}}
    teacher_temp: {{start: 0.04, peak: 0.07, end: 0.07, warmup_iters: {warmup}}}
  gram:
    use_loss: {gram}
    loss_weight: {gram_weight}
    weight_start_iter: 0
    weight_ramp_iters: {ramp}
    rep_update: false
    img_level: true
data:
  sources:
    - {{type: raster, paths: [{scenes}], tile_size: 128, sensor: sat493m}}
crops: {{global_size: 64, local_size: 32, n_local: 4, gram: true, gram_size: 128, rot90: false}}
trainer:
  max_steps: {steps}
  accelerator: cpu
  precision: 32-true
  loggers: [csv]
  log_every_n_steps: 10
  progress_bar: false
checkpoint: {{every_n_steps: {every}, keep_last: 0, export_at_end: false}}
"""


def run_stage(name: str, out: Path, steps: int, every: int, args: argparse.Namespace, **kw) -> Path:
    from geodino.config import load_config
    from geodino.train.pretrain import PretrainConfig, pretrain

    d = E.DATA
    scenes = f"[{d / 'scenes/RGB.byte.tif'}, {d / 'neon_sjer/SJER_052.tif'}, {d / 'treecrowns/OSBS_029.tif'}]"
    text = CONFIG.format(
        name=name,
        out=out,
        batch=args.batch,
        workers=args.workers,
        init_from=kw.get("init_from", "null"),
        freeze=kw.get("freeze", 0),
        lr=args.lr,
        warmup=kw.get("warmup", 0),
        gram=str(kw.get("gram", False)).lower(),
        gram_weight=args.gram_weight,
        ramp=kw.get("ramp", 0),
        scenes=scenes[1:-1],
        steps=steps,
        every=every,
    )
    out.mkdir(parents=True, exist_ok=True)
    (out.parent / f"{name}.yaml").write_text(text)
    cfg = load_config(PretrainConfig, out.parent / f"{name}.yaml")
    t0 = time.perf_counter()
    pretrain(cfg)
    print(f"  stage {name}: {steps} steps in {time.perf_counter() - t0:.0f} s", flush=True)
    return out / "checkpoints"


def evaluate(ckpt: Path, crops) -> dict:
    model = E.teacher_from_checkpoint(ckpt)
    row = {"cls_patch_cos": E.cls_patch_cosine(model, crops)}
    row.update(E.sjer_dense_probe(model, grid=25))
    row.update(E.eurosat_knn(model))
    return row


# ------------------------------------------------------------------------------ --config: a recipe's own stages
RECIPE_COLS = [
    "log_dino_global",
    "log_dino_local",
    "log_ibot",
    "log_gram",
    "log_cls_patch_cosine",
    "chip_cls_patch_cos",
    "knn",
    "logreg",
    "cls_patch_cos",
    "linear_bacc",
    "tree_iou",
    "patch_knn_acc",
]
LOGGED = ("dino_global_loss", "dino_local_loss", "ibot_loss", "gram_loss", "monitor/cls_patch_cosine")


def recipe_overrides(args: argparse.Namespace, out: Path, steps: int, every: int) -> list[str]:
    """Overrides that point `--config` at the images folder, the run folder, `steps` and checkpoints every `every`."""
    return [
        f"output_dir={out}",
        f"trainer.max_steps={steps}",
        f"data.sources=[{{name: chips, type: images, paths: [{args.data}], sensor: {args.sensor}}}]",
        "trainer.progress_bar=false",
        "trainer.accelerator=cpu",
        "trainer.loggers=[csv]",
        "checkpoint.resume=never",
        f"checkpoint.every_n_steps={every}",
        "checkpoint.keep_last=0",
        "checkpoint.export_at_end=false",
    ]


def gram_stage_overrides(
    args: argparse.Namespace, init: Path, gram: bool, global_size: int, gram_ckpt: str | None = None
) -> list[str]:
    """The continuation, shaped like configs/pretrain/demo_gram.yaml at `--steps`; `gram` adds the Gram loss only.
    With `gram_ckpt` the Gram teacher is that checkpoint's teacher, kept fixed (no refresh from the EMA teacher),
    so an earlier teacher is what the whole stage anchors to."""
    n, lr = args.steps, args.cont_lr
    ramp, refresh = max(n // 12, 1), max(n // 3, 1)
    out = [
        f"seed={args.seed}",
        f"init_from={init}",
        "init_student_from=student",
        "ssl.optim.freeze_last_layer_iters=0",
        "ssl.schedules.kind=v2",
        f"ssl.schedules.lr={{start: {lr}, peak: {lr}, end: {lr}, warmup_iters: 0}}",
        "ssl.schedules.momentum={start: 0.995, peak: 0.995, end: 0.995}",
        "ssl.schedules.teacher_temp={start: 0.04, peak: 0.04, end: 0.04, warmup_iters: 0}",
        "ssl.dino.local_loss_weight_initial=1.0",
        "ssl.dino.local_loss_weight=0.5",
        "ssl.dino.local_loss_weight_start_iter=0",
        f"ssl.dino.local_loss_weight_ramp_iters={ramp}",
        "crops.gram=true",
        f"crops.gram_size={2 * global_size}",
    ]
    if gram:
        out += [
            "ssl.gram.use_loss=true",
            f"ssl.gram.loss_weight={args.gram_weight}",
            "ssl.gram.weight_start_iter=0",
            f"ssl.gram.weight_ramp_iters={ramp}",
            "ssl.gram.img_level=true",
        ]
        if gram_ckpt:
            out += [f"ssl.gram.ckpt={gram_ckpt}", "ssl.gram.rep_update=false"]
        else:
            out += [
                "ssl.gram.rep_update=true",
                f"ssl.gram.update_frequency={refresh}",
                f"ssl.gram.it_first_update={refresh}",
                "ssl.gram.max_updates=3",
            ]
    return out


def run_recipe_stage(args: argparse.Namespace, name: str, out: Path, steps: int, every: int, extra: list[str]) -> Path:
    """One pretraining stage of `--config` with `extra` overrides; returns its checkpoint folder."""
    from geodino.config import load_config
    from geodino.train.pretrain import PretrainConfig, pretrain

    over = recipe_overrides(args, out, steps, every) + extra
    out.parent.mkdir(parents=True, exist_ok=True)
    (out.parent / f"{name}.overrides.txt").write_text("\n".join(over) + "\n")
    t0 = time.perf_counter()
    pretrain(load_config(PretrainConfig, args.config, over))
    print(f"  stage {name}: {steps} steps in {time.perf_counter() - t0:.0f} s", flush=True)
    return out / "checkpoints"


def logged_means(run: Path, upto: int, window: int) -> dict[str, float]:
    """Mean of the training log's losses and CLS-patch cosine over the steps (upto - window, upto]."""
    from geodino.train.curves import find_metrics, read_metrics

    metrics = read_metrics(find_metrics(run))
    row = {}
    for key in LOGGED:
        vals = [v for s, v in metrics.get(key, {}).items() if upto - window < s <= upto]
        if vals:
            row["log_" + key.split("/")[-1].removesuffix("_loss")] = sum(vals) / len(vals)
    return row


def images_eval(model: torch.nn.Module, chips: tuple, sensor: str) -> dict[str, float]:
    """pretrain_quality's kNN / logistic regression on CLS + mean patch token, and the in-domain CLS-patch cosine."""
    import pretrain_quality as PQ
    import torch

    from geodino.data.sensors import get_sensor
    from geodino.train.monitors import cls_patch_cosine

    x, y = chips
    t = get_sensor(sensor).standardize(torch.from_numpy(x).float() / 255.0)
    cls, pt = E.cls_and_patches(model, t, batch=100)
    f = torch.cat([cls, pt.mean(1)], 1).numpy()
    return {"chip_cls_patch_cos": float(cls_patch_cosine(cls, pt)), **PQ.evaluate(f, y)}


# (arm, Gram loss, Gram teacher = --gram-ckpt); C needs --gram-ckpt
ARMS = (("A_no_gram", False, False), ("B_gram", True, False), ("C_gram_ckpt", True, True))


def recipe_main(args: argparse.Namespace, out: Path, crops: torch.Tensor) -> list[dict]:
    """Base run of `--config` (or `--init`), then arms A / B from it; one row per evaluated checkpoint."""
    import pretrain_quality as PQ

    from geodino.config import load_config
    from geodino.train.pretrain import PretrainConfig

    x, y, _, _ = PQ.load_chips(Path(args.data))
    chips = (x, y)
    cfg = load_config(PretrainConfig, args.config, recipe_overrides(args, out / "base", args.base_steps, 1))
    global_size = int(cfg.crops.global_size)
    if args.init:
        init, base_run = Path(args.init), None
    else:
        base_run = out / "base"
        init = base_run / "checkpoints" / f"step_{args.base_steps:08d}.ckpt"
        if not init.exists():
            run_recipe_stage(args, "base", base_run, args.base_steps, args.every, [])

    def evaluate_model(model: torch.nn.Module, cos: bool = True) -> dict:
        row = {"cls_patch_cos": E.cls_patch_cosine(model, crops, args.sensor)} if cos else {}
        row.update(E.sjer_dense_probe(model, sensor=args.sensor, grid=25))
        row.update(images_eval(model, chips, args.sensor))
        return row

    def evaluate_ckpt(ckpt: Path) -> dict:
        return evaluate_model(E.teacher_from_checkpoint(ckpt))

    rows = []
    if args.baselines:  # the same probes on the same ViT at random init and on colour statistics of its patches
        rows.append({"arm": "random_init", "step": 0, **evaluate_model(E.random_backbone(init))})
        rows.append({"arm": "colour", "step": 0, **evaluate_model(E.colour_backbone(init), cos=False)})
        print(f"baselines: {rows}", flush=True)
    start = {"arm": "start", "step": 0, **evaluate_ckpt(init)}
    if base_run is not None:
        start.update(logged_means(base_run, args.base_steps, args.every))
    rows.append(start)
    print(f"start: {start}", flush=True)
    for arm, gram, gram_ckpt in ARMS:
        if arm not in args.arms:
            continue
        folder = out / arm
        ckdir = folder / "checkpoints"
        if not (ckdir / f"step_{args.steps:08d}.ckpt").exists():
            extra = gram_stage_overrides(args, init, gram, global_size, args.gram_ckpt if gram_ckpt else None)
            run_recipe_stage(args, arm, folder, args.steps, args.every, extra)
        for s in range(args.every, args.steps + 1, args.every):
            row = {"arm": arm, "step": s, **evaluate_ckpt(ckdir / f"step_{s:08d}.ckpt")}
            row.update(logged_means(folder, s, args.every))
            rows.append(row)
            print(f"  {arm} step {s}: {row}", flush=True)
    return rows


def toy_main(args: argparse.Namespace, out: Path, crops: torch.Tensor) -> list[dict]:
    """The toy stages on the sample rasters (the default); one row per evaluated checkpoint."""
    base = out / "base"
    base_ckpts = base / "checkpoints"
    if not (base_ckpts / f"step_{args.base_steps:08d}.ckpt").exists():
        run_stage(
            "base",
            base,
            args.base_steps,
            args.base_steps,
            args,
            warmup=args.base_steps // 8,
            freeze=min(10, args.base_steps // 4),
        )
    init = base_ckpts / f"step_{args.base_steps:08d}.ckpt"
    arms = {
        "A_no_gram": dict(gram=False),
        "B_gram": dict(gram=True, ramp=max(args.steps // 10, 1)),
    }
    rows = [{"arm": "start", "step": 0, **evaluate(init, crops)}]
    print(f"start (after {args.base_steps} pretraining steps): {rows[0]}", flush=True)
    for arm, kw in arms.items():
        folder = out / arm
        ckdir = folder / "checkpoints"
        if not (ckdir / f"step_{args.steps:08d}.ckpt").exists():
            run_stage(arm, folder, args.steps, args.every, args, init_from=str(init), **kw)
        for s in range(args.every, args.steps + 1, args.every):
            row = {"arm": arm, "step": s, **evaluate(ckdir / f"step_{s:08d}.ckpt", crops)}
            rows.append(row)
            print(
                f"  {arm} step {s}: cos={row['cls_patch_cos']:.3f} bacc={row['linear_bacc']:.3f} "
                f"iou={row['tree_iou']:.3f} pknn={row['patch_knn_acc']:.3f} knn20={row['knn20']:.3f}",
                flush=True,
            )
    return rows


def main() -> None:
    p = Parser(description=__doc__.splitlines()[0])
    p.add_argument("--out", default="/tmp/geodino_gram_evidence")
    p.add_argument("--base-steps", type=positive, default=160)
    p.add_argument("--steps", type=positive, default=160)
    p.add_argument("--every", type=positive, default=40)
    p.add_argument("--batch", type=positive, default=16)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--lr", type=float, default=5e-4)
    p.add_argument("--gram-weight", type=float, default=2.0)
    p.add_argument("--config", help="a pretraining config whose own stages to compare (see the module docstring)")
    p.add_argument("--init", help="with --config: continue this checkpoint instead of a base run")
    p.add_argument("--data", default=str(E.DATA / "eurosat_3000"), help="with --config: the images folder")
    p.add_argument("--sensor", default="imagenet", help="with --config: the images source's sensor")
    p.add_argument("--cont-lr", type=float, default=1e-4, help="with --config: the continuation's flat lr")
    p.add_argument(
        "--arms",
        nargs="+",
        choices=[a[0] for a in ARMS],
        help="with --config: the arms to run (default A and B, and C with --gram-ckpt; one each in separate "
        "processes with their own --out and the same --init)",
    )
    p.add_argument(
        "--gram-ckpt",
        help="with --config: arm C_gram_ckpt's Gram teacher, e.g. an earlier checkpoint of the base run (fixed: no "
        "refresh from the EMA teacher)",
    )
    p.add_argument("--seed", type=int, default=0, help="with --config: the continuation arms' seed")
    p.add_argument("--baselines", action="store_true", help="with --config: also score random init and baseline:colour")
    args = p.parse_args()
    if args.arms is None:
        args.arms = ["A_no_gram", "B_gram"] + (["C_gram_ckpt"] if args.gram_ckpt else [])
    E.require_data()
    for flag, path in (
        ("--config", args.config),
        ("--init", args.init),
        ("--data", args.data),
        ("--gram-ckpt", args.gram_ckpt),
    ):
        if path and not Path(path).exists():
            p.error(f"{flag} {path} does not exist")
    for flag, val in (("--init", args.init), ("--gram-ckpt", args.gram_ckpt)):
        if val and not args.config:
            p.error(f"{flag} needs --config")
    if "C_gram_ckpt" in args.arms and not args.gram_ckpt:
        p.error("--arms C_gram_ckpt needs --gram-ckpt (the Gram teacher's checkpoint)")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    logging.getLogger("lightning").setLevel(logging.ERROR)
    logging.getLogger("lightning.pytorch").setLevel(logging.ERROR)
    warnings.filterwarnings("ignore")
    import torch

    torch.manual_seed(0)
    out = Path(args.out)
    crops = E.eval_crops()
    t0 = time.perf_counter()
    rows = recipe_main(args, out, crops) if args.config else toy_main(args, out, crops)
    (out / "results.json").write_text(json.dumps({"args": vars(args), "rows": rows}, indent=2))
    cols = ["arm", "step", "cls_patch_cos", "linear_bacc", "tree_iou", "patch_knn_acc", "knn10", "knn20"]
    if args.config:
        cols = ["arm", "step", *RECIPE_COLS]
    print()
    print(E.fmt_table(rows, cols))
    if not all(any(r["arm"] == arm for r in rows) for arm in ("A_no_gram", "B_gram")):
        return  # one arm of a split run (--arms)
    a = [r for r in rows if r["arm"] == "A_no_gram"][-1]
    b = [r for r in rows if r["arm"] == "B_gram"][-1]
    print(
        f"\nend of continuation, Gram / no-Gram: CLS-patch cosine {b['cls_patch_cos']:.3f} / {a['cls_patch_cos']:.3f}, "
        f"dense balanced acc {b['linear_bacc']:.3f} / {a['linear_bacc']:.3f} "
        f"(ratio {b['linear_bacc'] / max(a['linear_bacc'], 1e-9):.3f}), "
        f"tree IoU {b['tree_iou']:.3f} / {a['tree_iou']:.3f}, "
        + (
            f"kNN {b['knn']} / {a['knn']}, logreg {b['logreg']} / {a['logreg']}"
            if args.config
            else f"EuroSAT kNN20 {b['knn20']:.3f} / {a['knn20']:.3f}"
        )
        + f"; total {time.perf_counter() - t0:.0f} s"
    )
    if any(r["arm"] == "C_gram_ckpt" for r in rows):
        c = [r for r in rows if r["arm"] == "C_gram_ckpt"][-1]
        print(
            f"Gram teacher {args.gram_ckpt} (C) / base teacher (B) / no Gram (A): "
            + ", ".join(
                f"{k} {c[k]:.3f} / {b[k]:.3f} / {a[k]:.3f}"
                for k in ("cls_patch_cos", "tree_iou", "patch_knn_acc", "knn")
            )
        )
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, axes = plt.subplots(1, 3, figsize=(13, 3.6))
        start = next(r for r in rows if r["arm"] == "start")
        for arm, style in (("A_no_gram", "o-"), ("B_gram", "s-"), ("C_gram_ckpt", "^-")):
            rs = [start] + [r for r in rows if r["arm"] == arm]
            steps = [r["step"] for r in rs]
            for ax, key, title in zip(
                axes,
                ("cls_patch_cos", "linear_bacc", "tree_iou"),
                ("CLS-patch cosine (lower = more local)", "SJER tree/no-tree balanced acc", "SJER tree IoU"),
            ):
                ax.plot(steps, [r[key] for r in rs], style, label=arm)
                ax.set_title(title, fontsize=9)
                ax.set_xlabel("continuation step")
        for r in (r for r in rows if r["arm"] in ("random_init", "colour")):  # --baselines: horizontal lines
            for ax, key in zip(axes, ("cls_patch_cos", "linear_bacc", "tree_iou")):
                if key in r:
                    ax.axhline(r[key], color="grey", ls=":" if r["arm"] == "colour" else "--", lw=1, label=r["arm"])
        axes[0].legend()
        fig.tight_layout()
        fig.savefig(out / "gram_evidence.png", dpi=110)
        print(f"plot: {out / 'gram_evidence.png'}")
    except Exception as exc:  # plotting is a convenience
        print(f"(no plot: {exc})")


if __name__ == "__main__":
    main()
