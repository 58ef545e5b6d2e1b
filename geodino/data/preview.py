"""A PNG preview of what training sees: source tiles (nodata in magenta) and their global/local/Gram crops."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["to_rgb", "write_preview"]


def to_rgb(image: np.ndarray, sensor: Any, valid: np.ndarray | None = None) -> np.ndarray:
    """[C,H,W] -> uint8 [H,W,3]: the sensor's RGB bands (else the first three), 2-98 % stretch per band."""
    if sensor.rgb_bands and all(b in sensor.bands for b in sensor.rgb_bands):
        idx = [sensor.bands.index(b) for b in sensor.rgb_bands]
    else:
        idx = [0, 0, 0] if image.shape[0] < 3 else [0, 1, 2]
    rgb = image[idx].astype(np.float32)
    mask = np.ones(rgb.shape[1:], bool) if valid is None else valid
    out = np.zeros_like(rgb)
    for c in range(3):
        vals = rgb[c][mask]
        lo, hi = np.percentile(vals, [2, 98]) if vals.size else (0.0, 1.0)
        out[c] = np.clip((rgb[c] - lo) / max(hi - lo, 1e-6), 0, 1)
    out = (out.transpose(1, 2, 0) * 255).astype(np.uint8)
    if valid is not None:
        out[~valid] = (255, 0, 255)
    return out


def write_preview(cfg: Any, out: str | Path, *, samples: int = 4, seed: int = 0) -> Path:
    """Draw `samples` samples of the first source with their crops (CropsConfig defaults + Gram) to `out`."""
    from geodino.viz.figures import figures, save_figure

    plt = figures()

    from geodino.data.crops import CropsConfig, MultiCropTransform
    from geodino.data.loaders import build_sources

    source = build_sources(cfg)[0]
    crops = CropsConfig(gram=True, n_local=4)
    tf = MultiCropTransform(crops, source.sensor)
    cols = 1 + crops.n_global * 2 + crops.n_local
    fig, axes = plt.subplots(samples, cols, figsize=(1.6 * cols, 1.7 * samples), squeeze=False)
    for r in range(samples):
        s = source.get(r, seed)
        out_c = tf(s, np.random.default_rng([seed, r]))
        panels = [("tile", to_rgb(np.asarray(s["image"]), source.sensor, np.asarray(s["valid"])))]
        for i, (g, gram) in enumerate(zip(out_c["global_crops"], out_c["gram_crops"])):
            panels.append((f"global {i + 1}", to_rgb(tf.sensor.destandardize(g).numpy(), source.sensor)))
            panels.append((f"gram {i + 1}", to_rgb(tf.sensor.destandardize(gram).numpy(), source.sensor)))
        for i, loc in enumerate(out_c["local_crops"]):
            panels.append((f"local {i + 1}", to_rgb(tf.sensor.destandardize(loc).numpy(), source.sensor)))
        for c, (title, img) in enumerate(panels):
            ax = axes[r][c]
            ax.imshow(img)
            ax.set_xticks([])
            ax.set_yticks([])
            if r == 0:
                ax.set_title(title, fontsize=8)
    fig.suptitle(f"source {source.name!r}: tiles (nodata magenta) and multi-crops", fontsize=9)
    return save_figure(fig, out, dpi=90, format="png")
