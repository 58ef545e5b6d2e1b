"""`plot_stats`: per-band histograms of the pixels `geodino data stats` kept (`--plot`), with each band's mean,
±std and 2-98 % range marked."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from geodino.data.sensors import Sensor
from geodino.errors import InputError, plural


def plot_stats(sensor: Sensor, prov: dict[str, Any], out: str | Path) -> Path:
    """Per-band histograms of the kept pixels with mean, ±std and the 2-98 % range marked."""
    from geodino.viz.figures import figures, save_figure

    plt = figures()
    pix = prov.get("_sample")
    if pix is None:
        raise InputError("no pixels to plot")
    n = len(sensor.bands)
    cols = min(n, 4)
    rows = -(-n // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3.2 * cols, 2.4 * rows), squeeze=False)
    for b, name in enumerate(sensor.bands):
        ax = axes[b // cols][b % cols]
        v = pix[b][np.isfinite(pix[b])]
        lo, hi = np.percentile(v, [0.5, 99.5]) if v.size else (0.0, 1.0)
        ax.hist(v, bins=80, range=(lo, hi if hi > lo else lo + 1), color="0.4")
        m, sd = sensor.mean[b], sensor.std[b]
        ax.axvline(m, color="C3", label="mean")
        ax.axvspan(m - sd, m + sd, color="C3", alpha=0.12, label="±std")
        ax.axvline(prov["p2"][b], color="C0", ls="--", lw=0.8, label="p2/p98")
        ax.axvline(prov["p98"][b], color="C0", ls="--", lw=0.8)
        ax.set_title(name, fontsize=9)
        ax.tick_params(labelsize=7)
    for k in range(n, rows * cols):
        axes[k // cols][k % cols].axis("off")
    axes[0][0].legend(fontsize=7)
    tiles = plural(prov["tiles"], "tile")
    fig.suptitle(f"{sensor.name}: reflectance per band ({tiles}, valid pixels only)", fontsize=9)
    return save_figure(fig, out, dpi=90, format="png")
