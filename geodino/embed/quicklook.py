"""PNG quick-looks with a legend (class maps, change masks, PCA colours) or a colour bar (distance, confidence),
by matplotlib.

The COG is read decimated (at most `max_side` pixels a side), so the PNG is cheap for any raster size. Nodata is
never painted in a colour the data can take: white on class maps (their palettes have no white), grey hatching on
the PCA's RGB (any flat colour is some PCA colour; zonal's PNG hatches its rows without an embedding alike), and
listed in the legend as "nodata" when the map has some; the axes keep their frame, so nodata at an edge still
shows where the raster ends. Maps are drawn north-up and west-left whatever the grid's orientation (a south-up or
west-pointing grid is flipped, as zonal's PNG is drawn in CRS coordinates); a rotated grid is drawn in grid order,
which the title says.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from geodino.io import atomic_path

NODATA_HATCH: dict[str, Any] = {"facecolor": "0.85", "edgecolor": "0.4", "hatch": "//"}
"""How the PCA quick-look (and zonal's PNG) draws cells without data: a pattern, which no data colour is."""


def _read(cog: str | Path, band: int | Sequence[int], max_side: int) -> tuple[np.ma.MaskedArray, str]:
    """`band` (an index, or a list of indexes: then [bands, h, w]) decimated to at most `max_side` pixels a side,
    nodata masked, turned north-up and west-left by the geotransform (a south-up grid, e > 0, is flipped top to
    bottom; a west-pointing one, a < 0, left to right), as zonal's PNG (drawn in CRS coordinates) is; and a note
    for the title: "" or, for a rotated grid (b or d != 0), which no flip makes north-up, that it is drawn in grid
    order."""
    import rasterio
    from rasterio.enums import Resampling

    with rasterio.open(cog) as src:
        f = max(1.0, max(src.height, src.width) / max_side)
        shape: tuple[int, ...] = (max(1, int(src.height / f)), max(1, int(src.width / f)))
        if not isinstance(band, int):
            shape = (len(band), *shape)
        arr = src.read(band, out_shape=shape, masked=True, resampling=Resampling.nearest)
        t = src.transform
    if t.b != 0 or t.d != 0:
        return arr, "rotated grid: drawn in grid order (row 0 on top), not north-up"
    if t.e > 0:  # row 0 is the southern edge
        arr = arr[..., ::-1, :]
    if t.a < 0:  # column 0 is the eastern edge
        arr = arr[..., ::-1]
    return arr, ""


def _titled(title: str, note: str) -> str:
    """The PNG's title with the grid-order note (rotated grids) on a line of its own."""
    return f"{title}\n({note})" if title and note else title or (f"({note})" if note else "")


def save_png(fig, png: str | Path) -> Path:
    """Write a matplotlib Figure as a PNG, atomically."""
    from geodino.viz.figures import quiet_glyphs

    png = Path(png)
    with atomic_path(png, overwrite=True) as tmp, quiet_glyphs():
        fig.savefig(tmp, format="png", dpi=100, bbox_inches="tight")
    return png


def _figure(shape: tuple[int, int], extra_width: float):
    """A stand-alone Figure (no pyplot: no global backend switch inside a user's notebook)."""
    from matplotlib.figure import Figure

    h, w = shape
    scale = 6.0 / max(h, w)
    fig = Figure(figsize=(max(2.0, w * scale) + extra_width, max(2.0, h * scale)))
    ax = fig.add_subplot()
    ax.set_xticks([])  # no ticks, but the frame stays: white nodata at an edge is then still inside the raster
    ax.set_yticks([])
    return fig, ax


def classes_png(
    cog: str | Path,
    png: str | Path,
    entries: Mapping[int, tuple[Sequence[int], str]],
    *,
    title: str = "",
    band: int = 1,
    max_side: int = 1024,
) -> Path:
    """Class values painted with `entries[value] = (rgb 0-255, name)`, legend on the right; nodata (and any value
    without an entry) white, listed in the legend as "nodata" when the map has some."""
    from matplotlib.patches import Patch

    arr, note = _read(cog, band, max_side)
    rgb = np.full((*arr.shape, 3), 255, np.uint8)
    data = np.asarray(arr.filled(0))
    painted = np.zeros(arr.shape, bool)
    for value, (col, _) in entries.items():
        hit = (data == value) & ~np.ma.getmaskarray(arr)
        rgb[hit] = np.asarray(col[:3], np.uint8)
        painted |= hit
    fig, ax = _figure(arr.shape, 2.0)
    ax.imshow(rgb, interpolation="nearest")
    items = sorted(entries.items())
    handles = [Patch(facecolor=(c[0] / 255, c[1] / 255, c[2] / 255), edgecolor="k", label=n) for _, (c, n) in items]
    if not painted.all():  # white cells said nothing: a reader took them for a class or the page
        handles.append(Patch(facecolor="white", edgecolor="k", label="nodata"))
    return _finish(fig, ax, png, _titled(title, note), handles)


def _finish(fig: Any, ax: Any, png: str | Path, title: str, handles: list[Any]) -> Path:
    """The legend right of the map (at most 40 rows a column: a k=254 cluster legend stays on the page), the
    title, and the PNG written."""
    if handles:
        ncol = -(-len(handles) // 40)
        ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False, fontsize=9, ncol=ncol)
    if title:
        ax.set_title(title, fontsize=10)
    return save_png(fig, png)


def rgb_png(
    cog: str | Path,
    png: str | Path,
    *,
    title: str = "",
    bands: tuple[int, int, int] = (1, 2, 3),
    max_side: int = 1024,
) -> Path:
    """Three bands as red, green, blue (the PCA COG: 1..255, 0 = nodata), nodata transparent over grey hatching
    and listed in the legend as "nodata" when the map has some. Painted black before, nodata could not be told
    from the darkest PCA colours, and no flat colour can: every RGB is some PCA colour."""
    from matplotlib.patches import Patch, Rectangle

    arr, note = _read(cog, list(bands), max_side)
    nodata = np.ma.getmaskarray(arr).any(axis=0)
    rgba = np.empty((*arr.shape[1:], 4), np.uint8)
    rgba[..., :3] = np.moveaxis(np.asarray(arr.filled(0)), 0, -1)
    rgba[..., 3] = np.where(nodata, 0, 255)
    h, w = nodata.shape
    fig, ax = _figure((h, w), 1.2 if nodata.any() else 0.0)
    ax.add_patch(Rectangle((-0.5, -0.5), w, h, linewidth=0, zorder=0, **NODATA_HATCH))
    ax.imshow(rgba, interpolation="nearest", zorder=1)
    handles = [Patch(label="nodata", **NODATA_HATCH)] if nodata.any() else []
    return _finish(fig, ax, png, _titled(title, note), handles)


def ramp_png(
    cog: str | Path,
    png: str | Path,
    *,
    vmin: float,
    vmax: float,
    ramp: str,
    label: str,
    title: str = "",
    band: int = 1,
    max_side: int = 1024,
) -> Path:
    """A continuous band through a matplotlib colormap between `vmin` and `vmax`, with a colour bar whose ends are
    arrows where the data go beyond the limits (those cells take the end colours; nodata is white)."""
    read, note = _read(cog, band, max_side)
    arr = np.ma.masked_invalid(read.astype(np.float32))
    fig, ax = _figure(arr.shape, 1.2)
    im = ax.imshow(arr, cmap=ramp, vmin=vmin, vmax=vmax, interpolation="nearest")
    vals = arr.compressed()
    below, above = bool(vals.size and vals.min() < vmin), bool(vals.size and vals.max() > vmax)
    extend = {(True, True): "both", (True, False): "min", (False, True): "max"}.get((below, above), "neither")
    fig.colorbar(im, ax=ax, fraction=0.046, pad=0.02, label=label, extend=extend)
    return _finish(fig, ax, png, _titled(title, note), [])
