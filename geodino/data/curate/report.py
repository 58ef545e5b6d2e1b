"""What curation writes besides the list: tables, the exemplar mosaic, the map and the Markdown report."""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from geodino.data.curate.tiles import Tiles

__all__ = ["markdown", "mosaic", "tile_map", "write_lists", "write_table"]


def mosaic(
    tiles: Tiles, emb: np.ndarray, labels: np.ndarray, cents: np.ndarray, idx: np.ndarray, n: int, out: Path
) -> None:
    """Rows = top-level clusters, columns = the `n` tiles of `idx` closest to the cluster's centroid (`emb`,
    `labels` and `idx` index the tiles alike)."""
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
            image, valid, _ = tiles[int(k)]
            sensor = tiles.sensors[tiles.locate(int(k))[0]]
            rgb = Image.fromarray(to_rgb(image, sensor, None if valid.all() else valid)).resize((cell, cell))
            row[:, j * (cell + 2) : j * (cell + 2) + cell] = np.asarray(rgb)
        rows.append(row)
        rows.append(np.full((2, row.shape[1], 3), 255, np.uint8))
    with atomic_path(out, overwrite=True) as tmp:
        Image.fromarray(np.concatenate(rows)).save(tmp, format="PNG")


def tile_map(geoms: list, status: np.ndarray, out: Path, title: str) -> None:
    from geodino.viz.figures import figures, save_figure

    plt = figures()

    colours = {
        "kept": "#1b9e77",
        "not sampled": "#bbbbbb",
        "duplicate": "#7570b3",
        "cloud": "#66a6ff",
        "nodata": "#d95f02",
    }
    fig, ax = plt.subplots(figsize=(7, 6))
    for name, colour in colours.items():
        sel = np.flatnonzero((status == name) & np.array([g is not None for g in geoms]))
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


def write_table(table: dict[str, Any], out: Path, geoms: list | None, grid: dict[str, Any] | None = None) -> None:
    """`table` as (Geo)Parquet, atomically; `grid`: the raster grid its windows are on (`tilelist.GRID_KEY`)."""
    from geodino.io import atomic_path

    with atomic_path(out, overwrite=True) as tmp:
        if geoms is not None:
            import geopandas as gpd

            gpd.GeoDataFrame(table, geometry=geoms, crs="EPSG:4326").to_parquet(tmp)
        else:
            import pandas as pd

            pd.DataFrame(table).to_parquet(tmp)
        if grid is not None:
            import json

            import pyarrow.parquet as pq

            from geodino.data.curate.tilelist import GRID_KEY

            t = pq.read_table(tmp)
            meta = {**(t.schema.metadata or {}), GRID_KEY.encode(): json.dumps(grid).encode()}
            pq.write_table(t.replace_schema_metadata(meta), tmp)


_TYPE_COLUMNS = {
    "images": ("path",),
    "tar": ("path", "member"),
    "raster": ("path", "col", "row", "width", "height"),
    "cube": ("path", "col", "row", "width", "height", "time"),
}
_ALL_ID = ("source", "path", "member", "col", "row", "width", "height", "time")


def list_files(names: list[str]) -> list[str]:
    """The curated list's file name of each source: `curated.parquet` for one, else `curated_<name>.parquet` with
    the name's characters other than letters, digits, `.`, `_` and `-` as `_` (and `_2`, `_3` ... where two names
    meet). A name with a `/` wrote into a subfolder (`curated_s2/l2a.parquet`, never removed as stale), and one with
    `../` outside the output folder."""
    if len(names) == 1:
        return ["curated.parquet"]
    out: list[str] = []
    for name in names:
        stem = re.sub(r"[^A-Za-z0-9._-]+", "_", str(name)) or "source"
        fname, k = f"curated_{stem}.parquet", 1
        while fname in out:
            k += 1
            fname = f"curated_{stem}_{k}.parquet"
        out.append(fname)
    return out


def write_lists(tiles: Tiles, table: dict[str, Any], keep: np.ndarray, geoms: list | None, out: Path) -> list[str]:
    """The curated list of each source with kept tiles (`curated.parquet`, or `curated_<name>.parquet` when there
    are several sources), holding the identity columns of its type; returns the file names."""
    files = []
    src_of = np.asarray(table["source"])
    for i, (name, fname) in enumerate(zip(tiles.names, list_files(tiles.names))):
        sel = keep[src_of[keep] == name]
        if sel.size == 0:
            continue
        kind = tiles.types[i]
        cols = [*_TYPE_COLUMNS[kind], *(c for c in table if c not in _ALL_ID and c != "status")]
        georef = geoms is not None and kind in ("raster", "cube")
        archive = getattr(tiles.sources[i], "archive", None) if kind == "raster" else None
        grid = None if archive is None else {"crs": _text(archive.crs), "res": archive.res and list(archive.res)}
        if kind == "cube":  # each store's affine as read north-up (tilelist.check_cube_grid compares on read)
            from geodino.data.curate.tilelist import cube_grid_record

            grid = cube_grid_record(tiles.sources[i])
        write_table(
            {c: np.asarray(table[c])[sel] for c in cols},
            out / fname,
            [geoms[k] for k in sel] if geoms is not None and georef else None,  # georef implies geoms
            grid,
        )
        files.append(fname)
    return files


def _text(crs: Any) -> str | None:
    """A reprojection target as text (an EPSG code, WKT, a rasterio CRS); None for native grids."""
    if crs is None:
        return None
    to_string = getattr(crs, "to_string", None)
    return to_string() if callable(to_string) else str(crs)


def curated_config(tiles: Tiles, files: list[str], base: str, out: Path, overrides: Sequence[str] = ()) -> str:
    """`config.yaml`: extends the input config (`_base_`) with its sources pointed at the curated lists (sources
    with no kept tile left out), the run's `key=value` overrides other than those of the sources (the lists replace
    them) and, for a pretraining config, its output_dir (as overridden) + `_curated`; `geodino pretrain --config`
    reads it as it is. The overrides were dropped: `data curate -c CFG trainer.max_steps=7 ...` wrote a config.yaml
    that pretrained for the base config's steps."""
    import dataclasses

    import yaml

    from geodino.data.config import SourceConfig
    from geodino.io import atomic_path

    defaults = SourceConfig()
    sources = []
    for i, (name, cfg, fname) in enumerate(zip(tiles.names, tiles.configs, list_files(tiles.names))):
        if fname not in files:  # no tile of this source kept
            continue
        d = {"name": name, "type": cfg.type, "paths": [str((out / fname).resolve())]}
        d |= {
            f.name: getattr(cfg, f.name)
            for f in dataclasses.fields(cfg)
            if getattr(cfg, f.name) != getattr(defaults, f.name)
            and f.name not in (*d, "sampling", "max_nodata_fraction")
        }
        if tiles.types[i] in ("raster", "cube"):
            d["sampling"] = "grid"
        sources.append(d)
    from geodino.config import read_yaml

    raw = read_yaml(base)
    pretrain = "data" in raw
    kept = _kept_overrides(overrides, "data.sources" if pretrain else "sources")
    output_dir = kept.pop("output_dir", raw.get("output_dir")) if pretrain else None
    section: dict[str, Any] = {"data": {"sources": sources}} if pretrain else {"sources": sources}
    _merge_into(section, kept)
    if output_dir:
        # a run of its own: in the input config's folder it would resume that run's checkpoints with other data
        section = {"output_dir": str(output_dir).rstrip("/") + "_curated", **section}
    with atomic_path(out / "config.yaml", overwrite=True) as tmp:
        tmp.write_text(
            "# written by `geodino data curate`: the input config with its sources restricted to the curated tiles\n"
            + yaml.safe_dump({"_base_": str(Path(base).resolve()), **section}, sort_keys=False)
        )
    return "config.yaml"


def _kept_overrides(overrides: Sequence[str], sources_key: str) -> dict[str, Any]:
    """The `key=value` overrides nested as YAML ({"trainer": {"max_steps": 7}}), each value read as `load_config`
    reads it; those of the sources (`data.sources=[...]`, `data.sources[0].paths=...`) are left out, as the curated
    lists replace the sources."""
    from geodino.config import _nest, _parse_override

    kept: dict[str, Any] = {}
    for item in overrides:
        key, value = _parse_override(item)
        if key == sources_key or key.startswith((f"{sources_key}.", f"{sources_key}[")):
            continue
        _merge_into(kept, _nest(key, value))
    return kept


def _merge_into(into: dict[str, Any], more: dict[str, Any]) -> None:
    """`more` merged into `into`, key by key down nested mappings (a later value replaces an earlier one)."""
    for k, v in more.items():
        if isinstance(v, dict) and isinstance(into.get(k), dict):
            _merge_into(into[k], v)
        else:
            into[k] = v


def markdown(r: dict[str, Any]) -> str:
    rm = r["removed"]
    lines = [
        "# Curation report",
        "",
        f"{r['tiles']} tiles; removed {rm['nodata']} nodata, {rm['cloud']} cloud, {rm['duplicate']} near-duplicates; "
        f"{r['clustered']} clustered into levels {r['levels']} (finest first); **{r['kept']} kept**.",
        "",
        *_cloud_lines(r),
        "| top-level cluster | tiles before sampling | kept |",
        "|---|---|---|",
    ]
    for c, (b, a) in enumerate(zip(r["top_clusters"]["before"], r["top_clusters"]["after"])):
        lines.append(f"| {c} | {b} | {a} |")
    lb = np.asarray(r["level1_clusters"]["before"])
    la = np.asarray(r["level1_clusters"]["after"])
    empty = [int((a == 0).sum()) for a in (lb, la)]
    lines += [
        "",
        f"Level-1 clusters: sizes {lb.min()}..{lb.max()} before, {la.min()}..{la.max()} after sampling; max/min "
        f"ratio over non-empty clusters {_ratio(lb):.1f} -> {_ratio(la):.1f}"
        + (f" ({empty[0]} of {lb.size} clusters empty before, {empty[1]} after sampling)." if any(empty) else "."),
        "",
    ]
    return "\n".join(lines)


def _cloud_lines(r: dict[str, Any]) -> list[str]:
    """The cloud rule of each source and the share it may hold, so that a report with many `cloud` tiles says which
    test called them cloud (the spectral rules read reflectance: a wrong sensor scale makes forest and sea cloud)."""
    rules = r.get("cloud_rules") or {}
    if not rules:
        return []
    cfg = r.get("config") or {}
    limit = (
        f" (a tile is dropped above a {cfg['max_cloud']:g} share of cloud-like pixels)" if "max_cloud" in cfg else ""
    )
    out = [f"Cloud rule{limit}:", ""]
    out += [f"- {name}: {rule}" for name, rule in rules.items()]
    return [*out, ""]


def _ratio(sizes: np.ndarray) -> float:
    """Largest over smallest non-empty cluster size (nan when all are empty)."""
    nz = sizes[sizes > 0]
    return float(nz.max() / nz.min()) if nz.size else float("nan")
