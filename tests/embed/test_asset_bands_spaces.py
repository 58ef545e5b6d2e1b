"""`asset_bands` written with spaces ("red nir") was one band 'red nir' (or, as Python text, read letter by letter:
band 'r'), and STAC then said the item has no such band. It is refused in one line naming the comma spelling, as
data band names are (`band_args.space_rule`); the comma text and the list forms still read red and nir."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from geodino.embed.stac import asset_band_list, read_stac
from geodino.errors import ConfigError
from tests import helpers
from tests.embed.conftest import random_image, stac_item
from tests.test_bad_inputs import one_line_exit_2

pytest.importorskip("pystac")

SPEC = "arch:vit_tiny?depth=1&patch_size=8&bands=2"
RUN = ["--tile", "32", "--overlap", "8", "--no-progress", "--threads", "1"]


def _item(tmp_path: Path) -> Path:
    """One local STAC item whose asset `image` is a 4-band raster named B2, B3, B4, B8 (blue, green, red, nir)."""
    src = helpers.write_tif(tmp_path / "img.tif", random_image(32, 32, 4))
    bands = [{"name": n, "common_name": c} for n, c in (("B2", "blue"), ("B3", "green"), ("B4", "red"), ("B8", "nir"))]
    image = {"href": str(src), "type": "image/tiff; application=geotiff", "eo:bands": bands}
    item = stac_item("one", {"image": image}, eo=False, date="2024-05-06")
    (tmp_path / "item.json").write_text(json.dumps(item))
    return tmp_path / "item.json"


def test_python_text_apart_by_spaces_is_refused_and_comma_text_works(tmp_path):
    item = str(_item(tmp_path))
    with pytest.raises(ConfigError, match=r"asset_bands='red nir' cannot be used: band names are apart by commas"):
        read_stac(item, "image", "red nir")
    for given in ("red,nir", ["red", "nir"], ("B4", "B8"), "4 3", "3,4"):
        (scene,) = read_stac(item, "image", given)
        assert scene.bands == ([4, 3] if given == "4 3" else [3, 4]), given


def test_a_list_item_with_a_space_stays_one_name():
    assert asset_band_list(["red edge 1", "nir"]) == ["red edge 1", "nir"]
    assert asset_band_list("red edge 1,nir") == ["red edge 1", "nir"]
    assert asset_band_list(None) is None and asset_band_list("") is None


def test_flag_apart_by_spaces_is_one_line_exit_2(tmp_path, capsys):
    from geodino import cli

    item = _item(tmp_path)
    base = ["embed", str(item), "-b", SPEC, *RUN, "--asset", "image"]
    capsys.readouterr()
    try:
        code = cli.main([*base, "--asset-bands", "red nir", "--out", str(tmp_path / "f")])
    except SystemExit as exc:  # argparse's type error
        code = exc.code
    err = capsys.readouterr().err
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert code == 2 and len(lines) == 1, err
    assert "--asset-bands 'red nir' cannot be used: band names are apart by commas (--asset-bands red,nir)" in err
    assert not (tmp_path / "f").exists()


def test_override_apart_by_spaces_is_one_line_exit_2(tmp_path, capsys):
    item = _item(tmp_path)
    one_line_exit_2(
        capsys, tmp_path, "embed", item, "-b", SPEC, *RUN, "--asset", "image", "asset_bands=red nir",
        "--out", tmp_path / "f", expect=("asset_bands='red nir' cannot be used", "asset_bands=red,nir"),
    )  # fmt: skip


@pytest.mark.parametrize("given", [["--asset-bands", "red,nir"], ["asset_bands=red,nir"], ["asset_bands=[red, nir]"]])
def test_comma_and_list_spellings_embed_red_and_nir(tmp_path, capsys, given):
    from geodino import cli

    item = _item(tmp_path)
    out = tmp_path / "f"
    argv = ["embed", str(item), "-b", SPEC, *RUN, "--asset", "image", *given, "--out", str(out)]
    assert cli.main(argv) == 0, capsys.readouterr().err
    assert json.loads((out / "one.stac.json").read_text())["properties"]["geodino:input_bands"] == [3, 4]
