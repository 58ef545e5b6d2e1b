"""Probe datasets: torchgeo's benchmark datasets and generic folders, mapped to geodino's probe sample format.

Every adapter returns reflectance-scaled samples (`image` float32 [C,H,W], the data sensor's scale applied but not
standardised: the probe applies `backbone.normalize`) with one target, as CONTRIBUTING.md defines:
classification `label` long [] (multi-label: multi-hot float [K]), segmentation `mask` long [H,W] (ignore index
where unlabelled), detection `boxes` float32 [N,4] xyxy pixels and `labels` long [N] (0-based class indices).

The torchgeo adapters wrap torchgeo's own classes (`EuroSAT`, `LoveDA`, `VHR10`, `DIOR`, `BigEarthNet`), so the
on-disk layout is exactly torchgeo's: a folder prepared with `torchgeo.datasets.X(root, download=True)` (see
`datasets/README.md`) works unchanged. Dense generic formats (image/mask pairs, CHM raster pairs, box files) live
in the segmentation, canopy and detection modules; `DATASETS` points at them so one name resolves any format.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from geodino.errors import ConfigError, InputError

IGNORE_INDEX = 255
"""Mask value of unlabelled pixels in segmentation samples produced here (LoveDA's no-data class)."""

README_HINT = "see datasets/README.md for how to get it and the layout geodino expects"

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".tif", ".tiff", ".bmp", ".webp")


@dataclass
class DatasetConfig:
    """Which dataset a probe reads, where it lives and how it is split.

    `name` is a key of `DATASETS` (`eurosat`, `loveda`, `vhr10`, `dior`, `bigearthnet`, `image_folder`, and the
    dense generic formats of the other probe modules). Paths are plain keys, so a config points at any folder.
    """

    name: str = "image_folder"
    root: str = ""
    bands: list[str] = field(default_factory=list)  # [] = the dataset's default bands; "rgb" alias allowed
    num_classes: int = 0  # 0 = taken from the data; otherwise must equal the data's class count
    train_split: str = "train"
    val_split: str = "val"
    test_split: str = "test"
    val_fraction: float = 0.2  # for data without a validation split (single folder, VHR10)
    test_fraction: float = 0.2  # for data without a test split
    split_seed: int = 0
    max_samples: int = 0  # cap per split (seeded subset) for quick runs; 0 = all
    scale: float = 0.0  # generic images: DN -> reflectance factor; 0 = by dtype (uint8 /255, uint16 /10000)
    sensor: str = ""  # name of the data's sensor (geodino.data.sensors); "" = the adapter's default
    scene: list[str] = field(default_factory=lambda: ["urban", "rural"])  # LoveDA scenes
    label_set: int = 19  # BigEarthNet: 19 or 43 classes
    modality: str = "s2"  # BigEarthNet: s1, s2 or all


class ProbeDataset(Dataset):
    """A dataset of probe samples plus what probes need to know about it.

    Attributes: `task` (classification, multilabel, segmentation, detection, canopy), `classes` (names, index =
    label), `bands` (band names in channel order), `sensor` (data sensor name or ""), `ignore_index` (segmentation),
    `key` (a stable identity string: dataset, absolute root, split, bands, subset; used in feature-cache keys).
    """

    task: str = "classification"

    def __init__(
        self,
        *,
        name: str,
        root: str | Path,
        split: str,
        classes: list[str],
        bands: list[str],
        sensor: str = "",
        length: int,
        getter: Callable[[int], dict[str, Any]],
        task: str = "classification",
        indices: list[int] | None = None,
        ignore_index: int = IGNORE_INDEX,
        extra_key: str = "",
    ) -> None:
        self.name = name
        self.root = str(Path(root).expanduser().resolve())
        self.split = split
        self.classes = list(classes)
        self.bands = list(bands)
        self.sensor = sensor
        self.task = task
        self.ignore_index = ignore_index
        self._getter = getter
        self.indices = list(range(length)) if indices is None else list(indices)
        sub = hashlib.sha256(np.asarray(self.indices, dtype=np.int64).tobytes()).hexdigest()[:12]
        self.key = f"{name}|{self.root}|{split}|{','.join(self.bands)}|{extra_key}|n={len(self.indices)}:{sub}"

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, i: int) -> dict[str, Any]:
        return self._getter(self.indices[i])

    def subset(self, indices: list[int], split: str | None = None) -> ProbeDataset:
        """A view of some of this dataset's items (positions in this dataset), keeping its metadata."""
        out = ProbeDataset(
            name=self.name,
            root=self.root,
            split=split or self.split,
            classes=self.classes,
            bands=self.bands,
            sensor=self.sensor,
            length=0,
            getter=self._getter,
            task=self.task,
            indices=[self.indices[i] for i in indices],
            ignore_index=self.ignore_index,
            extra_key=self.key.split("|")[4],
        )
        return out

    def __repr__(self) -> str:
        return f"ProbeDataset({self.name}, split={self.split}, n={len(self)}, classes={self.num_classes})"


# --------------------------------------------------------------------------------------------------- helpers


def _require_folder(root: str, name: str, expect: str) -> Path:
    """The dataset root as a Path, or an InputError saying where to put the data."""
    if not root:
        raise ConfigError(f"dataset {name!r} needs a folder: set its 'root' key ({README_HINT})")
    path = Path(root).expanduser()
    if not path.is_dir():
        raise InputError(f"dataset folder {path} for {name!r} not found: put {expect} there ({README_HINT})")
    return path


def _torchgeo_call(name: str, root: Path, expect: str, make: Callable[[], Any]) -> Any:
    """Build a torchgeo dataset, turning its not-found error into a one-line InputError."""
    from torchgeo.datasets import DatasetNotFoundError

    try:
        return make()
    except DatasetNotFoundError as exc:
        raise InputError(f"dataset {name!r} not found in {root}: expected {expect} ({README_HINT})") from exc
    except FileNotFoundError as exc:
        raise InputError(f"dataset {name!r} in {root} is incomplete ({exc.filename or exc}); {README_HINT}") from exc


def _seeded_subset(n: int, max_samples: int, seed: int) -> list[int]:
    """All indices, or a seeded random subset of `max_samples` (sorted, so reading order stays on-disk order)."""
    if max_samples <= 0 or max_samples >= n:
        return list(range(n))
    g = torch.Generator().manual_seed(seed)
    return sorted(torch.randperm(n, generator=g)[:max_samples].tolist())


def split_indices(labels: list[int] | None, n: int, fractions: dict[str, float], seed: int) -> dict[str, list[int]]:
    """Deterministic split of n items into named parts; stratified by class when `labels` is given.

    `fractions` maps split name to fraction for all parts but the first, which takes the rest (e.g.
    {"train": 0, "val": 0.2, "test": 0.2}). Each class keeps at least one item in the first part.
    """
    names = list(fractions)
    out: dict[str, list[int]] = {k: [] for k in names}
    groups: dict[int, list[int]] = {}
    for i in range(n):
        groups.setdefault(labels[i] if labels is not None else 0, []).append(i)
    rng = np.random.default_rng(seed)
    for _, members in sorted(groups.items()):
        members = list(rng.permutation(members))
        start = 0
        counts = {}
        for k in names[1:]:
            counts[k] = round(len(members) * fractions[k])
        while sum(counts.values()) >= len(members) and any(counts.values()):
            k = max(counts, key=lambda c: counts[c])
            counts[k] -= 1
        for k in names[1:]:
            out[k].extend(int(i) for i in members[start : start + counts[k]])
            start += counts[k]
        out[names[0]].extend(int(i) for i in members[start:])
    return {k: sorted(v) for k, v in out.items()}


def read_image(path: str | Path, scale: float = 0.0) -> tuple[torch.Tensor, float]:
    """Read an image file as float32 [C,H,W] scaled to reflectance; returns (image, scale used).

    JPEG/PNG via Pillow, GeoTIFF via rasterio. `scale` 0 picks by dtype: uint8 -> 1/255, uint16 -> 1/10000 (the
    Sentinel-2 / Landsat DN convention), floats unchanged.
    """
    path = Path(path)
    try:
        if path.suffix.lower() in (".tif", ".tiff"):
            import rasterio

            with rasterio.open(path) as src:
                arr = src.read()
        else:
            from PIL import Image

            with Image.open(path) as img:
                arr = np.asarray(img.convert("RGB") if img.mode not in ("L", "RGB", "I;16") else img)
            arr = arr[None] if arr.ndim == 2 else arr.transpose(2, 0, 1)
    except Exception as exc:  # Pillow/rasterio raise many kinds; all mean "unreadable"
        raise InputError(f"cannot read image {path}: {exc}; check the file or remove it") from exc
    if scale <= 0:
        scale = 1 / 255 if arr.dtype == np.uint8 else 1e-4 if arr.dtype in (np.uint16, np.int16) else 1.0
    return torch.from_numpy(arr.astype(np.float32) * np.float32(scale)), scale


# ------------------------------------------------------------------------------------------ generic folders


def _class_folders(path: Path) -> dict[str, list[Path]]:
    out: dict[str, list[Path]] = {}
    for d in sorted(p for p in path.iterdir() if p.is_dir() and not p.name.startswith(".")):
        files = sorted(f for f in d.rglob("*") if f.suffix.lower() in IMAGE_EXTENSIONS and f.is_file())
        if files:
            out[d.name] = files
    return out


def image_folder(cfg: DatasetConfig, split: str) -> ProbeDataset:
    """Class-per-folder images: ROOT/<class>/*.{jpg,png,tif}, or ROOT/{train,val,test}/<class>/*.

    Without split folders the images are split by class-stratified, seeded fractions (`val_fraction`,
    `test_fraction`, `split_seed`). A class present in val/test but not in train is an error.
    """
    root = _require_folder(cfg.root, cfg.name, "one sub-folder of images per class (ROOT/<class>/*.jpg)")
    split_dirs = {s: root / getattr(cfg, f"{s}_split") for s in ("train", "val", "test")}
    has_splits = split_dirs["train"].is_dir()
    if has_splits:
        train_classes = sorted(_class_folders(split_dirs["train"]))
        if not train_classes:
            raise InputError(f"no class folders with images in {split_dirs['train']}; expected <class>/*.jpg")
        if split == "val" and not split_dirs["val"].is_dir():
            # no val folder: carve it from train, stratified
            return _folder_from_files(cfg, split_dirs["train"], train_classes, "val", carve=True)
        if split == "train" and not split_dirs["val"].is_dir():
            return _folder_from_files(cfg, split_dirs["train"], train_classes, "train", carve=True)
        folder = split_dirs[split]
        if not folder.is_dir():
            raise InputError(f"split folder {folder} not found; create it or point {split}_split at another folder")
        extra = sorted(set(_class_folders(folder)) - set(train_classes))
        if extra:
            raise InputError(
                f"class {extra[0]!r} in {folder} has no training images in {split_dirs['train']}; "
                "add training images for it or remove it"
            )
        return _folder_from_files(cfg, folder, train_classes, split, carve=False)
    classes = sorted(_class_folders(root))
    if not classes:
        raise InputError(f"no class folders with images in {root}; expected ROOT/<class>/*.jpg ({README_HINT})")
    return _folder_from_files(cfg, root, classes, split, carve=True, three_way=True)


def _folder_from_files(
    cfg: DatasetConfig, folder: Path, classes: list[str], split: str, *, carve: bool, three_way: bool = False
) -> ProbeDataset:
    found = _class_folders(folder)
    files: list[Path] = []
    labels: list[int] = []
    for c in classes:
        for f in found.get(c, []):
            files.append(f)
            labels.append(classes.index(c))
    if carve:
        fr = {"train": 0.0, "val": cfg.val_fraction}
        if three_way:
            fr["test"] = cfg.test_fraction
        parts = split_indices(labels, len(files), fr, cfg.split_seed)
        if split not in parts:
            raise InputError(f"split {split!r} not available for {folder}: add a {split}/ folder")
        idx = parts[split]
    else:
        idx = list(range(len(files)))
    idx = [idx[i] for i in _seeded_subset(len(idx), cfg.max_samples, cfg.split_seed)]
    first, scale = read_image(files[idx[0]] if idx else files[0], cfg.scale)
    nb = first.shape[0]
    bands = cfg.bands if cfg.bands and cfg.bands != ["rgb"] else (["red", "green", "blue"] if nb == 3 else [])
    bands = bands or [f"b{i + 1}" for i in range(nb)]
    if len(bands) != nb:
        raise ConfigError(f"dataset bands {bands} name {len(bands)} bands but images in {folder} have {nb}")

    def get(i: int) -> dict[str, Any]:
        img, _ = read_image(files[i], scale)
        return {"image": img, "label": torch.tensor(labels[i], dtype=torch.long)}

    return ProbeDataset(
        name=cfg.name,
        root=folder,
        split=split,
        classes=classes,
        bands=bands,
        sensor=cfg.sensor,
        length=len(files),
        getter=get,
        indices=idx,
        extra_key=f"seed={cfg.split_seed},val={cfg.val_fraction},test={cfg.test_fraction},scale={scale}",
    )


# ------------------------------------------------------------------------------------------ torchgeo adapters


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

    DN are scaled by 1/10000 to reflectance. `bands` selects bands (default all 13; "rgb" = B04,B03,B02).
    """
    from torchgeo.datasets import EuroSAT

    root = _require_folder(cfg.root, "eurosat", "torchgeo's EuroSAT layout (EuroSATallBands.zip or ds/...)")
    bands = _band_list(cfg.bands, EuroSAT.all_band_names, EuroSAT.rgb_bands, "EuroSAT")
    expect = f"eurosat-{split}.txt and ds/images/remote_sensing/otherDatasets/sentinel_2/tif/<Class>/*.tif"
    ds = _torchgeo_call("eurosat", root, expect, lambda: EuroSAT(str(root), split=split, bands=bands))

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
        indices=_seeded_subset(len(ds), cfg.max_samples, cfg.split_seed),
    )


def bigearthnet(cfg: DatasetConfig, split: str) -> ProbeDataset:
    """torchgeo `BigEarthNet` (v1): multi-label, 19 or 43 CORINE classes; S2 (12 bands), S1 (VV, VH) or both.

    S2 DN are scaled by 1/10000; S1 backscatter (dB) is kept as is. Labels are multi-hot float [K].
    """
    from torchgeo.datasets import BigEarthNet

    root = _require_folder(cfg.root, "bigearthnet", "torchgeo's BigEarthNet layout")
    if cfg.modality not in ("s1", "s2", "all"):
        raise ConfigError(f"dataset.modality={cfg.modality!r} is not valid; choose s1, s2 or all")
    if cfg.label_set not in (19, 43):
        raise ConfigError(f"dataset.label_set={cfg.label_set} is not valid; BigEarthNet has 19 or 43 classes")
    s2 = ("B01", "B02", "B03", "B04", "B05", "B06", "B07", "B08", "B8A", "B09", "B11", "B12")
    s1 = ("VV", "VH")
    all_bands = {"s1": s1, "s2": s2, "all": s1 + s2}[cfg.modality]
    expect = "bigearthnet-{train,val,test}.csv and BigEarthNet-v1.0/ (S2) / BigEarthNet-S1-v1.0/ (S1) folders"
    ds = _torchgeo_call(
        "bigearthnet",
        root,
        expect,
        lambda: BigEarthNet(str(root), split=split, bands=cfg.modality, num_classes=cfg.label_set),
    )
    n_s1 = {"s1": 2, "s2": 0, "all": 2}[cfg.modality]
    scale = torch.ones(len(all_bands), 1, 1)
    scale[n_s1:] = 1e-4
    bands = _band_list(cfg.bands, all_bands, ("B04", "B03", "B02"), "BigEarthNet")
    pick = torch.tensor([all_bands.index(b) for b in bands])

    def get(i: int) -> dict[str, Any]:
        s = ds[i]
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
        indices=_seeded_subset(len(ds), cfg.max_samples, cfg.split_seed),
        extra_key=f"{cfg.modality},{cfg.label_set}",
    )


LOVEDA_CLASSES = ["background", "building", "road", "water", "barren", "forest", "agriculture"]


def loveda(cfg: DatasetConfig, split: str) -> ProbeDataset:
    """torchgeo `LoveDA`: 1024x1024 RGB PNGs at 0.3 m, 7 classes; torchgeo's mask value 0 (no-data) becomes the
    ignore index and 1..7 become 0..6. The official test split has no masks, so `test_split` defaults to `val`
    in the LoveDA configs.
    """
    from torchgeo.datasets import LoveDA

    root = _require_folder(cfg.root, "loveda", "torchgeo's LoveDA layout (Train/, Val/, Test/ or their zips)")
    if split == "test" and cfg.test_split == "test":
        raise ConfigError("LoveDA's test split has no masks; set dataset.test_split=val (the usual protocol)")
    tg_split = getattr(cfg, f"{split}_split")
    scenes = [s.lower() for s in cfg.scene]
    expect = f"{tg_split.capitalize()}/{{Urban,Rural}}/images_png/*.png and masks_png/*.png"
    ds = _torchgeo_call("loveda", root, expect, lambda: LoveDA(str(root), split=tg_split, scene=scenes))

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
        indices=_seeded_subset(len(ds), cfg.max_samples, cfg.split_seed),
        extra_key=",".join(scenes),
    )


def vhr10(cfg: DatasetConfig, split: str) -> ProbeDataset:
    """torchgeo `VHR10` (NWPU VHR-10, positive set): 10 classes of boxes on RGB images.

    VHR-10 has no official split; as torchgeo's VHR10DataModule, a seeded random split
    (1 - val_fraction - test_fraction / val_fraction / test_fraction, default 0.6/0.2/0.2) is used.
    Labels are 0-based (torchgeo's category ids 1..10 minus 1).
    """
    from torchgeo.datasets import VHR10

    root = _require_folder(cfg.root, "vhr10", "torchgeo's VHR10 layout ('NWPU VHR-10 dataset.zip' + its folder)")
    expect = "'NWPU VHR-10 dataset.zip' and 'NWPU VHR-10 dataset/{positive image set/*.jpg,annotations.json}'"
    ds = _torchgeo_call("vhr10", root, expect, lambda: VHR10(str(root), split="positive"))
    parts = split_indices(None, len(ds), {"train": 0, "val": cfg.val_fraction, "test": cfg.test_fraction}, 0)
    if split not in parts:
        raise ConfigError(f"VHR10 split {split!r} unknown; use train, val or test")
    idx = parts[split]
    idx = [idx[i] for i in _seeded_subset(len(idx), cfg.max_samples, cfg.split_seed)]

    def get(i: int) -> dict[str, Any]:
        s = ds[i]
        img = s["image"].float() / 255.0
        if "bbox_xyxy" in s:
            boxes = s["bbox_xyxy"].float().reshape(-1, 4)
            labels = s["label"].long().reshape(-1) - 1
        else:
            boxes, labels = torch.zeros(0, 4), torch.zeros(0, dtype=torch.long)
        return {"image": img, "boxes": boxes, "labels": labels}

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
        extra_key=f"val={cfg.val_fraction},test={cfg.test_fraction}",
    )


def dior(cfg: DatasetConfig, split: str) -> ProbeDataset:
    """torchgeo `DIOR`: 20 classes of boxes on 800x800 RGB JPEGs (Pascal VOC). The test split has no labels,
    so `test_split` defaults to `val` in the DIOR configs.
    """
    from torchgeo.datasets import DIOR

    root = _require_folder(cfg.root, "dior", "torchgeo's DIOR layout (sample_df.csv, images and VOC XML)")
    tg_split = getattr(cfg, f"{split}_split")
    if tg_split == "test":
        raise ConfigError("DIOR's test split has no labels; set dataset.test_split=val")
    expect = "sample_df.csv listing images and VOC XML files"
    ds = _torchgeo_call("dior", root, expect, lambda: DIOR(str(root), tg_split))

    def get(i: int) -> dict[str, Any]:
        s = ds[i]
        return {
            "image": s["image"].float() / 255.0,
            "boxes": s["bbox_xyxy"].float().reshape(-1, 4),
            "labels": s["label"].long().reshape(-1),
        }

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
        indices=_seeded_subset(len(ds), cfg.max_samples, cfg.split_seed),
    )


# ------------------------------------------------------------------------------------------------ registry

DATASETS: dict[str, Callable[[DatasetConfig, str], ProbeDataset] | str] = {
    "image_folder": image_folder,
    "eurosat": eurosat,
    "bigearthnet": bigearthnet,
    "loveda": loveda,
    "vhr10": vhr10,
    "dior": dior,
}
"""Dataset name -> builder `(cfg, split) -> ProbeDataset`. A string value "module:function" is imported lazily
(the dense generic formats live with their probe modules)."""


def register_dataset(name: str, builder: Callable[[DatasetConfig, str], ProbeDataset] | str) -> None:
    """Add a dataset adapter under `name` (a callable or a lazy "module:function" string)."""
    DATASETS[name] = builder


def build_dataset(cfg: DatasetConfig, split: str) -> ProbeDataset:
    """The probe dataset `cfg.name` for one of the splits train, val or test."""
    if split not in ("train", "val", "test"):
        raise ConfigError(f"split {split!r} is not valid; use train, val or test")
    builder = DATASETS.get(cfg.name)
    if builder is None:
        from geodino.errors import did_you_mean

        close = did_you_mean(cfg.name, DATASETS)
        hint = f"; did you mean {close[0]!r}?" if close else f"; choose one of {', '.join(sorted(DATASETS))}"
        raise ConfigError(f"dataset.name={cfg.name!r} is not a known dataset{hint}")
    if isinstance(builder, str):
        import importlib

        module, func = builder.split(":")
        builder = getattr(importlib.import_module(module), func)
    return builder(cfg, split)


def check_classes(train: ProbeDataset, other: ProbeDataset, num_classes: int = 0) -> None:
    """Fail with one line when splits disagree on classes or a configured class count does not match the data."""
    if getattr(train, "task", "") != "multilabel" and 0 < train.num_classes < 2:
        raise InputError(
            f"{train.name} in {train.root} has one class ({train.classes[0]!r}): every score of a classification "
            "probe would be 1.0 by construction; give it at least two classes (one folder per class)"
        )
    if other.classes != train.classes:
        extra = [c for c in other.classes if c not in train.classes]
        what = f"class {extra[0]!r} is in the {other.split} split but not in train" if extra else "class lists differ"
        raise InputError(f"{train.name}: {what} ({train.root}); give every split the same classes")
    if num_classes and num_classes != train.num_classes:
        raise ConfigError(
            f"num_classes={num_classes} but {train.name} in {train.root} has {train.num_classes} classes "
            f"({', '.join(train.classes[:5])}{', ...' if train.num_classes > 5 else ''}); "
            "set num_classes=0 to take it from the data"
        )
