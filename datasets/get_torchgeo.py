"""Download a torchgeo benchmark into the layout geodino's probe adapters read, then check it opens.

    python datasets/get_torchgeo.py eurosat --root data/eurosat
    python datasets/get_torchgeo.py loveda --root data/loveda
    python datasets/get_torchgeo.py vhr10 --root data/vhr10          # needs pycocotools
    python datasets/get_torchgeo.py dior --root data/dior
    python datasets/get_torchgeo.py bigearthnet --root data/bigearthnet   # ~66 GB (S2 only: --modality s2)

torchgeo does the download (its own URLs and checksums, `download=True`); this script then opens every split
through `geodino.eval.datasets.build_dataset` and prints the number of samples and the config key to use.
Needs internet access; nothing here runs in the tests.
"""

from __future__ import annotations

import argparse
from pathlib import Path

SPLITS = {
    "eurosat": ("train", "val", "test"),
    "loveda": ("train", "val", "test"),
    "dior": ("train", "val", "test"),
    "bigearthnet": ("train", "val", "test"),
    "vhr10": ("positive",),
}


def download(name: str, root: Path, modality: str) -> None:
    """Fetch every split of `name` with torchgeo's own downloader (checksums on)."""
    import torchgeo.datasets as tg

    root.mkdir(parents=True, exist_ok=True)
    for split in SPLITS[name]:
        print(f"{name}: fetching split {split} into {root} ...")
        if name == "eurosat":
            tg.EuroSAT(str(root), split=split, download=True, checksum=True)
        elif name == "loveda":
            tg.LoveDA(str(root), split=split, download=True, checksum=True)
        elif name == "dior":
            tg.DIOR(str(root), split=split, download=True, checksum=True)
        elif name == "bigearthnet":
            tg.BigEarthNet(str(root), split=split, bands=modality, download=True, checksum=True)
        elif name == "vhr10":
            tg.VHR10(str(root), split=split, download=True, checksum=True)


def check(name: str, root: Path, modality: str) -> None:
    """Open the splits through geodino's adapters and print what a probe will see."""
    from geodino.eval.datasets import DatasetConfig, build_dataset

    cfg = DatasetConfig(name=name, root=str(root), modality=modality)
    if name in ("loveda", "dior"):
        cfg.test_split = "val"  # their test splits ship without labels
    for split in ("train", "val", "test"):
        ds = build_dataset(cfg, split)
        print(f"  {split:<5} {len(ds):>7} samples, {ds.num_classes} classes, bands {','.join(ds.bands)}")
    print(f"ready: use tasks.<task>.data.root={root} (data.name={name})")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("name", choices=sorted(SPLITS))
    ap.add_argument("--root", type=Path, required=True, help="folder to download into (e.g. data/eurosat)")
    ap.add_argument("--modality", default="s2", choices=("s1", "s2", "all"), help="BigEarthNet only")
    ap.add_argument("--check-only", action="store_true", help="do not download; only open the folder")
    args = ap.parse_args()
    if not args.check_only:
        download(args.name, args.root, args.modality)
    check(args.name, args.root, args.modality)


if __name__ == "__main__":
    main()
