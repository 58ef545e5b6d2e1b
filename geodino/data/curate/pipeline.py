"""`curate`: the whole pipeline (tiles -> embeddings -> filters -> hierarchical k-means -> balanced sample -> files)."""

from __future__ import annotations

import contextlib
import json
import re
import warnings
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np

from geodino.data.curate.cluster import balanced_sample, hierarchical_kmeans, point_labels
from geodino.data.curate.config import CurateConfig
from geodino.data.curate.dedup import near_duplicates
from geodino.data.curate.embed import check_same_curation, embed_tiles, source_rules
from geodino.data.curate.report import curated_config, markdown, mosaic, tile_map, write_lists, write_table
from geodino.data.curate.tiles import Tiles
from geodino.errors import GeoDinoError, InputError, plural

__all__ = ["curate"]


def curate(cfg: CurateConfig, out_dir: str | Path, *, progress: bool = True, overwrite: bool = False) -> dict[str, Any]:
    """Run the whole curation (see the package docstring); returns the report dict. An `out_dir` holding another
    curation (another backbone or other inputs) is refused unless `overwrite`; the same one re-uses its cache."""
    from geodino.io import make_dirs
    from geodino.run_lock import locked_output

    cfg.validate()
    out = Path(out_dir).expanduser()
    make_dirs(out.parent)  # the lock file sits beside the output folder
    # one run at a time into one folder: a second curation (another backbone) deleted the first one's embedding
    # chunks as it claimed them, and both could cluster a mix; the second now stops with one line
    with locked_output(out, what="output folder"):
        return _curate(cfg, out, progress=progress, overwrite=overwrite)


def _curate(cfg: CurateConfig, out: Path, *, progress: bool, overwrite: bool) -> dict[str, Any]:
    """`curate` while holding the output folder's lock."""
    from geodino.backbones import load_backbone
    from geodino.io import atomic_path, make_dirs

    configs, where = cfg.source_configs()
    tiles = Tiles(
        configs,
        where,
        skip_hint="pass --on-error skip (on_error='skip' in Python; the tile is then dropped as nodata)",
        qa_band=cfg.qa_band,
    )
    _check_out_outside_images(tiles, out)
    if not overwrite:
        _check_foreign_outputs(out)
    rules = source_rules(tiles, cfg)
    _warn_swir_on_bytes(rules, tiles)
    what = cfg.config or cfg.paths
    if tiles.n == 0:
        raise InputError(f"the archive {what} holds no tiles; check the paths and the tile size")
    if cfg.size > tiles.n:
        raise InputError(
            f"--size {cfg.size} (size= in Python) is larger than the archive ({plural(tiles.n, 'tile')}); ask for at "
            f"most {tiles.n}"
        )
    fresh = [d for d in (out, out / "embeddings") if not d.exists()]
    make_dirs(out)
    try:
        backbone = load_backbone(cfg.backbone, device=cfg.device)
        check_same_curation(out, tiles, backbone, rules, cfg, overwrite=overwrite)
        e = embed_tiles(tiles, backbone, out / "embeddings", cfg, progress=progress, rules=rules)
    except GeoDinoError:
        for d in reversed(fresh):  # a run that wrote no chunk leaves no folder behind (an interrupted one keeps its)
            with contextlib.suppress(OSError):
                d.rmdir()
        raise
    tiles.set_times(
        e["time"]
    )  # the dates cubes under first/last were read at (their fallbacks), from the embedding pass
    emb = e["emb"]
    _warn_empty_qa60(rules, tiles, e)
    status = np.full(tiles.n, "candidate", dtype=object)
    status[e["nodata"] > cfg.max_nodata] = "nodata"
    status[(status == "candidate") & (e["cloud"] > cfg.max_cloud)] = "cloud"
    cand = np.flatnonzero(status == "candidate")
    dup = near_duplicates(emb[cand], cfg.dedup) if cfg.dedup < 1.0 else np.zeros(cand.size, bool)
    status[cand[dup]] = "duplicate"
    pool = np.flatnonzero(status == "candidate")
    if cfg.size > pool.size:
        counts = ", ".join(
            f"{int((status == k).sum())} {word}"
            for k, word in (("nodata", "nodata"), ("cloud", "cloud"), ("duplicate", "duplicates"))
        )
        raise InputError(
            f"--size {cfg.size} (size= in Python) is more than the {plural(pool.size, 'tile')} left after filtering "
            f"({counts}); ask for "
            "fewer or "
            "loosen --dedup / --max-nodata / --max-cloud (dedup= / max_nodata= / max_cloud= in Python; embeddings are "
            "cached: re-running is fast)"
        )
    _warn_clipped_clusters(cfg.clusters, pool.size)
    levels = hierarchical_kmeans(
        emb[pool], cfg.clusters, resamples=cfg.resamples, resample_size=cfg.resample_size, seed=cfg.seed
    )
    labels = point_labels(levels)
    picked = balanced_sample(emb[pool], levels, cfg.size, strategy=cfg.strategy, seed=cfg.seed)
    status[pool] = "not sampled"
    status[pool[picked]] = "kept"
    table = dict(tiles.table)
    for li, lab in enumerate(labels):
        table[f"cluster_l{li + 1}"] = np.full(tiles.n, -1, np.int64)
        table[f"cluster_l{li + 1}"][pool] = lab
    table["nodata_share"], table["cloud_share"], table["status"] = e["nodata"], e["cloud"], status.astype(str)
    geoms = tiles.footprints()
    keep = np.flatnonzero(status == "kept")
    files = write_lists(tiles, table, keep, geoms, out)
    if cfg.config:
        files.append(curated_config(tiles, files, cfg.config, out, cfg.overrides))
    write_table(table, out / "tiles.parquet", geoms)
    top = len(levels) - 1
    cents = levels[top]["centroids"] / np.maximum(
        np.linalg.norm(levels[top]["centroids"], axis=1, keepdims=True), 1e-12
    )
    top_of = np.full(tiles.n, -1, np.int64)
    top_of[pool] = labels[top]
    mosaic(tiles, emb, top_of, cents, pool[picked], cfg.exemplars, out / "exemplars.png")
    if geoms is not None:
        tile_map(geoms, status, out / "map.png", f"{keep.size} of {tiles.n} tiles kept")
    # the QA band read apart with nearest (`qaband.warped_model_qa`) where the qa rule decodes it; None elsewhere
    warped = getattr(tiles, "_warped_qa", None) or [None] * len(rules)
    apart = [q if r.kind == "qa" and r.qa_band is None else None for q, r in zip(warped, rules)]
    report: dict[str, Any] = {
        "tiles": tiles.n,
        "sources": {n: int(c) for n, c in zip(tiles.names, tiles.counts)},
        "cloud_rules": {n: r.describe(None if q is None else q.name) for n, r, q in zip(tiles.names, rules, apart)},
        # the screening-only QA band of each source (--qa-band): its name and encoding; None: none
        "qa_band": {n: None if q is None else q.describe() for n, q in zip(tiles.names, tiles.qa_bands)},
        # a model input QA band of a reprojected source, decoded by the qa rule from its own nearest read
        "qa_read_apart": {n: _read_apart(q, s) for n, q, s in zip(tiles.names, apart, tiles.sources)},
        "removed": {k: int((status == k).sum()) for k in ("nodata", "cloud", "duplicate")},
        "clustered": int(pool.size),
        "kept": int(keep.size),
        "levels": [int(lv["centroids"].shape[0]) for lv in levels],
        "top_clusters": _sizes(labels[top], picked, levels[top]),
        "level1_clusters": _sizes(labels[0], picked, levels[0]),
        "config": asdict(cfg),
        "backbone_fingerprint": backbone.fingerprint,
        "files": [*files, "tiles.parquet", "report.json", "report.md", "exemplars.png"]
        + (["map.png"] if geoms is not None else []),
    }
    report["stale_files_removed"] = _remove_stale(out, report["files"])
    with atomic_path(out / "report.json", overwrite=True) as tmp:
        tmp.write_text(json.dumps(report, indent=2))
    with atomic_path(out / "report.md", overwrite=True) as tmp:
        tmp.write_text(markdown(report))
    return report


def _sizes(labels: np.ndarray, picked: np.ndarray, level: dict[str, np.ndarray]) -> dict[str, list[int]]:
    """Cluster sizes of one level before and after sampling."""
    k = level["centroids"].shape[0]
    return {
        "before": np.bincount(labels, minlength=k).tolist(),
        "after": np.bincount(labels[picked], minlength=k).tolist(),
    }


def _warn_swir_on_bytes(rules: list[Any], tiles: Tiles) -> None:
    """One warning per source whose 8-bit rasters the swir rule reads as reflectance (`clouds.swir_on_bytes`)."""
    from geodino.data.curate.clouds import swir_on_bytes

    dtypes = [[sc.dtype for sc in s.archive.scenes] if hasattr(s, "archive") else [] for s in tiles.sources]
    for i in swir_on_bytes(rules, dtypes):
        warnings.warn(
            f"source {tiles.names[i]}: the swir cloud rule reads reflectance (after the sensor's scale and offset), "
            "but its rasters hold 8-bit values, seldom reflectance x 255: digital numbers with a sensor offset put "
            "sea and forest above Fmask's thresholds and drop them as cloud; give the sensor's reflectance scale "
            "and offset, or choose --cloud-rule rgb or off (tiles.parquet lists each tile's cloud share)",
            stacklevel=3,
        )


def _warn_empty_qa60(rules: list[Any], tiles: Tiles, e: dict[str, np.ndarray]) -> None:
    """One warning per source whose QA60 band flagged no cloud at all (`clouds.empty_qa60`)."""
    from geodino.data.curate.clouds import empty_qa60

    for i in empty_qa60(rules, tiles.source_of, e["cloud"], e["nodata"]):
        n = int(tiles.counts[i])
        warnings.warn(
            f"source {tiles.names[i]}: its QA60 band flags no cloud in any of its {plural(n, 'tile')}; Sentinel-2 L1C "
            "of processing baseline 04.00 and later (from 2022-01-25) ship QA60 empty (clouds are in "
            "MSK_CLASSI_OPAQUE / MSK_CLASSI_CIRRUS), so nothing was screened if the scenes are that recent: screen "
            "them with an L2A SCL band (--qa-band SCL) or --cloud-rule swir",
            stacklevel=3,
        )


def _warn_clipped_clusters(clusters: list[int], n: int) -> None:
    """One warning naming each level whose asked k exceeds what it clusters (the tiles left, or the clusters of
    the level below): k-means there uses that many instead."""
    clipped = []
    for li, k in enumerate(clusters):
        used = max(1, min(int(k), n))
        if used < int(k):
            what = f"{plural(n, 'tile')} left after filtering" if li == 0 else plural(n, f"level-{li} cluster")
            clipped.append(f"level {li + 1} asks for {k} clusters but has only {what}, so it uses {used}")
        n = used
    if clipped:
        warnings.warn(f"--clusters {list(clusters)} (clusters= in Python): " + "; ".join(clipped), stacklevel=3)


OUTPUT_NAMES = (
    "curated.parquet",
    "tiles.parquet",
    "report.json",
    "report.md",
    "exemplars.png",
    "map.png",
    "config.yaml",
)
"""The files a curation writes in its folder (with `curated_<name>.parquet` per source of several)."""


def _earlier_report(out: Path) -> dict[str, Any] | None:
    """The report.json of an earlier curation in `out`, or None (none, damaged, or another tool's: a curation's
    records its levels, backbone fingerprint and files)."""
    try:
        report = json.loads((out / "report.json").read_text())
    except (OSError, ValueError):
        return None
    keys = ("levels", "backbone_fingerprint", "files")
    if not isinstance(report, dict) or not all(k in report for k in keys) or not isinstance(report["files"], list):
        return None
    return report


def _check_foreign_outputs(out: Path) -> None:
    """Refuse, in one line before any work, an `out` that holds files under the names a curation writes but no
    curation (no `embeddings/meta.json`, no curation's report.json): a folder of other work (a pretraining run's
    config.yaml, a report.md of one's own) was overwritten without a word, and the files another tool's report.json
    listed were deleted as "stale"."""
    if not out.is_dir() or (out / "embeddings" / "meta.json").exists() or _earlier_report(out) is not None:
        return
    found = sorted(
        f.name for f in out.iterdir() if f.name in OUTPUT_NAMES or re.fullmatch(r"curated_.+\.parquet", f.name)
    )
    if found:
        raise InputError(
            f"--out {out} (out_dir= in Python) holds {', '.join(found)} but no earlier curation (no "
            "embeddings/meta.json, no curation's report.json), and this run writes files of those names: pass "
            "--overwrite (overwrite=True in Python) to replace them, or choose another --out folder"
        )


def _remove_stale(out: Path, files: list[str]) -> list[str]:
    """Remove the files the previous curation's report.json listed in `out` that this run did not write (only
    those: plain names, no paths); returns their names. Another tool's report.json lists nothing to remove."""
    before = (_earlier_report(out) or {}).get("files", [])
    gone = []
    for name in before:
        if not isinstance(name, str) or name in files or Path(name).name != name or name in ("", ".", ".."):
            continue
        if (out / name).is_file():
            (out / name).unlink()
            gone.append(name)
    return gone


def _read_apart(qa: Any, source: Any) -> str | None:
    """How a model input QA band reached the cloud test and the backbone on a reprojected source; None: not so."""
    if qa is None:
        return None
    how = getattr(getattr(source, "archive", None), "resampling", "bilinear")
    return (
        f"{qa.describe()}: a model input band; the qa rule decodes its codes read apart with nearest resampling "
        f"(intact), the backbone gets it reprojected with {how} resampling (interpolated codes)"
    )


def _check_out_outside_images(tiles: Tiles, out: Path) -> None:
    """Refuse an output folder inside (or equal to) a folder an images source lists: its exemplars.png (and
    map.png) were read as tiles of the next run, which then refused the folder as holding 'other inputs' (3 tiles
    then 4), and with --overwrite curated its own mosaic. The listed images are compared through their parent
    folders, each resolved once: resolving every path took 7 s per 100k images (2 cores)."""
    import os

    where = out.expanduser().resolve()
    for name, c in zip(tiles.names, tiles.configs):
        if c.type != "images":
            continue
        folders = [Path(str(p)).expanduser() for p in c.paths]
        folders = [d.resolve() for d in folders if d.is_dir()]
        mine = {i for i, n in enumerate(tiles.names) if n == name}
        # `where` is an ancestor of a listed image exactly when it is its resolved parent folder or an ancestor
        # of it; a linked image counts where its link sits (a glob re-reads that folder, not the link's target)
        parents = {os.path.dirname(str(p)) for p, i in zip(tiles.table["path"], tiles.source_of) if i in mine}
        held_dirs = [Path(d or ".").resolve() for d in parents]
        inside = next((d for d in folders if d == where or d in where.parents), None)
        if inside is None and not any(where == d or where in d.parents for d in held_dirs):
            continue
        held = f"the image folder {inside}" if inside is not None else "the images listed"
        held += f" of source {name}" if c.name else ""
        raise InputError(
            f"--out {out} (out_dir= in Python) is inside {held}: the PNG files curate writes there (exemplars.png, "
            "map.png) would be read as tiles by the next run; choose an --out folder outside it"
        )
