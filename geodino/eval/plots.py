"""The probes' report figures: confusion matrices, canopy scatter and maps, detection boxes, segmentation panels.

Each probe module computes; this module draws (through `geodino.viz.figures`, so every figure is written the
same way: Agg backend, atomic write, closed afterwards).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from torch import Tensor

from geodino.eval.dense import rgb_preview
from geodino.viz.figures import figures, save_figure


def plot_confusion(cm: list[list[int]], classes: list[str], path: str | Path, title: str) -> None:
    """Row-normalised confusion matrix as a PNG (counts printed in cells when the matrix is small). A class with no
    test samples gets a hatched row that says so: drawn blank, it read as a class the probe never predicted right."""
    plt = figures()

    m = np.asarray(cm, dtype=float)
    totals = m.sum(1)
    norm = m / np.maximum(totals[:, None], 1)
    k = len(classes)
    size = max(4.0, 0.45 * k + 2)
    fig, ax = plt.subplots(figsize=(size, size))
    im = ax.imshow(norm, cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(k), classes, rotation=60, ha="right", fontsize=8)
    ax.set_yticks(range(k), classes, fontsize=8)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title, fontsize=10)
    if k <= 20:
        for i in range(k):
            for j in range(k):
                if m[i, j]:
                    color = "white" if norm[i, j] > 0.5 else "black"
                    ax.text(j, i, int(m[i, j]), ha="center", va="center", fontsize=7, color=color)
    from matplotlib.patches import Rectangle

    for row in np.flatnonzero(totals == 0):
        ax.add_patch(Rectangle((-0.5, row - 0.5), k, 1, fill=False, hatch="//", ec="0.6", lw=0))
        ax.text((k - 1) / 2, row, "no test samples", ha="center", va="center", fontsize=7, color="0.3")
    fig.colorbar(im, ax=ax, fraction=0.046, label="share of the true class (row)")
    save_figure(fig, path, dpi=120, format="png")


def plot_scatter(pairs: list[tuple[np.ndarray, np.ndarray]], path: Path, metrics: dict[str, float]) -> None:
    """Predicted vs reference height (hexbin density, 1:1 line, metrics in the title). The axes end at the 99.5th
    percentile; pixels beyond them (or below 0) are drawn on the edge, not dropped: hexbin leaves out points outside
    its extent, so the worst errors vanished from a plot whose colour bar counts pixels."""
    if not pairs:
        return
    plt = figures()

    y = np.concatenate([a for a, _ in pairs])
    p = np.concatenate([b for _, b in pairs])
    top = float(max(np.percentile(y, 99.5) if y.size else 1, np.percentile(p, 99.5) if p.size else 1, 1.0))
    off = int(np.count_nonzero((y < 0) | (y > top) | (p < 0) | (p > top)))
    y, p = np.clip(y, 0.0, top), np.clip(p, 0.0, top)
    fig, ax = plt.subplots(figsize=(5, 5))
    hb = ax.hexbin(y, p, gridsize=40, extent=(0, top, 0, top), mincnt=1, bins="log", cmap="viridis")
    if off:
        ax.text(
            0.02,
            0.98,
            f"{off} pixels beyond the axes drawn on their edge",
            transform=ax.transAxes,
            fontsize=7,
            va="top",
        )
    ax.plot([0, top], [0, top], "r--", lw=1)
    ax.set_xlabel("reference CHM (m)")
    ax.set_ylabel("predicted height (m)")
    ax.set_title(f"MAE {metrics['MAE']:.2f} m  RMSE {metrics['RMSE']:.2f} m  R2 {metrics['R2']:.2f}", fontsize=9)
    fig.colorbar(hb, ax=ax, label="pixels")
    save_figure(fig, path, dpi=100, format="png")


def plot_maps(
    image: Tensor,
    target: Tensor | None,
    valid: Tensor | None,
    pred: Tensor,
    path: Path,
    tiles: list[tuple[int, int]] | None = None,
    crop: int = 0,
    rgb: Sequence[int] | None = None,
) -> None:
    """Image, reference CHM, prediction and error side by side (held-out tiles outlined); the image in its `rgb`
    bands (`dense.rgb_indices`), stretched over the `valid` pixels."""
    plt = figures()
    from matplotlib.patches import Rectangle

    panels: list[tuple[str, Any, dict]] = [("image", rgb_preview(image, rgb, valid), {})]
    vmax = float(np.nanpercentile(pred.numpy(), 99.5)) or 1.0
    if target is not None:
        t = np.where(valid.numpy(), target.numpy(), np.nan) if valid is not None else target.numpy()
        vmax = max(vmax, float(np.nanpercentile(t, 99.5)) if np.isfinite(t).any() else 0.0)
        panels.append(("reference CHM (m)", t, {"cmap": "viridis", "vmin": 0, "vmax": vmax}))
    panels.append(("prediction (m)", pred.numpy(), {"cmap": "viridis", "vmin": 0, "vmax": vmax}))
    if target is not None:
        err = pred.numpy() - t
        lim = float(np.nanpercentile(np.abs(err), 99)) if np.isfinite(err).any() else 1.0
        panels.append(("prediction - reference (m)", err, {"cmap": "RdBu_r", "vmin": -lim, "vmax": lim}))
    fig, axes = plt.subplots(1, len(panels), figsize=(4 * len(panels), 4), squeeze=False)
    size = crop or 0
    for ax, (title, arr, kw) in zip(axes[0], panels):
        im = ax.imshow(arr, interpolation="nearest", **kw)
        if kw:
            fig.colorbar(im, ax=ax, fraction=0.046)
        for r, c in tiles or []:
            side = size or max(1, image.shape[-1] // 4)
            ax.add_patch(Rectangle((c - 0.5, r - 0.5), side, side, fill=False, ec="white", lw=1, ls="--"))
        ax.set_title(title, fontsize=9)
        ax.axis("off")
    save_figure(fig, path, dpi=100, format="png")


def plot_boxes(
    image: Tensor,
    truth: Tensor | None,
    pred: dict[str, Tensor],
    threshold: float,
    path: Path,
    rgb: Sequence[int] | None = None,
    valid: Any = None,
) -> None:
    """The image (its `rgb` bands, stretched over the `valid` pixels) with reference boxes (green) and predictions
    above `threshold` (red, with scores)."""
    plt = figures()
    from matplotlib.patches import Rectangle

    fig, ax = plt.subplots(figsize=(7, 7))
    ax.imshow(rgb_preview(image, rgb, valid))
    for b in truth.tolist() if truth is not None else []:
        ax.add_patch(Rectangle((b[0], b[1]), b[2] - b[0], b[3] - b[1], fill=False, ec="lime", lw=1.2))
    for b, s in zip(pred["boxes"].tolist(), pred["scores"].tolist()):
        if s >= threshold:
            ax.add_patch(Rectangle((b[0], b[1]), b[2] - b[0], b[3] - b[1], fill=False, ec="red", lw=1.0, ls="--"))
            ax.text(b[0], b[1], f"{s:.2f}", color="red", fontsize=6, va="bottom")
    ax.set_title(f"reference (green) and predictions >= {threshold} (red)", fontsize=9)
    ax.axis("off")
    save_figure(fig, path, dpi=100, format="png")


def class_cmap(k: int) -> Any:
    """A colour map of max(k, 2) distinct colours for class ids 0..k-1: tab20 spread over k up to 20 classes, then
    tab20, tab20b and tab20c (60 colours), then evenly spaced hues. tab20 resampled to more than 20 colours repeats
    its colours, so two classes of a 25-class mask were drawn alike."""
    import colorsys

    import matplotlib
    from matplotlib.colors import ListedColormap

    n = max(k, 2)
    if n <= 20:
        return matplotlib.colormaps["tab20"].resampled(n)
    # tab20, tab20b and tab20c are ListedColormaps (the base Colormap type has no `colors`)
    colours = [c for name in ("tab20", "tab20b", "tab20c") for c in matplotlib.colormaps[name].colors]  # type: ignore[attr-defined]
    extra = n - len(colours)
    colours += [colorsys.hsv_to_rgb((i * 0.618033988749895) % 1.0, 0.75, 0.85) for i in range(max(extra, 0))]
    return ListedColormap(colours[:n], name=f"classes{n}")


def plot_examples(
    items: list[tuple[Any, ...]],
    k: int,
    ignore: int,
    path: Path,
    class_names: list[str] | None = None,
    rgb: Sequence[int] | None = None,
) -> None:
    """Image / ground truth / prediction panels (ignored pixels in white), with a legend of the class colours
    (`class_names`, else the class ids) below them. An item may add the image's valid pixels [H,W] as a fourth
    entry (the preview's stretch leaves nodata out); `rgb`: the positions of its red, green and blue bands."""
    plt = figures()
    from matplotlib.patches import Patch

    cmap = class_cmap(k)  # k distinct colours: class i is colour i (vmin 0, vmax k - 1)
    fig, axes = plt.subplots(len(items), 3, figsize=(9, 3 * len(items)), squeeze=False)
    for row, (img, mask, pred, *valid) in zip(axes, items):
        row[0].imshow(rgb_preview(img, rgb, valid[0] if valid else None))
        m = np.ma.masked_equal(mask.numpy(), ignore)
        row[1].imshow(m, cmap=cmap, vmin=0, vmax=max(k - 1, 1), interpolation="nearest")
        row[2].imshow(pred.numpy(), cmap=cmap, vmin=0, vmax=max(k - 1, 1), interpolation="nearest")
        for ax, title in zip(row, ("image", "truth", "prediction")):
            ax.set_title(title)
            ax.axis("off")
    names = list(class_names or []) if len(class_names or []) == k else [str(i) for i in range(k)]
    handles = [Patch(facecolor=cmap(i), edgecolor="none", label=name) for i, name in enumerate(names)]
    handles.append(Patch(facecolor="white", edgecolor="grey", label=f"ignored ({ignore})"))
    fig.tight_layout()
    fig.legend(
        handles=handles, loc="upper center", bbox_to_anchor=(0.5, 0.0), ncol=min(len(handles), 6), fontsize=8
    )  # below the panels; the tight bounding box takes it in
    save_figure(fig, path, dpi=100, format="png", tight=False, bbox_inches="tight")
