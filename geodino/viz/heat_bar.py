"""A colour bar beside a single heat-map PNG (`attention_mean.png`, `attention_headNN.png`,
`attention_similarity.png`): the values its colours stand for. Each map is min-max scaled on its own, so without a
scale a head's brightest patch looked the same at a 0.9 and at a 0.01 attention share; the panel had bars, the
single PNGs none.

The map keeps its pixels one to one (its left `W` columns are the overlay as before); the bar is a strip appended on
the right, drawn with Pillow rather than a matplotlib figure, which would resample the map."""

from __future__ import annotations

import numpy as np

BACKGROUND = 255
"""The strip's background (white) behind the bar and its two value labels."""


def font_size(height: int) -> int:
    """The labels' font size (also the bar's width) in pixels for a map `height` px tall: legible on a 24 px map,
    not tiny on a 2000 px one."""
    return int(min(max(round(height / 32), 9), 28))


def with_colour_bar(img: np.ndarray, lo: float, hi: float, cmap: str) -> np.ndarray:
    """`img` (uint8 [H, W, 3]) with a vertical bar of `cmap` on its right, from `hi` (top) to `lo` (bottom), and
    those two values written beside it (one value, in the lowest colour, for a flat map: drawn in that colour)."""
    import matplotlib
    from PIL import Image, ImageDraw, ImageFont

    h = int(img.shape[0])
    size = bar_w = font_size(h)
    font = ImageFont.load_default(size=size)
    flat = not hi > lo
    labels = [f"{lo:.3g}"] if flat else [f"{hi:.3g}", f"{lo:.3g}"]
    text_w = max(int(np.ceil(font.getlength(t))) for t in labels)
    gap = max(2, size // 3)
    strip = np.full((h, gap + bar_w + gap + text_w + gap, 3), BACKGROUND, np.uint8)
    ramp = np.zeros(h) if flat else np.linspace(1.0, 0.0, h)
    colours = (matplotlib.colormaps[cmap](ramp)[:, :3] * 255).astype(np.uint8)
    strip[:, gap : gap + bar_w] = colours[:, None, :]
    canvas = Image.fromarray(strip)
    draw = ImageDraw.Draw(canvas)
    x = gap + bar_w + gap
    top, bottom = font.getbbox(labels[0])[1], font.getbbox(labels[-1])[3]
    draw.text((x, 1 - top), labels[0], fill=(0, 0, 0), font=font)  # its ink 1 px below the top edge
    if not flat and h >= 2 * size + 2:  # room for the second label below the first
        draw.text((x, h - 1 - bottom), labels[1], fill=(0, 0, 0), font=font)
    return np.concatenate([np.asarray(img, np.uint8), np.asarray(canvas)], axis=1)
