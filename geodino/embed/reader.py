"""Reading a feature raster written by `geodino embed` (COG, GeoTIFF or Zarr store): `EmbeddingReader` (float32
features + validity, int8 dequantised) and `read_store_info` (a store's shape, dtype, grid, band names, attributes).

The products, classify and change read through it. Kept apart from the writers (`geodino.embed.writers`), which
use only `read_store_info` (to copy a store into a COG); the stored encoding is `geodino.embed.encoding`.

A feature raster damaged after it was written (a COG cut short, a Zarr chunk file deleted or overwritten) is one
`damaged_raster` line naming the file, the cells that do not read when known, and what to do (write it again with
the `geodino embed` command that made it, which the file's own record names): `require_features` looks before any
work (`writers.damage_of`: the end of the file, the chunk files), `read` names the window a deeper fault is in.
A tile overwritten with bytes that still decode (no checksum sees it) reads as garbage: `read` refuses values no
backbone gives (not finite, beyond +/-`FEATURE_LIMIT`) in the same line, naming the tile, so no product fits PCA,
k-means or a classifier on them; `fitting` says a fit that fails on the numbers alike.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from geodino.embed.encoding import INT8_NODATA, VAR, dequantize_int8
from geodino.errors import InputError, one_line, plural


def read_store_info(path: str | Path) -> dict[str, Any]:
    """Shape, dtype, CRS, transform, band names and geodino attributes of a feature store (read with zarr and
    rasterio: `geodino.embed.store_info`, without the import of xarray + dask)."""
    from geodino.embed.store_info import read_store_info as read

    return read(path)


def _missing_raster(path: Path) -> str:
    """Why a feature raster is not there: scenes in several CRSs get one mosaic per CRS (`mosaic_EPSG_32633.vrt`
    next to the `mosaic.vrt` the user asked for), so name those when they exist."""
    siblings = sorted(path.parent.glob(f"{path.stem}_*{path.suffix}")) if path.suffix and path.parent.is_dir() else []
    if siblings:
        names = ", ".join(p.name for p in siblings[:6]) + (" ..." if len(siblings) > 6 else "")
        return (
            f"feature raster {path} does not exist, but {path.parent} holds {names}: scenes in several CRSs get one "
            f"mosaic per CRS; pass one of them (e.g. {siblings[0]})"
        )
    return f"feature raster {path} does not exist; make one with `geodino embed`"


FEATURE_MARKERS = ("model_spec", "model_fingerprint")  # metadata keys every `geodino embed` output records


def gdal_detail(exc: BaseException, path: str | Path | None = None) -> str:
    """The root of a GDAL read error, one line: rasterio raises "Read failed. See previous exception for details."
    and chains GDAL's own messages behind it (`__cause__`), the deepest of which says what failed ("got 74691 bytes,
    expected 151876", "Decompression of tile .../embedding/0.3.2 failed"); the file a shallower one names ("s1.tif,
    band 1: IReadBlock failed ...": a mosaic's scene) is put in front when it is not `path` itself."""
    lines, seen = [], set()
    e: BaseException | None = exc
    while e is not None and id(e) not in seen:
        seen.add(id(e))
        text = str(e).strip()
        if text:  # rasterio gives each GDAL message its own exception of the chain: their first lines are all
            lines.append(text.splitlines()[0])
        e = e.__cause__ or e.__context__
    detail = lines[-1] if lines else type(exc).__name__
    detail = detail.replace(" at row 4294967295, col 4294967295,", "")  # libtiff's -1: no row or column
    for line in lines[:-1]:
        m = re.match(r"(.+?), band \d+: ", line)
        if m and m.group(1) not in detail and (path is None or Path(m.group(1)).resolve() != Path(path).resolve()):
            detail = f"{m.group(1)}: {detail}"
            break
    return detail if len(detail) <= 200 else detail[:197] + "..."


def damaged_raster(path: str | Path, why: str, metadata: dict[str, Any] | None = None, window: Any = None) -> str:
    """The one line for a feature raster that does not read as written (truncated, a chunk missing or garbled):
    the file, where (`window`, a rasterio Window, when known), why, and what to do. A finished output is complete,
    so `--resume` has nothing to finish there (it says the output is damaged): the remedy is the `geodino embed`
    command that made it, with --overwrite; the input and backbone its record names (`metadata`) are given when
    known. Without the record (the header itself lost) the file may not be geodino's: the remedy is conditional."""
    where = ""
    if window is not None:
        r0, c0 = int(window.row_off), int(window.col_off)
        where = f" at rows {r0}..{r0 + int(window.height)}, columns {c0}..{c0 + int(window.width)}"
    meta = metadata or {}
    source, spec = meta.get("input"), meta.get("model_spec")
    again = "write it again (the `geodino embed` command that made it, with --overwrite)"
    if source and spec:
        again = (
            f"write it again (geodino embed {source} --backbone {spec} --out {path} --overwrite, with the options it "
            "was made with)"
        )
    elif not any(meta.get(k) for k in FEATURE_MARKERS):
        again = f"if `geodino embed` wrote it, {again}"
    return (
        f"cannot read feature raster {path}{where} ({why}): the file is truncated or corrupt (cut short or changed "
        f"after it was written); {again} and run this command again"
    )


FEATURE_LIMIT = 1e6
"""The largest feature magnitude `read` takes as a backbone's: final-norm tokens are of order 1 to 10 (unit length
with --l2, int8 codes dequantise to [-1, 1]) and float16 files stop at 65504, while a float32 tile whose bytes were
overwritten reads as values spread over every exponent (up to 3e38, inf), two in five of them beyond a million."""

NON_FINITE_FIT = re.compile(r"contains (NaN|infinity)")  # sklearn's check_array: "Input X contains infinity or ..."


def garbled_values(feats: np.ndarray) -> tuple[int, int, str] | None:
    """(row, column, value) of the first cell of `feats` [D,h,w] holding a value no backbone gives (not finite, or
    beyond +/-`FEATURE_LIMIT`), or None. Two reductions (no copy) in the common case: nothing found."""
    if not feats.size:
        return None
    with np.errstate(invalid="ignore"):
        lo, hi = feats.min(), feats.max()  # NaN and +/-inf propagate
    if -FEATURE_LIMIT <= lo and hi <= FEATURE_LIMIT:
        return None
    bad = ~(np.abs(feats) <= FEATURE_LIMIT)  # NaN too
    band, r, c = (int(i[0]) for i in np.nonzero(bad))
    return r, c, f"{float(feats[band, r, c]):.3g}"


@contextmanager
def fitting(path: str | Path, metadata: dict[str, Any] | None, what: str) -> Iterator[None]:
    """Turn a fit (PCA, k-means, a classifier) that fails on the numbers of a feature raster into its one
    `damaged_raster` line: numpy's LinAlgError ("Eigenvalues did not converge", "SVD did not converge") and
    sklearn's ValueError about non-finite input come from values `read` lets pass only when they are damage it
    cannot see. Other errors, sklearn's other ValueErrors included, are bugs and pass unchanged."""
    try:
        yield
    except np.linalg.LinAlgError as exc:
        raise InputError(damaged_raster(path, f"{what} failed on its values: {exc}", metadata)) from exc
    except ValueError as exc:
        if not NON_FINITE_FIT.search(str(exc)):
            raise
        first = str(exc).splitlines()[0]  # sklearn's later lines suggest other estimators and imputers: not ours
        raise InputError(damaged_raster(path, f"{what} failed on its values: {first}", metadata)) from exc


TIFF_MAGIC = (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+")  # classic and BigTIFF, both byte orders


def _written_as_raster(path: Path) -> bool:
    """Whether `path` was written as a raster `geodino embed` writes (a Zarr store, a TIFF), so that GDAL failing
    to open it means damage rather than a file of another kind (a GeoPackage passed by mistake)."""
    if path.is_dir():
        return True
    try:
        with open(path, "rb") as f:
            return f.read(4) in TIFF_MAGIC
    except OSError:
        return False


def _refuse_plain_folder(path: Path) -> None:
    """A folder that is no Zarr store (no `.zarr` name, no Zarr metadata): one line saying so; it was read as a
    damaged store ("the file is truncated or corrupt ... write it again")."""
    if path.suffix.lower() != ".zarr" and not any((path / m).exists() for m in (".zgroup", "zarr.json", ".zattrs")):
        raise InputError(
            f"feature raster {path} is a folder, not a Zarr store (no .zgroup or zarr.json in it); pass a feature "
            "raster file or .zarr store written by `geodino embed` (of a many-scene run: one of its rasters, or its "
            "mosaic.vrt)"
        )


def interior_cells(valid: np.ndarray) -> np.ndarray:
    """Valid cells [h, w] whose 8 neighbours are valid too: a cell next to nodata may be partly nodata itself (a
    scene edge through its patch, the nodata filled before the backbone saw it), which the feature raster does not
    record. Beyond the array's edges counts as valid (the raster's edge; a block's first and last rows, read as
    context, are cut off by the caller)."""
    v = np.pad(np.asarray(valid, bool), 1, constant_values=True)
    h, w = v.shape[0] - 2, v.shape[1] - 2
    out = np.ones((h, w), bool)
    for dy in range(3):
        for dx in range(3):
            out &= v[dy : dy + h, dx : dx + w]
    return out


class EmbeddingReader:
    """Read a feature raster written by geodino (COG, GeoTIFF or Zarr) as float32 features + validity.

    int8 files are dequantised (and re-normalised) with the rule stored in their metadata; a cell with NaN (or
    -128) in any band is invalid. Used by the products (PCA, clusters, similarity, zonal statistics, classify,
    change), which open it with `require_features` so that a raster `geodino embed` did not write is refused.
    """

    def __init__(self, path: str | Path) -> None:
        import rasterio

        self.path = str(path)
        if not Path(self.path).exists():
            raise InputError(_missing_raster(Path(self.path)))
        gdal_path = self.path
        if Path(self.path).is_dir():
            _refuse_plain_folder(Path(self.path))
            gdal_path = f'ZARR:"{Path(self.path).resolve()}":/{VAR}'
        try:
            with warnings.catch_warnings(record=True) as opened:
                if gdal_path != self.path:  # a store one cell wide or high: placed from `spatial_ref` below
                    warnings.simplefilter("ignore", rasterio.errors.NotGeoreferencedWarning)
                self.src = rasterio.open(gdal_path)
        except rasterio.errors.RasterioIOError as exc:
            if _written_as_raster(Path(self.path)):  # a TIFF or store whose header does not read: damaged
                raise InputError(damaged_raster(self.path, gdal_detail(exc, self.path))) from exc
            raise InputError(f"cannot read feature raster {self.path}: {one_line(exc)}") from exc
        self._replay(opened)
        self.crs, self.transform = self.src.crs, self.src.transform
        if Path(self.path).is_dir():
            try:
                info = read_store_info(self.path)
            except (OSError, ValueError, KeyError, TypeError) as exc:  # zarr's and JSON's errors of a damaged store
                self.src.close()
                why = one_line(exc)
                raise InputError(damaged_raster(self.path, why)) from exc
            attrs = info["attrs"]
            # the store's own record (`spatial_ref`): for a store one cell wide or high, written before such outputs
            # were refused, GDAL gives the identity transform (see `check_zarr_grid`)
            self.transform = info["transform"]
            self.crs = info["crs"] if info["crs"] is not None else self.src.crs
        else:
            attrs = {k[len("GEODINO_") :].lower(): v for k, v in self.src.tags().items() if k.startswith("GEODINO_")}
        self.metadata: dict[str, Any] = attrs
        self.dtype = str(attrs.get("dtype", self.src.dtypes[0]))
        self.count, self.height, self.width = self.src.count, self.src.height, self.src.width

    def _replay(self, opened: list[warnings.WarningMessage]) -> None:
        """Pass on the warnings rasterio gave while opening the file, except "no geotransform" of a damaged one: a
        header cut short loses the geotransform tags too, and that warning came before the one line
        (`damaged_raster`) saying the file is damaged. Only then is the file checked (`writers.damage_of`)."""
        import rasterio.errors

        unplaced = [w for w in opened if issubclass(w.category, rasterio.errors.NotGeoreferencedWarning)]
        if unplaced:
            from geodino.embed.writers import damage_of  # writers imports this module

            if damage_of(self.path) is not None:
                opened = [w for w in opened if w not in unplaced]
        for w in opened:
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno, source=w.source)

    def require_features(self) -> EmbeddingReader:
        """This reader, or (closed) a one-line InputError when the raster was not written by `geodino embed`: the
        products would map a plain RGB GeoTIFF or a DEM as if its pixel values were features and say nothing.
        Every feature raster, Zarr store and scene mosaic carries the backbone record (GEODINO_MODEL_SPEC and
        GEODINO_MODEL_FINGERPRINT tags, `model_spec` attributes); one of the two is enough. A raster damaged after it
        was written (`writers.damage_of`: cut short, a chunk file missing) is one line too (`damaged_raster`)."""
        from geodino.embed.writers import damage_of  # writers imports this module

        why = damage_of(self.path)  # cheap (the chunk files, the last tile): a deeper fault is named by `read`
        if why is not None:  # before the record: a header cut short loses the GEODINO_ tags too
            where = None
            if "See previous exception" in why:  # rasterio's wrapper line: GDAL's own (a VRT's scene file) is behind
                where, detail = self._bad_block(None, last_first=True)
                why = detail or why
            self.close()
            raise InputError(damaged_raster(self.path, why, self.metadata, where))
        if any(self.metadata.get(k) not in (None, "") for k in FEATURE_MARKERS):
            return self
        self.close()
        raise InputError(
            f"{self.path} is not a feature raster from `geodino embed` "
            f"({plural(self.count, self.src.dtypes[0] + ' band')}, no "
            f"GEODINO_MODEL_SPEC metadata); run `geodino embed {self.path} --backbone SPEC --out features.tif` first "
            "and pass features.tif"
        )

    def close(self) -> None:
        self.src.close()

    def __enter__(self) -> EmbeddingReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def read(self, window: Any = None, out_shape: tuple[int, int] | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(features [D,h,w] float32, valid [h,w] bool) for a rasterio window (None: everything); a window that does
        not decode is one InputError line (`damaged_raster`) naming it."""
        import rasterio.errors

        kw: dict[str, Any] = {"window": window}
        if out_shape is not None:
            kw["out_shape"] = (self.count, *out_shape)
        try:
            raw = self.src.read(**kw)
        except rasterio.errors.RasterioError as exc:  # a tile or chunk that does not decode: truncated, overwritten
            where, detail = (window, None) if out_shape is not None else self._bad_block(window)
            why = detail or gdal_detail(exc, self.path)
            raise InputError(damaged_raster(self.path, why, self.metadata, where)) from exc
        if self.dtype == "int8" or raw.dtype == np.int8:
            valid = ~np.any(raw == INT8_NODATA, axis=0)  # -128 is no code (codes are -127..127)
            feats = dequantize_int8(raw, renormalize=True)
        else:
            feats = raw.astype(np.float32, copy=False)
            valid = ~np.any(np.isnan(feats), axis=0)
        feats = np.where(valid[None], feats, 0.0).astype(np.float32)
        self._check_values(feats, window, out_shape)
        return feats, valid

    def _check_values(self, feats: np.ndarray, window: Any, out_shape: tuple[int, int] | None) -> None:
        """Refuse values no backbone gives (`garbled_values`: +/-inf, beyond +/-`FEATURE_LIMIT`) in one
        `damaged_raster` line naming the storage block (COG tile, Zarr chunk) of the first: bytes overwritten inside
        a tile that still decode. PCA said "Eigenvalues did not converge", k-means and similarity maps went on with
        overflow warnings and garbage."""
        found = garbled_values(feats)
        if found is None:
            return
        from rasterio.windows import Window

        r, c, value = found
        where, at = None, ""
        if out_shape is None:  # full resolution: the cell, and the block that holds it
            win = window if window is not None else Window(0, 0, self.width, self.height)
            r, c = r + int(win.row_off), c + int(win.col_off)
            bh, bw = self.src.block_shapes[0]
            r0, c0 = r - r % bh, c - c % bw
            where, at = Window(c0, r0, min(bw, self.width - c0), min(bh, self.height - r0)), f" at row {r}, column {c}"
        why = f"values no backbone gives, e.g. {value}{at}: not finite or beyond +/-{FEATURE_LIMIT:g}"
        raise InputError(damaged_raster(self.path, why, self.metadata, where))

    def fitting(self, what: str) -> Any:
        """`fitting` for this raster: a fit on its features that fails on their numbers is its one line."""
        return fitting(self.path, self.metadata, what)

    def _bad_block(self, window: Any, *, last_first: bool = False) -> tuple[Any, str | None]:
        """The first storage block (COG tile, Zarr chunk) inside `window` (None: the raster; `last_first`: from the
        end) that does not read, and GDAL's message for it, for the error line (a row block of `blocks` spans
        many); (`window`, None) when each reads alone."""
        import rasterio.errors
        from rasterio.windows import Window

        win = window if window is not None else Window(0, 0, self.width, self.height)
        r0, c0 = int(win.row_off), int(win.col_off)
        r1, c1 = r0 + int(win.height), c0 + int(win.width)
        bh, bw = self.src.block_shapes[0]
        starts = [(r, c) for r in range(r0 - r0 % bh, r1, bh) for c in range(c0 - c0 % bw, c1, bw)]
        for r, c in reversed(starts) if last_first else starts:
            block = Window(c, r, min(bw, self.width - c), min(bh, self.height - r))
            try:
                self.src.read(1, window=block)
            except rasterio.errors.RasterioError as exc:
                return block, gdal_detail(exc, self.path)
        return window, None

    def blocks(self, budget_bytes: int = 64 * 2**20) -> Any:
        """Row windows covering the raster, each at most ~`budget_bytes` of float32 features (streaming products)."""
        from rasterio.windows import Window

        rows = max(1, min(self.height, budget_bytes // max(1, self.width * self.count * 4)))
        for r in range(0, self.height, rows):
            yield Window(0, r, self.width, min(rows, self.height - r))

    def sample(self, n: int, seed: int = 0, *, interior: bool = False) -> np.ndarray:
        """Up to `n` valid cell vectors `[n, D]`, spread over the raster: each cell drawn with probability
        4n / cells (read at full resolution in row blocks), then a random draw of `n` of the valid ones.
        `interior`: only cells whose 8 neighbours are valid too (`interior_cells`), when at least 1 % (and 3) of the
        cells drawn are; else every valid cell (a raster of thin strips has no interior to fit on).

        Not a decimated read (`out_shape`): GDAL serves that from the COG's overviews, whose float levels are 2x2
        means of the vectors (`writers.downsample2`), so PCA and k-means were fitted on blurred vectors no cell
        holds (a two-class checkerboard sampled as its mean only: every PCA value saturated), and a COG gave other
        products than the same features in Zarr. Random cells, not every k-th: a lattice aliases periodic
        patterns (crop rows, orchards; every other cell of a checkerboard is one class)."""
        from rasterio.windows import Window

        share = min(1.0, 4 * n / max(self.height * self.width, 1))
        rng = np.random.default_rng(seed)
        parts, inner = [], []
        for win in self.blocks():
            r0, r1 = int(win.row_off), int(win.row_off + win.height)
            if interior:  # one row more each side (within the raster), for the neighbours across the block edge
                a, b = max(0, r0 - 1), min(self.height, r1 + 1)
                f, valid = self.read(Window(0, a, self.width, b - a))
                core = interior_cells(valid)[r0 - a : r1 - a]
                f, valid = f[:, r0 - a : r1 - a], valid[r0 - a : r1 - a]
            else:
                f, valid = self.read(win)
                core = valid
            pick = valid & (rng.random(valid.shape) < share) if share < 1 else valid
            parts.append(f[:, pick].T)
            inner.append(core[pick])
        if interior and parts:
            keep = np.concatenate(inner)
            if keep.sum() >= max(3, len(keep) // 100):  # else mostly edge: every valid cell
                parts = [np.concatenate(parts)[keep]]
        vecs = np.concatenate(parts) if parts else np.zeros((0, self.count), np.float32)
        if len(vecs) > n:
            vecs = vecs[rng.choice(len(vecs), n, replace=False)]
        return vecs
