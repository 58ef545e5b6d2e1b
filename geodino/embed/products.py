"""What GIS users look at on a feature raster: PCA colour maps, cluster maps, similarity maps, zonal embeddings.

All products read the feature raster (COG, GeoTIFF or GeoZarr; int8 files are dequantised) in row blocks, so
they stream like the embedding itself; models (PCA, k-means) are fitted on a spread-out sample of valid pixels.
Outputs are COGs in the feature raster's grid and CRS (written under a temporary name, renamed when complete),
plus a PNG quick-look, and GeoParquet for zonal statistics. Writing shows a progress bar (tqdm, on stderr) once a
product takes more than a second. How those files are written (COG, output-name checks, quick-look) is
`geodino.embed.map_outputs`, shared with classify and change; its names are re-exported here.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import numpy as np

from geodino.config import true_or_false, whole_number
from geodino.embed import style
from geodino.embed.map_outputs import check_map_outputs, cog_profile, n_blocks, progress, write_cog  # noqa: F401
from geodino.embed.placement import (
    LINES,
    POINTS,
    beyond_input,
    cell_mask,
    cell_window,
    finite_bounds,
    input_bounds_text,
    input_footprint,
    point_cell,
    point_cells,
    raster_extent,
    to_raster_crs,
    unplaced_hint,
    user_point,
)
from geodino.embed.reader import fitting
from geodino.embed.vectors import first_ids, has_geometry, read_features
from geodino.embed.writers import EmbeddingReader
from geodino.errors import ConfigError, InputError, plural
from geodino.io import atomic_path, check_writable


def _sample_and_seed(sample: Any, seed: Any, least: int, why: str) -> tuple[int, int]:
    """pca's and cluster's `sample` (at least `least` cells: `why`) and `seed` (>= 0) as ints (`whole_number`), or
    one line naming the flag and the keyword: sample=0 said the raster had too few valid pixels, seed=-1 was numpy's
    traceback."""
    sample, seed = whole_number(sample, "sample", 50000), whole_number(seed, "seed", 0)
    if sample < least:
        raise ConfigError(
            f"--sample {sample}: fit on at least {least} sampled cells ({why}; default 50000; sample= in Python)"
        )
    if seed < 0:
        raise ConfigError(f"--seed {seed}: give a whole number >= 0 (default 0; seed= in Python)")
    return sample, seed


# total variance at most this share of the mean squared feature norm is no variance: float32 round-off of constant
# features (relative std ~1e-7) is below it, any real variation (even of int8 or float16 features) far above
FLAT_VARIANCE = 1e-12


def _no_variance(x: np.ndarray) -> tuple[bool, float]:
    """(whether the sampled feature vectors `x` [n, d] are constant up to round-off, their total variance)."""
    x64 = x.astype(np.float64)
    total = float(x64.var(axis=0).sum())
    return total <= FLAT_VARIANCE * float((x64**2).sum(axis=1).mean()), total


def pca_map(
    features: str | Path,
    out: str | Path,
    *,
    png: str | Path | None = None,
    sample: int = 50000,
    seed: int = 0,
    overwrite: bool = False,
) -> Path:
    """3-band uint8 COG of the first three principal components (0 = nodata; values stretched 2-98 %), fitted on
    the valid cells away from nodata (`EmbeddingReader.sample(interior=True)`: a scene edge's partly nodata cells
    drew a component of their own) and applied to every valid cell. Features
    that do not vary over the sample (total variance ~0 next to their magnitude) give a flat map: a UserWarning,
    and the explained variance is tagged 0,0,0."""
    from sklearn.decomposition import PCA

    sample, seed = _sample_and_seed(sample, seed, 3, "three components")
    check_map_outputs("pca", out, png=png, style=style.qml_path(out))
    out = check_writable(out, overwrite=overwrite)
    with EmbeddingReader(features).require_features() as rd:
        x = rd.sample(sample, seed, interior=True)  # cells next to nodata may hold its fill: coloured, not fitted
        if len(x) < 3:
            raise InputError(f"feature raster {features} has fewer than 3 valid pixels; nothing to map")
        flat, total = _no_variance(x)
        with rd.fitting(f"the PCA of {plural(len(x), 'sampled cell')}"), warnings.catch_warnings():
            if flat:  # sklearn's own 0/0 of the explained variance ratio: the warning below says it in words
                warnings.simplefilter("ignore", RuntimeWarning)
            pca = PCA(n_components=3, random_state=seed).fit(x)
        if flat:  # PCA of round-off: a flat map tagged "1.0000,0,0" (or noise ratios) read as structure
            warnings.warn(
                f"{features}: the features do not vary over {plural(len(x), 'sampled cell')} (total variance "
                f"{total:.3g}); the PCA map is one flat colour, not structure, and its explained variance is tagged "
                "0,0,0",
                stacklevel=2,
            )
        proj = pca.transform(x)
        lo, hi = np.percentile(proj, 2, axis=0), np.percentile(proj, 98, axis=0)
        span = np.where(hi > lo, hi - lo, 1.0)

        def blocks():
            for win in rd.blocks():
                f, valid = rd.read(win)
                d, h, w = f.shape
                y = pca.transform(f.reshape(d, -1).T)
                y = np.clip((y - lo) / span, 0, 1) * 254 + 1  # 1..255, 0 is nodata
                rgb = y.T.reshape(3, h, w).round().astype(np.uint8)
                rgb[:, ~valid] = 0
                yield win, rgb

        ratio = ",".join(f"{0.0 if flat else v:.4f}" for v in pca.explained_variance_ratio_)
        write_cog(
            out,
            blocks(),
            cog_profile(rd, 3, "uint8", 0),
            bands=("PC1", "PC2", "PC3"),
            desc="pca",
            source=rd,
            GEODINO_PCA_EXPLAINED_VARIANCE=ratio,
        )
    style.rgb_qml(out)
    if png is not None:
        from geodino.embed.quicklook import rgb_png

        what = "constant features: no principal components" if flat else "red, green, blue: PC1, PC2, PC3"
        rgb_png(out, png, title=f"{out.name}  ({what})")
    return out


def class_palette(k: int, seed: int = 0) -> dict[int, tuple[int, int, int, int]]:
    """Distinct colours: matplotlib's tab20 (then random) so neighbouring classes differ."""
    import matplotlib

    base = matplotlib.colormaps["tab20"].colors
    rng = np.random.default_rng(seed)
    out = {}
    for i in range(k):
        c = base[i] if i < len(base) else rng.random(3)
        out[i] = (int(c[0] * 255), int(c[1] * 255), int(c[2] * 255), 255)
    return out


def cluster_map(
    features: str | Path,
    out: str | Path,
    *,
    k: int = 8,
    png: str | Path | None = None,
    sample: int = 50000,
    seed: int = 0,
    overwrite: bool = False,
) -> Path:
    """k-means class COG (uint8 with a colour table and a raster attribute table naming `cluster i`; 255 =
    nodata), fitted on a sample of cells away from nodata as `pca_map` is (an edge ring drew a cluster of its own)
    and assigned to every valid cell (cosine k-means: vectors L2-normalised before fitting and assigning)."""
    from sklearn.cluster import MiniBatchKMeans

    k = whole_number(k, "k", 8)
    if not 2 <= k <= 254:
        raise InputError(f"k={k} clusters (--k {k}): choose between 2 and 254")
    sample, seed = _sample_and_seed(sample, seed, k, f"one per cluster, --k {k}")
    check_map_outputs("cluster", out, png=png, style=style.qml_path(out))
    out = check_writable(out, overwrite=overwrite)
    with EmbeddingReader(features).require_features() as rd:
        x = _unit(rd.sample(sample, seed, interior=True))  # cells next to nodata: labelled, not fitted
        if len(x) < k:
            raise InputError(f"feature raster {features} has {plural(len(x), 'valid pixel')}, fewer than k={k}")
        with rd.fitting(f"k-means on {plural(len(x), 'sampled cell')}"):
            km = MiniBatchKMeans(n_clusters=k, random_state=seed, n_init=3, batch_size=4096).fit(x)

        def blocks():
            for win in rd.blocks():
                f, valid = rd.read(win)
                d, h, w = f.shape
                lab = km.predict(_unit(f.reshape(d, -1).T)).reshape(h, w).astype(np.uint8)
                lab[~valid] = 255
                yield win, lab[None]

        palette = class_palette(k, seed)
        entries = {i: (palette[i], f"cluster {i}") for i in range(k)}  # colour table, RAT, .qml and PNG legend
        write_cog(
            out,
            blocks(),
            cog_profile(rd, 1, "uint8", 255),
            classes=entries,
            bands=("cluster",),
            desc="cluster",
            source=rd,
            GEODINO_KMEANS_K=k,
        )
    style.palette_qml(out, entries, nodata=255)
    if png is not None:
        from geodino.embed.quicklook import classes_png

        classes_png(out, png, entries, title=out.name)
    return out


def _unit(x: np.ndarray, axis: int = -1) -> np.ndarray:
    n = np.sqrt(np.sum(x * x, axis=axis, keepdims=True))
    return (x / np.maximum(n, 1e-12)).astype(np.float32)


def _query_vector(
    rd: EmbeddingReader, point: tuple[float, float] | None, point_crs: Any, polygon: Any, layer: str | None
) -> np.ndarray:
    from rasterio.windows import Window

    if point is not None:
        r, c = point_cell(rd, point, point_crs)
        f, valid = rd.read(Window(c, r, 1, 1))
        if not valid[0, 0]:
            raise InputError(f"query point {point} falls on a nodata cell of {rd.path}; pick another point")
        return f[:, 0, 0]
    gdf = read_features(polygon, layer=layer, what="polygons")
    geoms = list(to_raster_crs(gdf, rd, what="polygons", path=polygon).geometry)
    fp = input_footprint(rd)
    sums, counts, _ = _zonal_sums(rd, geoms, all_touched=True, footprint=fp)
    if counts.sum() == 0:
        unplaced = sum(not finite_bounds(g) for g in geoms if g is not None and not g.is_empty)
        why = f"; {unplaced_hint(unplaced, gdf.crs)}" if unplaced else ""
        beyond = sum(beyond_input(g, fp) and _on_raster(rd, g) for g in geoms)
        if beyond and not why:
            why = (
                f"; {beyond} of them lie only in the margin by which the last partial cells reach past the input "
                f"({input_bounds_text(fp)}), over no input pixel"
            )
        raise InputError(f"query polygons in {polygon} cover no valid cell of {rd.path} ({raster_extent(rd)}){why}")
    return sums.sum(0) / counts.sum()


def _query_crs(rd: EmbeddingReader, point_crs: str | None) -> str:
    """The CRS a `--point` was read in, for the tags: `point_crs` as given (pyproj has read it), or without it the
    raster's own CRS (its EPSG-style code when exact, else WKT; "none" for a raster without a CRS)."""
    if point_crs is not None:
        return str(point_crs)
    if rd.crs is None:
        return "none"
    from pyproj import CRS

    crs = CRS.from_user_input(rd.crs)
    auth = crs.to_authority(min_confidence=100)
    return f"{auth[0]}:{auth[1]}" if auth else crs.to_wkt()


def similarity_map(
    features: str | Path,
    out: str | Path,
    *,
    point: tuple[float, float] | None = None,
    point_crs: str | None = None,
    polygon: str | Path | None = None,
    layer: str | None = None,
    png: str | Path | None = None,
    overwrite: bool = False,
) -> Path:
    """Cosine similarity of every cell to a query (a point's vector or a polygon's mean vector; `layer` of a
    multi-layer polygon file); float32 COG, its `.qml` style and a PNG quick-look with a colour bar (`png`,
    default OUT.png)."""
    from geodino.embed.quicklook import ramp_png

    if (point is None) == (polygon is None):
        raise InputError("give exactly one query: a point (--point X,Y) or a polygon file (--polygon FILE)")
    if point is not None:
        point = user_point(point)
    png = Path(png) if png else Path(out).with_suffix(".png")
    check_map_outputs("similar", out, png=png, style=style.qml_path(out))
    out = check_writable(out, overwrite=overwrite)
    png = check_writable(png, overwrite=overwrite)
    with EmbeddingReader(features).require_features() as rd:
        q = _unit(_query_vector(rd, point, point_crs, polygon, layer))
        query = {"GEODINO_QUERY": str(point or polygon)}
        if point is not None:  # the point's numbers mean nothing without the CRS they were given in
            query["GEODINO_QUERY_CRS"] = _query_crs(rd, point_crs)

        def blocks():
            for win in rd.blocks():
                f, valid = rd.read(win)
                s = np.einsum("d,dhw->hw", q, _unit(f, axis=0)).astype(np.float32)
                s = np.clip(s, -1.0, 1.0)  # float rounding gives 1.0000002 at the query cell
                s[~valid] = np.nan
                yield win, s[None]

        write_cog(
            out,
            blocks(),
            cog_profile(rd, 1, "float32", float("nan")),
            bands=("cosine similarity",),
            desc="similar",
            source=rd,
            **query,
        )
    vmin = style.ramp_range(style.data_limits(out)[0], 1.0)[0]  # the PNG's limits are the styles'
    style.ramp_qml(out, vmin=vmin, vmax=1.0, ramp=style.RAMPS["similarity"], bounds=(-1.0, 1.0))
    ramp_png(out, png, vmin=vmin, vmax=1.0, ramp=style.RAMPS["similarity"], label="cosine similarity", title=out.name)
    return out


def _on_raster(rd: EmbeddingReader, geom: Any) -> bool:
    """Whether a geometry reaches the raster's cells at all (a point in a cell, a line or polygon into a cell)."""
    if not finite_bounds(geom):
        return False
    if geom.geom_type in POINTS:
        return bool(point_cells(rd.transform, geom, rd.width, rd.height))
    return cell_window(rd.transform, geom, rd.width, rd.height) is not None


def _zonal_sums(
    rd: EmbeddingReader,
    geoms: list,
    *,
    all_touched: bool,
    max_cells: int = 1 << 20,
    desc: str | None = None,
    footprint: Any = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-geometry sum of valid feature vectors, valid-cell count and count of the raster cells it covers, valid
    or not (0: it misses the raster, or has no geometry). A point covers the cell it falls in, a line every cell
    it touches, a polygon the cells whose centre is inside (`all_touched`: every cell it touches). With
    `footprint` (the input's extent, `placement.input_footprint`), points beyond it and lines or polygons that do
    not reach into it cover nothing: they lie in the margin of the last partial cells, over no input pixel.
    Window reads, tiled for big polygons; with `desc`, a progress bar over the geometries."""
    from rasterio.windows import Window

    sums = np.zeros((len(geoms), rd.count), np.float64)
    counts = np.zeros(len(geoms), np.int64)
    cells = np.zeros(len(geoms), np.int64)
    step = int(np.sqrt(max_cells))
    items = enumerate(geoms)
    for g, geom in progress(items, total=len(geoms), desc=desc) if desc else items:
        if not finite_bounds(geom) or beyond_input(geom, footprint):  # no geometry, not placeable, not on the input
            continue
        if geom.geom_type in POINTS:
            for r, c in point_cells(rd.transform, geom, rd.width, rd.height, footprint):
                f, valid = rd.read(Window(c, r, 1, 1))
                cells[g] += 1
                if valid[0, 0]:
                    sums[g] += f[:, 0, 0]
                    counts[g] += 1
            continue
        win = cell_window(rd.transform, geom, rd.width, rd.height)
        if win is None:
            continue
        r0, c0, h, w = int(win.row_off), int(win.col_off), int(win.height), int(win.width)
        for rr in range(r0, r0 + h, step):
            for cc in range(c0, c0 + w, step):
                sub = Window(cc, rr, min(step, c0 + w - cc), min(step, r0 + h - rr))
                inside = cell_mask(geom, rd.transform, sub, all_touched=all_touched)
                if not inside.any():
                    continue
                cells[g] += int(inside.sum())
                f, valid = rd.read(sub)
                m = inside & valid
                sums[g] += f[:, m].sum(axis=1)
                counts[g] += int(m.sum())
    return sums, counts, cells


ZONAL_SUFFIXES = (".parquet", ".geoparquet")  # what `zonal_embeddings` writes: GeoParquet


def zonal_embeddings(
    features: str | Path,
    polygons: str | Path,
    out: str | Path,
    *,
    layer: str | None = None,
    all_touched: bool = False,
    png: str | Path | None = None,
    overwrite: bool = False,
) -> Path:
    """Mean embedding per polygon (cells whose centre is inside; `all_touched` for any touched cell) as GeoParquet.

    Rows may also be points (the cell each falls in) or lines (every cell they touch). Polygons are reprojected to
    the raster's CRS for the statistics and written back with their own geometry and attributes plus `n_cells`,
    `status` (`ok`; `outside`: beyond the raster or only touching its edge; `outside_input`: on the raster but
    beyond the input's own bounds, in the margin by which its last partial cells reach past the input's edge, over
    no input pixel (rasters that record `input_bounds`); `nodata`: only nodata cells;
    `too_small`: no cell centre inside, try all_touched; `no_geometry`: a null or empty geometry) and `embedding`
    (float32 list; null when not ok). Rows that are not `ok` are counted in a `UserWarning`, never silently dropped
    (the command line shows it as "geodino: warning: ..."). A PNG quick-look (`png`, default OUT.png) paints each
    polygon with the first three principal components of its embedding as RGB (similar colours: similar
    embeddings), polygons without an embedding hatched grey.
    """
    if Path(out).suffix.lower() not in ZONAL_SUFFIXES:
        raise ConfigError(
            f"--out {out}: zonal writes GeoParquet (polygons, attributes and embeddings), not a raster; name the "
            f"output {Path(out).with_suffix('.parquet').name} ({' or '.join(ZONAL_SUFFIXES)})"
        )
    if png is not None and Path(png).suffix.lower() != ".png":  # as pca, cluster, similar: z.jpg held a PNG
        raise ConfigError(f"--png {png}: zonal writes a PNG there; name it {Path(png).with_suffix('.png').name}")
    all_touched = true_or_false(all_touched, "all_touched")  # "false" from a YAML or a caller's text is False
    out = check_writable(out, overwrite=overwrite)
    png = check_writable(png or out.with_suffix(".png"), overwrite=overwrite)
    gdf = read_features(polygons, layer=layer, what="polygons")
    with EmbeddingReader(features).require_features() as rd:
        metadata = rd.metadata  # its record: the command that writes it again, should the quick-look's PCA fail
        geoms = list(to_raster_crs(gdf, rd, what="polygons", path=polygons).geometry)
        unplaced = sum(not finite_bounds(g) for g in geoms if g is not None and not g.is_empty)
        extent = raster_extent(rd)
        fp = input_footprint(rd)  # None for rasters that do not record it: placed on the whole raster, as before
        beyond = [beyond_input(g, fp) and _on_raster(rd, g) for g in geoms]
        sums, counts, cells = _zonal_sums(rd, geoms, all_touched=all_touched, desc="zonal", footprint=fp)
        # polygons on the raster that hold no cell centre: do they touch a cell at all, and a valid one?
        small = [g for g in range(len(geoms)) if not cells[g] and finite_bounds(geoms[g])]
        small = [g for g in small if not all_touched and geoms[g].geom_type not in POINTS + LINES]
        _, probe_counts, probe_cells = _zonal_sums(rd, [geoms[g] for g in small], all_touched=True, footprint=fp)
        probe = {g: (int(probe_counts[i]), int(probe_cells[i])) for i, g in enumerate(small)}
    status = np.empty(len(geoms), object)
    for g, geom in enumerate(geoms):
        if geom is None or geom.is_empty:
            status[g] = "no_geometry"
        elif counts[g]:
            status[g] = "ok"
        elif cells[g]:
            status[g] = "nodata"
        elif probe.get(g, (0, 0))[1]:
            status[g] = "too_small" if probe[g][0] else "nodata"
        elif beyond[g]:
            status[g] = "outside_input"
        else:
            status[g] = "outside"
    means = [(sums[g] / counts[g]).astype(np.float32) if counts[g] else None for g in range(len(geoms))]
    res = gdf.copy()
    res["n_cells"] = counts
    res["status"] = status.astype(str)
    res["embedding"] = means
    res.attrs = {}
    bad = res.index[res["status"] != "ok"]
    if len(bad):
        kinds = res.loc[bad, "status"].value_counts().to_dict()
        ids = first_ids(polygons, layer, np.flatnonzero(status != "ok"))  # QGIS's fids (GeoPackage: from 1)
        warnings.warn(
            f"{len(bad)} of {plural(len(res), 'polygon')} {'has' if len(bad) == 1 else 'have'} "
            f"no embedding ({kinds}); {ids}",
            stacklevel=2,
        )
    n_out, n_none = int((res["status"] == "outside").sum()), int((res["status"] == "no_geometry").sum())
    if n_out and n_out + n_none == len(res):  # none lies on the raster (a file of no geometries at all: read_features)
        if unplaced:  # PROJ could not place them at all: coordinates that do not fit their declared CRS
            why = unplaced_hint(unplaced, gdf.crs)
        else:
            why = "check that they cover the same area"
        if n_none:
            which = f"{plural(n_out, 'polygon')} in {polygons} with a geometry"
            none = f" (the other {n_none} have no geometry)"
        else:
            which, none = f"{'the' if n_out == 1 else 'all'} {plural(n_out, 'polygon')} in {polygons}", ""
        raise InputError(
            f"{which} lie{'s' if n_out == 1 else ''} outside the feature raster {features} ({extent}){none}; {why}"
        )
    with atomic_path(out, overwrite=True) as tmp:
        res.to_parquet(tmp)
    with fitting(features, metadata, f"the quick-look's PCA of {plural(int((status == 'ok').sum()), 'zone mean')}"):
        zonal_png(res, png, title=out.name)
    return out


def zonal_png(res: Any, png: str | Path, *, title: str = "") -> Path:
    """Polygons of a zonal result painted by their embedding (PCA to RGB), those without one hatched grey.
    The PCA's LinAlgError passes to the caller, which names the raster (`reader.fitting`)."""
    from matplotlib.figure import Figure  # no pyplot: no global backend switch inside a user's notebook
    from matplotlib.patches import Patch

    from geodino.embed.quicklook import NODATA_HATCH, save_png

    ok = (res["status"] == "ok").to_numpy()
    colours = np.tile(np.array([[0.25, 0.45, 0.75]]), (len(res), 1))
    if ok.sum() >= 3:
        from sklearn.decomposition import PCA

        x = np.stack(res.loc[ok, "embedding"].to_list())
        y = PCA(n_components=min(3, x.shape[1]), random_state=0).fit_transform(x)
        y = (y - y.min(0)) / np.where(np.ptp(y, axis=0) > 0, np.ptp(y, axis=0), 1.0)
        colours[ok, : y.shape[1]] = 0.15 + 0.7 * y
    fig = Figure(figsize=(7.0, 6.0))
    ax = fig.add_subplot()
    ax.set_axis_off()
    if ok.any():
        res[ok].plot(ax=ax, color=colours[ok], edgecolor="k", linewidth=0.3)
    drawable = has_geometry(res.geometry)  # no_geometry rows have nothing to draw
    if (~ok & drawable).any():
        res[~ok & drawable].plot(ax=ax, linewidth=0.3, **NODATA_HATCH)
    handles = [Patch(facecolor=(0.25, 0.45, 0.75), label=f"{int(ok.sum())} with an embedding (colour: PCA)")]
    if (~ok).any():
        handles.append(Patch(label=f"{int((~ok).sum())} without", **NODATA_HATCH))
    ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False, fontsize=9)
    if title:
        ax.set_title(title, fontsize=10)
    return save_png(fig, png)
