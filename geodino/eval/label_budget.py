"""Label-efficiency probes: train a classification head on a small, seeded share of the training labels.

EO papers compare backbones at 1 % or 10 % of the training labels (GEO-Bench's train partitions, SSL4EO-S12's
linear probes), or at a fixed number of labelled images per class. `train_fraction` / `train_per_class` of a
classification task pick that share here, on the training split only (validation and test stay whole), after the
features of the full training split were extracted: the feature cache holds the full split once, so a sweep over
fractions reads it instead of re-running the backbone.

Single-label data is subsampled per class: each class is shuffled once by the task seed and its first
max(1, fraction * n_class rounded half up) images, or `train_per_class`, are kept, so every class keeps at least
one image and a smaller budget's subset is inside a larger one's for the same seed (nested). Multi-label data has
no single class to stratify by: its images are shuffled once by the seed and the first max(1, fraction * n rounded
half up) are kept (nested too).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from geodino.errors import ConfigError, InputError


def check_budget(fraction: float, per_class: int) -> None:
    """One line naming the key when a label budget is out of range or both keys are set."""
    if not 0.0 < float(fraction) <= 1.0:
        raise ConfigError(
            f"train_fraction={fraction} must be > 0 and <= 1 (the share of training labels kept; 1 = all)"
        )
    if int(per_class) < 0:
        raise ConfigError(f"train_per_class={per_class} must be >= 0 (training images kept per class; 0 = off)")
    if per_class and fraction < 1.0:
        raise ConfigError(f"train_fraction={fraction} and train_per_class={per_class} are both set; set one of them")


def active(fraction: float, per_class: int) -> bool:
    """Whether a label budget subsamples the training split at all."""
    return bool(per_class) or float(fraction) < 1.0


def budget_indices(
    targets: torch.Tensor, fraction: float, per_class: int, seed: int, classes: list[str] | None = None
) -> list[int]:
    """The training rows a label budget keeps (sorted positions into `targets`: [N] class ids, or [N, K] multi-hot
    for a plain subset). Deterministic for a seed and nested across budgets (see the module docstring)."""
    check_budget(fraction, per_class)
    n = int(targets.shape[0])
    rng = np.random.default_rng(int(seed))
    if targets.dim() == 2:
        if per_class:
            raise ConfigError(
                f"train_per_class={per_class} needs single-label classes; this data is multi-label: set "
                "train_per_class=0 and a share of the images instead (a plain seeded subset), e.g. train_fraction=0.1"
            )
        return image_subset(n, fraction, seed)
    labels = targets.long().numpy()
    kept: list[int] = []
    for c in sorted(set(labels.tolist())):
        members = np.flatnonzero(labels == c)
        order = members[rng.permutation(len(members))]
        if per_class:
            if per_class > len(members):
                name = classes[c] if classes and 0 <= c < len(classes) else c
                raise InputError(  # a suite names tasks.<name>.train_per_class (runner_inputs.task_keys_named)
                    f"train_per_class={per_class} is more than the {len(members)} training images of class "
                    f"{name!r}; set train_per_class <= {_smallest(labels)} (the smallest class), or train_per_class=0 "
                    "and a share of each class instead, e.g. train_fraction=0.1"
                )
            take = per_class
        else:
            take = _share(fraction, len(members))
        kept.extend(int(i) for i in order[:take])
    return sorted(kept)


def image_subset(n: int, fraction: float, seed: int) -> list[int]:
    """A plain seeded subset of `n` images: the first max(1, round(fraction * n)) of one seeded shuffle (sorted),
    so a smaller fraction's subset is inside a larger one's. For data without one class per image (multi-label;
    a segmentation probe's training tiles would take it the same way)."""
    check_budget(fraction, 0)
    if n <= 0:
        return []
    order = np.random.default_rng(int(seed)).permutation(n)
    return sorted(int(i) for i in order[: _share(fraction, n)])


def _share(fraction: float, n: int) -> int:
    """max(1, fraction * n rounded half up): 50 % of 5 images is 3 (Python's round() gives 2, half to even)."""
    return max(1, int(np.floor(fraction * n + 0.5)))


def _smallest(labels: np.ndarray) -> int:
    return int(np.bincount(labels)[np.bincount(labels) > 0].min())


def subset_features(fs: Any, rows: list[int]) -> Any:
    """A FeatureSet holding only `rows` (positions) of `fs`."""
    import dataclasses

    idx = torch.as_tensor(rows, dtype=torch.long)
    return dataclasses.replace(fs, cls=fs.cls[idx], patch_mean=fs.patch_mean[idx], targets=fs.targets[idx])


def budget_details(
    targets: torch.Tensor, rows: list[int], fraction: float, per_class: int, seed: int, classes: list[str]
) -> dict[str, Any]:
    """What classification.json records about a label budget: the keys, the counts and, single-label, the training
    images kept per class."""
    n_full = int(targets.shape[0])
    out: dict[str, Any] = {
        "train_fraction": float(fraction),
        "train_per_class": int(per_class),
        "seed": int(seed),
        "n_train_full": n_full,
        "n_train": len(rows),
        "kept_fraction": len(rows) / n_full if n_full else 0.0,
        "stratified": targets.dim() == 1,
    }
    if targets.dim() == 1:
        kept = torch.bincount(targets[torch.as_tensor(rows, dtype=torch.long)].long(), minlength=len(classes))
        out["per_class"] = {name: int(kept[i]) for i, name in enumerate(classes) if i < kept.numel()}
    return out


def probe_budget(probe: str, fraction: float) -> None:
    """`check_budget` for a dense probe's train_fraction, its one line prefixed with the probe's name."""
    try:
        check_budget(fraction, 0)
    except ConfigError as exc:
        raise ConfigError(f"{probe} {exc}") from exc


def plain_budget(n: int, fraction: float, seed: int, unit: str) -> tuple[list[int], dict[str, Any]]:
    """The `image_subset` of `n` training units (tiles or images) a train_fraction keeps, and what a probe's metrics
    json records about it: the key, the seed, the unit counted, the counts before and after."""
    rows = image_subset(n, fraction, seed)
    record: dict[str, Any] = {"train_fraction": float(fraction), "seed": int(seed), "unit": unit}
    record.update(n_train_full=int(n), n_train=len(rows), kept_fraction=len(rows) / n if n else 0.0)
    return rows, record
