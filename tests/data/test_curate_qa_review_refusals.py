"""Review follow-ups of `geodino data curate` (quality review of the curate package): `--tile-size` on an image
archive (PATHS read with --type images, the default) cut nothing: each image is one whole tile, so
`geodino data curate scene.tif --tile-size 32` embedded the scene as one image and said nothing of the flag. It is
refused in one line naming --type raster; raster archives still tile."""

from __future__ import annotations

import pytest

from geodino.data.curate import CurateConfig
from geodino.errors import ConfigError
from tests.data.test_curate import SPEC


def test_tile_size_on_images_is_one_line(curate_refuses):
    curate_refuses(
        ["--tile-size", "32"],
        "--tile-size 32 (tile_size= in Python) cuts raster and cube archives into tiles, but --type images (the "
        "default) reads each image whole as one tile; add --type raster",
    )


def test_python_config_refuses_it_too():
    with pytest.raises(ConfigError, match=r"^--tile-size 64 \(tile_size= in Python\) cuts raster .* --type images"):
        CurateConfig(paths=["x"], backbone=SPEC, size=1, type="images", tile_size=64).validate()


def test_default_tile_size_and_raster_tiles_still_pass():
    CurateConfig(paths=["x"], backbone=SPEC, size=1).validate()  # images, the default tile size: nothing said
    for kind in ("raster", "cube"):
        CurateConfig(paths=["x"], backbone=SPEC, size=1, type=kind, tile_size=32).validate()
    CurateConfig(config="c.yaml", backbone=SPEC, size=1, tile_size=32).validate()  # documented: sources' own


def test_qa_band_on_images_names_the_type_in_plain_words(curate_refuses):
    """It said 'the images archive ['imgs'] is a images source'."""
    curate_refuses(["--qa-band", "SCL"], "is a source of type images; curate rasters with it, or drop --qa-band")


def test_tile_size_on_tar_is_one_line():
    """Tar members are whole tiles as images are; the flag was ignored there (data stats refuses it for tar)."""
    with pytest.raises(ConfigError, match=r"^--tile-size 32 \(tile_size= in Python\) cuts raster .* --type tar reads"):
        CurateConfig(paths=["x.tar"], backbone=SPEC, size=1, type="tar", tile_size=32).validate()
