"""Images/s of one SSL training step: geodino's DINOv3 step vs the same losses assembled from lightly's components.

Both sides train the same geodino ViT-S/16 (same initial weights) on the same batch (2x224 global + 8x96 local
crops per image, the same iBOT masks) with DINO + iBOT + KoLeo, an EMA teacher, per-module gradient clipping
and AdamW. One step = teacher forward, student forward, losses, backward, clipping, optimizer step, EMA update.

- geodino: `SSLMetaArch` (one list-of-crops student forward, Sinkhorn-Knopp teacher targets, official
  2/18-16/18 bookkeeping, fused parameter groups with layer-wise lr decay).
- lightly 1.6: `DINOv2ProjectionHead` (x2), `DINOLoss`, `IBOTPatchLoss`, `KoLeoLoss`, `update_momentum`,
  `get_weight_decay_parameters`, as in lightly's DINOv2 example: the student runs once on the global crops
  (masked) and once on the local crops; teacher targets use lightly's mean centering (it has no Sinkhorn-Knopp).
Mask generation is the data loader's job on both sides and is not timed. Steps alternate between the two so that
load from other processes hits both alike; the ratio is of the two medians over steps.

    .venv/bin/python benchmarks/train_step.py            # ViT-S/16, batch 4, 4 timed steps each
    .venv/bin/python benchmarks/train_step.py --batch 8 --steps 6 --prototypes 65536
    .venv/bin/python benchmarks/train_step.py --peer-fused   # lightly's side with the fused AdamW geodino uses

geodino's optimizer is torch's fused AdamW; lightly's example uses torch's default AdamW, which the ratio compares
against by default (the obvious alternative). On this CPU the fused kernel alone is worth ~0.2 s of a ~5.5 s batch-4
step (docs/pretraining.md), about the whole lead: `--peer-fused` gives lightly's side the same kernel, to show what
is left. The table gives each side's fastest and slowest step and the smallest and largest per-step ratio.
"""

from __future__ import annotations

import statistics
import time

import numpy as np
import torch
from bench_cli import Parser, positive
from torch import nn


def _batch(b: int, seed: int = 0, gsize: int = 224, lsize: int = 96, n_local: int = 8) -> dict:
    from geodino.data.masking import collate_masks, sample_masks

    g = torch.Generator().manual_seed(seed)
    out = {
        "global_crops": torch.randn(2 * b, 3, gsize, gsize, generator=g),
        "local_crops": torch.randn(n_local * b, 3, lsize, lsize, generator=g),
    }
    grid = gsize // 16
    masks, ub = sample_masks(2 * b, (grid, grid), np.random.default_rng(seed))
    out.update(collate_masks(masks, ub))
    return out


class GeodinoStep:
    """The geodino step as the Lightning module runs it."""

    def __init__(self, k: int, arch: str = "vit_small") -> None:
        from geodino.config import load_config
        from geodino.train.optim import build_optimizer
        from geodino.train.recipe import SSLConfig
        from geodino.train.ssl import SSLMetaArch

        cfg = load_config(
            SSLConfig,
            None,
            [
                f"student.arch={arch}",
                "student.drop_path_rate=0.0",
                f"dino.head_n_prototypes={k}",
                f"ibot.head_n_prototypes={k}",
                "schedules.lr.warmup_iters=10",
                "schedules.teacher_temp.warmup_iters=10",
                "optim.freeze_last_layer_iters=0",
            ],
        )
        self.arch = SSLMetaArch(cfg, total_iters=1000, global_batch_size=8)
        self.opt = build_optimizer(self.arch.param_groups(), betas=(0.9, 0.999))
        self.it = 1

    def __call__(self, batch: dict) -> float:
        from geodino.train.optim import apply_optim_schedule, clip_grad_per_module

        s = self.arch.schedules.at(self.it)
        apply_optim_schedule(self.opt, s["lr"], s["weight_decay"], s["last_layer_lr"])
        loss, _ = self.arch(batch, self.it)
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        clip_grad_per_module(self.arch.student, 3.0)
        self.opt.step()
        self.arch.update_teacher(s["momentum"])
        self.it += 1
        return float(loss.detach())


class LightlyStep:
    """The same recipe assembled from lightly's components, on the same ViT."""

    def __init__(self, geodino_arch: nn.Module, k: int, fused: bool = False) -> None:
        import copy

        from lightly.loss import DINOLoss, IBOTPatchLoss, KoLeoLoss
        from lightly.models.modules import DINOv2ProjectionHead
        from lightly.models.utils import get_weight_decay_parameters

        def build() -> nn.ModuleDict:
            backbone = copy.deepcopy(geodino_arch.student["backbone"])
            d = backbone.embed_dim
            heads = {n: DINOv2ProjectionHead(d, 2048, 256, k) for n in ("dino_head", "ibot_head")}
            return nn.ModuleDict({"backbone": backbone, **heads})

        self.student = build()
        self.teacher = build()  # weight-normed heads cannot be deep-copied
        self.teacher.load_state_dict(self.student.state_dict())
        self.teacher.requires_grad_(False)
        self.teacher.eval()
        self.dino_loss = DINOLoss(output_dim=k, teacher_temp=0.04)
        self.ibot_loss = IBOTPatchLoss(output_dim=k, teacher_temp=0.04)
        self.koleo = KoLeoLoss()
        decay, no_decay = get_weight_decay_parameters(self.student.values())
        self.opt = torch.optim.AdamW(
            [{"params": decay, "weight_decay": 0.04}, {"params": no_decay, "weight_decay": 0.0}],
            lr=1e-4,
            fused=fused or None,  # lightly's example: the default AdamW; --peer-fused: the fused one geodino uses
        )

    def __call__(self, batch: dict) -> float:
        from lightly.models.utils import update_momentum

        g, loc, masks = batch["global_crops"], batch["local_crops"], batch["masks"]
        b2 = g.shape[0]
        grid = g.shape[-1] // 16
        with torch.no_grad():
            t = self.teacher["backbone"](g, is_training=True)
            t_cls = self.teacher["dino_head"](t["x_norm_clstoken"])
            t_patch = self.teacher["ibot_head"](t["x_norm_patchtokens"][masks])
        sg = self.student["backbone"](g, masks=masks, is_training=True)
        sl = self.student["backbone"](loc, is_training=True)
        s_cls = self.student["dino_head"](torch.cat([sg["x_norm_clstoken"], sl["x_norm_clstoken"]]))
        s_patch = self.student["ibot_head"](sg["x_norm_patchtokens"][masks])
        dino = self.dino_loss(list(t_cls.chunk(2)), list(s_cls.chunk(s_cls.shape[0] // (b2 // 2))))
        ibot = self.ibot_loss(t_patch, s_patch, masks.view(b2, grid, grid))
        koleo = sum(self.koleo(c) for c in sg["x_norm_clstoken"].chunk(2)) / 2
        loss = dino + ibot + 0.2 * koleo
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        for m in self.student.values():
            torch.nn.utils.clip_grad_norm_(m.parameters(), 3.0)
        self.opt.step()
        for key in self.student:
            update_momentum(self.student[key], self.teacher[key], 0.992)
        return float(loss.detach())


def main(argv: list[str] | None = None) -> None:
    p = Parser(description=__doc__.splitlines()[0])
    p.add_argument("--batch", type=positive, default=4, help="images per step")
    p.add_argument("--steps", type=positive, default=4, help="timed steps per side")
    p.add_argument("--warmup", type=int, default=1, help="untimed steps per side")
    p.add_argument("--prototypes", type=positive, default=65536, help="K of both heads (official 65536)")
    p.add_argument("--threads", type=int, default=0, help="torch threads (0: leave torch's default)")
    p.add_argument(
        "--peer-fused",
        action="store_true",
        help="give the lightly side torch's fused AdamW too (geodino's optimizer; one flag a lightly user could set)",
    )
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    batch = _batch(args.batch)
    geo = GeodinoStep(args.prototypes)
    lig = LightlyStep(geo.arch, args.prototypes, fused=args.peer_fused)
    times: dict[str, list[float]] = {"geodino": [], "lightly": []}
    from tqdm import tqdm

    for i in tqdm(range(args.warmup + args.steps), desc="steps (each side)"):
        for name, step in (("geodino", geo), ("lightly", lig)) if i % 2 == 0 else (("lightly", lig), ("geodino", geo)):
            t0 = time.perf_counter()
            loss = step(batch)
            dt = time.perf_counter() - t0
            if not np.isfinite(loss):
                raise SystemExit(f"{name} produced a non-finite loss")
            if i >= args.warmup:
                times[name].append(dt)
    from versions import versions

    med = {k: statistics.median(v) for k, v in times.items()}
    ips = {k: args.batch / v for k, v in med.items()}
    print(
        f"\nSSL training step, ViT-S/16, batch {args.batch} x (2x224 + 8x96), K={args.prototypes}, "
        f"{torch.get_num_threads()} threads, median of {args.steps} steps, lightly side with "
        f"{'fused' if args.peer_fused else 'default'} AdamW; {versions('torch', 'lightly')}"
    )
    # per-step ratios: the two sides of step i ran back to back, so they saw about the same load
    per_step = [lt / gt for gt, lt in zip(times["geodino"], times["lightly"])]
    print("| pipeline | s/step (median) | s/step min-max | images/s |")
    print("|---|---|---|---|")
    for k in ("geodino", "lightly"):
        print(f"| {k} | {med[k]:.2f} | {min(times[k]):.2f}-{max(times[k]):.2f} | {ips[k]:.2f} |")
    print(
        f"| **ratio geodino / lightly** | | per step {min(per_step):.2f}-{max(per_step):.2f} | "
        f"**{ips['geodino'] / ips['lightly']:.2f}** (target >= 1.0) |"
    )


if __name__ == "__main__":
    main()
