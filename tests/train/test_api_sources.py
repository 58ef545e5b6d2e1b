"""`geodino.pretrain(data)` on WebDataset-style `.tar` shards or a datacube (Zarr store, NetCDF): both failed with
"holds no image or raster files" though the config route reads them (`type: tar`, `type: cube`). `source_of` now
names those sources; mixed kinds are one line, and data of no kind names the `overrides=['data.sources=[...]']`
route, which works with `data=None`."""

from __future__ import annotations

import io
import tarfile

import numpy as np
import pytest
from PIL import Image

import geodino
from geodino.config import load_config
from geodino.errors import ConfigError, InputError
from geodino.train.api import source_of
from geodino.train.pretrain import PretrainConfig


def shard(path, n: int = 4, size: int = 40) -> None:
    rng = np.random.default_rng(len(str(path)))
    with tarfile.open(path, "w") as tf:
        for i in range(n):
            buf = io.BytesIO()
            Image.fromarray(rng.integers(0, 255, (size, size, 3), dtype=np.uint8)).save(buf, "PNG")
            for name, data in ((f"s{i:03d}.png", buf.getvalue()), (f"s{i:03d}.cls", b"0")):
                info = tarfile.TarInfo(name)
                info.size = len(data)
                tf.addfile(info, io.BytesIO(data))


def test_tar_shards_and_datacubes_name_their_sources(tmp_path):
    shards = tmp_path / "shards"
    shards.mkdir()
    for s in range(2):
        shard(shards / f"shard-{s:06d}.tar")
    assert source_of(shards) == f"data.sources=[{{type: tar, paths: ['{shards}']}}]"
    glob = str(shards / "*.tar")
    assert source_of(glob, "imagenet") == f"data.sources=[{{type: tar, paths: ['{glob}'], sensor: 'imagenet'}}]"
    listed = sorted(str(p) for p in shards.glob("*.tar"))
    assert source_of(listed).startswith("data.sources=[{type: tar, paths: [")
    cfg = load_config(PretrainConfig, None, [source_of(shards)])
    assert cfg.data.sources[0].type == "tar" and cfg.data.sources[0].paths == [str(shards)]

    cube = tmp_path / "cube.zarr"
    (cube / "bands").mkdir(parents=True)
    (cube / "zarr.json").write_text("{}")
    assert source_of(cube, tile_size=32) == f"data.sources=[{{type: cube, paths: ['{cube}'], tile_size: 32}}]"
    nc = tmp_path / "more" / "scene.nc"
    nc.parent.mkdir()
    nc.write_bytes(b"CDF\x01")
    assert source_of([cube, nc]) == f"data.sources=[{{type: cube, paths: ['{cube}', '{nc}']}}]"
    assert source_of(nc.parent) == f"data.sources=[{{type: cube, paths: ['{nc}']}}]"  # a folder of cubes


def test_mixed_kinds_and_data_of_no_kind_are_one_line(tmp_path):
    mixed = tmp_path / "mixed"
    mixed.mkdir()
    shard(mixed / "a.tar")
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(mixed / "b.png")
    with pytest.raises(InputError, match=r"holds tar shards \(.*a\.tar\) and 1 image or raster file .*one kind"):
        source_of(mixed)
    with pytest.raises(InputError, match=r"^tile_size=32 applies to rasters and cubes; .* tar shards"):
        source_of(str(mixed / "*.tar"), tile_size=32)
    cube = tmp_path / "c.zarr"
    cube.mkdir()
    with pytest.raises(InputError, match=r"c\.zarr is a datacube but .*b\.png is other data; a source is one kind"):
        source_of([cube, mixed / "b.png"])
    notes = tmp_path / "notes"
    notes.mkdir()
    (notes / "readme.md").write_text("x")
    with pytest.raises(InputError, match=r"holds no .*overrides=\['data\.sources=\[\{type: \.\.\., paths"):
        source_of(notes)


def test_pretrain_from_tar_shards_and_from_overrides(tmp_path, monkeypatch):
    """One real 1-step run from shards (the recipe's own chips size), then the override route with data=None."""
    shards = tmp_path / "shards"
    shards.mkdir()
    shard(shards / "shard-000000.tar", n=8)
    out = geodino.pretrain(shards, tmp_path / "run", steps=1, overrides=["batch_size=4"])
    assert (out / "export" / "teacher.pth").is_file()
    assert load_config(PretrainConfig, out / "config.yaml").data.sources[0].type == "tar"
    route = f"data.sources=[{{type: tar, paths: ['{shards}']}}]"
    with pytest.raises(ConfigError, match=r"both name the data; pass data=None"):
        geodino.pretrain(shards, tmp_path / "x", steps=1, overrides=[route])
    with pytest.raises(ConfigError, match=r"^data=None needs the sources in overrides"):
        geodino.pretrain(None, tmp_path / "y", steps=1)
    import geodino.train.pretrain as pretrain_lib

    seen = []
    monkeypatch.setattr(pretrain_lib, "pretrain", lambda cfg: seen.append(cfg) or tmp_path / "z")
    geodino.pretrain(None, tmp_path / "z", steps=1, overrides=[route])
    assert seen[0].data.sources[0].type == "tar" and seen[0].data.sources[0].paths == [str(shards)]
