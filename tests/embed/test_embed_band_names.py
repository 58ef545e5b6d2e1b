"""`geodino embed --bands` takes band names as well as numbers: names resolve by the data sources' rule (the
raster's band descriptions, else `--sensor`'s names and aliases when it has the raster's band count, else b1..bN);
a mix, a name given twice, an unknown name, or scenes that number the names differently are one line (exit 2).
Also the one argv walker behind `join_band_numbers` and `join_negative_lists`."""

from __future__ import annotations

import argparse
import json

import numpy as np
import pytest

from geodino import cli
from geodino.embed.command_flags import band_list, join_band_numbers, join_negative_lists
from tests import helpers
from tests.embed.conftest import random_image, read_all
from tests.test_bad_inputs import one_line_exit_2

SPEC = "arch:vit_tiny?depth=1&patch_size=8&bands=3"
RUN = ["--tile", "32", "--overlap", "8", "--no-progress", "--threads", "1"]
S2 = ["B02", "B03", "B04", "B08"]  # a Sentinel-2 export's descriptions: blue, green, red, nir


def _tif(path, descriptions=None, bands: int = 4, seed: int = 0, dtype: str = "uint8"):
    data = random_image(32, 40, bands, seed=seed, dtype=dtype)
    return helpers.write_tif(path, data, descriptions=descriptions)


def _embed(capsys, src, out, *extra: str):
    code = cli.main(["embed", str(src), "-b", SPEC, "--out", str(out), *RUN, *extra])
    err = capsys.readouterr().err
    assert code == 0, err
    return read_all(out), err


def _parse(argv):
    return cli.build_parser("embed").parse_known_args(argv)[0]


@pytest.mark.parametrize(
    ("argv", "joined"),
    [
        (["--bands", "1", "2"], ["--bands=1,2"]),
        (["--bands=1,2", "x.tif"], ["--bands=1,2", "x.tif"]),  # already one value
        (["--bands", "red", "green", "blue", "x.tif"], ["--bands=red,green,blue", "x.tif"]),
        (["--bands", "B04,", "B03", "--out", "o"], ["--bands=B04,B03", "--out", "o"]),
        (["--bands", "4", "red"], ["--bands=4", "red"]),  # numbers then a word: the word stays an input, as before
        (["--bands", "red", "4", "x.tif"], ["--bands=red", "4", "x.tif"]),
        (["--bands", "4,red", "3"], ["--bands=4,red", "3"]),  # a mixed token alone, for band_list to refuse
        (["--bands", "red", "scenes/*.tif"], ["--bands=red", "scenes/*.tif"]),  # a glob stays an input
        (["--bands", "red", "pca", "f.tif"], ["--bands=red", "pca", "f.tif"]),
        (["--bands", "red", "tile=64"], ["--bands=red", "tile=64"]),
        (["--bands", "-1"], ["--bands", "-1"]),  # a negative number: argparse's value already
        (["--", "--bands", "1", "2"], ["--", "--bands", "1", "2"]),
        (
            ["--point", "-1,2", "--bands", "3", "--bbox", "-5,-6,7,8"],
            ["--point", "-1,2", "--bands=3", "--bbox", "-5,-6,7,8"],
        ),
    ],
)
def test_join_band_numbers_edges(argv, joined):
    assert join_band_numbers(argv) == joined


@pytest.mark.parametrize(
    ("argv", "joined"),
    [
        (["--bands", "1", "--point", "-1,2", "--layers", "-2,-1", "--bbox", "-1,-2", "3"],
         ["--bands", "1", "--point=-1,2", "--layers=-2,-1", "--bbox=-1,-2", "3"]),
        (["--point", "-1,2", "-3,4"], ["--point=-1,2", "-3,4"]),  # one list per flag, as before
        (["--point"], ["--point"]),
    ],
)  # fmt: skip
def test_join_negative_lists_through_the_shared_walker(argv, joined):
    assert join_negative_lists(argv) == joined


@pytest.mark.parametrize(
    ("argv", "bands"),
    [
        (["x.tif", "--bands", "red", "nir"], ["red", "nir"]),
        (["x.tif", "--bands=B04,B03,B02"], ["B04", "B03", "B02"]),
        (["x.tif", "--bands", "4", "3"], [4, 3]),
        (["x.tif", "--bands=1,2"], [1, 2]),
        (["x.tif", "--bands", "-1"], [-1]),  # as before: refused later, as a band the raster lacks
    ],
)
def test_embed_parser_takes_names_and_numbers(argv, bands):
    args = _parse(["embed", *argv])
    assert args.bands == bands and args.input == "x.tif"


@pytest.mark.parametrize(
    ("text", "said"),
    [
        ("4,red", "mixes band numbers (4) and names"),
        ("red,nir,RED", "names band 'RED' twice"),
        ("4.5", "is not a list of band numbers"),
    ],
)
def test_band_list_refusals(text, said):
    with pytest.raises(argparse.ArgumentTypeError, match=said.replace("(", r"\(").replace(")", r"\)")):
        band_list(text)


def test_mixed_bands_are_one_line_exit_2(tmp_path, capsys):
    src = _tif(tmp_path / "in.tif", S2)
    with pytest.raises(SystemExit) as exc:
        cli.main(["embed", str(src), "-b", SPEC, "--out", str(tmp_path / "o.tif"), "--bands", "4,red"])
    err = capsys.readouterr().err.strip().splitlines()
    assert exc.value.code == 2 and len(err) == 1 and "'4,red' mixes band numbers (4) and names" in err[0]


def test_names_resolve_by_the_band_descriptions(tmp_path, capsys):
    """B04,B03,B02 of a raster described B02 B03 B04 B08 read bands 3,2,1, with exactly the features of --bands
    3,2,1; names match case-insensitively, as a data source's `bands:` (--sensor's aliases: the test below)."""
    src = _tif(tmp_path / "in.tif", S2)
    (by_name, *_, tags, _), err = _embed(capsys, src, tmp_path / "a.tif", "--bands", "B04", "B03", "B02")
    (by_number, *_), _ = _embed(capsys, src, tmp_path / "b.tif", "--bands", "3,2,1")
    assert json.loads(tags["GEODINO_INPUT_BANDS"]) == [3, 2, 1]
    np.testing.assert_array_equal(by_name, by_number)
    assert f"--bands B04,B03,B02 reads bands 3,2,1 of {src}" in err
    (*_, tags, _), _ = _embed(capsys, src, tmp_path / "c.tif", "--bands", "b08,B04,b03")
    assert json.loads(tags["GEODINO_INPUT_BANDS"]) == [4, 3, 2]


def test_names_resolve_by_the_sensor_when_the_raster_names_no_bands(tmp_path, capsys):
    """No descriptions: --sensor's band names (and aliases) name the raster's bands when the counts match, as in a
    data source; without --sensor the bands are b1..bN."""
    src = _tif(tmp_path / "in.tif", None, bands=6, dtype="uint16")
    (_, *_, tags, _), _ = _embed(capsys, src, tmp_path / "a.tif", "--bands", "nir,SR_B4,green", "--sensor", "landsat8")
    assert json.loads(tags["GEODINO_INPUT_BANDS"]) == [4, 3, 2]  # landsat8: SR_B2..SR_B7, nir = SR_B5
    with pytest.warns(UserWarning, match=r"input .*in\.tif is uint16: assuming reflectance = DN / 10000"):
        (_, *_, tags, _), _ = _embed(capsys, src, tmp_path / "b.tif", "--bands", "b6,b1,b2")
    assert json.loads(tags["GEODINO_INPUT_BANDS"]) == [6, 1, 2]


def test_unknown_name_lists_the_bands_there_are(tmp_path, capsys):
    src = _tif(tmp_path / "in.tif", S2)
    out = tmp_path / "o.tif"
    base = ("embed", src, "-b", SPEC, "--out", out, *RUN)
    one_line_exit_2(
        capsys,
        tmp_path,
        *base,
        "--bands",
        "B04,B11,B02",
        expect=("has no band 'B11' (its bands: B02, B03, B04, B08)", "--bands names among those", "(1..4)"),
    )
    one_line_exit_2(  # an alias without --sensor: the file's own name for it is named (as no sensor is given)
        capsys, tmp_path, *base, "--bands", "red",
        expect=("has no band 'red' (its bands: B02, B03, B04, B08)", "red is B04 in sentinel2_l1c/sentinel2_l2a"),
    )  # fmt: skip
    bare = _tif(tmp_path / "bare.tif", None, bands=3, dtype="uint16")  # uint8: GDAL's RGB names its bands
    one_line_exit_2(
        capsys, tmp_path, "embed", bare, "-b", SPEC, "--out", out, *RUN, "--bands", "red,green,blue",
        expect=("has no band 'red' (its bands: b1, b2, b3)", "--sensor NAME (a sensor of 3 bands)"),
    )  # fmt: skip


def test_two_names_of_one_band_are_refused(tmp_path, capsys):
    src = _tif(tmp_path / "in.tif", None, bands=6, dtype="uint16")
    one_line_exit_2(
        capsys, tmp_path, "embed", src, "-b", SPEC, "--out", tmp_path / "o.tif", *RUN, "--bands", "red,SR_B4,blue",
        "--sensor", "landsat8", expect=("red and SR_B4 are both band 3 (SR_B4)", "name each band once"),
    )  # fmt: skip


def test_scenes_must_number_the_names_alike(tmp_path, capsys):
    """One --bands serves every scene: two scenes storing B04 at different places are refused, naming both; scenes
    alike embed, each with the numbers found."""
    scenes = tmp_path / "scenes"
    scenes.mkdir()
    _tif(scenes / "a.tif", S2)
    _tif(scenes / "b.tif", S2, seed=1)
    out = tmp_path / "feats"
    assert cli.main(["embed", str(scenes), "-b", SPEC, "--out", str(out), *RUN, "--bands", "B04,B03,B02"]) == 0
    assert "(and of the 1 other scene)" in capsys.readouterr().err
    for name in ("a", "b"):
        assert json.loads(read_all(out / f"{name}.tif")[4]["GEODINO_INPUT_BANDS"]) == [3, 2, 1]
    _tif(scenes / "c.tif", ["B04", "B03", "B02", "B08"], seed=2)
    one_line_exit_2(
        capsys, tmp_path, "embed", scenes, "-b", SPEC, "--out", tmp_path / "f2", *RUN, "--bands", "B04,B03,B02",
        expect=("names bands 3,2,1 of", "but 1,2,3 of", "c.tif"),
    )  # fmt: skip


def test_names_for_stac_input_and_images_point_to_what_takes_them(tmp_path, capsys):
    items = tmp_path / "items.json"
    items.write_text(json.dumps({"type": "FeatureCollection", "features": []}))
    one_line_exit_2(
        capsys, tmp_path, "embed", items, "-b", SPEC, "--out", tmp_path / "f", "--asset", "visual", "--bands", "red",
        expect=("--asset-bands red",),
    )  # fmt: skip
    folder = tmp_path / "chips"
    folder.mkdir()
    one_line_exit_2(
        capsys, tmp_path, "embed", "images", folder, "-b", SPEC, "--out", tmp_path / "f.parquet", "--bands", "red",
        expect=("selects the images' bands by 1-based number",),
    )  # fmt: skip


def test_names_resolve_by_a_cube_band_coordinate(tmp_path, capsys):
    """A Zarr cube's bands are named by its band coordinate (B1 B2 B3 here); --variable and --time still apply."""
    from tests.embed.test_cube_time import _cube

    store, _ = _cube(tmp_path / "ts.zarr")
    base = [store, "-b", SPEC, "--out", str(tmp_path / "f.tif"), "--tile", "32", "--overlap", "0", "--no-progress"]
    code = cli.main(["embed", *base, "--bands", "b3,B1,B2", "--time", "0", "--variable", "reflectance"])
    assert code == 0, capsys.readouterr().err
    assert json.loads(read_all(tmp_path / "f.tif")[4]["GEODINO_INPUT_BANDS"]) == [3, 1, 2]
    one_line_exit_2(
        capsys, tmp_path, "embed", *base[:4], tmp_path / "g.tif", *base[5:], "--bands", "B4", "--time", "0",
        expect=("has no band 'B4' (its bands: B1, B2, B3)",),
    )  # fmt: skip


def test_names_resolve_by_an_rgb_files_colour_interpretation(tmp_path, capsys):
    """No descriptions, but the colour interpretation names the bands (a BGR file here): red,green,blue read
    bands 3,2,1, as a data source reads them (geodino.data.colour_bands); b1..bN still name them by position."""
    import rasterio
    from rasterio.enums import ColorInterp

    src = _tif(tmp_path / "bgr.tif", None, bands=3)
    with rasterio.open(src, "r+") as dst:
        dst.colorinterp = [ColorInterp.blue, ColorInterp.green, ColorInterp.red]
    (by_name, *_, tags, _), err = _embed(capsys, src, tmp_path / "a.tif", "--bands", "red,green,blue")
    assert json.loads(tags["GEODINO_INPUT_BANDS"]) == [3, 2, 1] and "reads bands 3,2,1" in err
    (by_position, *_), _ = _embed(capsys, src, tmp_path / "b.tif", "--bands", "b3,b2,b1")
    np.testing.assert_array_equal(by_name, by_position)
