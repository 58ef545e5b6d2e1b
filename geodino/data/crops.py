"""DINOv3 multi-crop for overhead imagery: global/local crops, a clean Gram-teacher crop, multi-resolution sets.

Differences from the official `DataAugmentationDINO` (dinov3/data/augmentations.py), all deliberate:
- Overhead imagery has no "up": every crop gets horizontal and vertical flips and a random 90° rotation
  (`vflips: false`, `rot90: false` give the official horizontal flips only, for photos).
- Colour jitter, grayscale and solarize only for RGB-like 3-band sensors whose bands are red, green and blue
  (in any order: the colour ops see them as R, G, B); a 3-band selection of an RGB-like sensor that is not
  (NAIP's N, R, G colour infrared) is multispectral. Multispectral crops get a shared brightness/contrast change
  times a small per-band one, so spectra stay plausible.
- Gaussian blur uses the intended probabilities (global 1: 1.0, global 2: 0.1, local: 0.5) by default;
  `official_blur_bug=True` reproduces the released models' inverted ones (0.0, 0.9, 0.5; dinov3 #286).
- The Gram crop is the same box as its global crop, resized to `gram_size` from the source pixels (not from the
  already-resized crop), with the same flips/rotation and no photometric change (`gram_teacher_no_distortions`).
- Crop boxes avoid nodata: a box whose valid fraction is below `min_valid_fraction` is redrawn; nodata pixels
  are filled with the normalisation mean (0 after standardising).
All randomness comes from a numpy Generator passed in, so a sample's crops are a pure function of its seed.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from geodino.data.config import CropsConfig, CropSet
from geodino.data.sensors import Sensor

__all__ = ["CropSet", "CropsConfig", "MultiCropTransform", "choose_crop_set", "crop_sets", "rgb_order"]


def crop_sets(cfg: CropsConfig) -> list[CropSet]:
    """The resolution settings: `cfg.crop_sets`, or one set from the plain sizes (Gram size filled in)."""
    sets = list(cfg.crop_sets) or [CropSet(cfg.global_size, cfg.local_size, cfg.gram_size, 1.0)]
    out = []
    for s in sets:
        gram = s.gram_size if s.gram_size else (2 * s.global_size if cfg.gram else None)
        out.append(dataclasses.replace(s, gram_size=gram if (cfg.gram or s.gram_size) else None))
    return out


def choose_crop_set(cfg: CropsConfig, seed: int, step: int) -> int:
    """The crop set used at `step`: a function of (seed, step) only, hence the same on every rank."""
    sets = crop_sets(cfg)
    if len(sets) == 1:
        return 0
    p = np.asarray([s.probability for s in sets], dtype=np.float64)
    u = np.random.default_rng([int(seed), int(step), 0x63726F70]).random()
    return min(int(np.searchsorted(np.cumsum(p / p.sum()), u, side="right")), len(sets) - 1)


def _rrc_box(
    rng: np.random.Generator,
    h: int,
    w: int,
    scale: tuple[float, ...],
    ratio: tuple[float, float],
    integral: np.ndarray | None,
    min_valid: float,
) -> tuple[int, int, int, int]:
    """RandomResizedCrop box (top, left, height, width) as torchvision draws it, redrawn while mostly nodata."""
    area = h * w
    log_r = (math.log(ratio[0]), math.log(ratio[1]))
    best: tuple[int, int, int, int] | None = None
    best_valid = -1.0
    for _ in range(10):
        target = area * rng.uniform(scale[0], scale[1])
        ar = math.exp(rng.uniform(*log_r))
        cw = round(math.sqrt(target * ar))
        ch = round(math.sqrt(target / ar))
        if 0 < cw <= w and 0 < ch <= h:
            top = int(rng.integers(0, h - ch + 1))
            left = int(rng.integers(0, w - cw + 1))
            if integral is None:
                return top, left, ch, cw
            n = (
                integral[top + ch, left + cw]
                - integral[top, left + cw]
                - integral[top + ch, left]
                + integral[top, left]
            )
            frac = n / (ch * cw)
            if frac >= min_valid:
                return top, left, ch, cw
            if frac > best_valid:
                best, best_valid = (top, left, ch, cw), frac
    if best is not None:
        return best
    # fallback: centre crop with the ratio clamped (torchvision's rule)
    in_ratio = w / h
    if in_ratio < ratio[0]:
        cw, ch = w, round(w / ratio[0])
    elif in_ratio > ratio[1]:
        ch, cw = h, round(h * ratio[1])
    else:
        cw, ch = w, h
    return (h - ch) // 2, (w - cw) // 2, ch, cw


def rgb_order(sensor: Sensor) -> list[int] | None:
    """Indices of the red, green and blue bands of a 3-band RGB-like sensor, or None when its colour ops do not apply.

    The colour jitter, grayscale and hue rotation weigh channel 0 as red and channel 2 as blue, so they need to
    know which band is which: by the sensor's `rgb_bands`, else its band names and aliases (`red`, `green`,
    `blue`). A selection that names some of them but not all three (NAIP's N, R, G colour infrared) is not RGB:
    jittering it as colour would mix the near infrared into "saturation" and "hue". A sensor that names none of
    them (a user YAML with `rgb_like: true` and bands b1, b2, b3) is taken in its order, as it declares.
    """
    if not sensor.rgb_like or sensor.n_bands != 3:
        return None
    bands = list(sensor.bands)
    named = [sensor.resolve_band(b, strict=False) for b in sensor.rgb_bands or ()]
    if len(named) == 3 and None not in named and len(set(named)) == 3:
        return [bands.index(b) for b in named]  # type: ignore[arg-type]
    found = [sensor.resolve_band(c, strict=False) for c in ("red", "green", "blue")]
    if all(f is None for f in found):
        return [0, 1, 2]
    if None in found or len(set(found)) != 3:
        return None
    return [bands.index(f) for f in found]  # type: ignore[arg-type]


def _resize(x: torch.Tensor, size: int) -> torch.Tensor:
    if x.shape[-2:] == (size, size):
        return x.clone()
    return F.interpolate(x[None], size=(size, size), mode="bicubic", antialias=True, align_corners=False)[0]


def _bands(x: torch.Tensor, order: list[int]) -> torch.Tensor:
    """The bands (dim 1) of `x` in `order`, gathered by slicing (no index tensor on the host)."""
    return torch.cat([x[:, i : i + 1] for i in order], dim=1)


def _geometric(x: torch.Tensor, hflip: bool, vflip: bool, k: int) -> torch.Tensor:
    if hflip:
        x = x.flip(-1)
    if vflip:
        x = x.flip(-2)
    if k:
        x = torch.rot90(x, k, dims=(-2, -1))
    return x


class MultiCropTransform:
    """Turn one sample (reflectance `image` [C,H,W], optional `valid` [H,W]) into DINOv3 crops.

    Args:
        cfg: crop settings.
        data_sensor: the data's sensor (decides RGB-like augmentations; band count).
        norm_sensor: whose mean/std standardise the crops (default: data_sensor). A SAT-493M backbone wants
            `sat493m`, a web backbone `imagenet`.
    """

    def __init__(self, cfg: CropsConfig, data_sensor: Sensor, norm_sensor: Sensor | None = None) -> None:
        cfg.validate()
        self.cfg = cfg
        self.sensor = data_sensor
        from geodino.data.normalization import norm_for_data

        norm = norm_for_data(norm_sensor, data_sensor)  # its statistics in the data's band order, by name
        self.mean = torch.tensor(norm.mean, dtype=torch.float32).view(-1, 1, 1)
        self.std = torch.tensor(norm.std, dtype=torch.float32).view(-1, 1, 1)
        # channel order of R, G, B for the colour ops (None: the multispectral jitter); see `rgb_order`
        self.rgb_channels = rgb_order(data_sensor)
        self.rgb = self.rgb_channels is not None
        p = list(cfg.blur_probs)
        if cfg.official_blur_bug:  # the released code passes 1 - p to RandomApply
            p = [1.0 - v for v in p]
        self.blur_probs = p
        self.sets = crop_sets(cfg)

    # -- photometric ---------------------------------------------------------------------------------------------
    def _draw_photometric(self, rng: np.random.Generator, blur_p: float, solarize: bool) -> np.ndarray:
        """This crop's photometric parameters (applied later, batched, by `finish`)."""
        from geodino.data.augment import draw_band_params, draw_rgb_params

        if self.rgb:
            return draw_rgb_params(rng, self.cfg, blur_p, solarize)
        return draw_band_params(rng, self.cfg, self.sensor.n_bands, blur_p)

    def finish(self, crops: torch.Tensor, params: torch.Tensor) -> torch.Tensor:
        """Apply the drawn photometric parameters to stacked crops [N,C,H,W] and standardise them (any device).

        Computed in float32 outside any autocast region (a bf16 blur would change the crops with the precision
        setting) and returned in the crops' dtype.
        """
        from geodino.data.augment import apply_photometric
        from geodino.losses.float32 import float32_region

        with float32_region(crops.device.type):
            x = crops.float()
            order, k, hue = self.rgb_channels, self.cfg.blur_kernel, self.cfg.hue_space
            if order is not None and order != [0, 1, 2]:  # bands stored as e.g. B, G, R: colour ops on R, G, B
                # reordered by slices: a list index (`x[:, order]`) became a host index tensor copied to the
                # accelerator, a wait for the device at each reorder
                x = apply_photometric(_bands(x, order), params, rgb=True, kernel_size=k, hue_space=hue)
                x = _bands(x, np.argsort(order).tolist())
            else:
                x = apply_photometric(x, params, rgb=self.rgb, kernel_size=k, hue_space=hue)
            x = (x - self.mean.to(x.device, non_blocking=True)) / self.std.to(x.device, non_blocking=True)  # no sync
        return x.to(crops.dtype)

    def _standardize(self, x: torch.Tensor) -> torch.Tensor:
        # in place: every caller passes a fresh tensor (resized crop), so no input is modified
        return x.sub_(self.mean).div_(self.std)

    # -- main ----------------------------------------------------------------------------------------------------
    def _flip_params(self, rng: np.random.Generator) -> tuple[bool, bool, int]:
        c = self.cfg
        h = bool(c.flips and rng.random() < 0.5)
        v = bool(c.flips and c.vflips and rng.random() < 0.5)
        k = int(rng.integers(0, 4)) if c.rot90 else 0
        return h, v, k

    def __call__(
        self, sample: dict[str, Any], rng: np.random.Generator, crop_set: int = 0, *, photometric: bool = True
    ) -> dict[str, Any]:
        """Crops of one sample: lists `global_crops`, `local_crops`, `gram_crops` (if on) and their boxes.

        With `photometric=False` the global and local crops come back resized and flipped but without colour,
        blur or standardisation, with their drawn parameters in `global_params` / `local_params`: the collate
        (or the accelerator) applies them to the whole batch with `finish`. The result is the same either way.
        """
        cs = self.sets[crop_set]
        image = sample["image"]
        image = torch.from_numpy(np.ascontiguousarray(image)) if isinstance(image, np.ndarray) else image
        image = image.to(torch.float32)
        valid = sample.get("valid")
        integral = None
        if valid is not None:
            valid_np = valid.numpy() if isinstance(valid, torch.Tensor) else np.asarray(valid)
            if not valid_np.all():
                image = torch.where(torch.from_numpy(valid_np)[None], image, self.mean)
                integral = np.pad(valid_np.astype(np.int32).cumsum(0).cumsum(1), ((1, 0), (1, 0)))
        _, h, w = image.shape
        c = self.cfg
        ratio = (float(c.ratio[0]), float(c.ratio[1]))
        out: dict[str, Any] = {
            "global_crops": [],
            "local_crops": [],
            "global_boxes": [],
            "local_boxes": [],
            "global_params": [],
            "local_params": [],
        }
        if cs.gram_size:
            out["gram_crops"] = []
        for i in range(c.n_global):
            top, left, ch, cw = _rrc_box(rng, h, w, tuple(c.global_scale), ratio, integral, c.min_valid_fraction)
            region = image[:, top : top + ch, left : left + cw]
            flips = self._flip_params(rng)
            crop = _geometric(_resize(region, cs.global_size), *flips)
            if cs.gram_size:
                out["gram_crops"].append(self._standardize(_geometric(_resize(region, cs.gram_size), *flips)))
            blur_p = self.blur_probs[0] if i == 0 else self.blur_probs[1]
            out["global_params"].append(self._draw_photometric(rng, blur_p, solarize=i == 1))
            out["global_crops"].append(crop)
            out["global_boxes"].append((left, top, left + cw, top + ch))
        for _ in range(c.n_local):
            top, left, ch, cw = _rrc_box(rng, h, w, tuple(c.local_scale), ratio, integral, c.min_valid_fraction)
            region = image[:, top : top + ch, left : left + cw]
            out["local_crops"].append(_geometric(_resize(region, cs.local_size), *self._flip_params(rng)))
            out["local_params"].append(self._draw_photometric(rng, self.blur_probs[2], solarize=False))
            out["local_boxes"].append((left, top, left + cw, top + ch))
        if photometric:
            for kind in ("global", "local"):
                if out[f"{kind}_crops"]:
                    params = torch.from_numpy(np.stack(out.pop(f"{kind}_params")))
                    out[f"{kind}_crops"] = list(self.finish(torch.stack(out[f"{kind}_crops"]), params))
                else:
                    out.pop(f"{kind}_params")
        return out
