"""Sources from configs: the source object of each `SourceConfig` (`build_source`) and of a whole `DataConfig`
(`build_sources`): rasters, cubes, image folders, tar shards, torchgeo datasets and the synthetic source, each
restricted to what a `geodino data curate` list kept.

One home for "config -> source", which pretraining's loaders, curation, previews and `data stats` all read through;
kept apart from the DataLoaders (`loaders.py`, which re-exports these names) and torch-free, so building a source
imports only what its type needs.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from geodino.config import options_for
from geodino.data.config import DEFAULT_SENSORS, DataConfig, SourceConfig, check_source_type
from geodino.errors import ConfigError, InputError

__all__ = ["build_source", "build_sources", "grid_options"]


def grid_options(cfg: SourceConfig, windows: Any) -> dict[str, Any]:
    """Tile size, units and sampling of a raster or cube source: its config's, or the fixed grid of a curated list."""
    if windows is None:
        return {"tile_size": cfg.tile_size, "units": cfg.tile_units, "sampling": cfg.sampling}
    return {"tile_size": (int(windows["height"][0]), int(windows["width"][0])), "units": "px", "sampling": "grid"}


def build_source(cfg: SourceConfig, *, index: int = 0, shuffle: bool = True, progress: bool = True) -> Any:
    """The source object of one `SourceConfig` (RasterSource, CubeSource, ImageFolderSource, TarShardSource)."""
    name = cfg.name or f"source{index}"
    check_source_type(cfg.type, f"source {name!r}: type")
    # web image folders hold the odd broken download; an archive's bad file is news
    on_error: str = cfg.on_error or ("skip" if cfg.type in ("images", "tar") else "stop")
    if cfg.on_error is None:
        import dataclasses

        cfg = dataclasses.replace(cfg, on_error=on_error)
    if cfg.type == "raster":
        from geodino.data.archive import RasterArchive, RasterSource
        from geodino.data.curate.tilelist import apply_windows, curated_windows

        windows = curated_windows(cfg.paths)  # a `geodino data curate` list fixes the tiles

        # a SourceConfig's keys are the archive's and the source's own option names (options_for passes them on)
        archive = RasterArchive(cfg.paths, **options_for(RasterArchive, cfg, progress=progress))
        _warn_rgb_dn(archive)
        grid = grid_options(cfg, windows)
        raster = RasterSource(
            archive, **options_for(RasterSource, cfg, **grid, shuffle=shuffle, name=name, prescan=windows is None)
        )
        return raster if windows is None else apply_windows(raster, windows)
    if cfg.type == "cube":
        from geodino.data.cubes import CubeSource
        from geodino.data.curate.tilelist import apply_windows, curated_windows

        if cfg.crs is not None or cfg.res is not None:  # raster keys (a WarpedVRT): a cube kept its grid, silently
            set_ = ", ".join(f"{k}: {v}" for k, v in (("crs", cfg.crs), ("res", cfg.res)) if v is not None)
            raise ConfigError(
                f"source {name!r} (type cube) sets {set_}, which reproject raster scenes only: a datacube is read "
                "on its own grid (samples carry its CRS); drop the key(s), or reproject the stores first (e.g. "
                "rioxarray's .rio.reproject) and write them as new stores"
            )
        windows = curated_windows(cfg.paths)  # a `geodino data curate` list fixes the windows and time steps
        stores = list(dict.fromkeys(windows["path"].tolist())) if windows is not None else cfg.paths
        grid = grid_options(cfg, windows)
        cube = CubeSource(stores, **options_for(CubeSource, cfg, **grid, shuffle=shuffle, name=name))
        return cube if windows is None else apply_windows(cube, windows)
    if cfg.type == "synthetic":
        from geodino.data.synthetic import SyntheticSource

        return SyntheticSource(
            sensor=cfg.sensor or DEFAULT_SENSORS["synthetic"], tile_size=int(cfg.tile_size), name=name
        )
    if cfg.type == "torchgeo":
        from geodino.data.torchgeo_source import TorchGeoSource

        if not cfg.dataset or not cfg.sensor:
            raise ConfigError(f"source {name!r} (type torchgeo) needs `dataset:` (a GeoDataset class) and `sensor:`")
        kwargs = {"paths": list(cfg.paths), **dict(cfg.dataset_kwargs)}
        if cfg.bands and "bands" not in kwargs and _accepts_bands(cfg.dataset):
            from geodino.data.sensors import get_sensor

            # read only those, by the sensor's names (`red` is B04 to torchgeo); the sensor is narrowed to them too
            kwargs["bands"] = [get_sensor(cfg.sensor).resolve_band(b) for b in cfg.bands]
        return TorchGeoSource(
            cfg.dataset,
            kwargs=kwargs,
            bands=list(cfg.bands) if cfg.bands else None,
            nodata=cfg.nodata,
            sensor=cfg.sensor,
            tile_size=int(cfg.tile_size),
            name=name,
            max_nodata_fraction=cfg.max_nodata_fraction,
            max_tries=cfg.max_tries,
        )
    from geodino.data.curate.tilelist import curated_windows
    from geodino.data.images import ImageFolderSource, TarShardSource

    if curated_windows(cfg.paths) is not None:  # its `path` column names whole scenes: read as images, each is one
        lists = [p for p in cfg.paths if str(p).lower().endswith(".parquet")]
        raise InputError(
            f"source {name!r} (type {cfg.type}): {lists[0] if lists else cfg.paths} lists raster windows (curated "
            "from rasters or cubes); read it with `type: raster` (or `cube`) to visit exactly the kept windows"
        )
    cls = ImageFolderSource if cfg.type == "images" else TarShardSource
    own: dict[str, Any] = {"recursive": cfg.recursive} if cfg.type == "images" else {}
    source = cls(
        cfg.paths,
        sensor=cfg.sensor or DEFAULT_SENSORS[cfg.type],
        name=name,
        on_error=on_error,
        shuffle=shuffle,
        fast_decode=bool(cfg.fast_decode),
        **own,
    )
    if cfg.type == "tar":
        from geodino.data.curate.tilelist import apply_members, curated_members

        members = curated_members(cfg.paths)  # a `geodino data curate` list fixes the members
        if members is not None:
            apply_members(source, members)
    if cfg.bands and list(cfg.bands) != list(source.sensor.bands):
        raise InputError(
            f"source {name!r}: images are read with all their bands {list(source.sensor.bands)} in file order (sensor "
            f"{source.sensor.name!r}), so `bands: {list(cfg.bands)}` cannot select or reorder them; drop `bands:` "
            "(--bands), or give the full list in that order"
        )
    return source


def _warn_rgb_dn(archive: Any) -> None:
    """`bit_depth.warn_rgb_dn` for the first 16-bit file of a raster source read for pretraining or curation, whose
    colour ops (jitter, cloud rules) take reflectance; embed and viz attention warn in their own words instead."""
    from geodino.data.bit_depth import warn_rgb_dn

    first = next((sc for sc in archive.scenes if str(sc.dtype) in ("uint16", "int16")), None)
    if first is not None:
        warn_rgb_dn(first.path, first.dtype, archive.sensor, stacklevel=4)


def _accepts_bands(dataset: str) -> bool:
    """Whether the torchgeo dataset class named `dataset` takes a `bands=` argument (torchgeo's Sentinel2,
    Landsat8, ... do; a class that cannot be imported is left to TorchGeoSource to report)."""
    import inspect

    from geodino.data.torchgeo_source import _dataset_class

    try:
        return "bands" in inspect.signature(_dataset_class(dataset)).parameters
    except (ConfigError, TypeError, ValueError):
        return False


def build_sources(cfg: DataConfig, *, progress: bool = True) -> list[Any]:
    """All sources of a config; they must give the same number of bands (one model input)."""
    cfg.validate()
    sources = [build_source(s, index=i, shuffle=cfg.shuffle, progress=progress) for i, s in enumerate(cfg.sources)]
    n = {len(s.band_names) for s in sources}
    if len(n) > 1:
        desc = ", ".join(f"{s.name}: {len(s.band_names)}" for s in sources)
        raise ConfigError(f"data sources give different band counts ({desc}); select the same bands in each")
    check_band_orders(sources)
    return sources


def check_band_orders(sources: Sequence[Any]) -> None:
    """Refuse sources that give the same bands in different orders: mixed, one model channel would be one band in
    some batches and another in the rest. Sources of different bands (other sensors, standardised alike by
    `data.norm_sensor`) are not compared. Raster and cube sources already read the bands their sensor names in its
    order, and a source's `sensor.bands` is the order it feeds (`bands:` picks included), which is what is compared."""
    seen: list[tuple[str, tuple[str, ...]]] = []
    for s in sources:
        bands = tuple(str(b) for b in getattr(getattr(s, "sensor", None), "bands", None) or s.band_names)
        for name, other in seen:
            if bands != other and sorted(b.lower() for b in bands) == sorted(b.lower() for b in other):
                raise ConfigError(
                    f"data sources {name!r} and {s.name!r} give the same bands in different orders ({name}: "
                    f"{', '.join(other)}; {s.name}: {', '.join(bands)}); list them in one order with `bands:` in each"
                )
        seen.append((s.name, bands))
