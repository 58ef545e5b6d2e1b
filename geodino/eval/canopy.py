"""Canopy-height probe: a DPT head on four frozen layers with CLS readout, binned or direct regression.

As DINOv3's canopy-height evaluation (CHMv2): the head predicts 256 bin weights and the height is their
weighted sum over `mixlog` bins (log-to-linear mix over [0.001, 96] m, CHMv2's normalisation) or uniform bins
(AdaBins/HighResCanopyHeight: ReLU + 0.1, normalised); `direct` regresses one channel. Loss L1 or SiLog on
valid pixels. Metrics: MAE, RMSE, R2, bias, block R2 (HighResCanopyHeight), nMAE and tree-cover IoU at 2 m
(Open-Canopy).

Training pairs are an image raster and a CHM raster on different grids, co-registered by their bounds: the CHM
is resampled onto the image's grid with `rasterio.warp.reproject` (any CRS, any offset; CHM nodata and pixels
outside its footprint become invalid). Predictions are written as GeoTIFFs on the input's grid.

Here: the probe's config and its run (tiles, training, evaluation, predicted rasters, plots). The head, decoder and
loss are in `geodino.eval.height_head`, the CHM pairing and the height GeoTIFF in `geodino.eval.chm`; both are
re-exported here.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from geodino.config import options_for
from geodino.config_lists import PATH_LIST, settle_path_lists
from geodino.errors import ConfigError, InputError
from geodino.eval import dense
from geodino.eval.chm import (
    CHM_SUFFIXES,
    load_chm_pair,
    load_pairs,
    pair_chms,
    warn_shared_ground,
    write_height_geotiff,
)
from geodino.eval.config_arg import probe_config
from geodino.eval.data_splits import check_holdout
from geodino.eval.head_training import (
    FeatureStore,
    extract,
    head_device,
    host_state,
    seed_everything,
    to_device,
    train_head,
)
from geodino.eval.height_head import (
    CanopyModel,
    HeightDecoder,
    build_model,
    height_bins,
    height_loss,
    init_output,
)
from geodino.eval.label_budget import active, plain_budget
from geodino.eval.layer_choice import backbone_name, resolve_layers
from geodino.eval.metrics import RegressionMeter, tree_iou_degenerate, tree_iou_room
from geodino.eval.scaling import InputScaling, check_data_offset
from geodino.eval.seeding import keeps_global_rng

__all__ = [
    "CHM_SUFFIXES",
    "OUTPUTS",
    "CanopyModel",
    "CanopyProbeConfig",
    "HeightDecoder",
    "build_model",
    "head_layers",
    "height_bins",
    "height_loss",
    "height_predictor",
    "load_chm_pair",
    "load_pairs",
    "make_tiles",
    "pair_chms",
    "run_canopy",
    "train_epochs",
    "warn_degenerate_tree_iou",
    "write_height_geotiff",
]

OUTPUTS = ("mixlog", "uniform", "direct")


@dataclass
class CanopyProbeConfig:
    """Keys of a canopy-height probe (`geodino probe` task `canopy`).

    Training length: `epochs` passes over the training tiles, raised to at least `min_steps` optimiser steps
    (default 0: `epochs` alone). One plot gives few tiles (a 400 px raster at crop 128 is 12, 3 steps an epoch), so
    set `min_steps` (~500) there; a run of fewer than 300 steps with `min_steps` 0 warns (a head this short
    predicts about the median), one with an explicit `min_steps` is taken as meant.
    """

    # file keys: a list of files, folders or globs, or one of them (`train_images: /data/plots/`)
    train_images: list[str] = field(default_factory=list, metadata=PATH_LIST)  # image rasters
    # train_chms: CHM rasters (metres), paired by name (a.tif: a_CHM.tif)
    train_chms: list[str] = field(default_factory=list, metadata=PATH_LIST)
    # val_images: held-out pairs; empty: val_fraction of training tiles
    val_images: list[str] = field(default_factory=list, metadata=PATH_LIST)
    val_chms: list[str] = field(default_factory=list, metadata=PATH_LIST)
    val_fraction: float = 0.25  # tiles held out (non-overlapping, seeded) when no val rasters are given
    # label budget (eval/label_budget.py): the share of training TILES kept (after the val_fraction hold-out), a
    # seeded subset nested across fractions for one seed (1 = all); validation tiles and val rasters stay whole
    train_fraction: float = 1.0
    # predict_images: rasters written as height GeoTIFFs; empty: val (or train)
    predict_images: list[str] = field(default_factory=list, metadata=PATH_LIST)
    head: str = "dpt"  # dpt (four layers, CLS readout) | linear (BN + 1x1 conv, patch resolution)
    layers: Any = "four_even"  # four_even | four_last | [i, i, i, i]
    output: str = "mixlog"  # mixlog (CHMv2 bins) | uniform (bins) | direct (one channel)
    n_bins: int = 256
    dpt_channels: int = 256  # DPT fusion channels; reassembly uses (c/2, c, 2c, 4c) = (128, 256, 512, 1024) as DINOv3
    min_height: float = 0.001
    max_height: float = 96.0
    loss: str = "l1"  # l1 | silog
    silog_lambda: float = 0.85
    silog_eps: float = 0.1  # metres added before the log (CHMs hold many zeros)
    crop_size: int = 256  # training tile and sliding-window size in pixels
    stride: int = 0  # evaluation/prediction stride; 0: 2/3 of crop_size
    resampling: str = "bilinear"  # CHM -> image grid: nearest | bilinear | cubic | average
    clip_negative: bool = True  # negative CHM values -> 0 m (as HighResCanopyHeight)
    bands: list[int] = field(default_factory=list)
    data_scale: float = 0.0  # DN -> reflectance; 0: the file's declared, else the backbone's recorded, else dtype
    data_offset: float = 0.0  # added after data_scale (reflectance = DN * data_scale + data_offset)
    file_scale: bool = True  # false: a file's declared GDAL scale/offset is not read (as geodino embed's file_scale)
    epochs: int = 30
    min_steps: int = 0  # epochs raised to give at least this many optimiser steps (one raster: use ~500); 0: epochs
    batch_size: int = 4
    lr: float = 3e-4
    weight_decay: float = 1e-4
    block_size: int = 50  # block R2: block side in pixels, after dropping block_border pixels per tile side
    block_border: int = 3
    tree_threshold: float = 2.0  # metres; tree-cover IoU threshold (Open-Canopy)
    cache_features: str = "memory"  # memory | disk | none
    seed: int = 0
    progress: bool = True  # progress bars (the suite's progress key sets it)

    def __post_init__(self) -> None:
        settle_path_lists(self)  # CanopyProbeConfig(train_images="a.tif"): ["a.tif"], as in YAML

    def validate(self) -> None:
        check_holdout("canopy", self)  # val_fraction in [0, 1): here, so every entry point checks it first
        if self.output not in OUTPUTS:
            raise ConfigError(f"canopy output={self.output!r} must be one of {', '.join(OUTPUTS)}")
        if self.loss not in ("l1", "silog"):
            raise ConfigError(f"canopy loss={self.loss!r} must be l1 or silog")
        if self.head not in ("dpt", "linear"):
            raise ConfigError(f"canopy head={self.head!r} must be dpt or linear")
        if not 0 < self.min_height < self.max_height:
            raise ConfigError(f"min_height={self.min_height} and max_height={self.max_height} need 0 < min < max")
        if self.output != "direct" and self.n_bins < 2:
            raise ConfigError(f"n_bins={self.n_bins} must be >= 2 for binned output (or output=direct)")
        if self.min_steps < 0:
            raise ConfigError(f"canopy min_steps={self.min_steps} must be >= 0 (0: epochs alone)")
        check_data_offset(self.data_scale, self.data_offset)


# ----------------------------------------------------------------------------------------------- data


def warn_degenerate_tree_iou(tree_iou: float, cover: dict[str, float], threshold: float) -> bool:
    """Warn in one line, and return True, when tree_IoU cannot rank backbones (`tree_iou_degenerate`): every or no
    predicted pixel is >= `threshold` (tree_IoU is then the reference's tree-cover fraction, or 0), or so nearly
    every or none that the other pixels move it by at most `TREE_IOU_ROOM` from that value (99.8 % of the pixels
    trees: within 0.002), or the reference has no tree (0 whatever is predicted)."""
    if not math.isfinite(tree_iou) or not tree_iou_degenerate(cover):
        return False
    import warnings

    share, ref, room = cover["tree_cover_pred"], cover["tree_cover_ref"], tree_iou_room(cover)
    at = f"tree_threshold={threshold:g} m"
    if share == 1.0:
        what = f"every predicted pixel (100%) is >= {at}, so tree_IoU={tree_iou:.4g} equals "
        what += f"the reference's tree-cover fraction ({ref:.4g})"
    elif share == 0.0:
        what = f"no predicted pixel (0%) is >= {at}, so tree_IoU is 0 (reference tree cover {ref:.4g})"
    elif ref == 0.0:
        what = f"no reference pixel is >= {at}, so tree_IoU is 0 ({_percent(share)} of predicted pixels are)"
    elif (1.0 - share) / share == room:
        what = f"{_percent(share)} of predicted pixels are >= {at}, so tree_IoU={tree_iou:.4g} is within "
        what += f"{room:.2g} of the reference's tree-cover fraction ({ref:.4g}), the IoU of trees everywhere,"
    else:
        what = f"only {_percent(share)} of predicted pixels are >= {at} (reference tree cover {ref:.4g}), so "
        what += f"tree_IoU={tree_iou:.4g} is within {room:.2g} of 0, the IoU of no tree,"
    warnings.warn(
        f"canopy probe: {what} whatever the backbone (tree_IoU_degenerate in canopy_metrics.json); compare "
        "backbones by MAE, RMSE and R2, or check the head (min_height, epochs)",
        stacklevel=2,
    )
    return True


def _percent(share: float) -> str:
    """`share` as a percentage with the digits that keep it off 0 % and 100 % (99.8%, 99.996%, 0.01%)."""
    for digits in range(1, 8):
        text = f"{100 * share:.{digits}f}".rstrip("0").rstrip(".")
        if 0 < float(text) < 100:
            return f"{text}%"
    return f"{100 * share:g}%"


def make_tiles(
    samples: Sequence[dict[str, Any]], crop: int, overlap_free: bool, fill: float | Tensor = 0.0
) -> dict[str, Tensor]:
    """Tiles of image/target/valid (padding invalid); `overlap_free` pads instead of shifting the last tile.

    Images are padded with `fill`: the probe passes `dense.pad_fill(backbone)`, the band means, which normalise to
    0 as inference pads (a small image is predicted whole, padded to the patch grid with 0 after normalisation).
    """
    imgs, tgts, vals = [], [], []
    for s in samples:
        h, w = s["image"].shape[-2:]
        if overlap_free:
            grid = [(r, c) for r in range(0, h, crop) for c in range(0, w, crop)]
        else:
            grid = dense.tile_grid(h, w, crop)
        for r, c in grid:
            v = dense.crop_pad(s["valid"].float(), r, c, crop, 0.0) > 0.5
            if not v.any():
                continue
            imgs.append(dense.crop_pad(s["image"], r, c, crop, fill))
            tgts.append(dense.crop_pad(s["target"], r, c, crop, 0.0))
            vals.append(v)
    if not imgs:
        raise InputError("no canopy tile holds a valid CHM pixel; check the CHM rasters and their nodata")
    return {"image": torch.stack(imgs), "target": torch.stack(tgts), "valid": torch.stack(vals)}


# ----------------------------------------------------------------------------------------------- run


def head_layers(backbone: Any, cfg: CanopyProbeConfig) -> str | list[int]:
    """The layers the configured head reads; LayerError when `backbone` has too few blocks for it (the suite
    runner calls this for every task before any runs)."""
    return resolve_layers(
        cfg.layers,
        backbone.n_blocks,
        cfg.head == "dpt",
        what=f"canopy head={cfg.head}",
        backbone=backbone_name(backbone),
    )


def height_predictor(backbone: Any, model: CanopyModel, layers: Any):
    """[B,C,H,W] reflectance -> [B,1,H,W] metres on the host (logits upsampled bilinearly, then decoded on the
    model's device)."""
    return dense.head_predict(backbone, model.head, layers, decode=lambda logits: model.decoder(logits)[:, None])


@keeps_global_rng
def run_canopy(
    backbone: Any,
    cfg: CanopyProbeConfig,
    out_dir: str | Path,
    *,
    train_data: Sequence[dict[str, Any]] | None = None,
    val_data: Sequence[dict[str, Any]] | None = None,
) -> dict[str, float]:
    """Train the canopy-height head on the frozen `backbone`, evaluate, write GeoTIFF predictions and plots.

    Returns MAE, RMSE, R2, bias, block_R2, nMAE, tree_IoU (metres); writes `canopy_metrics.json`,
    `canopy_head.pt`, `<image>_height.tif` per predicted raster, `canopy_scatter.png` and `canopy_maps.png`.
    """
    from geodino.eval.plots import plot_maps, plot_scatter

    cfg = probe_config(cfg, CanopyProbeConfig, "run_canopy")
    backbone, out_dir = dense.start_probe("canopy", cfg, backbone, out_dir)
    layers = head_layers(backbone, cfg)
    scaling = InputScaling.of(cfg, backbone, "canopy")
    train_data, val_data = _read_pairs(backbone, cfg, train_data, val_data, scaling)
    crop, stride = dense.crop_and_stride(backbone.patch_size, cfg.crop_size, cfg.stride)
    fill = dense.pad_fill(backbone, train_data[0]["image"].shape[0]) if train_data else 0.0
    tiles, val_tiles, tile_split = _tiles(train_data, val_data is None, crop, cfg, fill)
    budget = None
    if active(cfg.train_fraction, 0):  # a label budget: training tiles only, after the hold-out, seeded and nested
        rows, budget = plain_budget(tiles["image"].shape[0], cfg.train_fraction, cfg.seed, "tiles")
        tiles = {k: v[rows] for k, v in tiles.items()}
    model, history = _train(backbone, cfg, tiles, layers, crop, out_dir)
    predict = height_predictor(backbone, model, layers)
    meter = RegressionMeter(cfg.block_size, cfg.block_border, cfg.tree_threshold)
    scatter: list[tuple[np.ndarray, np.ndarray]] = []
    if val_tiles is not None:
        for i in range(val_tiles["image"].shape[0]):
            pred = predict(val_tiles["image"][i : i + 1])[0, 0]
            meter.update(pred, val_tiles["target"][i], val_tiles["valid"][i])
            v = val_tiles["valid"][i]
            scatter.append((val_tiles["target"][i][v].numpy(), pred[v].numpy()))
    else:
        for s in val_data or []:
            pred = dense.sliding_window(predict, s["image"], crop, stride, cfg.batch_size)[0]
            meter.update(pred, s["target"], s["valid"])
            scatter.append((s["target"][s["valid"]].numpy(), pred[s["valid"]].numpy()))
    metrics = meter.compute()
    metrics["train_loss"] = history[-1] if history else math.nan
    # what was scored: held-out tiles, else the validation rasters (a NaN val_tiles row said nothing of them)
    if val_tiles is not None:
        metrics["val_tiles"] = float(len(tile_split))
    else:
        metrics["val_images"] = float(len(val_data or []))
    if budget is not None:  # info rows of results.json/results.md (results.INFO_METRICS), n_train in tiles
        metrics.update(train_fraction=budget["kept_fraction"], n_train=float(budget["n_train"]))
    head = {
        "config": {k: getattr(cfg, k) for k in ("head", "output", "n_bins", "min_height", "max_height")},
        "layers": layers,
        "state_dict": host_state(model),
    }
    # the tree-cover shares and the degenerate flag go to canopy_metrics.json only: returned, they would be
    # ranked as scores in the suite's results table
    cover = meter.tree_cover()
    degenerate = warn_degenerate_tree_iou(metrics["tree_IoU"], cover, cfg.tree_threshold)
    saved = {
        **metrics,
        **cover,
        "tree_IoU_degenerate": degenerate,
        "input_scaling": scaling.describe(),  # of the training and validation rasters
    }
    if budget is not None:
        saved["label_budget"] = budget
    dense.save_probe(out_dir, "canopy", head, saved)
    shown = list(val_data) if val_data else train_data
    first_map = _predict_rasters(backbone, predict, cfg, shown, crop, stride, out_dir, scaling)
    plot_scatter(scatter, out_dir / "canopy_scatter.png", metrics)
    if first_map is not None:
        plot_maps(
            *first_map,
            out_dir / "canopy_maps.png",
            tiles=[] if val_data is not None else _val_tile_boxes(train_data, crop, tile_split),
            crop=crop,
            rgb=dense.rgb_indices(*dense.image_bands(backbone, val_data or train_data)),
        )
    scaling.say()  # one line at the end, predicted rasters included
    return metrics


def _read_pairs(
    backbone: Any,
    cfg: CanopyProbeConfig,
    train_data: Sequence[dict] | None,
    val_data: Sequence[dict] | None,
    scaling: InputScaling,
) -> tuple[list[dict[str, Any]], Sequence[dict[str, Any]] | None]:
    """The training and validation samples: given ones, else the configured image/CHM pairs (scaled by
    `scaling`, its one rule decided first over every image file of the run: training, validation and
    predict_images); bands checked."""
    specs = [cfg.train_images if train_data is None else [], cfg.val_images if val_data is None else []]
    files = [
        f
        for spec in [*specs, cfg.predict_images]
        if spec
        for f in dense.list_files(spec, dense.RASTER_SUFFIXES, "image")
    ]
    if files:
        dense.settle_scaling(scaling, files, cfg.bands)
    if train_data is None:
        if not cfg.train_images or not cfg.train_chms:
            raise ConfigError("canopy needs train_images and train_chms (image rasters and CHM rasters)")
        train_data = load_pairs(cfg.train_images, cfg.train_chms, cfg, scaling)
    train_data = list(train_data)
    if val_data is None and cfg.val_images:
        val_data = load_pairs(cfg.val_images, cfg.val_chms or [], cfg, scaling, ("val_images", "val_chms"))
    for s in [*train_data, *(val_data or [])]:
        dense.check_bands(s["image"].shape[0], backbone, f"image {s.get('name', '')}")
    if val_data:
        warn_shared_ground(train_data, val_data)  # one line: validation on the training ground scores it twice
    return train_data, val_data


def _tiles(
    train_data: list[dict[str, Any]], hold_out: bool, crop: int, cfg: CanopyProbeConfig, fill: float | Tensor = 0.0
) -> tuple[dict[str, Tensor], dict[str, Tensor] | None, list[int]]:
    """Training tiles; with `hold_out`, whole non-overlapping tiles are held out (no pixel both trained and
    scored): returns (train tiles, held-out tiles or None, held-out tile indices). Images are padded with `fill`."""
    if not hold_out:
        return make_tiles(train_data, crop, overlap_free=False, fill=fill), None, []
    tiles = make_tiles(train_data, crop, overlap_free=True, fill=fill)
    n = tiles["image"].shape[0]
    if n < 2:
        raise InputError(
            f"only {n} canopy tile of {crop} px; give val_images/val_chms or lower crop_size to hold tiles out"
        )
    keep, tile_split = dense.holdout_indices(n, cfg.val_fraction, cfg.seed, "canopy")
    return {k: v[keep] for k, v in tiles.items()}, {k: v[tile_split] for k, v in tiles.items()}, tile_split


def _train(
    backbone: Any, cfg: CanopyProbeConfig, tiles: dict[str, Tensor], layers: Any, crop: int, out_dir: Path
) -> tuple[CanopyModel, list[float]]:
    """Cache the tiles' features, build the head and train it; returns the model and the loss per epoch."""
    store = FeatureStore.from_tiles(
        backbone,
        tiles["image"],
        layers,
        cfg.cache_features,
        out_dir / "feature_cache",
        cfg.batch_size,
        "canopy features",
        cfg.progress,
    )
    maps0, _ = extract(backbone, tiles["image"][:1], layers)
    seed_everything(cfg.seed)  # the head's initial weights depend on the seed, not on what ran before
    model = build_model(cfg, maps0[0].shape[1], len(maps0))
    init_output(model, float(tiles["target"][tiles["valid"]].median()))  # start at the heights' scale
    device = head_device(backbone)  # the head trains where the backbone runs; the tiles stay on the host
    model.to(device)

    def loss_fn(m: nn.Module, maps: list[Tensor], cls: list[Tensor], idx: list[int]) -> Tensor:
        heights = model.decoder(dense.upsample_to(m(maps, cls), (crop, crop)))
        target, valid = to_device((tiles["target"][idx], tiles["valid"][idx]), device)
        return height_loss(heights, target, valid, cfg.loss, cfg.silog_lambda, cfg.silog_eps)

    train_options = options_for(train_head, cfg, desc=f"canopy {cfg.head}/{cfg.output}")
    train_options["epochs"] = train_epochs(cfg, len(store))
    try:
        history = train_head(model, store, loss_fn, **train_options)  # epochs, batch_size, lr, ... of `cfg`
    finally:
        store.close()  # `disk`: its chunks are read by no later run
    return model, history


def train_epochs(cfg: CanopyProbeConfig, n_tiles: int) -> int:
    """`cfg.epochs`, raised so that the head takes at least `cfg.min_steps` optimiser steps (the dense probes'
    rule, `head_training.budget_epochs`, which warns below `FEW_STEPS` steps without a budget).

    Epochs alone scale the budget with the data: one 400 px raster at crop 64 is 12 training tiles, 3 steps an
    epoch, so 20 epochs were 60 AdamW steps (36 at the full lr), too few for a DPT head to leave the constant
    prediction (R2 < 0 where ridge on the same patch features gives 0.7; 300 steps reached R2 0.83, 2ecf65b).
    """
    from geodino.eval.head_training import budget_epochs

    return budget_epochs(cfg.epochs, cfg.batch_size, cfg.min_steps, n_tiles, "canopy head")


def _predict_rasters(
    backbone: Any,
    predict: Any,
    cfg: CanopyProbeConfig,
    default: Sequence[dict[str, Any]],
    crop: int,
    stride: int,
    out_dir: Path,
    scaling: InputScaling,
) -> tuple[Tensor, Tensor | None, Tensor | None, Tensor] | None:
    """Full-raster height GeoTIFFs on the input grid (predict_images, else `default`; read with `scaling`); the
    first map for plots."""
    if cfg.predict_images:
        files = dense.list_files(cfg.predict_images, dense.RASTER_SUFFIXES, "image")
        to_predict: Sequence[dict[str, Any]] = [{"path": f, "name": f.name} for f in files]
    else:
        to_predict = default
    first_map = None
    for s in to_predict:
        r = dense.read_raster(s["path"])
        image = s["image"] if "image" in s else dense.to_image_tensor(r, scaling, cfg.bands)  # samples: as scaled
        dense.check_bands(image.shape[0], backbone, f"image {r.path}")
        heights = dense.sliding_window(predict, image, crop, stride, cfg.batch_size)[0]
        write_height_geotiff(heights.numpy(), r, out_dir / f"{Path(r.path).stem}_height.tif")
        if first_map is None:
            first_map = (image, s.get("target"), s.get("valid"), heights)
    return first_map


def _val_tile_boxes(samples: Sequence[dict[str, Any]], crop: int, split: list[int]) -> list[tuple[int, int]]:
    """(row, col) of held-out tiles on the first raster (for outlining them on the map plot)."""
    if not samples:
        return []
    h, w = samples[0]["image"].shape[-2:]
    grid = [(r, c) for r in range(0, h, crop) for c in range(0, w, crop)]
    valid = samples[0]["valid"]
    grid = [(r, c) for r, c in grid if valid[r : r + crop, c : c + crop].any()]
    return [grid[i] for i in split if i < len(grid)]
