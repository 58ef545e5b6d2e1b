"""NeonTreeEvaluation (Weinstein et al.) for the canopy-height and tree-crown probes.

    python datasets/get_neon_canopy.py --root data/neon_canopy [--test-fraction 0.3] [--seed 0]

Downloads `evaluation.zip` and `annotations.zip` of Zenodo record 5914554 (NeonTreeEvaluation benchmark: 40 m
NEON plots as 0.1 m RGB GeoTIFFs with 1 m LiDAR CHMs and hand-drawn crown boxes in Pascal VOC), then lays them
out for geodino:

    ROOT/train/RGB/<PLOT>.tif      ROOT/train/CHM/<PLOT>_CHM.tif      ROOT/train/boxes/<PLOT>.xml
    ROOT/test/RGB/<PLOT>.tif       ROOT/test/CHM/<PLOT>_CHM.tif       ROOT/test/boxes/<PLOT>.xml

Plots are split by a seeded draw stratified by NEON site (the 4-letter prefix), so every site is in both parts
when it has at least two plots. Only plots that have both an RGB image and a CHM are kept. RGB and CHM grids
differ (0.1 m vs 1 m, offset origins): geodino's canopy probe co-registers them by bounds. Needs internet.
"""

from __future__ import annotations

import argparse
import random
import shutil
import tempfile
import urllib.request
import zipfile
from pathlib import Path

ZENODO = "https://zenodo.org/records/5914554/files/{}?download=1"


def fetch(name: str, dest: Path) -> Path:
    path = dest / name
    if not path.exists():
        print(f"downloading {name} ...")
        urllib.request.urlretrieve(ZENODO.format(name), path)
    return path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--root", type=Path, required=True)
    ap.add_argument("--test-fraction", type=float, default=0.3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--archives", type=Path, default=None, help="folder holding already downloaded zips")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        src = args.archives or Path(tmp)
        extract = Path(tmp) / "x"
        for name in ("evaluation.zip", "annotations.zip"):
            with zipfile.ZipFile(fetch(name, src)) as z:
                z.extractall(extract)
        rgb = {p.stem: p for p in extract.rglob("*.tif") if "RGB" in p.parts and "CHM" not in p.stem}
        chm = {p.stem[: -len("_CHM")]: p for p in extract.rglob("*_CHM.tif")}
        xml = {p.stem: p for p in extract.rglob("*.xml")}
        plots = sorted(set(rgb) & set(chm))
        if not plots:
            raise SystemExit(f"no RGB/CHM pairs found in the archives under {extract}; check the downloads")
        by_site: dict[str, list[str]] = {}
        for p in plots:
            by_site.setdefault(p.split("_")[0], []).append(p)
        rng = random.Random(args.seed)
        test: set[str] = set()
        for _site, names in sorted(by_site.items()):
            rng.shuffle(names)
            k = round(len(names) * args.test_fraction) if len(names) > 1 else 0
            test.update(names[:k])
        for p in plots:
            part = "test" if p in test else "train"
            for sub, file, name in (("RGB", rgb[p], f"{p}.tif"), ("CHM", chm[p], f"{p}_CHM.tif")):
                (args.root / part / sub).mkdir(parents=True, exist_ok=True)
                shutil.copy2(file, args.root / part / sub / name)
            if p in xml:
                (args.root / part / "boxes").mkdir(parents=True, exist_ok=True)
                shutil.copy2(xml[p], args.root / part / "boxes" / f"{p}.xml")
    print(f"{len(plots) - len(test)} train and {len(test)} test plots in {args.root}")
    print(f"canopy: geodino probe -c configs/eval/canopy_neon_dpt.yaml -b SPEC (paths under {args.root})")


if __name__ == "__main__":
    main()
