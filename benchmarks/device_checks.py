"""Correctness checks of the code that runs differently on a GPU, one PASS / FAIL / SKIP line each (gpu.sh part 0).

The CPU tests prove what torch shows there (the meta device, CPU autocast); these check the rest where it happens:

- `loss-terms-fp32`: the DINO and Gram loss terms under a bf16-mixed step's CUDA autocast equal their float32 values
  (the official losses are float32; the DINO einsum and the Gram matmul ran in bf16 before f3ad00f);
- `backward-autocast`: a backward called inside autocast sees it in CUDA's autograd thread (why the steps now call
  backward in `float32_region`, 5a9b39c), and inside `float32_region` it does not;
- `ssl-step-syncs`: one SSL step (bf16 autocast forward with drop path, Gram teacher, backward, per-module clipping,
  fused AdamW, EMA) waits for the device nowhere (`torch.cuda.set_sync_debug_mode`, after one warm-up step);
- `koleo-gathered-syncs`: KoLeo over groups spanning ranks (one process standing in for rank 1 of 2) waits nowhere;
- `distill-syncs`: the distillation forward/backward and the teacher-head warm-up's losses wait nowhere;
- `photometric-syncs`: the batched colour step on the device (`crops.photometric: device`) of a sensor stored
  B, G, R waits nowhere (its band reorder was a list index, built on the host and copied, before 37d1718);
- `probe-head-syncs`: training a probe head on cached features waits once per epoch (its losses read together), not
  at every step (two loss reads and blocking batch copies a step before 7823239);
- `embed-input-syncs`: the embed sweep's per-batch input scaling (`InputScale.apply_`) waits nowhere.
- `embed-mask-syncs`: the embed sweep's `_input` of a page-locked uint8 batch holding nodata (values and validity
  mask copied, scaled, normalised, masked) waits nowhere (the mask was a blocking copy of a numpy array, 4c67fe5).

    .venv/bin/python benchmarks/device_checks.py                  # CUDA when visible; else each check SKIPs
    .venv/bin/python benchmarks/device_checks.py --device cpu     # the autocast checks on the CPU (a smoke run)

Exit code 1 when a check fails.
"""

from __future__ import annotations

import copy
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from bench_cli import Parser

Check = Callable[[torch.device], tuple[bool, str]]


def _syncs(fn: Callable[[], Any]) -> list[str]:
    """The places `fn` makes the host wait for the CUDA device (`file:line` of each synchronizing call)."""
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        torch.cuda.set_sync_debug_mode("warn")
        try:
            fn()
        finally:
            torch.cuda.set_sync_debug_mode("default")
    return [f"{w.filename}:{w.lineno}" for w in seen if "synchroniz" in str(w.message)]


def _sync_verdict(where: list[str]) -> tuple[bool, str]:
    return (not where, "no device wait" if not where else f"{len(where)} device waits, first at {', '.join(where[:4])}")


def loss_terms_fp32(device: torch.device) -> tuple[bool, str]:
    from geodino.losses import DINOLoss, GramLoss

    g = torch.Generator().manual_seed(0)
    s, t = torch.randn(8, 16, 4096, generator=g), torch.softmax(torch.randn(2, 16, 4096, generator=g) / 0.04, -1)
    f = torch.randn(4, 64, 96, generator=g) + 2.0
    s, t, f = s.to(device), t.to(device), f.to(device)
    close = f + 0.05 * torch.randn_like(f)
    terms = {
        "dino": lambda: DINOLoss(4096)(s, t),
        "dino-global": lambda: DINOLoss(4096)(s[:2], t, ignore_diagonal=True),
        "gram": lambda: GramLoss()(close, f),
    }
    bad = []
    for name, term in terms.items():
        plain = term()
        with torch.autocast(device.type, dtype=torch.bfloat16):
            mixed = term()
        if mixed.dtype != torch.float32 or not torch.allclose(mixed, plain, rtol=1e-5, atol=0):
            bad.append(f"{name} {mixed.dtype} {float(mixed):.6g} vs float32 {float(plain):.6g}")
    return not bad, "; ".join(bad) or "DINO (both terms) and Gram equal their float32 values under bf16 autocast"


def backward_autocast(device: torch.device) -> tuple[bool, str]:
    from geodino.losses.float32 import float32_region

    def seen_in_backward(region: Any) -> bool:
        w = torch.randn(64, 64, device=device, requires_grad=True)
        seen: list[bool] = []
        w.register_hook(lambda grad: seen.append(torch.is_autocast_enabled(device.type)) or grad)
        with torch.autocast(device.type, dtype=torch.bfloat16):
            loss = (torch.randn(8, 64, device=device) @ w).float().square().mean()
            with region():
                loss.backward()
        return seen[0]

    inside = seen_in_backward(lambda: torch.autocast(device.type, dtype=torch.bfloat16))
    outside = seen_in_backward(lambda: float32_region(device.type))
    said = f"a backward called under autocast {'sees' if inside else 'does not see'} it; in float32_region: {outside}"
    return not outside, said


def _ssl_arch(device: torch.device) -> tuple[Any, dict[str, Any]]:
    from geodino.config import load_config
    from geodino.data.masking import collate_masks, sample_masks
    from geodino.train.recipe import SSLConfig
    from geodino.train.ssl import SSLMetaArch

    heads = [f"{h}.{k}={v}" for h in ("dino", "ibot") for k, v in (("head_n_prototypes", 256), ("head_hidden_dim", 64))]
    cfg = load_config(
        SSLConfig,
        None,
        [
            "student.arch=vit_small",
            "student.patch_size=16",
            "student.drop_path_rate=0.2",
            "student.overrides={depth: 2}",
            *heads,
            "dino.head_bottleneck_dim=32",
            "ibot.head_bottleneck_dim=32",
            "gram.use_loss=true",
            "gram.weight_start_iter=0",
            "optim.freeze_last_layer_iters=0",
            "schedules.lr.warmup_iters=10",
            "schedules.teacher_temp.warmup_iters=10",
            "monitor.every=100",
        ],
    )
    torch.manual_seed(0)
    arch = SSLMetaArch(cfg, total_iters=1000, global_batch_size=8).to(device)
    arch.snapshot_gram_from_teacher()
    g = torch.Generator().manual_seed(0)
    b = 4
    batch: dict[str, Any] = {
        "global_crops": torch.randn(2 * b, 3, 64, 64, generator=g),
        "local_crops": torch.randn(8 * b, 3, 32, 32, generator=g),
        "gram_crops": torch.randn(2 * b, 3, 128, 128, generator=g),
    }
    masks, upper = sample_masks(2 * b, (4, 4), np.random.default_rng(0))
    batch.update(collate_masks(masks, upper))
    return arch, {k: v.to(device) if torch.is_tensor(v) else v for k, v in batch.items()}  # as Lightning moves it


def ssl_step_syncs(device: torch.device) -> tuple[bool, str]:
    from geodino.losses.float32 import float32_region
    from geodino.train.optim import apply_optim_schedule, build_optimizer, clip_grad_per_module

    arch, batch = _ssl_arch(device)
    arch.train()
    opt = build_optimizer(arch.param_groups())

    def step(it: int) -> None:  # SSLModule.training_step without Lightning and without its NaN guard (a read)
        s = arch.schedules.at(it)
        apply_optim_schedule(opt, s["lr"], s["weight_decay"], s["last_layer_lr"])
        with torch.autocast(device.type, dtype=torch.bfloat16):
            loss, _ = arch(batch, it)
        opt.zero_grad(set_to_none=True)
        with float32_region(device.type):
            loss.backward()
        clip_grad_per_module(arch.student, 3.0)
        opt.step()
        arch.update_teacher(float(s["momentum"]))
        arch.maybe_refresh_gram(it)

    step(1)  # warm-up: lazy initialisation (cuBLAS handles, optimizer state) may wait once
    return _sync_verdict(_syncs(lambda: step(2)))


def koleo_gathered_syncs(device: torch.device) -> tuple[bool, str]:
    import torch.distributed.nn.functional as dist_fn

    import geodino.losses.koleo as koleo

    saved = koleo.group_world_size, koleo.group_rank, dist_fn.all_gather
    koleo.group_world_size, koleo.group_rank = (lambda group=None: 2), (lambda group=None: 1)  # type: ignore[assignment]
    dist_fn.all_gather = lambda x, group=None: [x + 1.0, x]  # type: ignore[assignment]
    try:
        x = torch.randn(16, 64, device=device, requires_grad=True)
        loss = koleo.KoLeoLossDistributed(group_size=32)
        loss(x).backward()  # warm-up
        return _sync_verdict(_syncs(lambda: loss(x).backward()))
    finally:
        koleo.group_world_size, koleo.group_rank, dist_fn.all_gather = saved  # type: ignore[assignment]


def distill_syncs(device: torch.device) -> tuple[bool, str]:
    from geodino.data.masking import collate_masks, sample_masks
    from geodino.losses import DINOLoss, IBOTPatchLoss
    from geodino.models import build_model
    from geodino.models.heads import DINOHead
    from geodino.train.distill_arch import DistillMetaArch, DistillStudent
    from geodino.train.teacher_heads import _warmup_losses

    torch.manual_seed(0)

    def vit(depth: int) -> Any:
        return build_model("vit_small", patch_size=16, depth=depth)

    def heads() -> tuple[DINOHead, DINOHead]:
        return DINOHead(384, 256, 64, 32), DINOHead(384, 192, 64, 32)

    teacher, student = vit(2), vit(1)
    arch = DistillMetaArch(teacher, *heads(), {"s": DistillStudent(student, *heads())}).to(device)
    g = torch.Generator().manual_seed(0)
    b = 4
    masks, upper = sample_masks(2 * b, (4, 4), np.random.default_rng(0))
    host = {"global_crops": torch.randn(2 * b, 3, 64, 64, generator=g), "local_crops": torch.randn(8 * b, 3, 32, 32)}
    host.update({k: v for k, v in collate_masks(masks, upper).items() if k != "upperbound"})
    host = {k: v.pin_memory() if torch.is_tensor(v) and device.type == "cuda" else v for k, v in host.items()}
    moved = {k: v.to(device, non_blocking=True) if torch.is_tensor(v) else v for k, v in host.items()}

    def step() -> None:
        with torch.autocast(device.type, dtype=torch.bfloat16):
            arch.forward_backward(moved, teacher_temp=0.07)

    warm = torch.nn.ModuleDict(dict(zip(("dino_head", "ibot_head"), heads()))).to(device)
    losses = (DINOLoss(256), IBOTPatchLoss(192))

    def warmup() -> None:
        loss, _, _ = _warmup_losses(teacher, warm, copy.deepcopy(warm), host, losses, 0.07, 2, device)
        loss.backward()

    step()
    warmup()
    where = _syncs(step) + _syncs(warmup)
    return _sync_verdict(where)


def photometric_syncs(device: torch.device) -> tuple[bool, str]:
    from geodino.data.augment import draw_rgb_params
    from geodino.data.config import CropsConfig
    from geodino.data.crops import MultiCropTransform
    from geodino.data.sensors import Sensor

    cfg = CropsConfig(jitter_prob=1.0, grayscale_prob=0.2, hue=0.1)
    bgr = Sensor("bgr", ("blue", "green", "red"), 1.0, (0.3, 0.4, 0.5), (0.2, 0.2, 0.2), True)  # stored B, G, R
    tf = MultiCropTransform(cfg, bgr)
    rng = np.random.default_rng(0)
    params = torch.from_numpy(np.stack([draw_rgb_params(rng, cfg, 0.5, True) for _ in range(16)])).to(device)
    x = torch.rand(16, 3, 224, 224, device=device)
    tf.finish(x, params)
    return _sync_verdict(_syncs(lambda: tf.finish(x, params)))


def probe_head_syncs(device: torch.device) -> tuple[bool, str]:
    from geodino.backbones import load_backbone
    from geodino.eval.head_training import FeatureStore, to_device, train_head

    bb = load_backbone("arch:vit_small?seed=0", device=str(device))
    tiles = torch.rand(32, 3, 64, 64, generator=torch.Generator().manual_seed(0))
    store = FeatureStore.from_tiles(bb, tiles, "last", "memory", progress=False)
    targets = torch.randn(32, 1)

    def loss_fn(head: torch.nn.Module, maps: list[torch.Tensor], cls: list[torch.Tensor], idx: list[int]) -> Any:
        return ((head(cls[-1]) - to_device(targets[idx], device)) ** 2).mean()

    def train(epochs: int) -> None:
        head = torch.nn.Linear(384, 1).to(device)
        train_head(head, store, loss_fn, epochs=epochs, batch_size=4, lr=1e-3, weight_decay=0.0, seed=0, progress=False)

    train(1)  # warm-up
    where = _syncs(lambda: train(2))  # 16 steps: the losses are read once per epoch (2 reads), no step waits
    ok = len(where) <= 2
    return ok, f"{len(where)} device waits in 2 epochs of 8 steps" + (
        "" if ok else f", first at {', '.join(where[:4])}"
    )


def embed_input_syncs(device: torch.device) -> tuple[bool, str]:
    from geodino.embed.input_scaling import InputScale

    scale = InputScale(np.full((4, 1, 1), 1e-4, np.float32), np.full((4, 1, 1), -0.1, np.float32))
    x = torch.rand(8, 4, 256, 256, device=device)
    scale.apply_(x)
    return _sync_verdict(_syncs(lambda: scale.apply_(x)))


def embed_mask_syncs(device: torch.device) -> tuple[bool, str]:
    from types import SimpleNamespace

    from geodino.embed.input_scaling import InputScale
    from geodino.embed.sweep import Sweeper, _Tiles

    rng = np.random.default_rng(0)
    tiles = _Tiles(4, pin=device.type == "cuda")
    for j in range(4):  # uint8 tiles, three of them with nodata rows: the batch is masked
        valid = np.ones((256, 256), bool)
        valid[: 16 * j] = False
        tiles.add(j, rng.integers(0, 256, (3, 256, 256), dtype=np.uint8), valid)
    sweeper = Sweeper.__new__(Sweeper)  # only what `_input` reads
    sweeper.device, sweeper.scale = device, InputScale(np.float32(1 / 255))
    sweeper.bb = SimpleNamespace(normalize=lambda x: x.sub_(0.5))
    sweeper._input(tiles)  # warm-up: the scale's device tensors are made once per run
    return _sync_verdict(_syncs(lambda: sweeper._input(tiles)))


CHECKS: dict[str, tuple[Check, bool]] = {  # name: (check, needs CUDA)
    "loss-terms-fp32": (loss_terms_fp32, False),
    "backward-autocast": (backward_autocast, False),
    "ssl-step-syncs": (ssl_step_syncs, True),
    "koleo-gathered-syncs": (koleo_gathered_syncs, True),
    "distill-syncs": (distill_syncs, True),
    "photometric-syncs": (photometric_syncs, True),
    "probe-head-syncs": (probe_head_syncs, True),
    "embed-input-syncs": (embed_input_syncs, True),
    "embed-mask-syncs": (embed_mask_syncs, True),
}


def main() -> int:
    p = Parser(description=__doc__.splitlines()[0])
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu", help="cuda (default) or cpu")
    device = torch.device(p.parse_args().device)
    failed = False
    for name, (check, needs_cuda) in CHECKS.items():
        if needs_cuda and device.type != "cuda":
            print(f"SKIP {name}: counts device waits, which only CUDA reports")
            continue
        try:
            ok, said = check(device)
        except Exception as exc:  # a check that cannot run is a failure of that check, not of the others
            ok, said = False, f"raised {type(exc).__name__}: {exc}"
        failed |= not ok
        print(f"{'PASS' if ok else 'FAIL'} {name}: {said}", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
