"""Overviews of a class map with bands after the class (classify's confidence): band 1 by class, the others averaged.

GDAL's COG driver takes one resampling for all bands. A class map needs class values in its overviews (an average
of class codes is another class), so the whole COG was written with `nearest`, and `classify`'s confidence band
(top class probability in %) showed, zoomed out in QGIS, the confidence of one cell in 4, 16, 64 ... instead of
that of the area. Here the 2x levels are made per band (`overview_shapes`: GDAL's own level sizes): band 1 takes
the upper-left cell of each 2x2 of the level above, or the first valid one of the four when that one is nodata (so
a class is shown wherever a confidence is, and every value is a class found under the cell); each other band is
the mean over the valid (not nodata) full-resolution cells under the overview cell, rounded. The mean is exact at
every level: a side file (uint32) keeps each level's sum and count of valid full-resolution cells (integers), so
level k is the block average of the full raster rounded once, not an average of rounded averages.
`overview_vrt` returns a VRT of the staging GeoTIFF (its colour table, descriptions, units and tags as GDAL copies
them) whose bands list these levels as their overviews; the COG driver copies them as given
(`OVERVIEWS=FORCE_USE_EXISTING`).
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import numpy as np

from geodino.embed.writers import overview_shapes

BLOCK = 256
"""Block size of the product COGs (and of the windows the levels are computed in)."""


def _first_valid(quads: list[np.ndarray], nodata: int | None) -> np.ndarray:
    """The upper-left value of each 2x2, or the first of the other three that is not nodata."""
    out = quads[0].copy()
    if nodata is None:
        return out
    for q in quads[1:]:
        fill = (out == nodata) & (q != nodata)
        out[fill] = q[fill]
    return out


def _quads(a: np.ndarray, fill: Any) -> list[np.ndarray]:
    """The four cells of each 2x2 of a [h, w] array (an odd last row or column padded with `fill`)."""
    h, w = a.shape
    if h % 2 or w % 2:
        a = np.pad(a, ((0, h % 2), (0, w % 2)), constant_values=fill)
    return [a[0::2, 0::2], a[0::2, 1::2], a[1::2, 0::2], a[1::2, 1::2]]


def _level(
    prev: Any, stats: Any | None, win: Any, n: int, nodata: int | None, acc: Any
) -> tuple[np.ndarray, np.ndarray]:
    """One window of the next level: its bands and the (sum, count) of the valid full-resolution cells under each
    cell for bands 2..n, in `acc` (exact integers: the mean is rounded once, from the full raster)."""
    vals = prev.read(window=win)
    out = np.empty((n, (vals.shape[1] + 1) // 2, (vals.shape[2] + 1) // 2), vals.dtype)
    out[0] = _first_valid(_quads(vals[0], nodata if nodata is not None else 0), nodata)
    st = stats.read(window=win) if stats is not None else None
    pairs = np.empty((2 * (n - 1), *out.shape[1:]), acc)
    hi = np.iinfo(out.dtype).max if np.issubdtype(out.dtype, np.integer) else np.inf
    for b in range(1, n):
        if st is None:  # full resolution: each valid cell its own value, counted once
            valid = vals[b] != nodata if nodata is not None else np.ones(vals[b].shape, bool)
            s_prev, c_prev = np.where(valid, vals[b], 0).astype(acc), valid.astype(acc)
        else:
            s_prev, c_prev = st[2 * b - 2], st[2 * b - 1]
        total, cnt = sum(_quads(s_prev, 0)), sum(_quads(c_prev, 0))
        mean = np.rint(total / np.maximum(cnt, 1))
        out[b] = np.where(cnt > 0, np.clip(mean, 0, hi), nodata if nodata is not None else 0).astype(out.dtype)
        pairs[2 * b - 2], pairs[2 * b - 1] = total, cnt
    return out, pairs


def build_levels(staging: Path, nodata: int | None) -> list[Path]:
    """Write the 2x levels of a class map's staging GeoTIFF as GeoTIFFs beside it (see the module doc); returns
    their paths, level 1 first (none for a map one block holds). The side files are removed; the caller
    removes the levels once copied."""
    import rasterio
    from rasterio.windows import Window

    with rasterio.open(staging) as src:
        H, W, n, dtype, crs, t = src.height, src.width, src.count, src.dtypes[0], src.crs, src.transform
    shapes = overview_shapes(H, W, BLOCK)
    # sums of uint8 values stay exact in uint32 up to 11 levels (255 * 4**11 < 2**32), half float64's bytes
    acc = np.uint32 if dtype == "uint8" and len(shapes) <= 11 else np.float64
    levels: list[Path] = []
    side: list[Path] = []
    prev, prev_stats, (sh, sw) = staging, None, (H, W)
    try:
        for k, (h, w) in enumerate(shapes, start=1):
            lvl, st = (staging.with_name(f"{staging.name}.L{k}{s}.tif") for s in ("", ".stats"))
            levels.append(lvl)
            side.append(st)
            tk = t * t.scale(W / w, H / h)
            common = dict(driver="GTiff", height=h, width=w, crs=crs, transform=tk, tiled=True)
            common |= dict(blockxsize=BLOCK, blockysize=BLOCK)
            with (
                rasterio.open(prev) as src,
                rasterio.open(prev_stats) if prev_stats else _null() as stats,
                rasterio.open(lvl, "w", count=n, dtype=dtype, nodata=nodata, **common) as dst,
                rasterio.open(st, "w", count=2 * (n - 1), dtype=np.dtype(acc).name, **common) as dst_st,
            ):
                for r0 in range(0, h, BLOCK):
                    for c0 in range(0, w, BLOCK):
                        bh, bw = min(BLOCK, h - r0), min(BLOCK, w - c0)
                        rwin = Window(2 * c0, 2 * r0, min(2 * bw, sw - 2 * c0), min(2 * bh, sh - 2 * r0))
                        vals, pairs = _level(src, stats, rwin, n, nodata, acc)
                        win = Window(c0, r0, bw, bh)
                        dst.write(vals[:, :bh, :bw], window=win)
                        dst_st.write(pairs[:, :bh, :bw], window=win)
            if prev_stats is not None:
                prev_stats.unlink(missing_ok=True)
            prev, prev_stats, (sh, sw) = lvl, st, (h, w)
    except BaseException:
        for p in levels:
            p.unlink(missing_ok=True)
        raise
    finally:
        for p in side:
            p.unlink(missing_ok=True)
    return levels


class _null:
    """A context manager holding None (no statistics file for level 1, read from full resolution)."""

    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        return None


def overview_vrt(staging: Path, levels: list[Path]) -> Path:
    """A VRT of the staging GeoTIFF (as GDAL copies it: colour table, descriptions, units, nodata, tags) whose every
    band lists its band of each level as an explicit overview; written beside it, the caller removes it."""
    import rasterio.shutil

    vrt = staging.with_name(staging.name + ".vrt")
    rasterio.shutil.copy(str(staging), str(vrt), driver="VRT")
    root = ET.parse(vrt).getroot()
    for band in root.iter("VRTRasterBand"):
        i = band.get("band")
        for lvl in levels:
            ovr = ET.SubElement(band, "Overview")
            ET.SubElement(ovr, "SourceFilename", relativeToVRT="0").text = str(lvl.resolve())
            ET.SubElement(ovr, "SourceBand").text = str(i)
    ET.ElementTree(root).write(vrt, encoding="utf-8")
    return vrt
