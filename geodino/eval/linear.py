"""The linear probe of frozen features: a grid of SGD-trained linear heads, all trained at once, chosen on val.

As DINOv2/v3 `eval/linear.py`: the input is the CLS of the last n blocks (n in {1, 4}), optionally concatenated
with the average-pooled patch tokens of the last block; SGD with momentum 0.9 and a cosine schedule; a grid of
learning rates (the official 13, 1e-5 ... 0.1) times weight decays. Used by `eval/classification.py`.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import torch

from geodino.errors import ConfigError
from geodino.eval.features import FeatureSet
from geodino.eval.metrics import selection_score

OFFICIAL_LRS = [1e-5, 2e-5, 5e-5, 1e-4, 2e-4, 5e-4, 1e-3, 2e-3, 5e-3, 1e-2, 2e-2, 5e-2, 1e-1]


_DEFAULTS = {"lrs": "the official 13, 1e-5 ... 0.1", "weight_decays": "[0.0, 0.0001]", "n_last_blocks": "[1, 4]"}
_DEFAULTS["avgpool"] = "[false, true]"


@dataclass
class LinearConfig:
    enabled: bool = True
    lrs: list[float] = field(default_factory=lambda: list(OFFICIAL_LRS))
    weight_decays: list[float] = field(default_factory=lambda: [0.0, 1e-4])
    n_last_blocks: list[int] = field(default_factory=lambda: [1, 4])
    avgpool: list[bool] = field(default_factory=lambda: [False, True])
    epochs: int = 50
    min_iterations: int = 500  # small datasets still get enough SGD steps (epochs grow to reach this)
    batch_size: int = 256
    momentum: float = 0.9
    scale_lr_with_batch: bool = True  # lr * batch_size / 256, the configured batch even for N < batch, as official
    refit_on_trainval: bool = False  # retrain the chosen head on train + val before testing
    standardize: bool = False  # z-score inputs with train statistics (off = official; on helps non-DINO baselines)

    def __post_init__(self) -> None:
        """Values no head trains with are refused when the config is read: a negative or NaN lr, a negative weight
        decay, a negative epoch or step count, no step at all and a batch of 0 ran and reported a diverged or
        untrained head."""
        for key in ("lrs", "weight_decays", "n_last_blocks", "avgpool"):  # an empty grid has no head to choose
            if not list(getattr(self, key)):
                raise ConfigError(f"linear.{key}=[] must list at least one value (default {_DEFAULTS[key]})")
        if any(not (math.isfinite(float(v)) and float(v) > 0) for v in self.lrs):
            raise ConfigError(f"linear.lrs={list(self.lrs)} must list positive learning rates, e.g. [0.001, 0.01]")
        if any(not (math.isfinite(float(v)) and float(v) >= 0) for v in self.weight_decays):
            raise ConfigError(f"linear.weight_decays={list(self.weight_decays)} must list numbers >= 0, e.g. [0.0]")
        for key, least in (("epochs", 0), ("min_iterations", 0), ("batch_size", 1)):
            if int(getattr(self, key)) < least:
                raise ConfigError(f"linear.{key}={getattr(self, key)} must be a whole number >= {least}")
        if self.enabled and int(self.epochs) == 0 and int(self.min_iterations) == 0:  # ran one step, reported it
            raise ConfigError(
                "linear.epochs=0 and linear.min_iterations=0 leave no training step; set one of them >= 1, or "
                "linear.enabled=false to skip the linear head"
            )
        if not 0 <= float(self.momentum) < 1:
            raise ConfigError(f"linear.momentum={self.momentum} must be in [0, 1), e.g. 0.9")


@dataclass
class LinearHead:
    """A trained linear head and the grid point that produced it."""

    weight: torch.Tensor  # [D, K]
    bias: torch.Tensor  # [K]
    lr: float
    weight_decay: float
    n_last_blocks: int
    avgpool: bool
    val_score: float = float("nan")
    shift: torch.Tensor | None = None  # input standardisation (train mean, std) when linear.standardize
    scale: torch.Tensor | None = None

    def inputs(self, feats: FeatureSet) -> torch.Tensor:
        x = feats.linear_input(self.n_last_blocks, self.avgpool)
        if self.shift is None:
            return x
        assert self.scale is not None, "shift and scale are set together (standardized_input)"
        return (x - self.shift) / self.scale

    def logits(self, feats: FeatureSet) -> torch.Tensor:
        return self.inputs(feats) @ self.weight + self.bias


def standardized_input(
    feats: FeatureSet, n_blocks: int, avgpool: bool, on: bool
) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor | None]:
    """The head input of `feats` and, when `on`, z-scored with its own mean and std (returned to reuse on val)."""
    x = feats.linear_input(n_blocks, avgpool)
    if not on:
        return x, None, None
    shift, scale = x.mean(0), x.std(0).clamp_min(1e-6)
    return (x - shift) / scale, shift, scale


def schedule(n: int, cfg: LinearConfig) -> tuple[int, int, int]:
    """(batch size, steps per epoch, total steps): `epochs` passes, at least `min_iterations` steps."""
    bs = max(1, min(cfg.batch_size, n))
    spe = math.ceil(n / bs)
    return bs, spe, max(1, cfg.epochs * spe, cfg.min_iterations)


def _train_heads(
    x: torch.Tensor,
    y: torch.Tensor,
    lrs: torch.Tensor,
    wds: torch.Tensor,
    num_classes: int,
    cfg: LinearConfig,
    generator: torch.Generator,
    progress: Any = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Train H linear heads at once on x [N, D]; head h uses lr[h], wd[h]. Returns W [H, D, K], b [H, K].

    Written by hand rather than with torch.optim: per-head learning rates on slices of one batched weight let a
    single einsum serve the whole grid (torch.optim would need one tensor and one param group per head). The
    update is exactly torch's SGD: d = g + wd * w; buf = m * buf + d; w -= lr_t * buf, with a cosine lr_t.
    """
    n, d = x.shape
    h, k = lrs.numel(), num_classes
    bs, steps_per_epoch, total = schedule(n, cfg)
    # Small heads are bound by per-op overhead: extra threads only add synchronisation (15x slower measured on
    # 2 busy cores), so small problems run single-threaded.
    with _single_threaded(bs * d * num_classes * h < 200_000_000):
        multilabel = y.dim() == 2
        # Weights live as one [D, H*K] matrix so a step is two GEMMs for the whole grid; the gradient of the mean
        # cross-entropy (softmax - onehot) / B, or of the mean BCE (sigmoid - y) / (B*K), is written out directly;
        # N(0, 0.01) initial weights as official.
        w = (torch.randn(h, d, k, generator=generator) * 0.01).permute(1, 0, 2).contiguous()
        b = torch.zeros(h, k)
        bw, bb = torch.zeros_like(w), torch.zeros_like(b)
        # the configured batch, not the one used: the official loader (infinite sampler, drop_last) always fills
        # `batch_size`, repeating samples when N is smaller, so its mean gradient has the expectation of our
        # full-data batch and its lr is lr * batch_size / 256 whatever N is (min(batch, N) / 256 before)
        scale = cfg.batch_size / 256 if cfg.scale_lr_with_batch else 1.0
        lr0 = (lrs * scale).view(1, h, 1)
        wd = wds.view(1, h, 1)
        step = 0
        while step < total:
            perm = torch.randperm(n, generator=generator)
            for s in range(steps_per_epoch):
                if step >= total:
                    break
                idx = perm[s * bs : (s + 1) * bs]
                xb, yb = x[idx], y[idx]
                m = xb.shape[0]
                logits = (xb @ w.view(d, h * k)).view(m, h, k) + b
                if multilabel:
                    grad = (torch.sigmoid(logits) - yb.float()[:, None, :]) / (m * k)
                else:
                    grad = torch.softmax(logits, dim=-1)
                    grad[torch.arange(m), :, yb] -= 1.0
                    grad /= m
                gw = (xb.T @ grad.view(m, h * k)).view(d, h, k)
                gb = grad.sum(0)
                lr_t = lr0 * 0.5 * (1 + math.cos(math.pi * step / total))
                bw.mul_(cfg.momentum).add_(gw + wd * w)
                bb.mul_(cfg.momentum).add_(gb)
                w -= lr_t * bw
                b -= lr_t.view(h, 1) * bb
                step += 1
            if progress is not None:
                progress.update(1)
        return w.permute(1, 0, 2).contiguous(), b


@contextlib.contextmanager
def _single_threaded(on: bool) -> Iterator[None]:
    """One intra-op thread while `on` (the thread count is restored after)."""
    old_threads = torch.get_num_threads()
    if on:
        torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(old_threads)


def linear_probe(
    train: FeatureSet,
    val: FeatureSet,
    num_classes: int,
    cfg: LinearConfig,
    *,
    seed: int = 0,
    progress: bool = True,
) -> tuple[LinearHead, list[dict[str, float]]]:
    """Sweep (n_last_blocks, avgpool, lr, wd), train every head on `train`, pick the best on `val`.

    Returns the chosen head and one row per grid point (its validation score) for the report.
    """
    from geodino.progress import progress_bar

    if not cfg.lrs or not cfg.weight_decays or not cfg.n_last_blocks or not cfg.avgpool:
        raise ConfigError("linear.lrs, linear.weight_decays, linear.n_last_blocks and linear.avgpool must not be empty")
    n_layers = train.cls.shape[1]
    blocks = sorted({min(n, n_layers) for n in cfg.n_last_blocks})
    grid = [(lr, wd) for lr in cfg.lrs for wd in cfg.weight_decays]
    lrs = torch.tensor([g[0] for g in grid], dtype=torch.float32)
    wds = torch.tensor([g[1] for g in grid], dtype=torch.float32)
    multilabel = train.targets.dim() == 2
    rows: list[dict[str, float]] = []
    best: LinearHead | None = None
    groups = [(n, a) for n in blocks for a in cfg.avgpool]
    _, spe, total = schedule(len(train), cfg)
    epochs = math.ceil(total / spe)
    bar = progress_bar(total=len(groups) * epochs, desc="linear sweep", unit="epoch", disable=not progress, leave=False)
    for gi, (n_blocks, avgpool) in enumerate(groups):
        g = torch.Generator().manual_seed(seed * 1000 + gi)
        x, shift, scale = standardized_input(train, n_blocks, avgpool, cfg.standardize)
        w, b = _train_heads(x, train.targets, lrs, wds, num_classes, cfg, g, bar)
        probe = LinearHead(w[0], b[0], 0.0, 0.0, n_blocks, bool(avgpool), shift=shift, scale=scale)
        xv = probe.inputs(val)
        logits = torch.einsum("nd,hdk->hnk", xv, w) + b[:, None]
        for hi, (lr, wd) in enumerate(grid):
            score = selection_score(logits[hi], val.targets, multilabel)
            rows.append({"n_last_blocks": n_blocks, "avgpool": float(avgpool), "lr": lr, "wd": wd, "val": score})
            if best is None or score > best.val_score:
                best = LinearHead(w[hi], b[hi], lr, wd, n_blocks, bool(avgpool), score, shift, scale)
    bar.close()
    assert best is not None
    return best, rows


def refit_head(head: LinearHead, train: FeatureSet, num_classes: int, cfg: LinearConfig, seed: int) -> LinearHead:
    """Retrain one grid point on new training features (train + val), keeping its hyper-parameters."""
    g = torch.Generator().manual_seed(seed * 1000 + 999)
    x, shift, scale = standardized_input(train, head.n_last_blocks, head.avgpool, cfg.standardize)
    one = torch.tensor([head.lr]), torch.tensor([head.weight_decay])
    w, b = _train_heads(x, train.targets, one[0], one[1], num_classes, cfg, g)
    return LinearHead(
        w[0], b[0], head.lr, head.weight_decay, head.n_last_blocks, head.avgpool, head.val_score, shift, scale
    )


def concat_features(a: FeatureSet, b: FeatureSet) -> FeatureSet:
    """The features of two splits as one set (train + val for a refit)."""
    return FeatureSet(
        torch.cat([a.cls, b.cls]), torch.cat([a.patch_mean, b.patch_mean]), torch.cat([a.targets, b.targets]), a.layers
    )
