"""Many scenes with a lon/lat `--bbox` far from one scene's UTM zone: the bbox was projected into each scene's CRS,
which PROJ refuses tens of degrees from the zone's meridian ('Point outside of projection domain': the run failed
instead of skipping the scene) or folds back onto the wrong ground (transverse Mercator, over 90 degrees off: a
scene half the globe away was kept and embedded). Now the scene's footprint is tested in lon/lat first."""

from __future__ import annotations

import pytest
from rasterio.transform import from_origin

from geodino import cli
from tests import helpers
from tests.embed.conftest import random_image

SPEC = "arch:vit_tiny?depth=1&patch_size=8&bands=3"
RUN = ["--tile", "32", "--overlap", "8", "--no-progress", "--threads", "1"]
BBOX = ["--bbox", "-10,-10,40,60", "--bbox-crs", "EPSG:4326"]  # holds all of scene a (15 E, 45 N)


@pytest.mark.parametrize(
    "far", ["EPSG:32645", "EPSG:32613", "EPSG:32660"], ids=["87E-fails", "105W-fails", "177E-kept"]
)
def test_a_scene_far_from_a_lonlat_bbox_is_skipped(tmp_path, capsys, far):
    root = tmp_path / "scenes"
    root.mkdir()
    grid = from_origin(500000, 5000000, 10, 10)  # each zone's central meridian, 45 N
    helpers.write_tif(root / "a.tif", random_image(32, 32, seed=1), crs="EPSG:32633", transform=grid)
    helpers.write_tif(root / "b.tif", random_image(32, 32, seed=2), crs=far, transform=grid)
    out = tmp_path / "feats"
    code = cli.main(["embed", str(root), "-b", SPEC, "--out", str(out), *BBOX, *RUN])
    err = capsys.readouterr().err
    assert code == 0, err
    assert "skipped 1 of 2 scenes outside it" in err
    assert (out / "a.tif").exists() and not (out / "b.tif").exists()


def test_a_bbox_over_both_zones_keeps_both(tmp_path, capsys):
    """The footprint test skips only scenes the bbox misses: a bbox over 15 E and 87 E keeps both scenes."""
    root = tmp_path / "scenes"
    root.mkdir()
    grid = from_origin(500000, 5000000, 10, 10)
    helpers.write_tif(root / "a.tif", random_image(32, 32, seed=1), crs="EPSG:32633", transform=grid)
    helpers.write_tif(root / "b.tif", random_image(32, 32, seed=2), crs="EPSG:32645", transform=grid)
    out = tmp_path / "feats"
    argv = ["embed", str(root), "-b", SPEC, "--out", str(out), "--bbox", "14.99,45.1,87.01,45.2", "--bbox-crs"]
    code = cli.main([*argv, "EPSG:4326", *RUN])
    err = capsys.readouterr().err
    assert code == 0 and "skipped" not in err, err
    assert (out / "a.tif").exists() and (out / "b.tif").exists()


def test_a_bbox_reaching_far_past_the_zone_is_cut_to_the_raster(tmp_path, capsys):
    """A lon/lat bbox that meets a zone-45 raster (87 E) but reaches 97 degrees west of its meridian could not be
    projected whole ('Full reprojection failed'); the part over the raster's footprint is placed instead. Its east
    edge, 87.002 E, is column 15.72 of the raster (pyproj), so columns 0..16 (2 cells of 8 px) and all 32 rows."""
    import rasterio

    src = helpers.write_tif(
        tmp_path / "b.tif",
        random_image(32, 32, seed=2),
        crs="EPSG:32645",
        transform=from_origin(500000, 5000000, 10, 10),
    )
    out = tmp_path / "f.tif"
    argv = ["embed", str(src), "-b", SPEC, "--out", str(out), "--bbox", "-10,-10,87.002,60", "--bbox-crs"]
    code = cli.main([*argv, "EPSG:4326", *RUN])
    err = capsys.readouterr().err
    assert code == 0, err
    assert "input columns 0..16, rows 0..32" in err, err
    with rasterio.open(out) as f:
        assert (f.width, f.height) == (2, 4)
        assert f.transform.c == 500000 and f.transform.f == 5000000
