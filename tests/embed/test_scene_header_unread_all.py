"""`embed FOLDER` (--on-error stop, the default) over scenes of which several cannot be opened: the header check
stopped at the first and named only it, so two broken files in an archive took two runs to find. Now one line
names how many, the first's reason and the others' paths, and points to --on-error skip; nothing is written."""

from __future__ import annotations

import pytest

from geodino.embed import embed_scenes
from geodino.errors import InputError
from tests.embed.test_scene_header_skip import OPTS, cut_in_header, junk, scene


def test_every_unreadable_scene_is_named_in_one_line(tmp_path, conv_bb):
    root = tmp_path / "s"
    root.mkdir()
    scene(root / "a.tif", 0)
    junk(root / "b.tif")
    scene(root / "c.tif", 2)
    cut_in_header(root / "d.tif")
    with pytest.raises(InputError) as err:
        embed_scenes(root, backbone=conv_bb, out=tmp_path / "f", **OPTS)
    line = str(err.value)
    assert line.startswith(f"2 of 4 scenes cannot be read: {root / 'b.tif'}: ")
    assert f"; also {root / 'd.tif'}; " in line and line.endswith(
        "(--on-error skip embeds the others and records the skips)"
    )
    assert "\n" not in line and not (tmp_path / "f").exists()
