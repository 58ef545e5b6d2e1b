"""Activation memory and time of one SSL training step with activation checkpointing off, selective and full.

The step is `benchmarks/train_step.py`'s geodino step (teacher forward, student forward over 2 global + 8 local
crops, DINO + iBOT + KoLeo, backward, clipping, AdamW, EMA), with `trainer.activation_checkpointing`'s wrapping
applied to the student's blocks. Each mode runs in its own process, after one untimed warm-up step (which
allocates the optimizer state):

- peak memory of the timed steps above what is held between steps: on CUDA `torch.cuda.max_memory_allocated`
  (reset after the warm-up); on CPU the process's peak resident set (Linux `VmHWM`, reset through
  `/proc/self/clear_refs` after the warm-up) minus its resident set at that point;
- seconds per step (median), and the losses, which must agree across modes (checkpointing changes no numbers).

    .venv/bin/python benchmarks/activation_checkpointing.py                        # ViT-S/16, batch 4, CPU
    .venv/bin/python benchmarks/activation_checkpointing.py --arch vit_large --batch 32 --device cuda
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch
from bench_cli import Parser, positive

HERE = Path(__file__).resolve().parent


def _rss_kb(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"{field} not in /proc/self/status")


def child(args: argparse.Namespace) -> dict:
    """One mode: warm-up step, reset the peak, time `steps` steps; the numbers as a dict."""
    sys.path.insert(0, str(HERE))
    from train_step import GeodinoStep, _batch

    from geodino.train.activation_checkpointing import apply_activation_checkpointing

    device = torch.device(args.device)
    torch.manual_seed(0)
    step = GeodinoStep(args.prototypes, arch=args.arch)
    step.arch.to(device)  # parameters keep their identity: the optimizer built on them stays valid
    n = apply_activation_checkpointing(step.arch.student["backbone"].blocks, args.child)
    batch = {
        k: v.to(device) if isinstance(v, torch.Tensor) else v
        for k, v in _batch(args.batch, gsize=args.global_size, lsize=args.local_size).items()
    }
    amp = (
        torch.autocast("cuda", dtype=torch.bfloat16) if device.type == "cuda" else torch.autocast("cpu", enabled=False)
    )

    def run() -> float:
        with amp:
            loss = step(batch)
        if device.type == "cuda":
            torch.cuda.synchronize()
        return loss

    losses = [run()]
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
        held = torch.cuda.memory_allocated()
    else:
        Path("/proc/self/clear_refs").write_text("5")  # resets VmHWM to the current resident set
        held = _rss_kb("VmRSS") * 1024
    times = []
    for _ in range(args.steps):
        t0 = time.perf_counter()
        losses.append(run())
        times.append(time.perf_counter() - t0)
    peak = torch.cuda.max_memory_allocated() if device.type == "cuda" else _rss_kb("VmHWM") * 1024
    return {
        "mode": args.child,
        "blocks": n,
        "step_mb": (peak - held) / 2**20,
        "s": statistics.median(times),
        "losses": losses,
    }


def main(argv: list[str] | None = None) -> int:
    p = Parser(description=__doc__.splitlines()[0])
    p.add_argument("--arch", default="vit_small")
    p.add_argument("--batch", type=positive, default=4, help="images per step (each 2x224 + 8x96 crops)")
    p.add_argument("--steps", type=positive, default=3, help="timed steps per mode")
    p.add_argument("--prototypes", type=positive, default=16384, help="K of both heads")
    p.add_argument("--global-size", type=positive, default=224, help="global crop size (px)")
    p.add_argument("--local-size", type=positive, default=96, help="local crop size (px)")
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument(  # the "vs off" columns and the loss check need the off row: it is run first when left out
        "--modes", nargs="+", default=["off", "selective", "full"], choices=["off", "selective", "full"]
    )
    p.add_argument("--child", default="", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.child:
        print("RESULT " + json.dumps(child(args)))
        return 0
    rows = []
    for mode in dict.fromkeys(["off", *args.modes]):  # off first, once: the base of every ratio
        cmd = [sys.executable, __file__, *(argv if argv is not None else sys.argv[1:]), "--child", mode]
        out = subprocess.run(cmd, capture_output=True, text=True)
        line = next((ln for ln in out.stdout.splitlines() if ln.startswith("RESULT ")), None)
        if out.returncode != 0 or line is None:
            print(out.stdout[-2000:], out.stderr[-3000:])
            raise SystemExit(f"mode {mode} failed (exit {out.returncode})")
        rows.append(json.loads(line[7:]))
        print(f"  {mode}: {rows[-1]['step_mb']:.0f} MB, {rows[-1]['s']:.2f} s/step", flush=True)
    base = rows[0]
    print(
        f"\nSSL step, {args.arch}, batch {args.batch} x (2x{args.global_size} + 8x{args.local_size}), "
        f"K={args.prototypes}, {args.device}, "
        f"median of {args.steps} steps after a warm-up step; memory = peak during the step above what is held "
        "between steps"
    )
    print("| activation checkpointing | step memory (MB) | vs off | s/step | vs off | blocks wrapped |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        print(
            f"| {r['mode']} | {r['step_mb']:.0f} | {r['step_mb'] / base['step_mb']:.2f} | {r['s']:.2f} | "
            f"{r['s'] / base['s']:.2f} | {r['blocks']} |"
        )
    worst = max(abs(a - b) for r in rows for a, b in zip(r["losses"], base["losses"]))
    print(f"largest loss difference to 'off' over the {args.steps + 1} steps: {worst:.2e}")
    return 0 if worst < 1e-4 else 1


if __name__ == "__main__":
    raise SystemExit(main())
