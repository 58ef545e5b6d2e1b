"""Object-detection probe: frozen ViT -> simple feature pyramid (ViTDet) -> torchvision detector heads.

torchgeo's detection trainer takes ResNet backbones only; here any frozen geodino/DINOv3 backbone feeds
torchvision's Faster R-CNN (default), RetinaNet or FCOS through a ViTDet-style simple feature pyramid built
from one layer (the last, as ViTDet) or several layers concatenated. Only the pyramid and the detector heads
train. Boxes are read from Pascal VOC xml, COCO json or CSV (`xmin,ymin,xmax,ymax,label`, with an optional
`image_path` column as DeepForest writes); mAP and mAP50 come from torchmetrics (pycocotools backend).
Predictions of georeferenced images are exported as GeoJSON polygons in the image's map coordinates
(`geodino.eval.detection_outputs`). Training: `detection_training`; images larger than a tile are predicted in
overlapping windows merged by `detection_windows`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from geodino.config_lists import PATH_LIST, one_or_list, settle_path_lists
from geodino.errors import ConfigError, InputError, plural
from geodino.eval import dense
from geodino.eval.boxes import Boxes, check_boxes, match_boxes, read_boxes, tiles_of, warn_unannotated
from geodino.eval.config_arg import probe_config
from geodino.eval.data_splits import check_holdout
from geodino.eval.datasets import DatasetConfig
from geodino.eval.detection_coco import CocoRecorder
from geodino.eval.detection_outputs import boxes_to_geojson as boxes_to_geojson  # re-exported
from geodino.eval.detection_outputs import image_paths, output_names, write_predictions
from geodino.eval.detection_scoring import detections_kept as detections_kept  # re-exported
from geodino.eval.detection_scoring import evaluate_detector as _evaluate  # re-exported (tests)
from geodino.eval.detection_training import budget_images
from geodino.eval.detection_training import train_detector as train_detector  # re-exported
from geodino.eval.detection_transform import NativeSizeTransform
from geodino.eval.detection_windows import predict_image as predict_image  # re-exported
from geodino.eval.head_training import (
    extract,
    head_device,
    host_state,
    seed_everything,
    to_device,
)
from geodino.eval.layer_choice import backbone_name, resolve_layers
from geodino.eval.scaling import InputScaling, check_data_offset
from geodino.eval.seeding import keeps_global_rng

DETECTORS = ("faster_rcnn", "retinanet", "fcos")


@dataclass
class DetectionProbeConfig:
    """Keys of a detection probe (`geodino probe` task `detection`).

    Training length: `epochs` passes over the training tiles, raised to at least `min_steps` optimiser steps once
    the first epoch has counted the tiles (`detection_training`); fewer than 300 steps with `min_steps` 0 warns.
    """

    data: DatasetConfig = field(default_factory=lambda: DatasetConfig(name=""))  # a named dataset (vhr10, dior)
    # file keys: a list of files, folders or globs, or one of them (`train_images: /data/crowns/`)
    train_images: list[str] = field(default_factory=list, metadata=PATH_LIST)  # images; used when data.name is ""
    # train_boxes: VOC .xml per image, COCO .json, or .csv files/folders
    train_boxes: list[str] = field(default_factory=list, metadata=PATH_LIST)
    # val_images: held-out images; empty: val_fraction of the training tiles held out
    val_images: list[str] = field(default_factory=list, metadata=PATH_LIST)
    val_boxes: list[str] = field(default_factory=list, metadata=PATH_LIST)
    val_fraction: float = 0.25
    # label budget (eval/label_budget.py): the share of training IMAGES kept (before tiling, after the val_fraction
    # hold-out), a seeded subset nested across fractions for one seed (1 = all); validation stays whole
    train_fraction: float = 1.0
    # predict_images: images exported as GeoJSON; empty: val (or train) images
    predict_images: list[str] = field(default_factory=list, metadata=PATH_LIST)
    class_names: list[str] = field(default_factory=list)  # empty: the sorted labels found in the training boxes
    detector: str = "faster_rcnn"  # faster_rcnn | retinanet | fcos
    layers: Any = "last"  # last (ViTDet) | four_last | four_even | [i, ...] (maps concatenated on channels)
    pyramid_channels: int = 256
    anchor_sizes: list[int] = field(default_factory=lambda: [16, 32, 64, 128, 256])  # pixels, one per level
    tile_size: int = 512  # training tile and inference window (pixels; images are not rescaled)
    tile_overlap: int = 64  # overlap of inference windows on images larger than tile_size (at most tile_size/2)
    min_visible: float = 0.5  # a box cut by a tile edge is kept when this fraction of it is inside (else: ignored)
    flips: bool = True  # random horizontal/vertical flips of training tiles
    bands: list[int] = field(default_factory=list)
    data_scale: float = 0.0  # DN -> reflectance; 0: the file's declared, else the backbone's recorded, else dtype
    data_offset: float = 0.0  # added after data_scale (reflectance = DN * data_scale + data_offset)
    file_scale: bool = True  # false: a file's declared GDAL scale/offset is not read (as geodino embed's file_scale)
    epochs: int = 12
    min_steps: int = 0  # epochs raised to give at least this many optimiser steps; 0: epochs (under 300 warns)
    batch_size: int = 2
    lr: float = 1e-4
    weight_decay: float = 1e-4
    score_threshold: float = 0.05  # detections kept for mAP
    export_threshold: float = 0.3  # detections written to GeoJSON and drawn
    max_detections: int = 100  # per scored image (COCO: 100; raise it for dense scenes); per window when exporting
    voc_max_detections: int = 0  # voc_mAP50's per-image cap; 0: none, as the VOC devkit (detection_scoring)
    voc_inclusive_pixels: bool = False  # voc_mAP50 IoU with the devkit's +1 widths (VOC xml, DIOR): detection_voc
    nms_iou: float = 0.5  # merging windows of large images
    cut_cover: float = 0.5  # a box cut by an inner window edge is dropped when this much of it is in another's box
    box_iou_threshold: float = 0.4  # box_precision/box_recall: a matched pair counts when IoU > this (DeepForest)
    box_score_threshold: float = 0.1  # box_precision/box_recall score only detections above this (DeepForest)
    box_max_detections: int = 300  # box_precision/box_recall score the best this many per image (DeepForest: 300)
    seed: int = 0
    progress: bool = True  # progress bars (the suite's progress key sets it)

    def __post_init__(self) -> None:
        settle_path_lists(self)  # DetectionProbeConfig(train_images="a.tif"): ["a.tif"], as in YAML

    def validate(self) -> None:
        check_holdout("detection", self)  # val_fraction in [0, 1): here, so every entry point checks it first
        if self.detector not in DETECTORS:
            raise ConfigError(f"detector={self.detector!r} must be one of {', '.join(DETECTORS)}")
        if len(self.anchor_sizes) != 5:
            raise ConfigError(f"anchor_sizes={list(self.anchor_sizes)} must give 5 sizes (p2..p5 and p6)")
        if self.tile_overlap < 0:
            raise ConfigError(f"tile_overlap={self.tile_overlap} must be >= 0 (pixels)")
        if self.min_steps < 0:
            raise ConfigError(f"detection min_steps={self.min_steps} must be >= 0 (0: epochs alone)")
        if self.detector == "fcos" and self.pyramid_channels % 32:
            raise ConfigError(
                f"detector=fcos needs pyramid_channels divisible by 32 (its head's GroupNorm has 32 groups); "
                f"got {self.pyramid_channels}: use e.g. {max(32, self.pyramid_channels // 32 * 32)}"
            )
        if not 0.0 <= self.box_iou_threshold < 1.0:
            raise ConfigError(f"box_iou_threshold={self.box_iou_threshold} must be in [0, 1) (DeepForest: 0.4)")
        if not 0.0 <= self.box_score_threshold < 1.0:
            raise ConfigError(f"box_score_threshold={self.box_score_threshold} must be in [0, 1) (DeepForest: 0.1)")
        if not 0.0 < self.cut_cover <= 1.0:
            raise ConfigError(f"cut_cover={self.cut_cover} must be in (0, 1] (default 0.5: SAHI's merge threshold)")
        if self.box_score_threshold < self.score_threshold:
            import warnings

            warnings.warn(
                f"box_score_threshold={self.box_score_threshold} is below score_threshold={self.score_threshold}: "
                f"the detector drops detections scoring <= {self.score_threshold} first, so box_precision/box_recall "
                "score those above score_threshold; lower score_threshold too for a lower cut",
                stacklevel=2,
            )
        if self.voc_max_detections < 0:
            raise ConfigError(f"voc_max_detections={self.voc_max_detections} must be >= 0 (0: no cap, the VOC devkit)")
        if self.box_max_detections < 1 or self.max_detections < 1:
            raise ConfigError(
                f"max_detections={self.max_detections} and box_max_detections={self.box_max_detections} must be >= 1"
            )
        check_data_offset(self.data_scale, self.data_offset)


def load_detection_set(
    images: str | Sequence[str],
    boxes: str | Sequence[str],
    cfg: DetectionProbeConfig,
    class_names: list[str] | None,
    scaling: InputScaling | None = None,
) -> tuple[dense.LazySamples, list[str]]:
    """Probe samples (image reflectance, boxes, labels, georef) of the images that have annotations, read when
    accessed (scaled by `scaling`, the run's rule; default `data_scale`/`data_offset`, else by dtype); the class
    names are the given ones or the sorted labels found in the annotations. One path is a list of one."""
    images, boxes = one_or_list(images), one_or_list(boxes)
    table = read_boxes(boxes)
    files = dense.list_files(images, dense.IMAGE_SUFFIXES, "image")
    pairs = [(f, b) for f in files if (b := match_boxes(f, table)) is not None]
    if not pairs:
        shown = sorted(table)[:3]
        keys = f" (they name {', '.join(shown)}{' ...' if len(table) > 3 else ''})" if shown else ""
        which = (
            f"image {files[0]} has no boxes"
            if len(files) == 1
            else f"none of the {len(files)} images in {', '.join(map(str, images))} (e.g. {files[0].name}) has boxes"
        )
        raise InputError(
            f"{which} in {', '.join(map(str, boxes))}{keys}; annotation entries must name the images (file name or "
            "stem)"
        )
    if not any(len(b.boxes) for _, b in pairs):  # every matched entry lists no object: nothing to train or score
        raise InputError(
            f"the box annotations {', '.join(map(str, boxes))} list no object for any of the images in "
            f"{', '.join(map(str, images))}; a detector "
            "needs objects to train and score on: check that these are the annotations of these images"
        )
    warn_unannotated([f for f in files if all(f != g for g, _ in pairs)], boxes)
    names = list(class_names) if class_names else sorted({lab for _, b in pairs for lab in b.labels})
    scaling = scaling or InputScaling.of(cfg)
    lookup = {n: i for i, n in enumerate(names)}
    for f, b in pairs:
        unknown = sorted(set(b.labels) - set(lookup))
        if unknown:
            raise InputError(
                f"boxes of {f.name} in {b.source} use {plural(len(unknown), 'label')} not in class_names {names} "
                f"({', '.join(unknown)}); add {'it' if len(unknown) == 1 else 'them'} to class_names or relabel"
            )

    rel = image_paths([f for f, _ in pairs])  # the sample names: a/x.tif, b/x.tif where one name is in two folders

    def load(pair: tuple[Path, Boxes]) -> dict[str, Any]:
        f, b = pair
        r = dense.read_raster(f)
        h, w = r.data.shape[1:]
        xyxy = torch.from_numpy(check_boxes(b, w, h, f"boxes of {f.name} in {b.source}"))
        labels = torch.tensor([lookup[n] for n in b.labels], dtype=torch.long)
        ignored = torch.from_numpy(b.ignored())
        sample = {
            "image": dense.to_image_tensor(r, scaling, cfg.bands),
            "boxes": xyxy[~ignored],
            "labels": labels[~ignored],
            "raster": r,
            "name": rel[f],
            "path": f,
        }
        if ignored.any():  # VOC difficult / COCO crowd: neither trained on nor scored (COCOeval's crowd regions)
            sample["ignore_boxes"], sample["ignore_labels"] = xyxy[ignored], labels[ignored]
        return sample

    return dense.LazySamples(pairs, load), names


# ----------------------------------------------------------------------------------------------- model


class FrozenPyramidBackbone(nn.Module):
    """The detector's backbone: frozen ViT features (no grad) -> trainable simple feature pyramid."""

    def __init__(self, backbone: Any, layers: Any, pyramid: nn.Module):
        super().__init__()
        self._frozen = [backbone]  # a list, so the frozen weights stay out of the detector's state_dict
        self.layers = layers
        self.pyramid = pyramid
        self.out_channels = pyramid.out_channels

    @property
    def backbone(self) -> Any:
        return self._frozen[0]

    def forward(self, x: Tensor):
        maps, _ = extract(self.backbone, x, self.layers)  # normalises, pads to the patch grid, no grad
        return self.pyramid(to_device(maps, x.device))  # the backbone's device, the detector's too


def head_layers(backbone: Any, cfg: DetectionProbeConfig) -> str | list[int]:
    """The layers the pyramid reads; LayerError when `backbone` has too few blocks for them (the suite runner
    calls this for every task before any runs)."""
    return resolve_layers(
        cfg.layers,
        backbone.n_blocks,
        need_four=False,
        what=f"detection {cfg.detector}",
        backbone=backbone_name(backbone),
    )


def build_detector(backbone: Any, cfg: DetectionProbeConfig, num_classes: int, in_chans: int) -> nn.Module:
    """A torchvision detector on the frozen backbone, on its device; images keep their size (no resizing)."""
    from torchvision.models.detection import FCOS, FasterRCNN, RetinaNet
    from torchvision.models.detection.anchor_utils import AnchorGenerator
    from torchvision.ops import MultiScaleRoIAlign

    from geodino.eval.heads import SimpleFeaturePyramid

    layers = head_layers(backbone, cfg)
    probe = torch.zeros(1, in_chans, backbone.patch_size, backbone.patch_size)
    maps, _ = extract(backbone, probe, layers)
    pyramid = SimpleFeaturePyramid(maps[0].shape[1], len(maps), cfg.pyramid_channels)
    body = FrozenPyramidBackbone(backbone, layers, pyramid)
    sizes = tuple((int(s),) for s in cfg.anchor_sizes)
    common = dict(
        min_size=cfg.tile_size, max_size=cfg.tile_size, image_mean=[0.0] * in_chans, image_std=[1.0] * in_chans
    )
    if cfg.detector == "faster_rcnn":
        anchors = AnchorGenerator(sizes, ((0.5, 1.0, 2.0),) * len(sizes))
        model: nn.Module = FasterRCNN(
            body,
            num_classes=num_classes + 1,
            rpn_anchor_generator=anchors,
            box_roi_pool=MultiScaleRoIAlign(["p2", "p3", "p4", "p5"], 7, 2),
            box_score_thresh=cfg.score_threshold,
            box_detections_per_img=cfg.max_detections,
            **common,
        )
    else:  # single-stage: RetinaNet (3 scales x 3 ratios per level) or FCOS (one anchor point per location)
        if cfg.detector == "retinanet":
            detector: Any = RetinaNet
            anchors = AnchorGenerator(
                tuple((s, int(s * 1.26), int(s * 1.59)) for (s,) in sizes), ((0.5, 1.0, 2.0),) * len(sizes)
            )
        else:
            detector = FCOS
            anchors = AnchorGenerator(tuple((s // 2,) for (s,) in sizes), ((1.0,),) * len(sizes))
        model = detector(
            body,
            num_classes=num_classes,
            anchor_generator=anchors,
            score_thresh=cfg.score_threshold,
            detections_per_img=cfg.max_detections,
            **common,
        )
    model.transform = NativeSizeTransform(
        cfg.tile_size,
        cfg.tile_size,
        [0.0] * in_chans,
        [1.0] * in_chans,
        size_divisible=max(32, 2 * backbone.patch_size),
        fill=dense.pad_fill(backbone, in_chans),  # the band means: 0 once normalised, as the dense probes pad
    )
    return model.to(head_device(backbone))


# ----------------------------------------------------------------------------------------------- run


@keeps_global_rng
def run_detection(
    backbone: Any,
    cfg: DetectionProbeConfig,
    out_dir: str | Path,
    *,
    train_data: Sequence[dict[str, Any]] | None = None,
    val_data: Sequence[dict[str, Any]] | None = None,
    class_names: list[str] | None = None,
) -> dict[str, float]:
    """Train detector heads on the frozen `backbone`; report mAP, mAP50, mAP75, mAR100, voc_mAP50; export predictions.

    `train_data`/`val_data` are probe samples (`image`, `boxes` xyxy px, `labels` 0-based) from an adapter
    (then give `class_names`). Writes `detection_metrics.json`, `detection_head.pt`, `<image>_boxes.geojson`
    (map coordinates) or `<image>_boxes.json` (pixels), `detection_boxes.png`, and the scored detections as COCO
    results with their ground truth (`detections_coco.json`, `detections_coco_gt.json`: `detection_coco`).
    """
    cfg = probe_config(cfg, DetectionProbeConfig, "run_detection")
    backbone, out_dir = dense.start_probe("detection", cfg, backbone, out_dir)
    names = list(class_names or cfg.class_names)
    scaling = InputScaling.of(cfg, backbone, "detection")
    train_data, val_data, names = _detection_sets(cfg, backbone, train_data, val_data, names, scaling)
    _settle_run_scaling(cfg, scaling, train_data, val_data)

    def check(s: dict[str, Any], where: str) -> dict[str, Any]:
        return _checked_sample(s, where, backbone, names)

    first = check(train_data[0], "train sample 0")
    fill = dense.pad_fill(backbone, first["image"].shape[0])  # the band means: 0 once normalised
    train_units, val_tiles, budget = _training_units(cfg, train_data, val_data, check, fill)
    seed_everything(cfg.seed)  # the heads' initial weights depend on the seed, not on what ran before
    model = build_detector(backbone, cfg, len(names), first["image"].shape[0])
    history = train_detector(model, train_units, cfg)

    evaluated = val_tiles if val_tiles is not None else val_data
    coco = CocoRecorder(names)  # the COCO-scored detections, re-scorable: detections_coco.json (+ _gt.json)
    metrics = _evaluate(model, evaluated, cfg, names, check, coco)
    metrics["train_loss"] = history[-1] if history else math.nan
    # what was scored: held-out tiles (val_fraction) are tiles, not images (a run on 4 images said val_images 9)
    metrics["val_tiles" if val_tiles is not None else "val_images"] = float(len(evaluated))
    if budget is not None:  # info rows of results.json/results.md (results.INFO_METRICS), n_train in images
        metrics.update(train_fraction=budget["kept_fraction"], n_train=float(budget["n_train"]))

    head = {"detector": cfg.detector, "class_names": names, "state_dict": host_state(model)}
    settings: dict[str, Any] = {
        "box_iou_threshold": cfg.box_iou_threshold,
        "box_score_threshold": cfg.box_score_threshold,
        "box_max_detections": cfg.box_max_detections,
        "voc_max_detections": cfg.voc_max_detections,  # how voc_mAP50 was scored (0: no per-image cap)
        "voc_inclusive_pixels": cfg.voc_inclusive_pixels,
    }
    if budget is not None:
        settings["label_budget"] = budget
    dense.save_probe(out_dir, "detection", head, {**metrics, **settings, "input_scaling": scaling.describe()})
    coco.write(out_dir)
    _export_predictions(model, cfg, backbone, scaling, out_dir, names, train_data, val_data)
    scaling.say()  # one line at the end, predicted images included
    return metrics


def _detection_sets(
    cfg: DetectionProbeConfig,
    backbone: Any,
    train_data: Any,
    val_data: Any,
    names: list[str],
    scaling: InputScaling,
) -> tuple[Any, Any, list[str]]:
    """The training and validation samples and the class names: given, from `cfg.data`, or read from the image
    and box files of the config (validation: None when none is given)."""
    if train_data is None and cfg.data.name:
        from geodino.eval.datasets import build_dataset

        train_data = build_dataset(cfg.data, "train", backbone=backbone)
        # scored on the dataset's test split (VHR-10: the test part of torchgeo's 60/20/20 split; DIOR, whose test
        # images have no boxes: data.test_split=val); nothing is chosen on val, which is left unused
        val_data = val_data if val_data is not None else build_dataset(cfg.data, "test", backbone=backbone)
        names = names or list(train_data.classes)
    if train_data is None:
        if not cfg.train_images or not cfg.train_boxes:
            raise ConfigError("detection needs train_images and train_boxes (images and VOC/COCO/CSV boxes)")
        train_data, names = load_detection_set(cfg.train_images, cfg.train_boxes, cfg, names or None, scaling)
    if val_data is None and cfg.val_images:
        val_data, _ = load_detection_set(cfg.val_images, cfg.val_boxes or cfg.train_boxes, cfg, names, scaling)
    if not names:
        raise ConfigError("detection needs class_names when samples come without them (one name per label)")
    return train_data, val_data, names


def _settle_run_scaling(cfg: DetectionProbeConfig, scaling: InputScaling, train_data: Any, val_data: Any) -> None:
    """One input-scaling rule for every image file of the run (training, validation, predict_images), before any
    is read."""
    files = [f for d in (train_data, val_data) if isinstance(d, dense.LazySamples) for f, _ in d.items]
    if cfg.predict_images:
        files += dense.list_files(cfg.predict_images, dense.IMAGE_SUFFIXES, "image")
    if files:
        dense.settle_scaling(scaling, files, cfg.bands)


def _checked_sample(s: dict[str, Any], where: str, backbone: Any, names: list[str]) -> dict[str, Any]:
    """`s` once its band count fits the backbone and its box labels index `names` (one line naming it else)."""
    dense.check_bands(s["image"].shape[0], backbone, f"image {s.get('name', where)}")
    if len(s["labels"]) and (int(s["labels"].max()) >= len(names) or int(s["labels"].min()) < 0):
        raise InputError(
            f"{s.get('name', where)} has box label {int(s['labels'].max())} but "
            f"{plural(len(names), 'class', 'classes')} ({', '.join(names[:5])}); labels are 0-based class indices"
        )
    return s


def _training_units(
    cfg: DetectionProbeConfig, train_data: Any, val_data: Any, check: Any, fill: float | Tensor = 0.0
) -> tuple[Any, list[dict[str, Any]] | None, dict[str, Any] | None]:
    """What the heads train on, the held-out tiles and the label budget's record: the training samples as they are
    when validation samples were given (held-out tiles: None), else whole tiles of the training images (edges
    padded with `fill`) split into both; a train_fraction then keeps a seeded share of the training images
    (`detection_training.budget_images`)."""
    val_tiles: list[dict[str, Any]] | None = None
    sources: list[int] | None = None
    if val_data is None:  # hold out whole tiles of the training images (small generic sets)
        tiles, sources = [], []
        for i in range(len(train_data)):
            cut = tiles_of(check(train_data[i], f"train sample {i}"), cfg.tile_size, cfg.min_visible, fill)
            tiles.extend(cut)
            sources.extend([i] * len(cut))
        if len(tiles) < 2:
            raise InputError(
                f"only {len(tiles)} detection tile of {cfg.tile_size} px; give val_images/val_boxes or lower tile_size"
            )
        keep, held = dense.holdout_indices(len(tiles), cfg.val_fraction, cfg.seed, "detection")
        val_tiles = [tiles[i] for i in held]
        train_units: Any = [tiles[i] for i in keep]
        sources = [sources[i] for i in keep]
    else:
        train_units = train_data
    train_units, budget = budget_images(cfg, train_data, train_units, sources)
    return train_units, val_tiles, budget


def _export_predictions(
    model: Any,
    cfg: DetectionProbeConfig,
    backbone: Any,
    scaling: InputScaling,
    out_dir: Path,
    names: list[str],
    train_data: Any,
    val_data: Any,
) -> None:
    """Whole-image predictions of predict_images (else of the validation or training samples): GeoJSON in map
    coordinates (pixel json otherwise), and a box overlay PNG of the first image. Samples of a named dataset (no
    raster) write nothing: only the first is predicted, for the overlay (all of them were predicted again after
    scoring: a second pass over DIOR's thousands of val images that wrote nothing)."""
    if cfg.predict_images:
        files = dense.list_files(cfg.predict_images, dense.IMAGE_SUFFIXES, "image")
        sources: Any = dense.LazySamples(files, lambda f: {"raster": dense.read_raster(f), "path": f})
    else:
        sources = val_data if val_data is not None else train_data
    listed = sources.items if isinstance(sources, dense.LazySamples) else []
    paths = [f if isinstance(f, Path) else Path(f[0]) for f in listed]
    named = {p.resolve(): n for p, n in output_names(paths).items()}  # stems shared by two images: by folder
    rel = {p.resolve(): n for p, n in image_paths(paths).items()}  # the pixel json's "image": below the common folder
    plotted = False
    for i in range(len(sources)):
        s = sources[i]
        r = s.get("raster")
        if r is None and plotted:  # samples of a named dataset: no raster to write for, the overlay is drawn
            break
        image = s["image"] if "image" in s else dense.to_image_tensor(r, scaling, cfg.bands)
        pred = predict_image(model, image, cfg, whole_image_cap=False)  # max_detections per window, not per scene
        if r is not None:
            key = Path(r.path).resolve()
            write_predictions(pred, r, names, cfg.export_threshold, out_dir, named.get(key, ""), rel.get(key, ""))
        if not plotted:
            from geodino.eval.plots import plot_boxes

            rgb = dense.rgb_indices(*dense.image_bands(backbone, val_data if val_data is not None else train_data))
            valid = r.valid if r is not None else None  # the stretch leaves nodata out
            plot_boxes(image, s.get("boxes"), pred, cfg.export_threshold, out_dir / "detection_boxes.png", rgb, valid)
            plotted = True
