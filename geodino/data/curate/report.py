"""What curation writes besides the list: tables, the exemplar mosaic, the map and the Markdown report."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from geodino.data.curate.tiles import Tiles

__all__ = ["footprints", "markdown", "mosaic", "tile_map", "write_table"]


def mosaic(
    tiles: Tiles, emb: np.ndarray, labels: np.ndarray, cents: np.ndarray, idx: np.ndarray, n: int, out: Path
) -> None:
    """Rows = top-level clusters, columns = the `n` kept tiles closest to the cluster's centroid."""
    from PIL import Image

    from geodino.data.preview import to_rgb
    from geodino.io import atomic_path

    cell = 64
    rows = []
    for c in range(cents.shape[0]):
        members = idx[labels[idx] == c]
        order = members[np.argsort(-(emb[members] @ cents[c]))][:n]
        row = np.full((cell, n * (cell + 2), 3), 255, np.uint8)
        for j, k in enumerate(order):
            image, valid = tiles[int(k)]
            rgb = Image.fromarray(to_rgb(image, tiles.sensor, None if valid.all() else valid)).resize((cell, cell))
            row[:, j * (cell + 2) : j * (cell + 2) + cell] = np.asarray(rgb)
        rows.append(row)
        rows.append(np.full((2, row.shape[1], 3), 255, np.uint8))
    with atomic_path(out, overwrite=True) as tmp:
        Image.fromarray(np.concatenate(rows)).save(tmp, format="PNG")


def footprints(tiles: Tiles) -> Any:
    """Tile footprints (EPSG:4326) of a raster grid."""
    import shapely
    from rasterio.warp import transform_geom

    geoms = []
    for sid, col, row, w, h in tiles.windows:
        s = tiles.archive.scenes[sid]
        t = s.affine
        corners = [t @ (col, row), t @ (col + w, row), t @ (col + w, row + h), t @ (col, row + h)]
        poly = shapely.geometry.mapping(shapely.Polygon(corners))
        geoms.append(
            shapely.geometry.shape(transform_geom(s.crs, "EPSG:4326", poly)) if s.crs else shapely.Polygon(corners)
        )
    return geoms


def tile_map(geoms: list, status: np.ndarray, out: Path, title: str) -> None:
    from geodino.viz.figures import pyplot, save_figure

    plt = pyplot()

    colours = {
        "kept": "#1b9e77",
        "not sampled": "#bbbbbb",
        "duplicate": "#7570b3",
        "cloud": "#66a6ff",
        "nodata": "#d95f02",
    }
    fig, ax = plt.subplots(figsize=(7, 6))
    for name, colour in colours.items():
        sel = np.flatnonzero(status == name)
        for k in sel:
            x, y = geoms[k].exterior.xy
            ax.fill(x, y, color=colour, alpha=0.8 if name == "kept" else 0.4, lw=0)
        ax.plot([], [], "s", color=colour, label=f"{name} ({sel.size})")
    ax.set_aspect("equal")
    ax.set_xlabel("longitude")
    ax.set_ylabel("latitude")
    ax.legend(fontsize=8, loc="best")
    ax.set_title(title, fontsize=9)
    save_figure(fig, out, dpi=110, format="png")


def write_table(table: dict[str, Any], out: Path, geoms: list | None) -> None:
    from geodino.io import atomic_path

    with atomic_path(out, overwrite=True) as tmp:
        if geoms is not None:
            import geopandas as gpd

            gpd.GeoDataFrame(table, geometry=geoms, crs="EPSG:4326").to_parquet(tmp)
        else:
            import pandas as pd

            pd.DataFrame(table).to_parquet(tmp)


def markdown(r: dict[str, Any]) -> str:
    rm = r["removed"]
    lines = [
        "# Curation report",
        "",
        f"{r['tiles']} tiles; removed {rm['nodata']} nodata, {rm['cloud']} cloud, {rm['duplicate']} near-duplicates; "
        f"{r['clustered']} clustered into levels {r['levels']} (finest first); **{r['kept']} kept**.",
        "",
        "| top-level cluster | tiles before sampling | kept |",
        "|---|---|---|",
    ]
    for c, (b, a) in enumerate(zip(r["top_clusters"]["before"], r["top_clusters"]["after"])):
        lines.append(f"| {c} | {b} | {a} |")
    lb = np.asarray(r["level1_clusters"]["before"])
    la = np.asarray(r["level1_clusters"]["after"])
    lines += [
        "",
        f"Level-1 clusters: sizes {lb.min()}..{lb.max()} before, {la.min()}..{la.max()} after sampling "
        f"(max/min ratio {lb.max() / max(lb.min(), 1):.1f} -> {la.max() / max(la.min(), 1):.1f}).",
        "",
    ]
    return "\n".join(lines)
