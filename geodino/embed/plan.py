"""The window grid of a feature raster: tiles, overlap, the patch-aligned output grid and its blocks.

Everything is counted in *cells* of the output grid (one cell = one ViT patch = `patch` x `patch` input
pixels), so tiles always start on the patch grid: a translation-equivariant backbone then sees the same pixels
in every tile, and tile borders fall between output cells. The output transform is the input transform scaled
by the patch size (same origin, same CRS), so `out[r, c]` covers input pixels `[r*p, (r+1)*p) x [c*p, (c+1)*p)`.

Work is cut into *blocks*: chunk-aligned rectangles of output cells (a stripe of `block_rows` rows and at
most `max_block_cols` columns). A block is the unit of resume and of parallel work: its cells are written by
exactly one process, and its values do not depend on which process computed it or in which order.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from typing import Any

from geodino.errors import ConfigError


def tile_starts(n_cells: int, tile_cells: int, stride_cells: int) -> tuple[int, ...]:
    """Tile origins along one axis: every `stride` cells, the last one shifted back to end on the raster edge.

    Shifting the last tile (rather than padding past the edge) keeps every tile full of data; it stays on the
    patch grid because it is counted in cells. A raster smaller than one tile gets one (padded) tile at 0.
    """
    if n_cells <= tile_cells:
        return (0,)
    starts = list(range(0, n_cells - tile_cells + 1, stride_cells))
    if starts[-1] + tile_cells < n_cells:
        starts.append(n_cells - tile_cells)
    return tuple(starts)


@dataclasses.dataclass(frozen=True)
class Block:
    """A chunk-aligned rectangle of output cells `[r0, r1) x [c0, c1)`, the unit of resume and parallel work."""

    index: int
    r0: int
    r1: int
    c0: int
    c1: int
    col_block: int


@dataclasses.dataclass(frozen=True)
class Plan:
    """The tile grid and output grid of one feature raster (all sizes in output cells unless named `_px`)."""

    height_px: int
    width_px: int
    patch: int
    tile_px: int
    overlap_px: int
    chunk: int
    block_rows: int
    max_block_cols: int
    transform: Any  # affine.Affine of the input
    out_transform: Any  # affine.Affine of the output (patch grid)
    out_height: int
    out_width: int
    tile_cells: int
    stride_cells: int
    row_starts: tuple[int, ...]
    col_starts: tuple[int, ...]

    @property
    def n_tiles(self) -> int:
        return len(self.row_starts) * len(self.col_starts)

    def col_blocks(self) -> list[tuple[int, int]]:
        """Column ranges `[c0, c1)` of the column blocks (chunk-aligned, at most `max_block_cols` wide)."""
        width = self.max_block_cols
        return [(c, min(c + width, self.out_width)) for c in range(0, self.out_width, width)]

    def blocks(self) -> list[Block]:
        """All blocks in processing order: column block by column block, stripes top to bottom.

        This order lets one process carry the blending band from a stripe to the next one below it.
        """
        out: list[Block] = []
        for cb, (c0, c1) in enumerate(self.col_blocks()):
            for r0 in range(0, self.out_height, self.block_rows):
                out.append(Block(len(out), r0, min(r0 + self.block_rows, self.out_height), c0, c1, cb))
        return out

    def batch_fill(self, batch_size: int) -> int:
        """Tiles per batch for a `batch_size` cap: tile rows are batched on their own (see `geodino.embed.sweep`),
        so a row of n tiles takes ceil(n / batch_size) batches; filling each with ceil(n / that) tiles keeps the
        same number of forwards with balanced batches (21 tiles at 8: 7+7+7, not 8+8+5). A compiled forward runs
        one batch shape and pads smaller batches to it, so 8+8+5 cost 24 tiles of work against 21. n is the
        widest column block's row (the others are at most as wide; their short rows end in a smaller batch)."""
        if batch_size < 1:
            raise ConfigError(f"batch_size={batch_size} must be >= 1")
        c0, c1 = self.col_blocks()[0]
        n = len(self.tiles_touching(self.col_starts, c0, c1))
        if n <= batch_size:
            return max(n, 1)
        return math.ceil(n / math.ceil(n / batch_size))

    def tiles_touching(self, starts: Sequence[int], lo: int, hi: int) -> list[int]:
        """Indices of tiles (along one axis) whose footprint `[s, s + tile)` meets `[lo, hi)`."""
        return [i for i, s in enumerate(starts) if s < hi and s + self.tile_cells > lo]

    def run_tiles(self, run: Sequence[Block]) -> tuple[list[int], list[int]]:
        """(tile rows, tile columns) a run of blocks stacked in one column block needs, in sweep order."""
        return self.tiles_touching(self.row_starts, run[0].r0, run[-1].r1), self.tiles_touching(
            self.col_starts, run[0].c0, run[0].c1
        )

    def ramps(self, starts: Sequence[int], i: int, n_cells: int) -> tuple[int, int]:
        """Blending ramp lengths (cells) on the low and high side of tile `i`: its overlap with each neighbour.

        Zero on a side that faces the raster edge (nothing to blend with there).
        """
        t = self.tile_cells
        lo = starts[i - 1] + t - starts[i] if i > 0 else 0
        hi = starts[i] + t - starts[i + 1] if i + 1 < len(starts) else 0
        return max(0, min(lo, t)), max(0, min(hi, t))

    def to_dict(self) -> dict[str, Any]:
        """Plain values that identify this plan (stored with partial outputs so a resume can check them)."""
        return {
            "height_px": self.height_px,
            "width_px": self.width_px,
            "patch": self.patch,
            "tile_px": self.tile_px,
            "overlap_px": self.overlap_px,
            "chunk": self.chunk,
            "block_rows": self.block_rows,
            "max_block_cols": self.max_block_cols,
            "transform": list(self.transform)[:6],
        }


def cells(px: int, patch: int) -> int:
    """Output cells across `px` input pixels: a last partial patch is a cell of its own (the input is padded)."""
    return math.ceil(px / patch)


def make_plan(
    height_px: int,
    width_px: int,
    transform: Any,
    *,
    patch: int,
    tile: int = 512,
    overlap: int = 128,
    chunk: int = 128,
    block_rows: int | None = None,
    max_block_cols: int = 512,
) -> Plan:
    """Build the tile grid for a `height_px` x `width_px` raster and a backbone with patch size `patch`.

    `tile` and `overlap` are in input pixels and must be multiples of `patch` (so tiles sit on the patch grid);
    `chunk` (output cells) is the storage chunk; blocks are `block_rows` (default: `chunk`) rows high and at
    most `max_block_cols` (rounded to a multiple of `chunk`) wide, which bounds memory for any raster width.
    """
    from affine import Affine

    if patch < 1:
        raise ConfigError(f"patch size {patch} must be a positive integer")
    if tile % patch or tile <= 0:
        raise ConfigError(
            f"tile={tile} must be a positive multiple of the backbone's patch size {patch}; pass --tile "
            f"{nearest_multiples(tile, patch)}"
        )
    if overlap % patch or overlap < 0:
        raise ConfigError(
            f"overlap={overlap} must be a non-negative multiple of the backbone's patch size {patch}; pass "
            f"--overlap {nearest_multiples(overlap, patch, lowest=0)}"
        )
    if overlap * 2 > tile:
        raise ConfigError(f"overlap={overlap} must be at most half the tile ({tile}); use a larger tile")
    if chunk < 1:
        raise ConfigError(f"chunk={chunk} must be a positive number of output cells")
    block_rows = chunk if block_rows is None else int(block_rows)
    if block_rows < 1 or block_rows % chunk:
        raise ConfigError(f"block_rows={block_rows} must be a positive multiple of chunk={chunk}")
    max_block_cols = max(chunk, (int(max_block_cols) // chunk) * chunk)
    if not isinstance(transform, Affine):
        transform = Affine(*list(transform)[:6])
    out_h, out_w = cells(height_px, patch), cells(width_px, patch)
    tc, oc = tile // patch, overlap // patch
    sc = tc - oc
    return Plan(
        height_px=int(height_px),
        width_px=int(width_px),
        patch=int(patch),
        tile_px=int(tile),
        overlap_px=int(overlap),
        chunk=int(chunk),
        block_rows=block_rows,
        max_block_cols=max_block_cols,
        transform=transform,
        out_transform=transform @ Affine.scale(patch),
        out_height=out_h,
        out_width=out_w,
        tile_cells=tc,
        stride_cells=sc,
        row_starts=tile_starts(out_h, tc, sc),
        col_starts=tile_starts(out_w, tc, sc),
    )


def nearest_multiples(value: int, patch: int, *, lowest: int = 1) -> str:
    """The valid values next to `value` for a size that must be a multiple of `patch` (at least `lowest`), for an
    error message: "96 or 112", or one value when `value` lies below the first multiple."""
    below = max(value // patch * patch, 0)
    above = below + patch
    return f"{below} or {above}" if below >= lowest else str(max(above, -(-lowest // patch) * patch))


def auto_chunk(n_bands: int, itemsize: int, budget_bytes: int = 16 * 2**20) -> int:
    """The largest power-of-two spatial chunk (16..256 cells) whose (bands, chunk, chunk) block fits the budget.

    Whole pixel vectors live in one chunk (readers want all bands of a place at once); the budget keeps one
    chunk small enough for GDAL's block cache and for a partial-chunk rewrite.
    """
    c = 256
    while c > 16 and n_bands * c * c * itemsize > budget_bytes:
        c //= 2
    return c
