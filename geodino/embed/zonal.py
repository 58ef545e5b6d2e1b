"""Zonal embeddings: the mean feature vector per polygon (points, lines) of a vector file, as GeoParquet, with a
PNG quick-look. `zonal_sums` (per-geometry sums of valid cells) also gives `similar --polygon` its query vector."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import numpy as np

from geodino.config import true_or_false
from geodino.embed.map_outputs import check_inputs_kept, progress
from geodino.embed.placement import (
    LINES,
    POINTS,
    beyond_input,
    cell_mask,
    cell_window,
    finite_bounds,
    input_footprint,
    on_raster,
    point_cells,
    raster_extent,
    to_raster_crs,
    unplaced_count,
    unplaced_hint,
)
from geodino.embed.reader import fitting
from geodino.embed.vectors import first_ids, has_geometry, read_features
from geodino.embed.writers import EmbeddingReader
from geodino.errors import InputError, plural
from geodino.io import atomic_path, check_suffix, check_writable

__all__ = ["ZONAL_SUFFIXES", "on_raster", "zonal_embeddings", "zonal_png", "zonal_sums"]


def zonal_sums(
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
    embeddings), polygons without an embedding hatched grey. Returns `out` as a Path.
    """
    writes = "GeoParquet (polygons, attributes and embeddings)"  # z.csv was told "not a raster"
    check_suffix("--out", out, ZONAL_SUFFIXES, command="zonal", writes=writes, hint=" (or .geoparquet)")
    if png is not None:  # as pca, cluster, similar: z.jpg held a PNG
        check_suffix("--png", png, (".png",), command="zonal", writes="a PNG")
    all_touched = true_or_false(all_touched, "all_touched")  # "false" from a YAML or a caller's text is False
    reads = {"feature raster": features, "polygons file": polygons}  # z.parquet as POLYGONS and --out: replaced
    check_inputs_kept("zonal", {"--out": out, "--png": png or Path(out).with_suffix(".png")}, reads)
    out = check_writable(out, overwrite=overwrite)
    png = check_writable(png or out.with_suffix(".png"), overwrite=overwrite)
    gdf = read_features(polygons, layer=layer, what="polygons")
    with EmbeddingReader(features).require_features() as rd:
        metadata = rd.metadata  # its record: the command that writes it again, should the quick-look's PCA fail
        geoms = list(to_raster_crs(gdf, rd, what="polygons", path=polygons).geometry)
        unplaced = unplaced_count(geoms)
        extent = raster_extent(rd)
        fp = input_footprint(rd)  # None for rasters that do not record it: placed on the whole raster, as before
        beyond = [beyond_input(g, fp) and on_raster(rd, g) for g in geoms]
        sums, counts, cells = zonal_sums(rd, geoms, all_touched=all_touched, desc="zonal", footprint=fp)
        # polygons on the raster that hold no cell centre: do they touch a cell at all, and a valid one?
        small = [g for g in range(len(geoms)) if not cells[g] and finite_bounds(geoms[g])]
        small = [g for g in small if not all_touched and geoms[g].geom_type not in POINTS + LINES]
        _, probe_counts, probe_cells = zonal_sums(rd, [geoms[g] for g in small], all_touched=True, footprint=fp)
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
    ours = ("n_cells", "status", "embedding")
    # a column of the user's own under one of these names was replaced silently ('status': 'surveyed' became 'ok');
    # a file that holds all three is an earlier zonal output, rerun on another raster: replaced without a word
    clash = [c for c in ours if c in gdf.columns] if not all(c in gdf.columns for c in ours) else []
    res = gdf.copy()
    res["n_cells"] = counts
    res["status"] = status.astype(str)
    res["embedding"] = means
    res.attrs = {}
    # all outside: the error alone, one line (the warning counting them came first, a second line)
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
    if clash:
        warnings.warn(
            f"polygons in {polygons} have {'a column' if len(clash) == 1 else 'columns'} {', '.join(clash)}, which "
            f"zonal writes: replaced in {out.name} by its own (rename {'it' if len(clash) == 1 else 'them'} in the "
            "file to keep both)",
            stacklevel=2,
        )
    bad = res.index[res["status"] != "ok"]
    if len(bad):
        kinds = res.loc[bad, "status"].value_counts().to_dict()
        ids = first_ids(polygons, layer, np.flatnonzero(status != "ok"))  # QGIS's fids (GeoPackage: from 1)
        warnings.warn(
            f"{len(bad)} of {plural(len(res), 'polygon')} {'has' if len(bad) == 1 else 'have'} "
            f"no embedding ({kinds}); {ids}"
            # the table's own advice: a polygon between cell centres is mapped with every touched cell
            + (
                "; too_small: no cell centre inside, try --all-touched (all_touched=True)"
                if "too_small" in kinds
                else ""
            ),
            stacklevel=2,
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
