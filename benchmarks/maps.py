"""Evidence for `geodino embed classify` and `geodino embed change` on the real scenes in ../shared/data.

1. Few-shot classification: a handful of points per class drawn by hand on each scene (pixel positions below,
   committed as EPSG:4326 GeoJSON in benchmarks/labels/, so they go through the reprojection), a feature raster
   from a random-init and from a pretrained ViT, then `classify_map`: blocked cross-validation accuracy (folds
   by label point), macro F1, for logistic regression and kNN.
2. Change: the same scene with a block of another part of it pasted in (B), both embedded, `change_map` with
   Otsu's threshold; IoU of the change mask with the pasted block on the feature grid (two pastes: one of
   clearly different content, one where the pasted water resembles the dark land it covers).

Run: `.venv/bin/python benchmarks/maps.py [--pretrained PATH] [--out DIR] [--write-labels]`. Skips cleanly
without ../shared/data. The pretrained default is the geodino ViT-tiny/8 (depth 6) of
benchmarks/pretrain_quality.py (712 steps on EuroSAT chips, not on these scenes); the random-init backbone
has the same architecture (`arch:vit_tiny?patch_size=8&depth=6&seed=0`).
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

import numpy as np
from bench_cli import Parser

os.environ.setdefault("HF_HUB_OFFLINE", "1")
ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
LABELS = Path(__file__).resolve().parent / "labels"
PRETRAINED = ROOT / "runs" / "bench_pretrain_quality" / "geodino" / "export" / "teacher.pth"  # pretrain_quality.py
RANDOM = "arch:vit_tiny?patch_size=8&depth=6&seed=0"

# (column, row) pixel positions drawn by looking at each scene (2-98 % stretched quick-looks), per class
SCENES: dict[str, dict] = {
    "rgb_byte": {
        "path": "scenes/RGB.byte.tif",
        "bands": None,
        "points": {
            "cloud": [(440, 110), (460, 80), (320, 220), (240, 165), (390, 170), (350, 205)],
            "deep_water": [(600, 300), (650, 450), (550, 550), (700, 250), (620, 350), (640, 600)],
            "shallow_water": [(100, 400), (120, 520), (180, 250), (70, 600), (150, 350), (180, 100)],
            "land": [(350, 330), (300, 380), (400, 550), (420, 620), (370, 420), (250, 330)],
        },
    },
    "l7_etms": {
        "path": "scenes/L7_ETMs.tif",
        "bands": [3, 2, 1],
        "points": {
            "water": [(300, 250), (320, 300), (280, 320), (330, 200), (300, 280), (335, 120)],
            "vegetation": [(30, 30), (120, 20), (20, 180), (100, 120), (220, 190), (150, 50)],
            "urban_bare": [(150, 250), (50, 250), (100, 300), (250, 100), (30, 320), (170, 290)],
        },
    },
    "sjer_052": {
        "path": "neon_sjer/SJER_052.tif",
        "bands": None,
        "points": {
            "tree": [(130, 40), (240, 90), (220, 190), (370, 320), (360, 160), (260, 240)],
            "grass": [(50, 120), (150, 300), (300, 380), (80, 350), (280, 50), (120, 150)],
            "rock_bare": [(30, 250), (320, 270), (140, 240), (60, 210), (300, 190)],
        },
    },
}


def write_labels() -> None:
    """Pixel positions -> points at the pixel centres in the scene CRS -> EPSG:4326 GeoJSON (one per scene)."""
    import geopandas as gpd
    import rasterio
    from shapely.geometry import Point

    LABELS.mkdir(exist_ok=True)
    for name, sc in SCENES.items():
        with rasterio.open(DATA / sc["path"]) as src:
            t, crs = src.transform, src.crs
        rows = [(cls, Point(*(t * (c + 0.5, r + 0.5)))) for cls, pts in sc["points"].items() for c, r in pts]
        gdf = gpd.GeoDataFrame({"class": [r[0] for r in rows]}, geometry=[r[1] for r in rows], crs=crs)
        gdf.to_crs("EPSG:4326").to_file(LABELS / f"{name}.geojson", driver="GeoJSON", COORDINATE_PRECISION=8)
        print(f"wrote {LABELS / f'{name}.geojson'} ({len(gdf)} points)")


def embed(scene: Path, spec: str, out: Path, bands: list[int] | None) -> Path:
    from geodino.embed import embed_raster

    if out.exists():
        return out
    opts = {"tile": 256, "overlap": 64, "batch_size": 4, "progress": False, "threads": 1}
    if bands:
        opts["bands"] = bands
    return embed_raster(str(scene), spec, out, **opts)


def classification(backbones: dict[str, str], work: Path, img: Path | None) -> list[dict]:
    from geodino.embed.classify import classify_map

    rows = []
    for name, sc in SCENES.items():
        for bname, spec in backbones.items():
            t0 = time.perf_counter()
            feats = embed(DATA / sc["path"], spec, work / f"{name}_{bname}.tif", sc["bands"])
            t_embed = time.perf_counter() - t0
            for method in ("logreg", "knn"):
                out = work / f"{name}_{bname}_{method}.tif"
                m = classify_map(feats, LABELS / f"{name}.geojson", out, column="class", method=method,
                                 neighbors=3 if method == "knn" else None, overwrite=True)  # fmt: skip
                cv = m["cv"]
                rows.append({"scene": name, "backbone": bname, "method": method, "n_points": cv["n"],
                             "classes": len(m["classes"]), "folds": cv["folds"], "cv_accuracy": cv["accuracy"],
                             "cv_macro_f1": cv["macro_f1"], "embed_s": round(t_embed, 1)})  # fmt: skip
                print(json.dumps(rows[-1]), flush=True)
                if img is not None and bname == "pretrained" and method == "logreg":
                    import shutil

                    shutil.copy(m["png"], img / f"classify_{name}.png")
    return rows


# (name, source row/col, destination row/col) of a 96 x 96 px block of RGB.byte pasted into B; multiples of the
# patch size 8, so the block covers whole feature cells (12 x 12 = 144)
PASTES = [
    ("shallow banks onto deep water", (360, 96), (400, 560)),
    ("deep water onto dark land", (256, 576), (400, 336)),
]


def change(backbones: dict[str, str], work: Path, img: Path | None) -> list[dict]:
    """RGB.byte (A) and A with one block pasted elsewhere (B): IoU of the Otsu change mask with the block."""
    import shutil

    import rasterio

    from geodino.embed.change import change_map

    src_path, size, p = DATA / "scenes" / "RGB.byte.tif", 96, 8
    with rasterio.open(src_path) as src:
        a, prof = src.read(), src.profile
    rows = []
    for k, (what, (sr, sc), (r0, c0)) in enumerate(PASTES):
        b = a.copy()
        b[:, r0 : r0 + size, c0 : c0 + size] = a[:, sr : sr + size, sc : sc + size]
        pb = work / f"rgb_byte_pasted{k}.tif"
        with rasterio.open(pb, "w", **prof) as dst:
            dst.write(b)
        truth = None
        for bname, spec in backbones.items():
            fa = embed(src_path, spec, work / f"rgb_byte_{bname}.tif", None)
            fb = embed(pb, spec, work / f"rgb_byte_pasted{k}_{bname}.tif", None)
            s = change_map(fa, fb, work / f"change{k}_{bname}.tif", threshold="otsu", overwrite=True)
            with rasterio.open(s["mask"]) as m:
                mask = m.read(1)
            if truth is None:
                truth = np.zeros_like(mask, bool)
                truth[r0 // p : (r0 + size) // p, c0 // p : (c0 + size) // p] = True
            pred = mask == 1
            inter, union = (pred & truth).sum(), (pred | truth).sum()
            rows.append({"paste": what, "backbone": bname, "iou": float(inter / union),
                         "threshold_otsu": s["threshold"], "changed_cells": int(pred.sum()),
                         "block_cells": int(truth.sum()), "outside_block": int((pred & ~truth).sum()),
                         "missed": int((~pred & truth).sum())})  # fmt: skip
            print(json.dumps(rows[-1]), flush=True)
            if img is not None and bname == "pretrained":
                shutil.copy(s["png"], img / f"change{k}_distance.png")
                shutil.copy(Path(s["mask"]).with_suffix(".png"), img / f"change{k}_mask.png")
    return rows


def main() -> int:
    ap = Parser(description=__doc__.splitlines()[0])
    ap.add_argument("--pretrained", default=str(PRETRAINED))
    ap.add_argument("--out", default=str(ROOT / "runs" / "bench_maps"))
    ap.add_argument("--img", default=None, help="copy the quick-looks for the docs into this folder")
    ap.add_argument("--write-labels", action="store_true", help="(re)write benchmarks/labels/*.geojson")
    args = ap.parse_args()
    if not DATA.exists():
        print(f"skip: {DATA} not found")
        return 0
    if args.write_labels:
        write_labels()
    work = Path(args.out)
    work.mkdir(parents=True, exist_ok=True)
    img = Path(args.img) if args.img else None
    backbones = {"random": RANDOM}
    if Path(args.pretrained).exists():
        backbones["pretrained"] = args.pretrained
    else:
        print(f"no pretrained checkpoint at {args.pretrained}: random init only", file=sys.stderr)
    rows = classification(backbones, work, img)
    res = {"classification": rows}
    res["change"] = change(backbones, work, img)
    (work / "results.json").write_text(json.dumps(res, indent=2))
    print("| scene | backbone | method | points | blocked-CV accuracy | macro F1 |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['scene']} | {r['backbone']} | {r['method']} | {r['n_points']} | {r['cv_accuracy']:.1%} | "
              f"{r['cv_macro_f1']:.2f} |")  # fmt: skip
    print("| pasted block | backbone | Otsu threshold | IoU | changed cells outside the block | block cells missed |")
    print("|---|---|---|---|---|---|")
    for r in res["change"]:
        print(f"| {r['paste']} | {r['backbone']} | {r['threshold_otsu']:.3f} | {r['iou']:.2f} | {r['outside_block']} | "
              f"{r['missed']} / {r['block_cells']} |")  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
