"""A tiny image-folder classification dataset (one folder per class, PNG chips) shared by the probe tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image


def class_folder(root: Path, classes: tuple[str, ...] = ("dark", "bright"), n: int = 8, size: int = 16) -> Path:
    """`n` RGB PNGs per class under `root/<class>/`; class i is centred on grey level 40 + 170 * i (+-30 noise), so
    any backbone separates two classes and the probes have something to find. Seeded: the same files every call."""
    rng = np.random.default_rng(0)
    for ci, c in enumerate(classes):
        (root / c).mkdir(parents=True, exist_ok=True)
        for i in range(n):
            arr = np.clip(40 + 170 * ci + rng.integers(-30, 30, (size, size, 3)), 0, 255).astype(np.uint8)
            Image.fromarray(arr).save(root / c / f"{i}.png")
    return root
