"""Training schedules as numpy arrays indexed by iteration (as the official code does).

Two shapes, mirroring `dinov3/train/cosine_lr_scheduler.py`:
- `cosine_schedule` (v1, DINOv2 `CosineScheduler`): optional zeros, linear warmup start->peak (endpoint included),
  then a cosine peak->end over the remaining iterations; indexing past the end returns `end`.
- `linear_warmup_cosine_decay` (v2, DINOv3 `schedules:` block): linear warmup (endpoint excluded), a cosine over
  `cosine_iters` (default: the rest), then a constant tail at `end`; constant after warmup when peak == end.
`hold_iters` (not in the official code; 0 keeps its schedules exact) holds the peak after the warmup before the
cosine starts, i.e. warmup-stable-decay: a flat run that still ends on a short decay.
`Schedules.build(cfg, total_iters, global_batch_size)` builds lr, last-layer lr, weight decay, teacher momentum,
teacher temperature, the local-DINO weight and the Gram weight from an `SSLConfig`.

Lengths (`resolve_iters`): an int is a number of iterations; a float in [0, 1] is a fraction of the run (rounded
to the nearest iteration), so a short run follows the same shape as a long one; `schedules.reference_iters`
rescales every integer length by `total_iters / reference_iters` (an official config written for 125 000
iterations, run for 600). The lr scaling rule multiplies what the official code multiplies: v1 the peak only
(`apply_scaling_rules_to_cfg` scales `optim.lr`; `min_lr` and the warmup start are not scaled), v2 peak and end
(`build_schedulers_v2`; `start` is not scaled).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from geodino.errors import ConfigError, plural

if TYPE_CHECKING:
    from geodino.train.recipe import ScheduleConfig, SSLConfig

__all__ = [
    "Schedule",
    "Schedules",
    "cosine_schedule",
    "linear_warmup_cosine_decay",
    "lr_scale",
    "ramp_schedule",
    "resolve_iters",
]


def cosine_schedule(
    base_value: float,
    final_value: float,
    total_iters: int,
    warmup_iters: int = 0,
    start_warmup_value: float = 0.0,
    freeze_iters: int = 0,
    trunc_extra: float = 0.0,
) -> np.ndarray:
    """v1 schedule (DINOv2/DINOv3 `CosineScheduler.schedule`), float64 array of length `total_iters`."""
    freeze = np.zeros(freeze_iters)
    warmup = np.linspace(start_warmup_value, base_value, warmup_iters)
    n = total_iters - warmup_iters - freeze_iters
    if n < 0:
        raise ValueError(f"warmup ({warmup_iters}) + freeze ({freeze_iters}) iterations exceed total {total_iters}")
    if trunc_extra == 0.0:
        iters = np.arange(n)
        cos = final_value + 0.5 * (base_value - final_value) * (1 + np.cos(np.pi * iters / max(n, 1)))
    else:
        t = np.linspace(0, np.pi, int((1 + trunc_extra) * n))[:n]
        c = (np.cos(t) + 1) / 2
        c = (c - c[-1]) / (1 - c[-1])
        cos = c * (base_value - final_value) + final_value
    return np.concatenate((freeze, warmup, cos)).astype(np.float64)


def linear_warmup_cosine_decay(
    start: float,
    peak: float,
    end: float,
    warmup_iterations: int,
    total_iterations: int,
    cosine_iterations: int | None = None,
) -> np.ndarray:
    """v2 schedule (DINOv3 `linear_warmup_cosine_decay`): warmup, cosine, constant tail at `end`."""
    linear = np.linspace(start, peak, warmup_iterations, endpoint=False)
    if cosine_iterations is None:
        cosine_iterations = total_iterations - warmup_iterations
    cosine = (np.cos(np.linspace(0, np.pi, cosine_iterations)) + 1) / 2
    cosine = (peak - end) * cosine + end
    remaining = total_iterations - cosine_iterations - warmup_iterations
    if remaining < 0 or cosine_iterations < 0:
        raise ValueError(
            f"warmup ({warmup_iterations}) + cosine ({cosine_iterations}) iterations exceed total {total_iterations}"
        )
    return np.concatenate([linear, cosine, np.full((remaining,), fill_value=end)]).astype(np.float64)


def ramp_schedule(initial: float, final: float, start_iter: int, ramp_iters: int, total_iters: int) -> np.ndarray:
    """`initial` until `start_iter`, then a cosine to `final` over `ramp_iters`, then `final`.

    This is how the official Gram stage sets its weights (`start=peak=0, end=2, warmup=1M, cosine=1k`), i.e.
    `linear_warmup_cosine_decay(initial, initial, final, start_iter, total, ramp_iters)`.
    """
    start_iter = min(max(int(start_iter), 0), total_iters)
    ramp_iters = min(max(int(ramp_iters), 0), total_iters - start_iter)
    return linear_warmup_cosine_decay(initial, initial, final, start_iter, total_iters, ramp_iters)


class Schedule:
    """A numpy schedule that returns its last value past the end (like `CosineScheduler.__getitem__`)."""

    def __init__(self, values: np.ndarray, final: float | None = None) -> None:
        self.values = np.asarray(values, dtype=np.float64)
        self.final = float(final if final is not None else (self.values[-1] if len(self.values) else 0.0))

    def __getitem__(self, it: int) -> float:
        it = int(it)
        if it < 0:
            raise IndexError(f"negative iteration {it}")
        return float(self.values[it]) if it < len(self.values) else self.final

    def __len__(self) -> int:
        return len(self.values)


def lr_scale(rule: str, global_batch_size: int) -> float:
    """Official lr scaling rules: `sqrt_wrt_1024` (4·sqrt(B/1024)), `linear_wrt_256` (B/256), `none` (1)."""
    if rule == "sqrt_wrt_1024":
        return 4.0 * math.sqrt(global_batch_size / 1024.0)
    if rule == "linear_wrt_256":
        return global_batch_size / 256.0
    if rule in ("none", "", None):
        return 1.0
    raise ConfigError(f"optim.scaling_rule={rule!r} is not one of 'sqrt_wrt_1024', 'linear_wrt_256', 'none'")


def resolve_iters(value: int | float, total: int, key: str, reference_iters: int | None = None) -> int:
    """A schedule length in iterations: an int as given, a float in [0, 1] as a fraction of `total`.

    An int is rescaled by `total / reference_iters` when `reference_iters` is set (rounded to the nearest
    iteration, halves up); with `reference_iters == total` or unset it is returned unchanged. Any other value
    (a float outside [0, 1] such as 12500.0 or 1.5, a bool, a string) is a ConfigError naming `key`.
    """
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigError(f"{key}={value!r} is not a length: write an integer for iterations or a fraction in [0, 1]")
    if isinstance(value, float):
        if not 0.0 <= value <= 1.0:
            raise ConfigError(
                f"{key}={value!r} is neither iterations nor a fraction of the run: "
                "write an integer for iterations or a fraction in [0, 1]"
            )
        return math.floor(value * total + 0.5)
    if value < 0:
        raise ConfigError(f"{key}={value} must be >= 0: write an integer for iterations or a fraction in [0, 1]")
    if reference_iters is None:
        return int(value)
    return (2 * int(value) * total + reference_iters) // (2 * reference_iters)  # exact, halves up


def _from_config(
    kind: str,
    sc: ScheduleConfig,
    total: int,
    key: str,
    scale: float = 1.0,
    truncate: bool = False,
    reference_iters: int | None = None,
    prefix: str = "",
    length_key: str = "trainer.max_steps",
) -> Schedule:
    if kind not in ("v1", "v2"):
        raise ConfigError(
            f"{prefix}schedules.kind={kind!r} is not 'v1' (cosine over the run) or 'v2' (warmup, cosine, constant)"
        )
    warmup = resolve_iters(sc.warmup_iters, total, f"{prefix}schedules.{key}.warmup_iters", reference_iters)
    cosine = (
        None
        if sc.cosine_iters is None
        else resolve_iters(sc.cosine_iters, total, f"{prefix}schedules.{key}.cosine_iters", reference_iters)
    )
    freeze = resolve_iters(sc.freeze_iters, total, f"{prefix}schedules.{key}.freeze_iters", reference_iters)
    hold = resolve_iters(sc.hold_iters, total, f"{prefix}schedules.{key}.hold_iters", reference_iters)
    cosine_given = sc.cosine_iters
    if kind == "v1":  # its cosine runs over what warmup, freeze and hold leave: cosine_iters is not used, nor counted
        cosine = cosine_given = None
    used = warmup + (cosine or 0) + freeze + hold
    if used > total:
        # fractions summing to <= 1 can overshoot by rounding each part: take the excess (at most one iteration
        # per fraction) off the fractional parts, cosine first, never off a length given in iterations
        given = (cosine_given, sc.warmup_iters, sc.freeze_iters, sc.hold_iters)
        parts = [cosine or 0, warmup, freeze, hold]
        fractional = [isinstance(v, float) for v in given]
        exact = sum(v * total if isinstance(v, float) else n for v, n in zip(given, parts))
        if any(fractional) and exact <= total + 1e-6:
            excess = used - total
            for i, f in enumerate(fractional):
                cut = min(excess, parts[i]) if f else 0
                parts[i] -= cut
                excess -= cut
            cosine = parts[0] if cosine is not None else None
            warmup, freeze, hold = parts[1], parts[2], parts[3]
            used = warmup + (cosine or 0) + freeze + hold
    if used > total and truncate:
        # the run ends inside the warmup (official v1 teacher temperature): compute the full schedule and keep
        # its first `total` values
        full = _build(kind, sc, scale, used, warmup, cosine, freeze, hold)
        return Schedule(full.values[:total], final=full.final)
    if used > total:
        counted = "warmup_iters + " + ("" if kind == "v1" else "cosine_iters + ") + "freeze_iters + hold_iters"
        raise ConfigError(
            f"{prefix}schedules.{key}: {counted} = {used} exceeds the "
            f"run's {plural(total, 'iteration')}; lower them, write them as fractions of the run (e.g. 0.1), set "
            f"{prefix}schedules.reference_iters to the run length they were written for (the config's "
            f"{length_key}) so that they shrink with the run, or train longer"
        )
    return _build(kind, sc, scale, total, warmup, cosine, freeze, hold)


def _build(
    kind: str,
    sc: ScheduleConfig,
    scale: float,
    total: int,
    warmup: int,
    cosine: int | None,
    freeze: int,
    hold: int = 0,
) -> Schedule:
    # the lr scaling rule as official: v1 scales the peak only (`optim.lr`; `min_lr` and the warmup start are
    # not scaled), v2 the peak and the end (`build_schedulers_v2`; `start` is not scaled)
    if kind == "v1":
        peak, end = sc.peak * scale, sc.end
        values = cosine_schedule(peak, end, total - hold, warmup, sc.start, freeze, sc.trunc_extra)
        return Schedule(_hold(values, freeze + warmup, hold, peak), final=end)
    peak, end = sc.peak * scale, sc.end * scale
    # freeze_iters zeros come first and the warmup follows whole, as v1's (written over the warmup's first
    # iterations, `freeze < warmup` jumped from 0 to a part of the peak and shortened the warmup by `freeze`)
    values = linear_warmup_cosine_decay(sc.start, peak, end, warmup, total - hold - freeze, cosine)
    values = np.concatenate([np.zeros(freeze), values])
    return Schedule(_hold(values, freeze + warmup, hold, peak), final=end)


def _hold(values: np.ndarray, at: int, hold: int, peak: float) -> np.ndarray:
    """`values` with `hold` iterations at `peak` inserted at index `at` (the stable phase of warmup-stable-decay:
    the cosine then runs over what is left, so a short final decay settles a run that trained at its peak)."""
    return np.concatenate([values[:at], np.full(hold, peak), values[at:]]) if hold else values


@dataclass
class Schedules:
    """Every per-iteration value of a run; `at(it)` gives them as a dict (logged, and applied to the optimizer)."""

    lr: Schedule
    last_layer_lr: Schedule
    weight_decay: Schedule
    momentum: Schedule
    teacher_temp: Schedule
    dino_local_weight: Schedule
    gram_weight: Schedule
    total_iters: int

    @classmethod
    def build(
        cls,
        cfg: SSLConfig,
        total_iters: int,
        global_batch_size: int = 1024,
        prefix: str = "",
        length_key: str = "trainer.max_steps",
    ) -> Schedules:
        """Schedules for `total_iters` iterations; the lr is scaled by `cfg.optim.scaling_rule` (global batch).

        `prefix` is where `cfg` sits in the user's config (`ssl.` in pretraining), so that errors name full keys;
        `length_key` is the key that sets the run's length there (`train.max_steps` in distillation)."""
        if total_iters <= 0:
            raise ConfigError(f"total iterations must be > 0, got {total_iters}")
        s = cfg.schedules
        kind = s.kind
        ref = s.reference_iters
        if ref is not None and (isinstance(ref, bool) or not isinstance(ref, int) or ref < 1):
            raise ConfigError(
                f"{prefix}schedules.reference_iters={ref!r} must be a positive integer (the run length the iteration "
                "counts were written for) or null"
            )
        scale = lr_scale(cfg.optim.scaling_rule, global_batch_size)
        lr = _from_config(
            kind, s.lr, total_iters, "lr", scale, reference_iters=ref, prefix=prefix, length_key=length_key
        )
        freeze = resolve_iters(
            cfg.optim.freeze_last_layer_iters, total_iters, f"{prefix}optim.freeze_last_layer_iters", ref
        )
        if freeze > total_iters:
            raise ConfigError(
                f"{prefix}optim.freeze_last_layer_iters={freeze} exceeds the run's {plural(total_iters, 'iteration')}"
            )
        last = lr.values.copy()
        last[:freeze] = 0.0
        dino = cfg.dino
        gram = cfg.gram

        def iters(value: int | float, key: str) -> int:
            return resolve_iters(value, total_iters, prefix + key, ref)

        return cls(
            lr=lr,
            last_layer_lr=Schedule(last, final=lr.final),
            weight_decay=_from_config(
                kind,
                s.weight_decay,
                total_iters,
                "weight_decay",
                reference_iters=ref,
                prefix=prefix,
                length_key=length_key,
            ),
            momentum=_from_config(
                kind, s.momentum, total_iters, "momentum", reference_iters=ref, prefix=prefix, length_key=length_key
            ),
            # official v1 teacher temperature is its own warmup-long schedule: a shorter run just stops inside it
            teacher_temp=_from_config(
                kind,
                s.teacher_temp,
                total_iters,
                "teacher_temp",
                truncate=True,
                reference_iters=ref,
                prefix=prefix,
                length_key=length_key,
            ),
            dino_local_weight=Schedule(
                ramp_schedule(
                    dino.local_loss_weight_initial,
                    dino.local_loss_weight,
                    iters(dino.local_loss_weight_start_iter, "dino.local_loss_weight_start_iter"),
                    iters(dino.local_loss_weight_ramp_iters, "dino.local_loss_weight_ramp_iters"),
                    total_iters,
                ),
                final=dino.local_loss_weight,
            ),
            gram_weight=Schedule(
                ramp_schedule(
                    0.0,
                    gram.loss_weight,
                    iters(gram.weight_start_iter, "gram.weight_start_iter"),
                    iters(gram.weight_ramp_iters, "gram.weight_ramp_iters"),
                    total_iters,
                )
                if gram.use_loss
                else np.zeros(total_iters),
                final=gram.loss_weight if gram.use_loss else 0.0,
            ),
            total_iters=int(total_iters),
        )

    def at(self, it: int) -> dict[str, float]:
        """All scheduled values at iteration `it`."""
        return {
            "lr": self.lr[it],
            "last_layer_lr": self.last_layer_lr[it],
            "weight_decay": self.weight_decay[it],
            "momentum": self.momentum[it],
            "teacher_temp": self.teacher_temp[it],
            "dino_local_weight": self.dino_local_weight[it],
            "gram_weight": self.gram_weight[it],
        }

    def plot(self, path: str | Path) -> Path:
        """Save a figure of every schedule over the run (a quick check of a config before launching it).

        Pretraining and distillation write it as `<run>/schedules.png` when a run starts."""
        from matplotlib.figure import Figure  # no pyplot: no global backend switch inside a user's notebook

        from geodino.io import atomic_path

        names = ["lr", "last_layer_lr", "weight_decay", "momentum", "teacher_temp", "dino_local_weight", "gram_weight"]
        fig = Figure(figsize=(7, 1.6 * len(names)))
        axes = fig.subplots(len(names), 1, sharex=True)
        for ax, name in zip(axes, names):
            ax.plot(getattr(self, name).values)
            ax.set_ylabel(name, fontsize=8)
        axes[-1].set_xlabel("iteration")
        fig.tight_layout()
        path = Path(path)
        with atomic_path(path, overwrite=True) as tmp:
            fig.savefig(tmp, format=path.suffix.lstrip(".") or "png")
        return path
