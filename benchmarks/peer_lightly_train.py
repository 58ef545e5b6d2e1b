"""The peer row of `pretrain_quality.py`: LightlyTrain (`lightly-train` 0.18.0, method `dinov2`) at a wall-clock budget.

LightlyTrain lives in its own virtual environment (`<repo>/.venv-lightly-train`, torch 2.14.1; never a geodino
dependency) and is only ever run as a subprocess through its console script `lightly-train` (the package has no
`__main__`, so `python -m lightly_train` does not exist). This file imports nothing from it and needs neither torch
nor geodino: numpy and the standard library.

What runs (see `run_lightly_train`):

1. `lightly-train pretrain ... model=dinov2/vits14-notpretrained method=dinov2` for a few steps (calibration): the
   per-step time comes from LightlyTrain's own per-step timing (`profiling/batch_time` + `profiling/data_time` in
   `metrics.jsonl`; the first step apart, then the mean of the others), the fixed cost is the rest of the
   subprocess' wall time (interpreter and imports, dataset listing, model build, checkpoint write, export, exit).
2. The same command with `trainer_args.max_steps=N`, N = 1 + (budget - fixed - first step) / per-step time, so that
   the whole subprocess fits the budget; the schedules LightlyTrain gives in absolute steps are scaled to N (below).
   The calibration run is not part of the budget (its wall time is reported).
3. `lightly-train embed ... checkpoint=<run>/checkpoints/last.ckpt format=csv`: one vector per image, the CLS token
   of the EMA teacher after the final LayerNorm (`x_norm_clstoken`, 384-d; no pooling of patch tokens, no head).

Model (this file's default): `dinov2/vits14-notpretrained` = ViT-S/14 with 4 registers (22 M parameters), random
init. The `dinov2` method documents only DINOv2 ViTs (`dinov2/vits14|vitb14|vitl14|vitg14`); ViT-S/14 is the
smallest, and the `-notpretrained` variant is the same architecture without Meta's weights (which would need the
network and would not be a from-scratch comparison). `dinov3/vitt16-notpretrained` (ViT-T/16, 5.5 M), the smallest
ViT LightlyTrain 0.18.0 ships, is documented for the `distillation` method (LightlyTrain's own ViT-T/16 is distilled
from DINOv3 ViT-L/16), not listed for `dinov2`, yet 0.18.0 runs it under `dinov2`: `pretrain_quality.py` passes
`model="dinov3/vitt16-notpretrained"`, so its LightlyTrain row (and the README's) is ViT-T/16 with method `dinov2`,
not this default.

Crops: LightlyTrain's `dinov2` transform makes 2 global crops (RandomResizedCrop scale 0.32-1 to `image_size`,
default 224) and 8 local crops (scale 0.05-0.32 to 98 px), with flips, colour jitter, grey, blur, solarize. The
ViT needs sides divisible by the patch (14), so on 64 px chips the global crops are 56 px (4x4 patches, the
largest multiple of 14 not above 64: a slight down-sampling rather than up-sampling) and the local crops 28 px
(2x2 patches; 224/98 in the original is the same ~2:1 ratio). The embed command resizes each whole chip to 56 px.

Schedules: `DINOv2Args` fixes warmup_steps=12500, teacher_temp_warmup_steps=37500 and
student_freeze_last_layer_steps=1250 for its 125k-step default. In a run of a few hundred steps that would leave
the learning rate warming up for the whole run, the teacher temperature at its start and the prototype layer
frozen throughout. They are set to the same fractions of the actual run (10 %, 30 %, 1 %). The momentum, weight
decay and cosine learning-rate schedules already follow the run length. Everything else (heads 2048-256-65536,
losses, lr 0.004 scaled by sqrt(batch/1024), AdamW, layer-wise decay 0.9, clip 3.0, drop-path 0.1) is
LightlyTrain's default. Per-epoch checkpoints and exports are switched off (one `last.ckpt` is written at the end),
TensorBoard is off (the JSONL metrics stay), precision 32-true, one CPU device, one data-loader worker (what
`num_workers=auto` gives on 2 cores), torch threads left at the machine default, telemetry off
(`LIGHTLY_TRAIN_EVENTS_DISABLED=1`), and LightlyTrain's cache (its dataset memory map) under `out`.

    .venv/bin/python benchmarks/peer_lightly_train.py --minutes 2 --images ../shared/data/eurosat_3000 --out /tmp/lt
"""

from __future__ import annotations

import csv
import json
import math
import os
import shlex
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from bench_cli import Parser, positive

VERSION = "0.18.0"
TORCH_PINS = ("torch==2.14.1", "torchvision==0.29.1")
VENV = ".venv-lightly-train"
MODEL = "dinov2/vits14-notpretrained"
METHOD = "dinov2"
PATCH = 14
IMAGE_EXTS = {".jpg", ".jpeg", ".png"}  # what LightlyTrain lists for RGB folders
# DINOv2Args' absolute-step schedules as fractions of its own 125k-step default run.
SCHEDULE_FRACTIONS = {
    "warmup_steps": 12_500 / 125_000,
    "teacher_temp_warmup_steps": 37_500 / 125_000,
    "student_freeze_last_layer_steps": 1_250 / 125_000,
}
ROOT = Path(__file__).resolve().parents[1]


# ------------------------------------------------------------------------------------------------ environment
def model_patch(model: str) -> int:
    """The patch size in a LightlyTrain model name (`dinov2/vits14-...` -> 14, `dinov3/vitt16-...` -> 16)."""
    import re

    m = re.search(r"vit[a-z]+(\d+)", model)
    return int(m.group(1)) if m else PATCH


def _installed_version(python: Path) -> str | None:
    if not python.exists():
        return None
    code = "import importlib.metadata as m; print(m.version('lightly-train'))"
    r = subprocess.run([str(python), "-c", code], capture_output=True, text=True)
    return r.stdout.strip() if r.returncode == 0 else None


def ensure_venv(root: Path, log: Callable[[str], Any] = print) -> Path:
    """The peer venv's python; creates `<root>/.venv-lightly-train` with lightly-train 0.18.0 when it lacks it.

    Recipe tested on this machine (../shared/reference/install.md): torch/torchvision first, from the machine's
    wheels under its pip cap, so that lightly-train's own requirements resolve without a second torch."""
    venv = Path(root) / VENV
    python = venv / "bin" / "python"
    if _installed_version(python) == VERSION:
        return python
    if not python.exists():
        log(f"creating {venv}")
        subprocess.run(["python3.11", "-m", "venv", str(venv)], check=True)
    pip = [str(python), "-m", "pip", "install", "--disable-pip-version-check"]
    log(f"installing {' '.join(TORCH_PINS)} into {venv}")
    subprocess.run([*pip, *TORCH_PINS], check=True)
    log(f"installing lightly-train=={VERSION} into {venv}")
    subprocess.run([*pip, f"lightly-train=={VERSION}"], check=True)
    got = _installed_version(python)
    if got != VERSION:
        raise RuntimeError(f"{venv}: lightly-train {got!r} after install, expected {VERSION}")
    return python


def _env(out: Path) -> dict[str, str]:
    """Offline and quiet: no telemetry, no update checks, LightlyTrain's cache inside `out`. Threads untouched."""
    env = dict(os.environ)
    env.update(
        LIGHTLY_TRAIN_EVENTS_DISABLED="1",  # PostHog usage events (lightly_train/_events/tracker.py)
        LIGHTLY_TRAIN_CACHE_DIR=str(out / "lt_cache"),  # dataset memory map, user id, model cache
        NO_ALBUMENTATIONS_UPDATE="1",  # albumentations' version check (LightlyTrain also sets it)
        HF_HUB_OFFLINE="1",
        WANDB_MODE="disabled",
        PYTHONWARNINGS="ignore",
    )
    env.pop("MLFLOW_TRACKING_URI", None)
    return env


def _run(cmd: list[str], log_file: Path, env: dict[str, str]) -> float:
    """Runs `cmd` with stdout+stderr to `log_file`; returns its wall seconds; raises with the log's tail on failure."""
    t0 = time.perf_counter()
    with open(log_file, "w") as fh:
        r = subprocess.run(cmd, stdout=fh, stderr=subprocess.STDOUT, env=env, stdin=subprocess.DEVNULL)
    wall = time.perf_counter() - t0
    if r.returncode != 0:
        tail = "\n".join(log_file.read_text(errors="replace").splitlines()[-25:])
        raise RuntimeError(f"{shlex.join(cmd[:2])} failed (exit {r.returncode}); tail of {log_file}:\n{tail}")
    return wall


# ------------------------------------------------------------------------------------------------ commands
def list_images(images: Path) -> list[str]:
    """Relative POSIX paths of every image under `images`, sorted (the order of the returned features)."""
    return sorted(
        p.relative_to(images).as_posix() for p in images.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_EXTS
    )


def scaled_schedules(steps: int) -> dict[str, int]:
    """DINOv2Args' absolute-step schedules at the same fractions of a `steps`-long run."""
    return {k: max(1, round(f * steps)) if k != "student_freeze_last_layer_steps" else round(f * steps)
            for k, f in SCHEDULE_FRACTIONS.items()}  # fmt: skip


def pretrain_command(
    script: Path,
    images: Path,
    run_dir: Path,
    steps: int,
    n_images: int,
    *,
    batch_size: int,
    image_size: int,
    local_size: int,
    n_local: int,
    seed: int,
    num_workers: int,
    model: str,
    method_args: dict[str, Any],
) -> list[str]:
    steps_per_epoch = max(n_images // batch_size, 1)  # LightlyTrain's loader drops the last partial batch
    epochs = math.ceil(steps / steps_per_epoch)
    cmd = [
        str(script),
        "pretrain",
        f"out={run_dir}",
        f"data={images}",
        f"model={model}",
        f"method={METHOD}",
        f"epochs={epochs}",
        f"trainer_args.max_steps={steps}",  # the schedules run over estimated_stepping_batches = min(this, epochs)
        "trainer_args.log_every_n_steps=1",  # per-step timing in metrics.jsonl
        f"batch_size={batch_size}",
        f"num_workers={num_workers}",
        "accelerator=cpu",
        "devices=1",
        "precision=32-true",
        f"seed={seed}",
        "overwrite=true",
        f"transform_args.image_size=[{image_size},{image_size}]",
        f"transform_args.local_view.view_size=[{local_size},{local_size}]",
        f"transform_args.local_view.num_views={n_local}",
        "callbacks.model_export=null",  # per-epoch export; the final export still happens
        "callbacks.model_checkpoint.every_n_epochs=1000000",  # no per-epoch checkpoints; last.ckpt at train end
        "loggers.tensorboard=null",
    ]
    cmd += [f"method_args.{k}={v}" for k, v in method_args.items()]
    return cmd


def embed_command(script: Path, images: Path, checkpoint: Path, out_csv: Path, image_size: int) -> list[str]:
    return [
        str(script),
        "embed",
        f"out={out_csv}",
        f"data={images}",
        f"checkpoint={checkpoint}",
        "format=csv",
        f"image_size=[{image_size},{image_size}]",
        "batch_size=128",
        "num_workers=1",
        "accelerator=cpu",
        "precision=32-true",
        "overwrite=true",
    ]


# ------------------------------------------------------------------------------------------------ outputs
def read_step_metrics(run_dir: Path) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for f in sorted(run_dir.rglob("metrics.jsonl")):
        rows += [json.loads(line) for line in f.read_text().splitlines() if line.strip()]
    return rows


def step_timing(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Steps run and their seconds (batch + data wait, from LightlyTrain's per-step profiling): total, first, and
    the mean of the later ones (the mean, not the median: on a shared machine slow steps are part of the cost)."""
    batch = {int(r["step"]): float(r["profiling/batch_time"]) for r in rows if "profiling/batch_time" in r}
    data = {int(r["step"]): float(r["profiling/data_time"]) for r in rows if "profiling/data_time" in r}
    per = [batch[s] + data.get(s, 0.0) for s in sorted(batch)]
    later = per[1:] or per
    losses = [float(r["train_loss"]) for r in sorted(rows, key=lambda r: r["step"]) if "train_loss" in r]
    return {
        "steps_logged": len(per),
        "steps_s": sum(per),
        "first_step_s": per[0] if per else float("nan"),
        "s_per_step": statistics.fmean(later) if later else float("nan"),
        "s_per_step_median": statistics.median(later) if later else float("nan"),
        "loss_first": losses[0] if losses else None,
        "loss_last": losses[-1] if losses else None,
    }


def read_embeddings(csv_path: Path, files: Sequence[str]) -> np.ndarray:
    """LightlyTrain's csv (filename, embedding_0..D-1) as float32 [len(files), D] in the order of `files`."""
    with open(csv_path, newline="") as fh:
        reader = csv.reader(fh)
        header = next(reader)
        if header[0] != "filename":
            raise ValueError(f"{csv_path}: unexpected header {header[:3]}")
        table = {row[0].replace(os.sep, "/"): row[1:] for row in reader}
    missing = [f for f in files if f not in table]
    if missing:
        raise ValueError(f"{csv_path}: {len(missing)} of {len(files)} images have no embedding, e.g. {missing[0]}")
    return np.asarray([table[f] for f in files], dtype=np.float32)


# ------------------------------------------------------------------------------------------------ the run
def run_lightly_train(
    images: Path,
    out: Path,
    minutes: float,
    *,
    batch_size: int = 32,
    image_size: int = 56,
    local_size: int = 28,
    n_local: int = 8,
    seed: int = 0,
    num_workers: int = 1,
    model: str = MODEL,
    method_args: dict[str, Any] | None = None,
    calib_steps: int = 8,
    keep_checkpoint: bool = False,
    root: Path = ROOT,
    log: Callable[[str], Any] = print,
) -> tuple[np.ndarray, list[str], dict[str, Any]]:
    """Pretrain LightlyTrain `dinov2` for a wall-clock budget of `minutes` (its whole pretrain subprocess,
    start-up to exit) and embed every image under `images` with its own `embed` command.

    Returns (features float32 [N, D], sorted relative paths such as "Forest/Forest_1.jpg", info). The calibration
    run (`calib_steps` steps, same command) is not part of the budget; its wall time is in info.
    `method_args` override DINOv2Args after the step-scaled schedules. The run's 0.7 GB Lightning checkpoint is
    deleted after embedding unless `keep_checkpoint` (the exported backbone, pretrain/exported_models/, stays)."""
    images, out = Path(images).resolve(), Path(out).resolve()
    patch = model_patch(model)
    if image_size % patch or local_size % patch:
        raise ValueError(f"image_size and local_size must be multiples of the patch size {patch} of {model}")
    files = list_images(images)
    if len(files) < batch_size:
        raise ValueError(f"{images}: {len(files)} images, fewer than one batch of {batch_size}")
    python = ensure_venv(root, log=log)
    script = python.parent / "lightly-train"
    out.mkdir(parents=True, exist_ok=True)
    env = _env(out)
    opts: dict[str, Any] = dict(
        batch_size=batch_size,
        image_size=image_size,
        local_size=local_size,
        n_local=n_local,
        seed=seed,
        num_workers=num_workers,
        model=model,
    )

    # 1. calibration: per-step time from LightlyTrain's own step timing, the rest of the wall time is fixed cost
    cal_dir = out / "calibration"
    shutil.rmtree(cal_dir, ignore_errors=True)
    cal_cmd = pretrain_command(
        script, images, cal_dir, calib_steps, len(files), **opts,
        method_args={**scaled_schedules(calib_steps), **(method_args or {})},
    )  # fmt: skip
    cal_wall = _run(cal_cmd, out / "calibration.log", env)
    cal = step_timing(read_step_metrics(cal_dir))
    per_step, first = cal["s_per_step"], cal["first_step_s"]
    if not per_step > 0:
        raise RuntimeError(f"no per-step timing in {cal_dir} (metrics.jsonl); see {out / 'calibration.log'}")
    fixed = max(cal_wall - cal["steps_s"], 0.0)  # start-up, checkpoint, export, exit
    budget = minutes * 60.0
    steps = 1 + int((budget - fixed - first) / per_step)
    if steps < 10:
        log(f"  LightlyTrain: budget {budget:.0f} s leaves {steps} steps after {fixed:.0f} s start-up; running 10")
        steps = 10
    log(
        f"  LightlyTrain calibration: {per_step:.2f} s/step (first {first:.1f} s), start-up+teardown {fixed:.0f} s"
        f" -> {steps} steps"
    )
    shutil.rmtree(cal_dir, ignore_errors=True)  # the calibration checkpoint is ~0.6 GB

    # 2. the budgeted run
    run_dir = out / "pretrain"
    shutil.rmtree(run_dir, ignore_errors=True)
    margs = {**scaled_schedules(steps), **(method_args or {})}
    cmd = pretrain_command(script, images, run_dir, steps, len(files), **opts, method_args=margs)
    wall = _run(cmd, out / "pretrain.log", env)
    timing = step_timing(read_step_metrics(run_dir))
    ckpt = run_dir / "checkpoints" / "last.ckpt"
    if not ckpt.exists():
        raise RuntimeError(f"{ckpt} missing after pretraining; see {out / 'pretrain.log'}")
    log(f"  LightlyTrain pretrain: {timing['steps_logged']} steps in {wall:.0f} s (budget {budget:.0f} s)")

    # 3. features from its own embed command
    emb_csv = out / "embeddings.csv"
    ecmd = embed_command(script, images, ckpt, emb_csv, image_size)
    embed_wall = _run(ecmd, out / "embed.log", env)
    feats = read_embeddings(emb_csv, files)
    if not keep_checkpoint:
        ckpt.unlink()

    info: dict[str, Any] = {
        "version": _installed_version(python),
        "model": model,
        "method": METHOD,
        "steps": steps,
        "steps_logged": timing["steps_logged"],
        "batch_size": batch_size,
        "global_crop_px": image_size,
        "local_crop_px": local_size,
        "n_local_crops": n_local,
        "embed_px": image_size,
        "feature": "EMA-teacher CLS token after the final LayerNorm (x_norm_clstoken)",
        "feature_dim": int(feats.shape[1]),
        "budget_s": round(budget, 1),
        "wall_s": round(wall, 1),
        "embed_wall_s": round(embed_wall, 1),
        "calibration": {
            "steps": calib_steps,
            "wall_s": round(cal_wall, 1),
            "s_per_step": round(per_step, 3),
            "fixed_s": round(fixed, 1),
            "s_per_step_median": round(cal["s_per_step_median"], 3),
            "first_step_s": round(first, 2),
        },
        "s_per_step_run": round(timing["s_per_step"], 3),
        "fixed_s_run": round(wall - timing["steps_s"], 1),
        "train_loss_first": timing["loss_first"],
        "train_loss_last": timing["loss_last"],
        "method_args": margs,
        "commands": {
            "calibration": shlex.join(cal_cmd),
            "pretrain": shlex.join(cmd),
            "embed": shlex.join(ecmd),
        },
        "env": {k: env[k] for k in ("LIGHTLY_TRAIN_EVENTS_DISABLED", "LIGHTLY_TRAIN_CACHE_DIR", "HF_HUB_OFFLINE")},
        "out": str(out),
    }
    (out / "info.json").write_text(json.dumps(info, indent=2))
    return feats, files, info


def main(argv: Sequence[str] | None = None) -> int:
    ap = Parser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "--minutes", type=float, default=None, help="wall-clock budget of the pretrain subprocess (required)"
    )
    ap.add_argument("--images", type=Path, default=ROOT.parent / "shared" / "data" / "eurosat_3000")
    ap.add_argument("--out", type=Path, default=None, help="run folder (required)")
    ap.add_argument("--batch-size", type=positive, default=32)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    if args.minutes is None or args.out is None:  # `make benchmarks` runs every script bare: say so and exit 0
        print("peer_lightly_train: skipped, needs --minutes M --out DIR (it installs and runs LightlyTrain; docstring)")
        return 0
    feats, files, info = run_lightly_train(args.images, args.out, args.minutes, batch_size=args.batch_size,
                                           seed=args.seed)  # fmt: skip
    print(json.dumps(info, indent=2))
    print(f"features {feats.shape} {feats.dtype} for {len(files)} images (first: {files[0]})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
