"""The coarse-tiles warning is said once per process, however many times a run builds its loader.

Pretraining builds the loader twice (a first batch read before the run folder is accepted, then the one it
trains with), from two call sites. The warning was issued at build_ssl_loader's caller (stacklevel=3), so
Python's default filter, which shows a warning once per location, printed the same line twice on every
`geodino pretrain` whose raster tiles were too large (seen with configs/pretrain/demo.yaml and a source without
tile_size). Python's own once-per-location memory does not help: any filter change between the two builds
(Lightning's set-up makes some) resets it."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from geodino.data.config import DataConfig, SourceConfig
from geodino.data.crops import CropsConfig
from geodino.data.loaders import build_ssl_loader


def _first_build(data, crops):
    return build_ssl_loader(data, crops, batch_size=2, num_workers=0, patch_size=8, progress=False)


def _second_build(data, crops):  # another call site, as pretraining's probe and its training loader are
    return build_ssl_loader(data, crops, batch_size=2, num_workers=0, patch_size=8, progress=False)


def test_coarse_tile_warning_shows_once_across_two_loader_builds(tmp_path, monkeypatch) -> None:
    from geodino.data import loaders

    monkeypatch.setattr(loaders, "_COARSE_SAID", set(), raising=False)  # as in a fresh process
    rasterio = pytest.importorskip("rasterio")
    from rasterio.transform import from_origin

    path = tmp_path / "scene.tif"
    pixels = np.random.default_rng(0).integers(1, 255, (3, 300, 300), dtype=np.uint8)
    profile = {"driver": "GTiff", "width": 300, "height": 300, "count": 3, "dtype": "uint8"}
    with rasterio.open(path, "w", crs="EPSG:32633", transform=from_origin(500000, 5000000, 10, 10), **profile) as f:
        f.write(pixels)
    data = DataConfig(sources=[SourceConfig(name="s", type="raster", paths=[str(path)], sensor="maxar")])
    crops = CropsConfig(global_size=32, local_size=16, n_local=2)
    with warnings.catch_warnings(record=True) as rec:
        warnings.simplefilter("default")  # what a `geodino` command runs under
        _first_build(data, crops)
        warnings.filterwarnings("ignore", message="unrelated")  # as Lightning's set-up does between the two
        _second_build(data, crops)
    said = [str(w.message) for w in rec if "coarser than embed" in str(w.message)]
    assert len(said) == 1, said
    assert said[0].startswith("data source s: tiles of 256 px")
