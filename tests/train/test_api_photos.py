"""`geodino.pretrain(photo_folder)` used the `small_vit_tiny` recipe's vertical flips and 90° rotations, made for
overhead chips, though photos have an up (docs/pretraining.md; the official web recipe flips horizontally only).
`photos=True`, or an images or tar source given the web sensor `imagenet`, now trains as photos (horizontal flips
only); without a sensor (EuroSAT-like chips, an EO package's usual input), with a satellite sensor, and for rasters
and cubes, as overhead imagery, and a line says how to choose the other; overrides still win."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

import geodino
from geodino.errors import ConfigError
from tests.helpers import write_tif


def crops(cfg) -> tuple[bool, bool, bool]:
    return cfg.crops.flips, cfg.crops.vflips, cfg.crops.rot90


@pytest.fixture
def photos_dir(tmp_path):
    folder = tmp_path / "photos"
    folder.mkdir()
    Image.fromarray(np.zeros((16, 16, 3), np.uint8)).save(folder / "a.jpg")
    return folder


def test_photos_get_horizontal_flips_only_and_overhead_chips_keep_the_recipe(api_configs, photos_dir, tmp_path, capsys):
    geodino.pretrain(photos_dir, tmp_path / "r")  # no sensor: overhead chips (an EO package's usual input)
    assert crops(api_configs[-1]) == (True, True, True)
    err = capsys.readouterr().err
    assert "images source with sensor imagenet (default) read as overhead chips" in err and "photos=True" in err
    geodino.pretrain(photos_dir, tmp_path / "r", sensor="imagenet")  # the web sensor given: photos
    assert crops(api_configs[-1]) == (True, False, False)
    assert "read as photos: horizontal flips only (photos=False for overhead chips)" in capsys.readouterr().err
    geodino.pretrain(photos_dir, tmp_path / "r", sensor="sat493m")  # overhead chips with a satellite sensor
    assert crops(api_configs[-1]) == (True, True, True)
    geodino.pretrain(photos_dir, tmp_path / "r", photos=True)
    assert crops(api_configs[-1]) == (True, False, False)
    geodino.pretrain(photos_dir, tmp_path / "r", photos=True, overrides=["crops.rot90=true"])  # an override wins
    assert crops(api_configs[-1]) == (True, False, True)
    geodino.distill("arch:vit_tiny", photos_dir, tmp_path / "d", photos=True)
    assert crops(api_configs[-1])[1:] == (False, False)
    with pytest.raises(ConfigError, match=r"^photos='yes'"):
        geodino.pretrain(photos_dir, tmp_path / "r", photos="yes")  # type: ignore[arg-type]


def test_rasters_stay_overhead_unless_told(api_configs, tmp_path, capsys):
    rasters = tmp_path / "rasters"
    rasters.mkdir()
    write_tif(rasters / "a.tif", np.zeros((3, 64, 64), np.uint8))
    geodino.pretrain(rasters, tmp_path / "r", tile_size=32)
    assert crops(api_configs[-1]) == (True, True, True) and "photos" not in capsys.readouterr().err
    geodino.pretrain(rasters, tmp_path / "r", tile_size=32, photos=True)
    assert crops(api_configs[-1]) == (True, False, False)
