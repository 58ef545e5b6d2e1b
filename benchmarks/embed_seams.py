"""Part 3 of the feature-raster benchmark (run through `benchmarks/embed.py`): seams, the mean feature change
across tile borders divided by the same inside tiles, per tiling (no overlap, cosine, Hann, centre crop), and the
error against whole-image inference at tile edges and elsewhere."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def seam_ratio(feats: np.ndarray, edges: set[int]) -> float:
    """Mean adjacent-cell feature distance across positions in `edges` / elsewhere (both axes, valid cells)."""
    valid = ~np.isnan(feats).any(0)
    f = np.nan_to_num(feats)
    across, inside = [], []
    for axis in (1, 2):
        d = np.linalg.norm(np.diff(f, axis=axis), axis=0)
        ok = valid[1:, :] & valid[:-1, :] if axis == 1 else valid[:, 1:] & valid[:, :-1]
        pos = np.arange(d.shape[axis - 1]) + 1  # boundary between cell i-1 and i
        is_edge = np.isin(pos, sorted(edges))
        m = is_edge[:, None] if axis == 1 else is_edge[None, :]
        across.append(d[ok & m])
        inside.append(d[ok & ~m])
    a, i = np.concatenate(across), np.concatenate(inside)
    return float(a.mean() / i.mean())


def seams(src_path: Path, spec: str, work: Path, tile: int) -> list[dict]:
    """Seam ratio and error against whole-image inference (cells at tile edges vs elsewhere) per tiling."""
    import rasterio
    import torch

    from geodino.backbones import load_backbone
    from geodino.embed import embed_raster
    from geodino.embed.plan import make_plan

    bb = load_backbone(spec)
    p = bb.patch_size
    with rasterio.open(src_path) as ds:
        h, w, t = ds.height, ds.width, ds.transform
        img = ds.read()[:, : h // p * p, : w // p * p]
    with torch.inference_mode():
        whole = bb.features(bb.normalize(torch.from_numpy(img[None] / 255.0).float()))[0][0][0].numpy()
    # embed's default margin is overlap/4 rounded down to the patch: at small tiles (128 px, patch 16: 8 px) that is
    # 0 cells, and the default row equalled the no-margin row; then one patch, so the margin is measured
    default_margin = (tile // 4 // 4) // p * p
    margin = default_margin or p
    why = "embed's default, overlap/4" if margin == default_margin else "1 patch; the default overlap/4 is 0 cells here"
    cases = [
        ("no overlap (tiles abut)", dict(overlap=0)),
        (f"overlap 1/4, cosine, margin {margin} px ({why})", dict(overlap=tile // 4, blend="cosine", margin=margin)),
        ("overlap 1/4, cosine, no margin", dict(overlap=tile // 4, blend="cosine", margin=0)),
        ("overlap 1/4, hann", dict(overlap=tile // 4, blend="hann")),
        ("overlap 1/4, centre crop", dict(overlap=tile // 4, blend="center")),
    ]
    rows = []
    for name, kw in cases:
        out = embed_raster(src_path, bb, work / "seam.zarr", tile=tile, progress=False, overwrite=True, **kw)
        with rasterio.open(out) as ds:
            f = ds.read()[:, : whole.shape[1], : whole.shape[2]]
        plan = make_plan(h, w, t, patch=p, tile=tile, overlap=kw["overlap"])
        tc = plan.tile_cells
        starts = plan.row_starts + plan.col_starts
        edges = {s for s in starts if s > 0} | {s + tc for s in starts if s + tc < max(f.shape[1:])}
        err = np.linalg.norm(f - whole, axis=0) / np.linalg.norm(whole, axis=0).mean()
        near = np.zeros(err.shape, bool)
        for e in edges:
            near[max(0, e - 1) : e + 1, :] = True
            near[:, max(0, e - 1) : e + 1] = True
        rows.append(
            {
                "case": name,
                "seam_ratio": seam_ratio(f, edges),
                "whole_ratio": seam_ratio(whole, edges),
                "err_edge": float(err[near].mean()),
                "err_inside": float(err[~near].mean()),
            }
        )
    return rows
