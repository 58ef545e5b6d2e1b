"""`data curate`'s --out inside-the-inputs check resolved every listed image path (`Path.resolve` per path: 14 s for
200k listed images on 2 cores, before a single tile was read). It now resolves each parent folder once; the
refusals are the same (an --out that is a listed image's folder or an ancestor of it is refused, a sibling is not)."""

from __future__ import annotations

import types
from pathlib import Path

import pytest

from geodino.data.curate.pipeline import _check_out_outside_images
from geodino.errors import InputError


def _tiles(paths: list[str], source: str) -> types.SimpleNamespace:
    """A stand-in for `Tiles` with one images source (a list file) holding `paths`: the check reads only these."""
    cfg = types.SimpleNamespace(type="images", paths=[source], name=None)
    return types.SimpleNamespace(names=["s0"], configs=[cfg], table={"path": paths}, source_of=[0] * len(paths))


def test_listed_images_are_resolved_once_per_folder(tmp_path, monkeypatch):
    paths = [str(tmp_path / "imgs" / f"d{i % 4}" / f"{i:06d}.png") for i in range(20_000)]
    calls = []
    real = Path.resolve

    def counting(self, *a, **k):
        calls.append(self)
        return real(self, *a, **k)

    monkeypatch.setattr(Path, "resolve", counting)
    _check_out_outside_images(_tiles(paths, str(tmp_path / "list.txt")), tmp_path / "out")
    assert len(calls) <= 4 + 2, f"{len(calls)} resolve calls for 20000 images in 4 folders"


@pytest.mark.parametrize("out", ["imgs", "imgs/d1", "."])
def test_out_a_listed_folder_or_above_is_refused(tmp_path, out):
    paths = [str(tmp_path / "imgs" / f"d{i % 2}" / f"{i}.png") for i in range(10)]
    with pytest.raises(InputError, match="is inside the images listed"):
        _check_out_outside_images(_tiles(paths, str(tmp_path / "list.txt")), tmp_path / out)


@pytest.mark.parametrize("out", ["imgs/d1/sub", "imgs/d2", "other"])
def test_out_beside_or_below_the_listed_folders_passes(tmp_path, out):
    paths = [str(tmp_path / "imgs" / f"d{i % 2}" / f"{i}.png") for i in range(10)]
    _check_out_outside_images(_tiles(paths, str(tmp_path / "list.txt")), tmp_path / out)


def test_relative_listed_paths_and_a_linked_folder(tmp_path, monkeypatch):
    (tmp_path / "real").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "real")
    monkeypatch.chdir(tmp_path)
    # link/x.png lives in real/
    with pytest.raises(InputError, match=r"/real \(out_dir= in Python\) is inside the images listed"):
        _check_out_outside_images(_tiles(["link/x.png"], "list.txt"), tmp_path / "real")
    with pytest.raises(InputError, match="is inside the images listed"):  # a bare name: in the working folder
        _check_out_outside_images(_tiles(["x.png"], "list.txt"), tmp_path)
    _check_out_outside_images(_tiles(["x.png"], "list.txt"), tmp_path / "out")
