"""A small stand-in for `SSLMetaArch` and the SSL loader, to test the trainer plumbing in isolation.

It has the same surface (student/teacher ModuleDicts with backbone + dino_head + ibot_head, `forward(batch,
iteration) -> (loss, logs)`, `update_teacher`, `maybe_refresh_gram`, `param_groups`) and a real geodino ViT,
with a simple cross-entropy between student and teacher prototypes. Its data is a pure function of
(seed, sample index), like the real loader.
"""

from __future__ import annotations

import copy
from typing import Any

import torch
from torch import nn

from geodino.models import build_model
from geodino.models.heads import DINOHead


def tiny_backbone(**kw: Any) -> nn.Module:
    opts = dict(depth=2, drop_path_rate=0.0, pos_embed_rope_rescale_coords=None)
    opts.update(kw)
    return build_model("vit_tiny", patch_size=8, in_chans=3, **opts)


class StandInArch(nn.Module):
    def __init__(self, gram: bool = False, nan_at: int | None = None) -> None:
        super().__init__()
        bb = tiny_backbone()
        d = bb.embed_dim
        self.student = nn.ModuleDict(
            {"backbone": bb, "dino_head": DINOHead(d, 32, 32, 16), "ibot_head": DINOHead(d, 32, 32, 16)}
        )
        self.teacher = copy.deepcopy(self.student)
        for p in self.teacher.parameters():
            p.requires_grad = False
        self.gram_teacher = copy.deepcopy(self.teacher["backbone"]) if gram else None
        self.nan_at = nan_at
        self.refreshes: list[int] = []

    def forward(self, batch: dict[str, Any], iteration: int) -> tuple[torch.Tensor, dict[str, Any]]:
        x = batch["global_crops"]
        s = self.student["backbone"].forward_features(x)
        with torch.no_grad():
            t = self.teacher["backbone"].forward_features(x)
            tc = torch.softmax(self.teacher["dino_head"](t["x_norm_clstoken"]) / 0.05, -1)
            tp = torch.softmax(self.teacher["ibot_head"](t["x_norm_patchtokens"]) / 0.05, -1)
        sc = torch.log_softmax(self.student["dino_head"](s["x_norm_clstoken"]) / 0.1, -1)
        sp = torch.log_softmax(self.student["ibot_head"](s["x_norm_patchtokens"]) / 0.1, -1)
        dino = -(tc * sc).sum(-1).mean()
        ibot = -(tp * sp).sum(-1).mean()
        loss = dino + ibot
        if self.nan_at is not None and iteration >= self.nan_at:
            loss = loss * float("nan")
        return loss, {"dino_global_loss": dino.detach(), "ibot_loss": ibot.detach()}

    @torch.no_grad()
    def update_teacher(self, momentum: float) -> None:
        for k in self.student:
            sp = list(self.student[k].parameters())
            tp = list(self.teacher[k].parameters())
            torch._foreach_mul_(tp, momentum)
            torch._foreach_add_(tp, sp, alpha=1 - momentum)

    def maybe_refresh_gram(self, iteration: int) -> None:
        self.refreshes.append(iteration)

    def param_groups(self) -> list[dict[str, Any]]:
        groups = []
        for name, m in self.student.items():
            for pn, p in m.named_parameters():
                groups.append(
                    {
                        "params": [p],
                        "lr_multiplier": 0.5 if name == "backbone" else 1.0,
                        "wd_multiplier": 0.0 if p.ndim == 1 else 1.0,
                        "is_last_layer": "last_layer" in pn,
                    }
                )
        return groups


def schedules(it: int) -> dict[str, float]:
    return {"lr": 1e-3, "last_layer_lr": 0.0 if it < 2 else 1e-3, "weight_decay": 0.04, "momentum": 0.9}


def batch_for(seed: int, step: int, rank: int, world: int, batch_size: int) -> dict[str, Any]:
    """Images of samples step·B·w + r·B + [0, B), each a pure function of (seed, sample index)."""
    imgs = []
    for i in range(step * batch_size * world + rank * batch_size, step * batch_size * world + (rank + 1) * batch_size):
        g = torch.Generator().manual_seed(seed * 100_003 + i)
        imgs.append(torch.randn(3, 16, 16, generator=g))
    return {"global_crops": torch.stack(imgs), "step": step}


class StandInLoader:
    """An endless iterable of batches starting at `start_step`."""

    def __init__(self, seed: int, batch_size: int, start_step: int, rank: int, world_size: int) -> None:
        self.seed, self.b, self.start, self.rank, self.world = seed, batch_size, start_step, rank, world_size

    def __iter__(self):
        step = self.start
        while True:
            yield batch_for(self.seed, step, self.rank, self.world, self.b)
            step += 1


def loader_factory(seed: int = 0, batch_size: int = 4):
    def make(start_step: int, rank: int, world_size: int) -> StandInLoader:
        return StandInLoader(seed, batch_size, start_step, rank, world_size)

    return make
