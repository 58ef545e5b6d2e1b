"""DINOv2/v3-style data curation for an archive: embed tiles, filter, hierarchical k-means, balanced sampling.

The pipeline (`curate`):

1. **Tiles**, from the same sources pretraining reads (`--config CFG.yaml`: its `data.sources`; or PATHS with
   `--type`): images and tar-shard members one tile each, rasters and datacubes their grid of `tile_size` tiles
   (a cube's "random" time sampling: one tile per window and time step; first/last: one per window, at the date
   its embedding read found). See `tiles.py`.
2. **Embed** every tile with a frozen backbone (CLS token of the last block, L2-normalised): streamed in chunks of
   `chunk` tiles read by `workers` processes; each chunk is written to `embeddings/part_NNNNN.npz` atomically, so a
   killed run resumes at the first missing chunk (a `meta.json` ties the parts to the backbone and the tile list).
3. **Filter** (the documented rule, counted in the report):
   - *nodata*: a tile whose share of nodata pixels exceeds `max_nodata` (default 0.5) is dropped;
   - *cloud*: a tile whose share of cloud-like pixels exceeds `max_cloud` (default 0.5) is dropped; the pixel test
     follows the sensor's bands (`clouds.py`): a QA band (SCL, QA60, QA_PIXEL; cloud shadow too with `qa_shadow`),
     else Fmask's SWIR tests (+ cirrus), else for plain RGB bright + white + smooth (bright but textured roofs stay);
   - *near-duplicates*: tiles are visited in archive order and a tile whose cosine similarity to an earlier kept
     tile is >= `dedup` (default 0.95) is dropped (the earlier one stays).
4. **Cluster** the remaining embeddings with hierarchical k-means as in DINOv2/v3 curation (Vo et al. 2024):
   level 1 runs k-means on the embeddings, level l on the centroids of level l-1 (`clusters`, e.g. [64, 16, 4]);
   optional resampling steps re-fit each level on the `resample_size` points closest to each centroid.
5. **Balanced sampling** to `size` tiles, top-down: a cluster's budget is split among its children so that each
   child gets min(x, its size) with the largest x that fits ("water filling"; the remainder goes one tile each to
   random children larger than x), down to level-1 clusters, which give random tiles (or the closest to the
   centroid with `strategy="closest"`). Small clusters keep all their tiles; large ones are thinned.
6. **Write** `curated.parquet` (one list per source, `curated_<name>.parquet`, when there are several; GeoParquet
   with footprints for rasters and cubes; `data.sources` accepts it as `paths`), with `--config` a `config.yaml`
   that extends the input config with the curated sources, `tiles.parquet` (every tile with its status),
   `report.json` / `report.md` (cluster sizes before and after, tiles removed per rule), `exemplars.png` (tiles
   closest to each top-level centroid) and `map.png` (georeferenced tiles).
"""

from __future__ import annotations

from geodino.data.curate.clouds import CloudRule, cloud_fraction, cloud_rule
from geodino.data.curate.cluster import balanced_sample, hierarchical_kmeans, point_labels, water_fill
from geodino.data.curate.config import CurateConfig
from geodino.data.curate.dedup import near_duplicates
from geodino.data.curate.pipeline import curate
from geodino.data.curate.tilelist import WINDOW_COLUMNS, apply_windows, curated_windows, is_tile_list, read_paths

__all__ = [
    "WINDOW_COLUMNS",
    "CloudRule",
    "CurateConfig",
    "apply_windows",
    "balanced_sample",
    "cloud_fraction",
    "cloud_rule",
    "curate",
    "curated_windows",
    "hierarchical_kmeans",
    "is_tile_list",
    "near_duplicates",
    "point_labels",
    "read_paths",
    "water_fill",
]
