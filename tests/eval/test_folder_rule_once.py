"""An image folder dataset settles its band count and DN rule once for all its splits' builds (a suite's check
and its task build each split: 6 builds, each of which looked every file's header up 3 times), and again when a
file is rewritten in place."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import rasterio
from rasterio.transform import from_origin

from geodino.data import headers
from geodino.eval.datasets import DatasetConfig, build_dataset


def _tif(path: Path, dtype: str, value: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    grid = {"crs": "EPSG:32633", "transform": from_origin(500000, 6000000, 10, 10)}
    with rasterio.open(path, "w", driver="GTiff", width=4, height=4, count=3, dtype=dtype, **grid) as dst:
        dst.write(np.full((3, 4, 4), value, dtype=dtype))


def _folder(root: Path, dtype: str, value: int) -> list[Path]:
    files = [root / split / c / f"{i}.tif" for split in ("train", "val", "test") for c in ("a", "b") for i in range(2)]
    for f in files:
        _tif(f, dtype, value)
    return files


def test_six_builds_look_each_header_up_once_per_settle(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    files = _folder(tmp_path, "uint8", 7)
    lookups: Counter[str] = Counter()
    real = headers.read_header

    def counting(path: str | Path, *, reader: str = "auto") -> headers.ImageHeader:
        lookups[str(path)] += 1
        return real(path, reader=reader)

    monkeypatch.setattr(headers, "read_header", counting)
    cfg = DatasetConfig(name="image_folder", root=str(tmp_path))
    for _ in ("check", "task"):
        built = [build_dataset(cfg, split) for split in ("train", "val", "test")]
    # one settle: band count, dtype and declared rule (3 lookups of the cached header); the old code: 18 per file
    assert {lookups[str(f)] for f in files} == {3}
    assert all("x/255" in ds.scaling for ds in built)

    for f in files:  # rewritten in place under the same names, another dtype: settled again, its rule changes
        _tif(f, "uint16", 700)
    rebuilt = build_dataset(cfg, "val")
    assert {lookups[str(f)] for f in files} == {6}
    assert "x/10000" in rebuilt.scaling and "x/255" not in rebuilt.scaling


def test_each_build_has_its_own_scaling(tmp_path: Path) -> None:
    """The memo hands each build a copy: a rule one split's reads add is not another split's."""
    from geodino.eval.folder_rule import settled_rule

    _folder(tmp_path, "uint8", 7)
    cfg = DatasetConfig(name="image_folder", root=str(tmp_path))
    folders = [tmp_path / s for s in ("train", "val", "test")]

    def listing(d: Path) -> list[Path]:
        return sorted(d.rglob("*.tif"))

    _, first = settled_rule(cfg, tmp_path, folders, None, listing)
    _, second = settled_rule(cfg, tmp_path, folders, None, listing)
    assert second is not first and second.fixed == first.fixed and second.fixed is not first.fixed
    second.rule(np.zeros((1, 4, 4), np.uint16), "elsewhere")  # a file of another kind, fixed for this run only
    assert ("uint16", 1) in second.fixed and ("uint16", 1) not in first.fixed
