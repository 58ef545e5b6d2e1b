"""The cells a many-scene run's scenes share are recorded in the output folder (`OUT/cell_grid.json`,
`scene_grid_file`), so ranks started at different times and resumes put their scenes on the same cells even when
they see another first readable scene. Before, each run took its own first readable scene: a rank that found the
first scene unreadable put its scenes on the next one's cells (half a cell off the other rank's in the mosaic), and a
resume after the first scene was fixed refused the scenes the earlier run had put on the other scene's cells."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest
import rasterio
from rasterio.transform import from_origin

from geodino.embed import embed_scenes
from geodino.errors import InputError
from tests.embed.conftest import random_image, write_tif
from tests.embed.toy_backbones import ConvBackbone

RES, X0, Y0, P = 10.0, 500000.0, 4000000.0, 16
OPTS = {"tile": 64, "overlap": 16, "progress": False}


@pytest.fixture
def bb():
    return ConvBackbone(in_chans=3, dim=8, patch=P, n_convs=1)


def folder(root, shift=(0, 0)):
    """a (96 px at the image's origin, moved by `shift` px), b (128 px, 2.5 x 1.5 cells east/south of a: 8 px off
    a's cells in x and y), c (64 px, on a's cells east of it), cut from one image; returns the image."""
    root.mkdir(exist_ok=True)
    big = random_image(160, 192, seed=3)
    for name, row, col, size in (("a", 0, 0, 96), ("b", 24, 40, 128), ("c", 0, 96, 64)):
        dx, dy = shift if name == "a" else (0, 0)
        t = from_origin(X0 + (col + dx) * RES, Y0 - (row + dy) * RES, RES, RES)
        write_tif(root / f"{name}.tif", np.ascontiguousarray(big[:, row : row + size, col : col + size]), transform=t)
    return big


def read(path):
    with rasterio.open(path) as src:
        return src.read(), src.transform


def on_one_grid(out, names):
    """Every scene's feature raster on the same cells: origins whole cells apart (the mosaic is exact)."""
    t0 = read(out / f"{names[0]}.tif")[1]
    for n in names[1:]:
        t = read(out / f"{n}.tif")[1]
        assert (t.a, t.e) == (t0.a, t0.e)
        assert ((t.c - t0.c) / t0.a) % 1 == 0 and ((t.f - t0.f) / t0.e) % 1 == 0, f"{n} off {names[0]}'s cells"


def test_a_later_rank_that_cannot_read_the_first_scene_uses_the_cells_the_first_rank_recorded(tmp_path, bb):
    s, out = tmp_path / "s", tmp_path / "f"
    folder(s)
    run = {"backbone": bb, "out": out, "world_size": 2, "on_error": "skip", **OPTS}
    assert embed_scenes(s, rank=0, **run) == []  # a, c: on a's cells
    good = (s / "a.tif").read_bytes()
    (s / "a.tif").write_bytes(b"not a raster")  # unreadable for rank 1 (its output was made by rank 0)
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)  # no off-grid warning from the mosaic
        (mosaic,) = embed_scenes(s, rank=1, **run)  # b: put on a's recorded cells, not on its own
    (s / "a.tif").write_bytes(good)
    fb, tb = read(out / "b.tif")
    assert (tb.c, tb.f) == (X0 + 32 * RES, Y0 - 16 * RES)  # the old code: b's own origin, X0 + 40 px, Y0 - 24 px
    on_one_grid(out, ["a", "b", "c"])
    with rasterio.open(mosaic) as m:  # b's cells south of c and east of a (b alone there): b's own vectors
        assert (m.transform.c - tb.c) % (P * RES) == 0 and (m.transform.f - tb.f) % (P * RES) == 0
        for i in range(4, 9):
            for j in range(4, 9):
                r, c = m.index(*(tb * (j + 0.5, i + 0.5)))
                got = m.read(window=((r, r + 1), (c, c + 1)))[:, 0, 0]
                np.testing.assert_array_equal(got, fb[:, i, j], err_msg=f"cell row {i} col {j}")
    rec = json.loads((out / "cell_grid.json").read_text())  # recorded by rank 0
    assert (rec["scene"], rec["patch"], rec["geotransform"]) == ("a", P, [X0, RES, 0.0, Y0, 0.0, -RES])


def test_a_resume_after_the_first_scene_was_fixed_keeps_the_recorded_cells(tmp_path, bb):
    s, out = tmp_path / "s", tmp_path / "f"
    folder(s)
    good = (s / "a.tif").read_bytes()
    (s / "a.tif").write_bytes(b"not a raster")
    with pytest.warns(UserWarning, match="skipped scene a"):
        embed_scenes(s, backbone=bb, out=out, on_error="skip", **OPTS)  # b, c on b's cells (c: offset [8, 8])
    tc = read(out / "c.tif")[1]
    (s / "a.tif").write_bytes(good)  # fixed: the first readable scene again
    stamp = (out / "c.tif").stat().st_mtime_ns
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        # the old code: c refused as 'written with other settings' (a's cells would have needed no offset for it)
        assert embed_scenes(s, backbone=bb, out=out, resume=True, **OPTS) == [out / "mosaic.vrt"]
    assert (out / "c.tif").stat().st_mtime_ns == stamp and read(out / "c.tif")[1] == tc  # found done, kept
    ta = read(out / "a.tif")[1]
    assert (ta.c, ta.f) == (X0 - 8 * RES, Y0 + 8 * RES)  # a on b's cells: 8 px west and north of its origin
    on_one_grid(out, ["b", "a", "c"])
    assert json.loads((out / "cell_grid.json").read_text())["scene"] == "b"


def test_a_record_whose_scene_moved_is_refused_naming_it_and_replaced_by_overwrite(tmp_path, bb):
    s, out = tmp_path / "s", tmp_path / "f"
    folder(s)
    embed_scenes(s, backbone=bb, out=out, **OPTS)
    folder(s, shift=(3, 0))  # a rewritten 3 px east: the cells recorded from it are no longer its own
    with pytest.raises(InputError) as err:
        embed_scenes(s, backbone=bb, out=out, resume=True, **OPTS)
    line = str(err.value)
    assert line.startswith(f"{out / 'cell_grid.json'} records the cells the scenes in {out} are embedded on")
    assert "(those of scene a: EPSG:32633, 10 x 10 pixels, origin 500000, 4000000, 16 px cells)" in line
    assert "that scene (" in line and "now lies on other cells (EPSG:32633, 10 x 10 pixels, origin 500030" in line
    assert line.endswith("pass --overwrite (overwrite=True in Python) to redo the scenes there on this run's cells")
    embed_scenes(s, backbone=bb, out=out, overwrite=True, **OPTS)
    assert json.loads((out / "cell_grid.json").read_text())["geotransform"][0] == X0 + 3 * RES
    assert read(out / "a.tif")[1].c == X0 + 3 * RES  # a on its own cells again, the others on them
    on_one_grid(out, ["a", "b", "c"])
    with pytest.raises(InputError, match=r"backbone has 8 px cells \(patch size\), the record 16 px"):
        embed_scenes(s, backbone=ConvBackbone(in_chans=3, dim=8, patch=8, n_convs=1), out=out, resume=True, **OPTS)


def test_a_record_in_a_folder_without_outputs_is_replaced_and_a_refused_run_leaves_none(tmp_path, bb, monkeypatch):
    import geodino.embed.pipeline as pipeline

    s, out = tmp_path / "s", tmp_path / "f"
    folder(s)
    (tmp_path / "t").mkdir()
    coarse = from_origin(X0, Y0, 2 * RES, 2 * RES)  # 20 m pixels: none of a, b, c on its pixel grid
    write_tif(tmp_path / "t" / "z.tif", random_image(64, 64, seed=5), transform=coarse)
    write_tif(tmp_path / "t" / "y.tif", random_image(64, 64, seed=6), transform=coarse)
    embed_scenes(tmp_path / "t", backbone=bb, out=out, **OPTS)  # another scene list: y's cells recorded
    for p in out.iterdir():
        if p.name != "cell_grid.json":
            p.unlink()
    embed_scenes(s, backbone=bb, out=out, **OPTS)  # no output left there: the record is this run's (a's)
    assert json.loads((out / "cell_grid.json").read_text())["scene"] == "a"
    on_one_grid(out, ["a", "b", "c"])

    def refused(*a, **k):
        raise InputError("refused")

    monkeypatch.setattr(pipeline, "embed_raster", refused)
    with pytest.raises(InputError, match="refused"):
        embed_scenes(s, backbone=bb, out=tmp_path / "g", **OPTS)
    assert not (tmp_path / "g").exists()  # the record made for the run removed, then the folder it created


def test_a_record_of_other_scenes_or_not_geodinos_is_refused_beside_their_outputs(tmp_path, bb):
    s, out = tmp_path / "s", tmp_path / "f"
    folder(s)
    (tmp_path / "t").mkdir()
    write_tif(tmp_path / "t" / "z.tif", random_image(64, 64, seed=5), transform=from_origin(X0, Y0, 20.0, 20.0))
    embed_scenes(tmp_path / "t", backbone=bb, out=out, **OPTS)  # z's 20 m cells recorded, z.tif written
    with pytest.raises(InputError, match=r"but scene z is not among this run's scenes, and none of them lies on its"):
        embed_scenes(s, backbone=bb, out=out, resume=True, **OPTS)
    (out / "cell_grid.json").write_text("{")
    with pytest.raises(InputError, match=r"cell_grid\.json is not the cell grid record geodino writes \(JSONDecode"):
        embed_scenes(tmp_path / "t", backbone=bb, out=out, resume=True, **OPTS)
    embed_scenes(tmp_path / "t", backbone=bb, out=out, overwrite=True, **OPTS)  # written anew
    assert json.loads((out / "cell_grid.json").read_text())["scene"] == "z"
