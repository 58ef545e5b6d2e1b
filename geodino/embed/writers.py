"""Writers of feature rasters: a chunked GeoZarr (Zarr v2) store and a COG.

The pipeline always writes into a Zarr v2 store (`geodino.embed.store_create`: dims band/y/x, CF grid mapping,
chunks holding whole pixel vectors; the files xarray + rioxarray write, without their import): Zarr lets several
processes write disjoint chunk-aligned blocks of one store and a killed run rewrite only its unfinished blocks.
Zarr v2 (not v3) because GDAL, hence rasterio and QGIS, reads v2 stores with their CRS and transform and fails on
v3 ("Unsupported codec: bytes").
A `.tif` output is made from the finished store in streaming passes (chunks -> a GeoTIFF, 2x overview levels
computed here -> GDAL's COG driver with ZSTD, NaN or -128 nodata, band descriptions, metadata); see `store_to_cog`.

The stored encoding (variable name, dtypes, nodata, int8 quantisation) is in `geodino.embed.encoding`, reading in
`geodino.embed.reader`, the empty store in `geodino.embed.store_create`; all are re-exported here.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np

from geodino.embed.encoding import (
    DEQUANT_RULE,
    DTYPES,
    INT8_NODATA,
    INT8_SCALE,
    VAR,
    dequantize_int8,
    encode,
    flatten_meta,
    int8_error_bound,
    nodata_of,
    quantize_int8,
)
from geodino.embed.reader import FEATURE_MARKERS, EmbeddingReader, read_store_info
from geodino.embed.store_create import create_store
from geodino.errors import InputError, plural

__all__ = [
    "DEQUANT_RULE",
    "DTYPES",
    "FEATURE_MARKERS",
    "INT8_NODATA",
    "INT8_SCALE",
    "VAR",
    "ChunkRowWriter",
    "EmbeddingReader",
    "StoreReadError",
    "ZarrBlockWriter",
    "check_zarr_grid",
    "cog_blocksize",
    "create_store",
    "damage_of",
    "dequantize_int8",
    "downsample2",
    "encode",
    "finalize_store",
    "flatten_meta",
    "int8_error_bound",
    "missing_chunks",
    "nodata_of",
    "overview_shapes",
    "quantize_int8",
    "read_store_info",
    "remove_tree",
    "store_to_cog",
    "write_gdal_band_names",
]


def check_zarr_grid(out: str | Path, height: int, width: int, unit: str = "cells") -> None:
    """Refuse a GeoZarr output one cell wide or high, before any work: GDAL (hence rasterio, QGIS and the
    `geodino embed` products) reads a Zarr store's geotransform only from its 1-D x/y coordinate arrays, as their
    regular spacing, which one value does not give; such a store opens at the identity transform, in the wrong
    place. GDAL 3.10 reads no attribute instead: not the `GeoTransform` rioxarray writes on `spatial_ref`, nor the
    `spatial:transform` / `gdal:geotransform` of the GeoZarr conventions (checked). A COG carries the transform."""
    if height > 1 and width > 1:
        return
    out = Path(out)
    raise InputError(
        f"output {out} would be {width} x {height} {unit} (width x height): GDAL (rasterio, QGIS, `geodino embed "
        f"pca/similar`) reads a Zarr store's placement from its x/y coordinates, which one {unit[:-1]} across does "
        f"not give, so the store would not be georeferenced; write a COG instead (--out {out.with_suffix('.tif')}, "
        "out= in Python)"
    )


class ZarrBlockWriter:
    """Writes `[D,h,w]` arrays at cell offsets into the `embedding` array of a store (direct zarr, no xarray)."""

    def __init__(self, path: str | Path) -> None:
        import zarr

        # Write every chunk, including all-nodata ones: by default zarr first compares each chunk with the fill
        # value, which for float16 features cost more than the write itself (82 against 32 ms per 24-row write
        # into a 384 x 128 x 128 chunk; float32 and int8 gain 6-12 %). With the forward taken out (a GPU's case) the
        # writer thread was busy for 8.1 of an 8k float16 raster's 8.4 s sweep on 2 cores. An all-nodata chunk
        # stored compresses to almost nothing and reads back the same as a missing one. The setting is zarr's
        # global one, read when the array opens (Array.with_config exists only from zarr 3.1.6; 3.1.0 is the bound).
        with zarr.config.set({"array.write_empty_chunks": True}):
            self.array = zarr.open_array(str(Path(path) / VAR), mode="r+", zarr_format=2)

    def write(self, r0: int, c0: int, data: np.ndarray) -> None:
        """Write one chunk column at a time: zarr decodes, merges and re-encodes every chunk a write touches
        at once (up to its async concurrency), so one wide write held several chunks' buffers together and
        the writer's memory grew with the column-block width (found by the 16k vs 4k RSS benchmark)."""
        _, h, w = data.shape
        step = int(self.array.chunks[2])
        x = c0
        while x < c0 + w:
            x1 = min((x // step + 1) * step, c0 + w)
            self.array[:, r0 : r0 + h, x:x1] = data[:, :, x - c0 : x1 - c0]
            x = x1


class ChunkRowWriter:
    """Writes rows that arrive in order (a sweep's tile rows) a chunk row at a time: the rows of an unfinished chunk
    row are held here and stored when it is complete, so each chunk is encoded once.

    Rows went straight to the store before, a tile row (24 cells for 512-px tiles with overlap 128) into chunks 128
    cells high: zarr decoded, merged and re-encoded every chunk ~5 times (the writer thread's 3.8 of a 4.3-s float16
    sweep of an 8k raster on 2 cores, and the bound of a GPU run). `stored_to` says up to which row the current
    column range is in the store (the rows a progress record may claim); `flush` stores the held rows now (a partial
    chunk row: zarr merges them with what the chunks hold). One chunk row of the column range is held (its buffer is
    allocated once and reused): at most `max_block_cols` cells wide, whatever the raster's size."""

    def __init__(self, path: str | Path) -> None:
        self.direct = ZarrBlockWriter(path)
        _, self.height, _ = (int(n) for n in self.direct.array.shape)
        self.chunk = int(self.direct.array.chunks[1])
        self._mem: np.ndarray | None = None
        self.c0 = self.width = -1  # column range of the rows below
        self.start = self.end = 0  # held rows [start, end) of the chunk row at `top`; start == end: none held
        self.top = 0
        self.held_since = 0.0  # time.monotonic() when the first held row arrived

    @property
    def stored_to(self) -> int:
        """Rows of the current column range up to this one (exclusive) are in the store."""
        return self.start

    @property
    def held(self) -> bool:
        """Rows are held that are not in the store yet."""
        return self.start < self.end

    def add(self, r0: int, c0: int, data: np.ndarray) -> None:
        """Take rows `[r0, r0 + h)` of columns `[c0, c0 + w)`; store every chunk row they complete. Rows that do not
        continue the held ones (another column range, a gap) first store those."""
        import time

        _, h, w = data.shape
        if (c0, w) != (self.c0, self.width) or r0 != self.end:
            self.flush()
            self.c0, self.width, self.start = c0, w, r0
        y = r0
        while y < r0 + h:
            top = y // self.chunk * self.chunk
            bottom = min(top + self.chunk, self.height)
            e = min(r0 + h, bottom)
            if self.start == y and e == bottom:  # a chunk row's rest in one piece: no copy
                self.direct.write(y, c0, data[:, y - r0 : e - r0])
                self.start = e
            else:
                if self.start == y:  # the first rows held of this chunk row
                    self.top, self.held_since = top, time.monotonic()
                    shape = (data.shape[0], self.chunk, w)
                    if self._mem is None or self._mem.shape != shape or self._mem.dtype != data.dtype:
                        self._mem = np.empty(shape, data.dtype)
                assert self._mem is not None  # allocated when this chunk row's first held rows came (above)
                self._mem[:, y - top : e - top] = data[:, y - r0 : e - r0]
                if e == bottom:
                    self.direct.write(self.start, c0, self._mem[:, self.start - top : e - top])
                    self.start = e
            y = e
        self.end = r0 + h

    def flush(self) -> None:
        """Store the held rows (if any) now."""
        if self.held and self._mem is not None:
            self.direct.write(self.start, self.c0, self._mem[:, self.start - self.top : self.end - self.top])
        self.start = self.end


def missing_chunks(store: str | Path) -> list[str]:
    """Keys of the chunks of a store's `embedding` array whose files are absent (every chunk is written, also an
    all-nodata one: see `ZarrBlockWriter`), from its `.zarray`; a missing `.zarray` is reported as itself."""
    array = Path(store) / VAR
    try:
        meta = json.loads((array / ".zarray").read_text())
    except (OSError, ValueError):
        return [f"{VAR}/.zarray"]
    sep = meta.get("dimension_separator") or "."
    grid = [range(-(-int(n) // int(c))) for n, c in zip(meta["shape"], meta["chunks"], strict=True)]
    import itertools

    keys = (sep.join(map(str, idx)) for idx in itertools.product(*grid))
    return [k for k in keys if not (array / k).is_file()]


def damage_of(path: str | Path) -> str | None:
    """What is wrong with a finished feature raster, cheaply (None: nothing found): a Zarr store's metadata or
    chunk files missing; a GeoTIFF that does not open, is shorter than its last full-resolution tile's end (a
    truncated copy) or whose last tile does not decode. Not a full read: a chunk damaged inside is not seen.
    Quiet: a header cut short loses the geotransform tags too, and rasterio's NotGeoreferencedWarning ("no
    geotransform") came before the caller's one line saying the file is damaged."""
    import warnings

    import rasterio
    from rasterio.windows import Window

    path = Path(path)
    if path.is_dir():
        for meta in (".zmetadata", f"{VAR}/.zarray"):
            if not (path / meta).is_file():
                return f"{meta} is missing"
        missing = missing_chunks(path)
        return f"{plural(len(missing), 'chunk file')} missing, e.g. {VAR}/{missing[0]}" if missing else None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", rasterio.errors.NotGeoreferencedWarning)
            with rasterio.open(path) as src:
                bw, bh = src.block_shapes[0][1], src.block_shapes[0][0]
                nx, ny = -(-src.width // bw), -(-src.height // bh)
                offset = src.get_tag_item(f"BLOCK_OFFSET_{nx - 1}_{ny - 1}", "TIFF", bidx=1)
                size = src.get_tag_item(f"BLOCK_SIZE_{nx - 1}_{ny - 1}", "TIFF", bidx=1)
                if offset and size and int(offset) + int(size) > path.stat().st_size:
                    return f"the file ends at byte {path.stat().st_size} but its last tile at {int(offset) + int(size)}"
                x0, y0 = (nx - 1) * bw, (ny - 1) * bh
                src.read(1, window=Window(x0, y0, src.width - x0, src.height - y0))
    except rasterio.errors.RasterioError as exc:  # RasterioIOError included
        return str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return None


class StoreReadError(InputError):
    """A chunk of a store did not decode (truncated, overwritten): the caller names the folder and what to do."""


GDAL_VIEW = f"AsClassicDataset(2,1) view of /{VAR}"
"""The name under which GDAL (3.10) keeps the PAM of the band/y/x array it opens as a raster (bands along `band`)."""


def finalize_store(tmp: str | Path) -> None:
    """Consolidate metadata of a finished store (so xarray and GDAL open it in one read) and give GDAL its band
    names (`write_gdal_band_names`)."""
    import zarr

    zarr.consolidate_metadata(str(tmp), zarr_format=2)
    write_gdal_band_names(tmp)


def write_gdal_band_names(store: str | Path) -> None:
    """Write the band names as band descriptions into GDAL's PAM file of the feature array,
    `embedding/.zarray.aux.xml`. GDAL's Zarr driver reads no Zarr attribute as a band description (the `band`
    coordinate becomes each band's `DIM_band_VALUE` item, so QGIS listed "Band 001"), but it loads that PAM file
    when it opens the array as a raster (`ZARR:"f.zarr":/embedding` or the folder): gdalinfo, rasterio's
    `descriptions` and QGIS then show E000 ... Zarr and xarray readers ignore the file. A store without the
    `geodino_band_names` attribute is left as it is."""
    import os
    import xml.etree.ElementTree as ET

    root_attrs = Path(store) / ".zattrs"
    try:
        names = json.loads(json.loads(root_attrs.read_text())["geodino_band_names"])
    except (OSError, ValueError, KeyError, TypeError):
        return
    pam = ET.Element("PAMDataset")
    view = ET.SubElement(ET.SubElement(pam, "DerivedDataset", name=GDAL_VIEW), "PAMDataset")
    for i, name in enumerate(names, 1):
        ET.SubElement(ET.SubElement(view, "PAMRasterBand", band=str(i)), "Description").text = str(name)
    ET.indent(pam)
    path = Path(store) / VAR / ".zarray.aux.xml"
    part = path.with_name(path.name + ".part")
    ET.ElementTree(pam).write(part, encoding="utf-8", xml_declaration=False)
    os.replace(part, path)


def cog_blocksize(n_bands: int, itemsize: int) -> int:
    """COG tiles interleave all bands of a pixel (GDAL 3.10's COG driver has no band interleave): keep them small."""
    from geodino.embed.plan import auto_chunk

    return max(64, min(512, auto_chunk(n_bands, itemsize, budget_bytes=8 * 2**20)))


def overview_shapes(height: int, width: int, block: int) -> list[tuple[int, int]]:
    """(height, width) of the 2x overview levels, halved with the odd cell kept (791 -> 396), until one block holds
    the level. This is GDAL's own overview size (`gdaladdo`, rasterio `build_overviews`: ceil(n / 2^k)), and the COG
    driver keeps these levels as given (`OVERVIEWS=FORCE_USE_EXISTING`). The COG driver's OVERVIEWS=AUTO on a plain
    raster rounds down instead (GDAL 3.10: 791 x 717 -> 395 x 358, 197 x 179, ...; it may stop one level earlier):
    rounding up keeps the last odd row and column in every level (`downsample2` averages the cells it has). Overview
    cell j is the mean of source cells 2j and 2j+1; GDAL places a level over the whole extent (cell size
    extent / n), so on an odd side it draws a cell up to one source cell (half an overview cell) off its source
    cells, most at the far edge (as for any level that is not a whole halving)."""
    shapes: list[tuple[int, int]] = []
    h, w = height, width
    while max(h, w) > block:
        h, w = -(-h // 2), -(-w // 2)
        shapes.append((h, w))
    return shapes


def downsample2(data: np.ndarray, nodata: float | int) -> np.ndarray:
    """One 2x overview step of a [D,h,w] block: NaN-aware 2x2 mean (float), or nearest for int8 codes.

    Odd edges: a lone last row or column averages over the cells it has.
    """
    if data.dtype == np.int8:  # companded codes: the upper-left cell of each 2x2 (GDAL `nearest`)
        return np.ascontiguousarray(data[:, ::2, ::2])
    d, h, w = data.shape
    x = data.astype(np.float32, copy=False)
    if not (h % 2 or w % 2 or np.isnan(x).any()):  # no nodata (the common block): the same sum over 4 cells, / 4
        return x.reshape(d, h // 2, 2, w // 2, 2).sum(axis=(2, 4), dtype=np.float32) / np.float32(4)
    if h % 2 or w % 2:
        x = np.pad(x, ((0, 0), (0, h % 2), (0, w % 2)), constant_values=np.nan)
    x = x.reshape(d, x.shape[1] // 2, 2, x.shape[2] // 2, 2)
    ok = ~np.isnan(x)
    n = ok.sum(axis=(2, 4), dtype=np.float32)
    s = np.where(ok, x, 0.0).sum(axis=(2, 4), dtype=np.float32)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(n > 0, s / n, np.float32(nodata)).astype(np.float32)


def store_to_cog(zarr_path: str | Path, out_tif: str | Path, *, cache_mb: int = 128, progress: bool = False) -> int:
    """Copy a finished store into a COG (descriptions, metadata, nodata, overviews) with bounded memory.

    GDAL exposes a (bands, y, x) store as one raster band per feature and builds overviews band by band, so
    with hundreds of bands both a direct `gdal_translate` of the store and GDAL's own overview pass re-decode
    every chunk or block once per band once the data outgrows the block cache (a 16k x 16k input: 23 min to
    convert against 2 min to embed; GDAL overviews alone on a pre-converted GeoTIFF: 3-6 min). So here:
    (1) each Zarr chunk is decoded once and written into a band-interleaved GeoTIFF whose blocks are the
    chunks, and each 2x overview level is computed from the previous one in aligned windows (NaN-aware mean;
    nearest for int8 codes) into its own GeoTIFF; (2) GDAL's COG driver copies level 0 and these overviews
    (through a VRT that also carries band descriptions and metadata) into the final layout with ZSTD level 9.
    Float16 levels are made whole tiles and get their true sizes after the copy (`geodino.embed.cog_edges`: GDAL
    would fill the padding of partial edge tiles with stale memory, so the bytes would differ run to run).
    Memory stays a few chunks whatever the raster size; the intermediates (uncompressed) are removed.
    Returns the valid (not nodata) cells of level 0, counted from the chunks as read (raises `StoreReadError`
    for a chunk that does not decode).
    """
    import rasterio
    import rasterio.shutil
    import zarr
    from rasterio.windows import Window

    from geodino.embed.cog_edges import set_tiff_sizes, whole_blocks
    from geodino.progress import progress_bar

    zarr_path = Path(zarr_path).resolve()
    out_tif = Path(out_tif)
    info = read_store_info(zarr_path)
    dtype = info["dtype"]
    H, W = info["height"], info["width"]
    meta = {"GEODINO_" + k.upper(): str(v) for k, v in info["attrs"].items() if not k.startswith("_")}
    itemsize = 1 if dtype == "int8" else (2 if dtype == "float16" else 4)
    n_bands = len(info["band_names"])
    arr = zarr.open_array(str(zarr_path / VAR), mode="r", zarr_format=2)
    ch, cw = int(arr.chunks[1]), int(arr.chunks[2])
    block = cog_blocksize(n_bands, itemsize)
    nodata: float | int = INT8_NODATA if dtype == "int8" else float("nan")
    gdal_dtype = "int8" if dtype == "int8" else "float32"
    stem = out_tif.name
    # intermediates uncompressed: their ZSTD-1 encode and decode (~1.15x smaller files, removed at the end) cost more
    # than the disk; with `downsample2`'s NaN-free path the conversion of 192 x 192 cells x 192 float32 bands took 0.68x
    # the time (median of 8 alternations, 2 shared cores), and the final copy, whose cache may not hold a block row of
    # a wide raster's intermediate, re-reads blocks instead of decoding them again. The COG's bytes are the same.
    mid_opts: dict[str, Any] = {"compress": "none", "bigtiff": "yes", "interleave": "band"}
    if dtype == "float16":
        mid_opts["nbits"] = 16

    def create(path: Path, h: int, w: int, blk: int, transform: Any) -> Any:
        return rasterio.open(
            path, "w", driver="GTiff", height=h, width=w, count=n_bands, dtype=gdal_dtype, crs=info["crs"],
            transform=transform, nodata=nodata, tiled=True, blockxsize=blk, blockysize=blk, **mid_opts,
        )  # fmt: skip

    def padded(h: int, w: int) -> tuple[int, int]:  # float16: whole COG tiles (see cog_edges)
        return (whole_blocks(h, block), whole_blocks(w, block)) if dtype == "float16" else (h, w)

    def windows(h: int, w: int, sh: int, sw: int) -> list[Window]:
        return [Window(c, r, min(sw, w - c), min(sh, h - r)) for r in range(0, h, sh) for c in range(0, w, sw)]

    # intermediate blocks equal to the chunks (TIFF needs multiples of 16) so every write fills whole blocks
    mid_block = ch if ch == cw and ch % 16 == 0 else block
    levels = overview_shapes(H, W, block)
    ovr_block = 64  # overview intermediates: read 128 x 128 windows of the level above, write whole 64 blocks
    paths = [out_tif.with_name(f"{stem}.L{k}.tif") for k in range(len(levels) + 1)]
    vrt = out_tif.with_name(stem + ".src.vrt")
    total = len(windows(H, W, ch, cw)) + sum(len(windows(h, w, ovr_block, ovr_block)) for h, w in levels)
    bar = progress_bar(total=total, desc="COG", unit="block", disable=not progress)
    n_valid = 0
    try:
        with rasterio.Env(GDAL_CACHEMAX=cache_mb):
            with create(paths[0], *padded(H, W), mid_block, info["transform"]) as dst:
                for win in windows(H, W, ch, cw):
                    r0, c0 = int(win.row_off), int(win.col_off)
                    try:
                        data = np.asarray(arr[:, r0 : r0 + int(win.height), c0 : c0 + int(win.width)])
                    except (RuntimeError, ValueError, KeyError, FileNotFoundError) as exc:
                        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
                        raise StoreReadError(f"chunk at cells {r0}, {c0} does not read: {first}") from exc
                    # nodata is set in every band (`encode`) and -128 is no valid code: band 0 tells
                    nodata_cells = data[0] == INT8_NODATA if dtype == "int8" else np.isnan(data[0])
                    n_valid += int(nodata_cells.size - np.count_nonzero(nodata_cells))
                    dst.write(data.astype(gdal_dtype, copy=False), window=win)
                    bar.update()
            sizes = [(H, W), *levels]
            for k, (h, w) in enumerate(levels, start=1):
                sh, sw = sizes[k - 1]  # the level above, without padding
                with rasterio.open(paths[k - 1]) as src:
                    t = src.transform @ rasterio.Affine.scale(sw / w, sh / h)
                    with create(paths[k], *padded(h, w), ovr_block, t) as dst:
                        for win in windows(h, w, ovr_block, ovr_block):
                            r0, c0 = int(win.row_off), int(win.col_off)
                            rwin = Window(2 * c0, 2 * r0, min(2 * ovr_block, sw - 2 * c0),
                                          min(2 * ovr_block, sh - 2 * r0))  # fmt: skip
                            dst.write(downsample2(src.read(window=rwin), nodata), window=win)
                            bar.update()
            vrt.write_text(_vrt_xml(paths, padded(H, W), info, gdal_dtype, nodata, meta))
            bar.set_description("COG (final copy, ZSTD 9)")
            opts: dict[str, Any] = {"compress": "zstd", "level": 9, "num_threads": "all_cpus", "bigtiff": "if_safer"}
            opts["blocksize"] = block
            if dtype == "float16":
                opts["nbits"] = 16
            if dtype != "int8":
                opts["predictor"] = 3
            overviews = "force_use_existing" if levels else "none"
            rasterio.shutil.copy(str(vrt), str(out_tif), driver="COG", overviews=overviews, **opts)
            if padded(H, W) != (H, W) or any(padded(h, w) != (h, w) for h, w in levels):
                set_tiff_sizes(out_tif, sizes)
    finally:
        bar.close()
        vrt.unlink(missing_ok=True)
        for p in paths:
            p.unlink(missing_ok=True)
    return n_valid


def _vrt_xml(
    paths: list[Path], size: tuple[int, int], info: dict[str, Any], gdal_dtype: str, nodata: float | int, meta: dict
) -> str:
    """A VRT of (height, width) `size` over the level-0 GeoTIFF with the other files as explicit per-band
    overviews, plus metadata."""
    from xml.sax.saxutils import escape

    vtype = {"float32": "Float32", "int8": "Int8"}[gdal_dtype]
    nod = "nan" if gdal_dtype != "int8" else str(nodata)
    t, crs = info["transform"], info["crs"]
    parts = [f'<VRTDataset rasterXSize="{size[1]}" rasterYSize="{size[0]}">']
    if crs is not None:
        parts.append(f"<SRS>{escape(crs.to_wkt())}</SRS>")
    parts.append(f"<GeoTransform>{t.c!r},{t.a!r},{t.b!r},{t.f!r},{t.d!r},{t.e!r}</GeoTransform>")
    parts.append("<Metadata>" + "".join(f'<MDI key="{escape(k)}">{escape(v)}</MDI>' for k, v in meta.items()))
    parts.append("</Metadata>")
    files = [escape(str(p.resolve())) for p in paths]
    for i, name in enumerate(info["band_names"], start=1):
        ovr = "".join(
            f"<Overview><SourceFilename>{f}</SourceFilename><SourceBand>{i}</SourceBand></Overview>" for f in files[1:]
        )
        parts.append(
            f'<VRTRasterBand dataType="{vtype}" band="{i}"><Description>{escape(name)}</Description>'
            f"<NoDataValue>{nod}</NoDataValue><SimpleSource><SourceFilename>{files[0]}</SourceFilename>"
            f"<SourceBand>{i}</SourceBand></SimpleSource>{ovr}</VRTRasterBand>"
        )
    parts.append("</VRTDataset>")
    return "\n".join(parts)


def remove_tree(path: str | Path) -> None:
    p = Path(path)
    if p.is_dir():
        shutil.rmtree(p, ignore_errors=True)
    elif p.exists():
        p.unlink()
