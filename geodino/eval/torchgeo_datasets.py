"""Probe datasets from torchgeo: EuroSAT, BigEarthNet, LoveDA, VHR10 and DIOR as geodino probe samples.

Each adapter wraps torchgeo's own class, so a folder prepared with `torchgeo.datasets.X(root, download=True)`
works unchanged; `eval/datasets.py` names them in `DATASETS` (imported when first used: torchgeo is slow to import).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from geodino.errors import ConfigError, InputError
from geodino.eval.datasets import (
    IGNORE_INDEX,
    README_HINT,
    DatasetConfig,
    ProbeDataset,
    require_folder,
    seeded_subset,
)


def torchgeo_call(name: str, root: Path, expect: str, make: Callable[[], Any]) -> Any:
    """Build a torchgeo dataset, turning its not-found error into a one-line InputError."""
    from torchgeo.datasets import DatasetNotFoundError

    try:
        return make()
    except DatasetNotFoundError as exc:
        raise InputError(f"dataset {name!r} not found in {root}: expected {expect} ({README_HINT})") from exc
    except FileNotFoundError as exc:
        raise InputError(f"dataset {name!r} in {root} is incomplete ({exc.filename or exc}); {README_HINT}") from exc


def _fixed_splits(cfg: DatasetConfig, name: str) -> None:
    """Refuse renamed splits for datasets whose splits are fixed files (EuroSAT, BigEarthNet): the keys were
    ignored silently (`test_split: val` still read the test split). To report on val, use eval_split=val,
    which also keeps val out of the refit."""
    renamed = [f"{s}_split={getattr(cfg, f'{s}_split')!r}" for s in ("train", "val", "test")
               if getattr(cfg, f"{s}_split") != s]  # fmt: skip
    if renamed:
        raise ConfigError(
            f"{name} has fixed train/val/test splits; {', '.join(renamed)} is not supported: drop it (to report "
            "on val, set the task's eval_split=val)"
        )


def _band_list(requested: list[str], all_bands: tuple[str, ...], rgb: tuple[str, ...], name: str) -> list[str]:
    if not requested:
        return list(all_bands)
    if requested in (["rgb"], ["RGB"]):
        return list(rgb)
    bad = [b for b in requested if b not in all_bands]
    if bad:
        raise ConfigError(f"band {bad[0]!r} is not a {name} band; choose from {', '.join(all_bands)} (or 'rgb')")
    return list(requested)


def eurosat(cfg: DatasetConfig, split: str) -> ProbeDataset:
    """torchgeo `EuroSAT` (13-band Sentinel-2 L1C GeoTIFFs, 10 classes, the 60/20/20 split of Neumann et al.).

    DN are scaled by 1/10000 to reflectance. `bands` selects bands by name (default all 13 in the Sentinel-2
    order of the `sentinel2_l1c` sensor, B01..B08, B8A, B09..B12; "rgb" = B04,B03,B02). The default is asked of
    torchgeo by name: its own order is the files' (B8A last since torchgeo 0.7, 9th before), so a 13-band
    sentinel2_l1c backbone would otherwise get B09..B12 and B8A one channel off.
    """
    from torchgeo.datasets import EuroSAT

    from geodino.data.sensors import get_sensor

    root = require_folder(cfg.root, "eurosat", "torchgeo's EuroSAT layout (EuroSATallBands.zip or ds/...)")
    _fixed_splits(cfg, "EuroSAT")
    s2_order = [b for b in get_sensor("sentinel2_l1c").bands if b in EuroSAT.all_band_names]
    s2_order += [b for b in EuroSAT.all_band_names if b not in s2_order]
    bands = _band_list(cfg.bands or s2_order, EuroSAT.all_band_names, EuroSAT.rgb_bands, "EuroSAT")
    expect = f"eurosat-{split}.txt and ds/images/remote_sensing/otherDatasets/sentinel_2/tif/<Class>/*.tif"
    ds = torchgeo_call("eurosat", root, expect, lambda: EuroSAT(str(root), split=split, bands=bands))
    _warn_unlisted(ds, root, split)

    def get(i: int) -> dict[str, Any]:
        s = ds[i]
        return {"image": s["image"].float() * 1e-4, "label": s["label"].long()}

    return ProbeDataset(
        name="eurosat",
        root=root,
        split=split,
        classes=list(ds.classes),
        bands=bands,
        sensor=cfg.sensor or "sentinel2_l1c",
        length=len(ds),
        getter=get,
        indices=seeded_subset(len(ds), cfg.max_samples, cfg.split_seed),
        labels=_folder_targets(ds),
    )


def _warn_unlisted(ds: Any, root: Path, split: str) -> None:
    """One warning when EuroSAT's split file names images its folder lacks: torchgeo keeps the files the list names
    and says nothing of the others, so a partly extracted download was scored on part of the split, silently."""
    listed_in = root / ds.split_filenames[split]  # the list torchgeo read: ROOT/eurosat-<split>.txt
    try:
        lines = listed_in.read_text().split()
    except OSError:
        return
    listed = {name.replace(".jpg", ".tif") for name in lines}  # as torchgeo matches them
    missing = sorted(listed - {Path(path).name for path, _ in ds.samples})
    message = (
        f"eurosat ({split} split): {listed_in.name} names {len(listed)} images but {len(missing)} of them "
        f"{'is' if len(missing) == 1 else 'are'} not in {ds.root} (e.g. {missing[0] if missing else ''}): the probe "
        f"scores the {len(ds)} found, not the whole split; extract the dataset again ({README_HINT})"
    )
    if missing and message not in _WARNED:  # once, not again when the task builds the split the suite checked
        _WARNED.add(message)
        import warnings

        warnings.warn(message, stacklevel=3)


_WARNED: set[str] = set()


def _folder_targets(ds: Any) -> list[int] | None:
    """The class of each image of a torchgeo classification dataset built on torchvision's ImageFolder (EuroSAT),
    from its file list (`targets`), unread: a suite refuses a `train_per_class` above a class's size before any
    task runs, as for image folders (it was refused only when the task ran)."""
    targets = getattr(ds, "targets", None)
    return [int(t) for t in targets] if targets is not None and len(targets) == len(ds) else None


def bigearthnet(cfg: DatasetConfig, split: str) -> ProbeDataset:
    """torchgeo `BigEarthNet` (v1): multi-label, 19 or 43 CORINE classes; S2 (12 bands), S1 (VV, VH) or both.

    S2 DN are scaled by 1/10000; S1 backscatter (dB) is kept as is. Channels come in the order of `bands` (default
    VV, VH, then the S2 bands) whatever order torchgeo stacks them in (VH before VV: its files sorted by name).
    Labels are multi-hot float [K].
    """
    from torchgeo.datasets import BigEarthNet

    root = require_folder(cfg.root, "bigearthnet", "torchgeo's BigEarthNet layout")
    _fixed_splits(cfg, "BigEarthNet")
    if cfg.modality not in ("s1", "s2", "all"):
        raise ConfigError(f"data.modality={cfg.modality!r} is not valid; choose s1, s2 or all")
    if cfg.label_set not in (19, 43):
        raise ConfigError(f"data.label_set={cfg.label_set} is not valid; BigEarthNet has 19 or 43 classes")
    s2 = ("B01", "B02", "B03", "B04", "B05", "B06", "B07", "B08", "B8A", "B09", "B11", "B12")
    s1 = ("VV", "VH")
    all_bands = {"s1": s1, "s2": s2, "all": s1 + s2}[cfg.modality]
    expect = "bigearthnet-{train,val,test}.csv and BigEarthNet-v1.0/ (S2) / BigEarthNet-S1-v1.0/ (S1) folders"
    ds = torchgeo_call(
        "bigearthnet",
        root,
        expect,
        lambda: BigEarthNet(str(root), split=split, bands=cfg.modality, num_classes=cfg.label_set),
    )
    n_s1 = {"s1": 2, "s2": 0, "all": 2}[cfg.modality]
    # the channels as torchgeo stacks them: its S1 files sorted by name, i.e. VH before VV (its docstring says
    # VV, VH); `pick` reorders them to the band names asked for
    delivered = {"s1": _s1_order(ds), "s2": s2, "all": _s1_order(ds) + s2}[cfg.modality]
    scale = torch.ones(len(delivered), 1, 1)
    scale[n_s1:] = 1e-4
    bands = _band_list(cfg.bands, all_bands, ("B04", "B03", "B02"), "BigEarthNet")
    pick = torch.tensor([delivered.index(b) for b in bands])

    def get(i: int) -> dict[str, Any]:
        try:
            s = ds[i]
        except (OSError, ValueError) as exc:  # a patch folder the split list names, missing or incomplete: torchgeo
            # stacked no bands (numpy's 'need at least one array to stack') or opened no file, a traceback
            where = {"s1": "s1", "s2": "s2"}.get(cfg.modality)
            folders = [v for k, v in ds.folders[i].items() if where in (None, k)]
            listed = BigEarthNet.splits_metadata[split]["filename"]
            raise InputError(
                f"bigearthnet ({split} split): patch {', '.join(map(str, folders))} listed in {listed} cannot be read "
                f"({exc}): missing or incomplete; extract the dataset again ({README_HINT})"
            ) from exc
        img = (s["image"].float() * scale)[pick]
        return {"image": img, "label": s["label"].float()}

    return ProbeDataset(
        name="bigearthnet",
        root=root,
        split=split,
        classes=list(BigEarthNet.class_sets[cfg.label_set]),
        bands=bands,
        sensor=cfg.sensor or ("sentinel2_l2a" if cfg.modality == "s2" else ""),
        length=len(ds),
        getter=get,
        task="multilabel",
        indices=seeded_subset(len(ds), cfg.max_samples, cfg.split_seed),
        # S1 channels named by their files (feature caches of the swapped order are not reused)
        extra_key=f"{cfg.modality},{cfg.label_set}" + (",s1=by-file" if n_s1 else ""),
    )


def _s1_order(ds: Any) -> tuple[str, ...]:
    """The order of the S1 channels torchgeo's BigEarthNet stacks: read from the file names of its first sample
    (`_load_paths`), else that of sorted names (VH, VV), which is what torchgeo 0.5-0.8 do."""
    try:
        names = [Path(p).stem.rsplit("_", 1)[-1] for p in ds._load_paths(0)] if len(ds) else []
    except (AttributeError, IndexError, KeyError, OSError):
        names = []
    found = tuple(n for n in names if n in ("VV", "VH"))
    return found if sorted(found) == ["VH", "VV"] else ("VH", "VV")


LOVEDA_CLASSES = ["background", "building", "road", "water", "barren", "forest", "agriculture"]


def loveda(cfg: DatasetConfig, split: str) -> ProbeDataset:
    """torchgeo `LoveDA`: 1024x1024 RGB PNGs at 0.3 m, 7 classes; torchgeo's mask value 0 (no-data) becomes the
    ignore index and 1..7 become 0..6. The official test split has no masks, so `test_split` defaults to `val`
    in the LoveDA configs.
    """
    from torchgeo.datasets import LoveDA

    root = require_folder(cfg.root, "loveda", "torchgeo's LoveDA layout (Train/, Val/, Test/ or their zips)")
    if split == "test" and cfg.test_split == "test":
        raise ConfigError("LoveDA's test split has no masks; set data.test_split=val (the usual protocol)")
    tg_split = getattr(cfg, f"{split}_split")
    scenes = [s.lower() for s in cfg.scene]
    expect = f"{tg_split.capitalize()}/{{Urban,Rural}}/images_png/*.png and masks_png/*.png"
    ds = torchgeo_call("loveda", root, expect, lambda: LoveDA(str(root), split=tg_split, scene=scenes))

    def get(i: int) -> dict[str, Any]:
        s = ds[i]
        m = s["mask"].long()
        mask = torch.where(m == 0, torch.full_like(m, IGNORE_INDEX), m - 1)
        return {"image": s["image"].float() / 255.0, "mask": mask}

    return ProbeDataset(
        name="loveda",
        root=root,
        split=tg_split,
        classes=LOVEDA_CLASSES,
        bands=["red", "green", "blue"],
        sensor=cfg.sensor or "rgb",
        length=len(ds),
        getter=get,
        task="segmentation",
        indices=seeded_subset(len(ds), cfg.max_samples, cfg.split_seed),
        extra_key=",".join(scenes),
        files=[str(f["image"]) for f in ds.files],  # Urban and Rural reuse names: a budget records the paths
    )


def vhr10(cfg: DatasetConfig, split: str) -> ProbeDataset:
    """torchgeo `VHR10` (NWPU VHR-10, positive set): 10 classes of boxes on RGB images.

    VHR-10 has no official split; torchgeo's VHR10DataModule's is used: `torch.utils.data.random_split` of the
    positive set into 1 - val_fraction - test_fraction / val_fraction / test_fraction (default 0.6/0.2/0.2) with a
    torch generator seeded `split_seed` (the datamodule's seed is 0, the default), so the default test split holds
    the same images as torchgeo's. Labels are 0-based (torchgeo's category ids 1..10 minus 1). `iscrowd: 1`
    annotations (which torchgeo's reader drops) become ignore boxes: COCO crowd regions, neither true nor false
    positives when detected. Samples are named by their file (`001.jpg`), as the COCO outputs name them.
    """
    from torchgeo.datasets import VHR10

    root = require_folder(cfg.root, "vhr10", "torchgeo's VHR10 layout ('NWPU VHR-10 dataset.zip' + its folder)")
    expect = "'NWPU VHR-10 dataset.zip' and 'NWPU VHR-10 dataset/{positive image set/*.jpg,annotations.json}'"
    ds = torchgeo_call("vhr10", root, expect, lambda: VHR10(str(root), split="positive"))
    parts = torchgeo_random_split(len(ds), cfg.val_fraction, cfg.test_fraction, cfg.split_seed)
    if split not in parts:
        raise ConfigError(f"VHR10 split {split!r} unknown; use train, val or test")
    idx = parts[split]
    idx = [idx[i] for i in seeded_subset(len(idx), cfg.max_samples, cfg.split_seed)]

    def get(i: int) -> dict[str, Any]:
        s = _vhr10_crowd_only(ds, i) or ds[i]
        img = s["image"].float() / 255.0
        if "bbox_xyxy" in s:
            boxes = s["bbox_xyxy"].float().reshape(-1, 4)
            labels = s["label"].long().reshape(-1) - 1
        else:
            boxes, labels = torch.zeros(0, 4), torch.zeros(0, dtype=torch.long)
        out = {"image": img, "boxes": boxes, "labels": labels, "name": f"{i % len(ds) + 1:03d}.jpg"}
        crowd_boxes, crowd_labels = _vhr10_crowds(ds, i, img.shape[-2:])
        if len(crowd_boxes):  # torchgeo drops them: COCO crowd regions, neither true nor false positives
            out.update(ignore_boxes=crowd_boxes, ignore_labels=crowd_labels)
        return out

    return ProbeDataset(
        name="vhr10",
        root=root,
        split=split,
        classes=list(VHR10.categories[1:]),
        bands=["red", "green", "blue"],
        sensor=cfg.sensor or "rgb",
        length=len(ds),
        getter=get,
        task="detection",
        indices=idx,
        extra_key=f"seed={cfg.split_seed},val={cfg.val_fraction},test={cfg.test_fraction}",
        files=[str(root / _VHR10_IMAGES / f"{k + 1:03d}.jpg") for k in range(len(ds))],  # as torchgeo reads them
    )


_VHR10_IMAGES = Path("NWPU VHR-10 dataset") / "positive image set"  # torchgeo's folder of the positive set


def _vhr10_crowd_only(ds: Any, i: int) -> dict[str, Any] | None:
    """Item `i` of torchgeo VHR10 as its reader gives an image without objects ({"image": [3,H,W] float 0-255}),
    where all its annotations are `iscrowd: 1`, else None. torchgeo (0.8.1) drops those and then stacks the masks
    of none (`RuntimeError: stack expects a non-empty TensorList`): the image is read here as it reads it (the
    positive set's `{i+1:03d}.jpg`, HWC -> CHW); `_vhr10_crowds` adds the crowd regions."""
    import numpy as np
    from PIL import Image

    coco = getattr(ds, "coco", None)
    if coco is None:
        return None
    anns = coco.loadAnns(coco.getAnnIds(imgIds=[i % len(ds)]))
    if not anns or any(a.get("iscrowd", 0) == 0 for a in anns):
        return None
    path = Path(ds.root) / _VHR10_IMAGES / f"{i % len(ds) + 1:03d}.jpg"
    with Image.open(path) as im:
        array = np.asarray(im.convert("RGB"))
    return {"image": torch.from_numpy(array.copy()).float().permute(2, 0, 1)}


def _vhr10_crowds(ds: Any, i: int, hw: tuple[int, int]) -> tuple[torch.Tensor, torch.Tensor]:
    """xyxy boxes [N,4] and 0-based labels [N] of the `iscrowd: 1` annotations of torchgeo VHR10 item `i`, which
    its reader drops. Looked up as torchgeo looks up the others (COCO image id `i`, the image file `{i+1:03d}.jpg`)
    and clipped to the image as it clips them; degenerate boxes are left out, as it leaves them out."""
    coco = getattr(ds, "coco", None)
    if coco is None:
        return torch.zeros(0, 4), torch.zeros(0, dtype=torch.long)
    anns = [a for a in coco.loadAnns(coco.getAnnIds(imgIds=[i % len(ds)])) if a.get("iscrowd", 0) == 1]
    boxes = torch.tensor([a["bbox"] for a in anns], dtype=torch.float32).reshape(-1, 4)
    boxes[:, 2:] += boxes[:, :2]
    h, w = int(hw[0]), int(hw[1])
    boxes[:, 0::2] = boxes[:, 0::2].clamp(0, w)
    boxes[:, 1::2] = boxes[:, 1::2].clamp(0, h)
    labels = torch.tensor([int(a["category_id"]) - 1 for a in anns], dtype=torch.long)
    keep = (boxes[:, 2] > boxes[:, 0]) & (boxes[:, 3] > boxes[:, 1])
    return boxes[keep], labels[keep]


def torchgeo_random_split(n: int, val_fraction: float, test_fraction: float, seed: int) -> dict[str, list[int]]:
    """{train, val, test: sorted positions} of n items split as torchgeo's datamodules without split files do
    (`random_split(dataset, [1 - val - test, val, test], torch.Generator().manual_seed(seed))`), so a geodino
    number on the test part is scored on the same images as a torchgeo baseline's."""
    from torch.utils.data import random_split

    if val_fraction < 0 or test_fraction < 0 or val_fraction + test_fraction >= 1:
        raise ConfigError(
            f"val_fraction={val_fraction} and test_fraction={test_fraction} must be >= 0 and leave a training part "
            "(sum below 1)"
        )
    fractions = [1 - val_fraction - test_fraction, val_fraction, test_fraction]
    # random_split takes any sequence (typed for a Dataset): the indices are split, not a dataset
    subsets = random_split(range(n), fractions, generator=torch.Generator().manual_seed(seed))  # type: ignore[arg-type, var-annotated]
    return {name: sorted(int(i) for i in sub.indices) for name, sub in zip(("train", "val", "test"), subsets)}


def _voc_difficult(path: Path, n: int) -> torch.Tensor:
    """[n] bool: the `<difficult>` flags of the objects of a Pascal VOC file, in file order (all False when the file
    cannot be read or lists another number of objects than torchgeo returned)."""
    from geodino.eval.boxes import read_voc

    try:
        (found,) = read_voc(path).values()
    except (InputError, OSError, ValueError):
        return torch.zeros(n, dtype=torch.bool)
    flags = torch.from_numpy(found.ignored().copy())
    return flags if len(flags) == n else torch.zeros(n, dtype=torch.bool)


class _DiorNames(dict):
    """torchgeo's DIOR class index, also under the XML's spellings (`Expressway-Service-area`): case, hyphens,
    underscores and spaces ignored."""

    def __missing__(self, key: str) -> int:
        plain = "".join(ch for ch in str(key).lower() if ch.isalnum())
        if plain in self:
            return self[plain]
        raise KeyError(key)


def dior(cfg: DatasetConfig, split: str) -> ProbeDataset:
    """torchgeo `DIOR`: 20 classes of boxes on 800x800 RGB JPEGs (Pascal VOC). The test split has no labels,
    so `test_split` defaults to `val` in the DIOR configs. Boxes are the XML's pixel values as torchgeo reads them;
    objects flagged `<difficult>1` (which torchgeo's reader drops) become ignore boxes, as the probe's VOC reader
    makes them: not trained on, neither true nor false positives when detected. Samples are named by their image
    file (`00012.jpg`), as the COCO outputs name them.
    """
    from torchgeo.datasets import DIOR

    root = require_folder(cfg.root, "dior", "torchgeo's DIOR layout (sample_df.csv, images and VOC XML)")
    tg_split = getattr(cfg, f"{split}_split")
    if tg_split == "test":
        raise ConfigError("DIOR's test split has no labels; set data.test_split=val")
    expect = "sample_df.csv listing images and VOC XML files"
    ds = torchgeo_call("dior", root, expect, lambda: DIOR(str(root), tg_split))
    ds.class_to_idx = _DiorNames(ds.class_to_idx)  # the XML's `Expressway-Service-area` (torchgeo issue #4048)

    def get(i: int) -> dict[str, Any]:
        s = ds[i]
        boxes, labels = s["bbox_xyxy"].float().reshape(-1, 4), s["label"].long().reshape(-1)
        row = ds.sample_df.iloc[i]
        name = Path(str(row["image_path"])).name  # DIOR's image names are unique across its splits
        out = {"image": s["image"].float() / 255.0, "boxes": boxes, "labels": labels, "name": name}
        difficult = _voc_difficult(root / str(row["label_path"]), len(boxes))
        if difficult.any():  # torchgeo drops the flag: left out of training and of the positives, as VOC scores them
            out.update(boxes=boxes[~difficult], labels=labels[~difficult])
            out.update(ignore_boxes=boxes[difficult], ignore_labels=labels[difficult])
        return out

    return ProbeDataset(
        name="dior",
        root=root,
        split=tg_split,
        classes=list(DIOR.classes),
        bands=["red", "green", "blue"],
        sensor=cfg.sensor or "rgb",
        length=len(ds),
        getter=get,
        task="detection",
        indices=seeded_subset(len(ds), cfg.max_samples, cfg.split_seed),
        files=[str(root / str(p)) for p in ds.sample_df["image_path"]],  # the images torchgeo reads, in its order
    )
