"""Many scenes: a rotated or south-up scene is refused from the headers before any scene is embedded (the mosaic
holds north-up rasters only), naming it and the way out; before, every scene was embedded and the mosaic failed."""

from __future__ import annotations

import numpy as np
import pytest
from affine import Affine
from rasterio.transform import from_origin

from geodino import cli
from tests.embed.conftest import random_image, write_tif
from tests.test_bad_inputs import one_line_exit_2

SPEC = "arch:vit_tiny?depth=1&patch_size=8&bands=3"
X0, Y0 = 500000.0, 4000000.0
SOUTH_UP = Affine(10.0, 0.0, X0, 0.0, 10.0, Y0 - 320)
ROTATED = Affine.translation(X0, Y0) @ Affine.rotation(20) @ Affine.scale(10.0, -10.0)


def _scenes(root, **tilted):
    root.mkdir()
    write_tif(root / "a_north.tif", random_image(32, 32, seed=1), transform=from_origin(X0, Y0, 10, 10))
    for k, (name, t) in enumerate(tilted.items()):
        write_tif(root / f"{name}.tif", random_image(32, 32, seed=2 + k), transform=t)
    return root


@pytest.mark.parametrize("transform", [SOUTH_UP, ROTATED], ids=["south-up", "rotated"])
def test_a_tilted_scene_is_refused_before_any_scene_is_embedded(tmp_path, capsys, transform):
    root = _scenes(tmp_path / "scenes", b_tilted=transform)
    out = tmp_path / "feats"
    line = one_line_exit_2(
        capsys,
        tmp_path,
        "embed", root, "-b", SPEC, "--out", out, "--no-progress",
        expect=(f"scene {root / 'b_tilted.tif'} has a rotated or south-up geotransform", "gdalwarp", "on its own"),
    )  # fmt: skip
    assert "a_north" not in line and not out.exists()


def test_every_tilted_scene_is_named(tmp_path, capsys):
    root = _scenes(tmp_path / "scenes", b_south=SOUTH_UP, c_rot=ROTATED)
    one_line_exit_2(
        capsys,
        tmp_path,
        "embed", root, "-b", SPEC, "--out", tmp_path / "feats", "--no-progress",
        expect=("2 of 3 scenes have a rotated or south-up geotransform", "b_south.tif", "c_rot.tif"),
    )  # fmt: skip


def test_the_way_out_works(tmp_path):
    """The south-up scene embedded on its own (as the message says) is placed like its north-up twin."""
    import rasterio

    data = random_image(32, 32, seed=5)
    south = write_tif(tmp_path / "s.tif", data[:, ::-1], transform=SOUTH_UP)
    north = write_tif(tmp_path / "n.tif", data, transform=from_origin(X0, Y0, 10, 10))
    for src in (south, north):
        assert cli.main(["embed", str(src), "-b", SPEC, "--out", str(src.with_suffix(".f.tif")), "--no-progress"]) == 0
    with rasterio.open(tmp_path / "s.f.tif") as s, rasterio.open(tmp_path / "n.f.tif") as n:
        assert s.transform == SOUTH_UP @ Affine.scale(8)
        corners = [(0, 0), (s.width, 0), (0, s.height), (s.width, s.height)]
        assert {s.transform * c for c in corners} == {n.transform * c for c in corners}  # the same ground
        assert np.isfinite(s.read()).all()
