"""`embed_scenes(..., progress=False)` and `embed_images(..., progress=False)` from Python are quiet on stderr, as
`embed_raster` is (test_embed_quiet): they printed their own lines anyway ("geodino: --bbox ...: skipped 1 of 3
scenes outside it", "N scenes already done ...", "geodino: wrote ..." of the folder and of the GeoParquet,
"geodino: resuming: ..."). The `geodino embed` command still prints exactly those lines, with --no-progress too; a
rank without a scene is a warning (`warnings.warn`), which reaches a quiet run as well."""

from __future__ import annotations

import pytest
from rasterio.transform import from_origin

from geodino import cli
from geodino.embed import embed_images, embed_scenes
from geodino.embed.pipeline import run_lines
from tests.embed.conftest import random_image, write_tif

UINT8_LINE = (
    "geodino: input DN -> reflectance "
    "x/255 (the default for uint8 input; --sensor/--scale to change)"
)  # the dtype default, said as such

SPEC = "arch:vit_tiny?depth=1&patch_size=8&bands=3"
FAST = {"tile": 32, "overlap": 0}
BBOX = [500000.0, 3999680.0, 501280.0, 4000000.0]  # scenes s0 and s1 (UTM 33N), not far.tif
BBOX_LINE = "geodino: --bbox 500000 3999680 501280 4000000 (each scene CRS): skipped 1 of 3 scenes outside it"


def _scenes(tmp_path):
    """Two 32 x 32 scenes side by side and one 10 km east of them, all in UTM 33N."""
    folder = tmp_path / "scenes"
    folder.mkdir()
    for k, x0 in enumerate((500000.0, 500320.0)):
        write_tif(folder / f"s{k}.tif", random_image(32, 32, seed=k), transform=from_origin(x0, 4000000.0, 10, 10))
    write_tif(folder / "far.tif", random_image(32, 32, seed=5), transform=from_origin(510000.0, 4000000.0, 10, 10))
    return folder


def test_scenes_from_python_without_the_bar_say_nothing(tmp_path, conv_bb, capfd):
    folder, out = _scenes(tmp_path), tmp_path / "feats"
    capfd.readouterr()
    mosaic = embed_scenes(str(folder), backbone=conv_bb, out=out, bbox=BBOX, progress=False, **FAST)
    assert capfd.readouterr().err == ""  # no bbox line, no scene's lines, no "wrote"
    assert mosaic == [out / "mosaic.vrt"] and sorted(p.name for p in out.glob("*.tif")) == ["s0.tif", "s1.tif"]
    embed_scenes(str(folder), backbone=conv_bb, out=out, bbox=BBOX, progress=False, resume=True, **FAST)
    assert capfd.readouterr().err == ""  # nor "2 scenes already done"
    with run_lines():  # the command's way: the same calls say their lines
        embed_scenes(str(folder), backbone=conv_bb, out=out, bbox=BBOX, progress=False, resume=True, **FAST)
    err = capfd.readouterr().err.splitlines()
    assert err == [
        BBOX_LINE,
        "geodino: 2 scenes already done with these settings, skipped",
        f"geodino: wrote 2 feature rasters in {out} and {out / 'mosaic.vrt'}",
    ], err


def test_a_rank_without_a_scene_warns_also_when_quiet(tmp_path, conv_bb, capfd):
    folder = _scenes(tmp_path)
    capfd.readouterr()
    with pytest.warns(UserWarning, match=r"^rank 6 of --world-size 8 has no scene: the run has 3 scenes, done by "):
        assert embed_scenes(str(folder), backbone=conv_bb, out=tmp_path / "f", world_size=8, rank=6, progress=False,
                            **FAST) == []  # fmt: skip
    assert capfd.readouterr().err == "" and not (tmp_path / "f").exists()


def test_the_scenes_command_prints_its_lines_with_and_without_the_bar(tmp_path, capsys):
    folder, out = _scenes(tmp_path), tmp_path / "feats"
    run = ["embed", str(folder), "-b", SPEC, "--tile", "32", "--overlap", "0", "--out", str(out), "--bbox"]
    run += [f"{v:g}" for v in BBOX]
    assert cli.main([*run, "--no-progress"]) == 0
    lines = capsys.readouterr().err.splitlines()
    assert lines[0] == BBOX_LINE, lines
    assert len(lines) == 10, lines  # the bbox line, 4 of each scene (as embed_raster says them), the folder's
    for k in (0, 1):
        scene = lines[1 + 4 * k : 5 + 4 * k]
        assert scene[0] == UINT8_LINE, lines
        assert scene[1].startswith("geodino: inference path ") and scene[2].startswith("geodino: time "), lines
        assert scene[3].startswith(f"geodino: wrote {out / f's{k}.tif'} (192 bands, 4 x 4 cells"), lines
    assert lines[9] == f"geodino: wrote 2 feature rasters in {out} and {out / 'mosaic.vrt'}"
    assert cli.main([*run, "--no-progress", "--resume"]) == 0
    assert capsys.readouterr().err.splitlines() == [
        BBOX_LINE,
        "geodino: 2 scenes already done with these settings, skipped",
        f"geodino: wrote 2 feature rasters in {out} and {out / 'mosaic.vrt'}",
    ]
    assert cli.main([*run, "--resume"]) == 0  # with the bar: the same lines
    err = capsys.readouterr().err
    assert "skipped 1 of 3 scenes outside it" in err and "2 scenes already done with these settings" in err
    assert f"geodino: wrote 2 feature rasters in {out} and {out / 'mosaic.vrt'}\n" in err


def _chips(tmp_path):
    folder = tmp_path / "chips"
    folder.mkdir()
    for k in range(3):
        write_tif(folder / f"c{k}.tif", random_image(32, 32, seed=k), crs=None)
    return folder


def test_images_from_python_without_the_bar_say_nothing(tmp_path, capfd):
    root = _chips(tmp_path)
    capfd.readouterr()
    out = embed_images(root, SPEC, tmp_path / "o.parquet", progress=False)
    assert capfd.readouterr().err == "" and out.exists()  # no "geodino: wrote ..."
    with run_lines():  # the command's way
        embed_images(root, SPEC, out, progress=False, overwrite=True)
    err = capfd.readouterr().err.splitlines()
    assert len(err) == 1 and err[0].startswith(f"geodino: wrote {out} (3 images, 192 dims: cls of block 0, "), err


def test_a_resumed_images_run_from_python_says_nothing(tmp_path, capfd, monkeypatch):
    from geodino.embed import image_parts

    monkeypatch.setattr(image_parts, "PART_IMAGES", 1)
    root, out = _chips(tmp_path), tmp_path / "o.parquet"
    real, calls = image_parts.ImageParts.write, []

    def write_then_die(self, part):
        real(self, part)
        calls.append(part)
        if len(calls) == 2:
            raise RuntimeError("killed")

    monkeypatch.setattr(image_parts.ImageParts, "write", write_then_die)
    with pytest.raises(RuntimeError, match="killed"):
        embed_images(root, SPEC, out, batch_size=1, progress=False)
    monkeypatch.setattr(image_parts.ImageParts, "write", real)
    capfd.readouterr()
    embed_images(root, SPEC, out, batch_size=1, progress=False)
    assert capfd.readouterr().err == "" and out.exists()  # no "geodino: resuming: 2 of 3 ...", no "wrote"


def test_the_images_command_prints_its_line_with_no_progress(tmp_path, capsys):
    root, out = _chips(tmp_path), tmp_path / "o.parquet"
    assert cli.main(["embed", "images", str(root), "-b", SPEC, "--out", str(out), "--no-progress"]) == 0
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and err[0].startswith(f"geodino: wrote {out} (3 images, 192 dims: cls of block 0, "), err
