"""One distillation step (`train_step`): every student of this rank trained on one batch (schedules applied,
masks drawn, forward/backward with the shared teacher, per-module clipping, optimizer and EMA update), with the
non-finite-loss guard decided by every rank together (`any_rank`)."""

from __future__ import annotations

import math
from contextlib import nullcontext
from typing import TYPE_CHECKING, Any, cast

import torch

from geodino.errors import TrainingError
from geodino.train.distill import build as b
from geodino.train.host import host_floats

if TYPE_CHECKING:
    from geodino.train.distill.run_setup import DistillRun
    from geodino.train.distill_arch import DistillStudent


def train_step(run: DistillRun, step: int, batch: dict[str, Any]) -> dict[str, Any]:
    """One optimizer step of every student of this rank on `batch`; returns the log row (losses and gradient norms
    as device tensors, read by `host_floats` only on the steps that log: the step itself reads one value, the loss
    for the NaN guard)."""
    from geodino.data.collate import crops_on
    from geodino.train.optim import apply_optim_schedule, clip_grad_per_module

    cfg, arch, device = run.cfg, run.arch, run.device
    if "step" in batch and int(batch["step"]) != step:
        raise TrainingError(f"data loader yielded the batch of step {int(batch['step'])} at step {step}")
    torch.manual_seed((cfg.train.seed * 1_000_003 + step * 7919 + run.rank) % (2**63 - 1))
    v = run.sched.at(step)
    apply_optim_schedule(run.opt, v["lr"], v["weight_decay"], v["last_layer_lr"])
    arch.weights.dino_local = float(v.get("dino_local_weight", 1.0))
    inputs: dict[str, Any] = crops_on(batch, device)  # applies a pending photometric step on the device
    masks = b.student_masks(cfg, batch, run.layout.student_batch, run.patch, step, run.rank)
    # the loader's (pinned on CUDA) or freshly drawn masks: copies queued without waiting for the device
    inputs.update({k: (t.to(device, non_blocking=True) if torch.is_tensor(t) else t) for k, t in masks.items()})
    amp = (
        torch.autocast(device_type=device.type, dtype=torch.bfloat16)
        if cfg.train.precision == "bf16-mixed"
        else nullcontext()
    )
    with amp:
        loss, metrics = arch.forward_backward(inputs, v["teacher_temp"], cfg.train.global_batch_size)
    # every rank decides together (one flag all-reduced; every rank calls it): DDP has all-reduced a NaN gradient
    # into the ranks whose own loss is finite, and a rank stopping alone left the others stepping and then waiting
    here = not math.isfinite(float(loss))
    if any_rank(here) if run.distributed else here:
        terms = ", ".join(f"{k}={x:.4g}" for k, x in host_floats(metrics).items())
        what = f"loss is {float(loss)}" if here else "the loss of another process is not finite"
        raise TrainingError(
            f"{what} at step {step} ({terms}); "
            # not "resume": a resume keeps the recipe (check_resume_config) and, being exact, reaches this loss again
            f"lower schedules.lr.end or optim.clip_grad and start again in a new output_dir (a resume keeps the recipe "
            f"and would reach this loss again)"
        )
    norms = {}
    for name, student in arch.students.items():
        st = cast("DistillStudent", student)  # what the ModuleDict holds (it yields them typed as nn.Module)
        n = clip_grad_per_module(
            {"backbone": st.backbone, "dino_head": st.dino_head, "ibot_head": st.ibot_head}, cfg.optim.clip_grad
        )
        norms.update({f"{name}/grad_norm/{k}": x for k, x in n.items()})
    run.opt.step()
    run.opt.zero_grad(set_to_none=True)
    arch.update_ema(v["momentum"])
    sched = {"lr": v["lr"], "momentum": v["momentum"], "teacher_temp": v["teacher_temp"]}
    return {"step": float(step), **metrics, **norms, **sched}


def any_rank(wanted: bool) -> bool:
    """Whether any rank wants it (an all-reduce of one flag), so that every rank stops at the same step."""
    import torch.distributed as dist

    flag = torch.tensor([int(wanted)], device="cuda" if dist.get_backend() == "nccl" else "cpu")
    dist.all_reduce(flag, op=dist.ReduceOp.MAX)
    return bool(flag.item())
