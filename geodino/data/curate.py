"""DINOv2/v3-style data curation for an archive: embed tiles, filter, hierarchical k-means, balanced sampling.

The pipeline (`curate`):

1. **Tiles.** Images: one tile per file. Rasters: the source's grid of `tile_size` px tiles (stride = tile size).
2. **Embed** every tile with a frozen backbone (CLS token of the last block, L2-normalised): streamed in chunks of
   `chunk` tiles read by `workers` processes; each chunk is written to `embeddings/part_NNNNN.npz` atomically, so a
   killed run resumes at the first missing chunk (a `meta.json` ties the parts to the backbone and the tile list).
3. **Filter** (the documented rule, counted in the report):
   - *nodata*: a tile whose share of nodata pixels exceeds `max_nodata` (default 0.5) is dropped;
   - *cloud*: a pixel is cloud-like when every one of the sensor's RGB bands (the first three when it names none)
     has reflectance >= `cloud_threshold` (default 0.5: thick clouds are bright and white; snow, salt flats,
     saturated pixels and some roofs also pass, thin haze does not); a tile whose share of cloud-like pixels exceeds
     `max_cloud` (default 0.5) is dropped;
   - *near-duplicates*: tiles are visited in archive order and a tile whose cosine similarity to an earlier kept
     tile is >= `dedup` (default 0.95) is dropped (the earlier one stays).
4. **Cluster** the remaining embeddings with hierarchical k-means as in DINOv2/v3 curation (Vo et al. 2024):
   level 1 runs k-means on the embeddings, level l on the centroids of level l-1 (`clusters`, e.g. [64, 16, 4]);
   optional resampling steps re-fit each level on the `resample_size` points closest to each centroid.
5. **Balanced sampling** to `size` tiles, top-down: a cluster's budget is split among its children so that each
   child gets min(x, its size) with the largest x that fits ("water filling"; the remainder goes one tile each to
   random children larger than x), down to level-1 clusters, which give random tiles (or the closest to the
   centroid with `strategy="closest"`). Small clusters keep all their tiles; large ones are thinned.
6. **Write** `curated.parquet` (GeoParquet with footprints for rasters; `data.sources` accepts it as `paths`),
   `tiles.parquet` (every tile with its status), `report.json` / `report.md` (cluster sizes before and after,
   tiles removed per rule), `exemplars.png` (tiles closest to each top-level centroid) and `map.png` (rasters).
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from geodino.errors import ConfigError, InputError

__all__ = [
    "CurateConfig",
    "balanced_sample",
    "cloud_fraction",
    "curate",
    "curated_windows",
    "hierarchical_kmeans",
    "near_duplicates",
    "water_fill",
]

WINDOW_COLUMNS = ("col", "row", "width", "height")


@dataclass
class CurateConfig:
    """Settings of `curate` (see the module docstring for the rules)."""

    paths: list[str] = field(default_factory=list)
    type: str = "images"  # images | raster
    sensor: str | None = None
    bands: list[str] | None = None
    tile_size: int = 256  # raster tiles, px
    backbone: str = ""
    size: int = 0  # tiles to keep
    clusters: list[int] = field(default_factory=lambda: [64, 16, 4])  # per level, finest first
    resamples: int = 0  # resampling steps per level (0: plain k-means)
    resample_size: int = 10  # points closest to each centroid used in a resampling step
    strategy: str = "random"  # random | closest (within level-1 clusters)
    dedup: float = 0.95  # cosine similarity at or above which a later tile is a near-duplicate (1.0 < off)
    max_nodata: float = 0.5
    cloud_threshold: float = 0.5
    max_cloud: float = 0.5
    chunk: int = 512
    batch_size: int = 64
    workers: int = 0
    device: str = "cpu"
    seed: int = 0
    exemplars: int = 8

    def validate(self) -> None:
        if self.type not in ("images", "raster"):
            raise ConfigError(f"curate type={self.type!r}; use images or raster")
        if not self.backbone:
            raise ConfigError("curate needs --backbone SPEC (a checkpoint, arch:NAME or timm:NAME)")
        if self.size <= 0:
            raise ConfigError(f"--size {self.size}: give the number of tiles to keep (> 0)")
        if not self.clusters or any(int(k) < 1 for k in self.clusters):
            raise ConfigError(f"--clusters {self.clusters}: give one positive count per level, finest first")
        if any(int(a) < int(b) for a, b in zip(self.clusters, self.clusters[1:])):
            raise ConfigError(f"--clusters {self.clusters}: counts must not grow from level to level (finest first)")
        if self.strategy not in ("random", "closest"):
            raise ConfigError(f"--strategy {self.strategy!r}; use random or closest")
        for key in ("max_nodata", "max_cloud"):
            if not 0.0 <= getattr(self, key) <= 1.0:
                raise ConfigError(f"--{key.replace('_', '-')} {getattr(self, key)} must be in [0, 1]")


# ------------------------------------------------------------------------------------------------------------------
# tiles and their embeddings
# ------------------------------------------------------------------------------------------------------------------
class _Tiles:
    """Index -> (reflectance image [C,H,W], valid [H,W]) for an image folder or a raster grid; picklable for
    DataLoader workers (the raster archive re-opens its handles per process)."""

    def __init__(self, cfg: CurateConfig) -> None:
        from geodino.data.sensors import get_sensor

        self.type = cfg.type
        if cfg.type == "images":
            from geodino.data.paths import IMAGE_EXTS, resolve_paths

            self.files = resolve_paths(cfg.paths, IMAGE_EXTS, what="image")
            self.sensor = get_sensor(cfg.sensor or "imagenet")
            self.windows = None
            self.table = {"path": [str(Path(f).resolve()) for f in self.files]}
        else:
            from geodino.data.archive import RasterArchive
            from geodino.data.tiling import TileSampler

            self.archive = RasterArchive(cfg.paths, sensor=cfg.sensor, bands=cfg.bands, progress=False)
            self.sensor = self.archive.sensor
            grid = TileSampler(self.archive.scenes, cfg.tile_size, sampling="grid")
            self.windows = [grid.grid_tile(k) for k in range(len(grid))]
            scenes = self.archive.scenes
            self.table = {
                "path": [str(Path(scenes[w[0]].path).resolve()) for w in self.windows],
                **{name: [int(w[i + 1]) for w in self.windows] for i, name in enumerate(WINDOW_COLUMNS)},
            }
        self.n = len(self.table["path"])

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, k: int) -> tuple[np.ndarray, np.ndarray]:
        if self.type == "images":
            from geodino.data.images import decode_image

            path = self.files[k]
            data = decode_image(Path(path).read_bytes(), path)
            image = self.sensor.to_reflectance(data.astype(np.float32)).astype(np.float32)
            return image, np.ones(image.shape[1:], bool)
        s = self.archive.sample(*self.windows[k])
        return s["image"], s["valid"]


def cloud_fraction(image: np.ndarray, valid: np.ndarray, rgb: Sequence[int], threshold: float) -> float:
    """Share of valid pixels where every RGB band has reflectance >= `threshold` (bright and white)."""
    bright = np.all(image[list(rgb)] >= threshold, axis=0) & valid
    return float(bright.sum() / max(int(valid.sum()), 1))


def _rgb_index(sensor: Any, n_bands: int) -> list[int]:
    if sensor is not None and sensor.rgb_bands and all(b in sensor.bands for b in sensor.rgb_bands):
        return [list(sensor.bands).index(b) for b in sensor.rgb_bands]
    return [0, 1, 2] if n_bands >= 3 else [0] * 3


def _collate(batch: list[tuple[np.ndarray, np.ndarray]]) -> list[tuple[np.ndarray, np.ndarray]]:
    return batch


def embed_tiles(tiles: _Tiles, backbone: Any, folder: Path, cfg: CurateConfig, progress: bool = True) -> dict:
    """Embeddings [N, D] (L2-normalised CLS) plus per-tile nodata and cloud shares, chunk by chunk with resume."""
    import torch

    from geodino.io import atomic_path, make_dirs

    make_dirs(folder)
    key = hashlib.sha256(
        json.dumps(
            [
                backbone.fingerprint,
                tiles.table["path"][:: max(1, tiles.n // 1000)],
                tiles.n,
                cfg.tile_size,
                cfg.cloud_threshold,
                cfg.chunk,
            ]
        ).encode()
    ).hexdigest()
    meta = folder / "meta.json"
    if meta.exists() and json.loads(meta.read_text()).get("key") != key:
        for part in folder.glob("part_*.npz"):  # another backbone or archive: the old parts do not apply
            part.unlink()
    with atomic_path(meta, overwrite=True) as tmp:
        tmp.write_text(json.dumps({"key": key, "tiles": tiles.n, "backbone": backbone.spec}))
    rgb = _rgb_index(tiles.sensor, len(tiles.sensor.bands))
    p = int(backbone.patch_size)
    n_chunks = math.ceil(tiles.n / cfg.chunk)
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=tiles.n, desc="embedding tiles", unit="tile")
    for c in range(n_chunks):
        part = folder / f"part_{c:05d}.npz"
        lo, hi = c * cfg.chunk, min((c + 1) * cfg.chunk, tiles.n)
        if part.exists():
            if bar is not None:
                bar.update(hi - lo)
            continue
        subset = torch.utils.data.Subset(tiles, range(lo, hi))  # type: ignore[arg-type]
        loader = torch.utils.data.DataLoader(
            subset, batch_size=cfg.batch_size, num_workers=cfg.workers, collate_fn=_collate
        )
        embs, nodata, cloud = [], [], []
        for batch in loader:
            images = []
            for image, valid in batch:
                nodata.append(1.0 - float(valid.mean()))
                cloud.append(cloud_fraction(image, valid, rgb, cfg.cloud_threshold))
                h, w = (image.shape[1] // p) * p, (image.shape[2] // p) * p
                if h == 0 or w == 0:
                    raise InputError(f"tiles of {image.shape[2]}x{image.shape[1]} px are smaller than one {p} px patch")
                x = backbone.normalize(torch.from_numpy(np.ascontiguousarray(image[:, :h, :w])))
                images.append(torch.where(torch.from_numpy(valid[:h, :w])[None], x, torch.zeros(())))
            sizes = {tuple(t.shape) for t in images}
            groups = [torch.stack(images)] if len(sizes) == 1 else [t[None] for t in images]
            for g in groups:
                cls = backbone.features(g, layers="last")[1][0]
                embs.append(torch.nn.functional.normalize(cls.float(), dim=-1).cpu().numpy())
            if bar is not None:
                bar.update(len(batch))
        with atomic_path(part, overwrite=True) as tmp:
            with open(tmp, "wb") as fh:
                np.savez(
                    fh,
                    emb=np.concatenate(embs).astype(np.float32),
                    nodata=np.asarray(nodata, np.float32),
                    cloud=np.asarray(cloud, np.float32),
                )
    if bar is not None:
        bar.close()
    parts = [np.load(folder / f"part_{c:05d}.npz") for c in range(n_chunks)]
    return {k: np.concatenate([q[k] for q in parts]) for k in ("emb", "nodata", "cloud")}


# ------------------------------------------------------------------------------------------------------------------
# near-duplicates
# ------------------------------------------------------------------------------------------------------------------
def near_duplicates(emb: np.ndarray, threshold: float, block: int = 2048) -> np.ndarray:
    """Bool [N]: True where a tile's cosine similarity to an earlier *kept* tile is >= `threshold` (rows of
    `emb` L2-normalised). Exact search in blocks: faiss is not installed here (and its flat index is the same
    exact inner-product search); a torch matmul of each block against the kept set costs O(N·K·D), seconds for
    1e5 tiles, and needs no pair list (an ocean archive would give O(N²) pairs)."""
    import torch

    x = torch.from_numpy(np.ascontiguousarray(emb, dtype=np.float32))
    n = x.shape[0]
    dup = np.zeros(n, bool)
    kept = x[:0]
    for lo in range(0, n, block):
        b = x[lo : lo + block]
        hit = (
            (b @ kept.T).max(dim=1).values >= threshold if kept.shape[0] else torch.zeros(b.shape[0], dtype=torch.bool)
        )
        inner = b @ b.T
        keep_local: list[int] = []
        for i in range(b.shape[0]):  # within the block, in order: against the block's earlier kept rows
            if hit[i] or (keep_local and bool((inner[i, keep_local] >= threshold).any())):
                dup[lo + i] = True
            else:
                keep_local.append(i)
        kept = torch.cat([kept, b[keep_local]])
    return dup


# ------------------------------------------------------------------------------------------------------------------
# hierarchical k-means and balanced sampling
# ------------------------------------------------------------------------------------------------------------------
def _kmeans(x: np.ndarray, k: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    from sklearn.cluster import KMeans

    k = max(1, min(int(k), x.shape[0]))
    km = KMeans(n_clusters=k, n_init=1, random_state=seed).fit(x)
    return km.cluster_centers_.astype(np.float32), km.labels_.astype(np.int64)


def hierarchical_kmeans(
    x: np.ndarray, clusters: Sequence[int], *, resamples: int = 0, resample_size: int = 10, seed: int = 0
) -> list[dict[str, np.ndarray]]:
    """Levels finest first: level 1 clusters `x`, level l clusters the centroids of level l-1. Each level holds
    `centroids` [K_l, D] and `assign` (the level-(l-1) item -> level-l cluster; points for level 1). A resampling
    step re-fits the level's k-means on the `resample_size` items closest to each centroid, then reassigns all."""
    levels = []
    items = np.asarray(x, dtype=np.float32)
    for li, k in enumerate(clusters):
        cent, assign = _kmeans(items, k, seed + li)
        for r in range(resamples):
            d = ((items[:, None, :] - cent[None]) ** 2).sum(-1) if items.shape[0] * cent.shape[0] < 5e7 else None
            if d is None:
                break
            pick = []
            for c in range(cent.shape[0]):
                members = np.flatnonzero(assign == c)
                pick.extend(members[np.argsort(d[members, c])[:resample_size]])
            cent, _ = _kmeans(items[np.asarray(pick)], cent.shape[0], seed + 1000 * (r + 1) + li)
            assign = ((items[:, None, :] - cent[None]) ** 2).sum(-1).argmin(1)
        levels.append({"centroids": cent, "assign": assign})
        items = cent
    return levels


def point_labels(levels: list[dict[str, np.ndarray]]) -> list[np.ndarray]:
    """Each point's cluster at every level (finest first)."""
    labels = [levels[0]["assign"]]
    for lv in levels[1:]:
        labels.append(lv["assign"][labels[-1]])
    return labels


def water_fill(sizes: np.ndarray, target: int, rng: np.random.Generator) -> np.ndarray:
    """Per-cluster counts summing to min(target, sum(sizes)): min(x, size) for the largest x that fits, then one
    more for randomly chosen clusters larger than x until the target is met (DINOv2/v3 balanced sampling)."""
    sizes = np.asarray(sizes, dtype=np.int64)
    if target >= sizes.sum():
        return sizes.copy()
    lo, hi = 0, int(sizes.max())
    while lo < hi:  # largest x with sum(min(x, sizes)) <= target
        mid = (lo + hi + 1) // 2
        if np.minimum(mid, sizes).sum() <= target:
            lo = mid
        else:
            hi = mid - 1
    out = np.minimum(lo, sizes)
    rest = int(target - out.sum())
    if rest:
        bigger = np.flatnonzero(sizes > lo)
        out[rng.choice(bigger, rest, replace=False)] += 1
    return out


def balanced_sample(
    emb: np.ndarray, levels: list[dict[str, np.ndarray]], size: int, *, strategy: str = "random", seed: int = 0
) -> np.ndarray:
    """Indices of `size` points sampled top-down over the cluster tree with `water_fill` at every level."""
    rng = np.random.default_rng(seed)
    labels = point_labels(levels)
    top = len(levels) - 1

    def take(level: int, cluster: int, budget: int) -> list[np.ndarray]:
        if budget <= 0:
            return []
        if level == 0:
            members = np.flatnonzero(labels[0] == cluster)
            if strategy == "closest":
                d = ((emb[members] - levels[0]["centroids"][cluster]) ** 2).sum(-1)
                return [members[np.argsort(d, kind="stable")[:budget]]]
            return [rng.choice(members, budget, replace=False)]
        children = np.flatnonzero(levels[level]["assign"] == cluster)
        child_sizes = np.array([(labels[level - 1] == c).sum() for c in children])
        counts = water_fill(child_sizes, budget, rng)
        return [a for c, k in zip(children, counts) for a in take(level - 1, int(c), int(k))]

    roots = np.arange(levels[top]["centroids"].shape[0])
    root_sizes = np.array([(labels[top] == c).sum() for c in roots])
    counts = water_fill(root_sizes, size, rng)
    picked = [a for c, k in zip(roots, counts) for a in take(top, int(c), int(k))]
    return np.sort(np.concatenate(picked)) if picked else np.zeros(0, np.int64)


# ------------------------------------------------------------------------------------------------------------------
# the curated list as a data source
# ------------------------------------------------------------------------------------------------------------------
def is_tile_list(paths: Any) -> bool:
    items = [paths] if isinstance(paths, str | Path) else list(paths or [])
    return len(items) == 1 and str(items[0]).lower().endswith(".parquet")


def read_paths(path: str | Path) -> list[str]:
    """The `path` column of a curated list (relative paths are relative to the list's folder)."""
    import pyarrow.parquet as pq

    path = Path(path)
    try:
        table = pq.read_table(path, columns=["path"])
    except Exception as exc:
        raise InputError(
            f"{path} is not a tile list with a `path` column ({type(exc).__name__}); write one with "
            "`geodino data curate`"
        ) from exc
    files = [str(p) for p in table.column("path").to_pylist()]
    if not files:
        raise InputError(f"tile list {path} is empty; curate with a larger --size")
    return [f if Path(f).is_absolute() else str(path.parent / f) for f in files]


def curated_windows(paths: Any) -> dict[str, np.ndarray] | None:
    """The raster windows of a curated list given as a source's `paths` (None when `paths` is not one)."""
    if not is_tile_list(paths):
        return None
    import pyarrow.parquet as pq

    path = Path(str(paths if isinstance(paths, str | Path) else paths[0]))
    names = pq.read_schema(path).names
    if not all(c in names for c in WINDOW_COLUMNS):
        return None
    t = pq.read_table(path, columns=["path", *WINDOW_COLUMNS])
    return {"path": np.asarray(read_paths(path)), **{c: t.column(c).to_numpy() for c in WINDOW_COLUMNS}}


def apply_windows(source: Any, windows: dict[str, np.ndarray]) -> Any:
    """Restrict a grid `RasterSource` to the listed windows (the tiles a curated list kept)."""
    tiles = source.tiles
    scene_of = {str(Path(s.path).resolve()): i for i, s in enumerate(source.archive.scenes)}
    k_of = {sid: k for k, sid in enumerate(tiles.scene_ids)}
    ks = []
    for p in windows["path"]:
        sid = scene_of.get(str(Path(p).resolve()))
        if sid is None or sid not in k_of:
            raise InputError(f"tile list names {p}, which the archive could not read; re-run `geodino data curate`")
        ks.append(k_of[sid])
    tiles.grid_scene = np.asarray(ks, dtype=np.int32)
    tiles.grid_col = np.asarray(windows["col"], dtype=np.int64)
    tiles.grid_row = np.asarray(windows["row"], dtype=np.int64)
    return source


# ------------------------------------------------------------------------------------------------------------------
# report
# ------------------------------------------------------------------------------------------------------------------
def _mosaic(
    tiles: _Tiles, emb: np.ndarray, labels: np.ndarray, cents: np.ndarray, idx: np.ndarray, n: int, out: Path
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


def _footprints(tiles: _Tiles) -> Any:
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


def _map(geoms: list, status: np.ndarray, out: Path, title: str) -> None:
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


def _write_table(table: dict[str, Any], out: Path, geoms: list | None) -> None:
    from geodino.io import atomic_path

    with atomic_path(out, overwrite=True) as tmp:
        if geoms is not None:
            import geopandas as gpd

            gpd.GeoDataFrame(table, geometry=geoms, crs="EPSG:4326").to_parquet(tmp)
        else:
            import pandas as pd

            pd.DataFrame(table).to_parquet(tmp)


# ------------------------------------------------------------------------------------------------------------------
# entry point
# ------------------------------------------------------------------------------------------------------------------
def curate(cfg: CurateConfig, out_dir: str | Path, *, progress: bool = True) -> dict[str, Any]:
    """Run the whole curation (see the module docstring); returns the report dict."""
    from geodino.backbones import load_backbone
    from geodino.io import atomic_path, make_dirs

    cfg.validate()
    tiles = _Tiles(cfg)
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
    geoms = _footprints(tiles) if tiles.type == "raster" else None
    keep = np.flatnonzero(status == "kept")
    kept_table = {k: np.asarray(v)[keep] for k, v in table.items() if k not in ("status",)}
    _write_table(kept_table, out / "curated.parquet", None if geoms is None else [geoms[k] for k in keep])
    _write_table(table, out / "tiles.parquet", geoms)
    top = len(levels) - 1
    k_top = levels[top]["centroids"].shape[0]
    before = np.bincount(labels[top], minlength=k_top)
    after = np.bincount(labels[top][picked], minlength=k_top)
    leaf_before = np.bincount(labels[0], minlength=levels[0]["centroids"].shape[0])
    leaf_after = np.bincount(labels[0][picked], minlength=levels[0]["centroids"].shape[0])
    cents = levels[top]["centroids"] / np.maximum(
        np.linalg.norm(levels[top]["centroids"], axis=1, keepdims=True), 1e-12
    )
    _mosaic(tiles, emb[pool], labels[top], cents, picked, cfg.exemplars, out / "exemplars.png")
    if geoms is not None:
        _map(geoms, status, out / "map.png", f"{keep.size} of {tiles.n} tiles kept")
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
        tmp.write_text(_markdown(report))
    return report


def _markdown(r: dict[str, Any]) -> str:
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
