"""iBOT block masks, as the official DINOv3 recipe draws them (dinov3/data/masking.py + collate.py).

BEiT-style generator: rectangular blocks of area U[min_patches, remaining] (capped at `max_num_patches`, 0.5·N in
the recipe) and log-uniform aspect in [0.3, 1/0.3], 10 tries per block, repeated until the budget is used, then
completed with random patches to exactly the requested count. Per batch, `int(n_crops · probability)` of the
student's global crops are masked with ratios `linspace(r_min, r_max, n + 1)[1:]` (float32, so that the counts
`int(N·ratio)` truncate as official), the others not at all, and the order is shuffled. Everything draws from an
explicit `numpy.random.Generator`, so a batch's masks are a pure function of (seed, step, rank).

One deliberate difference: the official block cap is written `0.5 * img_size // patch_size * img_size //
patch_size`, which evaluates left to right to 0.5·N only when img_size / 2 is a multiple of the patch size (every
official crop size: 224, 256, 512, 768 at patch 16); for other sizes it is smaller (112 px at patch 16: 21 of 49
patches, not 24.5). geodino caps at 0.5·N, the evident intent, for every size.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch

__all__ = ["MaskingGenerator", "collate_masks", "sample_masks"]


class MaskingGenerator:
    """Block-mask generator on a (height, width) patch grid (semantics of the official `MaskingGenerator`)."""

    def __init__(
        self,
        input_size: int | tuple[int, int],
        max_num_patches: float | None = None,
        min_num_patches: int = 4,
        min_aspect: float = 0.3,
        max_aspect: float | None = None,
    ) -> None:
        self.height, self.width = (input_size, input_size) if isinstance(input_size, int) else tuple(input_size)
        self.num_patches = self.height * self.width
        self.min_num_patches = min_num_patches
        self.max_num_patches = self.num_patches if max_num_patches is None else max_num_patches
        max_aspect = max_aspect or 1 / min_aspect
        self.log_aspect_ratio = (math.log(min_aspect), math.log(max_aspect))

    def __repr__(self) -> str:
        return (
            f"MaskingGenerator({self.height}x{self.width}, blocks of {self.min_num_patches}.."
            f"{self.max_num_patches} patches, log-aspect {self.log_aspect_ratio[0]:.3f}.."
            f"{self.log_aspect_ratio[1]:.3f})"
        )

    def _add_block(self, mask: np.ndarray, max_mask_patches: float, rng: np.random.Generator) -> int:
        """Try up to 10 blocks; paint the first that adds 1..max_mask_patches new patches. Returns how many."""
        delta = 0
        for _ in range(10):
            # a + (b - a)·U like Python's random.uniform, which the official code uses; it also works when the
            # remaining budget is below min_num_patches (b < a), where numpy's uniform refuses
            lo = self.min_num_patches
            target_area = lo + (max_mask_patches - lo) * rng.random()
            aspect = math.exp(rng.uniform(*self.log_aspect_ratio))
            h = round(math.sqrt(target_area / aspect))
            w = round(math.sqrt(target_area * aspect))
            if w < self.width and h < self.height:
                top = int(rng.integers(0, self.height - h + 1))
                left = int(rng.integers(0, self.width - w + 1))
                block = mask[top : top + h, left : left + w]
                new = h * w - int(block.sum())
                if 0 < new <= max_mask_patches:
                    block[...] = True
                    delta += new
            if delta > 0:
                break
        return delta

    def __call__(self, num_masking_patches: int, rng: np.random.Generator) -> np.ndarray:
        """A bool [height, width] mask with exactly `num_masking_patches` True entries."""
        num_masking_patches = int(min(num_masking_patches, self.num_patches))
        mask = np.zeros((self.height, self.width), dtype=bool)
        count = 0
        while count < num_masking_patches:
            budget = min(num_masking_patches - count, self.max_num_patches)
            delta = self._add_block(mask, budget, rng)
            if delta == 0:
                break
            count += delta
        # complete randomly to exactly the requested count (DINOv3 `complete_mask_randomly`)
        flat = mask.reshape(-1)
        missing = num_masking_patches - int(flat.sum())
        if missing > 0:
            free = np.flatnonzero(~flat)
            flat[rng.choice(free, size=missing, replace=False)] = True
        return flat.reshape(self.height, self.width)


def sample_masks(
    n_crops: int,
    grid: tuple[int, int],
    rng: np.random.Generator,
    *,
    mask_ratio: tuple[float, float] = (0.1, 0.5),
    mask_probability: float = 0.5,
    max_block_fraction: float = 0.5,
    min_block_patches: int = 4,
) -> tuple[torch.Tensor, int]:
    """Masks for `n_crops` global crops: bool [n_crops, h·w] and the `upperbound` (sum of masked counts)."""
    h, w = grid
    n_tokens = h * w
    generator = MaskingGenerator(
        (h, w), max_num_patches=max_block_fraction * n_tokens, min_num_patches=min_block_patches
    )
    n_masked = int(n_crops * mask_probability)
    # float32 as the official collate (`torch.linspace`, then `int(N * prob)` on the float32 tensor): float64
    # ratios truncate to one patch more or less for some (N, batch) pairs (e.g. N = 36, 24 crops: 12 vs 11)
    probs = torch.linspace(float(mask_ratio[0]), float(mask_ratio[1]), n_masked + 1, dtype=torch.float32)
    masks: list[np.ndarray] = []
    upperbound = 0
    for i in range(n_masked):
        count = int(n_tokens * probs[i + 1])
        masks.append(generator(count, rng))
        upperbound += count
    masks.extend(np.zeros((h, w), dtype=bool) for _ in range(n_crops - n_masked))
    order = rng.permutation(n_crops)
    stacked = np.stack([masks[i] for i in order]).reshape(n_crops, n_tokens)
    return torch.from_numpy(stacked), upperbound


def collate_masks(masks: torch.Tensor, upperbound: int) -> dict[str, Any]:
    """The index form the iBOT loss uses: `masks`, `mask_indices`, `masks_weight`, `n_masked_patches`, `upperbound`.

    `masks_weight` is 1 / (number of masked patches of that crop), one value per masked patch, so every masked
    crop weighs the same in the loss whatever its ratio (the official per-image weighting).
    """
    flat = masks.flatten()
    mask_indices = flat.nonzero().flatten()
    per_crop = masks.sum(-1).clamp(min=1).to(torch.float32)
    masks_weight = (1.0 / per_crop).unsqueeze(-1).expand_as(masks)[masks]
    return {
        "masks": masks,
        "mask_indices": mask_indices,
        "masks_weight": masks_weight,
        "n_masked_patches": torch.tensor([mask_indices.numel()], dtype=torch.long),
        "upperbound": int(upperbound),
    }
