"""`geodino embed --bbox/--window` (`embed_raster(..., bbox=, window=)`): a study area of a scene embedded without
a gdal_translate step. The area is snapped outward to the input's patch grid and clipped to the raster; the
window is read as a raster of its own, so with a tile covering it the output equals embedding the cut-out pixels;
its cells sit on the full-scene run's grid; the transform, STAC item and resume check follow it; many scenes take
the bbox each in its own CRS and skip those outside it."""

from __future__ import annotations

import json

import numpy as np
import pytest
from affine import Affine
from rasterio.transform import from_origin

from geodino import cli
from geodino.embed.pipeline import embed_raster, run_lines, work_dir_for
from geodino.embed.scenes import embed_scenes
from geodino.errors import ConfigError, InputError
from tests.embed.conftest import random_image, read_all, write_tif

T = from_origin(500000.0, 4000000.0, 10.0, 10.0)  # conftest.write_tif's default grid (EPSG:32633)
FAST = dict(progress=False)


def _cut(tmp_path, img, c, r, w, h, name="cut.tif", transform=T, crs="EPSG:32633"):
    """The pixels [r, r + h) x [c, c + w) as a GeoTIFF of their own: what gdal_translate -srcwin writes."""
    return write_tif(tmp_path / name, img[:, r : r + h, c : c + w], transform=transform * Affine.translation(c, r),
                     crs=crs)  # fmt: skip


def test_window_equals_embedding_the_cut_out_pixels(tmp_path, conv_bb, capsys):
    img = random_image(120, 152)
    src = write_tif(tmp_path / "in.tif", img)
    with run_lines():  # the command's lines, without the bar
        out = embed_raster(src, conv_bb, tmp_path / "w.tif", tile=64, overlap=8, window=[13, 9, 30, 20], **FAST)
    # columns 13..43, rows 9..29 snapped outward to the 4 px patch grid: columns 12..44, rows 8..32
    assert "--window 13 9 30 20 -> input columns 12..44, rows 8..32 (32 x 24 px" in capsys.readouterr().err
    ref = embed_raster(_cut(tmp_path, img, 12, 8, 32, 24), conv_bb, tmp_path / "ref.tif", tile=64, overlap=8, **FAST)
    got, want = read_all(out), read_all(ref)
    assert got[0].shape == (8, 6, 8)
    np.testing.assert_array_equal(got[0], want[0])  # bit-equal: one tile covers the window in both runs
    assert got[1] == want[1] and got[2] == want[2] == T * Affine.translation(12, 8) * Affine.scale(4)
    assert json.loads(got[4]["GEODINO_INPUT_WINDOW"]) == [12, 8, 32, 24]


def test_cells_sit_on_the_full_scene_grid(tmp_path, conv_bb):
    """Away from the window's edges (the conv backbone sees 2 cells each side) a cell equals the full-scene run's
    cell at the same place; one pixel off the grid, every cell would differ."""
    img = random_image(96, 128)
    src = write_tif(tmp_path / "in.tif", img)
    full = read_all(embed_raster(src, conv_bb, tmp_path / "full.tif", tile=128, overlap=0, **FAST))
    part = read_all(embed_raster(src, conv_bb, tmp_path / "part.tif", tile=128, overlap=0, window=[41, 22, 50, 40],
                                 **FAST))  # fmt: skip
    # columns 40..92, rows 20..64: cells 10..23 x 5..16 of the full run
    assert part[0].shape == (8, 11, 13) and part[2] == full[2] * Affine.translation(10, 5)
    np.testing.assert_allclose(part[0][:, 2:-2, 2:-2], full[0][:, 7:14, 12:21], rtol=1e-5, atol=1e-5)
    assert np.abs(part[0][:, 2:-2, 2:-2] - full[0][:, 7:14, 13:22]).max() > 0.1  # a cell over: different


def test_bbox_in_the_raster_crs_and_in_lon_lat(tmp_path, conv_bb):
    from pyproj import Transformer

    img = random_image(118, 150)  # not a multiple of the patch: the last cells are partial
    src = write_tif(tmp_path / "in.tif", img)
    opts = dict(tile=64, overlap=8, **FAST)
    win = read_all(embed_raster(src, conv_bb, tmp_path / "w.tif", window=[13, 9, 30, 20], **opts))
    # the same pixels as a bbox in the raster's CRS (its edges mid-pixel): the same output
    box = [500000 + 10 * 13.5, 4000000 - 10 * 28.5, 500000 + 10 * 42.5, 4000000 - 10 * 9.5]
    got = read_all(embed_raster(src, conv_bb, tmp_path / "b.tif", bbox=box, **opts))
    np.testing.assert_array_equal(got[0], win[0])
    assert got[2] == win[2]
    # a lon/lat bbox: the output covers it, each side less than one cell beyond it
    to_ll = Transformer.from_crs("EPSG:32633", "EPSG:4326", always_xy=True)
    (lon0, lon1), (lat0, lat1) = to_ll.transform([500000 + 10 * 60.3, 500000 + 10 * 101.7],
                                                 [4000000 - 10 * 70.6, 4000000 - 10 * 31.2])  # fmt: skip
    ll = [lon0, lat0, lon1, lat1]
    out = embed_raster(src, conv_bb, tmp_path / "ll.zarr", bbox=ll, bbox_crs="EPSG:4326", **opts)
    feats, _, t, *_ = read_all(out)
    to_utm = Transformer.from_crs("EPSG:4326", "EPSG:32633", always_xy=True)
    edge = np.linspace(0, 1, 201)
    xs = np.r_[lon0 + (lon1 - lon0) * edge, np.full(201, lon1), lon1 - (lon1 - lon0) * edge, np.full(201, lon0)]
    ys = np.r_[np.full(201, lat0), lat0 + (lat1 - lat0) * edge, np.full(201, lat1), lat1 - (lat1 - lat0) * edge]
    cols, rows = ~T * to_utm.transform(xs, ys)
    c0, r0 = int(np.floor(cols.min())) // 4 * 4, int(np.floor(rows.min())) // 4 * 4
    c1, r1 = -(-int(np.ceil(cols.max())) // 4) * 4, -(-int(np.ceil(rows.max())) // 4) * 4
    assert t == T * Affine.translation(c0, r0) * Affine.scale(4)
    assert feats.shape[1:] == ((r1 - r0) // 4, (c1 - c0) // 4)
    # clipped to the raster: a bbox past the bottom-right corner ends on its (partial) last cells
    clip = read_all(embed_raster(src, conv_bb, tmp_path / "c.tif", bbox=[500000 + 10 * 141, 3990000, 510000,
                                 4000000 - 10 * 101], **opts))  # fmt: skip
    assert clip[0].shape == (8, 5, 3) and clip[2] == T * Affine.translation(140, 100) * Affine.scale(4)
    ref = embed_raster(_cut(tmp_path, img, 140, 100, 10, 18), conv_bb, tmp_path / "cref.tif", **opts)
    np.testing.assert_array_equal(clip[0], read_all(ref)[0])


def test_area_outside_the_raster_and_bad_options(tmp_path, conv_bb):
    src = write_tif(tmp_path / "in.tif", random_image(40, 60))
    opts = dict(tile=32, overlap=8, **FAST)
    with pytest.raises(InputError, match=r"^--bbox 0 0 10 10 \(the raster CRS\) lies outside input .*in\.tif, whose "
                       r"extent is 500000 3999600 500600 4000000 in EPSG:32633; pass a bbox that overlaps it "
                       r"\(bbox= in Python; lon/lat\? pass --bbox-crs EPSG:4326, "
                       r"bbox_crs='EPSG:4326' in Python\)$"):  # fmt: skip
        embed_raster(src, conv_bb, tmp_path / "o.tif", bbox=[0, 0, 10, 10], **opts)
    with pytest.raises(InputError, match=r"^--bbox -120 37 -119 38 \(EPSG:4326\) lies outside input .*in\.tif, whose "
                       r"extent is 15 36\.141\d+ 15\.006\d+ 36\.144\d+ in EPSG:4326 \(500000 3999600 500600 4000000 "
                       r"in EPSG:32633\); pass a bbox that overlaps it \(bbox= in Python\)$"):  # fmt: skip
        embed_raster(src, conv_bb, tmp_path / "o.tif", bbox=[-120, 37, -119, 38], bbox_crs="EPSG:4326", **opts)
    with pytest.raises(InputError, match=r"--window 60 0 8 8 \(COL ROW WIDTH HEIGHT\) lies outside input .*in\.tif, "
                       r"which is 60 x 40 px \(width x height: columns 0\.\.60, rows 0\.\.40\); "
                       r".* \(window= in Python\)$"):  # fmt: skip
        embed_raster(src, conv_bb, tmp_path / "o.tif", window=[60, 0, 8, 8], **opts)
    for bad, match in (
        (dict(bbox=[0, 0, 1, 1], window=[0, 0, 8, 8]), "bbox and window both choose the area to embed; keep one"),
        (dict(bbox_crs="EPSG:4326"), r"bbox_crs='EPSG:4326' is given without a bbox"),
        (dict(bbox=[1, 2, 3]), r"bbox 1 2 3 must be four numbers, MINX MINY MAXX MAXY"),
        (dict(bbox="-1,2,x,4"), r"bbox -1,2,x,4 must be four numbers"),
        (
            dict(bbox=[3, 2, 1, 4]),
            r"bbox 3 2 1 4 must be MINX MINY MAXX MAXY with MINX < MAXX .*--bbox 1 2 3 4 \(bbox= in Python\)$",
        ),
        (dict(window=[0, 0, 0.5, 8]), r"window 0 0 0.5 8 must be four whole numbers"),
        (dict(window=[0, 0, 0, 8]), r"window 0 0 0 8 must be COL ROW WIDTH HEIGHT with COL, ROW >= 0"),
        (dict(bbox=[0, 0, 1, 1], bbox_crs="EPSG:nope"), r"--bbox-crs 'EPSG:nope' \(bbox_crs= in Python\) is not"),
        (dict(bbox=[1, 2, 3]), r"e\.g\. --bbox -120\.5,37,-119\.5,38 \(bbox= in Python\)$"),
    ):
        with pytest.raises(ConfigError, match=match):
            embed_raster(src, conv_bb, tmp_path / "o.tif", **opts, **bad)
    assert not (tmp_path / "o.tif").exists() and not work_dir_for(tmp_path / "o.tif").exists()


def test_resume_with_another_window_is_refused(tmp_path, conv_bb):
    src = write_tif(tmp_path / "in.tif", random_image(96, 64))
    opts = dict(tile=32, overlap=8, chunk=8, **FAST)
    out = tmp_path / "o.tif"
    embed_raster(src, conv_bb, out, world_size=2, rank=0, window=[0, 0, 40, 80], **opts)  # a partial output
    assert not out.exists() and work_dir_for(out).exists()
    name = r"window/bbox \(input col, row, width, height\)"
    with pytest.raises(InputError, match=rf"started with other settings: {name} \[0, 0, 40, 80\] \(this run: \[0, 0, "
                       r"40, 64\]\); rerun"):  # fmt: skip
        embed_raster(src, conv_bb, out, resume=True, window=[0, 0, 40, 64], **opts)
    with pytest.raises(InputError, match=rf"started with other settings: {name} \[0, 0, 40, 80\] \(this run: \(none"):
        embed_raster(src, conv_bb, out, resume=True, **opts)
    embed_raster(src, conv_bb, out, resume=True, window=[0, 0, 40, 80], **opts)  # the same window: finished
    assert read_all(out)[0].shape == (8, 20, 10)
    with pytest.raises(InputError, match=rf"complete but was written with other settings: {name} \[0, 0, 40, 80\] "
                       r"\(this run: \[0, 0, 64, 96\]\)"):  # fmt: skip
        embed_raster(src, conv_bb, out, resume=True, **opts)


def test_stac_item_footprint_is_the_window(tmp_path, conv_bb):
    from rasterio.warp import transform_bounds

    src = write_tif(tmp_path / "in.tif", random_image(64, 96))
    out = embed_raster(src, conv_bb, tmp_path / "w.tif", tile=32, overlap=8, window=[40, 16, 24, 32], **FAST)
    item = json.loads((tmp_path / "w.stac.json").read_text())
    assert item["properties"]["proj:shape"] == [8, 6]
    assert item["properties"]["proj:transform"] == list(read_all(out)[2])[:6]
    assert item["properties"]["proj:bbox"] == [500400.0, 3999520.0, 500640.0, 3999840.0]
    want = transform_bounds("EPSG:32633", "EPSG:4326", 500400.0, 3999520.0, 500640.0, 3999840.0)
    np.testing.assert_allclose(item["bbox"], want, atol=1e-6)


def test_many_scenes_take_the_bbox_in_their_own_crs(tmp_path, conv_bb, capsys):
    """Three scenes: two in UTM 33N side by side, one in lon/lat far away. A lon/lat bbox over the seam of the
    first two cuts each to its part and skips the third; a window is refused for many scenes."""
    from pyproj import Transformer

    folder = tmp_path / "scenes"
    folder.mkdir()
    imgs = [random_image(64, 64, seed=k) for k in range(2)]
    for k, img in enumerate(imgs):
        write_tif(folder / f"s{k}.tif", img, transform=from_origin(500000.0 + 640 * k, 4000000.0, 10, 10))
    write_tif(folder / "far.tif", random_image(64, 64, seed=5), crs="EPSG:4326",
              transform=from_origin(-119.9, 37.2, 0.001, 0.001))  # fmt: skip
    to_ll = Transformer.from_crs("EPSG:32633", "EPSG:4326", always_xy=True)
    (lon0, lon1), (lat0, lat1) = to_ll.transform([500000 + 10 * 50.5, 500000 + 10 * 70.5],
                                                 [4000000 - 10 * 30.5, 4000000 - 10 * 10.5])  # fmt: skip
    out = tmp_path / "feats"
    opts = dict(backbone=conv_bb, out=out, tile=32, overlap=8, **FAST)
    with run_lines():  # the command's lines, without the bar
        embed_scenes(str(folder), bbox=[lon0, lat0, lon1, lat1], bbox_crs="EPSG:4326", **opts)
    err = capsys.readouterr().err
    assert "(EPSG:4326): skipped 1 of 3 scenes outside it" in err
    assert sorted(p.name for p in out.glob("*.tif")) == ["s0.tif", "s1.tif"]
    for k, name in enumerate(("s0", "s1")):
        feats, _, t, *_ = read_all(out / f"{name}.tif")
        c0 = 48 if k == 0 else 0  # scene 0 from column 50 (snapped to 48) to its edge; scene 1 up to column 6.5
        assert t == from_origin(500000.0 + 640 * k, 4000000.0, 10, 10) * Affine.translation(c0, 8) * Affine.scale(4)
        assert feats.shape[2] == (16 - c0 // 4 if k == 0 else 2)
    with pytest.raises(InputError, match=r"^--bbox 0 0 1 1 \(EPSG:4326\) overlaps none of the 3 scenes, whose extent "
                       r"is -119\.9 .* in EPSG:4326; pass a bbox that overlaps them$"):  # fmt: skip
        embed_scenes(str(folder), bbox=[0, 0, 1, 1], bbox_crs="EPSG:4326", **{**opts, "out": tmp_path / "none"})
    with pytest.raises(ConfigError, match=r"^--window 0 0 8 8 \(window= in Python\) is in input pixels"):
        embed_scenes(str(folder), window=[0, 0, 8, 8], **{**opts, "out": tmp_path / "w"})


def test_cli_bbox_with_negative_coordinates(tmp_path, monkeypatch, capsys):
    """`--bbox -119.85,37.13,-119.83,37.16` (western longitudes): joined to its flag, as `--bbox=...` and the four
    numbers `--bbox -119.85 37.13 -119.83 37.16` read; all three give the Python run's raster."""
    monkeypatch.setattr(cli, "COMMAND_MODULES", ("geodino.embed.commands",))
    spec = "arch:vit_tiny?depth=1&patch_size=8&bands=3"
    src = write_tif(tmp_path / "in.tif", random_image(96, 96), crs="EPSG:4326",
                    transform=from_origin(-119.9, 37.2, 0.001, 0.001))  # fmt: skip
    ref = read_all(embed_raster(src, spec, tmp_path / "ref.tif", tile=32, overlap=8, bbox=[-119.85, 37.13, -119.83,
                                37.16], **FAST))  # fmt: skip
    assert ref[0].shape[1:] == (4, 3)  # rows 40..72 (snapped from 40..70), columns 48..72 (from 50..70)
    run = [str(src), "-b", spec, "--tile", "32", "--overlap", "8", "--no-progress"]
    for k, spelling in enumerate(
        (["--bbox", "-119.85,37.13,-119.83,37.16"], ["--bbox=-119.85,37.13,-119.83,37.16"],
         ["--bbox", "-119.85", "37.13", "-119.83", "37.16"], ["bbox=[-119.85,37.13,-119.83,37.16]"])
    ):  # fmt: skip
        out = tmp_path / f"o{k}.tif"
        assert cli.main(["embed", *run, "--out", str(out), *spelling]) == 0, capsys.readouterr().err
        got = read_all(out)
        np.testing.assert_array_equal(got[0], ref[0])
        assert got[2] == ref[2]
    assert cli.main(["embed", *run, "--out", str(tmp_path / "x.tif"), "--bbox", "1", "2"]) == 2
    assert "geodino: error: bbox 1 2 must be four numbers, MINX MINY MAXX MAXY" in capsys.readouterr().err
