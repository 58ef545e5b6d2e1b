"""Data config dataclasses (`DataConfig`, `SourceConfig`), kept free of torch so the CLI parser stays light.

`geodino.data.loaders` re-exports both; configs are read with `geodino.config.load_config`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from geodino.errors import ConfigError

__all__ = ["DataConfig", "SourceConfig"]


@dataclass
class SourceConfig:
    """One data source. `type`: raster (GeoTIFF/COG/VRT), cube (Zarr/NetCDF), images (folders), tar (shards),
    torchgeo (any torchgeo GeoDataset class), synthetic (generated tiles for smoke tests and demos)."""

    name: str = ""  # defaults to source<i>
    type: str = "raster"
    paths: list[str] = field(default_factory=list)  # folders, globs, files, .txt lists (cube: stores)
    weight: float = 1.0  # share of steps whose batch comes from this source
    sensor: str | None = None  # data sensor (built-in name or YAML): scale, band names, default nodata
    bands: list[str] | None = None  # band names to read (None: all)
    band_names: list[str] | None = None  # names of the files' bands when they carry no descriptions
    nodata: float | None = None  # override the files' nodata value
    tile_size: float = 256  # tile edge, in tile_units
    tile_units: str = "px"  # px | m
    sampling: str = "random"  # random | grid
    stride: float | None = None  # grid stride (default tile_size)
    max_nodata_fraction: float = 0.5  # redraw (random) / drop (grid) tiles with more nodata than this
    max_tries: int = 10
    roi: str | None = None  # WKT polygon or vector file
    roi_crs: str = "EPSG:4326"
    crs: str | None = None  # reproject every scene to this CRS (default: native CRS per scene)
    res: float | None = None  # target resolution with crs
    resampling: str = "bilinear"
    on_error: str = "stop"  # stop | skip: unreadable files, files without CRS, corrupt images
    recursive: bool = True
    index_cache: str | None = None  # raster: JSON index reused while files and settings are unchanged
    variable: str | None = None  # cube: data variable
    band_dim: str | None = None  # cube: band dimension name (auto: band/bands/channel/...)
    time_dim: str = "time"
    time_sampling: str = "random"  # cube: random | first | last | stack
    align_to_chunks: bool = True  # cube: snap random tiles to the chunk grid
    dataset: str | None = None  # torchgeo: GeoDataset class, e.g. torchgeo.datasets.Sentinel2 (paths -> `paths=`)
    dataset_kwargs: dict[str, Any] = field(default_factory=dict)  # torchgeo: further constructor arguments


@dataclass
class DataConfig:
    """Sources (mixed per batch by weight) and the normalisation statistics."""

    sources: list[SourceConfig] = field(default_factory=list)
    norm_sensor: str | None = None  # mean/std used to standardise (default: each source's own sensor)
    shuffle: bool = True

    def validate(self) -> None:
        if not self.sources:
            raise ConfigError(
                "data.sources is empty; add a source, e.g. data.sources=[{type: raster, paths: [scenes/]}]"
            )
        names = set()
        for i, s in enumerate(self.sources):
            if s.type not in ("raster", "cube", "images", "tar", "torchgeo", "synthetic"):
                raise ConfigError(
                    f"data.sources[{i}].type={s.type!r}; use raster, cube, images, tar, torchgeo or synthetic"
                )
            if not s.paths and s.type != "synthetic":
                raise ConfigError(f"data.sources[{i}].paths is empty; list folders, globs or files")
            name = s.name or f"source{i}"
            if name in names:
                raise ConfigError(f"data.sources[{i}].name={name!r} is used twice; names must be unique")
            names.add(name)
