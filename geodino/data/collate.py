"""SSL batch collation: crop-major stacking of multi-crop samples plus iBOT masks in index form.

Output keys (CONTRIBUTING.md, "SSL batches"): `global_crops` [n_global·B,C,H,W] crop-major (all images' crop 0,
then all images' crop 1, as official), `local_crops`, optional `gram_crops`, `masks`, `mask_indices`,
`masks_weight`, `n_masked_patches`, `upperbound`, `n_global_crops` (global crops per image: the rows of
`global_crops` alone cannot say how many images and how many crops they hold, and `crops.n_global` may differ
from the official 2), `step` and `source`. Samples transformed with
`photometric=False` add `global_params` / `local_params` (their drawn colour/blur parameters, crop-major) that
`finish_photometric` applies to the stacked crops: in the loader, or on the accelerator (`crops.photometric`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from geodino.data.masking import collate_masks, sample_masks

__all__ = ["collate_ssl", "crops_on", "finish_photometric", "mask_rng", "stack_crop_major"]

# Distinct stream ids keep the mask randomness independent of the pixel/crop randomness for the same (seed, step).
_MASK_STREAM = 0x6D61736B


def mask_rng(seed: int, step: int, rank: int) -> np.random.Generator:
    """The generator for the masks of one batch: a pure function of (seed, step, rank)."""
    return np.random.default_rng([int(seed), int(step), int(rank), _MASK_STREAM])


def stack_crop_major(samples: Sequence[dict[str, Any]], key: str) -> torch.Tensor:
    """Stack `samples[b][key][i]` into [n·B, ...] with crop index i outer and image index b inner."""
    n = len(samples[0][key])
    return torch.stack([s[key][i] for i in range(n) for s in samples])


def collate_ssl(
    samples: Sequence[dict[str, Any]],
    *,
    step: int,
    source: str,
    seed: int,
    rank: int = 0,
    patch_size: int = 16,
    mask_ratio: tuple[float, float] = (0.1, 0.5),
    mask_probability: float = 0.5,
    max_block_fraction: float = 0.5,
) -> dict[str, Any]:
    """Collate multi-crop samples (dicts with `global_crops`, `local_crops`, optional `gram_crops` lists)."""
    global_crops = stack_crop_major(samples, "global_crops")
    # the consumers split the rows into (crops, images) with this count: without it they assumed 2 and paired
    # crops of different images when crops.n_global was 1, 3 or 4
    out: dict[str, Any] = {"global_crops": global_crops, "n_global_crops": len(samples[0]["global_crops"])}
    if samples[0].get("local_crops"):
        out["local_crops"] = stack_crop_major(samples, "local_crops")
    else:
        c = global_crops.shape[1]
        out["local_crops"] = global_crops.new_zeros((0, c, 0, 0))
    if samples[0].get("gram_crops"):
        out["gram_crops"] = stack_crop_major(samples, "gram_crops")
    for kind in ("global", "local"):  # photometric parameters still to apply (MultiCropTransform photometric=False)
        if samples[0].get(f"{kind}_params"):
            out[f"{kind}_params"] = torch.from_numpy(
                np.stack([s[f"{kind}_params"][i] for i in range(len(samples[0][f"{kind}_params"])) for s in samples])
            )
    hg, wg = global_crops.shape[-2:]
    grid = (hg // patch_size, wg // patch_size)
    masks, upperbound = sample_masks(
        global_crops.shape[0],
        grid,
        mask_rng(seed, step, rank),
        mask_ratio=tuple(mask_ratio),  # type: ignore[arg-type]
        mask_probability=mask_probability,
        max_block_fraction=max_block_fraction,
    )
    out.update(collate_masks(masks, upperbound))
    out["step"] = int(step)
    out["source"] = source
    return out


def finish_photometric(batch: dict[str, Any]) -> dict[str, Any]:
    """Apply a collated batch's pending photometric parameters (and standardisation) to its crops, in place.

    The batch carries the source's `MultiCropTransform` under `photometric` and the drawn parameters under
    `global_params` / `local_params`; both keys are removed, so finishing twice is impossible. Runs wherever the
    crops are: in the loader's collate, or on the accelerator after the transfer (`crops.photometric: device`).
    """
    tf = batch.pop("photometric", None)
    if tf is None:
        return batch
    for kind in ("global", "local"):
        params = batch.pop(f"{kind}_params", None)
        if params is not None:
            batch[f"{kind}_crops"] = tf.finish(batch[f"{kind}_crops"], params)
    return batch


def crops_on(batch: dict[str, Any], device: torch.device | str) -> dict[str, Any]:
    """The batch's `global_crops` and `local_crops` on `device`, with any pending photometric step applied there,
    and its `n_global_crops` (the rows of `global_crops` alone do not say how many crops per image they hold: a
    consumer that lost the count assumed 2 and paired crops of different images)."""
    moved: dict[str, Any] = {k: batch[k].to(device, non_blocking=True) for k in ("global_crops", "local_crops")}
    for k in ("n_global_crops", "global_params", "local_params", "photometric"):
        if k in batch:
            moved[k] = batch[k]
    return finish_photometric(moved)
