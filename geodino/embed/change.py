"""Change between two dates: per-cell cosine distance of two feature rasters (`geodino embed change`).

`1 - cos(a, b)` (0 = same direction, 2 = opposite) for every cell valid in both rasters, NaN where either is
nodata, as a float32 COG; then, with `threshold` (a number, or "otsu" for Otsu's threshold on the histogram of
distances), a binary uint8 change COG (0 = no change, 1 = change, 255 = nodata; named in a raster attribute
table). Both rasters must come from the same backbone (fingerprint, layers) and lie on the same grid;
`resample=True` warps B onto A's grid through a GDAL WarpedVRT, nodata-aware: the area-weighted average of B's cells
under each A cell when B's cells are finer than A's (bilinear there widens its kernel and mixed in A's neighbours:
B = A at half the cell size scored distances up to 0.51), bilinear otherwise, nearest for int8 codes.
An empty change mask (no cell above the threshold) is a `UserWarning` (`warnings.warn`; the command line shows it as
one line "geodino: warning: ...").
"""

from __future__ import annotations

import numbers
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from geodino.embed import style
from geodino.embed.compat import backbone_identity, check_same_backbone, grid_difference
from geodino.embed.writers import EmbeddingReader
from geodino.errors import ConfigError, InputError
from geodino.io import check_writable

NODATA = 255
BINS = 2000  # histogram of distances over [0, 2]: 0.001 wide bins for Otsu
CHANGE_COLOURS = {0: ((200, 200, 200, 0), "no change"), 1: ((220, 30, 30, 255), "change")}


def otsu_threshold(hist: np.ndarray, edges: np.ndarray) -> float:
    """Otsu's threshold from a histogram (maximum between-class variance).

    Hand-written (a few lines) because the distances are accumulated block by block into a histogram so the
    raster is never held in memory, and scikit-image (whose `threshold_otsu` takes a histogram) is not a
    dependency.
    """
    centres = (edges[:-1] + edges[1:]) / 2
    w = hist.astype(np.float64)
    if w.sum() == 0:
        raise InputError("no cell is valid in both feature rasters, so there is no distance to threshold")
    w0 = np.cumsum(w)
    w1 = w0[-1] - w0
    m0 = np.cumsum(w * centres)
    mu0 = m0 / np.maximum(w0, 1e-12)
    mu1 = (m0[-1] - m0) / np.maximum(w1, 1e-12)
    between = w0 * w1 * (mu0 - mu1) ** 2
    return float(edges[int(np.argmax(between)) + 1])


class _Warped(EmbeddingReader):
    """An EmbeddingReader whose dataset is B warped onto A's grid (same reads, same dequantisation)."""

    def __init__(self, path: str | Path, onto: EmbeddingReader) -> None:
        from rasterio.enums import Resampling
        from rasterio.vrt import WarpedVRT

        from geodino.embed.placement import NO_OPERATION, crs_label, transformable

        super().__init__(path)
        if self.crs is None or onto.crs is None:
            self.close()
            raise InputError(
                f"--resample (resample=True in Python) needs a CRS on both feature rasters ({onto.path}: "
                f"{crs_label(onto.crs)}, {self.path}: "
                f"{crs_label(self.crs)})"
            )
        cannot = (
            f"feature raster {self.path} ({crs_label(self.crs)}) cannot be resampled onto the grid of {onto.path} "
            f"({crs_label(onto.crs)}): {NO_OPERATION}; embed both dates from inputs in one CRS "
            "(reproject one onto the other's grid with gdalwarp first)"
        )
        if not transformable(self.crs, onto.crs):
            self.close()
            raise InputError(cannot)
        int8 = self.dtype == "int8" or self.src.dtypes[0] == "int8"
        self._base = self.src
        try:
            self.src = WarpedVRT(
                self._base,
                crs=onto.crs,
                transform=onto.transform,
                width=onto.width,
                height=onto.height,
                resampling=Resampling.nearest if int8 else _float_resampling(self._base, onto),
                src_nodata=-128 if int8 else float("nan"),
                nodata=-128 if int8 else float("nan"),
            )
        except Exception as exc:  # GDAL's PROJ may lack an operation pyproj's has: only that case is this line
            if "Cannot find coordinate operations" not in str(exc):
                raise
            self.close()
            raise InputError(cannot) from exc
        self.height, self.width, self.crs, self.transform = onto.height, onto.width, onto.crs, onto.transform

    def close(self) -> None:
        self.src.close()
        if hasattr(self, "_base"):
            self._base.close()


def _float_resampling(src: Any, onto: EmbeddingReader) -> Any:
    """Average when B's cells (measured in A's CRS) are finer than A's on both axes, so each A cell gets the mean of
    the B cells it covers; bilinear otherwise (B as coarse as A or coarser: interpolation between its centres)."""
    from rasterio.enums import Resampling
    from rasterio.warp import transform_bounds

    left, bottom, right, top = transform_bounds(src.crs, onto.crs, *src.bounds)
    b_x, b_y = abs(right - left) / src.width, abs(top - bottom) / src.height
    a_x, a_y = abs(onto.transform.a) + abs(onto.transform.b), abs(onto.transform.e) + abs(onto.transform.d)
    finer = b_x < a_x * (1 - 1e-6) and b_y < a_y * (1 - 1e-6)
    return Resampling.average if finer else Resampling.bilinear


def cosine_distance(fa: np.ndarray, fb: np.ndarray) -> np.ndarray:
    """`1 - cos` of two [D,h,w] float32 blocks per cell, in [0, 2] as float32 (1 where one vector is zero, the
    other not).

    Dot products and norms in float32 (einsum, no unit-vector copies: half the time of normalising both blocks),
    their ratio in float64; a cell whose two vectors are equal is exactly 0 (float32 rounding left up to ~2e-6 for
    768 features, so two embeddings of one input did not read as "no change")."""
    dot = np.einsum("chw,chw->hw", fa, fb).astype(np.float64)
    norms = np.einsum("chw,chw->hw", fa, fa).astype(np.float64) * np.einsum("chw,chw->hw", fb, fb)
    d = 1.0 - dot / np.maximum(np.sqrt(norms), 1e-24)
    d[np.all(fa == fb, axis=0)] = 0.0
    return np.clip(d, 0.0, 2.0).astype(np.float32)


def _threshold(threshold: Any) -> float | str | None:
    """`threshold` as a float in [0, 2] (an int, a numpy number or numeric text alike), 'otsu' or None; anything
    else (a bool, text, a value outside [0, 2]) is one InputError line naming both spellings."""
    if threshold is None or (isinstance(threshold, str) and threshold.strip().lower() == "otsu"):
        return None if threshold is None else "otsu"
    value = None
    if isinstance(threshold, numbers.Real) and not isinstance(threshold, bool):
        value = float(threshold)
    elif isinstance(threshold, str):
        try:
            value = float(threshold)
        except ValueError:
            pass
    if value is None:
        raise InputError(f"--threshold {threshold!r} must be a number in [0, 2] or 'otsu' (threshold= in Python)")
    if not 0.0 <= value <= 2.0:  # also NaN
        raise InputError(
            f"--threshold {threshold} must lie in [0, 2] (cosine distance) or be 'otsu' (threshold= in Python)"
        )
    return value


def change_map(
    a: str | Path,
    b: str | Path,
    out: str | Path,
    *,
    threshold: float | str | None = None,
    mask: str | Path | None = None,
    resample: bool = False,
    png: str | Path | None = None,
    overwrite: bool = False,
) -> dict[str, Any]:
    """Write the distance COG (and with `threshold` the binary change COG), their `.qml` styles and PNGs; a
    threshold no cell exceeds (an empty mask) is a `UserWarning`. Returns a JSON-ready summary (paths as text):
    `distance`, `png`, `valid_cells`, `p99` (the 99th-percentile distance, or at most 0.001 above it: see
    `_p99`), and with `threshold` also `mask`,
    `threshold` (the value used), `method` (`otsu` or `given`), `changed_cells` and `changed_share`."""
    from geodino.config import true_or_false
    from geodino.embed.map_outputs import file_name
    from geodino.embed.products import check_map_outputs, cog_profile, n_blocks, write_cog
    from geodino.embed.quicklook import classes_png, ramp_png

    threshold = _threshold(threshold)
    if mask and threshold is None:  # the mask is written only with a threshold: --mask alone was silently ignored
        raise ConfigError(
            f"--mask {mask} (mask= in Python) names the binary change COG, which --threshold T|otsu makes; add "
            "--threshold (threshold= in Python)"
        )
    resample = true_or_false(resample, "resample")  # "false" from a YAML or a caller's text is False

    out = Path(out)
    png = file_name(png, "png", "change") or out.with_suffix(".png")
    mask_out = file_name(mask, "mask", "change") or out.with_name(out.stem + "_mask.tif")
    masks = (mask_out, mask_out.with_suffix(".png"), style.qml_path(mask_out)) if threshold is not None else ()
    check_map_outputs(
        "change",
        out,
        png=png,
        style=style.qml_path(out),
        reads={"feature raster A": a, "feature raster B": b},
        **dict(zip(("mask", "mask PNG", "mask style"), masks)),
    )
    out = check_writable(out, overwrite=overwrite)
    for p in (png, *masks[:2]):
        check_writable(p, overwrite=overwrite)
    hist = np.zeros(BINS, np.int64)
    edges = np.linspace(0.0, 2.0, BINS + 1)
    top = np.full(BINS, -1.0, np.float32)  # the largest distance in each bin (-1: empty)
    with EmbeddingReader(a).require_features() as ra:
        with EmbeddingReader(b).require_features() as probe:
            check_same_backbone(
                backbone_identity(ra.metadata, ra.count),
                f"feature raster {a}",
                backbone_identity(probe.metadata, probe.count),
                f"feature raster {b}",
                hint="embed both dates with the same --backbone, --layers and norm",
                ignore=("l2_normalize",),  # a cosine distance does not see vector lengths
            )
            diff = grid_difference(ra, probe)
        if diff and not resample:
            raise InputError(
                f"feature rasters {a} and {b} are on different grids ({diff}); pass --resample (resample=True in "
                "Python) to resample B onto A's grid, or embed both from inputs on the same grid"
            )
        rb = _Warped(b, ra) if diff else EmbeddingReader(b)
        n_valid = 0
        with rb:

            def blocks():
                nonlocal n_valid
                for win in ra.blocks(budget_bytes=32 * 2**20):
                    fa, va = ra.read(win)
                    fb, vb = rb.read(win)
                    ok = va & vb
                    d = cosine_distance(fa, fb)
                    d[~ok] = np.nan
                    v = d[ok]
                    v = v[~np.isnan(v)]  # as np.histogram counted them (a NaN feature in a valid cell)
                    where = _bin_of(v, edges)
                    hist[:] += np.bincount(where, minlength=BINS)
                    np.maximum.at(top, where, v)
                    n_valid += int(ok.sum())
                    yield win, d[None]

            write_cog(
                out,
                blocks(),
                cog_profile(ra, 1, "float32", float("nan")),
                bands=("cosine distance",),
                desc="change",
                total=n_blocks(ra, budget_bytes=32 * 2**20),
                GEODINO_CHANGE="1 - cosine(A, B)",
                GEODINO_CHANGE_A=str(a),
                GEODINO_CHANGE_B=str(b),
                GEODINO_RESAMPLED_B=str(bool(diff)),
            )
    if n_valid == 0:
        out.unlink(missing_ok=True)
        raise InputError(f"no cell is valid in both {a} and {b}: they do not overlap (or one is all nodata)")
    p99, hi = _p99(hist, top, edges, n_valid)
    vmax = max(hi, 1e-3)  # the ramp ends at the p99 bin's upper edge (0.001 at least: identical inputs)
    style.ramp_qml(out, vmin=0.0, vmax=vmax, ramp=style.RAMPS["change"], bounds=(0.0, 2.0))
    ramp_png(out, png, vmin=0.0, vmax=vmax, ramp=style.RAMPS["change"], label="cosine distance", title=out.name)
    summary: dict[str, Any] = {"distance": str(out), "png": str(png), "valid_cells": n_valid, "p99": p99}
    if threshold is not None:
        t = otsu_threshold(hist, edges) if threshold == "otsu" else float(threshold)
        changed = _write_mask(out, mask_out, t, threshold == "otsu")
        classes_png(
            mask_out, mask_out.with_suffix(".png"), CHANGE_COLOURS, title=f"{mask_out.name}  (distance > {t:.3f})"
        )
        summary.update(
            mask=str(mask_out),
            threshold=t,
            method="otsu" if threshold == "otsu" else "given",
            changed_cells=changed,
            changed_share=changed / n_valid,
        )
        if changed == 0:
            warnings.warn(f"no cell has a distance above {t:.3f}; the change mask is empty", stacklevel=2)
    return summary


def _bin_of(v: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """The histogram bin of each distance, as `np.histogram(v, bins=edges)` counts it ([a, b), the last bin closed),
    by its arithmetic on the even edges (about 30 ns a cell; `np.searchsorted` took 200)."""
    x = v.astype(np.float64)
    i = np.minimum((x * (BINS / 2.0)).astype(np.intp), BINS - 1)
    i -= x < edges[i]
    i += (x >= edges[i + 1]) & (i < BINS - 1)
    return i


def _p99(hist: np.ndarray, top: np.ndarray, edges: np.ndarray, n_valid: int) -> tuple[float, float]:
    """(p99, upper edge of its bin). p99 is the largest distance in the 0.001-wide bin that holds the 99th
    percentile (the cell of rank ceil(0.99 n)): the percentile itself when that cell is its bin's largest or the bin
    holds one value (identical inputs: 0), else at most 0.001 above it. The bin's upper edge, printed before, read
    "p99 0.001" for two identical rasters, whose every distance is 0."""
    i = min(BINS - 1, int(np.searchsorted(np.cumsum(hist), 0.99 * n_valid)))
    return float(top[i]), float(edges[i + 1])


def _write_mask(distance: Path, out: Path, t: float, otsu: bool) -> int:
    """Binary change COG from the distance COG: 1 where distance > t, 0 where not, 255 on nodata."""
    import rasterio

    from geodino.embed.products import write_cog

    changed = 0
    with rasterio.open(distance) as src:
        profile = {k: src.profile[k] for k in ("height", "width", "crs", "transform")}
        profile.update(count=1, dtype="uint8", nodata=NODATA)
        # what was compared (A, B, resampled): the mask alone said only its threshold
        compared = {k: v for k, v in src.tags().items() if k.startswith(("GEODINO_CHANGE_", "GEODINO_RESAMPLED"))}

        def blocks():
            nonlocal changed
            for _, win in src.block_windows(1):
                d = src.read(1, window=win)
                m = np.where(np.isnan(d), NODATA, d > t).astype(np.uint8)
                changed += int((m == 1).sum())
                yield win, m[None]

        write_cog(
            out,
            blocks(),
            profile,
            classes=CHANGE_COLOURS,  # colour table and RAT, as the .qml and the PNG legend
            bands=("change",),
            **compared,
            GEODINO_CHANGE_DISTANCE=str(distance),
            GEODINO_CHANGE_THRESHOLD=f"{t:.6f}",
            GEODINO_THRESHOLD_METHOD="otsu" if otsu else "given",
        )
    style.palette_qml(out, CHANGE_COLOURS, nodata=NODATA)
    return changed
