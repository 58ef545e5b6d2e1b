"""Two many-scene lines read wrong: a JSON file without a "type" was "not STAC JSON (its type is None)", and a
finished one-scene run was told "pass --overwrite to redo them"."""

from __future__ import annotations

import json

import pytest

from geodino.embed.scene_checks import refuse_existing
from geodino.embed.stac import read_stac
from geodino.errors import InputError


def test_json_without_type_and_one_finished_scene_read_right(tmp_path):
    bad = tmp_path / "x.json"
    bad.write_text(json.dumps({"hello": 1}))
    with pytest.raises(InputError, match=r"x\.json is not STAC JSON \(it has no 'type'\); pass an ItemCollection"):
        read_stac(str(bad), "visual")
    bad.write_text(json.dumps({"type": "Polygon"}))
    with pytest.raises(InputError, match=r"not STAC JSON \(its type is 'Polygon'\)"):
        read_stac(str(bad), "visual")

    one = tmp_path / "a.tif"
    one.write_bytes(b"")
    with pytest.raises(InputError, match=r"^the 1 scene output already exists in .*: this run is done; pass "
                       r"--overwrite to redo it \(or --resume"):  # fmt: skip
        refuse_existing([one], tmp_path)
    (tmp_path / "b.tif").write_bytes(b"")
    with pytest.raises(InputError, match=r"^all 2 scene outputs already exist in .*--overwrite to redo them \("):
        refuse_existing([one, tmp_path / "b.tif"], tmp_path)
