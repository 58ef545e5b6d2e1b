"""Training the detection probe's heads (the simple feature pyramid and the torchvision detector) on a frozen ViT.

Kept apart from the probe (`detection.py`: the config, the detector, prediction and the run; it re-exports
`train_detector`) so both stay short.

Training length: `epochs` passes over the training tiles, raised to at least `min_steps` optimiser steps, as the
dense probes do (`head_training.budget_epochs`: default 0, epochs alone; fewer than `FEW_STEPS` steps without a
`min_steps` warns, naming the step count; an explicit `min_steps` is taken as meant). The detector trains on tiles
cut from whole images as they are read (`boxes.tiles_of`), so the number of tiles, and with it the steps an epoch
(ceil(tiles / batch_size): batches run across images), is known once the first epoch has read every image: the
budget is settled then, and the learning-rate schedule (x0.1 at 60 % and 90 % of the epochs) follows the settled
epoch count. The first epoch always runs at the full learning rate.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import nn

from geodino.eval.boxes import tiles_of
from geodino.eval.head_training import budget_epochs, head_device, seed_everything, to_device

if TYPE_CHECKING:
    from geodino.eval.detection import DetectionProbeConfig

__all__ = ["lr_factor", "train_detector"]


def _trainable(model: nn.Module) -> list[nn.Parameter]:
    return [p for p in model.parameters() if p.requires_grad]


def _flip(t: dict[str, Any], gen: torch.Generator) -> dict[str, Any]:
    """Random horizontal and vertical flips of a tile and its boxes (xyxy pixels, half-open: x -> width - x)."""
    img, boxes = t["image"], t["boxes"].clone()
    size_h, size_w = img.shape[-2:]
    if torch.rand(1, generator=gen) < 0.5:
        img = img.flip(-1)
        boxes[:, [0, 2]] = size_w - boxes[:, [2, 0]]
    if torch.rand(1, generator=gen) < 0.5:
        img = img.flip(-2)
        boxes[:, [1, 3]] = size_h - boxes[:, [3, 1]]
    return {**t, "image": img, "boxes": boxes}


def lr_factor(epoch: int, epochs: int) -> float:
    """The learning-rate factor of 0-based `epoch` in a run of `epochs`: x0.1 from epoch int(0.6 * epochs) and again
    from int(0.9 * epochs), never before epoch 1 (a 1-epoch run trains at the full rate; torch's MultiStepLR with
    milestone 0, which int(0.6) gives, had it at 0.01x from the start)."""
    milestones = (max(1, int(0.6 * epochs)), max(1, int(0.9 * epochs)))
    return 0.1 ** sum(epoch >= m for m in milestones)


def train_detector(model: nn.Module, data: Any, cfg: DetectionProbeConfig) -> list[float]:
    """Train the pyramid and detector heads on the tiles of `data` (read lazily, shuffled per epoch, each batch then
    moved to the model's device); the ViT stays frozen, in eval mode. AdamW, x0.1 at 60 % and 90 % of the epochs;
    `cfg.epochs` raised to `cfg.min_steps` optimiser steps once the first epoch has counted the tiles (module
    docstring). Returns the mean loss per epoch."""
    from geodino.errors import TrainingError
    from geodino.progress import progress_bar

    if cfg.epochs <= 0 and cfg.min_steps <= 0:
        return []
    gen = seed_everything(cfg.seed)
    device = head_device(model)
    fill = getattr(model.transform, "fill", None) if hasattr(model, "transform") else None
    fill = 0.0 if fill is None else fill  # edge tiles padded as batches are: the band means
    opt = torch.optim.AdamW(_trainable(model), lr=cfg.lr, weight_decay=cfg.weight_decay)
    shift = 1 if cfg.detector == "faster_rcnn" else 0  # Faster R-CNN reserves class 0 for background
    history: list[float] = []

    def step(batch: list[dict[str, Any]], epoch: int) -> float:
        if cfg.flips:
            batch = [_flip(t, gen) for t in batch]
        targets = to_device([{"boxes": t["boxes"], "labels": t["labels"] + shift} for t in batch], device)
        loss_dict = model(to_device([t["image"] for t in batch], device), targets)
        loss = sum(loss_dict.values())
        if not torch.isfinite(loss):
            raise TrainingError(f"non-finite detection loss at epoch {epoch}; lower lr (now {cfg.lr})")
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        return float(loss.detach())

    epochs = max(1, cfg.epochs)  # provisional: settled after the first epoch has counted the tiles
    bar = progress_bar(total=epochs, desc=f"detection {cfg.detector}", leave=False, disable=not cfg.progress)
    epoch = 0
    while epoch < epochs:
        for group in opt.param_groups:
            group["lr"] = cfg.lr * lr_factor(epoch, epochs)
        model.train()
        losses, batch, n_tiles = [], [], 0
        for i in torch.randperm(len(data), generator=gen).tolist():
            for t in tiles_of(data[i], cfg.tile_size, cfg.min_visible, fill):
                n_tiles += 1
                batch.append(t)
                if len(batch) == cfg.batch_size:
                    losses.append(step(batch, epoch))
                    batch = []
        if batch:
            losses.append(step(batch, epoch))
        if epoch == 0:
            epochs = budget_epochs(cfg.epochs, cfg.batch_size, cfg.min_steps, n_tiles, f"detection {cfg.detector} head")
            epochs = max(1, epochs)
            bar.total = epochs
        history.append(float(np.mean(losses)) if losses else math.nan)
        bar.update(1)
        bar.set_postfix(loss=f"{history[-1]:.3f}")
        epoch += 1
    bar.close()
    model.eval()
    return history


def budget_images(
    cfg: DetectionProbeConfig, train_data: Any, units: Any, sources: list[int] | None
) -> tuple[Any, dict[str, Any] | None]:
    """The training units a label budget (`cfg.train_fraction`, a share of training IMAGES) keeps, and what
    detection_metrics.json records about it (None without one). `units` are `train_data` itself when validation
    samples were given (`sources` None), else the training tiles left after the hold-out, `sources[i]` the image
    of tile i: the images counted are those with a training tile left, and a kept image keeps all its tiles. One
    seeded shuffle of those images (label_budget.image_subset), so budgets are nested for a seed; held-out tiles
    and validation images are untouched."""
    from geodino.eval import dense
    from geodino.eval.label_budget import active, plain_budget

    if not active(cfg.train_fraction, 0):
        return units, None
    images = list(range(len(train_data))) if sources is None else sorted(set(sources))
    rows, record = plain_budget(len(images), cfg.train_fraction, cfg.seed, "images")
    kept = [images[r] for r in rows]
    if isinstance(train_data, dense.LazySamples):  # folder data: the kept image files, named as the outputs name them
        from pathlib import Path

        from geodino.eval.detection_outputs import image_paths

        files = [Path(item[0]) for item in train_data.items]
        names = image_paths(files)  # below the common folder: a/x.tif and b/x.tif stay apart
        record["train_images"] = [names[files[i]] for i in kept]
    else:  # an adapter's samples (VHR-10, DIOR): their own names, as the COCO outputs name them (one read each)
        record.update(_sample_names(train_data, kept))
    if sources is None:
        return dense.Subset(train_data, kept), record
    chosen = set(kept)
    return [t for t, s in zip(units, sources, strict=True) if s in chosen], record


def _sample_names(data: Any, kept: list[int]) -> dict[str, list]:
    """What a budget record names the kept training samples of an adapter or a list by: `train_images`, each
    sample's image file name (VHR-10's 001.jpg, DIOR's 00012.jpg, the names its samples and the COCO outputs
    carry), from the adapter's file list (`ProbeDataset.sample_files`) without reading a sample, else each
    sample's `name` (one read each), or `train_samples`, their positions, when a sample has no name."""
    from pathlib import Path

    files = data.sample_files() if callable(getattr(data, "sample_files", None)) else None
    if files:
        return {"train_images": [Path(files[i]).name for i in kept]}
    names = [data[i].get("name") for i in kept]
    if all(isinstance(n, str) and n for n in names):
        return {"train_images": names}
    return {"train_samples": list(kept)}
