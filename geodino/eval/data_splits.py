"""How probe datasets are cut into splits and subsets: seeded, stratified fractions of data without split folders
(`split_indices`), a seeded cap per split (`seeded_subset`), the check of the keys that set them, and the
`splits.json` that records a probe's splits (`write_splits`).

Its own module: split arithmetic, shared by the image-folder and torchgeo adapters (`eval/datasets.py` re-exports
the names).
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

import numpy as np
import torch

from geodino.errors import ConfigError
from geodino.io import atomic_path, json_text


def check_split_keys(cfg: Any) -> None:
    """Refuse split keys no split is made with, naming the key: a fraction outside [0, 1) or fractions summing to
    1 or more (1.5 kept one training image per class and ran), a negative `max_samples` (read as 0, all) and a
    negative `split_seed`."""
    for key in ("val_fraction", "test_fraction"):
        value = float(getattr(cfg, key))
        if not (math.isfinite(value) and 0 <= value < 1):
            raise ConfigError(f"data.{key}={getattr(cfg, key)} must be >= 0 and < 1 (the share of the images held out)")
    if float(cfg.val_fraction) + float(cfg.test_fraction) >= 1:
        raise ConfigError(
            f"data.val_fraction={cfg.val_fraction} and data.test_fraction={cfg.test_fraction} add up to "
            f"{float(cfg.val_fraction) + float(cfg.test_fraction):g}; they must leave a training part: lower them "
            "(default 0.2 each)"
        )
    if int(cfg.max_samples) < 0:
        raise ConfigError(f"data.max_samples={cfg.max_samples} must be >= 0 (images per split; 0 = all)")
    if int(cfg.split_seed) < 0:  # numpy's generator refused it with a bare ValueError (exit 1) once a folder was read
        raise ConfigError(f"data.split_seed={cfg.split_seed} must be >= 0 (the seed of the split draw, e.g. 0)")


def check_holdout(probe: str, cfg: Any) -> None:
    """Refuse a dense probe's `val_fraction` no hold-out is made with, naming the key: outside [0, 1) (1.5 held out
    all tiles but one and scored the head on them, 'IoU nan' for classes the single training tile lacked; -0.1 held
    out one), and 0 where the config's own training files are read without val_images (`no_holdout_line`: it
    held out one tile all the same, unsaid). Each dense probe config's `validate` calls it."""
    value = getattr(cfg, "val_fraction", None)
    if value is None or isinstance(value, bool):
        return
    value = float(value)
    if not (math.isfinite(value) and 0 <= value < 1):
        raise ConfigError(
            f"{probe} val_fraction={cfg.val_fraction} must be >= 0 and < 1 (the share of the training data held out "
            "for validation when no val_images are given), e.g. 0.2"
        )
    named = getattr(getattr(cfg, "data", None), "name", "")  # a named dataset brings its own validation split
    if value == 0 and getattr(cfg, "train_images", None) and not getattr(cfg, "val_images", None) and not named:
        raise ConfigError(no_holdout_line(probe))


VAL_LABELS = {"segmentation": "val_masks", "canopy": "val_chms", "detection": "val_boxes"}
"""The key of each dense probe's validation labels, beside val_images."""


def no_holdout_line(probe: str) -> str:
    """The one line refusing `val_fraction: 0` without validation data: nothing would be left to score the probe
    on, and scores of the training data would read as validation scores."""
    from geodino.user_keys import user_key

    images, labels = user_key("val_images"), user_key(VAL_LABELS.get(probe, "val_labels"))
    return (
        f"{probe} val_fraction=0 holds no training data out and no {images} are given, so there is nothing to score "
        f"the probe on; set val_fraction above 0 (e.g. 0.2) to hold that share out, or give {images} and {labels}"
    )


def seeded_subset(n: int, max_samples: int, seed: int) -> list[int]:
    """All indices, or a seeded random subset of `max_samples` (sorted, so reading order stays on-disk order)."""
    if max_samples <= 0 or max_samples >= n:
        return list(range(n))
    g = torch.Generator().manual_seed(seed)
    return sorted(torch.randperm(n, generator=g)[:max_samples].tolist())


def split_indices(labels: list[int] | None, n: int, fractions: dict[str, float], seed: int) -> dict[str, list[int]]:
    """Deterministic split of n items into named parts; stratified by class when `labels` is given.

    `fractions` maps split name to fraction for all parts but the first, which takes the rest (e.g.
    {"train": 0, "val": 0.2, "test": 0.2}). Each class keeps at least one item in the first part.
    """
    names = list(fractions)
    out: dict[str, list[int]] = {k: [] for k in names}
    groups: dict[int, list[int]] = {}
    for i in range(n):
        groups.setdefault(labels[i] if labels is not None else 0, []).append(i)
    rng = np.random.default_rng(seed)
    for _, members in sorted(groups.items()):
        members = list(rng.permutation(members))
        start = 0
        counts = {}
        for k in names[1:]:
            counts[k] = round(len(members) * fractions[k])
        while sum(counts.values()) >= len(members) and any(counts.values()):
            k = max(counts, key=lambda c: counts[c])
            counts[k] -= 1
        for k in names[1:]:
            out[k].extend(int(i) for i in members[start : start + counts[k]])
            start += counts[k]
        out[names[0]].extend(int(i) for i in members[start:])
    return {k: sorted(v) for k, v in out.items()}


def write_splits(path: Path, *datasets: Any) -> None:
    """`splits.json`: the files of each split relative to `root`, the folder the splits share (an image folder's
    root, with ROOT/train/... and ROOT/test/... as `train/...` and `test/...`), for datasets made of files (an image
    folder's seeded, stratified split can then be reused in torchgeo or elsewhere); nothing otherwise. Each split's
    files were written relative to its own folder under the first split's: test files of ROOT/test named no file."""
    files = {ds.split: ds.sample_files() for ds in datasets}
    if any(v is None for v in files.values()):
        return
    folders = {ds.split: Path(ds.root) for ds in datasets}
    root = Path(os.path.commonpath([str(f) for f in folders.values()]))
    rebased = {
        split: [os.path.relpath(folders[split] / f, root) if not os.path.isabs(f) else f for f in names]
        for split, names in files.items()
    }
    text = json_text({"root": str(root), "splits": rebased}, indent=1)
    with atomic_path(path) as tmp:
        tmp.write_text(text)
