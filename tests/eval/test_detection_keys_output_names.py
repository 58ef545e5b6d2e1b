"""Output names of predicted images stay unique when the folder-joined name of one image is another's stem.

Before: a/scene.tif and b/scene.tif became a__scene / b__scene, and a file named a__scene.tif kept its stem, so both
a/scene.tif and a__scene.tif were renamed a__scene_tif and wrote one a__scene_tif_boxes.* (one overwrote the other)."""

from __future__ import annotations

from pathlib import Path

from geodino.eval.detection_outputs import output_names


def test_a_name_still_shared_after_the_suffix_rule_gets_a_number(tmp_path):
    for extra in (tmp_path / "a__scene.tif", tmp_path / "c" / "a__scene.tif"):
        paths = [tmp_path / "a" / "scene.tif", tmp_path / "b" / "scene.tif", extra]
        names = output_names(paths)
        assert len(set(names.values())) == 3, names
        assert names[paths[1]] == "b__scene"
        assert [names[paths[0]], names[extra]] == ["a__scene_tif", "a__scene_tif_2"]


def test_names_that_were_unique_are_unchanged():
    paths = [Path("/d/a/scene.tif"), Path("/d/b/scene.tif"), Path("/d/a/other.tif"), Path("/d/c/x.tif")]
    paths += [Path("/d/c/x.png"), Path("/d/c/x_tif_2.tif")]
    names = output_names(paths)
    assert [names[p] for p in paths] == ["a__scene", "b__scene", "other", "c__x_tif", "c__x_png", "x_tif_2"]
