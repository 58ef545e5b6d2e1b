"""Semantic segmentation probe on a frozen backbone: linear, UPerNet or DPT head; mIoU with an ignore index.

Protocols: the linear head is the official DINOv3 one (BN + 1x1 conv on the last layer's patch tokens); UPerNet
on four layers with a Feature2Pyramid neck is PANGAEA's frozen-encoder protocol (AdamW 1e-4, step decay at
60/90 %); DPT on four layers with CLS readout and the segmentation head DINOv3 describes for GEO-Bench
(dinov3#95). Training uses fixed tiles of `crop_size` (features cached once); evaluation slides `crop_size`
windows over whole images.

Data: folders of images and masks paired by file name (`a.tif` with `a.png`, `a_mask.png`, `a_label.tif` ...),
or any sequence of probe samples (`image` reflectance [C,H,W], `mask` long [H,W]) from a dataset adapter.
"""

from __future__ import annotations

import dataclasses
import math
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from geodino.config import options_for
from geodino.errors import ConfigError, InputError
from geodino.eval import dense
from geodino.eval.config_arg import probe_config
from geodino.eval.data_splits import check_holdout
from geodino.eval.datasets import DatasetConfig
from geodino.eval.detection_outputs import image_paths
from geodino.eval.head_training import (
    FeatureStore,
    budget_epochs,
    head_device,
    host_state,
    seed_everything,
    to_device,
    train_head,
)
from geodino.eval.label_budget import active, image_subset
from geodino.eval.layer_choice import backbone_name, resolve_layers
from geodino.eval.metrics import IGNORE_MODES, SegmentationMeter, segmentation_scores
from geodino.eval.scaling import InputScaling, check_data_offset
from geodino.eval.seeding import keeps_global_rng
from geodino.eval.segmentation_data import (  # noqa: F401  (re-exported: the data helpers lived here)
    MASK_SUFFIXES,
    check_label_counts,
    check_sample,
    file_spec,
    left_out_line,
    load_folder,
    load_pair,
    loss_target,
    map_labels,
    mask_untrained,
    pair_masks,
    trains_on_ignored,
    untrained_classes,
)

HEADS = ("linear", "upernet", "dpt")
FILE_KEYS = ("train_images", "train_masks", "val_images", "val_masks")


@dataclass
class SegmentationProbeConfig:
    """Keys of a segmentation probe (`geodino probe` task `segmentation`)."""

    data: DatasetConfig = field(default_factory=lambda: DatasetConfig(name=""))  # a named dataset (loveda ...)
    # file keys: a folder, file or glob, or a list of them (`[/data/urban/images, /data/rural/images]`), kept as
    # given; masks are paired with images by name over all entries, entry by entry where a name repeats
    train_images: Any = ""  # images (GeoTIFF, PNG, JPEG); used when data.name is ""
    train_masks: Any = ""  # masks with the images' names (optionally _mask/_label suffix), or one vector
    # file of polygons (.gpkg .geojson .shp ...: eval/vector_masks.py) burnt onto each image's grid
    mask_column: str = ""  # the polygons' class: ids, or names in class_names; "": every polygon is class 1
    mask_layer: str = ""  # the layer of a multi-layer polygon file (a GeoPackage); "": its first, with a note
    val_images: Any = ""  # held-out images; empty: val_fraction of the training images
    val_masks: Any = ""
    val_fraction: float = 0.2
    # label budget (eval/label_budget.py): the share of training images kept, a seeded subset nested across
    # fractions for one seed, drawn after the val_fraction hold-out (1 = all); val and test stay whole
    train_fraction: float = 1.0
    num_classes: int = 0  # required: labels are 0..num_classes-1
    class_names: list[str] = field(default_factory=list)
    ignore_index: int = 255  # unlabelled pixels (and nodata pixels) are ignored by the loss and metrics
    metric_ignore_classes: list[int] = field(default_factory=list)  # class ids left out of the mIoU/mAcc means
    # (GEO-Bench m-cashew-plantation: [0]). What happens to their pixels: metric_ignore_mode (scores) and
    # train_on_ignored_classes (loss)
    metric_ignore_mode: str = "pixels"  # pixels: their pixels are dropped from the scores (torchmetrics
    # ignore_index, TerraTorch, DINOv3's reduce_zero_label); mean: the pixels stay scored, only the means skip them
    train_on_ignored_classes: bool | None = None  # the loss trains on metric_ignore_classes; null (default): not
    # with metric_ignore_mode pixels (as DINOv3's reduce_zero_label and TerraTorch's ignore_index: neither trained
    # on nor scored), yes with mean (their pixels stay scored). A class not trained on is never predicted
    label_map: dict[int, int] = field(default_factory=dict)  # mask value -> class id, e.g. {255: 1} for 0/255 masks
    head: str = "linear"  # linear | upernet | dpt
    layers: Any = "auto"  # auto (linear: last; upernet/dpt: four_even) | last | four_last | four_even | pangaea | [i]
    crop_size: int = 256  # training tile and sliding-window size, pixels (multiple of the patch size)
    stride: int = 0  # sliding-window stride at evaluation; 0: 2/3 of crop_size (as DINOv3's 512/341)
    bands: list[int] = field(default_factory=list)  # 0-based band indices to keep; empty: all
    data_scale: float = 0.0  # DN -> reflectance; 0: the file's declared, else the backbone's recorded, else dtype
    data_offset: float = 0.0  # added after data_scale (reflectance = DN * data_scale + data_offset)
    file_scale: bool = True  # false: a file's declared GDAL scale/offset is not read (as geodino embed's file_scale)
    epochs: int = 20
    min_steps: int = 0  # epochs raised to give at least this many optimiser steps; 0: epochs (under 300 warns)
    batch_size: int = 8
    lr: float = 0.0  # 0: 1e-3 for linear, 1e-4 for upernet/dpt
    weight_decay: float = 1e-3
    channels: int = 512  # UPerNet channels (PANGAEA: 512); DPT fusion uses channels/2 (256, as DPT)
    dropout: float = 0.1
    cache_features: str = "memory"  # memory | disk | none
    seed: int = 0
    plots: int = 4  # number of validation images drawn as image / truth / prediction panels
    progress: bool = True  # progress bars (the suite's progress key sets it)

    def __post_init__(self) -> None:
        for key in FILE_KEYS:  # a Path (or a list of them) given in Python: its text, as YAML would give it
            setattr(self, key, file_spec(getattr(self, key), key))

    def validate(self) -> None:
        check_holdout("segmentation", self)  # val_fraction in [0, 1): here, so every entry point checks it first
        # train_fraction is checked by run_segmentation (a suite checks it first, naming tasks.<name>.train_fraction)
        if self.head not in HEADS:
            raise ConfigError(f"segmentation head={self.head!r} must be one of {', '.join(HEADS)}")
        if self.num_classes < 2 and self.train_images and not self.data.name:  # adapters know their classes
            raise ConfigError(f"segmentation num_classes={self.num_classes} must be set (>= 2)")
        if self.class_names and self.num_classes and len(self.class_names) != self.num_classes:
            raise ConfigError(
                f"class_names has {len(self.class_names)} names but num_classes={self.num_classes}; "
                "give one name per class"
            )
        if self.label_map and self.data.name:
            raise ConfigError(
                f"label_map applies to mask files (train_masks/val_masks); the {self.data.name} adapter maps its own "
                "labels: drop label_map"
            )
        if self.min_steps < 0:
            raise ConfigError(f"segmentation min_steps={self.min_steps} must be >= 0 (0: epochs alone)")
        if any(isinstance(c, bool) or not isinstance(c, int) or c < 0 for c in self.metric_ignore_classes):
            raise ConfigError(
                f"segmentation metric_ignore_classes={self.metric_ignore_classes!r} must be a list of class ids "
                "(whole numbers >= 0), e.g. [0]"
            )
        if self.metric_ignore_mode not in IGNORE_MODES:
            raise ConfigError(
                f"segmentation metric_ignore_mode={self.metric_ignore_mode!r} must be one of {', '.join(IGNORE_MODES)}"
            )
        if self.train_on_ignored_classes is not None and not isinstance(self.train_on_ignored_classes, bool):
            raise ConfigError(
                f"segmentation train_on_ignored_classes={self.train_on_ignored_classes!r} must be true, false or "
                "null (null: false with metric_ignore_mode pixels, true with mean)"
            )
        if self.crop_size < 16:
            raise ConfigError(f"crop_size={self.crop_size} is too small; use at least the patch size")
        check_data_offset(self.data_scale, self.data_offset)


# ----------------------------------------------------------------------------------------------- model


def default_layers(cfg_layers: Any, head: str) -> Any:
    """`auto`/None as the head's default (linear: last, else four_even); a list or tuple as a list; a whole number
    as an int, which `resolve_layers` refuses in its one line (`list(2)` was a TypeError traceback); anything else
    (2.5, True, a mapping) is refused here in one line."""
    import numbers

    if isinstance(cfg_layers, str) or cfg_layers is None:
        return ("last" if head == "linear" else "four_even") if cfg_layers in (None, "auto") else cfg_layers
    if isinstance(cfg_layers, (list, tuple)):
        return list(cfg_layers)
    if isinstance(cfg_layers, numbers.Integral) and not isinstance(cfg_layers, bool):
        return int(cfg_layers)
    raise ConfigError(
        f"segmentation head={head}: layers={cfg_layers!r} must be auto, last, four_last, four_even, "
        "four_even_official, pangaea or a list of block indices, e.g. layers=[8, 11]"
    )


def head_layers(backbone: Any, cfg: SegmentationProbeConfig) -> str | list[int]:
    """The layers the configured head reads; LayerError when `backbone` has too few blocks for it (the suite
    runner calls this for every task before any runs)."""
    return resolve_layers(
        default_layers(cfg.layers, cfg.head),
        backbone.n_blocks,
        cfg.head != "linear",
        what=f"segmentation head={cfg.head}",
        backbone=backbone_name(backbone),
        auto=cfg.layers in (None, "auto"),
    )


def build_head(
    kind: str, embed_dim: int, n_layers: int, n_out: int, channels: int = 512, dropout: float = 0.1
) -> nn.Module:
    """A segmentation head over `n_layers` maps of `embed_dim` channels giving `n_out` logits."""
    from geodino.eval.heads import DPTHead, LinearHead, UPerNetHead

    if kind == "linear":
        return LinearHead([embed_dim] * n_layers, n_out, dropout=dropout)
    if kind == "upernet":
        return UPerNetHead(embed_dim, n_out, channels=channels, dropout=dropout)
    if kind == "dpt":
        c = max(channels // 2, 8)  # 256 for the default 512: DPT's fusion width, reassembly (128, 256, 512, 1024)
        # DINOv3's GEO-Bench segmentation DPT (dinov3#95): 3x3 conv + ReLU after fusion, then conv-BN-ReLU-dropout-1x1;
        # residual units without bias (DINOv3's DPTHead use_bias=False default, HighResCanopyHeight's unit)
        return DPTHead(
            embed_dim,
            n_out,
            post_channels=(c // 2, c, 2 * c, 4 * c),
            channels=c,
            readout="project",
            project_after_fusion=True,
            seg_dropout=dropout,
            res_bias=False,
        )
    raise ConfigError(f"head={kind!r} must be one of {', '.join(HEADS)}")


def cache_tiles(
    data: Any, store: FeatureStore, crop: int, cfg: SegmentationProbeConfig, backbone: Any, batch_size: int
) -> Tensor:
    """One pass over the training samples: check each, cut it into a grid of `crop` tiles (the last flush with
    the edge, padding ignored), add the tiles' features to `store`; returns the tile masks [N,crop,crop]."""
    from geodino.progress import progress_bar

    masks: list[Tensor] = []
    buf: list[Tensor] = []
    small = cfg.num_classes < 255 and 0 <= cfg.ignore_index <= 255
    counts = torch.zeros(cfg.num_classes, dtype=torch.long)
    ignored = nodata = total = 0
    quiet = not cfg.progress or len(data) < 4
    for i in progress_bar(range(len(data)), desc="segmentation features", leave=False, disable=quiet):
        s = data[i]
        check_sample(s, cfg, backbone, f"train sample {s.get('name', i)}")
        flat = s["mask"].long().flatten()
        keep = flat[(flat >= 0) & (flat < cfg.num_classes) & (flat != cfg.ignore_index)]
        counts += torch.bincount(keep, minlength=cfg.num_classes)
        n_nodata = int(s.get("nodata_px", 0))
        ignored += int((flat == cfg.ignore_index).sum()) - n_nodata
        nodata += n_nodata
        total += flat.numel()
        h, w = s["image"].shape[-2:]
        # padding past the image edge: the band mean, 0 once normalised, as at inference (dense.pad_fill)
        fill = dense.pad_fill(backbone, s["image"].shape[0]) if h < crop or w < crop else 0.0
        for r, c in dense.tile_grid(h, w, crop):
            buf.append(dense.crop_pad(s["image"], r, c, crop, fill))
            m = dense.crop_pad(s["mask"].long(), r, c, crop, cfg.ignore_index)
            masks.append(m.to(torch.uint8) if small else m)
            if len(buf) == batch_size:
                store.add(torch.stack(buf))
                buf = []
    if buf:
        store.add(torch.stack(buf))
    if not masks:
        raise InputError("segmentation has no training samples; check train_images/train_masks")
    summary = check_label_counts(counts, ignored, nodata, total, cfg)
    if cfg.metric_ignore_classes and not trains_on_ignored(cfg):
        summary += left_out_line(counts, sorted(set(cfg.metric_ignore_classes)), total)
    print(summary, file=sys.stderr)
    return torch.stack(masks)


def _samples(
    cfg: SegmentationProbeConfig, train_data: Any, val_data: Any, scaling: InputScaling, backbone: Any = None
) -> tuple[Any, Any]:
    """Training and scored samples: the given ones, a named dataset (its train and `data.test_split` splits), or
    the configured folders (scored: the val folders or a held-out share of training images, scaled by `scaling`);
    fills `cfg`'s classes from a dataset adapter."""
    if train_data is None and cfg.data.name:
        from geodino.eval.datasets import build_dataset

        train_data = build_dataset(cfg.data, "train", backbone=backbone)
        # scored on the dataset's test split (data.test_split), as detection; LoveDA, whose Test has no public
        # masks, sets test_split: val in its configs and is scored on Val. Nothing is chosen on val
        val_data = val_data if val_data is not None else build_dataset(cfg.data, "test", backbone=backbone)
    classes = getattr(train_data, "classes", None)
    if classes:  # a dataset adapter knows its classes and ignore index
        cfg.num_classes = cfg.num_classes or len(classes)
        cfg.class_names = cfg.class_names or list(classes)
        cfg.ignore_index = getattr(train_data, "ignore_index", cfg.ignore_index)
        if cfg.num_classes != len(classes):
            raise ConfigError(
                f"num_classes={cfg.num_classes} but the dataset has {len(classes)} classes "
                f"({', '.join(list(classes)[:5])}); set num_classes=0 to take it from the data"
            )
    if train_data is None:
        if not cfg.train_images or not cfg.train_masks:
            raise ConfigError("segmentation needs train_images and train_masks (folders of images and masks)")
        train_data = load_folder(cfg.train_images, cfg.train_masks, cfg, scaling, ("train_images", "train_masks"))
    if val_data is None:
        if cfg.val_images:
            if not cfg.val_masks:
                raise ConfigError("val_images is set but val_masks is empty; give the validation mask folder")
            val_data = load_folder(cfg.val_images, cfg.val_masks, cfg, scaling, ("val_images", "val_masks"))
        else:
            train_data, val_data = dense.split_samples(train_data, cfg.val_fraction, cfg.seed, "segmentation")
    if active(cfg.train_fraction, 0):  # a label budget: training images only, after the hold-out, seeded and nested
        train_data = dense.Subset(train_data, image_subset(len(train_data), cfg.train_fraction, cfg.seed))
    # one rule for every image file of both splits, decided before any is read for features
    files = [img for d in (train_data, val_data) for img, _ in _pairs(d)]
    if files:
        dense.settle_scaling(scaling, files, cfg.bands)
    return train_data, val_data


def _budget(cfg: SegmentationProbeConfig, train_data: Any) -> dict[str, Any] | None:
    """What segmentation_metrics.json records about a label budget (None without one): the key, the seed, the
    training images before and after it and the names of those kept (folder data)."""
    if not active(cfg.train_fraction, 0) or not isinstance(train_data, dense.Subset):
        return None
    n_full, n = len(train_data.data), len(train_data)
    out: dict[str, Any] = {"train_fraction": float(cfg.train_fraction), "seed": int(cfg.seed)}
    out.update(n_train_full=n_full, n_train=n, kept_fraction=n / n_full if n_full else 0.0)
    files = _kept_files(train_data)
    if files:
        out["train_images"] = files
    return out


def _kept_files(data: Any) -> list[str]:
    """The image file names behind a (nested) `Subset` of folder samples, in order: a folder's file names (paths
    below their common folder where the images are in several: `urban/0.png`, `rural/0.png`), an
    adapter's image paths below its root (`ProbeDataset.sample_files`: LoveDA's Train/Urban/images_png/0.png, as
    Urban and Rural reuse names), read without loading a sample; [] for other samples."""
    if isinstance(data, dense.Subset):
        inner = _kept_files(data.data)
        return [inner[i] for i in data.indices] if inner else []
    if isinstance(data, dense.LazySamples):  # below the images' common folder: the name, in one folder
        names = image_paths([img for img, _ in data.items])
        return [names[img] for img, _ in data.items]
    files = data.sample_files() if callable(getattr(data, "sample_files", None)) else None
    return list(files or [])


def _pairs(data: Any) -> list[tuple[Path, Path]]:
    """The (image, mask) files behind samples read from folders (`load_folder`; for a `Subset` of it, the whole
    folder, train and held-out val alike); [] for other samples (they come scaled)."""
    if isinstance(data, dense.Subset):
        return _pairs(data.data)
    return list(data.items) if isinstance(data, dense.LazySamples) else []


# ----------------------------------------------------------------------------------------------- run


@keeps_global_rng
def run_segmentation(
    backbone: Any,
    cfg: SegmentationProbeConfig,
    out_dir: str | Path,
    *,
    train_data: Sequence[dict[str, Any]] | None = None,
    val_data: Sequence[dict[str, Any]] | None = None,
) -> dict[str, float]:
    """Train a segmentation head on the frozen `backbone`, evaluate by sliding window, write plots.

    `train_data`/`val_data` (sequences of probe samples) replace the folder keys when given, so the torchgeo
    adapters plug in. Returns mIoU, pixel accuracy, mAcc and IoU per class; writes
    `segmentation_metrics.json`, `segmentation_head.pt` and `segmentation_examples.png` into `out_dir`.
    """
    cfg = probe_config(cfg, SegmentationProbeConfig, "run_segmentation")
    backbone, out_dir = dense.start_probe("segmentation", cfg, backbone, out_dir)
    cfg = dataclasses.replace(cfg)  # filled from the dataset below without touching the caller's config
    layers = head_layers(backbone, cfg)
    scaling = InputScaling.of(cfg, backbone, "segmentation")
    named = bool(cfg.data.name) and train_data is None and val_data is None  # scored on data.test_split
    train_data, val_data = _samples(cfg, train_data, val_data, scaling, backbone)
    if cfg.num_classes < 2:
        raise ConfigError(f"segmentation num_classes={cfg.num_classes} must be >= 2")
    segmentation_scores(torch.zeros(cfg.num_classes, cfg.num_classes), None, cfg.metric_ignore_classes)  # ids ok
    untrained = untrained_classes(cfg)  # left out of the loss and never predicted
    if len(untrained) >= cfg.num_classes:
        raise ConfigError(
            f"segmentation: metric_ignore_classes={cfg.metric_ignore_classes} with ignore_index={cfg.ignore_index} "
            f"leave no class of {cfg.num_classes} to train on; set train_on_ignored_classes: true or fewer classes"
        )
    if cfg.metric_ignore_classes and cfg.metric_ignore_mode == "mean" and not trains_on_ignored(cfg):
        print(
            "segmentation: metric_ignore_mode mean scores the pixels of metric_ignore_classes, which "
            "train_on_ignored_classes: false never predicts: each counts as an error of another class",
            file=sys.stderr,
        )

    crop, stride = dense.crop_and_stride(backbone.patch_size, cfg.crop_size, cfg.stride)
    store = FeatureStore(backbone, layers, cfg.cache_features, out_dir / "feature_cache")
    tile_masks = cache_tiles(train_data, store, crop, cfg, backbone, cfg.batch_size)
    probe_maps, _ = store.get([0])
    seed_everything(cfg.seed)  # the head's initial weights depend on the seed, not on what ran before
    head = build_head(cfg.head, probe_maps[0].shape[1], len(probe_maps), cfg.num_classes, cfg.channels, cfg.dropout)
    device = head_device(backbone)  # the head trains where the backbone runs; the tile masks stay on the host
    head.to(device)

    left_out = torch.tensor(untrained, dtype=torch.long, device=device)  # their pixels give no gradient

    def loss_fn(h: nn.Module, maps: list[Tensor], cls: list[Tensor], idx: list[int]) -> Tensor:
        logits = dense.upsample_to(h(maps, cls), (crop, crop))
        target = loss_target(to_device(tile_masks[idx], device).long(), left_out, cfg.ignore_index)
        if not (target != cfg.ignore_index).any():
            return logits.sum() * 0.0
        return F.cross_entropy(logits, target, ignore_index=cfg.ignore_index)

    lr = cfg.lr or (1e-3 if cfg.head == "linear" else 1e-4)
    train_options = options_for(train_head, cfg, lr=lr, desc=f"segmentation {cfg.head}")
    what = f"segmentation {cfg.head} head"
    train_options["epochs"] = budget_epochs(cfg.epochs, cfg.batch_size, cfg.min_steps, len(tile_masks), what)
    try:
        history = train_head(head, store, loss_fn, **train_options)  # epochs, batch_size, ... of `cfg`
    finally:
        store.close()  # `disk`: its chunks are read by no later run
    predict = dense.head_predict(backbone, head, layers)
    meter = SegmentationMeter(
        cfg.num_classes, cfg.ignore_index, cfg.class_names or None, cfg.metric_ignore_classes, cfg.metric_ignore_mode
    )
    shown: list[Any] = []
    for i in range(len(val_data)):
        s = val_data[i]
        check_sample(s, cfg, backbone, f"val sample {s.get('name', i)}")
        logits = dense.sliding_window(predict, s["image"], crop, stride, cfg.batch_size)
        pred = mask_untrained(logits, untrained).argmax(0)
        meter.update(pred, s["mask"])
        if len(shown) < cfg.plots:
            shown.append((s["image"], s["mask"], pred, s.get("valid")))
    metrics = meter.compute()
    metrics["train_loss"] = history[-1] if history else math.nan
    budget = _budget(cfg, train_data)
    if budget is not None:  # info rows of results.json/results.md (results.INFO_METRICS), as classification's
        metrics.update(train_fraction=budget["kept_fraction"], n_train=float(budget["n_train"]))

    saved = {"head": cfg.head, "layers": layers, "num_classes": cfg.num_classes, "state_dict": host_state(head)}
    saved["untrained_classes"] = untrained  # not learned: a reader masks their logits before argmax (mask_untrained)
    scored: dict[str, Any] = {"scored_split": f"{cfg.data.name} {cfg.data.test_split}"} if named else {}
    if cfg.metric_ignore_classes:  # the json says which classes its mIoU/mAcc means leave out
        scored["mean_leaves_out_classes"] = sorted(set(cfg.metric_ignore_classes))
        scored["metric_ignore_mode"] = cfg.metric_ignore_mode  # their pixels dropped (pixels) or still scored (mean)
        scored["trained_on_ignored_classes"] = trains_on_ignored(cfg)
    if budget is not None:
        scored["label_budget"] = budget
    dense.save_probe(out_dir, "segmentation", saved, {**metrics, **scored, "input_scaling": scaling.say()})
    if shown:
        from geodino.eval.plots import plot_examples

        rgb = dense.rgb_indices(*dense.image_bands(backbone, val_data))  # the data's red, green, blue bands
        path = out_dir / "segmentation_examples.png"
        plot_examples(shown, cfg.num_classes, cfg.ignore_index, path, cfg.class_names or None, rgb=rgb)
    return metrics
