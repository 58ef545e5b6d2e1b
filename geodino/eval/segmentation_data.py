"""Segmentation probe data: image/mask pairs from folders, label mapping and checks, and which classes the loss
leaves out (`metric_ignore_classes` unless `train_on_ignored_classes`). Split out of `segmentation.py`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from geodino.errors import ConfigError, InputError, plural
from geodino.eval import dense
from geodino.eval.metrics import check_labels
from geodino.eval.pairing import pair_entries
from geodino.eval.scaling import InputScaling
from geodino.eval.vector_masks import VECTOR_SUFFIXES, VectorMasks, is_vector_file

MASK_SUFFIXES = ("", "_mask", "_masks", "_label", "_labels", "_gt", "_seg")


def pair_masks(images: list[Path], masks: list[Path]) -> list[tuple[Path, Path]]:
    """Pair each image with the mask of the same stem (or stem + _mask/_label/...); name every image left over."""
    by_stem = {m.stem: m for m in masks}
    pairs, missing = [], []
    for img in images:
        match = next((by_stem[img.stem + s] for s in MASK_SUFFIXES if img.stem + s in by_stem), None)
        if match is None or match == img:
            missing.append(img.name)
        else:
            pairs.append((img, match))
    if missing:
        raise InputError(
            f"no mask for {plural(len(missing), 'image')} ({', '.join(missing[:3])}"
            f"{', ...' if len(missing) > 3 else ''}); name each mask like its image (a.tif -> a.png or a_mask.png) "
            "in the mask folder"
        )
    return pairs


def load_pair(
    image: Path, mask: Path, cfg: Any, scaling: InputScaling | None = None, polygons: VectorMasks | None = None
) -> dict[str, Any]:
    """One probe sample from files; nodata pixels of the image become the ignore index. `scaling` is the run's
    DN -> reflectance rule (default: `data_scale`/`data_offset`, else by dtype). With `polygons` (a vector
    `train_masks`/`val_masks` file) the mask is its polygons burnt onto the image's grid."""
    r = dense.read_raster(image)
    if polygons is not None:
        ids = polygons.burn(image, r.crs, r.transform, r.data.shape[1:])
    else:
        m = dense.read_raster(mask)
        if m.data.shape[0] != 1:
            raise InputError(f"mask {mask} has {m.data.shape[0]} bands; a mask is one band of class ids")
        if m.data.shape[1:] != r.data.shape[1:]:
            raise InputError(
                f"mask {mask} is {m.data.shape[2]}x{m.data.shape[1]} px but image {image} is "
                f"{r.data.shape[2]}x{r.data.shape[1]} px; masks must match their image's size"
            )
        check_mask_grid(r, m)
        ids = m.data[0].astype(np.int64)
    target = map_labels(torch.from_numpy(ids), cfg.label_map)
    nodata = ~torch.from_numpy(r.valid)
    target[nodata] = cfg.ignore_index
    return {
        "image": dense.to_image_tensor(r, scaling or InputScaling.of(cfg), cfg.bands),
        "mask": target,
        "name": image.name,
        "nodata_px": int(nodata.sum()),
        "valid": torch.from_numpy(r.valid),  # the image's valid pixels: the preview's stretch leaves nodata out
    }


def check_mask_grid(image: dense.Raster, mask: dense.Raster) -> None:
    """Refuse a georeferenced mask that covers other ground than its georeferenced image of the same size (another
    CRS, origin or pixel size: its labels would be paired with the wrong pixels); masks are paired by pixel index,
    so one of another grid must be resampled onto the image's first. Masks or images without georeference (PNG)
    are paired as they are. Tolerance: half an image pixel at each edge."""
    if not (image.georeferenced and mask.georeferenced):
        return
    from rasterio.transform import array_bounds
    from rasterio.warp import transform_bounds

    h, w = image.data.shape[1:]
    ib = array_bounds(h, w, image.transform)  # (west, south, east, north)
    try:
        mb = array_bounds(h, w, mask.transform)
        if mask.crs != image.crs:
            mb = transform_bounds(mask.crs, image.crs, *mb)
    except ValueError as exc:  # rasterio's CRSError: CRSs that cannot be related
        raise InputError(
            f"mask {mask.path} is in {mask.crs} and image {image.path} in {image.crs}, which cannot be related "
            f"({exc}); resample the mask onto the image's grid"
        ) from exc
    tol = 0.5 * max(abs(image.transform.a), abs(image.transform.e))
    if any(abs(a - b) > tol for a, b in zip(ib, mb)):
        mine = ", ".join(f"{v:.10g}" for v in mb)
        raise InputError(
            f"mask {mask.path} covers other ground than image {image.path} (bounds {mine} vs "
            f"{', '.join(f'{v:.10g}' for v in ib)} in {image.crs}); masks are paired by pixel, so resample the mask "
            "onto the image's grid (e.g. gdalwarp -te/-ts/-t_srs of the image) or pair the right files"
        )


def map_labels(mask: Tensor, label_map: dict[int, int]) -> Tensor:
    """Mask values replaced by `label_map` (value -> class id), all at once (so {0: 1, 1: 0} swaps)."""
    if not label_map:
        return mask
    out = mask.clone()
    for src, dst in label_map.items():
        out[mask == int(src)] = int(dst)
    return out


def check_label_counts(counts: Tensor, ignored_value: int, nodata: int, total: int, cfg: Any) -> str:
    """Refuse training masks where a class has no pixel while the ignore value is present (a 0/255 mask read with
    num_classes=2 loses its foreground that way); return a line saying how many pixels each rule ignores."""
    pct = 100.0 / max(total, 1)
    # an ignore_index inside 0..K-1 (ignore_index=0 for 0 = unlabelled) has no training pixel by definition
    empty = [i for i in range(cfg.num_classes) if int(counts[i]) == 0 and i != cfg.ignore_index]
    if empty and ignored_value:
        names = ", ".join(str(i) for i in empty)
        raise InputError(
            f"the training masks hold no pixel of {'class' if len(empty) == 1 else 'classes'} {names} "
            f"(num_classes={cfg.num_classes}) while {plural(ignored_value, 'pixel')} ({ignored_value * pct:.1f}%) "
            f"{'carries' if ignored_value == 1 else 'carry'} the value {cfg.ignore_index} = ignore_index "
            f"and are ignored; if {cfg.ignore_index} marks class {empty[-1]} (a 0/{cfg.ignore_index} mask), map it "
            f"with label_map={{{cfg.ignore_index}: {empty[-1]}}}, otherwise set ignore_index to the unlabelled value"
        )
    line = (
        f"segmentation: {total} training mask pixels; ignored: {ignored_value} ({ignored_value * pct:.1f}%) with "
        f"value ignore_index={cfg.ignore_index}, {nodata} ({nodata * pct:.1f}%) as image nodata"
    )
    if empty:
        some = "class " if len(empty) == 1 else "classes "
        line += f"; {some}{', '.join(str(i) for i in empty)} {'has' if len(empty) == 1 else 'have'} no training pixel"
    return line


def file_spec(value: Any, key: str) -> str | list[str]:
    """A segmentation file key's value as the config keeps it: one folder, file or glob (text; a `Path` as its
    text, None as ""), or a list of them. Anything else, or an empty entry of a list, is one ConfigError line."""
    import os

    if value is None or isinstance(value, str | os.PathLike):
        return os.fspath(value) if value is not None else ""
    if isinstance(value, list | tuple) and all(isinstance(v, str | os.PathLike) and os.fspath(v) for v in value):
        return [os.fspath(v) for v in value]
    raise ConfigError(
        f"segmentation {key}={value!r} must be a folder, file or glob, or a list of them "
        f"({key}: [/data/urban/images, /data/rural/images]), with no empty entry"
    )


def load_folder(
    images: str | list[str],
    masks: str | list[str],
    cfg: Any,
    scaling: InputScaling | None = None,
    keys: tuple[str, str] = ("train_images", "train_masks"),
) -> dense.LazySamples:
    """Image/mask pairs of two folders, files or globs, or lists of them (by name over all entries, entry by entry
    where a name is in two places: `pairing.pair_entries`), read when accessed
    (scaled by `scaling`, see `load_pair`); `keys` name the config keys in errors."""
    from geodino.config_lists import one_or_list

    image_entries, mask_entries = one_or_list(images), one_or_list(masks)
    listed = [dense.list_files(spec, dense.IMAGE_SUFFIXES, "image") for spec in image_entries]
    imgs = [f for files in listed for f in files]
    scaling = scaling or InputScaling.of(cfg)
    vectors = [m for m in mask_entries if is_vector_file(m)]
    if vectors and len(mask_entries) > 1:
        raise ConfigError(
            f"{keys[1]} lists a vector file of polygons ({vectors[0]}) beside other entries; give the polygon file "
            "alone (it is burnt onto every image) or mask images only"
        )
    if vectors:  # one file of polygons for every image, burnt onto each image's grid
        polygons = VectorMasks(
            vectors[0], getattr(cfg, "mask_column", ""), list(cfg.class_names), getattr(cfg, "mask_layer", "")
        )
        polygons.check_placed(imgs)
        pairs = [(img, polygons.path) for img in imgs]
        return dense.LazySamples(pairs, lambda pair: load_pair(pair[0], pair[1], cfg, scaling, polygons))
    for key in ("mask_column", "mask_layer"):
        if getattr(cfg, key, ""):
            raise ConfigError(
                f"{key}={getattr(cfg, key)!r} applies to a vector file of polygons given as train_masks/val_masks "
                f"({', '.join(VECTOR_SUFFIXES)}), not to mask images ({masks}); drop {key}"
            )
    msks = [dense.list_files(spec, dense.IMAGE_SUFFIXES, "mask") for spec in mask_entries]
    pairs = pair_entries(listed, msks, pair_masks, keys, "mask")
    return dense.LazySamples(pairs, lambda pair: load_pair(pair[0], pair[1], cfg, scaling))


def check_sample(s: dict[str, Any], cfg: Any, backbone: Any, where: str) -> None:
    img, mask = s["image"], s["mask"]
    if tuple(img.shape[-2:]) != tuple(mask.shape[-2:]):
        raise InputError(
            f"{where}: mask is {mask.shape[-1]}x{mask.shape[-2]} px but image is {img.shape[-1]}x{img.shape[-2]} px; "
            "masks must match their image's size"
        )
    check_labels(mask, cfg.num_classes, cfg.ignore_index, f"mask of {where}")
    dense.check_bands(img.shape[0], backbone, f"image {where}")


def trains_on_ignored(cfg: Any) -> bool:
    """Whether the loss trains on `metric_ignore_classes`: `train_on_ignored_classes`, or when unset (None) only
    with `metric_ignore_mode: mean`, whose scores keep those pixels (the head must be able to predict them)."""
    if cfg.train_on_ignored_classes is not None:
        return bool(cfg.train_on_ignored_classes)
    return cfg.metric_ignore_mode == "mean"


def untrained_classes(cfg: Any) -> list[int]:
    """Class ids the head never learns: `metric_ignore_classes` left out of the loss (see `trains_on_ignored`) and
    an `ignore_index` inside 0..num_classes-1. Their logits only ever get pushed down, so a prediction could still
    paint them where the head is unsure; `mask_untrained` keeps them out of predicted maps, as DINOv3's
    reduce_zero_label (no output for the class at all)."""
    out = set() if trains_on_ignored(cfg) else {int(c) for c in cfg.metric_ignore_classes}
    if 0 <= cfg.ignore_index < cfg.num_classes:
        out.add(int(cfg.ignore_index))
    return sorted(c for c in out if c < cfg.num_classes)


def loss_target(target: Tensor, left_out: Tensor | None, ignore_index: int) -> Tensor:
    """`target` with the pixels of the `left_out` classes set to `ignore_index`, so the cross-entropy gives them no
    gradient (DINOv3's reduce_zero_label maps class 0 to 255; TerraTorch passes ignore_index to the loss)."""
    if left_out is None or left_out.numel() == 0:
        return target
    return torch.where(torch.isin(target, left_out), torch.full_like(target, ignore_index), target)


def mask_untrained(logits: Tensor, classes: list[int]) -> Tensor:
    """`logits` [K,H,W] or [B,K,H,W] with the logits of `classes` set to -inf, so argmax never picks a class the
    head was not trained on."""
    if not classes:
        return logits
    out = logits.clone()
    out[(slice(None),) * (logits.dim() - 3) + (classes,)] = float("-inf")
    return out


def left_out_line(counts: Tensor, classes: list[int], total: int) -> str:
    """The stderr note on the training pixels of `classes` (metric_ignore_classes) the loss leaves out."""
    n = int(counts[classes].sum()) if classes else 0
    return (
        f"; left out of the loss: {plural(n, 'pixel')} ({100.0 * n / max(total, 1):.1f}%) of metric_ignore_classes "
        f"{classes} (train_on_ignored_classes: true trains on them)"
    )
