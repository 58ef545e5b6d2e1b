"""`--on-error skip` over many scenes with one whose header GDAL cannot open (a non-raster file named .tif, a copy
cut inside its first directory): the header check made before any scene refused the whole run, so one broken file
of a large archive stopped it. Now that scene is skipped like one failing mid-file (one warning naming it, its
record, left out of the mosaic and catalog), `--resume` skips it again or embeds it once fixed, a resume without
the flag says an earlier run skipped it, and every scene unreadable is one line (exit 2) writing nothing."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pytest
from rasterio.transform import from_origin

from geodino import cli
from geodino.embed import embed_raster, embed_scenes
from geodino.errors import InputError
from tests.embed.conftest import random_image, read_all, write_tif

OPTS = {"tile": 32, "overlap": 8, "progress": False}


def scene(path: Path, k: int) -> Path:
    return write_tif(path, random_image(32, 32, seed=k), transform=from_origin(500000 + 640 * k, 4000000, 10, 10))


def junk(path: Path) -> Path:
    """100 random bytes named .tif: GDAL cannot open it at all."""
    path.write_bytes(np.random.default_rng(0).integers(0, 256, 100, dtype=np.uint8).tobytes())
    return path


def cut_in_header(path: Path) -> Path:
    """A real scene cut to 200 bytes: inside its first directory, so GDAL cannot open it."""
    data = scene(path, 9).read_bytes()
    path.write_bytes(data[:200])
    return path


def caught_skips(caught) -> list[str]:
    return [str(w.message) for w in caught if "skipped scene" in str(w.message)]


def test_a_scene_whose_header_cannot_be_opened_is_skipped_and_resume_retries_it(tmp_path, conv_bb):
    root = tmp_path / "s"
    root.mkdir()
    files = {"a": scene(root / "a.tif", 0), "b": junk(root / "b.tif"), "c": scene(root / "c.tif", 2)}
    out = tmp_path / "f"
    with pytest.warns(UserWarning) as caught:
        (mosaic,) = embed_scenes(root, backbone=conv_bb, out=out, on_error="skip", **OPTS)
    (line,) = caught_skips(caught)
    assert line.startswith(f"skipped scene b ({files['b']}) under --on-error skip: cannot open its header (")
    assert "not recognized" in line and "partial output" not in line and "\n" not in line  # nothing was written
    assert sorted(p.name for p in out.iterdir()) == [
        "a.stac.json",
        "a.tif",
        "b.skipped.json",
        "c.stac.json",
        "c.tif",
        "catalog.json",
        "cell_grid.json",  # the cells the scenes share (scene_grid_file)
        "mosaic.vrt",
    ]
    alone = embed_raster(files["c"], conv_bb, tmp_path / "alone.tif", **OPTS)  # the others complete, as alone
    np.testing.assert_array_equal(read_all(out / "c.tif")[0], read_all(alone)[0])
    tags = read_all(mosaic)[4]
    assert tags["GEODINO_INPUT"] == "mosaic of 2 scenes" and tags["GEODINO_SKIPPED_SCENES"] == "b"
    catalog = json.loads((out / "catalog.json").read_text())
    (record,) = catalog["geodino:skipped"]
    assert record["scene"] == "b" and record["file"] == str(files["b"])
    assert record["reason"].startswith("cannot open its header (") and "1 scene skipped" in catalog["description"]

    # a resume that forgot the flag is the default's refusal, saying the earlier run skipped it
    with pytest.raises(InputError, match=r"cannot read scene .*b\.tif: .*earlier run into .* skipped it: pass "):
        embed_scenes(root, backbone=conv_bb, out=out, resume=True, **OPTS)
    # --resume --on-error skip: b skipped again (one warning), a and c not redone
    stamp = {n: (out / f"{n}.tif").stat().st_mtime_ns for n in "ac"}
    with pytest.warns(UserWarning) as caught:
        embed_scenes(root, backbone=conv_bb, out=out, on_error="skip", resume=True, **OPTS)
    assert len(caught_skips(caught)) == 1 and (out / "b.skipped.json").exists()
    assert {n: (out / f"{n}.tif").stat().st_mtime_ns for n in "ac"} == stamp
    # fixed: embedded and added; a finished scene broken since is kept (not removed by the skip), with a warning
    scene(files["b"], 1)
    junk(files["a"])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        (mosaic,) = embed_scenes(root, backbone=conv_bb, out=out, on_error="skip", resume=True, **OPTS)
    assert not caught_skips(caught)
    (kept,) = [str(w.message) for w in caught if "is kept" in str(w.message)]
    assert kept.startswith(f"scene a ({files['a']}) cannot open its header (") and (out / "a.tif").exists()
    assert (out / "b.tif").exists() and not (out / "b.skipped.json").exists()
    tags = read_all(mosaic)[4]
    assert tags["GEODINO_INPUT"] == "mosaic of 3 scenes" and "GEODINO_SKIPPED_SCENES" not in tags


def test_stop_refuses_up_front_and_all_unreadable_is_one_line_exit_2(tmp_path, capfd, conv_bb):
    root = tmp_path / "s"
    root.mkdir()
    scene(root / "a.tif", 0)
    cut_in_header(root / "b.tif")
    with pytest.raises(InputError, match=r"^cannot read scene .*b\.tif: .*leave it out of this run$"):
        embed_scenes(root, backbone=conv_bb, out=tmp_path / "f", **OPTS)
    assert not (tmp_path / "f").exists()  # refused before anything was written, as before

    bad = tmp_path / "bad"
    bad.mkdir()
    junk(bad / "x.tif")
    cut_in_header(bad / "y.tif")
    argv = ["embed", str(bad), "-b", "arch:vit_tiny?depth=1&patch_size=8&seed=0", "--out", str(tmp_path / "g")]
    capfd.readouterr()
    with warnings.catch_warnings():  # the CLI prints warnings itself (one line each): put back its hook after
        assert cli.main([*argv, "--on-error", "skip", "--no-progress"]) == 2
    err = capfd.readouterr().err.strip().splitlines()  # refused before any scene: no warning per scene, no record
    assert len(err) == 1 and err[0].startswith(f"geodino: error: none of the 2 scenes can be read (e.g. {bad}"), err
    assert "so --on-error skip (on_error='skip' in Python) leaves nothing to embed" in err[0]
    assert not (tmp_path / "g").exists()
