"""The image-folder rule memo (`geodino.eval.folder_rule`) keeps no rule settled over a file or `.aux.xml` changed
within `io_stamps.RACY_NS` by its ctime, however old its mtime (`cp -p`, `touch -d`, an archive date it back). A
rewrite within one tick of a coarse file system keeps mtime, size and ctime alike, so the header stamp the memo is
keyed by cannot see it: only not keeping a fresh folder's rule does. These tests look at what is kept, which a
rewrite test cannot show (on this file system its ns ctime moves the key anyway)."""

from __future__ import annotations

import os
import time
import types
from collections import OrderedDict
from pathlib import Path

import numpy as np
import pytest
import rasterio
from rasterio.transform import from_origin

from geodino.data import headers
from geodino.eval import folder_rule
from geodino.eval.datasets import DatasetConfig

HOUR_NS = 3600 * 10**9


@pytest.fixture
def memo(monkeypatch: pytest.MonkeyPatch) -> tuple[OrderedDict, list[int]]:
    """An empty memo, and how far (ns) the memo's clock runs ahead of this machine's (0: files just written are
    fresh)."""
    shift = [0]
    real = time.time_ns
    monkeypatch.setattr(folder_rule, "time", types.SimpleNamespace(time_ns=lambda: real() + shift[0]))
    kept: OrderedDict = OrderedDict()
    monkeypatch.setattr(folder_rule, "_MEMO", kept)
    return kept, shift


def _folder(root: Path) -> list[Path]:
    """4 uint8 3-band chips in train/val class folders."""
    files = [root / split / c / "0.tif" for split in ("train", "val") for c in ("a", "b")]
    grid = {"crs": "EPSG:32633", "transform": from_origin(500000, 6000000, 10, 10)}
    for f in files:
        f.parent.mkdir(parents=True, exist_ok=True)
        with rasterio.open(f, "w", driver="GTiff", width=4, height=4, count=3, dtype="uint8", **grid) as dst:
            dst.write(np.full((3, 4, 4), 7, dtype="uint8"))
    return files


def _settle(root: Path) -> None:
    cfg = DatasetConfig(name="image_folder", root=str(root))
    folders = [root / s for s in ("train", "val")]
    folder_rule.settled_rule(cfg, root, folders, None, lambda d: sorted(d.rglob("*.tif")))


def test_a_fresh_folder_is_not_kept_even_dated_back_and_a_settled_one_is(
    tmp_path: Path, memo: tuple[OrderedDict, list[int]]
) -> None:
    kept, shift = memo
    files = _folder(tmp_path)
    _settle(tmp_path)
    assert not kept  # just written: not kept (a memo keeping it fails here)
    old = time.time_ns() - HOUR_NS
    for f in files:  # dated back an hour, as `cp -p` or an archive does: the ctime still says now
        os.utime(f, ns=(old, old))
    _settle(tmp_path)
    assert not kept  # freshness judged by mtime kept it
    shift[0] = HOUR_NS  # an hour on: settled by the ctime too
    _settle(tmp_path)
    assert len(kept) == 1


def test_a_fresh_sidecar_beside_a_settled_file_is_not_kept(
    tmp_path: Path, memo: tuple[OrderedDict, list[int]], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A GDAL `.aux.xml` written now beside files settled an hour ago (their ctimes reported an hour back, which a
    test cannot write): the rule is not kept; without the sidecar it is."""
    kept, _ = memo
    files = _folder(tmp_path)
    real = headers.header_stamp

    def settled_files(path: str | Path) -> headers.Stamp | None:
        stamp = real(path)
        assert stamp is not None
        return (*stamp[:3], stamp[3] - HOUR_NS, *stamp[4:])  # the file's own ctime an hour back; the rest as is

    monkeypatch.setattr(headers, "header_stamp", settled_files)
    _settle(tmp_path)
    assert len(kept) == 1  # the files alone: settled, kept
    kept.clear()
    Path(f"{files[0]}.aux.xml").write_text("<PAMDataset></PAMDataset>")
    _settle(tmp_path)
    assert not kept  # a sidecar changed now: not kept (ignoring the sidecar's ctime kept it)
    Path(f"{files[0]}.aux.xml").unlink()
    _settle(tmp_path)
    assert len(kept) == 1
    kept.clear()
    Path(files[1]).with_suffix(".tfw").write_text("10\n0\n0\n-10\n500005\n6000035\n")  # a world file written now
    _settle(tmp_path)
    assert not kept  # the header cache's rule counts a fresh world file; the memo judged the .aux.xml only
