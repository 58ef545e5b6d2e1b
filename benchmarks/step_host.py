"""Host work of one SSL training step, eager against `trainer.compile=true`, measured on any machine.

A GPU step of a small ViT is bound by the host when the host takes longer to dispatch the step's kernels than the
device takes to run them (session 52 profiled `sat_vits16` on an H200: device busy 44 % of the step, ~4,700 kernel
launches and ~20,000 aten calls per step). This benchmark measures that host work without a GPU: the step's graph
at the real depth, head count, crop layout and losses (ViT-S: 12 blocks, 6 heads, 2 global + 8 local crops, DINO +
iBOT + KoLeo, EMA teacher, per-module clipping, fused AdamW), but at tiny widths and crop sizes, so the arithmetic
is negligible and the time left is dispatch: Python, the aten dispatcher, autocast casts and, when compiled, the
compiled graphs' wrappers. Crop groups are concatenated per block as on a GPU (the CPU path runs them one at
a time; `--groups-apart`). It prints ms per step for both sides in the same run (alternating, medians), their
ratio, the aten calls of the eager step by phase, and Dynamo's graph and graph-break counts for the compiled side
(a graph break in a block means that block runs, in part or whole, eagerly).

    .venv/bin/python benchmarks/step_host.py                 # ViT-S graph, bf16 autocast, 20 timed steps per side
    .venv/bin/python benchmarks/step_host.py --arch vit_large --precision fp32
"""

from __future__ import annotations

import collections
import statistics
import time
from contextlib import nullcontext
from typing import Any

import numpy as np
import torch
from bench_cli import Parser, positive


def _arch(arch: str, drop_path: float) -> Any:
    from geodino.config import load_config
    from geodino.train.recipe import SSLConfig
    from geodino.train.ssl import SSLMetaArch

    n_heads = {"vit_small": 6, "vit_base": 12, "vit_large": 16}.get(arch, 6)
    cfg = load_config(
        SSLConfig,
        None,
        [
            f"student.arch={arch}",
            f"student.overrides={{embed_dim: {4 * n_heads}}}",  # 4 channels per head: the graph, not the arithmetic
            f"student.drop_path_rate={drop_path}",
            *(
                f"{h}.{k}={v}"
                for h in ("dino", "ibot")
                for k, v in (("head_n_prototypes", 64), ("head_hidden_dim", 32))
            ),
            "dino.head_bottleneck_dim=16",
            "ibot.head_bottleneck_dim=16",
            "schedules.lr.warmup_iters=10",
            "schedules.teacher_temp.warmup_iters=10",
            "optim.freeze_last_layer_iters=0",
        ],
    )
    return SSLMetaArch(cfg, total_iters=1000, global_batch_size=8)


def _batch(b: int) -> dict[str, torch.Tensor]:
    from geodino.data.masking import collate_masks, sample_masks

    g = torch.Generator().manual_seed(0)
    out = {
        "global_crops": torch.randn(2 * b, 3, 32, 32, generator=g),
        "local_crops": torch.randn(8 * b, 3, 16, 16, generator=g),
    }
    masks, ub = sample_masks(2 * b, (2, 2), np.random.default_rng(0))
    out.update(collate_masks(masks, ub))
    return out


class Step:
    """One side: the step as `SSLModule.training_step` runs it (schedules, forward, backward, clipping, AdamW, EMA),
    without Lightning; `compile` compiles each block's `forward_list` as `trainer.compile=true` does."""

    def __init__(self, arch: str, drop_path: float, compile: bool, amp: bool) -> None:
        from geodino.train.optim import build_optimizer

        torch.manual_seed(0)
        self.arch = _arch(arch, drop_path)
        self.opt = build_optimizer(self.arch.param_groups(), betas=(0.9, 0.999))
        self.amp, self.it = amp, 1
        self.phases: dict[str, list[float]] = collections.defaultdict(list)
        if compile:
            for part in (self.arch.student, self.arch.teacher):
                for blk in part["backbone"].blocks:
                    blk.forward_list = torch.compile(blk.forward_list)

    def __call__(self, batch: dict[str, torch.Tensor]) -> float:
        from geodino.losses.float32 import float32_region
        from geodino.train.optim import apply_optim_schedule, clip_grad_per_module

        clock = time.perf_counter
        t = [clock()]
        s = self.arch.schedules.at(self.it)
        apply_optim_schedule(self.opt, s["lr"], s["weight_decay"], s["last_layer_lr"])
        with torch.autocast("cpu", dtype=torch.bfloat16) if self.amp else nullcontext():
            loss, _ = self.arch(batch, self.it)
        t.append(clock())
        self.opt.zero_grad(set_to_none=True)
        with float32_region(loss.device.type):  # outside any caller's autocast, as SSLModule.training_step runs it
            loss.backward()
        t.append(clock())
        clip_grad_per_module(self.arch.student, 3.0)
        self.opt.step()
        t.append(clock())
        self.arch.update_teacher(s["momentum"])
        t.append(clock())
        self.it += 1
        for name, a, b in zip(("forward", "backward", "clip + AdamW", "EMA"), t, t[1:]):
            self.phases[name].append(b - a)
        return t[-1] - t[0]


def aten_calls(step: Step, batch: dict[str, torch.Tensor]) -> dict[str, int]:
    """aten calls of one eager step, by phase (each is host work, and on a GPU most of them a kernel launch)."""
    from torch.utils._python_dispatch import TorchDispatchMode

    class Count(TorchDispatchMode):
        n = 0

        def __torch_dispatch__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
            Count.n += 1
            return func(*args, **(kwargs or {}))

    counts: dict[str, int] = {}
    marks = []
    with Count():
        orig = step.opt.zero_grad

        def zero_grad(*a: Any, **k: Any) -> None:
            marks.append(Count.n)
            orig(*a, **k)

        step.opt.zero_grad = zero_grad  # type: ignore[method-assign]
        step(batch)
        step.opt.zero_grad = orig  # type: ignore[method-assign]
    counts["forward"] = marks[0]
    counts["rest of the step"] = Count.n - marks[0]
    counts["total"] = Count.n
    return counts


def main() -> None:
    ap = Parser(description=__doc__.split("\n")[0])
    ap.add_argument("--arch", default="vit_small", help="the block count and head count of this architecture")
    ap.add_argument("--precision", choices=("bf16", "fp32"), default="bf16", help="bf16: autocast, as bf16-mixed")
    ap.add_argument("--drop-path", type=float, default=0.3, help="student drop path (sat_vits16's; 0 for none)")
    ap.add_argument("--steps", type=positive, default=20, help="timed steps per side")
    ap.add_argument("--warmup", type=int, default=5, help="untimed steps per side (the compile happens here)")
    ap.add_argument("--threads", type=positive, default=1, help="torch threads (dispatch is single-threaded anyway)")
    ap.add_argument(
        "--groups-apart",
        action="store_true",
        help="run crop groups one at a time, as the CPU path does (default: concatenated, the GPU path's op graph)",
    )
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    from geodino.models.layers.block import SelfAttentionBlock

    SelfAttentionBlock.concat_groups = not args.groups_apart  # the op graph a GPU step dispatches
    from torch._dynamo.utils import counters

    batch, amp = _batch(2), args.precision == "bf16"
    sides = {
        "eager": Step(args.arch, args.drop_path, False, amp),
        "compiled": Step(args.arch, args.drop_path, True, amp),
    }
    t0 = time.perf_counter()
    for _ in range(args.warmup):
        for step in sides.values():
            step(batch)
    print(f"warm-up {time.perf_counter() - t0:.1f} s ({args.warmup} steps per side, the compile included)")
    times: dict[str, list[float]] = {k: [] for k in sides}
    for _ in range(args.steps):  # alternating, so load from other processes hits both alike
        for name, step in sides.items():
            times[name].append(step(batch))
    med = {k: statistics.median(v) * 1e3 for k, v in times.items()}
    print(
        f"\n## Host work per SSL step ({args.arch} graph at tiny widths, {args.precision}, {args.threads} thread, "
        f"median of {args.steps} alternating steps)\n"
    )
    print("| side | ms/step | " + " | ".join(f"{p} ms" for p in sides["eager"].phases) + " |")
    print("|---|---|" + "---|" * len(sides["eager"].phases))
    for name, step in sides.items():
        phases = " | ".join(f"{statistics.median(v[-args.steps :]) * 1e3:.1f}" for v in step.phases.values())
        print(f"| {name} | {med[name]:.1f} | {phases} |")
    print(f"\ncompiled / eager host time: {med['compiled'] / med['eager']:.2f}")
    stats, breaks = counters["stats"], sum(counters["graph_break"].values())
    print(f"compiled side: {stats['unique_graphs']} Dynamo graphs, {breaks} graph breaks")
    for reason, n in counters["graph_break"].items():
        print(f"  break x{n}: {reason.splitlines()[0]}")
    calls = aten_calls(sides["eager"], batch)
    print("eager step aten calls: " + ", ".join(f"{k} {v:,}" for k, v in calls.items()))


if __name__ == "__main__":
    main()
