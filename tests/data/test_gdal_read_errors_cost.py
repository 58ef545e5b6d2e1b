"""Per-file costs of a header read on a folder of many chips: `gdal_read_errors` (once per file in `data index`)
sets the rasterio logger's level only when it would drop warnings (each `Logger.setLevel` clears the cache of
every logger in the process: ~2 s per 20,000 files once torch is imported), and rasterio reads a header without
GDAL's listing of the file's folder unless the user set GDAL_DISABLE_READDIR_ON_OPEN."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import rasterio
import rasterio.transform

from geodino.data import headers


def test_level_left_alone_when_warnings_pass(monkeypatch: pytest.MonkeyPatch) -> None:
    logger = logging.getLogger("rasterio._env")
    monkeypatch.setattr(logger, "level", logging.NOTSET)
    monkeypatch.setattr(logging.getLogger(), "level", logging.WARNING)
    calls: list[int] = []
    monkeypatch.setattr(logger, "setLevel", calls.append)
    classes = set()
    for _ in range(3):
        with headers.gdal_read_errors("a.tif") as found:
            classes.update(type(h) for h in logger.handlers)
            logger.warning("CPLE_AppDefined in a.tif: IO error during reading of GeoKeyDirectory; tag ignored")
            logger.warning("CPLE_AppDefined in b.tif: IO error during reading of GeoKeyDirectory")  # another file
        assert found == ["IO error during reading of GeoKeyDirectory"]
    assert calls == []  # the old code: one setLevel per call
    assert len(classes) == 1  # one handler class (the old code: a class defined per call)


def test_level_raised_and_put_back_when_warnings_would_drop(monkeypatch: pytest.MonkeyPatch) -> None:
    logger = logging.getLogger("rasterio._env")
    monkeypatch.setattr(logger, "level", logging.ERROR)
    with headers.gdal_read_errors("a.tif") as found:
        logger.warning("CPLE_AppDefined in a.tif: a.tif: read error at scanline 3")
    assert found and logger.level == logging.ERROR


def _env_option(monkeypatch: pytest.MonkeyPatch, path: Path) -> Any:
    seen: list[Any] = []
    real = rasterio.open

    def looking(fp: Any, *args: Any, **kwargs: Any) -> Any:
        seen.append(rasterio.env.getenv().get("GDAL_DISABLE_READDIR_ON_OPEN") if rasterio.env.hasenv() else None)
        return real(fp, *args, **kwargs)

    monkeypatch.setattr(rasterio, "open", looking)
    headers._read(str(path), "auto")
    monkeypatch.setattr(rasterio, "open", real)
    return seen


def test_header_read_without_folder_listing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "a.tif"
    grid = {"crs": "EPSG:32633", "transform": rasterio.transform.from_origin(500000, 6000000, 10, 10)}
    with rasterio.open(path, "w", driver="GTiff", width=4, height=4, count=1, dtype="uint8", **grid) as dst:
        dst.write(np.zeros((1, 4, 4), np.uint8))
    monkeypatch.delenv("GDAL_DISABLE_READDIR_ON_OPEN", raising=False)
    assert _env_option(monkeypatch, path) == ["TRUE"]
    monkeypatch.setenv("GDAL_DISABLE_READDIR_ON_OPEN", "EMPTY_DIR")  # the user's own setting is left to GDAL
    assert _env_option(monkeypatch, path) == [None]
