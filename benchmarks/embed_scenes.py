"""Evidence for `geodino embed` on many scenes and on STAC, on the real RGB.byte scene in ../shared/data.

RGB.byte is cut into a 2x2 grid of overlapping COG "scenes" (each 64 px wider/taller than its quarter, cut on the
patch grid so the scenes' cells line up with the whole scene's), listed
in a STAC ItemCollection (asset `image`, eo:bands blue/green/red in reversed file order, so `--asset-bands
red,green,blue` must reorder them). Then:

1. the STAC run (one process) vs. the same scenes as a folder split over 2 ranks run one after the other (as a
   SLURM array would): identical per-scene bytes, and wall times;
2. the VRT mosaic vs. the whole scene embedded in one piece: share of mosaic cells bitwise equal to the
   whole-scene features and the largest cosine distance, away from and near the scene borders (each scene sees only its
   own pixels, so cells near a scene edge may differ: the mosaic is a mosaic of scenes, not one raster);
3. a resumed run after deleting one scene's output redoes only that scene.

Run: `.venv/bin/python benchmarks/embed_scenes.py [--out DIR] [--backbone SPEC]` (default a random ViT-S/16).
Skips cleanly without ../shared/data.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import time
from pathlib import Path

import numpy as np
from bench_cli import Parser

os.environ.setdefault("HF_HUB_OFFLINE", "1")
ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
SPEC = "arch:vit_small?seed=0"
OPTS = {"tile": 256, "overlap": 64, "progress": False}


def cut_scenes(src_path: Path, folder: Path, pad: int = 64) -> list[dict]:
    """2x2 overlapping COGs of the source with bands reversed (B, G, R); returns STAC item dicts."""
    import rasterio
    from rasterio.windows import Window

    folder.mkdir(parents=True, exist_ok=True)
    items = []
    with rasterio.open(src_path) as src:
        h2, w2 = src.height // 2 // 16 * 16, src.width // 2 // 16 * 16  # cuts on the 16 px patch grid
        for i in range(2):
            for j in range(2):
                r0, c0 = max(0, i * h2 - pad), max(0, j * w2 - pad)
                r1, c1 = min(src.height, (i + 1) * h2 + pad), min(src.width, (j + 1) * w2 + pad)
                win = Window(c0, r0, c1 - c0, r1 - r0)
                data = src.read(window=win)[::-1]
                profile = {
                    "driver": "COG", "width": win.width, "height": win.height, "count": 3, "dtype": "uint8",
                    "crs": src.crs, "transform": src.window_transform(win), "nodata": src.nodata,
                }  # fmt: skip
                name = f"rgb_{i}{j}"
                with rasterio.open(folder / f"{name}.tif", "w", **profile) as dst:
                    dst.write(data)
                items.append({
                    "type": "Feature", "stac_version": "1.0.0", "id": name, "geometry": None, "links": [],
                    "properties": {"datetime": "2024-01-01T00:00:00Z"},
                    "assets": {"image": {"href": f"cogs/{name}.tif",
                                         "eo:bands": [{"name": n} for n in ("blue", "green", "red")]}},
                })  # fmt: skip
    return items


def main() -> int:
    ap = Parser()
    ap.add_argument("--out", default="runs/bench_embed_scenes")
    ap.add_argument("--backbone", default=SPEC)
    args = ap.parse_args()
    src = DATA / "scenes" / "RGB.byte.tif"
    if not src.exists():
        print(f"skip: {src} not found")
        return 0
    import rasterio
    import torch

    from geodino.backbones import load_backbone
    from geodino.embed import embed_raster, embed_scenes

    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "2")))
    out = Path(args.out)
    shutil.rmtree(out, ignore_errors=True)
    items = cut_scenes(src, out / "cogs")
    (out / "items.json").write_text(json.dumps({"type": "FeatureCollection", "features": items}))
    bb = load_backbone(args.backbone)
    res: dict[str, float | str] = {}

    t = time.perf_counter()
    (mosaic,) = embed_scenes(out / "items.json", backbone=bb, out=out / "stac", asset="image",
                             asset_bands=["red", "green", "blue"], **OPTS)  # fmt: skip
    res["stac_run_s"] = round(time.perf_counter() - t, 1)
    t = time.perf_counter()
    for rank in range(2):  # the folder, as a 2-task array (bands reordered with --bands)
        embed_scenes(out / "cogs", backbone=bb, out=out / "ranks", bands=[3, 2, 1], world_size=2, rank=rank, **OPTS)
    res["two_ranks_s"] = round(time.perf_counter() - t, 1)
    same = all(
        (out / "stac" / f"{it['id']}.tif").read_bytes() == (out / "ranks" / f"{it['id']}.tif").read_bytes()
        for it in items
    )
    res["stac_equals_ranks_bytes"] = str(same)

    t = time.perf_counter()
    whole = embed_raster(src, bb, out / "whole.tif", **OPTS)
    res["whole_scene_s"] = round(time.perf_counter() - t, 1)
    with rasterio.open(mosaic) as m, rasterio.open(whole) as w:
        a, b = m.read(), w.read()
        res["mosaic_cells"] = f"{m.width}x{m.height}"
        res["whole_cells"] = f"{w.width}x{w.height}"
    ok = np.isfinite(a[0]) & np.isfinite(b[0])
    cos = (a * b).sum(0) / (np.linalg.norm(a, axis=0) * np.linalg.norm(b, axis=0) + 1e-12)
    # cells within 4 cells (64 px) of an inner scene edge: where the later scene starts (rows/cols of the pad)
    with rasterio.open(src) as s:
        ch, cw = s.height // 2 // 16, s.width // 2 // 16  # the cut, in cells; scene edges at cut -/+ 4 cells
    near = np.zeros(a.shape[1:], bool)
    for k in (ch - 4, ch + 4):
        near[max(0, k - 4) : k + 4] = True
    for k in (cw - 4, cw + 4):
        near[:, max(0, k - 4) : k + 4] = True
    for where, sel in (("far_from_edges", ok & ~near), ("near_edges", ok & near)):
        res[f"cells_{where}"] = int(sel.sum())
        res[f"share_bitwise_equal_{where}"] = round(float(np.all(a == b, axis=0)[sel].mean()), 4)
        res[f"max_cosine_distance_{where}"] = f"{float((1 - cos[sel]).max()):.2e}"

    (out / "stac" / "rgb_10.tif").unlink()
    t = time.perf_counter()
    embed_scenes(out / "items.json", backbone=bb, out=out / "stac", asset="image",
                 asset_bands=["red", "green", "blue"], resume=True, **OPTS)  # fmt: skip
    res["resume_one_of_four_s"] = round(time.perf_counter() - t, 1)
    for k, v in res.items():
        print(f"| {k} | {v} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
