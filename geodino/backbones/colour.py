"""`baseline:colour`: per-band colour statistics as a frozen "backbone", the strongest simple baseline for probes.

A frozen-probe number means little until it is set against what plain band statistics already give: on EuroSAT,
per-channel mean, std and a 16-bin histogram reach ~85 % kNN, well above a random ViT (README, pretraining
quality). This module gives those statistics the interface of a frozen backbone, so every probe the suite runs
(kNN, linear, logistic regression; segmentation, canopy height and detection heads on the patch maps) reports the
same baseline through the same protocol, on any number of bands.

Features of a window (the whole image for the CLS slot, one `patch_size` x `patch_size` patch for the maps), per
band of the normalised input: mean, standard deviation, and the fraction of pixels in each of `bins` equal bins
over [-limit, limit] (standardised units; values beyond fall in the edge bins). D = C x (2 + bins); one "block".
Hand-written because no library computes windowed histograms as a patch map; it is a few pooling passes.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from geodino.errors import ConfigError, InputError

BASELINES = ("colour",)  # the names `baseline:NAME` accepts ("color" is read as "colour")


class ColourStatistics(nn.Module):
    """Parameter-free colour statistics with a frozen backbone's geometry (see the module docstring)."""

    fixed_depth = True
    """Its one block is fixed by construction (no deeper variant exists): `four_last`, a probe's default layer set,
    is no short backbone to warn about (`geodino.backbones.layers.backbone_layer_indices`)."""

    def __init__(self, in_chans: int, patch_size: int = 16, bins: int = 16, limit: float = 3.0) -> None:
        super().__init__()
        if in_chans < 1 or patch_size < 1 or bins < 1:
            raise ConfigError(
                f"baseline:colour needs positive in_chans, patch_size and bins (got {in_chans}, {patch_size}, {bins})"
            )
        if not limit > 0:
            raise ConfigError(f"baseline:colour option range={limit} must be a positive number of standard units")
        self.in_chans, self.patch_size, self.bins, self.limit = int(in_chans), int(patch_size), int(bins), float(limit)
        self.embed_dim = self.in_chans * (2 + self.bins)
        self.n_blocks = 1

    def extra_repr(self) -> str:
        return f"in_chans={self.in_chans}, patch_size={self.patch_size}, bins={self.bins}, range={self.limit}"

    def statistics(self, x: Tensor, window: tuple[int, int]) -> Tensor:
        """[B, C*(2+bins), H/wh, W/ww] statistics of each non-overlapping window of normalised `x` [B, C, H, W]:
        C means, C standard deviations, then C x bins histogram fractions (band-major)."""
        x = x.float()
        mean = F.avg_pool2d(x, window)
        up = mean.repeat_interleave(window[0], dim=2).repeat_interleave(window[1], dim=3)
        std = F.avg_pool2d((x - up).square(), window).sqrt()  # two passes: no E[x^2]-E[x]^2 cancellation
        idx = ((x + self.limit) * (self.bins / (2 * self.limit))).floor().clamp_(0, self.bins - 1)
        hist = torch.stack([F.avg_pool2d((idx == b).float(), window) for b in range(self.bins)], dim=2)
        return torch.cat([mean, std, hist.flatten(1, 2)], dim=1)

    def features(self, x: Tensor, idx: list[int]) -> tuple[list[Tensor], list[Tensor]]:
        """(patch maps [B, D, h, w], whole-image statistics [B, D]) once per requested block index (only 0)."""
        if x.ndim != 4 or x.shape[1] != self.in_chans:
            raise InputError(f"baseline:colour takes [B, {self.in_chans}, H, W] input, got {tuple(x.shape)}")
        if any(i != 0 for i in idx):
            raise ConfigError(f"baseline:colour has one block (index 0); layers {idx} were requested")
        p = self.patch_size
        maps = self.statistics(x, (p, p))
        cls = self.statistics(x, (x.shape[-2], x.shape[-1])).flatten(1)
        return [maps for _ in idx], [cls for _ in idx]
