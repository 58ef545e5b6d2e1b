"""Upsampling a patch-grid feature store to the input's pixel grid (bilinear, nodata-aware, streaming).

A second pass over the finished patch-grid store, in row blocks, so memory stays bounded: each output pixel
takes the bilinear mix of the four nearest cell centres (`align_corners=False`: pixel centre y maps to cell
coordinate (y + 0.5) / p - 0.5, clamped at the edges). Invalid cells get zero weight (normalised convolution).
The upsampled grid is the input's own grid, so a pixel is nodata exactly where the input pixel is invalid (the
validity rule of the embedding: nodata in every band, NaN in any band, the dataset mask), read again from the
input with the source that was embedded; without a source (a store upsampled on its own) a pixel is nodata when
its own cell is. int8 stores are dequantised, interpolated, re-normalised and re-quantised; L2-normalised stores
are re-normalised.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import torch

from geodino.embed.plan import auto_chunk
from geodino.embed.writers import (
    INT8_NODATA,
    VAR,
    ZarrBlockWriter,
    create_store,
    dequantize_int8,
    encode,
    read_store_info,
)


def upsample_store(
    src: Path, dst: Path, plan: Any, *, l2: bool, progress: bool = True, rows: int = 0, source: Any = None
) -> None:
    """Write `dst` at the input resolution from the patch-grid store `src` of `plan` (`l2`: unit-length vectors);
    `source` (the embedded input, `geodino.embed.sources`) masks every pixel the input holds as invalid."""
    import zarr

    from geodino.progress import progress_bar

    info = read_store_info(src)
    p, H, W = plan.patch, plan.height_px, plan.width_px
    dtype = info["dtype"]
    chunk = auto_chunk(len(info["band_names"]), {"int8": 1, "float16": 2}.get(dtype, 4))
    attrs = {k: (v if isinstance(v, str) else json.dumps(v)) for k, v in info["attrs"].items()}
    create_store(
        dst,
        height=H,
        width=W,
        transform=plan.transform,
        crs=info["crs"],
        band_names=info["band_names"],
        dtype=dtype,
        chunk=chunk,
        metadata=attrs,
    )
    cells = zarr.open_array(str(Path(src) / VAR), mode="r", zarr_format=2)
    writer = ZarrBlockWriter(dst)
    l2 = bool(l2)
    rows = rows or chunk
    col_step = max(chunk, (4096 // chunk) * chunk)
    n_steps = math.ceil(H / rows) * math.ceil(W / col_step)
    bar = progress_bar(total=n_steps, desc="upsample", disable=not progress, unit="block")
    reader = source.open() if source is not None else None  # this thread's own handle
    try:
        _upsample_blocks(cells, writer, reader, bar, dtype=dtype, p=p, H=H, W=W, rows=rows, col_step=col_step, l2=l2)
    finally:
        if reader is not None:
            reader.close()
        bar.close()


def _upsample_blocks(
    cells: Any,
    writer: Any,
    reader: Any,
    bar: Any,
    *,
    dtype: str,
    p: int,
    H: int,
    W: int,
    rows: int,
    col_step: int,
    l2: bool,
) -> None:
    """The block loop of `upsample_store`: bilinear features, masked by the input's validity when `reader` is set."""
    for y0 in range(0, H, rows):
        y1 = min(H, y0 + rows)
        for x0 in range(0, W, col_step):
            x1 = min(W, x0 + col_step)
            # cells whose centres bracket the block, plus one cell of context on each side
            cy0, cy1 = max(0, y0 // p - 1), min(cells.shape[1], (y1 - 1) // p + 2)
            cx0, cx1 = max(0, x0 // p - 1), min(cells.shape[2], (x1 - 1) // p + 2)
            raw = np.asarray(cells[:, cy0:cy1, cx0:cx1])
            if dtype == "int8":
                valid = ~np.any(raw == INT8_NODATA, axis=0)  # as `EmbeddingReader.read`: -128 in any band
                vals = dequantize_int8(raw)
            else:
                vals = raw.astype(np.float32)
                valid = ~np.any(np.isnan(vals), axis=0)
            vals = np.where(valid[None], vals, 0.0).astype(np.float32)
            feats, ok = _bilinear(vals, valid, p, (cy0, cx0), (y0, y1, x0, x1))
            if reader is not None:
                ok &= reader.read(y0, y1, x0, x1)[1]
            if l2:
                feats /= np.maximum(np.sqrt(np.sum(feats * feats, axis=0, keepdims=True)), 1e-12)
            writer.write(y0, x0, encode(feats, ok, dtype))
            bar.update()


def _bilinear(vals: np.ndarray, valid: np.ndarray, p: int, origin: tuple[int, int], box: tuple[int, int, int, int]):
    """Bilinear (align_corners=False) upsampling of cells `vals [D,h,w]` (cell (0,0) = `origin`) onto pixel box."""
    y0, y1, x0, x1 = box
    cy0, cx0 = origin
    h, w = valid.shape

    def axis(lo: int, hi: int, c0: int, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        u = (np.arange(lo, hi) + 0.5) / p - 0.5 - c0
        u = np.clip(u, 0, n - 1)
        i0 = np.floor(u).astype(int)
        i1 = np.minimum(i0 + 1, n - 1)
        return i0, i1, (u - i0).astype(np.float32)

    iy0, iy1, fy = axis(y0, y1, cy0, h)
    ix0, ix1, fx = axis(x0, x1, cx0, w)
    t = torch.from_numpy(np.concatenate([vals * valid[None], valid[None].astype(np.float32)]))
    fy_t, fx_t = torch.from_numpy(fy)[:, None], torch.from_numpy(fx)[None, :]
    rows = t[:, iy0] * (1 - fy_t) + t[:, iy1] * fy_t  # [D+1, Y, w]
    out = rows[:, :, ix0] * (1 - fx_t) + rows[:, :, ix1] * fx_t  # [D+1, Y, X]
    den = out[-1]
    feats = (out[:-1] / torch.where(den > 0, den, torch.ones_like(den))).numpy()
    own_y = np.clip((np.arange(y0, y1) // p) - cy0, 0, h - 1)
    own_x = np.clip((np.arange(x0, x1) // p) - cx0, 0, w - 1)
    ok = valid[np.ix_(own_y, own_x)] & (den.numpy() > 0)
    return feats.astype(np.float32), ok
