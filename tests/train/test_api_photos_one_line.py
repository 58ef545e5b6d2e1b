"""`geodino.pretrain(folder)` / `geodino.distill` on images or tar without `photos=` decide photos or overhead chips
and say so in one line ("... read as overhead chips ..."). With a config that leaves `crops.vflips` / `crops.rot90`
unset, the run's start then warned again that the photo-like source gets the overhead default because they were not
set: two lines for one decision. The call now records both keys as chosen (their values stay the config's), so the
start's check stays quiet; a config built from overrides naming the sources, with no choice made, is still warned."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from PIL import Image

import geodino
from geodino.data.config import warn_photo_flips

ANNOUNCED = "read as overhead chips"
WARNED = "overhead default of"  # "... gets the overhead default of vertical flips and 90-degree rotations"


@pytest.fixture
def jpegs(tmp_path):
    folder = tmp_path / "jpegs"
    folder.mkdir()
    for i in range(4):
        Image.fromarray(np.full((16, 16, 3), 40 * i, np.uint8)).save(folder / f"{i}.jpg")
    return folder


def _start_warning(cfg, check) -> list[str]:
    """What the run's start would warn (`check`: the check both starts call)."""
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        check(cfg)
    return [str(w.message) for w in seen if WARNED in str(w.message)]


@pytest.mark.parametrize("call", ["pretrain", "distill"])
def test_the_decision_is_said_once(api_configs, jpegs, tmp_path, capsys, call):
    if call == "pretrain":  # demo leaves crops.vflips and crops.rot90 unset
        geodino.pretrain(jpegs, tmp_path / "r", config="demo", steps=1)
    else:
        geodino.distill("arch:vit_tiny", jpegs, tmp_path / "d", config="vitl_to_vits", steps=1)
    cfg = api_configs[-1]
    assert (cfg.crops.vflips, cfg.crops.rot90) == (True, True)  # the overhead default, not overridden
    err = capsys.readouterr().err
    assert err.count(ANNOUNCED) == 1, err
    assert _start_warning(cfg, warn_photo_flips) == []


def test_photos_false_is_a_choice_too(api_configs, jpegs, tmp_path, capsys):
    geodino.pretrain(jpegs, tmp_path / "r", config="demo", steps=1, photos=False)
    assert _start_warning(api_configs[-1], warn_photo_flips) == []
    assert ANNOUNCED not in capsys.readouterr().err


def test_no_choice_made_still_warns(api_configs, jpegs, tmp_path, capsys):
    source = f"data.sources=[{{type: images, paths: [{jpegs}]}}]"
    geodino.pretrain(None, tmp_path / "r", config="demo", steps=1, overrides=[source])
    assert ANNOUNCED not in capsys.readouterr().err  # nothing said by the call: the start's line is the only one
    assert len(_start_warning(api_configs[-1], warn_photo_flips)) == 1


def test_a_config_that_set_them_false_keeps_false(api_configs, jpegs, tmp_path, capsys):
    geodino.pretrain(jpegs, tmp_path / "r", config="demo", overrides=["crops.vflips=false", "crops.rot90=false"])
    cfg = api_configs[-1]
    assert (cfg.crops.vflips, cfg.crops.rot90) == (False, False)
