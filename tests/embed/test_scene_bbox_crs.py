"""`--bbox` without `--bbox-crs` over scenes in more than one CRS: each scene read the same numbers in its own CRS
(metres of UTM 33N in one, of UTM 33S in the other: two unrelated places), and the run went on. Now it is refused
in one line (exit 2) naming two CRSs and `--bbox-crs`; with `--bbox-crs`, or over scenes of one CRS, it runs."""

from __future__ import annotations

import pytest
from rasterio.transform import from_origin

from geodino import cli
from geodino.embed import embed_scenes
from geodino.errors import ConfigError
from tests.embed.conftest import random_image, write_tif

OPTS = {"tile": 32, "overlap": 8, "progress": False}
BBOX = [500000.0, 3999680.0, 500320.0, 4000000.0]  # the top-left 32 x 32 px of both scenes, each in its own CRS


def two_zones(root):
    root.mkdir()
    t = from_origin(500000.0, 4000000.0, 10, 10)
    write_tif(root / "north.tif", random_image(64, 64, seed=1), crs="EPSG:32633", transform=t)
    write_tif(root / "south.tif", random_image(64, 64, seed=2), crs="EPSG:32733", transform=t)
    return root


def test_a_bbox_without_its_crs_over_two_crs_is_refused(tmp_path, conv_bb):
    root = two_zones(tmp_path / "s")
    with pytest.raises(ConfigError, match=r"--bbox .* without --bbox-crs .* span 2 CRSs \(EPSG:32633: north\.tif; "):
        embed_scenes(root, backbone=conv_bb, out=tmp_path / "f", bbox=BBOX, **OPTS)
    assert not (tmp_path / "f").exists()
    # with its CRS it runs (lon/lat around both scenes' top-left corners, 15 E at 36.1 N and 54.2 S)
    written = embed_scenes(root, backbone=conv_bb, out=tmp_path / "g", bbox=[14.99, -54.3, 15.01, 36.2], **OPTS,
                           bbox_crs="EPSG:4326")  # fmt: skip
    assert [p.name for p in written] == ["mosaic_EPSG_32633.vrt", "mosaic_EPSG_32733.vrt"]


def test_the_command_line_says_it_in_one_line_with_exit_2(tmp_path, capfd):
    root = two_zones(tmp_path / "s")
    spec = "arch:vit_tiny?depth=1&patch_size=8&seed=0"
    box = ",".join(str(v) for v in BBOX)
    capfd.readouterr()
    argv = ["embed", str(root), "-b", spec, "--out", str(tmp_path / "f"), "--tile", "32", "--overlap", "8"]
    assert cli.main([*argv, "--bbox", box]) == 2
    err = capfd.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("geodino: error: --bbox 500000 3999680 500320 4000000 without"), err
    assert "pass --bbox-crs" in err[0] and "EPSG:4326" in err[0]
    assert not (tmp_path / "f").exists()


def test_one_crs_still_takes_the_bbox_in_its_own_crs(tmp_path, conv_bb):
    root = tmp_path / "s"
    root.mkdir()
    for k in range(2):
        t = from_origin(500000.0 + 640 * k, 4000000.0, 10, 10)
        write_tif(root / f"s{k}.tif", random_image(64, 64, seed=k), transform=t)
    (mosaic,) = embed_scenes(root, backbone=conv_bb, out=tmp_path / "f", bbox=BBOX, **OPTS)
    assert mosaic.name == "mosaic.vrt"
    assert (tmp_path / "f" / "s0.tif").exists() and not (tmp_path / "f" / "s1.tif").exists()  # s1 lies outside
