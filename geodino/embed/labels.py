"""Labels for `embed classify`: reading label features (points, lines, polygons) from a vector file, placing them on
a feature raster's grid (the feature vectors of the cells they cover) and joining them into the groups of the blocked
cross-validation (`cv_groups`: label features that share a cell or lie within `gap` cells of each other).

Labels left out (no value or no geometry, outside the raster, only on nodata cells) and a multi-layer file read by
its first layer are each a `UserWarning` (`warnings.warn`): a Python caller can catch or filter them, and the command
line shows each as one line "geodino: warning: ..." (`geodino.cli`)."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import numpy as np

from geodino.embed.writers import EmbeddingReader
from geodino.errors import InputError, did_you_mean


def read_labels(path: str | Path, column: str, *, layer: str | None = None, what: str = "labels") -> Any:
    """Label features with a non-null `column`, as a GeoDataFrame (own CRS; reprojected by the caller). A file of
    several layers read without `layer` (its first is read) and label features without a value or a geometry (left
    out) are each a `UserWarning`."""
    from geodino.embed.vectors import first_layer_note, has_geometry, read_features

    hint = "draw a few points or polygons per class"
    gdf = read_features(path, layer=layer, what=what, empty_hint=hint, note=False)
    if column not in gdf.columns:  # names the layer read: no separate note
        raise InputError(_missing_column(path, column, [c for c in gdf.columns if c != gdf.geometry.name], layer, what))
    note = first_layer_note(path, layer, what)
    if note:  # the first layer may not be the labels: a warning, as for any product reading a vector file
        warnings.warn(note, stacklevel=2)
    # empty text is no value either (an attribute left blank in QGIS): it made a class named '' with a blank legend
    blank = gdf[column].map(lambda v: isinstance(v, str) and not v.strip()).to_numpy(dtype=bool)
    keep = gdf[column].notna().to_numpy() & ~blank & has_geometry(gdf.geometry)
    if (~keep).any():
        warnings.warn(
            f"{int((~keep).sum())} of {len(gdf)} {what} in {path} "
            f"{'has' if (~keep).sum() == 1 else 'have'} no {column!r} value or no geometry and are ignored",
            stacklevel=2,
        )
    return gdf[keep].reset_index(drop=True)


def layer_for_test_labels(test: str | Path, layer: str | None) -> str | None:
    """The layer of a `--test` file read beside LABELS: `--layer` picks the LABELS' layer, so a test file without a
    layer of that name and with one layer at most (GeoJSON, a one-layer GeoPackage, GeoParquet) is read whole (it
    was refused for lacking the labels' layer); a multi-layer test file must hold a layer of that name (the reader
    refuses it with its layers listed)."""
    from geodino.embed.vectors import list_layers

    if layer is None:
        return None
    layers = list_layers(test)
    return layer if layer in layers or len(layers) > 1 else None


def _missing_column(path: str | Path, column: str, cols: list[str], layer: str | None, what: str) -> str:
    """The error for a label file without `column`: the closest column, and for a multi-layer file which layer
    was read and which other layers have the column (the usual cause: the labels are in another layer)."""
    from geodino.embed.vectors import layer_columns, list_layers

    layers = list_layers(path)
    read = layer or (layers[0] if layers else None)
    where = f" (layer {read!r} of {len(layers)}: {', '.join(layers)})" if len(layers) > 1 else ""
    close = did_you_mean(column, cols)
    hint = f"did you mean {close[0]!r}? " if close else ""
    text = f"{what} in {path}{where} have no column {column!r}; {hint}columns: {', '.join(map(str, cols))}"
    others = [name for name, c in layer_columns(path, [n for n in layers if n != read]).items() if column in c]
    if others:
        text += f"; layer {others[0]!r} has it: pass --layer {others[0]} (layer={others[0]!r} in Python)" + (
            f" (also in {', '.join(others[1:])})" if len(others) > 1 else ""
        )
    elif len(layers) > 1:
        text += "; no other layer has it either"
    return text


def sample_labels(
    rd: EmbeddingReader,
    gdf: Any,
    column: str,
    *,
    max_cells: int = 1000,
    seed: int = 0,
    name: str = "labels",
    path: str | Path | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Feature vectors under the labels: (X [n,D], class values [n], label feature index [n], cell [n, 2] as
    (row, col) of the feature raster; `cv_groups` joins features by cell for the cross-validation). Labels are placed
    as `zonal` places its rows (`placement.point_cells`, `cell_window`, `cell_mask`), on any affine grid. Labels
    outside the raster, beyond the input's own bounds (in the margin of the last partial cells, over no input
    pixel; rasters that record `input_bounds`) or only on nodata cells are left out with a `UserWarning` counting
    them."""
    from rasterio.windows import Window

    from geodino.embed.placement import (
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

    own_crs = gdf.crs
    gdf = to_raster_crs(gdf, rd, what=name, path=path or "the label file")
    unplaced = unplaced_count(gdf.geometry)
    rng = np.random.default_rng(seed)
    xs, ys, gs, cs = [], [], [], []
    outside = nodata = margin = 0
    fp = input_footprint(rd)  # None for rasters that do not record the input's bounds: the whole raster, as before
    for g, (geom, value) in enumerate(zip(gdf.geometry, gdf[column], strict=True)):
        if not finite_bounds(geom):  # not placeable in the raster's CRS (PROJ gives inf): outside, without casts
            outside += 1
            continue
        if beyond_input(geom, fp):  # on the last partial cells' margin at most: over no input pixel
            reached = on_raster(rd, geom)
            margin += reached
            outside += not reached
            continue
        if geom.geom_type in POINTS:
            cells = point_cells(rd.transform, geom, rd.width, rd.height, fp)
            if not cells:
                outside += 1
                continue
            vecs, where = [], []
            for r, c in cells:
                f, v = rd.read(Window(c, r, 1, 1))
                if v[0, 0]:
                    vecs.append(f[:, 0, 0])
                    where.append((r, c))
            if not vecs:
                nodata += 1
                continue
            found, at = np.stack(vecs), np.asarray(where, np.int64)
        else:
            win = cell_window(rd.transform, geom, rd.width, rd.height)
            if win is None:  # the label misses the raster, or only touches its edge
                outside += 1
                continue
            inside = cell_mask(geom, rd.transform, win, all_touched=False)
            if not inside.any():  # too small to hold a cell centre: every cell it touches
                inside = cell_mask(geom, rd.transform, win, all_touched=True)
            if not inside.any():
                outside += 1
                continue
            f, v = rd.read(win)
            m = inside & v
            if not m.any():
                nodata += 1
                continue
            found = f[:, m].T
            rr, cc = np.nonzero(m)
            at = np.stack([rr + int(win.row_off), cc + int(win.col_off)], axis=1).astype(np.int64)
            if len(found) > max_cells:
                pick = rng.choice(len(found), max_cells, replace=False)
                found, at = found[pick], at[pick]
        xs.append(found)
        ys.append(np.full(len(found), value, dtype=object))
        gs.append(np.full(len(found), g))
        cs.append(at)
    n = len(gdf)
    hint = f"; {unplaced_hint(unplaced, own_crs)}" if unplaced else ""
    beyond = f", {margin} outside its input's bounds (on the last partial cells' margin)" if margin else ""
    if not xs:
        raise InputError(
            f"none of the {n} {name} cover a valid cell of {rd.path} ({outside} outside it{beyond}, {nodata} on "
            f"nodata; {raster_extent(rd)})" + (hint or "; check that they cover the same area")
        )
    if outside or nodata or margin:
        left_out = outside + nodata + margin
        warnings.warn(
            f"{left_out} of {n} {name} {'is' if left_out == 1 else 'are'} ignored "
            f"({outside} outside {rd.path}{beyond}, "
            f"{nodata} only on nodata cells){hint}",
            stacklevel=2,
        )
    return np.concatenate(xs).astype(np.float32), np.concatenate(ys), np.concatenate(gs), np.concatenate(cs)


def cv_groups(features: np.ndarray, cells: np.ndarray, gap: int = 1) -> np.ndarray:
    """Groups for the blocked cross-validation: label features joined (transitively) when they share a feature
    cell or have cells within `gap` cells of each other (Chebyshev distance: gap 1 joins cells touching by an edge
    or a corner), so no cell, nor a neighbour within `gap`, is on both sides of a split. Group ids are the
    smallest feature index of each group."""
    parent = {int(f): int(f) for f in np.unique(features)}

    def find(a: int) -> int:
        while parent[a] != a:
            parent[a] = parent[parent[a]]
            a = parent[a]
        return a

    def union(a: int, b: int) -> None:
        ra, rb = find(a), find(b)
        if ra != rb:
            parent[max(ra, rb)] = min(ra, rb)

    owner: dict[tuple[int, int], int] = {}
    for f, (r, c) in zip(features.tolist(), cells.tolist(), strict=True):
        key = (int(r), int(c))
        if key in owner:
            union(int(f), owner[key])
        else:
            owner[key] = int(f)
    if gap > 0:
        offsets = [(dr, dc) for dr in range(-gap, gap + 1) for dc in range(-gap, gap + 1) if (dr, dc) > (0, 0)]
        for (r, c), f in owner.items():
            for dr, dc in offsets:
                g = owner.get((r + dr, c + dc))
                if g is not None:
                    union(f, g)
    return np.array([find(int(f)) for f in features.tolist()], dtype=np.int64)
