"""Several single-band STAC assets go apart by commas (`--asset red,nir`). Quoted apart by spaces, `;`, `|` or `+`
(`--asset "red nir"`), the run said the item has no asset 'red nir' (did you mean red?); unquoted
(`--asset red nir`), nir became a second input and the run said --asset applies to STAC input only, though
item.json is STAC. Both now name the comma spelling in one line (exit 2)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests import helpers
from tests.embed.conftest import random_image, stac_item
from tests.test_bad_inputs import one_line_exit_2

pytest.importorskip("pystac")

SPEC = "arch:vit_tiny?depth=1&patch_size=8&bands=2"
RUN = ["--tile", "32", "--overlap", "8", "--no-progress", "--threads", "1"]


def _item(tmp_path: Path) -> Path:
    """A STAC item with one band per asset: B04 (common name red) and B08 (nir), of other pixels."""
    assets = {}
    for seed, (key, common) in enumerate((("B04", "red"), ("B08", "nir"))):
        src = helpers.write_tif(tmp_path / f"{key}.tif", random_image(32, 32, 1, seed=seed, dtype="uint16"))
        bands = [{"name": key, "common_name": common}]
        assets[key] = {"href": str(src), "type": "image/tiff; application=geotiff", "eo:bands": bands}
    (tmp_path / "item.json").write_text(json.dumps(stac_item("it1", assets)))
    return tmp_path / "item.json"


@pytest.mark.parametrize(
    ("given", "commas"),
    [("red nir", "red,nir"), ("red;nir", "red,nir"), ("B04 | B08", "B04,B08"), ("red+B08", "red,B08")],
)
def test_one_value_apart_by_spaces_or_marks_names_the_commas(tmp_path, capsys, given, commas):
    item = _item(tmp_path)
    one_line_exit_2(
        capsys, tmp_path, "embed", item, "-b", SPEC, *RUN, "--asset", given, "--out", tmp_path / "f",
        expect=(f"--asset {given!r} (asset= in Python): give several single-band assets apart by commas",
                f"(--asset {commas})",
                "one name is one asset key"),
    )  # fmt: skip


def test_a_name_that_is_no_asset_still_lists_the_keys(tmp_path, capsys):
    item = _item(tmp_path)
    line = one_line_exit_2(
        capsys, tmp_path, "embed", item, "-b", SPEC, *RUN, "--asset", "red foo", "--out", tmp_path / "f",
        expect=("has no asset 'red foo'", "it has B04, B08"),
    )  # fmt: skip
    assert "apart by commas" not in line


@pytest.mark.parametrize("asset_first", [False, True])
def test_unquoted_names_taken_as_inputs_name_the_commas(tmp_path, capsys, asset_first):
    item = _item(tmp_path)
    inputs = ["--asset", "red", "nir", item] if asset_first else [item, "--asset", "red", "nir"]
    line = one_line_exit_2(
        capsys, tmp_path, "embed", *inputs, "-b", SPEC, *RUN, "--out", tmp_path / "f",
        expect=("nir is not STAC input beside", "nir is an asset of", "(--asset red,nir)"),
    )  # fmt: skip
    assert "item.json" in line


def test_a_raster_beside_stac_input_is_named(tmp_path, capsys):
    item = _item(tmp_path)
    tif = tmp_path / "B04.tif"
    line = one_line_exit_2(
        capsys, tmp_path, "embed", item, tif, "-b", SPEC, *RUN, "--asset", "red", "--out", tmp_path / "f",
        expect=(f"{tif} is not STAC input beside {item}", "separate runs"),
    )  # fmt: skip
    assert "apart by commas" not in line


# uint16 assets without a sensor are this test's input; the embed says which scaling it assumes
@pytest.mark.filterwarnings("ignore:input .* is uint16. assuming reflectance:UserWarning")
def test_comma_spelling_embeds_both_assets(tmp_path, capsys):
    from geodino import cli

    item = _item(tmp_path)
    out = tmp_path / "f"
    assert cli.main(["embed", str(item), "-b", SPEC, *RUN, "--asset", "red,nir", "--out", str(out)]) == 0
    import numpy as np
    import rasterio

    with rasterio.open(out / "it1.tif") as ds:  # the 2-band stack of red (B04) then nir (B08) was embedded
        tags = ds.tags()
    assert tags["GEODINO_INPUT"] == str(out / "stacked" / "it1.vrt") and tags["GEODINO_INPUT_BANDS"] == "[1, 2]"
    with rasterio.open(out / "stacked" / "it1.vrt") as vrt, rasterio.open(tmp_path / "B04.tif") as red:
        with rasterio.open(tmp_path / "B08.tif") as nir:
            np.testing.assert_array_equal(vrt.read(), np.concatenate([red.read(), nir.read()]))
