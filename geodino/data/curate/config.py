"""`CurateConfig`: the settings of `geodino data curate` and their checks (no heavy imports)."""

from __future__ import annotations

from dataclasses import dataclass, field

from geodino.errors import ConfigError

__all__ = ["CurateConfig"]


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
