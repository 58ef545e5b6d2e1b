"""Teacher heads for distillation: read them from a file, or train fresh ones on a frozen backbone (warm-up).

Distillation needs the teacher's DINO and iBOT heads: the students learn to match the teacher's prototype
assignments. The official releases ship backbones only (dinov3 issues #289, #203, #84), so a released
model cannot be distilled as is. geodino then trains fresh heads first, in a short *heads-only warm-up*:

- the teacher backbone stays frozen (eval mode, no gradients); only a pair of heads learns;
- it is the SSL recipe with the backbone taken out of the loop: a "student" pair of heads reads the frozen
  backbone's CLS tokens of global and local crops and the patch tokens of *masked* global crops (the backbone
  keeps its trained mask token); an EMA copy of the heads reads the unmasked global crops and gives
  Sinkhorn-Knopp targets; losses are DINO (cross-view globals + locals, 2/18 and 16/18) and iBOT;
  KoLeo is left out since it acts on the frozen CLS token and has no gradient here;
- the EMA heads are the result; their momentum starts at `warmup_momentum_start` (at most 1 - 10/steps, so that
  at most 1 % of the random initial heads is left in them after `steps`; the official 0.994 kept 40 % at 300
  steps), and they are frozen and saved next to the run as `teacher.heads.pth`
  (the format `geodino.train.checkpointing` uses for exports), so a second distillation reuses them with
  `teacher.heads=...` and skips the warm-up.

Because the backbone is fixed, the heads only learn a clustering of an existing feature space; a few hundred
steps suffice where a full SSL run needs hundreds of thousands. The same losses as pretraining are used, so
the prototypes mean what a pretraining run's heads would mean.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, cast

import torch
from torch import Tensor, nn

from geodino.data.collate import crops_on
from geodino.errors import CheckpointError
from geodino.losses.dino import DINOLoss
from geodino.losses.ibot import IBOTPatchLoss
from geodino.models.checkpoints.files import HEAD_NAMES
from geodino.models.heads import DINOHead
from geodino.train.host import host_floats


def head_from_state(state: dict[str, Tensor], source: str, what: str) -> DINOHead:
    """Build a DINOHead whose sizes are read from its state_dict (`mlp.*`, `last_layer.weight`, or DINOv2's
    weight-normalised `last_layer.weight_g`/`weight_v`), then load it."""
    if "last_layer.weight_v" in state:  # DINOv2 / geodino weight_norm heads
        n_out = state["last_layer.weight_v"].shape[0]
        kind = "weight_norm"
    elif "last_layer.weight" in state:
        n_out = state["last_layer.weight"].shape[0]
        kind = "linear"
    else:
        raise CheckpointError(f"{what} in {source} has no last_layer.weight; it is not a DINO/iBOT head state_dict")
    mlp = sorted(
        (int(k.split(".")[1]), v)
        for k, v in state.items()
        if k.startswith("mlp.") and k.endswith(".weight") and k.split(".")[1].isdigit()
    )
    if "mlp.weight" in state:  # nlayers == 1: the MLP is one Linear
        w = state["mlp.weight"]
        head = DINOHead(w.shape[1], n_out, w.shape[0], w.shape[0], 1, "mlp.bias" in state, last_layer=kind)
    elif mlp:
        first, last = mlp[0][1], mlp[-1][1]
        head = DINOHead(
            in_dim=first.shape[1],
            out_dim=n_out,
            hidden_dim=first.shape[0],
            bottleneck_dim=last.shape[0],
            nlayers=len(mlp),
            mlp_bias=f"mlp.{mlp[0][0]}.bias" in state,
            last_layer=kind,
        )
    else:
        raise CheckpointError(f"{what} in {source} has no mlp weights; it is not a DINO/iBOT head state_dict")
    missing, unexpected = head.load_state_dict(state, strict=False)
    if missing or unexpected:
        raise CheckpointError(
            f"{what} in {source} does not fit a DINO head (missing {missing}, unexpected {unexpected})"
        )
    return head


def load_heads_file(path: str | Path, embed_dim: int | None = None) -> tuple[DINOHead, DINOHead]:
    """The teacher's (DINO, iBOT) heads from a file: a geodino `*.heads.pth`, a geodino training checkpoint, an
    official eval dump (`{"teacher": {"dino_head.*", "ibot_head.*"}}`) or a flat dict with `dino_head.*` keys.

    `embed_dim` (the teacher backbone's) is checked against the heads' input size.
    """
    from geodino.models.checkpoints import read_heads
    from geodino.train.checkpointing import read_init_source

    path = Path(path).expanduser()
    if not path.exists():
        raise CheckpointError(
            f"teacher.heads file {path} not found; pass a *.heads.pth file or leave it empty to warm up"
        )
    heads, _ = read_heads(path)
    if len(heads) < 2:
        heads = read_init_source(path).heads
    if len(heads) < 2:
        raise CheckpointError(
            f"{path} holds no dino_head and ibot_head weights; pass a heads file (*.heads.pth) or leave teacher.heads "
            "empty so that fresh heads are warmed up on the frozen teacher"
        )
    dino, ibot = (head_from_state(heads[h], str(path), h) for h in HEAD_NAMES)
    if embed_dim is not None:
        for name, h in (("dino_head", dino), ("ibot_head", ibot)):
            if h.in_dim != embed_dim:
                raise CheckpointError(
                    f"{name} in {path} expects {h.in_dim}-d features but the teacher backbone has embed_dim "
                    f"{embed_dim}; pass the heads saved with this teacher"
                )
    return dino, ibot


def save_heads_file(path: str | Path, dino: DINOHead, ibot: DINOHead, meta: dict[str, Any] | None = None) -> Path:
    """Write heads as `{"dino_head": sd, "ibot_head": sd, **meta}` atomically (the export heads sidecar format)."""
    from geodino.models.checkpoints import write_heads

    return write_heads(path, {"dino_head": dino, "ibot_head": ibot}, **(meta or {}))


WARMUP_EMA_CONSTANT = 10.0  # momentum start <= 1 - C/steps: the cosine to 1 then keeps <= 1 % of the init


def warmup_momentum_start(start: float, steps: int) -> float:
    """The warm-up EMA's starting momentum: `start`, lowered to 1 - 10/`steps` (not below 0) for short warm-ups.

    With a cosine from m0 to 1 over T steps the EMA keeps the product of the momenta of its initial (random)
    weights, about exp(-(1 - m0) T / 2); at the official 0.994 that is 40 % after 300 steps. 1 - 10/T keeps at most
    0.7 % for every T (`init_share`; T >= 1667 keeps the 0.994 start)."""
    if steps <= 0:
        return float(start)
    return max(0.0, min(float(start), 1.0 - WARMUP_EMA_CONSTANT / steps))


def init_share(momentum: tuple[float, float], steps: int) -> float:
    """The share of its initial weights the warm-up's EMA keeps after `steps` (the product of the momenta of the
    schedule `warmup_heads` uses, its start lowered by `warmup_momentum_start`)."""
    import numpy as np

    from geodino.train.schedules import cosine_schedule

    if steps <= 0:
        return 1.0
    return float(np.prod(cosine_schedule(warmup_momentum_start(momentum[0], steps), momentum[1], steps)))


def _warmup_losses(
    model: Any,  # the frozen backbone's ViT: forward_features(Tensor) -> dict, (list, masks=list) -> list of dicts
    heads: nn.ModuleDict,
    ema: nn.ModuleDict,
    batch: dict[str, Any],
    losses: tuple[DINOLoss, IBOTPatchLoss],
    teacher_temp: float,
    n_global_crops: int,
    device: str | torch.device,
) -> tuple[Tensor, Tensor, Tensor]:
    """(total, global DINO, iBOT) loss of the trained heads on one batch: the frozen backbone sees the clean and
    masked views, the EMA heads give the teacher targets, the DINO terms are weighted by their pair counts."""
    dino_loss, ibot_loss = losses
    crops = crops_on(batch, device)  # applies a pending photometric step on the device
    g, loc = crops["global_crops"], crops["local_crops"]
    # batch tensors (pinned on CUDA): copies queued without waiting for the device, as crops_on does
    masks = batch["masks"].to(device, non_blocking=True)
    idx = batch["mask_indices"].to(device, non_blocking=True)
    weight = batch["masks_weight"].to(device, non_blocking=True)
    n_masked = batch["n_masked_patches"]  # Sinkhorn-Knopp's column count, kept on the device (no read, no wait)
    n_masked = n_masked.to(device, non_blocking=True) if torch.is_tensor(n_masked) else n_masked
    n_global_crops = int(batch.get("n_global_crops", n_global_crops))  # the loader's count wins over the default
    b = g.shape[0] // n_global_crops
    with torch.no_grad():  # the frozen backbone: three views, no graph
        clean = model.forward_features(g)
        views = (
            model.forward_features([g, loc], masks=[masks, None])
            if loc.numel()
            else [model.forward_features(g, masks=masks)]
        )
        t_cls = ema["dino_head"](clean["x_norm_clstoken"])
        t_patch = ema["ibot_head"](torch.index_select(clean["x_norm_patchtokens"].flatten(0, 1), 0, idx))
        t_cls = dino_loss.teacher_targets(t_cls, teacher_temp).unflatten(0, (n_global_crops, b))
        t_patch = ibot_loss.teacher_targets(t_patch, teacher_temp, n_masked)
    s_g = heads["dino_head"](views[0]["x_norm_clstoken"]).unflatten(0, (n_global_crops, b))
    g_terms = n_global_crops * (n_global_crops - 1)
    l_terms = 0
    loss_local = s_g.new_zeros(())
    if len(views) > 1:
        s_l = heads["dino_head"](views[1]["x_norm_clstoken"])
        n_l = s_l.shape[0] // b
        l_terms = n_global_crops * n_l
        loss_local = dino_loss(s_l.unflatten(0, (n_l, b)), t_cls)
    # one global crop per image has no cross-view pair: no global term (as SSLMetaArch), not 0 x NaN
    loss_global = dino_loss(s_g, t_cls, ignore_diagonal=True) if g_terms else s_g.new_zeros(())
    s_patch = heads["ibot_head"](torch.index_select(views[0]["x_norm_patchtokens"].flatten(0, 1), 0, idx))
    loss_ibot = ibot_loss(s_patch, t_patch, masks, weight)
    total_terms = g_terms + l_terms
    loss = loss_ibot  # one global crop and no local ones (crops.n_local=0): no DINO term at all, not a 0 / 0
    if total_terms:
        loss = (g_terms / total_terms) * loss_global + (l_terms / total_terms) * loss_local + loss
    return loss, loss_global, loss_ibot


def warmup_heads(
    backbone: nn.Module,
    batches: Iterator[dict[str, Any]],
    *,
    steps: int,
    dino: DINOHead,
    ibot: DINOHead,
    lr: float = 1e-3,
    weight_decay: float = 0.04,
    momentum: tuple[float, float] = (0.994, 1.0),
    teacher_temp: float = 0.07,
    clip_grad: float = 3.0,
    n_global_crops: int = 2,
    device: str | torch.device = "cpu",
    progress: bool = True,
    on_step: Callable[[int, dict[str, float]], None] | None = None,
    group: Any = None,
) -> tuple[DINOHead, DINOHead, list[dict[str, float]]]:
    """Train `dino` and `ibot` heads on a frozen `backbone` for `steps` batches; return the frozen EMA heads and the
    per-step log. See the module docstring for the recipe. The EMA's momentum goes from
    `warmup_momentum_start(momentum[0], steps)` to `momentum[1]` (a cosine).

    Under torch.distributed every rank of `group` (default: the world) takes part, each on its own batches: the
    heads start from rank 0's weights, Sinkhorn-Knopp normalises over the group's batch and the head gradients
    are averaged, so all ranks end with the same heads (data-parallel warm-up)."""
    import torch.distributed as dist

    from geodino.train.optim import apply_optim_schedule, build_optimizer, clip_grad_per_module, param_groups
    from geodino.train.schedules import cosine_schedule

    world = dist.get_world_size(group) if dist.is_available() and dist.is_initialized() else 1
    model = getattr(backbone, "model", backbone)
    model.eval().requires_grad_(False)
    heads = nn.ModuleDict({"dino_head": dino, "ibot_head": ibot}).to(device).train()
    if world > 1:
        with torch.no_grad():
            for t in heads.state_dict().values():
                dist.broadcast(t, src=dist.get_global_rank(group, 0) if group is not None else 0, group=group)
    ema = copy.deepcopy(heads).eval().requires_grad_(False)
    dino_loss = DINOLoss(dino.out_dim, group=group)
    ibot_loss = IBOTPatchLoss(ibot.out_dim, group=group)
    # the pretraining optimizer pieces: AdamW groups (no decay on biases), official schedule shapes, per-head clip
    opt = build_optimizer(param_groups(heads, layerwise_decay=1.0, patch_embed_lr_mult=1.0), betas=(0.9, 0.999))
    # 10 % linear warm-up, none under 10 steps: a one-iteration ramp is lr 0 (linspace(0, lr, 1)), so a 1-step
    # warm-up returned the random heads and shorter ones lost their first step
    lrs = cosine_schedule(lr, lr * 1e-2, steps, warmup_iters=steps // 10)
    moms = cosine_schedule(warmup_momentum_start(momentum[0], steps), momentum[1], steps)
    log: list[dict[str, float]] = []
    from geodino.progress import progress_bar

    bar = progress_bar(range(steps), desc="teacher-head warm-up", disable=not progress, leave=False)
    for step in bar:
        apply_optim_schedule(opt, float(lrs[step]), weight_decay, float(lrs[step]))
        loss, loss_global, loss_ibot = _warmup_losses(
            model, heads, ema, next(batches), (dino_loss, ibot_loss), teacher_temp, n_global_crops, device
        )
        opt.zero_grad(set_to_none=True)
        loss.backward()
        if world > 1:  # data parallel: average the head gradients over the group
            for p in heads.parameters():
                if p.grad is not None:
                    dist.all_reduce(p.grad, group=group)
                    p.grad /= world
        if clip_grad:
            clip_grad_per_module(heads, clip_grad)
        opt.step()
        m = float(moms[step])
        with torch.no_grad():
            e: list[Tensor] = list(ema.parameters())
            s = [p.detach() for p in heads.parameters()]
            torch._foreach_lerp_(e, s, 1 - m)
        # one device-to-host copy for the three losses (each float() waited for the GPU on its own)
        rec = host_floats(
            {"step": step, "loss": loss.detach(), "dino": loss_global.detach(), "ibot": loss_ibot.detach()}
        )
        log.append(rec)
        if on_step is not None:
            on_step(step, rec)
        bar.set_postfix(loss=f"{rec['loss']:.3f}")
    # deep copies of `dino` and `ibot`: DINOHeads (a ModuleDict's entry types as nn.Module)
    return cast(DINOHead, ema["dino_head"]), cast(DINOHead, ema["ibot_head"]), log
