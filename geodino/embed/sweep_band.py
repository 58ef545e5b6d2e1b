"""The sweep's blending band (`_Band`): accumulators one tile high over one column block, into which each batch's
features are blended with their tile weights, and from which the rows no later tile row touches go to the writer
(normalised and cast on an accelerator, so the host copies each cell's features once).
"""

from __future__ import annotations

import queue
from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np
import torch

from geodino.embed.plan import Block, Plan
from geodino.embed.writers import encode
from geodino.errors import InputError

if TYPE_CHECKING:
    from geodino.embed.sweep import _Tiles


class _Band:
    """Blending accumulators one tile high over one column block: feature sum and weight sum on the inference device
    (torch, the same float32 products and sums as numpy's), cell validity on the host."""

    def __init__(
        self,
        plan: Plan,
        run: list[Block],
        dim: int,
        device: torch.device | str = "cpu",
        start_counts: dict[int, int] | None = None,
    ) -> None:
        self.plan, self.run = plan, run
        tc = plan.tile_cells
        self.trows, tcols = plan.run_tiles(run)
        self.x_lo = plan.col_starts[tcols[0]]
        width = plan.col_starts[tcols[-1]] + tc - self.x_lo
        self.base = plan.row_starts[self.trows[0]]
        self.acc = torch.zeros((dim, tc, width), dtype=torch.float32, device=device)
        self.on_device = torch.device(device).type != "cpu"  # finished rows normalised and cast on the accelerator
        self.wsum = torch.zeros((tc, width), dtype=torch.float32, device=device)
        self.valid = np.zeros((tc, width), bool)
        self.n_valid = {b.index: (start_counts or {}).get(b.index, 0) for b in run}  # valid cells written per block

    @torch.inference_mode()  # the features are inference tensors (and no version counters to bump)
    def add(self, i: int, tiles: _Tiles, feats: torch.Tensor, weights: Callable[[int, int], torch.Tensor]) -> None:
        """Blend a batch's features [n, D, tc, tc] into the band."""
        plan, tc, p = self.plan, self.plan.tile_cells, self.plan.patch
        if feats.shape[-2:] != (tc, tc):
            raise InputError(
                f"the backbone returned {tuple(feats.shape[-2:])} feature maps for {plan.tile_px}-px tiles; "
                f"expected {tc}x{tc} (tile / patch size)"
            )
        assert plan.row_starts[i] == self.base
        assert tiles.valid is not None  # a batch handed on holds its tiles
        for j, valid_px, full, f in zip(tiles.cols, tiles.valid, tiles.full, feats):
            x = plan.col_starts[j] - self.x_lo
            w = weights(i, j)
            self.acc[:, :, x : x + tc] += f * w  # not in place: `feats` may be the backbone's own (a view of its state)
            self.wsum[:, x : x + tc] += w
            # a cell is valid when any of its input pixels is (all-valid tiles, the common case, skip the reduction)
            cells = True if full else valid_px.reshape(tc, p, tc, p).any(axis=(1, 3))
            self.valid[:, x : x + tc] |= cells

    @torch.inference_mode()
    def flush_after(self, i: int, out_q: queue.Queue, l2: bool, dtype: str) -> int:
        """Send the rows no later tile row touches to the writer, shift the band up; return blocks completed."""
        plan, tc, run = self.plan, self.plan.tile_cells, self.run
        last = i == self.trows[-1]
        nxt = self.base + tc if last else plan.row_starts[i + 1]
        lo, hi = max(self.base, run[0].r0), min(nxt, run[-1].r1, plan.out_height)
        completed = 0
        if hi > lo:
            c0, c1 = run[0].c0, run[0].c1
            xs, rs = slice(c0 - self.x_lo, c1 - self.x_lo), slice(lo - self.base, hi - self.base)
            wsum = self.wsum[rs, xs]
            weighted = wsum > 0
            f = self.acc[:, rs, xs] / torch.where(weighted, wsum, 1.0)
            if self.on_device:  # normalised and cast where they are: the host gets half the bytes and no arithmetic
                if l2:
                    f = f / torch.sqrt((f * f).sum(0, keepdim=True)).clamp_min(1e-12)
                f = f.half() if dtype == "float16" else f  # IEEE round-to-nearest-even, as numpy's cast
            feats = f.cpu().numpy()  # the one copy of the row to the host
            valid = self.valid[rs, xs] & weighted.cpu().numpy()
            if l2 and not self.on_device:
                feats /= np.maximum(np.sqrt(np.sum(feats * feats, axis=0, keepdims=True)), 1e-12)
            out_q.put(("data", (lo, c0), encode(feats, valid, dtype)))
            for b in run:
                r0, r1 = max(lo, b.r0), min(hi, b.r1)
                if r1 > r0:
                    self.n_valid[b.index] += int(valid[r0 - lo : r1 - lo].sum())
                if lo < b.r1 <= hi:
                    out_q.put(("done", b.index, (self.n_valid[b.index], b.r1, c0)))
                    completed += 1
                elif b.r0 < hi < b.r1:  # written part-way: record the rows done
                    out_q.put(("rows", b.index, (self.n_valid[b.index], hi, c0)))
        if not last:
            shift = nxt - self.base
            for arr in (self.acc, self.wsum, self.valid):
                if isinstance(arr, torch.Tensor):  # torch refuses a copy between overlapping views: copy it out first
                    arr[..., : tc - shift, :] = arr[..., shift:, :].clone()
                else:
                    arr[..., : tc - shift, :] = arr[..., shift:, :]
                arr[..., tc - shift :, :] = 0
            self.base = nxt
        return completed
