"""Probe datasets: torchgeo's benchmark datasets and generic folders, mapped to geodino's probe sample format.

Every adapter returns reflectance-scaled samples (`image` float32 [C,H,W], the data sensor's scale applied but not
standardised: the probe applies `backbone.normalize`) with one target, as CONTRIBUTING.md defines:
classification `label` long [] (multi-label: multi-hot float [K]), segmentation `mask` long [H,W] (ignore index
where unlabelled), detection `boxes` float32 [N,4] xyxy pixels and `labels` long [N] (0-based class indices).

The torchgeo adapters (`eval/torchgeo_datasets.py`) wrap torchgeo's own classes (`EuroSAT`, `LoveDA`, `VHR10`,
`DIOR`, `BigEarthNet`), so the on-disk layout is exactly torchgeo's: a folder prepared with
`torchgeo.datasets.X(root, download=True)` (see `datasets/README.md`) works unchanged. Dense generic formats
(image/mask pairs, CHM raster pairs, box files) live in the segmentation, canopy and detection modules;
`DATASETS` points at them so one name resolves any format. Folders are listed through `eval/folder_listing.py`
(`list_folder`, `folder_stamp`, re-exported here).
"""

from __future__ import annotations

import hashlib
import inspect
import math
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch.utils.data import Dataset

from geodino.data.paths import IMAGE_EXTS, TIFF_EXTS
from geodino.errors import ConfigError, InputError, plural
from geodino.eval.data_splits import check_split_keys, seeded_subset, split_indices
from geodino.eval.folder_listing import desktop_litter, folder_stamp, list_folder, warn_empty_class_folders

if TYPE_CHECKING:
    from geodino.eval.scaling import InputScaling

IGNORE_INDEX = 255
"""Mask value of unlabelled pixels in segmentation samples produced here (LoveDA's no-data class)."""

README_HINT = "see datasets/README.md for how to get it and the layout geodino expects"

IMAGE_EXTENSIONS = IMAGE_EXTS  # one list with pretraining and embed (GeoTIFFs as .tif/.tiff/.gtif/.gtiff)


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
    scale: float = 0.0  # generic images: DN -> reflectance; 0 = file's declared, else backbone's recorded, else dtype
    offset: float = 0.0  # generic images: added after scale (reflectance = DN * scale + offset)
    file_scale: bool = True  # generic images: false = a file's declared GDAL scale/offset is not read
    sensor: str = ""  # name of the data's sensor (geodino.data.sensors); "" = the adapter's default
    scene: list[str] = field(default_factory=lambda: ["urban", "rural"])  # LoveDA scenes
    label_set: int = 19  # BigEarthNet: 19 or 43 classes
    modality: str = "s2"  # BigEarthNet: s1, s2 or all

    def __post_init__(self) -> None:
        check_split_keys(self)  # fractions that leave training images, max_samples >= 0: refused when read


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
        stamp: str | None = None,
        scaling: str = "",
        files: list[str] | None = None,
        labels: list[int] | None = None,
    ) -> None:
        self.name = name
        self.root = str(Path(root).expanduser().resolve())
        self.split = split
        self.classes = list(classes)
        self.bands = list(bands)
        self.sensor = sensor
        self.task = task
        self.ignore_index = ignore_index
        self.scaling = scaling  # how image files became reflectance ("" when the adapter's fixed scale applies)
        self._getter = getter
        self.files = files  # the file of each item (by index before `indices`), for datasets made of files
        self.labels = labels  # single-label class of each item (ditto) when known unread: a suite checks budgets
        self.indices = list(range(length)) if indices is None else list(indices)
        sub = hashlib.sha256(np.asarray(self.indices, dtype=np.int64).tobytes()).hexdigest()[:12]
        # the files' sizes and mtimes: an image rewritten in place under its old name is a new dataset for the
        # feature cache (computed once per dataset, subsets share it; the folder listing is shared by the splits).
        # No `stamp` (the torchgeo adapters): the whole root, whose label masks, split lists and annotations their
        # file lists do not name, less what a Mac writes there (`folder_listing.desktop_litter`)
        self.stamp = folder_stamp(self.root) if stamp is None else stamp
        self.key = (
            f"{name}|{self.root}|{split}|{','.join(self.bands)}|{extra_key}|n={len(self.indices)}:{sub}|{self.stamp}"
        )

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    def __len__(self) -> int:
        return len(self.indices)

    def sample_files(self) -> list[str] | None:
        """The files of this split's samples, in order, relative to `root` (None for datasets not made of files):
        what `splits.json` records, so that a split can be reused elsewhere."""
        if self.files is None:
            return None
        root = Path(self.root)
        out = []
        for i in self.indices:
            p = Path(self.files[i]).expanduser().resolve()
            out.append(str(p.relative_to(root)) if p.is_relative_to(root) else str(p))
        return out

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
            stamp=self.stamp,
            files=self.files,
            labels=self.labels,
            scaling=self.scaling,
        )
        return out

    def __repr__(self) -> str:
        return f"ProbeDataset({self.name}, split={self.split}, n={len(self)}, classes={self.num_classes})"


# --------------------------------------------------------------------------------------------------- helpers


def require_folder(root: str, name: str, expect: str) -> Path:
    """The dataset root as a Path, or an InputError saying where to put the data."""
    if not root:
        raise ConfigError(f"dataset {name!r} needs a folder: set its 'root' key ({README_HINT})")
    path = Path(root).expanduser()
    if not path.is_dir():
        raise InputError(f"dataset folder {path} for {name!r} not found: put {expect} there ({README_HINT})")
    return path


def read_image(
    path: str | Path, scale: float | np.ndarray = 0.0, offset: float | np.ndarray = 0.0
) -> tuple[torch.Tensor, float | np.ndarray]:
    """Read an image file as float32 [C,H,W] scaled to reflectance (`x * scale + offset`); returns (image, scale).

    JPEG/PNG via Pillow, GeoTIFF via rasterio. `scale` 0 takes the scale/offset the file declares (GDAL
    `<Scale>`/`<Offset>`, per band, as `geodino embed` and the probes read it), else picks by dtype
    (`geodino.data.dtype_rule`: uint8 -> 1/255, uint16/int16 -> 1/10000, the Sentinel-2 / Landsat DN convention,
    floats unchanged; other types refused, asking for `scale`). `scale`/`offset` may be per band ([C,1,1] arrays).
    An `offset` without a `scale` is refused (ConfigError): the file's rule would replace it, or it would be added
    to a rule the caller did not choose.
    """
    from geodino.data.headers import declared_rule
    from geodino.eval.scaling import data_scale  # the one dtype rule, shared with the dense probes

    if np.all(np.asarray(scale) <= 0) and np.any(offset):
        given = [f"{float(v):g}" for v in np.asarray(offset).ravel()]
        said = given[0] if len(given) == 1 else f"[{', '.join(given)}]"
        raise ConfigError(
            f"image {path}: offset={said} given without a scale (scale 0 takes the file's declared scale/offset, "
            "else its dtype rule); pass the scale it goes with (x*scale+offset), or leave offset 0"
        )
    arr = read_array(path)
    if np.all(np.asarray(scale) <= 0):
        found = declared_rule(path)
        if found is not None and len(found[0]) == arr.shape[0]:
            scale, offset = (np.asarray(v, dtype=np.float32).reshape(-1, 1, 1) for v in found)
        else:
            scale = data_scale(arr.dtype, 0.0, f"image {path}", "scale")
    x = arr.astype(np.float32) * np.asarray(scale, dtype=np.float32)
    if np.any(offset):
        x = x + np.asarray(offset, dtype=np.float32)
    return torch.from_numpy(x), scale


def read_array(path: str | Path, rgb: bool = False) -> np.ndarray:
    """An image file's pixels [C,H,W] (GeoTIFF via rasterio, as stored; JPEG/PNG/WebP/BMP via Pillow, as pretraining
    reads photos: upright by their EXIF orientation (a phone stores portraits sideways with orientation 6 or 8),
    palette/RGBA/CMYK as RGB, alpha dropped; `geodino.data.images.photo_array`). A greyscale photo is one band, or
    three equal bands with `rgb` (a dataset of RGB photos: `geodino.data.images.dataset_bands` decides)."""
    path = Path(path)
    try:
        if path.suffix.lower() in TIFF_EXTS:
            import warnings

            import rasterio
            from rasterio.errors import NotGeoreferencedWarning

            with warnings.catch_warnings():  # a chip's pixels are all read here: no georeference is no matter
                warnings.simplefilter("ignore", NotGeoreferencedWarning)
                with rasterio.open(path) as src:
                    arr = src.read()
        else:
            from PIL import Image

            from geodino.data.images import photo_array

            with Image.open(path) as raw:
                arr = photo_array(raw, rgb=rgb)[0]
    except Exception as exc:  # Pillow/rasterio raise many kinds; all mean "unreadable"
        from geodino.data.images import unreadable_detail

        raise InputError(
            f"cannot read image {path}: {unreadable_detail(path, exc)}; check the file or remove it"
        ) from exc
    return arr


# ------------------------------------------------------------------------------------------ generic folders


def _class_folders(path: Path) -> dict[str, list[Path]]:
    """{class: its image files (sorted)} for ROOT/<class>/**/*.{jpg,png,tif}. Hidden files and folders, and a Mac
    zip's `__MACOSX/`, are left out at every level (`desktop_litter`), as `embed images` and pretraining's `images`
    source list a folder: a macOS `._photo.jpg` beside each photo (a copy to a USB disk, `__MACOSX/` from a zip)
    stopped the probe at the first, "cannot read image"."""
    out: dict[str, list[Path]] = {}
    for rel in list_folder(path):
        parts = rel.split(os.sep)
        if len(parts) > 1 and not desktop_litter(rel):
            if os.path.splitext(rel)[1].lower() in IMAGE_EXTENSIONS:
                out.setdefault(parts[0], []).append(path / rel)
    return {name: sorted(out[name]) for name in sorted(out)}


def image_folder(cfg: DatasetConfig, split: str, backbone: Any = None) -> ProbeDataset:
    """Class-per-folder images: ROOT/<class>/*.{jpg,png,tif}, or ROOT/{train,val,test}/<class>/*.

    Without split folders the images are split by class-stratified, seeded fractions (`val_fraction`,
    `test_fraction`, `split_seed`). A class present in val/test but not in train is an error. DN -> reflectance:
    `scale`/`offset`, else the scale/offset each file declares (GDAL), else the DN scale `backbone`'s export
    records (when it fits the images), else by dtype (`geodino.eval.scaling.InputScaling`), decided once over every
    image of every split, so that each split and each image gets the same rule whatever its own values.
    """
    root = require_folder(cfg.root, cfg.name, "one sub-folder of images per class (ROOT/<class>/*.jpg)")
    split_dirs = {s: root / getattr(cfg, f"{s}_split") for s in ("train", "val", "test")}
    has_splits = split_dirs["train"].is_dir()
    folders = [d for d in split_dirs.values() if d.is_dir()] if has_splits else [root]
    from geodino.eval.folder_rule import settled_rule

    # every split's band count and DN -> reflectance rule, settled over all splits' files once (each split gets the
    # same rule) and kept for the other splits' builds while the files are unchanged
    rgb, scaling = settled_rule(
        cfg, root, folders, backbone, lambda d: [f for fs in _class_folders(d).values() for f in fs]
    )
    if has_splits:
        train_classes = sorted(_class_folders(split_dirs["train"]))
        warn_empty_class_folders(split_dirs["train"], train_classes, IMAGE_EXTENSIONS)
        if not train_classes:
            raise InputError(f"no class folders with images in {split_dirs['train']}; expected <class>/*.jpg")
        if split == "val" and not split_dirs["val"].is_dir():
            # no val folder: carve it from train, stratified
            return _folder_from_files(
                cfg, split_dirs["train"], train_classes, "val", carve=True, scaling=scaling, rgb=rgb
            )
        if split == "train" and not split_dirs["val"].is_dir():
            return _folder_from_files(
                cfg, split_dirs["train"], train_classes, "train", carve=True, scaling=scaling, rgb=rgb
            )
        folder = split_dirs[split]
        report_val = "; or report on val: eval_split=val" if split == "test" else ""  # a classification key
        if not folder.is_dir():
            raise InputError(
                f"split folder {folder} not found; create it, or set data.{split}_split to another folder of "
                f"{root}{report_val}"
            )
        found = _class_folders(folder)
        if not found:  # an empty split folder: it failed reading a first image of none (IndexError)
            raise InputError(
                f"no class folders with images in split folder {folder}; expected <class>/*.jpg there, or set "
                f"data.{split}_split to another folder of {root}{report_val}"
            )
        extra = sorted(set(found) - set(train_classes))
        if extra:
            raise InputError(
                f"class {extra[0]!r} in {folder} has no training images in {split_dirs['train']}; "
                "add training images for it or remove it"
            )
        return _folder_from_files(cfg, folder, train_classes, split, carve=False, scaling=scaling, rgb=rgb)
    classes = sorted(_class_folders(root))
    warn_empty_class_folders(root, classes, IMAGE_EXTENSIONS)
    if not classes:
        raise InputError(f"no class folders with images in {root}; expected ROOT/<class>/*.jpg ({README_HINT})")
    return _folder_from_files(cfg, root, classes, split, carve=True, three_way=True, scaling=scaling, rgb=rgb)


def _folder_from_files(
    cfg: DatasetConfig,
    folder: Path,
    classes: list[str],
    split: str,
    *,
    carve: bool,
    three_way: bool = False,
    scaling: InputScaling,
    rgb: bool = False,
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
        if not idx and split != "train":  # it failed later as 'dataset image_folder (test) has no images'
            counts = np.bincount(labels)
            smallest = int(counts[counts > 0].min())  # each class is split on its own
            need = min(0.5, math.ceil(51 / smallest) / 100)  # rounds to one image of the smallest class
            raise InputError(
                f"data.{split}_fraction={fr[split]} leaves the {split} split of the {len(files)} images in {folder} "
                f"empty (its smallest class has {smallest}); raise it to {need:g} or more, or add images"
                f"{'; or report on val: eval_split=val' if split == 'test' else ''}"
            )
    else:
        idx = list(range(len(files)))
    idx = [idx[i] for i in seeded_subset(len(idx), cfg.max_samples, cfg.split_seed)]
    from geodino.eval.photo_scaling import reflectance
    from geodino.eval.scaling import DECLARED, scaling_text

    first = read_array(files[idx[0]] if idx else files[0], rgb)
    scale, offset, rule = scaling.rule(first, str(files[idx[0]] if idx else files[0]))  # the first image's rule
    # the old spelling when there is one factor and no offset, so feature caches made before stay valid
    key_scale = scale if isinstance(scale, float) and not np.any(offset) else scaling_text(scale, offset)
    if len(scaling.fixed) > 1 or scaling.declared:  # several dtypes, or rules the files declare: all named
        rule = "; ".join(dict.fromkeys(r[2] for r in scaling.fixed.values()))
        key_scale = "|".join(
            r[2] if r[2].endswith(DECLARED) else scaling_text(r[0], r[1]) for r in scaling.fixed.values()
        )
    rule += scaling.off_note()  # data.file_scale false: said
    nb = first.shape[0]
    bands = cfg.bands if cfg.bands and cfg.bands != ["rgb"] else (["red", "green", "blue"] if nb == 3 else [])
    bands = bands or [f"b{i + 1}" for i in range(nb)]
    if len(bands) != nb:
        raise ConfigError(
            f"data.bands=[{', '.join(map(str, bands))}] name {plural(len(bands), 'band')} but images in {folder} have "
            f"{nb}: an image folder reads every band of its files, in file order, and this key only names them; "
            f"list {nb} names or set data.bands=[] (default names)"
        )

    def get(i: int) -> dict[str, Any]:
        arr = read_array(files[i], rgb)
        x = reflectance(arr, scaling.rule(arr, str(files[i])))  # the rule of this file's dtype, not its values
        return {"image": torch.from_numpy(x), "label": torch.tensor(labels[i], dtype=torch.long)}

    # which file carries which label (an image moved to another class folder keeps its size and mtime: the cached
    # features store the labels); the stamp is of these files alone, not of hidden files or the folder's mtime
    labelled = hashlib.sha256(
        "\n".join(f"{f.relative_to(folder)}\t{y}" for f, y in zip(files, labels)).encode()
    ).hexdigest()[:16]

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
        extra_key=(
            f"seed={cfg.split_seed},val={cfg.val_fraction},test={cfg.test_fraction},scale={key_scale},files={labelled}"
        ),
        scaling=rule,
        files=[str(f) for f in files],
        labels=labels,
        stamp=folder_stamp(folder, files),
    )


# ------------------------------------------------------------------------------------------------ registry

DATASETS: dict[str, Callable[..., ProbeDataset] | str] = {
    "image_folder": image_folder,
    "eurosat": "geodino.eval.torchgeo_datasets:eurosat",
    "bigearthnet": "geodino.eval.torchgeo_datasets:bigearthnet",
    "loveda": "geodino.eval.torchgeo_datasets:loveda",
    "vhr10": "geodino.eval.torchgeo_datasets:vhr10",
    "dior": "geodino.eval.torchgeo_datasets:dior",
}
"""Dataset name -> builder `(cfg, split) -> ProbeDataset`. A string value "module:function" is imported lazily
(the dense generic formats live with their probe modules)."""


def register_dataset(name: str, builder: Callable[..., ProbeDataset] | str) -> None:
    """Add a dataset adapter under `name` (a callable or a lazy "module:function" string)."""
    DATASETS[name] = builder


def build_dataset(cfg: DatasetConfig, split: str, backbone: Any = None) -> ProbeDataset:
    """The probe dataset `cfg.name` for one of the splits train, val or test. `backbone` goes to builders that
    take it (`image_folder`: its recorded DN scale applies to generic image files)."""
    if split not in ("train", "val", "test"):
        raise ConfigError(f"split {split!r} is not valid; use train, val or test")
    builder = DATASETS.get(cfg.name)
    if builder is None:
        from geodino.errors import did_you_mean

        close = did_you_mean(cfg.name, DATASETS)
        hint = f"; did you mean {close[0]!r}?" if close else f"; choose one of {', '.join(sorted(DATASETS))}"
        raise ConfigError(f"data.name={cfg.name!r} is not a known dataset{hint}")  # the key a config writes
    if isinstance(builder, str):
        import importlib

        module, func = builder.split(":")
        builder = getattr(importlib.import_module(module), func)
    if backbone is not None and "backbone" in inspect.signature(builder).parameters:
        return builder(cfg, split, backbone=backbone)
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
