"""Distillation with the frozen teacher on the fast path (`teacher.fast`, default auto) against the eager teacher.

Issue 15 lists distillation teachers among the frozen-backbone users of the fast path. A distillation run calls its
teacher in two places: the heads-only warm-up (per step: the clean global crops, the masked global crops and the
local crops, all without gradients) and every distillation step (the global crops, inside the step's autocast for
`bf16-mixed`). This script times both, with the teacher eager (`teacher.fast=off`, what geodino ran before) and on
the path `auto` picks (float32: prepared float32 weights; bf16-mixed: bf16-stored weights, no autocast), on the same
weights and the same batch, alternating the two teachers call by call so that load from other processes hits both
alike. Timed per precision:

- `teacher`: the teacher's part of a distillation step (`DistillMetaArch.teacher_targets`: backbone + heads +
  Sinkhorn-Knopp), under the step's autocast;
- `step`: the whole `forward_backward` of one student (teacher, student forward, losses, backward; the optimizer step
  is the same for both and left out);
- `warm-up`: one heads warm-up step (`teacher_heads._warmup_losses` + backward), the frozen backbone's three views.

`--compile` adds the compiled fast path (what `auto` picks for runs long enough to repay the compile; its warm-up,
paid once per crop shape, is printed separately). Ratios are eager median / fast median; outputs are compared
(largest difference of the teacher's CLS logits).

    .venv/bin/python benchmarks/distill_teacher.py                      # ViT-B/16 teacher -> ViT-S/16, batch 8
    .venv/bin/python benchmarks/distill_teacher.py --teacher vit_tiny --student vit_tiny --batch 1 --repeats 1 \
        --prototypes 64 --global-size 32 --local-size 16                # a smoke run (seconds)
    .venv/bin/python benchmarks/distill_teacher.py --teacher vit_large --student vit_small --batch 4 --compile
    .venv/bin/python benchmarks/distill_teacher.py --device cuda --teacher vit_large --batch 32 --compile \
        --precisions bf16-mixed                                         # what benchmarks/gpu.sh part 6 runs
"""

from __future__ import annotations

import copy
import statistics
import time
from contextlib import nullcontext

import torch
from bench_cli import Parser, positive
from torch import nn
from train_step import _batch  # the same synthetic crops and iBOT masks as the SSL step benchmark


def _arch(teacher: nn.Module, student_arch: str, k: int):  # type: ignore[no-untyped-def]
    """A DistillMetaArch with one student and heads of `k` prototypes (random: the speed does not depend on them)."""
    from geodino.models import build_model
    from geodino.models.heads import DINOHead
    from geodino.train.distill_arch import DistillMetaArch, DistillStudent

    d = int(teacher.embed_dim)
    t_dino, t_ibot = DINOHead(d, k, 2048, 256, 3), DINOHead(d, k, 2048, 256, 3)
    s = build_model(student_arch, drop_path_rate=0.0)
    student = DistillStudent(s, DINOHead(s.embed_dim, k, 2048, 256, 3), DINOHead(s.embed_dim, k, 2048, 256, 3))
    return DistillMetaArch(teacher, t_dino, t_ibot, {"s": student}).train()


def _timed(fn, device: torch.device) -> float:  # type: ignore[no-untyped-def]
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    sync()
    t = time.perf_counter()
    fn()
    sync()
    return time.perf_counter() - t


def main(argv: list[str] | None = None) -> None:
    p = Parser(description=__doc__.splitlines()[0])
    p.add_argument("--teacher", default="vit_base")
    p.add_argument("--student", default="vit_small")
    p.add_argument("--batch", type=positive, default=8, help="images per step (x2 global crops, x8 local crops)")
    p.add_argument("--global-size", type=positive, default=224, help="global crop size (px; a multiple of 16)")
    p.add_argument("--local-size", type=positive, default=96, help="local crop size (px; small for a smoke run)")
    p.add_argument("--prototypes", type=positive, default=8192)
    p.add_argument("--repeats", type=positive, default=5)
    p.add_argument("--threads", type=positive, default=2)
    p.add_argument("--precisions", nargs="+", default=["32-true", "bf16-mixed"], choices=["32-true", "bf16-mixed"])
    p.add_argument("--compile", action="store_true", help="add the compiled fast path")
    p.add_argument("--device", default="cpu", help="cpu or cuda (benchmarks/gpu.sh part 6)")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)

    from geodino.losses.dino import DINOLoss
    from geodino.losses.ibot import IBOTPatchLoss
    from geodino.models import build_model
    from geodino.models.frozen import FastViT, choose_path
    from geodino.train.teacher_heads import _warmup_losses

    torch.manual_seed(0)
    eager = build_model(args.teacher).eval().requires_grad_(False)
    with torch.no_grad():  # trained-like LayerScale and biases (every folded term matters)
        for name, prm in eager.named_parameters():
            if name.endswith(("gamma", "bias")):
                prm.normal_(0, 0.2)
    arch = _arch(eager, args.student, args.prototypes).to(device)
    crops = _batch(args.batch, gsize=args.global_size, lsize=args.local_size)
    batch = {k: v.to(device) if torch.is_tensor(v) else v for k, v in crops.items()}
    heads = nn.ModuleDict({h: copy.deepcopy(arch.teacher[h]) for h in ("dino_head", "ibot_head")})
    heads.train().requires_grad_(True)
    ema = copy.deepcopy(heads).eval().requires_grad_(False)
    losses = (DINOLoss(args.prototypes).to(device), IBOTPatchLoss(args.prototypes).to(device))
    print(
        f"torch {torch.__version__}, {device}, {args.threads} threads, teacher {args.teacher} -> student "
        f"{args.student}, batch {args.batch} (2 x {args.global_size} global + 8 x {args.local_size} local crops), "
        f"{args.prototypes} prototypes"
    )
    print(
        "| precision | teacher path | compile warm-up s | teacher s (eager / fast) | teacher ratio | step s "
        "(eager / fast) | step ratio | warm-up step s (eager / fast) | warm-up ratio | max CLS-logit diff |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    for precision in args.precisions:
        bf16 = precision == "bf16-mixed"
        amp = torch.autocast(device.type, dtype=torch.bfloat16) if bf16 else nullcontext()
        for compile_ in [False, True] if args.compile else [False]:
            path = choose_path(device, "auto", compile=compile_, amp=bf16)
            fast = FastViT(eager, path).to(device)
            t0 = time.perf_counter()
            if path.compile:  # every crop shape the run calls: globals, masked globals, locals
                g, loc = batch["global_crops"], batch["local_crops"]
                fast.warmup(g.shape[0], g.shape[-2], g.shape[-1], [], False)
                fast.warmup(g.shape[0], g.shape[-2], g.shape[-1], [], False, masked=True)
                fast.warmup(loc.shape[0], loc.shape[-2], loc.shape[-1], [], False)
            warm = time.perf_counter() - t0 if path.compile else 0.0

            def teacher_call(model: nn.Module, amp=amp) -> dict:  # type: ignore[no-untyped-def]
                arch.teacher["backbone"] = model
                with amp:
                    return arch.teacher_targets(
                        batch["global_crops"], batch["mask_indices"], batch["n_masked_patches"], 0.07
                    )

            def step(model: nn.Module, amp=amp) -> None:  # type: ignore[no-untyped-def]
                arch.teacher["backbone"] = model
                with amp:
                    arch.forward_backward(batch, 0.07)
                arch.zero_grad(set_to_none=True)

            def warmup_step(model: nn.Module) -> None:
                loss = _warmup_losses(model, heads, ema, batch, losses, 0.07, 2, device)[0]
                loss.backward()
                heads.zero_grad(set_to_none=True)

            diff = (teacher_call(fast)["cls_logits"] - teacher_call(eager)["cls_logits"]).abs().max().item()
            times: dict[str, list[float]] = {}
            for what, fn in (("teacher", teacher_call), ("step", step), ("warmup", warmup_step)):
                fn(eager), fn(fast)  # one untimed call each (allocator, caches)
                for _ in range(args.repeats):
                    for name, model in (("eager", eager), ("fast", fast)):
                        times.setdefault(f"{what}/{name}", []).append(_timed(lambda m=model, f=fn: f(m), device))
            med = {k: statistics.median(v) for k, v in times.items()}
            cells = []
            for what in ("teacher", "step", "warmup"):
                e, f = med[f"{what}/eager"], med[f"{what}/fast"]
                cells += [f"{e:.2f} / {f:.2f}", f"**{e / f:.2f}**"]
            print(f"| {precision} | {path.name} | {warm:.1f} | " + " | ".join(cells) + f" | {diff:.1e} |", flush=True)
    arch.teacher["backbone"] = eager


if __name__ == "__main__":
    main()
