"""Raster scenes: GeoTIFF/COG/VRT files opened (cached per process) and read as windows with nodata masks.

The archive of many scenes and the tiles drawn from it are in `geodino.data.archive` (`RasterArchive`,
`RasterSource`); this module is the windowed reader they, the feature rasters (`embed/`) and the stats use.

Why not torchgeo's `RasterDataset` (measured in benchmarks/readers.py and explained in docs/data.md): it
reprojects every scene to the first file's CRS (WarpedVRT) and reads each query through `rasterio.merge`, which
costs several times a plain windowed read, has no per-sample CRS (0.8/0.9), no nodata mask (added as a single
value in 0.10) and no duplicate-free sharding across ranks (#305, #89). geodino keeps each scene in its own grid
(native CRS by default, as torchgeo PR #4108 asks), reads windows with one `DatasetReader.read`, and derives
every tile from (seed, index). `RasterArchive.to_geodataframe()` gives the torchgeo-style footprint index.

Handles are opened lazily and cached per process (a forked DataLoader worker never reuses its parent's GDAL
handle). With `crs`/`res` set, each scene is read through a `WarpedVRT` onto one target grid aligned to `res`.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import os
import weakref
from collections import OrderedDict
from collections.abc import Sequence
from typing import Any

import numpy as np

from geodino.data.validity import nodata_fits, valid_pixels

__all__ = [
    "FILE_NODATA",
    "SceneGrid",
    "SceneInfo",
    "alpha_bands",
    "alpha_is_data",
    "declared_scaling",
    "file_mask",
    "format_rule",
    "open_raster",
    "own_mask",
    "read_bands",
    "read_dtype",
    "read_window",
    "stream_id",
    "target_grid",
    "warp_nodata",
    "window_affine",
]

_HANDLE_CACHE_SIZE = 64


def window_affine(transform: Any, col: float, row: float) -> Any:
    """The affine transform of a window whose top-left pixel is (`col`, `row`) of a raster with `transform`.

    Equal to `rasterio.windows.transform` / `DatasetReader.window_transform`, which apply an Affine with `*` and so
    raise affine's PendingDeprecationWarning on every tile read; composing with `@` gives the same numbers.

    Written out as `Affine.__matmul__` computes `Affine(*transform[:6]) @ Affine.translation(col, row)`, the same
    float operations in the same order (bit for bit), without its cost on every tile (~11 us: building two Affines
    and reading both back through attrs' `astuple`)."""
    from affine import Affine

    if isinstance(transform, Affine):
        sa, sb, sc, sd, se, sf = transform.a, transform.b, transform.c, transform.d, transform.e, transform.f
    else:
        sa, sb, sc, sd, se, sf = (float(v) for v in tuple(transform)[:6])
    oc, of = float(col), float(row)  # Affine.translation(col, row) = (1, 0, col, 0, 1, row)
    return Affine(
        sa * 1.0 + sb * 0.0,
        sa * 0.0 + sb * 1.0,
        sa * oc + sb * of + sc,
        sd * 1.0 + se * 0.0,
        sd * 0.0 + se * 1.0,
        sd * oc + se * of + sf,
    )


class SceneGrid:
    """The grid of a scene (raster or datacube) from its `transform`, `width` and `height` fields."""

    transform: tuple[float, ...]
    width: int
    height: int

    @property
    def affine(self) -> Any:
        from affine import Affine

        return Affine(*self.transform[:6])

    @property
    def res(self) -> tuple[float, float]:
        a, b, _, d, e, _ = self.transform[:6]
        return (float(np.hypot(a, d)), float(np.hypot(b, e)))

    @property
    def bounds(self) -> tuple[float, float, float, float]:
        """(left, bottom, right, top) in `crs`."""
        t = self.affine
        xs, ys = zip(*[t @ (c, r) for c, r in [(0, 0), (self.width, 0), (0, self.height), (self.width, self.height)]])
        return (min(xs), min(ys), max(xs), max(ys))


@dataclasses.dataclass(frozen=True)
class SceneInfo(SceneGrid):
    """One scene in the grid it is read in (native, or the reprojection target)."""

    path: str
    crs: str  # WKT of the read grid
    transform: tuple[float, ...]  # affine (a, b, c, d, e, f) of the read grid
    width: int
    height: int
    count: int
    dtype: str
    nodata: float | None
    band_names: tuple[str, ...]
    band_indexes: tuple[int, ...]  # 1-based file band indexes read, in output order
    warped: bool = False
    has_mask: bool = False  # the file's internal mask or alpha band (also beside a nodata value), always applied
    # DN -> physical value the file declares for the bands read (GDAL <Scale>/<Offset>), () when none does
    scales: tuple[float, ...] = ()
    offsets: tuple[float, ...] = ()


# ------------------------------------------------------------------------------------------------------------------
# Handles: lazily opened, cached per process
# ------------------------------------------------------------------------------------------------------------------
_handles: OrderedDict[tuple, Any] = OrderedDict()
_handles_pid = -1


FILE_NODATA = "file"
"""`open_raster(nodata=...)` default: the file's own nodata value."""


def warp_nodata(nodata: float | None, dtype: str) -> float | None:
    """The nodata value a WarpedVRT can fill the target grid's cells beyond the file with (and leave out of the
    resampling): `nodata` when pixels of `dtype` can equal it, else None (then an alpha band marks those cells)."""
    if nodata is None:
        return None
    if math.isnan(float(nodata)):
        return float(nodata) if np.dtype(dtype).kind == "f" else None
    return float(nodata) if nodata_fits(nodata, dtype) else None


def open_raster(
    path: str,
    *,
    crs: str | None = None,
    res: tuple[float, float] | None = None,
    resampling: str = "bilinear",
    nodata: float | str | None = FILE_NODATA,
):
    """A cached rasterio dataset (or WarpedVRT onto `crs`/`res`) for this process.

    A WarpedVRT fills the target grid's cells beyond the file (a reprojected scene's corners) with `nodata` (the
    scene's value: the file's, a `nodata:` override or the sensor's; default the file's), which also stays out of
    the resampling. Without a usable one it gets an alpha band (the last band, colour interpretation alpha) that
    `read_window` applies, so those cells are never read as valid zeros; a file with an alpha band of its own (RGBA)
    keeps that one, which the warp sets to 0 there too."""
    global _handles_pid
    if _handles_pid != os.getpid():  # after fork: drop the parent's handles without closing them
        _handles.clear()
        _handles_pid = os.getpid()
    try:  # a file rewritten in place (same path, new contents) gets a new handle, not the old file's
        st = os.stat(path)
        version: tuple[int, int] | None = (st.st_size, st.st_mtime_ns)
    except OSError:  # URLs and /vsi paths: rasterio reports what is wrong when it opens them
        version = None
    key = (path, version, crs, res, resampling, nodata)
    ds = _handles.get(key)
    if ds is not None:
        _handles.move_to_end(key)
        return ds
    import rasterio  # imported on a miss only: a cache hit is on every window read's path
    from rasterio.enums import Resampling
    from rasterio.vrt import WarpedVRT

    src = rasterio.open(path)
    if crs is not None:
        from rasterio.crs import CRS

        dst_crs = CRS.from_user_input(crs)
        transform, width, height = target_grid(src, dst_crs, res)
        alpha = alpha_bands(src)
        # a mask of the file's own (per_dataset: an internal mask, a `data stack` VRT's coverage mask) is its
        # validity in the warp too: GDAL's warper ignores it once a source nodata is set (masked cells, a stack's
        # uncovered band, were warped as data); without one it reads the mask, and the added alpha band carries it
        own = not alpha and own_mask(src, 1)
        value = None if own else warp_nodata(src.nodata if nodata == FILE_NODATA else nodata, src.dtypes[0])  # type: ignore[arg-type]
        # without a value: an alpha band marks them; a file with its own (RGBA) keeps it, warped with the data
        # (GDAL refuses a second one: 'The VRT already has an alpha band')
        fill: dict[str, Any] = {"nodata": value} if value is not None else {} if alpha else {"add_alpha": True}
        ds = WarpedVRT(
            src,
            crs=dst_crs,
            transform=transform,
            width=width,
            height=height,
            resampling=Resampling[resampling],
            src_nodata=value,
            **fill,
        )
    else:
        ds = src
    _handles[key] = ds
    while len(_handles) > _HANDLE_CACHE_SIZE:
        _, old = _handles.popitem(last=False)
        # a WarpedVRT does not close the file it reads (rasterio leaves `src_dataset` to its opener): close both,
        # or a run over thousands of reprojected scenes keeps a file handle per evicted scene until the GC runs
        for handle in (old, getattr(old, "src_dataset", None)):
            try:
                if handle is not None:
                    handle.close()
            except Exception:  # a handle that fails to close is simply dropped
                pass
    return ds


def alpha_bands(src: Any) -> tuple[int, ...]:
    """The 1-based bands of an open rasterio dataset whose colour interpretation is alpha (RGBA: band 4): a validity
    mask GDAL applies to the other bands, not data."""
    from rasterio.enums import ColorInterp

    return tuple(i for i, ci in enumerate(src.colorinterp, start=1) if ci == ColorInterp.alpha)


def alpha_is_data(alpha: Sequence[int], path: str, count: int, dtype: str) -> str:
    """What to do when a band the file marks as alpha is data: clear the flag. GDAL writes the 4th band of a
    4-band uint8 GeoTIFF as alpha unless told otherwise (PHOTOMETRIC=MINISBLACK), so an RGBN file may carry one."""
    one = len(alpha) == 1
    why = " (GDAL marks the 4th band of a 4-band uint8 GeoTIFF written without PHOTOMETRIC=MINISBLACK as alpha)"
    flags = " ".join(f"-colorinterp_{b} undefined" for b in alpha)
    return (
        f"if {'it is' if one else 'they are'} data{why if count == 4 and dtype == 'uint8' else ''}, clear the flag "
        f"(gdal_edit.py {flags} {path})"
    )


_mask_plans: weakref.WeakKeyDictionary[Any, dict[tuple[int, ...], tuple[str, int] | None]] = weakref.WeakKeyDictionary()


def _mask_plan(ds: Any, indexes: Sequence[int]) -> tuple[str, int] | None:
    """Which own mask `file_mask` reads for bands `indexes` of `ds`: ("alpha", band), ("mask", band) or None.

    A header fact of a read-only handle, kept per handle (weakly: it goes with the handle): finding it reads every
    band's colour interpretation and mask flags, ~10-30 us that each masked window read paid again."""
    key = tuple(indexes)
    try:
        plans = _mask_plans.setdefault(ds, {})
    except TypeError:  # a handle that cannot be weakly referenced: no cache
        plans = None
    if plans is not None and key in plans:
        return plans[key]
    extra = [b for b in alpha_bands(ds) if b not in key]
    plan = ("alpha", extra[0]) if extra else ("mask", key[0]) if own_mask(ds, key[0]) else None
    if plans is not None and getattr(ds, "mode", None) == "r":  # an r+/w handle's flags may still change
        plans[key] = plan
    return plan


def file_mask(ds: Any, indexes: Sequence[int], window: Any = None, out_shape: Any = None) -> np.ndarray | None:
    """The valid pixels [h,w] of `ds`'s own mask (None: it has none): an alpha band not read as data (RGBA read
    as RGB, the alpha band a WarpedVRT adds), else GDAL's internal/external mask of the first band read."""
    plan = _mask_plan(ds, indexes)
    if plan is None:
        return None
    kind, band = plan
    if kind == "alpha":
        return ds.read(band, window=window, out_shape=out_shape) > 0
    return ds.read_masks(band, window=window, out_shape=out_shape) > 0


def declared_scaling(ds: Any, indexes: Sequence[int]) -> tuple[tuple[float, ...], tuple[float, ...]] | None:
    """(scales, offsets) an open raster declares for bands `indexes` (GDAL `<Scale>`/`<Offset>`, rasterio's
    `ds.scales`/`ds.offsets`: physical value = DN * scale + offset), or None when every band read has 1 and 0,
    GDAL's value for "none declared". A band of 1/0 beside declaring ones keeps 1/0 (e.g. a class band next to
    scaled reflectance), as GDAL reads it. Header only: call it once per file, not per window."""

    def value(values: Any, band: int, default: float) -> float:
        v = values[band - 1] if values is not None and 0 < band <= len(values) else None
        return default if v is None or not math.isfinite(float(v)) else float(v)

    scales = tuple(value(ds.scales, b, 1.0) for b in indexes)
    offsets = tuple(value(ds.offsets, b, 0.0) for b in indexes)
    if all(s == 1.0 for s in scales) and all(o == 0.0 for o in offsets):
        return None
    return scales, offsets


def format_rule(scales: Sequence[float], offsets: Sequence[float]) -> str:
    """A DN rule for messages: "DN * 0.0001 - 0.1", per band in brackets when the bands differ."""

    def one(values: Sequence[float]) -> str:
        if len(set(values)) == 1:
            return f"{values[0]:g}"
        return "[" + ", ".join(f"{v:g}" for v in values) + "]"

    off = one(offsets)
    sign = "- " + off[1:] if off.startswith("-") else "+ " + off
    return f"DN * {one(scales)} {sign}"


@functools.lru_cache(maxsize=256)
def _band_types(dtypes: tuple[str, ...], indexes: tuple[int, ...]) -> tuple[np.dtype, bool]:
    """(read dtype, whether every band read has it) of bands `indexes` given a file's `dtypes`: a pure function of
    the header, cached because every window read asks (rasterio rebuilds `ds.dtypes` and numpy's `result_type`
    costs microseconds, per call). GDAL's CInt16, which rasterio names 'complex_int16' (no numpy type) and reads
    as complex64, is complex64 here: the index named such a file unreadable ("TypeError: data type 'complex_int16'
    not understood; re-download it") instead of refusing complex data in its own line."""
    types = [np.dtype("complex64" if dtypes[i - 1] == "complex_int16" else dtypes[i - 1]) for i in indexes]
    dtype = np.result_type(*types)
    return dtype, all(t == dtype for t in types)


def read_dtype(ds: Any, indexes: Sequence[int]) -> np.dtype:
    """The data type bands `indexes` of `ds` are read in: theirs, or the smallest holding every one's values when
    they differ (a `data stack` VRT of uint16 reflectance and a uint8 classification band)."""
    return _band_types(tuple(ds.dtypes), tuple(indexes))[0]


def read_bands(ds: Any, indexes: Sequence[int], **kwargs: Any) -> np.ndarray:
    """`ds.read(indexes, **kwargs)` [C,h,w] in `read_dtype`: band by band when the bands' data types differ, which
    rasterio refuses to read in one call ("more than one 'dtype' found")."""
    dtype, uniform = _band_types(tuple(ds.dtypes), tuple(indexes))
    if uniform:
        return ds.read(list(indexes), **kwargs)
    return np.stack([ds.read(i, out_dtype=dtype, **kwargs) for i in indexes])


def own_mask(ds: Any, band: int) -> bool:
    """Whether GDAL's mask of `band` is the file's own (an internal/external mask or an alpha band), not one derived
    from a nodata value (geodino's rule is `valid_pixels`: every band nodata, not band `band` alone) or all valid."""
    return any(f.name in ("per_dataset", "alpha") for f in ds.mask_flag_enums[band - 1])


def target_grid(src: Any, dst_crs: Any, res: tuple[float, float] | None) -> tuple[Any, int, int]:
    """(transform, width, height) of `src` reprojected onto `dst_crs`, aligned to multiples of `res` when given."""
    from rasterio.warp import aligned_target, calculate_default_transform

    kwargs = {"resolution": res} if res else {}
    transform, width, height = calculate_default_transform(
        src.crs, dst_crs, src.width, src.height, *src.bounds, **kwargs
    )
    if res:  # snap to a grid aligned on multiples of res, so tiles of neighbouring scenes line up
        transform, width, height = aligned_target(transform, width, height, res)
    return transform, int(width), int(height)


# ------------------------------------------------------------------------------------------------------------------
# Window reads
# ------------------------------------------------------------------------------------------------------------------
def read_window(
    ds: Any,
    indexes: Sequence[int],
    col: int,
    row: int,
    width: int,
    height: int,
    *,
    nodata: float | None = None,
    use_mask: bool = False,
) -> tuple[np.ndarray, np.ndarray]:
    """Read a window that may run past the raster edges (boundless), returning (data [C,h,w], valid [h,w]).

    Only the part inside the raster is read (one `read` call, no boundless VRT); the rest is filled with
    `nodata` (or 0) and marked invalid. Validity is `geodino.data.validity.valid_pixels` (every band nodata, or
    any band NaN or +/-inf), and, when `use_mask`, the file's own mask (`file_mask`: an alpha band, or GDAL's mask
    flags per_dataset/alpha: a real mask, not one derived from nodata) on top of `nodata`, which may come
    from the sensor or the user: a nodata value other than the file's does not make its mask wrong.
    """
    from rasterio.windows import Window

    c0, r0 = max(col, 0), max(row, 0)
    c1, r1 = min(col + width, ds.width), min(row + height, ds.height)
    inside = c1 > c0 and r1 > r0
    full = inside and c0 == col and r0 == row and c1 == col + width and r1 == row + height
    if full:  # the common case: one read, nothing to fill
        data = read_bands(ds, indexes, window=Window(col, row, width, height))
    else:
        dtype = read_dtype(ds, indexes)
        fill = 0 if nodata is None or math.isnan(nodata) or not nodata_fits(nodata, dtype) else nodata
        data = np.full((len(indexes), height, width), fill, dtype=dtype)
        if inside:
            data[:, r0 - row : r1 - row, c0 - col : c1 - col] = read_bands(
                ds, indexes, window=Window(c0, r0, c1 - c0, r1 - r0)
            )
    valid = valid_pixels(data, nodata, band_axis=0)
    if not full:
        inside_mask = np.zeros((height, width), dtype=bool)
        if inside:
            inside_mask[r0 - row : r1 - row, c0 - col : c1 - col] = True
        valid &= inside_mask
    if use_mask and inside:
        m = file_mask(ds, indexes, window=Window(c0, r0, c1 - c0, r1 - r0))
        if m is not None:
            valid[r0 - row : r1 - row, c0 - col : c1 - col] &= m
    return data, valid


# ------------------------------------------------------------------------------------------------------------------
# Stream ids: one seed stream per named source
# ------------------------------------------------------------------------------------------------------------------
def stream_id(name: str) -> int:
    """A stable integer for a source name (seeds differ between sources that share the global seed)."""
    import zlib

    return zlib.crc32(name.encode())
