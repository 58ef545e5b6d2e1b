"""An image folder dataset settles its band count and DN rule once for all its splits' builds (a suite's check
and its task build each split: 6 builds, each of which looked every file's header up 3 times), and again when a
file is rewritten in place."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pytest
import rasterio
from rasterio.transform import from_origin

from geodino.data import headers
from geodino.eval.datasets import DatasetConfig, build_dataset

if TYPE_CHECKING:
    from geodino.eval.scaling import InputScaling


def _tif(path: Path, dtype: str, value: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    grid = {"crs": "EPSG:32633", "transform": from_origin(500000, 6000000, 10, 10)}
    with rasterio.open(path, "w", driver="GTiff", width=4, height=4, count=3, dtype=dtype, **grid) as dst:
        dst.write(np.full((3, 4, 4), value, dtype=dtype))


@pytest.fixture(autouse=True)
def _aged(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The memo's clock an hour ahead: files a test writes count as settled (older than `io_stamps.RACY_NS` by their
    ctime, which a test cannot date back), so a settled rule is kept. A test of fresh files sets the shift to [0]."""
    import time
    import types

    from geodino.eval import folder_rule

    shift = [3600 * 10**9]
    real = time.time_ns
    monkeypatch.setattr(folder_rule, "time", types.SimpleNamespace(time_ns=lambda: real() + shift[0]))
    return shift


def _folder(root: Path, dtype: str, value: int) -> list[Path]:
    """12 chips in train/val/test class folders."""
    files = [root / split / c / f"{i}.tif" for split in ("train", "val", "test") for c in ("a", "b") for i in range(2)]
    for f in files:
        _tif(f, dtype, value)
    return files


def _settle(root: Path, backbone: Any) -> tuple[bool, InputScaling]:
    """`settled_rule` of the image folder dataset `_folder` wrote under `root` (its train/val/test folders, each
    listed by a recursive glob), for `backbone`."""
    from geodino.eval.folder_rule import settled_rule

    cfg = DatasetConfig(name="image_folder", root=str(root))
    folders = [root / s for s in ("train", "val", "test")]
    return settled_rule(cfg, root, folders, backbone, lambda d: sorted(d.rglob("*.tif")))


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
    _folder(tmp_path, "uint8", 7)
    _, first = _settle(tmp_path, None)
    _, second = _settle(tmp_path, None)
    assert second is not first and second.fixed == first.fixed and second.fixed is not first.fixed
    second.rule(np.zeros((1, 4, 4), np.uint16), "elsewhere")  # a file of another kind, fixed for this run only
    assert ("uint16", 1) in second.fixed and ("uint16", 1) not in first.fixed
    _, third = _settle(tmp_path, None)  # the memo's second hand-out: a copy too, not the one it keeps
    assert third is not second and ("uint16", 1) not in third.fixed


class _Recording:
    """A backbone stand-in recording an 8-bit DN scale (x/255) and a mean/std (`recorded_scale`,
    `record_units_reason` read only these)."""

    def __init__(self, mean: float) -> None:
        self.spec = f"mean{mean:g}"
        self.normalization = {"scale": 1 / 255, "mean": [mean] * 3, "std": [1.0] * 3}


def test_memo_keeps_no_backbone_and_each_build_reads_its_own(tmp_path: Path) -> None:
    """The memo serves a build with the backbone it was given, not the first build's: it kept that backbone (a
    model) alive for the process, and a second backbone recording the same DN scale with means in other units was
    never warned about (the first backbone's means were checked)."""
    import gc
    import warnings
    import weakref

    _folder(tmp_path, "uint8", 7)
    first = _Recording(0.4)  # reflectance-unit means: x/255 fits them, no warning
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        _settle(tmp_path, first)
    gone = weakref.ref(first)
    del first
    gc.collect()
    assert gone() is None  # the old code: the memo's copy held the first backbone

    same = _Recording(0.4)
    _, scaling = _settle(tmp_path, same)
    assert scaling.backbone is same
    dn_means = _Recording(600.0)  # the same x/255 record, means in DN units: its own warning
    with pytest.warns(UserWarning, match="its means are larger"):
        _, scaling = _settle(tmp_path, dn_means)
    assert scaling.backbone is dn_means


def test_files_written_within_the_racy_window_are_not_kept(tmp_path: Path, _aged: list[int]) -> None:
    """A rule settled over files changed within `io_stamps.RACY_NS` is not kept (as the raster index and the probe's
    folder listings): a rewrite in the same tick of a coarse clock (1 s on ext3, HFS+, many NAS; 2 s on FAT) keeps
    mtime and size, and the memo served the rule of the old pixels. Here 16-bit chips of 8-bit DN read by an 8-bit
    record (x/255), rewritten with 16-bit DN under the same stamp: the old code kept x/255 (values up to 2.7)."""
    import os

    _aged[0] = 0  # this machine's clock: the files below were just written
    files = _folder(tmp_path, "uint16", 7)
    record = _Recording(0.4)
    _, first = _settle(tmp_path, record)
    assert "x*0.00392157" in first.fixed[("uint16", 3)][2]
    for f in files:  # the same tick: another image of the same size and mtime
        st = os.stat(f)
        _tif(f, "uint16", 700)
        os.utime(f, ns=(st.st_atime_ns, st.st_mtime_ns))
    _, again = _settle(tmp_path, record)
    assert "x/10000" in again.fixed[("uint16", 3)][2], again.fixed


def test_a_rewrite_dated_back_to_an_old_mtime_is_fresh_by_its_ctime(tmp_path: Path, _aged: list[int]) -> None:
    """`cp -p`, `touch -d` or an extracted archive date a file's mtime back; its ctime still says it just changed, so
    a same-size rewrite dated back to the same mtime is settled again (x/255 for 16-bit chips of 8-bit DN, then
    x/10000 for 16-bit DN). Two guards see it: the ctime in the header stamp the memo is keyed by, and freshness
    judged by ctime (the second alone decides on a file system whose ctime ticks as coarsely as the rewrite)."""
    import os
    import time

    from geodino.io_stamps import RACY_NS

    _aged[0] = 0  # this machine's clock
    files = _folder(tmp_path, "uint16", 7)
    old = time.time_ns() - RACY_NS - 10**9
    for f in files:
        os.utime(f, ns=(old, old))
    record = _Recording(0.4)
    _, first = _settle(tmp_path, record)
    assert "x*0.00392157" in first.fixed[("uint16", 3)][2]
    for f in files:
        _tif(f, "uint16", 700)
        os.utime(f, ns=(old, old))
    _, again = _settle(tmp_path, record)
    assert "x/10000" in again.fixed[("uint16", 3)][2], again.fixed
