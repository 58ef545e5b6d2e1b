"""What the dense probes (segmentation, canopy height, detection) share.

The checks a probe run opens with (`start_probe`), reading images and rasters as reflectance-scaled tensors (the
DN -> reflectance rules: `geodino.eval.scaling`), checking bands against the backbone, cutting tiles,
sliding-window inference, sample splits and saving a probe.
Frozen features and the head training loop are in `geodino.eval.head_training`, the layer choice of a head in
`geodino.eval.layer_choice`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from geodino.backbones.device import weights_device
from geodino.data.paths import RASTER_EXTS
from geodino.errors import ConfigError, InputError, plural
from geodino.eval.backbone_arg import probe_backbone
from geodino.eval.head_training import Backbone, assert_frozen, extract, to_device, to_host
from geodino.eval.head_training import FeatureStore as FeatureStore  # re-exported: tests use dense.FeatureStore
from geodino.eval.label_budget import probe_budget
from geodino.eval.layer_choice import LayerError as LayerError  # re-exported: tests import it from here
from geodino.eval.scaling import InputScaling, data_scale
from geodino.io import make_dirs

RASTER_SUFFIXES = RASTER_EXTS  # geodino.data.paths: .tif/.tiff/.gtif/.gtiff, .vrt, .jp2, .img
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".webp", *RASTER_SUFFIXES)


# ----------------------------------------------------------------------------------------------- start


_PROBE_CONFIGS = {
    "canopy": "CanopyProbeConfig",
    "detection": "DetectionProbeConfig",
    "segmentation": "SegmentationProbeConfig",
}
"""Each dense probe's config class, by name (importing them here would be circular)."""


def start_probe(probe: str, cfg: Any, backbone: Any, out_dir: str | Path) -> tuple[Any, Path]:
    """The checks every dense probe run opens with, before any data is read: its config (`cfg.validate()`, and
    the train_fraction, named after `probe`), the backbone (a spec string loaded, `probe_backbone`; refused unless
    frozen) and the output folder (made). Returns the backbone and `out_dir` as a Path. Another probe's config
    (`run_canopy(bb, SegmentationProbeConfig(...))`) is refused in one line naming both (it failed on a missing
    attribute or a layer check)."""
    given, want = type(cfg).__name__, _PROBE_CONFIGS.get(probe)
    if want and given != want and given in _PROBE_CONFIGS.values():
        other = next(k for k, v in _PROBE_CONFIGS.items() if v == given)
        raise ConfigError(f"run_{probe} takes a {want}, not a {given}; call run_{other} with it, or build a {want}")
    cfg.validate()
    probe_budget(probe, cfg.train_fraction)
    backbone = probe_backbone(backbone)  # a spec string is loaded as embed_raster loads it
    out_dir = Path(out_dir)
    make_dirs(out_dir)
    assert_frozen(backbone)
    return backbone, out_dir


# ----------------------------------------------------------------------------------------------- reading


@dataclass
class Raster:
    """An image as a tensor plus what is needed to write predictions back onto its grid."""

    data: np.ndarray  # [C,H,W] as stored
    valid: np.ndarray  # [H,W] bool
    path: Path
    crs: Any = None
    transform: Any = None
    nodata: float | None = None

    @property
    def georeferenced(self) -> bool:
        return self.crs is not None and self.transform is not None and not self.transform.is_identity


def read_raster(path: str | Path) -> Raster:
    """Read an image (GeoTIFF/COG/VRT via rasterio, PNG/JPEG via Pillow) as [C,H,W] with a validity mask.

    A pixel is invalid when every band equals the nodata value (a bright pixel in one band stays valid).
    """
    path = Path(path).expanduser()
    if not path.is_file():
        raise InputError(f"image {path} not found; check the path in the config")
    if path.suffix.lower() in RASTER_SUFFIXES:
        import rasterio
        from rasterio.errors import NotGeoreferencedWarning, RasterioIOError

        try:
            import warnings

            with warnings.catch_warnings():
                warnings.simplefilter("ignore", NotGeoreferencedWarning)
                with rasterio.open(path) as src:
                    data = src.read()
                    nodata = src.nodata
                    crs, transform = src.crs, src.transform
        except RasterioIOError as exc:
            raise InputError(f"cannot read raster {path}: {exc}; check that it is a valid GeoTIFF") from exc
        valid = np.ones(data.shape[1:], dtype=bool)
        if nodata is not None:
            nd = np.isnan(data) if np.isnan(nodata) else data == np.asarray(nodata, dtype=data.dtype)
            valid &= ~nd.all(axis=0)
        if np.issubdtype(data.dtype, np.floating):
            valid &= np.isfinite(data).all(axis=0)
        return Raster(data, valid, path, crs, transform, nodata)
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as im:
            arr = np.asarray(im)
    except (UnidentifiedImageError, OSError) as exc:
        raise InputError(f"cannot read image {path}: {exc}; use PNG, JPEG or GeoTIFF") from exc
    arr = arr[None] if arr.ndim == 2 else arr.transpose(2, 0, 1)
    return Raster(np.ascontiguousarray(arr), np.ones(arr.shape[1:], dtype=bool), path)


def to_image_tensor(r: Raster, scale: float | InputScaling = 0.0, bands: Sequence[int] | None = None) -> Tensor:
    """[C,H,W] float32 reflectance (scaled, not standardised) of a raster's `bands` (0-based; empty: all).

    `scale` is a probe's `InputScaling` (data_scale, else the file's declared scale/offset, else the backbone's
    recorded DN scale, else by dtype), or a factor (> 0) or 0 for the dtype rule alone (`data_scale`: a type
    without a default is refused, naming the file)."""
    data = r.data
    if bands:
        if max(bands) >= data.shape[0] or min(bands) < 0:
            raise ConfigError(f"bands={list(bands)} but {r.path} has {plural(data.shape[0], 'band')} (0-based indices)")
        data = data[list(bands)]
    if isinstance(scale, InputScaling):
        return scale.apply(data, str(r.path), bands)
    x = torch.from_numpy(np.ascontiguousarray(data).astype(np.float32)) * data_scale(r.data.dtype, scale, str(r.path))
    return torch.nan_to_num(x)


def settle_scaling(scaling: InputScaling, files: Iterable[str | Path], bands: Sequence[int] | None = None) -> None:
    """Decide the run's DN -> reflectance rule once for all `files` (every split's images and those predicted
    after training), before features are extracted (`InputScaling.settle`, reading files as `read_raster`)."""

    def read(path: Path) -> tuple[np.ndarray, np.ndarray]:
        r = read_raster(path)
        return r.data, r.valid

    scaling.settle(files, read, bands)


def check_bands(n_bands: int, backbone: Any, where: str) -> None:
    """Refuse a band-count mismatch with a line saying how to adapt the backbone or select bands."""
    want = getattr(backbone, "in_chans", None)
    if want is not None and int(want) != int(n_bands):
        spec = getattr(backbone, "spec", "the backbone")
        raise InputError(
            f"{where} has {plural(n_bands, 'band')} but backbone {spec} expects {want}; select "
            f"{plural(int(want), 'band')} with the config key bands=[...] or adapt the patch embedding to "
            f"{plural(n_bands, 'band')} "
            f"(load_backbone(spec, bands={n_bands}), or '?bands={n_bands}' in an arch: spec)"
        )


def list_files(spec: str | Path | Sequence[str | Path], suffixes: Sequence[str], what: str) -> list[Path]:
    """Files from a file, a folder (its files with `suffixes`), a glob, or a list of those; sorted, non-empty."""
    items = [spec] if isinstance(spec, (str, Path)) else list(spec)
    out: list[Path] = []
    for item in items:
        p = Path(str(item)).expanduser()
        if any(ch in str(item) for ch in "*?["):
            out.extend(sorted(Path(p.anchor or ".").glob(str(p.relative_to(p.anchor)) if p.anchor else str(p))))
        elif p.is_dir():
            out.extend(sorted(f for f in p.iterdir() if f.suffix.lower() in suffixes and not f.name.startswith(".")))
        elif p.is_file():
            out.append(p)
        else:
            raise InputError(f"{what} {p} not found; point the config at an existing file or folder")
    if not out:
        raise InputError(f"no {what} files found in {spec} (looked for {', '.join(suffixes)})")
    return out


# ----------------------------------------------------------------------------------------------- tiles


def window_starts(size: int, crop: int, stride: int) -> list[int]:
    """Start offsets covering [0, size) with windows of `crop`: evenly spread (PANGAEA's linspace), the last
    window flush with the edge, overlap only as much as needed. One window when size <= crop."""
    if size <= crop:
        return [0]
    n = math.ceil((size - crop) / stride) + 1
    return sorted({round(v) for v in np.linspace(0, size - crop, n)})


def tile_grid(h: int, w: int, crop: int, stride: int | None = None) -> list[tuple[int, int]]:
    """(row, col) starts of the windows covering an h x w image."""
    stride = stride or crop
    return [(r, c) for r in window_starts(h, crop, stride) for c in window_starts(w, crop, stride)]


def crop_pad(x: Tensor, r: int, c: int, size: int, fill: float | Tensor = 0.0) -> Tensor:
    """The [..., size, size] window at (r, c), padded with `fill` where it runs past the edge: a number, or a
    per-band [C, 1, 1] tensor (`pad_fill`)."""
    win = x[..., r : r + size, c : c + size]
    ph, pw = size - win.shape[-2], size - win.shape[-1]
    if not (ph or pw):
        return win
    if not isinstance(fill, Tensor):
        return F.pad(win, (0, pw, 0, ph), value=fill)
    out = fill.to(win.dtype).expand(*win.shape[:-2], size, size).clone()
    out[..., : win.shape[-2], : win.shape[-1]] = win
    return out


def pad_fill(backbone: Any, bands: int) -> Tensor:
    """The reflectance [C, 1, 1] that `backbone.normalize` maps to 0: its band means.

    Image tiles smaller than the crop are padded with it before they are normalised, so the padding is 0 after
    normalisation (the band mean), as `head_training.extract` pads images to the patch grid at inference. With
    reflectance 0, a training tile's padding became -mean/std (a dark border the head saw in training but never
    at inference, where a small image is predicted whole). Padded pixels are left out of the loss and the
    metrics either way; what differs is what the backbone sees next to the real pixels.
    """
    mean = getattr(backbone, "mean", None)
    if isinstance(mean, Tensor) and mean.numel() == bands:
        return mean.detach().float().cpu().reshape(bands, 1, 1)
    # any per-band affine normalisation: n(v) = (v - m) / s, so m = n(0) / (n(0) - n(1))
    z = backbone.normalize(torch.stack([torch.zeros(bands, 1, 1), torch.ones(bands, 1, 1)])).detach().cpu().double()
    return (z[0] / (z[0] - z[1])).float()


# ----------------------------------------------------------------------------------------------- inference


@torch.no_grad()
def sliding_window(
    predict: Callable[[Tensor], Tensor], image: Tensor, crop: int, stride: int, batch_size: int = 4
) -> Tensor:
    """Predict [K,H,W] for a [C,H,W] image with windows of `crop` and `stride` (outputs averaged by count).

    An image that fits in one window is predicted whole, so the result equals whole-image inference there.
    `predict` maps [B,C,h,w] to [B,K,h,w] at the input size; its output is brought to the host (a head on a GPU
    predicts there) and stitched there.
    """
    h, w = image.shape[-2:]
    if h <= crop and w <= crop:
        return to_host(predict(image[None]))[0]
    ch, cw = min(crop, h), min(crop, w)
    starts = [(r, q) for r in window_starts(h, ch, stride) for q in window_starts(w, cw, stride)]
    out: Tensor | None = None
    count = torch.zeros(1, h, w)
    for b in range(0, len(starts), batch_size):
        chunk = starts[b : b + batch_size]
        batch = torch.stack([image[:, r : r + ch, q : q + cw] for r, q in chunk])
        pred = to_host(predict(batch))
        if out is None:
            out = torch.zeros(pred.shape[1], h, w)
        for (r, q), p in zip(chunk, pred):
            out[:, r : r + ch, q : q + cw] += p
            count[:, r : r + ch, q : q + cw] += 1
    assert out is not None
    return out / count


def upsample_to(x: Tensor, size: tuple[int, int]) -> Tensor:
    """Bilinear resize of [B,K,h,w] logits/values to `size` (no-op when equal)."""
    return (
        x if tuple(x.shape[-2:]) == tuple(size) else F.interpolate(x, size=size, mode="bilinear", align_corners=False)
    )


def head_predict(
    backbone: Backbone, head: nn.Module, layers: str | list[int], decode: Callable[[Tensor], Tensor] | None = None
) -> Callable[[Tensor], Tensor]:
    """A [B,C,H,W] reflectance -> [B,K,H,W] predictor through the frozen backbone and a trained head.

    The head runs on its own device (the backbone's: `head_training.head_device`), `decode` (e.g. bins to metres)
    after it there; the prediction comes back on the host."""
    p = backbone.patch_size
    device = weights_device(head)

    @torch.no_grad()
    def predict(x: Tensor) -> Tensor:
        h, w = x.shape[-2:]
        maps, cls = to_device(extract(backbone, x, layers), device)
        out = head(maps, cls)
        hp, wp = math.ceil(h / p) * p, math.ceil(w / p) * p
        out = upsample_to(out, (hp, wp))[..., :h, :w]
        return to_host(decode(out) if decode is not None else out)

    return predict


def image_bands(backbone: Any, data: Any = None) -> tuple[list[str] | None, Any]:
    """(band names, sensor) of the images a probe feeds `backbone`: a dataset adapter's (`bands`, `sensor`), else
    the backbone's record (its bands are the data's: the probe checks the count); (None, None) when unknown."""
    names, sensor = getattr(data, "bands", None), getattr(data, "sensor", None)
    if names:
        return [str(b) for b in names], sensor or None
    rec = getattr(backbone, "normalization", None)
    rec = rec if isinstance(rec, dict) else {}
    names = rec.get("bands") or getattr(backbone, "bands", None)
    return ([str(b) for b in names] if names else None), rec.get("sensor") or None


def rgb_indices(bands: Sequence[str] | None, sensor: Any = None) -> list[int] | None:
    """Positions of the red, green and blue bands among an image's `bands` (names), as the data's `sensor` names
    them (`geodino.data.sensors`: its `rgb_bands`, else its bands called red, green, blue), or without one as every
    built-in sensor knowing the names does (Sentinel-2 B04, B03, B02); None when not all three are there."""
    if not bands:
        return None
    from geodino.data.sensors import rgb_names

    for s in (sensor, None) if sensor else (None,):
        try:
            named = rgb_names(list(bands), s, check=False)
        except ConfigError:  # an unknown sensor, or names the built-in sensors read differently
            continue
        idx = [named.index(c) for c in "RGB" if c in named]
        if len(idx) == 3:
            return idx
    return None


def rgb_preview(image: Tensor, rgb: Sequence[int] | None = None, valid: Any = None) -> np.ndarray:
    """[H,W,3] in [0,1] for plots: the red, green and blue bands at positions `rgb` (`rgb_indices`; without them
    the first three, or the single band), each stretched 2-98 % over the valid pixels only (`valid` [H,W] and
    finite values), so nodata does not set the stretch; invalid pixels are drawn black."""
    x = image.detach().float()
    if rgb is not None and len(rgb) == 3 and max(rgb) < x.shape[0]:
        x = x[list(rgb)]
    else:
        x = x[:3] if x.shape[0] >= 3 else x[:1].expand(3, -1, -1)
    arr = x.permute(1, 2, 0).numpy().astype(np.float64)
    ok = np.isfinite(arr).all(axis=-1)
    if valid is not None:
        ok &= np.asarray(valid, dtype=bool)
    pix = arr[ok]
    lo, hi = (np.percentile(pix, 2, axis=0), np.percentile(pix, 98, axis=0)) if pix.size else (0.0, 1.0)
    out = np.clip((np.nan_to_num(arr) - lo) / np.maximum(hi - lo, 1e-6), 0, 1)
    out[~ok] = 0.0
    return out


class LazySamples:
    """A sequence of probe samples loaded on access (folders of files need not fit in memory)."""

    def __init__(self, items: Sequence[Any], load: Callable[[Any], dict[str, Any]]):
        self.items, self.load = list(items), load

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int) -> dict[str, Any]:
        return self.load(self.items[i])


class Subset:
    """Positions `indices` of a sequence of samples (a lazy view)."""

    def __init__(self, data: Any, indices: Sequence[int]):
        self.data, self.indices = data, list(indices)

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, i: int) -> dict[str, Any]:
        return self.data[self.indices[i]]


def holdout_indices(n: int, fraction: float, seed: int, probe: str) -> tuple[list[int], list[int]]:
    """A seeded (train, val) split of positions 0..n-1 holding out `fraction` of them (at least one, not all).
    A `fraction` of 0 is refused (`no_holdout_line`, for data given in Python past the config's check): it held
    out one all the same."""
    if fraction <= 0:
        from geodino.eval.data_splits import no_holdout_line

        raise ConfigError(no_holdout_line(probe))
    order = torch.randperm(n, generator=torch.Generator().manual_seed(seed)).tolist()
    n_val = min(n - 1, max(1, round(fraction * n)))
    return sorted(order[n_val:]), sorted(order[:n_val])


def split_samples(data: Any, fraction: float, seed: int, what: str) -> tuple[Subset, Subset]:
    """A seeded (train, val) split of whole samples, holding out `fraction` of them (at least one)."""
    n = len(data)
    if n < 2:
        raise InputError(
            f"{what} needs validation data: set the val_* keys, or give at least two training images so that "
            "val_fraction of them can be held out"
        )
    train, val = holdout_indices(n, fraction, seed, what)
    return Subset(data, train), Subset(data, val)


def crop_and_stride(patch_size: int, crop_size: int, stride: int) -> tuple[int, int]:
    """The training tile (crop_size rounded down to the patch grid) and the sliding-window stride (0: 2/3 tile)."""
    crop = max(patch_size, crop_size // patch_size * patch_size)
    return crop, stride or max(patch_size, round(crop * 2 / 3))


def save_probe(out_dir: Path, task: str, head: dict[str, Any], metrics: dict[str, Any]) -> None:
    """Write a probe's trained head (`<task>_head.pt`) and metrics (`<task>_metrics.json`), each atomically."""

    from geodino.io import atomic_path, json_text
    from geodino.models.checkpoints.reproducible import save_torch

    with atomic_path(out_dir / f"{task}_head.pt") as tmp:
        save_torch(head, tmp)
    with atomic_path(out_dir / f"{task}_metrics.json") as tmp:
        tmp.write_text(json_text(metrics, indent=2))
