"""iBOT masks: exact ratios, half the crops masked, determinism and the index form."""

from __future__ import annotations

import numpy as np
import torch

from geodino.data.collate import collate_ssl, mask_rng
from geodino.data.masking import MaskingGenerator, collate_masks, sample_masks


def test_generator_exact_count_and_blocky():
    gen = MaskingGenerator((14, 14), max_num_patches=0.5 * 196)
    rng = np.random.default_rng(0)
    for count in [0, 1, 19, 50, 98]:
        m = gen(count, rng)
        assert m.shape == (14, 14) and m.sum() == count
    # blocks: masked patches have masked neighbours far more often than random placement would give
    m = gen(60, np.random.default_rng(1))
    neigh = (m[1:, :] & m[:-1, :]).sum() + (m[:, 1:] & m[:, :-1]).sum()
    assert neigh > 60


def test_sample_masks_ratios_official():
    masks, upper = sample_masks(8, (14, 14), np.random.default_rng(0))
    counts = sorted(masks.sum(1).tolist())
    n = 196
    expected = sorted([0] * 4 + [int(n * r) for r in np.linspace(0.1, 0.5, 5)[1:]])
    assert counts == expected
    assert upper == sum(int(n * r) for r in np.linspace(0.1, 0.5, 5)[1:])


def test_collate_masks_index_form():
    masks = torch.zeros(3, 4, dtype=torch.bool)
    masks[0, [0, 1]] = True
    masks[2, [3]] = True
    out = collate_masks(masks, 3)
    assert out["mask_indices"].tolist() == [0, 1, 11]
    assert out["masks_weight"].tolist() == [0.5, 0.5, 1.0]
    assert out["n_masked_patches"].tolist() == [3]
    assert out["upperbound"] == 3


def test_collate_ssl_crop_major_and_deterministic():
    samples = [
        {
            "global_crops": [torch.full((3, 32, 32), 10 * b + i, dtype=torch.float32) for i in range(2)],
            "local_crops": [torch.full((3, 16, 16), 100 + 10 * b + i, dtype=torch.float32) for i in range(4)],
        }
        for b in range(3)
    ]
    out = collate_ssl(samples, step=7, source="a", seed=1, patch_size=8)
    assert out["global_crops"].shape == (6, 3, 32, 32)
    assert out["global_crops"][:, 0, 0, 0].tolist() == [0, 10, 20, 1, 11, 21]
    assert out["local_crops"][:, 0, 0, 0].tolist() == [100, 110, 120, 101, 111, 121, 102, 112, 122, 103, 113, 123]
    assert out["masks"].shape == (6, 16) and out["step"] == 7 and out["source"] == "a"
    again = collate_ssl(samples, step=7, source="a", seed=1, patch_size=8)
    assert torch.equal(out["masks"], again["masks"])
    # 6 crops of 4 x 4 patches: 3 unmasked, 3 at ratios linspace(0.1, 0.5, 4)[1:] -> int(16 r) = 3, 5, 8 patches
    assert sorted(out["masks"].sum(1).tolist()) == [0, 0, 0, 3, 5, 8]
    other = collate_ssl(samples, step=8, source="a", seed=1, patch_size=8)
    assert not torch.equal(out["masks"], other["masks"])
    draw = {k: mask_rng(*k).integers(1 << 30) for k in ((1, 7, 0), (1, 8, 0), (1, 7, 1), (2, 7, 0))}
    assert mask_rng(1, 7, 0).integers(1 << 30) == draw[(1, 7, 0)] and len(set(draw.values())) == 4
