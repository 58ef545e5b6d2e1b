"""`curate`: the whole pipeline (tiles -> embeddings -> filters -> hierarchical k-means -> balanced sample -> files)."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np

from geodino.data.curate.cluster import balanced_sample, hierarchical_kmeans, point_labels
from geodino.data.curate.config import CurateConfig
from geodino.data.curate.embed import embed_tiles
from geodino.data.curate.filters import near_duplicates
from geodino.data.curate.report import footprints, markdown, mosaic, tile_map, write_table
from geodino.data.curate.tiles import Tiles
from geodino.errors import InputError

__all__ = ["curate"]


def curate(cfg: CurateConfig, out_dir: str | Path, *, progress: bool = True) -> dict[str, Any]:
    """Run the whole curation (see the module docstring); returns the report dict."""
    from geodino.backbones import load_backbone
    from geodino.io import atomic_path, make_dirs

    cfg.validate()
    tiles = Tiles(cfg)
    if tiles.n == 0:
        raise InputError(f"the archive {cfg.paths} holds no tiles; check the paths and --tile-size")
    if cfg.size > tiles.n:
        raise InputError(f"--size {cfg.size} is larger than the archive ({tiles.n} tiles); ask for at most {tiles.n}")
    out = make_dirs(out_dir)
    backbone = load_backbone(cfg.backbone, device=cfg.device)
    e = embed_tiles(tiles, backbone, out / "embeddings", cfg, progress=progress)
    emb = e["emb"]
    status = np.full(tiles.n, "candidate", dtype=object)
    status[e["nodata"] > cfg.max_nodata] = "nodata"
    status[(status == "candidate") & (e["cloud"] > cfg.max_cloud)] = "cloud"
    cand = np.flatnonzero(status == "candidate")
    dup = near_duplicates(emb[cand], cfg.dedup) if cfg.dedup < 1.0 else np.zeros(cand.size, bool)
    status[cand[dup]] = "duplicate"
    pool = np.flatnonzero(status == "candidate")
    if cfg.size > pool.size:
        counts = {k: int((status == k).sum()) for k in ("nodata", "cloud", "duplicate")}
        raise InputError(
            f"--size {cfg.size} is more than the {pool.size} tiles left after filtering ({counts}); ask for fewer or "
            "loosen --dedup / --max-nodata / --max-cloud (embeddings are cached: re-running is fast)"
        )
    levels = hierarchical_kmeans(
        emb[pool], cfg.clusters, resamples=cfg.resamples, resample_size=cfg.resample_size, seed=cfg.seed
    )
    labels = point_labels(levels)
    picked = balanced_sample(emb[pool], levels, cfg.size, strategy=cfg.strategy, seed=cfg.seed)
    status[pool] = "not sampled"
    status[pool[picked]] = "kept"
    full_labels = [np.full(tiles.n, -1, np.int64) for _ in levels]
    for li, lab in enumerate(labels):
        full_labels[li][pool] = lab
    table = dict(tiles.table)
    for li, lab in enumerate(full_labels):
        table[f"cluster_l{li + 1}"] = lab
    table["nodata_share"], table["cloud_share"], table["status"] = e["nodata"], e["cloud"], status.astype(str)
    geoms = footprints(tiles) if tiles.type == "raster" else None
    keep = np.flatnonzero(status == "kept")
    kept_table = {k: np.asarray(v)[keep] for k, v in table.items() if k not in ("status",)}
    write_table(kept_table, out / "curated.parquet", None if geoms is None else [geoms[k] for k in keep])
    write_table(table, out / "tiles.parquet", geoms)
    top = len(levels) - 1
    k_top = levels[top]["centroids"].shape[0]
    before = np.bincount(labels[top], minlength=k_top)
    after = np.bincount(labels[top][picked], minlength=k_top)
    leaf_before = np.bincount(labels[0], minlength=levels[0]["centroids"].shape[0])
    leaf_after = np.bincount(labels[0][picked], minlength=levels[0]["centroids"].shape[0])
    cents = levels[top]["centroids"] / np.maximum(
        np.linalg.norm(levels[top]["centroids"], axis=1, keepdims=True), 1e-12
    )
    mosaic(tiles, emb[pool], labels[top], cents, picked, cfg.exemplars, out / "exemplars.png")
    if geoms is not None:
        tile_map(geoms, status, out / "map.png", f"{keep.size} of {tiles.n} tiles kept")
    report = {
        "tiles": tiles.n,
        "removed": {k: int((status == k).sum()) for k in ("nodata", "cloud", "duplicate")},
        "clustered": int(pool.size),
        "kept": int(keep.size),
        "levels": [int(lv["centroids"].shape[0]) for lv in levels],
        "top_clusters": {"before": before.tolist(), "after": after.tolist()},
        "level1_clusters": {"before": leaf_before.tolist(), "after": leaf_after.tolist()},
        "config": asdict(cfg),
        "backbone_fingerprint": backbone.fingerprint,
        "files": ["curated.parquet", "tiles.parquet", "report.json", "report.md", "exemplars.png"]
        + (["map.png"] if geoms is not None else []),
    }
    with atomic_path(out / "report.json", overwrite=True) as tmp:
        tmp.write_text(json.dumps(report, indent=2))
    with atomic_path(out / "report.md", overwrite=True) as tmp:
        tmp.write_text(markdown(report))
    return report
