"""`.txt` path lists: each local entry must exist (named with the list file and its line number, before any work),
remote entries are passed on as written, and a list of one path is that path where one and many differ
(`geodino embed`: one feature raster, not a scene folder with a mosaic)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import rasterio

from geodino import cli
from geodino.data.paths import RASTER_EXTS, resolve_paths
from geodino.errors import InputError
from tests.data.test_curate import SPEC as CURATE_SPEC
from tests.embed.conftest import write_tif
from tests.test_bad_inputs import FAST, SPEC, one_line_exit_2


def _raster(path: Path) -> Path:
    rng = np.random.default_rng(0)
    return write_tif(path, (rng.random((3, 64, 64)) * 255).astype(np.uint8))


def test_a_missing_entry_is_named_with_the_list_and_its_line(tmp_path):
    from geodino.data.paths import one_listed, read_list

    a = _raster(tmp_path / "a.tif")
    lst = tmp_path / "scenes.txt"
    lst.write_text(f"# my scenes\n{a}\n\nb.tif\n/vsis3/bucket/c.tif\ns3://bucket/d.tif\nhttps://host/e.tif\nz.tif\n")
    with pytest.raises(InputError) as exc:
        resolve_paths([lst], RASTER_EXTS)
    msg = str(exc.value)
    assert msg.startswith(f"file list {lst}, line 4: raster {tmp_path / 'b.tif'} does not exist")
    assert "(and 1 more line like it)" in msg and "\n" not in msg
    lst.write_text(f"{a}\n/vsis3/bucket/c.tif\ns3://bucket/d.tif\nhttps://host/e.tif\n  rel/../a.tif  \n")
    (tmp_path / "rel").mkdir()
    # remote entries unchecked and as written (s3:// was joined to the list's folder: ".../s3:/bucket/d.tif")
    assert read_list(lst) == [str(a), "/vsis3/bucket/c.tif", "s3://bucket/d.tif", "https://host/e.tif",
                              str(tmp_path / "rel/../a.tif")]  # fmt: skip
    assert resolve_paths([lst], RASTER_EXTS)[0] == str(a)
    assert one_listed([str(lst)]) == [str(lst)]  # several entries: the list stays
    one = tmp_path / "one.txt"
    one.write_text(f"# one\n{a}\n")
    assert one_listed([str(one)]) == [str(a)] and one_listed([str(a), str(one)]) == [str(a), str(one)]


def test_embed_and_curate_name_the_missing_entry_and_write_nothing(capsys, tmp_path):
    lst = tmp_path / "notes.txt"
    lst.write_text("hello\n")
    expect = f"file list {lst}, line 1: raster {tmp_path / 'hello'} does not exist"
    # embed said "the input has many scenes" (a one-entry list was taken for a scene list)
    one_line_exit_2(capsys, tmp_path, "embed", lst, "-b", SPEC, "--out", tmp_path / "f.tif", *FAST, expect=(expect,))
    one_line_exit_2(capsys, tmp_path, "data", "curate", lst, "-b", CURATE_SPEC, "--size", "1", "-o", tmp_path / "c",
                    "--no-progress", expect=(expect.replace("raster", "image"),))  # fmt: skip


def test_embed_a_list_of_one_raster_is_that_raster(tmp_path):
    a = _raster(tmp_path / "a.tif")
    lst = tmp_path / "one.txt"
    lst.write_text("a.tif\n")  # relative to the list's folder
    assert cli.main(["embed", str(lst), "-b", SPEC, "--out", str(tmp_path / "via_list.tif"), *FAST]) == 0
    assert cli.main(["embed", str(a), "-b", SPEC, "--out", str(tmp_path / "direct.tif"), *FAST]) == 0
    with rasterio.open(tmp_path / "via_list.tif") as x, rasterio.open(tmp_path / "direct.tif") as y:
        assert x.shape == y.shape and x.count == y.count
        np.testing.assert_array_equal(x.read(), y.read())
    assert not (tmp_path / "mosaic.vrt").exists() and not (tmp_path / "via_list.tif").is_dir()
