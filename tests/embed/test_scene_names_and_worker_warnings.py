"""Many-scene runs whose files share a name deep in an archive, and the warnings of `--workers` runs."""

from __future__ import annotations

import numpy as np
import pytest
from rasterio.transform import from_origin

from geodino import cli
from geodino.embed import embed_raster, embed_scenes
from geodino.embed.scenes import list_scenes
from tests.embed.conftest import random_image, read_all, write_tif

OPTS = {"tile": 32, "overlap": 8, "progress": False}


def test_one_file_name_in_folders_alike_two_levels_up_gets_two_scenes(tmp_path, conv_bb):
    """archive/LC08/2024/06/image.tif beside archive/LC09/2024/06/image.tif (an archive sorted by sensor, year and
    month) were two different files refused as "scenes '2024_06_image_tif' appear twice in the input list": the
    names took two folders, then the format, and stopped there. Now more of the path is taken while the folders
    are alike, and each scene is embedded as it is alone."""
    root = tmp_path / "archive"
    files = {}
    for i, sensor in enumerate(("LC08", "LC09")):
        (month := root / sensor / "2024" / "06").mkdir(parents=True)
        t = from_origin(500000.0 + 640 * i, 4000000.0, 10, 10)
        files[sensor] = write_tif(month / "image.tif", random_image(48, 48, seed=i), transform=t)
    assert [s.name for s in list_scenes([str(root)])] == ["LC08_2024_06_image", "LC09_2024_06_image"]
    embed_scenes(root, backbone=conv_bb, out=tmp_path / "feats", **OPTS)
    for sensor, path in files.items():
        alone = read_all(embed_raster(path, conv_bb, tmp_path / "alone" / f"{sensor}.tif", **OPTS))[0]
        np.testing.assert_array_equal(read_all(tmp_path / "feats" / f"{sensor}_2024_06_image.tif")[0], alone)


def test_scene_names_keep_their_earlier_forms():
    """The names a run already gave (a --resume finds its scenes by them) do not change: the stem, two folders in
    front when stems meet, the format when they meet in one folder; a file listed twice keeps one name."""
    from geodino.embed.scene_list import _scene_names

    paths = ["/r/x/y/a.tif", "/r/x/y/a.zarr", "/r/p/q/b.tif", "/r/z/q/b.tif", "/r/c.tif"]
    assert _scene_names(paths) == ["x_y_a_tif", "x_y_a_zarr", "p_q_b", "z_q_b", "c"]
    assert _scene_names(["/r/m/n/s.tif", "/r/m/n/s.tif"]) == ["m_n_s_tif", "m_n_s_tif"]  # refused by list_scenes
    deep = ["/r/a/2024/06/s.tif", "/r/b/2024/06/s.tif", "/r/b/2024/06/s.zarr", "/r/t.tif"]
    assert _scene_names(deep) == ["a_2024_06_s", "b_2024_06_s_tif", "b_2024_06_s_zarr", "t"]


@pytest.mark.slow
def test_a_workers_run_says_a_warning_once_in_one_line(tmp_path, capfd):
    """`--workers 2` on a uint16 raster printed the DN / 10000 assumption twice, as Python's two-line default
    (`.../pipeline.py:418: UserWarning: ...` and the source line `sweeper = Sweeper(...)`), from both workers,
    where a one-process run prints one `geodino: warning:` line. Now worker 0 says it, as the parent would."""
    src = write_tif(tmp_path / "dn.tif", random_image(64, 64, dtype="uint16"))
    spec = "arch:vit_tiny?depth=1&patch_size=8&seed=0"
    capfd.readouterr()
    argv = ["embed", str(src), "-b", spec, "--out", str(tmp_path / "f.tif"), "--tile", "32", "--overlap", "8"]
    assert cli.main([*argv, "--workers", "2", "--threads", "1", "--no-progress", "block_rows=4", "chunk=4"]) == 0
    err = capfd.readouterr().err
    said = [ln for ln in err.splitlines() if "assuming reflectance = DN / 10000" in ln]
    assert len(said) == 1 and said[0].startswith("geodino: warning: input "), err
    assert "UserWarning" not in err and "Sweeper(" not in err, err
    assert (tmp_path / "f.tif").exists()


def test_a_year_given_as_a_number_is_told_which_text_picks_its_date(tmp_path):
    """`--time 2024` on a cube of 2024 dates reaches the run as the index 2024: "out of range ... pass an index
    0..2 or a date", though 2024 was the date. The line now says a number is an index and names a label to pass;
    a number that starts no date keeps the plain line."""
    from geodino.errors import InputError
    from tests.embed.test_cube_time import _cube
    from tests.embed.toy_backbones import ConvBackbone

    store, _ = _cube(tmp_path / "ts.zarr")
    kw = dict(tile=32, overlap=0, progress=False)
    said = r"a number is an index: for a date of 2024 pass its label \(time=2024-03-01\)"
    with pytest.raises(InputError, match=said):
        embed_raster(store, ConvBackbone(), tmp_path / "f.tif", time=2024, **kw)
    with pytest.raises(InputError, match=r"or a date$"):
        embed_raster(store, ConvBackbone(), tmp_path / "f.tif", time=2023, **kw)
