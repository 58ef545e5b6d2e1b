"""What GIS users look at on a feature raster: PCA colour maps, cluster maps, similarity maps, zonal embeddings.

All products read the feature raster (COG, GeoTIFF or GeoZarr; int8 files are dequantised) in row blocks, so
they stream like the embedding itself; models (PCA, k-means) are fitted on a spread-out sample of valid pixels.
Outputs are COGs in the feature raster's grid and CRS (written under a temporary name, renamed when complete),
plus a PNG quick-look. Writing shows a progress bar (tqdm, on stderr) once a product takes more than a second.
How those files are written (COG, output-name checks, quick-look) is `geodino.embed.map_outputs`, shared with
classify and change; zonal embeddings (GeoParquet) are `geodino.embed.zonal`; their names are re-exported here.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import numpy as np

from geodino.config import whole_number
from geodino.embed import style
from geodino.embed.map_outputs import (  # noqa: F401
    check_map_outputs,
    cog_profile,
    file_name,
    n_blocks,
    progress,
    write_cog,
)
from geodino.embed.placement import (
    beyond_input,
    input_bounds_text,
    input_footprint,
    on_raster,
    point_cell,
    raster_extent,
    to_raster_crs,
    unplaced_count,
    unplaced_hint,
    user_point,
)
from geodino.embed.vectors import read_features
from geodino.embed.writers import EmbeddingReader
from geodino.embed.zonal import zonal_embeddings, zonal_png, zonal_sums  # noqa: F401
from geodino.errors import ConfigError, InputError, plural
from geodino.io import check_writable


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


def fit_tags(sample: int, seed: int) -> dict[str, Any]:
    """The fit's settings as the map's tags: `seed` picks the sampled cells (and k-means' start), so two seeds give
    other cluster labels and PCA colours from one feature raster; a map without them could not be made again."""
    return {"GEODINO_SAMPLE": sample, "GEODINO_SEED": seed}


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
    and the explained variance is tagged 0,0,0. `sample`: how many cells the fit reads; `seed`: which ones. Returns
    `out` as a Path; `png` (a PNG quick-look) is written only when given."""
    from sklearn.decomposition import PCA

    sample, seed = _sample_and_seed(sample, seed, 3, "three components")
    check_map_outputs("pca", out, png=png, style=style.qml_path(out), reads={"feature raster": features})
    out = check_writable(out, overwrite=overwrite)
    with EmbeddingReader(features).require_features() as rd:
        x = rd.sample(sample, seed, interior=True)  # cells next to nodata may hold its fill: coloured, not fitted
        if len(x) < 3:
            raise InputError(
                f"feature raster {features} has {plural(len(x), 'valid cell')} away from nodata, fewer than the 3 a "
                "PCA needs; embed a larger area"
            )
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
            **fit_tags(sample, seed),
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

    base = matplotlib.colormaps["tab20"].colors  # type: ignore[attr-defined]  # tab20 is a ListedColormap
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
    and assigned to every valid cell (cosine k-means: vectors L2-normalised before fitting and assigning). `k`: the
    cluster count (2..255: codes 0..254, 255 is nodata); `sample`, `seed`: as `pca_map`'s. Returns `out` as a
    Path; `png` only when given."""
    from sklearn.cluster import MiniBatchKMeans

    k = whole_number(k, "k", 8)
    if not 2 <= k <= 255:
        raise InputError(f"k={k} clusters (--k {k}): choose between 2 and 255 (uint8 codes 0..254; 255 is nodata)")
    sample, seed = _sample_and_seed(sample, seed, k, f"one per cluster, --k {k}")
    check_map_outputs("cluster", out, png=png, style=style.qml_path(out), reads={"feature raster": features})
    out = check_writable(out, overwrite=overwrite)
    with EmbeddingReader(features).require_features() as rd:
        x = _unit(rd.sample(sample, seed, interior=True))  # cells next to nodata: labelled, not fitted
        if len(x) < k:
            todo = f"pass --k {len(x)} or fewer (k= in Python)" if len(x) >= 2 else "embed a larger area"
            raise InputError(
                f"feature raster {features} has {plural(len(x), 'valid cell')}, fewer than --k {k}; {todo}"
            )
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
            **fit_tags(sample, seed),
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
    sums, counts, _ = zonal_sums(rd, geoms, all_touched=True, footprint=fp)
    if counts.sum() == 0:
        unplaced = unplaced_count(geoms)
        why = f"; {unplaced_hint(unplaced, gdf.crs)}" if unplaced else ""
        beyond = sum(beyond_input(g, fp) and on_raster(rd, g) for g in geoms)
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


def check_query_crs(point_crs: Any, polygon: Any) -> None:
    """`point_crs` places `--point` only: a polygon file is read in its own CRS (one without is refused), so a CRS
    given with `--polygon` was ignored silently; one line instead. `point_crs` "raster": the bare CLI flag."""
    if point_crs is not None and polygon is not None:
        crs = "" if point_crs == "raster" else f" {point_crs}"
        raise ConfigError(
            f"--point-crs{crs} applies to --point only: the polygons of --polygon {polygon} are placed by their "
            "file's own CRS; drop --point-crs (point_crs= in Python)"
        )


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
    default OUT.png). `point` is (x, y) in the raster's CRS, or in `point_crs`. Returns `out` as a Path."""
    from geodino.embed.quicklook import ramp_png

    if (point is None) == (polygon is None):
        raise InputError(
            "give exactly one query: a point (--point X,Y; point=(x, y) in Python) or a polygon file (--polygon FILE; "
            "polygon= in Python)"
        )
    check_query_crs(point_crs, polygon)
    if layer is not None and polygon is None:  # it picks a layer of --polygon: with --point it was ignored silently
        raise ConfigError(
            f"--layer {layer} picks a layer of the --polygon file, and the query is a --point: drop --layer "
            "(layer= in Python)"
        )
    if point is not None:
        point = user_point(point)
    png = file_name(png, "png", "similar") or Path(out).with_suffix(".png")
    reads = {"feature raster": features, "--polygon file": polygon}
    check_map_outputs("similar", out, png=png, style=style.qml_path(out), reads=reads)
    out = check_writable(out, overwrite=overwrite)
    png = check_writable(png, overwrite=overwrite)
    with EmbeddingReader(features).require_features() as rd:
        q = _unit(_query_vector(rd, point, point_crs, polygon, layer))
        query: dict[str, Any] = {"GEODINO_QUERY": str(point or polygon)}
        if layer is not None:  # which layer of the polygon file was the query
            query["GEODINO_QUERY_LAYER"] = str(layer)
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
