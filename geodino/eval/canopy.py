"""Canopy-height probe: a DPT head on four frozen layers with CLS readout, binned or direct regression.

As DINOv3's canopy-height evaluation (CHMv2): the head predicts 256 bin weights and the height is their
weighted sum over `mixlog` bins (log-to-linear mix over [0.001, 96] m, CHMv2's normalisation) or uniform bins
(AdaBins/HighResCanopyHeight: ReLU + 0.1, normalised); `direct` regresses one channel. Loss L1 or SiLog on
valid pixels. Metrics: MAE, RMSE, R2, bias, block R2 (HighResCanopyHeight), nMAE and tree-cover IoU at 2 m
(Open-Canopy).

Training pairs are an image raster and a CHM raster on different grids, co-registered by their bounds: the CHM
is resampled onto the image's grid with `rasterio.warp.reproject` (any CRS, any offset; CHM nodata and pixels
outside its footprint become invalid). Predictions are written as GeoTIFFs on the input's grid.
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
from geodino.errors import ConfigError, InputError, plural
from geodino.eval import dense
from geodino.eval.head_training import FeatureStore, assert_frozen, extract, seed_everything, train_head
from geodino.eval.layer_choice import backbone_name, resolve_layers
from geodino.eval.metrics import RegressionMeter, tree_iou_degenerate
from geodino.eval.scaling import InputScaling, check_data_offset
from geodino.eval.seeding import keeps_global_rng
from geodino.io import make_dirs

OUTPUTS = ("mixlog", "uniform", "direct")
CHM_SUFFIXES = ("_CHM", "_chm", "-chm", "_height", "_heights", "")


@dataclass
class CanopyProbeConfig:
    """Keys of a canopy-height probe (`geodino probe` task `canopy`)."""

    train_images: list[str] = field(default_factory=list)  # image rasters (files, folders or globs)
    train_chms: list[str] = field(default_factory=list)  # CHM rasters (metres), paired by name (a.tif: a_CHM.tif)
    val_images: list[str] = field(default_factory=list)  # held-out pairs; empty: val_fraction of training tiles
    val_chms: list[str] = field(default_factory=list)
    val_fraction: float = 0.25  # tiles held out (non-overlapping, seeded) when no val rasters are given
    predict_images: list[str] = field(default_factory=list)  # rasters written as height GeoTIFFs; empty: val (or train)
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
    data_scale: float = 0.0  # DN -> reflectance factor; 0: the backbone's recorded scale/offset, else by dtype
    data_offset: float = 0.0  # added after data_scale (reflectance = DN * data_scale + data_offset)
    epochs: int = 30
    batch_size: int = 4
    lr: float = 3e-4
    weight_decay: float = 1e-4
    block_size: int = 50  # block R2: block side in pixels, after dropping block_border pixels per tile side
    block_border: int = 3
    tree_threshold: float = 2.0  # metres; tree-cover IoU threshold (Open-Canopy)
    cache_features: str = "memory"  # memory | disk | none
    seed: int = 0
    progress: bool = True  # progress bars (the suite's progress key sets it)

    def validate(self) -> None:
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
        check_data_offset(self.data_scale, self.data_offset)


# ----------------------------------------------------------------------------------------------- heights


def height_bins(kind: str, n: int, lo: float, hi: float) -> Tensor:
    """Bin centres in metres: uniform over [lo, hi], or CHMv2 mixlog (log-to-linear mix over [lo, hi/8], x8)."""
    if kind == "uniform":
        return torch.linspace(lo, hi, n)
    if kind == "mixlog":
        top = hi / 8.0  # CHMv2 works on height/8 internally and multiplies by 8 at the end
        linear = torch.linspace(lo, top, n)
        log = torch.exp(torch.linspace(math.log(lo), math.log(top), n))
        t = torch.linspace(1.0, 0.0, n)
        return 8.0 * (t * log + (1.0 - t) * linear)
    raise ConfigError(f"bins {kind!r} must be uniform or mixlog")


class HeightDecoder(nn.Module):
    """Logits [B,K,H,W] -> heights [B,H,W] in metres (bin-weighted sum, or ReLU + min for K=1)."""

    def __init__(self, output: str, n_bins: int, lo: float, hi: float):
        super().__init__()
        self.output, self.lo = output, lo
        bins = height_bins(output, n_bins, lo, hi) if output != "direct" else torch.zeros(1)
        self.register_buffer("bins", bins, persistent=False)

    def forward(self, logits: Tensor) -> Tensor:
        if self.output == "direct":
            return torch.relu(logits[:, 0]) + self.lo
        y = torch.relu(logits)
        if self.output == "uniform":  # AdaBins 'linear' normalisation
            w = y + 0.1
        else:  # CHMv2 mixlog normalisation: a tiny positive shift keeps weights defined when all are zero
            shift = (-y.amin(dim=1, keepdim=True)).clamp(0.0, 1e-4) + 1e-8
            w = y + shift
        w = w / w.sum(dim=1, keepdim=True).clamp_min(1e-12)
        return torch.einsum("bkhw,k->bhw", w, self.bins)


def height_loss(pred: Tensor, target: Tensor, valid: Tensor, kind: str, lam: float = 0.85, eps: float = 0.1) -> Tensor:
    """L1, or the scale-invariant log loss sqrt(mean d^2 - lam (mean d)^2) with d = log(pred+eps) - log(y+eps)."""
    if not valid.any():
        return pred.sum() * 0.0
    p, t = pred[valid], target[valid]
    if kind == "l1":
        return (p - t).abs().mean()
    d = torch.log(p.clamp_min(0) + eps) - torch.log(t.clamp_min(0) + eps)
    return torch.sqrt((d.pow(2).mean() - lam * d.mean().pow(2)).clamp_min(1e-12))


class CanopyModel(nn.Module):
    """Head + height decoder: frozen-backbone features -> heights [B,H,W] (size set by the caller)."""

    def __init__(self, head: nn.Module, decoder: HeightDecoder):
        super().__init__()
        self.head, self.decoder = head, decoder

    def forward(self, maps: list[Tensor], cls: list[Tensor]) -> Tensor:
        return self.head(maps, cls)


# ----------------------------------------------------------------------------------------------- data


def pair_chms(images: list[Path], chms: list[Path]) -> list[tuple[Path, Path]]:
    """Pair images with CHMs by name (a.tif with a_CHM.tif, a_chm.tif or a.tif in another folder), else by order."""
    by_stem = {c.stem: c for c in chms}
    pairs = []
    for img in images:
        m = next(
            (by_stem[img.stem + s] for s in CHM_SUFFIXES if img.stem + s in by_stem and by_stem[img.stem + s] != img),
            None,
        )
        pairs.append((img, m))
    if all(m is not None for _, m in pairs):
        return pairs  # type: ignore[return-value]
    if len(images) == len(chms):
        return list(zip(images, chms))
    missing = [i.name for i, m in pairs if m is None]
    raise InputError(
        f"no CHM for {plural(len(missing), 'image')} ({', '.join(missing[:3])}{', ...' if len(missing) > 3 else ''}); "
        "name CHMs like their image (a.tif -> a_CHM.tif) "
        "or list as many CHMs as images in the same order"
    )


def load_chm_pair(
    image: str | Path, chm: str | Path, cfg: CanopyProbeConfig, scaling: InputScaling | None = None
) -> dict[str, Any]:
    """Co-register a CHM onto an image's grid by bounds: sample with `image`, `target` (m), `valid`, georef.
    `scaling` is the run's DN -> reflectance rule (default: `data_scale`/`data_offset`, else by dtype)."""
    import rasterio
    from rasterio.warp import Resampling, reproject, transform_bounds

    r = dense.read_raster(image)
    if not r.georeferenced:
        raise InputError(f"image {image} has no CRS/geotransform; canopy pairs are co-registered by map bounds")
    chm = Path(chm).expanduser()
    if not chm.is_file():
        raise InputError(f"CHM {chm} not found; check train_chms/val_chms in the config")
    try:
        src = rasterio.open(chm)
    except rasterio.errors.RasterioIOError as exc:
        raise InputError(f"cannot read CHM {chm}: {exc}") from exc
    with src:
        if src.count != 1:
            raise InputError(
                f"CHM {chm} has {src.count} bands; a canopy height model is one band of heights in metres: check "
                "train_chms/val_chms (an image listed as a CHM?)"
            )
        if src.crs is None:
            raise InputError(f"CHM {chm} has no CRS; it must be georeferenced to be co-registered with {image}")
        h, w = r.data.shape[1:]
        left, top = r.transform @ (0, 0)
        right, bottom = r.transform @ (w, h)
        ib = (min(left, right), min(top, bottom), max(left, right), max(top, bottom))
        cb = transform_bounds(src.crs, r.crs, *src.bounds)
        if cb[0] >= ib[2] or cb[2] <= ib[0] or cb[1] >= ib[3] or cb[3] <= ib[1]:
            raise InputError(f"CHM {chm} does not overlap image {image} (bounds {cb} vs {ib}); pair the right files")
        try:
            resampling = Resampling[cfg.resampling]
        except KeyError as exc:
            raise ConfigError(
                f"resampling={cfg.resampling!r} is not a rasterio resampling name (nearest, bilinear ...)"
            ) from exc
        target = np.full((h, w), np.nan, dtype=np.float32)
        source = src.read(1).astype(np.float32)
        nodata = src.nodata
        if nodata is not None and not np.isnan(nodata):
            source[np.isclose(source, np.float32(nodata))] = np.nan
        source[~np.isfinite(source)] = np.nan
        reproject(
            source,
            target,
            src_transform=src.transform,
            src_crs=src.crs,
            src_nodata=np.nan,
            dst_transform=r.transform,
            dst_crs=r.crs,
            dst_nodata=np.nan,
            resampling=resampling,
        )
    valid = np.isfinite(target) & r.valid
    if not valid.any():
        raise InputError(
            f"CHM {chm} has no valid height on the grid of image {image} (all nodata where they overlap); "
            "drop this pair or fix the CHM's nodata value"
        )
    if cfg.clip_negative:
        target = np.where(np.isfinite(target), np.maximum(target, 0.0), target)
    _warn_above_max(target[valid], chm, cfg.max_height)
    return {
        "image": dense.to_image_tensor(r, scaling or InputScaling.of(cfg), cfg.bands),
        "target": torch.from_numpy(np.nan_to_num(target, nan=0.0)),
        "valid": torch.from_numpy(valid),
        "crs": r.crs,
        "transform": r.transform,
        "path": r.path,
        "name": Path(image).name,
    }


def _warn_above_max(heights: np.ndarray, chm: Path, max_height: float) -> None:
    """One warning per CHM whose heights exceed max_height: binned outputs cannot predict them (wrong units?)."""
    above = heights > max_height
    if above.any():
        import warnings

        warnings.warn(
            f"CHM {chm}: {int(above.sum())} pixels ({100 * above.mean():.1f}%) above max_height={max_height:g} m "
            f"(up to {float(heights.max()):.1f} m); the height bins end at max_height: check the CHM's units "
            "(metres) or raise max_height",
            stacklevel=3,
        )


def warn_degenerate_tree_iou(tree_iou: float, cover: dict[str, float], threshold: float) -> bool:
    """Warn in one line, and return True, when every or no predicted pixel is >= `threshold`: tree_IoU is then the
    reference's tree-cover fraction (or 0) whatever the backbone, so equal values across backbones mean nothing."""
    if not math.isfinite(tree_iou) or not tree_iou_degenerate(cover):
        return False
    import warnings

    share, ref = cover["tree_cover_pred"], cover["tree_cover_ref"]
    if share == 1.0:
        what = f"every predicted pixel (100%) is >= tree_threshold={threshold:g} m, so tree_IoU={tree_iou:.4g} equals "
        what += f"the reference's tree-cover fraction ({ref:.4g})"
    else:
        what = f"no predicted pixel (0%) is >= tree_threshold={threshold:g} m, so tree_IoU is 0"
        what += f" (reference tree cover {ref:.4g})"
    warnings.warn(
        f"canopy probe: {what} whatever the backbone (tree_IoU_degenerate in canopy_metrics.json); compare "
        "backbones by MAE, RMSE and R2, or check the head (min_height, epochs)",
        stacklevel=2,
    )
    return True


def load_pairs(
    images: Sequence[str], chms: Sequence[str], cfg: CanopyProbeConfig, scaling: InputScaling | None = None
) -> list[dict[str, Any]]:
    """The image/CHM pairs of the given files, folders or globs (see `load_chm_pair`)."""
    imgs = dense.list_files(list(images), dense.RASTER_SUFFIXES, "image")
    chm_files = dense.list_files(list(chms), dense.RASTER_SUFFIXES, "CHM")
    return [load_chm_pair(i, c, cfg, scaling) for i, c in pair_chms(imgs, chm_files)]


def make_tiles(samples: Sequence[dict[str, Any]], crop: int, overlap_free: bool) -> dict[str, Tensor]:
    """Tiles of image/target/valid (padding invalid); `overlap_free` pads instead of shifting the last tile."""
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
            imgs.append(dense.crop_pad(s["image"], r, c, crop, 0.0))
            tgts.append(dense.crop_pad(s["target"], r, c, crop, 0.0))
            vals.append(v)
    if not imgs:
        raise InputError("no canopy tile holds a valid CHM pixel; check the CHM rasters and their nodata")
    return {"image": torch.stack(imgs), "target": torch.stack(tgts), "valid": torch.stack(vals)}


# ----------------------------------------------------------------------------------------------- run


def build_model(cfg: CanopyProbeConfig, embed_dim: int, n_layers: int) -> CanopyModel:
    from geodino.eval.heads import DPTHead, LinearHead

    n_out = 1 if cfg.output == "direct" else cfg.n_bins
    head: nn.Module
    if cfg.head == "dpt":
        c = cfg.dpt_channels
        head = DPTHead(
            embed_dim,
            n_out,
            post_channels=(c // 2, c, 2 * c, 4 * c),
            channels=c,
            readout="project",
            hidden=128 if n_out > 1 else 32,
        )
    else:
        head = LinearHead([embed_dim] * n_layers, n_out)
    return CanopyModel(head, HeightDecoder(cfg.output, cfg.n_bins, cfg.min_height, cfg.max_height))


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
    """[B,C,H,W] reflectance -> [B,1,H,W] metres (logits upsampled bilinearly before decoding)."""
    logits_of = dense.head_predict(backbone, model.head, layers)

    @torch.no_grad()
    def predict(x: Tensor) -> Tensor:
        return model.decoder(logits_of(x))[:, None]

    return predict


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

    cfg.validate()
    out_dir = Path(out_dir)
    make_dirs(out_dir)
    assert_frozen(backbone)
    layers = head_layers(backbone, cfg)
    scaling = InputScaling.of(cfg, backbone, "canopy")
    train_data, val_data = _read_pairs(backbone, cfg, train_data, val_data, scaling)
    crop, stride = dense.crop_and_stride(backbone.patch_size, cfg.crop_size, cfg.stride)
    tiles, val_tiles, tile_split = _tiles(train_data, val_data is None, crop, cfg)
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
    metrics["val_tiles"] = float(len(tile_split)) if val_tiles is not None else math.nan
    head = {
        "config": {k: getattr(cfg, k) for k in ("head", "output", "n_bins", "min_height", "max_height")},
        "layers": layers,
        "state_dict": model.state_dict(),
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
    `scaling`); bands checked."""
    if train_data is None:
        if not cfg.train_images or not cfg.train_chms:
            raise ConfigError("canopy needs train_images and train_chms (image rasters and CHM rasters)")
        train_data = load_pairs(cfg.train_images, cfg.train_chms, cfg, scaling)
    train_data = list(train_data)
    if val_data is None and cfg.val_images:
        val_data = load_pairs(cfg.val_images, cfg.val_chms or [], cfg, scaling)
    for s in [*train_data, *(val_data or [])]:
        dense.check_bands(s["image"].shape[0], backbone, f"image {s.get('name', '')}")
    return train_data, val_data


def _tiles(
    train_data: list[dict[str, Any]], hold_out: bool, crop: int, cfg: CanopyProbeConfig
) -> tuple[dict[str, Tensor], dict[str, Tensor] | None, list[int]]:
    """Training tiles; with `hold_out`, whole non-overlapping tiles are held out (no pixel both trained and
    scored): returns (train tiles, held-out tiles or None, held-out tile indices)."""
    if not hold_out:
        return make_tiles(train_data, crop, overlap_free=False), None, []
    tiles = make_tiles(train_data, crop, overlap_free=True)
    n = tiles["image"].shape[0]
    if n < 2:
        raise InputError(
            f"only {n} canopy tile of {crop} px; give val_images/val_chms or lower crop_size to hold tiles out"
        )
    keep, tile_split = dense.holdout_indices(n, cfg.val_fraction, cfg.seed)
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

    def loss_fn(m: nn.Module, maps: list[Tensor], cls: list[Tensor], idx: list[int]) -> Tensor:
        heights = model.decoder(dense.upsample_to(m(maps, cls), (crop, crop)))
        return height_loss(
            heights, tiles["target"][idx], tiles["valid"][idx], cfg.loss, cfg.silog_lambda, cfg.silog_eps
        )

    train_options = options_for(train_head, cfg, desc=f"canopy {cfg.head}/{cfg.output}")
    history = train_head(model, store, loss_fn, **train_options)  # epochs, batch_size, lr, ... of `cfg`
    return model, history


def _predict_rasters(
    backbone: Any,
    predict: Any,
    cfg: CanopyProbeConfig,
    default: Sequence[dict[str, Any]],
    crop: int,
    stride: int,
    out_dir: Path,
    scaling: InputScaling,
) -> tuple | None:
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


def write_height_geotiff(heights: np.ndarray, ref: dense.Raster, path: Path, nodata: float = -9999.0) -> None:
    """Float32 heights on the reference raster's grid (CRS, transform); invalid input pixels get `nodata`."""
    import rasterio

    from geodino.io import atomic_path

    data = np.where(ref.valid, heights, nodata).astype(np.float32)
    h, w = data.shape
    profile = {
        "driver": "GTiff",
        "height": h,
        "width": w,
        "count": 1,
        "dtype": "float32",
        "crs": ref.crs,
        "transform": ref.transform,
        "nodata": nodata,
        "compress": "deflate",
        "predictor": 3,
    }
    if h >= 256 and w >= 256:
        profile.update(tiled=True, blockxsize=256, blockysize=256)
    with atomic_path(path) as tmp, rasterio.open(tmp, "w", **profile) as dst:
        dst.write(data, 1)
        dst.set_band_description(1, "canopy height (m)")
        dst.set_band_unit(1, "m")  # the band's unit type (gdalinfo and QGIS show it), not only a dataset tag
        dst.update_tags(units="m", source="geodino canopy probe")
