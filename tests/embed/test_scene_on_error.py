"""`--on-error skip|stop` of a many-scene run: a scene whose header reads but whose data are cut short mid-file
stopped the whole run (exit 2) after the scenes before it were written, with no way to go on past it. With
`on_error="skip"` it is skipped: one warning, its partial output removed, `<scene>.skipped.json` written, left out
of the mosaic and catalog.json (both list it), exit 0; `--resume` retries it. The default stays stop."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pytest
from rasterio.transform import from_origin

from geodino import cli
from geodino.embed import embed_raster, embed_scenes
from geodino.errors import ConfigError, InputError
from tests.embed.conftest import random_image, read_all, write_tif

OPTS = {"tile": 32, "overlap": 8, "progress": False}
SPEC = "arch:vit_tiny?depth=1&patch_size=8&seed=0"


def scene(path: Path, k: int, size: int = 64) -> Path:
    return write_tif(path, random_image(size, size, seed=k), transform=from_origin(500000 + 1280 * k, 4000000, 10, 10))


def cut_short(path: Path) -> Path:
    """Truncate a 128 x 128 scene of 64 px blocks to two thirds: the header still reads, the last blocks do not."""
    import rasterio

    with open(path, "r+b") as f:
        f.truncate(path.stat().st_size * 2 // 3)
    with rasterio.open(path) as src:  # the up-front header check passes: the failure comes while it is embedded
        assert src.count == 3
    return path


def three_with_b_cut(root: Path) -> dict[str, Path]:
    root.mkdir(parents=True, exist_ok=True)
    return {"a": scene(root / "a.tif", 0), "b": cut_short(scene(root / "b.tif", 1, 128)), "c": scene(root / "c.tif", 2)}


def test_a_scene_cut_short_is_skipped_recorded_and_left_out(tmp_path, conv_bb):
    files = three_with_b_cut(tmp_path / "s")
    out = tmp_path / "f"
    with pytest.warns(UserWarning, match=r"skipped scene b \(.*b\.tif\) under --on-error skip: cannot read raster"):
        (mosaic,) = embed_scenes(tmp_path / "s", backbone=conv_bb, out=out, on_error="skip", **OPTS)
    assert sorted(p.name for p in out.iterdir()) == [
        "a.stac.json",
        "a.tif",
        "b.skipped.json",
        "c.stac.json",
        "c.tif",
        "catalog.json",
        "cell_grid.json",  # the cells the scenes share (scene_grid_file)
        "mosaic.vrt",
    ]  # no b.tif, no .b.tif.partial, no b.stac.json, no lock left
    record = json.loads((out / "b.skipped.json").read_text())
    assert record["scene"] == "b" and record["file"] == str(files["b"])
    assert "truncated or corrupt" in record["reason"]
    for name in ("a", "c"):  # the others are what they are alone
        alone = embed_raster(files[name], conv_bb, tmp_path / "alone" / f"{name}.tif", **OPTS)
        np.testing.assert_array_equal(read_all(out / f"{name}.tif")[0], read_all(alone)[0])
    tags = read_all(mosaic)[4]
    assert tags["GEODINO_INPUT"] == "mosaic of 2 scenes" and tags["GEODINO_SKIPPED_SCENES"] == "b"
    catalog = json.loads((out / "catalog.json").read_text())
    items = [lk["href"] for lk in catalog["links"] if lk["rel"] == "item"]
    assert items == ["./a.stac.json", "./c.stac.json"]
    assert [s["scene"] for s in catalog["geodino:skipped"]] == ["b"]
    assert catalog["geodino:skipped"][0]["file"] == str(files["b"]) and "1 scene skipped" in catalog["description"]

    # --resume retries it: still broken, skipped again (a and c are not redone); fixed, it joins the mosaic
    with pytest.warns(UserWarning, match=r"skipped scene b"):
        embed_scenes(tmp_path / "s", backbone=conv_bb, out=out, on_error="skip", resume=True, **OPTS)
    assert (out / "b.skipped.json").exists() and not (out / "b.tif").exists()
    scene(files["b"], 1, 128)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        (mosaic,) = embed_scenes(tmp_path / "s", backbone=conv_bb, out=out, on_error="skip", resume=True, **OPTS)
    assert not [w for w in caught if "skipped" in str(w.message)]
    assert (out / "b.tif").exists() and not (out / "b.skipped.json").exists()
    tags = read_all(mosaic)[4]
    assert tags["GEODINO_INPUT"] == "mosaic of 3 scenes" and "GEODINO_SKIPPED_SCENES" not in tags
    catalog = json.loads((out / "catalog.json").read_text())
    assert "geodino:skipped" not in catalog and len([lk for lk in catalog["links"] if lk["rel"] == "item"]) == 3


def test_stop_is_the_default_and_named_stop_too(tmp_path, conv_bb):
    three_with_b_cut(tmp_path / "s")
    for i, extra in enumerate(({}, {"on_error": "stop"})):
        with pytest.raises(InputError, match=r"cannot read raster .*b\.tif .*truncated or corrupt"):
            embed_scenes(tmp_path / "s", backbone=conv_bb, out=tmp_path / f"f{i}", **OPTS, **extra)
        assert not (tmp_path / f"f{i}" / "b.skipped.json").exists()
        assert not (tmp_path / f"f{i}" / "mosaic.vrt").exists()
    with pytest.raises(ConfigError, match=r"--on-error 'ignore' \(on_error= in Python\) is not one of stop, skip"):
        embed_scenes(tmp_path / "s", backbone=conv_bb, out=tmp_path / "f9", on_error="ignore", **OPTS)


def test_every_scene_skipped_is_one_line_and_no_mosaic(tmp_path, conv_bb):
    root = tmp_path / "s"
    root.mkdir()
    cut_short(scene(root / "x.tif", 0, 128))
    cut_short(scene(root / "y.tif", 1, 128))
    with pytest.warns(UserWarning, match="skipped scene"):
        with pytest.raises(InputError, match=r"none of the 2 scenes could be embedded .*e\.g\. x: cannot read raster"):
            embed_scenes(root, backbone=conv_bb, out=tmp_path / "f", on_error="skip", **OPTS)
    # no raster, mosaic, catalog or partial output: only the records of what failed and why
    assert sorted(p.name for p in (tmp_path / "f").iterdir()) == ["x.skipped.json", "y.skipped.json"]


def test_the_command_line_skips_with_one_warning_and_exit_0(tmp_path, capfd):
    root = tmp_path / "s"
    root.mkdir()
    scene(root / "a.tif", 0)
    cut_short(scene(root / "b.tif", 1, 128))
    out = tmp_path / "f"
    argv = ["embed", str(root), "-b", SPEC, "--out", str(out), "--tile", "32", "--overlap", "8", "--no-progress"]
    capfd.readouterr()
    with pytest.warns(UserWarning) as caught:  # the CLI shows it as one line "geodino: warning: ..."
        assert cli.main([*argv, "--on-error", "skip"]) == 0
    warned = [str(w.message) for w in caught if "skipped" in str(w.message)]
    assert len(warned) == 1 and warned[0].startswith("skipped scene b (") and "\n" not in warned[0], warned
    err = capfd.readouterr().err
    assert err.strip().splitlines()[-1].endswith("(1 scene skipped as unreadable: b)"), err
    assert (out / "a.tif").exists() and (out / "b.skipped.json").exists() and (out / "mosaic.vrt").exists()
    # the default (stop) is exit 2 at b, as before
    assert cli.main([*argv[:5], str(tmp_path / "g"), *argv[6:]]) == 2
    assert "geodino: error: cannot read raster" in capfd.readouterr().err
    # one raster has nothing to go on with: the flag is refused rather than ignored
    one = ["embed", str(root / "a.tif"), "-b", SPEC, "--out", str(tmp_path / "one.tif"), "--on-error", "skip"]
    assert cli.main(one) == 2
    line = capfd.readouterr().err.strip().splitlines()[-1]
    assert line.startswith("geodino: error: --on-error skip (on_error) applies to many scenes"), line
    assert not (tmp_path / "one.tif").exists()
