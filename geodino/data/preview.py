"""A PNG preview of what training sees: source tiles (nodata in magenta) and their global/local/Gram crops."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from geodino.errors import plural

__all__ = ["to_rgb", "write_preview"]


def to_rgb(image: np.ndarray, sensor: Any, valid: np.ndarray | None = None) -> np.ndarray:
    """[C,H,W] -> uint8 [H,W,3]: the sensor's RGB bands (else the first three), 2-98 % stretch per band over the
    valid, finite pixels; invalid and non-finite (NaN gaps of a cube) pixels are magenta, never cast from NaN."""
    if sensor.rgb_bands and all(b in sensor.bands for b in sensor.rgb_bands):
        idx = [sensor.bands.index(b) for b in sensor.rgb_bands]
    else:
        idx = [0, 0, 0] if image.shape[0] < 3 else [0, 1, 2]
    rgb = image[idx].astype(np.float32)
    finite = np.isfinite(rgb).all(axis=0)
    mask = finite if valid is None else np.asarray(valid, bool) & finite
    out = np.zeros_like(rgb)
    for c in range(3):
        vals = rgb[c][mask]
        lo, hi = np.percentile(vals, [2, 98]) if vals.size else (0.0, 1.0)
        out[c] = np.where(mask, np.clip((rgb[c] - lo) / max(hi - lo, 1e-6), 0, 1), 0.0)
    out = (out.transpose(1, 2, 0) * 255).astype(np.uint8)
    out[~mask] = (255, 0, 255)
    return out


def write_preview(
    cfg: Any, out: str | Path, *, samples: int = 4, seed: int = 0, crops: Any = None, in_chans: int | None = None
) -> Path:
    """Draw `samples` samples of the first source with their crops to `out`: the crops a pretraining config's
    `crops` section makes (`crops`; with several `crop_sets`, each row uses the set training draws for that step),
    else the CropsConfig defaults with four local crops and Gram crops. `in_chans` (a pretraining config's
    student) is compared with the source's band count: a mismatch pretrain would refuse is said now, as a warning."""
    from geodino.config import whole_number
    from geodino.data.config import PREVIEW_MAX_SAMPLES
    from geodino.errors import ConfigError
    from geodino.io import check_suffix
    from geodino.viz.figures import figures, save_figure

    check_suffix("--out", out, (".png",), command="data preview", writes="a PNG")  # pv.txt held a PNG
    samples, seed = whole_number(samples, "samples", 4), whole_number(seed, "seed", 0)
    if samples < 1:  # before any file is read: 0 or -1 rows crashed in matplotlib or drew an empty figure
        raise ConfigError(f"samples={samples} (--samples) must be at least 1: the number of tiles to draw, e.g. 4")
    if samples > PREVIEW_MAX_SAMPLES:  # one figure row each: 100000 ran for minutes, then failed in matplotlib
        raise ConfigError(
            f"samples={samples} (--samples) is more than one preview draws: at most {PREVIEW_MAX_SAMPLES} (a figure "
            "row each); for more tiles, draw more previews with other --seed values"
        )
    plt = figures()

    from geodino.data.crops import CropsConfig, MultiCropTransform, choose_crop_set
    from geodino.data.loaders import build_sources

    source = build_sources(cfg)[0]
    n_bands = len(source.band_names)
    if in_chans is not None and n_bands != in_chans:
        import warnings

        warnings.warn(
            f"the first source gives {plural(n_bands, 'band')} per image but ssl.student.in_chans={in_chans}: "
            f"pretrain will refuse this config; set ssl.student.in_chans={n_bands} or select bands in data.*",
            stacklevel=2,
        )
    what = "the config's crops" if crops is not None else "default crops (give a pretraining config for its own)"
    crops = crops if crops is not None else CropsConfig(gram=True, n_local=4)
    tf = MultiCropTransform(crops, source.sensor)
    gram = any(s.gram_size for s in tf.sets)
    cols = 1 + crops.n_global * (2 if gram else 1) + crops.n_local
    fig, axes = plt.subplots(samples, cols, figsize=(1.6 * cols, 1.7 * samples), squeeze=False)
    empty = 0  # tiles without a valid pixel: all of them is what pretraining refuses (a wrong nodata, the ROI)
    for r in range(samples):
        s = source.get(r, seed)
        empty += not np.asarray(s["valid"]).any()
        k = choose_crop_set(crops, seed, r)
        out_c = tf(s, np.random.default_rng([seed, r]), k)
        panels = [("tile", to_rgb(np.asarray(s["image"]), source.sensor, np.asarray(s["valid"])))]
        grams = out_c.get("gram_crops") or []
        for i, g in enumerate(out_c["global_crops"]):
            panels.append(_panel(f"global {i + 1}", g, tf.sensor))
            if grams:
                panels.append(_panel(f"gram {i + 1}", grams[i], tf.sensor))
        panels += [_panel(f"local {i + 1}", loc, tf.sensor) for i, loc in enumerate(out_c["local_crops"])]
        for c in range(cols):
            ax = axes[r][c]
            ax.set_xticks([])
            ax.set_yticks([])
            if c >= len(panels):  # a crop set without Gram crops in a figure that has some
                ax.set_axis_off()
                continue
            title, img = panels[c]
            ax.imshow(img)
            if r == 0 or len(tf.sets) > 1:
                ax.set_title(title, fontsize=7)
    if empty == samples:
        import warnings

        warnings.warn(
            f"every one of the {plural(samples, 'tile')} drawn from source {source.name!r} holds no valid pixel (all "
            "nodata, NaN or masked: the preview is magenta), and pretrain refuses such a source; check the files, "
            "their nodata value (set `nodata:` in the source to override it) and the ROI",
            stacklevel=2,
        )
    what += f" ({len(tf.sets)} crop sets)" if len(tf.sets) > 1 else ""
    shown = _first_three(source.sensor, list(source.band_names))
    if shown:  # Landsat's b1 (blue) drawn as red without a word: said, as `viz attention` says it
        import warnings

        warnings.warn(
            f"sensor {source.sensor.name} names no RGB bands, so the preview shows bands {shown} as red, green, "
            "blue; give a sensor YAML with rgb_bands: [RED, GREEN, BLUE] (band names) to choose them",
            stacklevel=2,
        )
        what += f"; bands {shown} as red, green, blue"
    fig.suptitle(f"source {source.name!r}: tiles (nodata magenta) and {what}", fontsize=9)
    return save_figure(fig, out, dpi=90, format="png")


def _first_three(sensor: Any, bands: list[str]) -> str | None:
    """The first three of more than three bands, as `to_rgb` draws them when the sensor names no RGB bands (a
    `data stats` YAML of b1..bN); None when it names them or there are no more than three."""
    if len(bands) <= 3 or (sensor.rgb_bands and all(b in sensor.bands for b in sensor.rgb_bands)):
        return None
    return ", ".join(bands[:3])


def _panel(title: str, crop: Any, sensor: Any) -> tuple[str, np.ndarray]:
    """(title with the crop's size, RGB of the de-standardised crop)."""
    return f"{title}, {crop.shape[-1]} px", to_rgb(sensor.destandardize(crop).numpy(), sensor)
