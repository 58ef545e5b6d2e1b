"""Every crop set of every shipped pretraining config goes through one SSL forward at its real sizes.

A crop set a config ships but the model cannot take (an off-grid local crop, a Gram crop the Gram teacher cannot
read, a mask grid of the wrong size) stops a run only at the first step that draws it, possibly hours in: the
official high-res stage's 168 px local crops at patch 16 did (fixed by `trim_to_patch_grid`). Here each distinct
geometry (patch size, bands, crop counts and sizes, Gram size) of the shipped configs runs through a depth-1 model
of 32 channels, batch 1: the sizes are the configs' own, the width is not (width does not change what the
geometry must satisfy)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from geodino.config import load_config
from geodino.data.crops import crop_sets
from geodino.data.masking import collate_masks, sample_masks
from geodino.train.config import PretrainConfig

CONFIGS = sorted((Path(__file__).resolve().parents[2] / "geodino" / "configs" / "pretrain").glob("*.yaml"))


def _geometries() -> dict[tuple, list[str]]:
    """Distinct (patch, bands, n_global, n_local, global, local, gram) over the shipped configs -> config names."""
    out: dict[tuple, list[str]] = {}
    for path in CONFIGS:
        cfg = load_config(PretrainConfig, path, ["init_from=null"])
        s = cfg.ssl.student
        for cs in crop_sets(cfg.crops):
            key = (s.patch_size, s.in_chans, cfg.crops.n_global, cfg.crops.n_local, cs.global_size, cs.local_size)
            out.setdefault((*key, cs.gram_size), []).append(path.name)
    return out


GEOMETRIES = _geometries()


def test_the_shipped_configs_are_all_read() -> None:
    assert len(CONFIGS) >= 17 and any(len(c) > 1 for c in GEOMETRIES.values())
    sizes = {g[4:] for g in GEOMETRIES}
    assert (768, 168, 1152) in sizes  # the official high-res stage's off-grid local crops are among them


@pytest.mark.parametrize(
    "geometry",
    list(GEOMETRIES),
    ids=lambda g: f"p{g[0]}_c{g[1]}_{g[2]}x{g[4]}px_{g[3]}x{g[5]}px_gram{g[6]}",
)
def test_each_crop_set_steps(geometry: tuple) -> None:
    from geodino.train.recipe import SSLConfig
    from geodino.train.ssl import SSLMetaArch

    patch, chans, n_global, n_local, size, local, gram = geometry
    cfg = load_config(
        SSLConfig,
        None,
        [
            "student.arch=vit_tiny",
            f"student.patch_size={patch}",
            f"student.in_chans={chans}",
            "student.drop_path_rate=0.0",
            "student.overrides={depth: 1, embed_dim: 32, num_heads: 2}",
            *(
                f"{h}.head_{k}={v}"
                for h in ("dino", "ibot")
                for k, v in (("n_prototypes", 16), ("hidden_dim", 16), ("bottleneck_dim", 8))
            ),
            f"gram.use_loss={gram is not None}",
        ],
    )
    torch.manual_seed(0)
    arch = SSLMetaArch(cfg, total_iters=100_000, global_batch_size=1)
    g = torch.Generator().manual_seed(0)
    batch = {
        "global_crops": torch.randn(n_global, chans, size, size, generator=g),
        "local_crops": torch.randn(n_local, chans, local, local, generator=g),
        "n_global_crops": n_global,
    }
    if gram is not None:
        batch["gram_crops"] = torch.randn(n_global, chans, gram, gram, generator=g)
    grid = size // patch
    masks, ub = sample_masks(n_global, (grid, grid), np.random.default_rng(0), mask_ratio=(0.1, 0.5))
    batch.update(collate_masks(masks, ub))
    with torch.no_grad():
        loss, logs = arch(batch, iteration=5)
    assert torch.isfinite(loss) and logs["dino_local_loss"] > 0
    if gram is not None:
        assert "gram_loss" in logs
