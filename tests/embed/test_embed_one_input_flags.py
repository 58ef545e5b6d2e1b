"""Flags one raster cannot use are one line (exit 2), not ignored: `--asset`/`--asset-bands` (STAC input; a folder of
scenes already refused them) and `--variable` (a datacube's; `--time` was refused on a raster already). Before,
`geodino embed in.tif --asset nir08 ...` embedded every band of in.tif and said nothing."""

from __future__ import annotations

import pytest

from tests import helpers
from tests.embed.conftest import random_image, stac_item
from tests.test_bad_inputs import one_line_exit_2

SPEC = "arch:vit_tiny?depth=1&patch_size=8&bands=3"
RUN = ["--tile", "32", "--overlap", "8", "--no-progress", "--threads", "1"]


@pytest.mark.parametrize(
    ("flags", "said"),
    [
        (["--asset", "visual"], "--asset visual applies to STAC input"),
        (["--asset-bands", "red,nir"], "--asset-bands red,nir applies to STAC input"),
        (["--asset", "a", "--asset-bands", "b"], "--asset a and --asset-bands b apply to STAC input"),
        (["asset=visual"], "--asset visual applies to STAC input"),  # the config key too
        (["--variable", "reflectance"], "--variable reflectance (variable=) chooses a variable of a datacube"),
    ],
)
def test_flags_one_raster_cannot_use_are_refused(tmp_path, capsys, flags, said):
    src = helpers.write_tif(tmp_path / "in.tif", random_image(32, 32))
    line = one_line_exit_2(
        capsys, tmp_path, "embed", src, "-b", SPEC, "--out", tmp_path / "o.tif", *RUN, *flags, expect=(said,)
    )
    assert str(src) in line and "drop" in line


def test_a_raster_without_those_flags_still_embeds(tmp_path, capsys):
    from geodino import cli

    src = helpers.write_tif(tmp_path / "in.tif", random_image(32, 32))
    assert cli.main(["embed", str(src), "-b", SPEC, "--out", str(tmp_path / "o.tif"), *RUN]) == 0
    import numpy as np
    import rasterio

    with rasterio.open(tmp_path / "o.tif") as ds:  # every band of in.tif, 32 px at 8 px patches: 4 x 4 cells
        assert ds.tags()["GEODINO_INPUT_BANDS"] == "[1, 2, 3]" and (ds.count, ds.height, ds.width) == (192, 4, 4)
        assert np.isfinite(ds.read()).all()


def _item(tmp_path):
    """A STAC item whose asset `image` is a 4-band raster named blue, green, red, nir (eo:bands)."""
    import json

    src = helpers.write_tif(tmp_path / "img.tif", random_image(32, 32, 4))
    bands = [{"name": n.upper(), "common_name": n} for n in ("blue", "green", "red", "nir")]
    image = {"href": str(src), "type": "image/tiff; application=geotiff", "eo:bands": bands}
    item = stac_item("one", {"image": image}, eo=False, date="2024-05-06")
    item["bbox"] = [0, 0, 1, 1]
    item["geometry"] = {"type": "Polygon", "coordinates": [[[0, 0], [1, 0], [1, 1], [0, 1], [0, 0]]]}
    (tmp_path / "item.json").write_text(json.dumps(item))
    return tmp_path / "item.json"


def test_bands_and_asset_bands_together_are_refused(tmp_path, capsys):
    """`--asset-bands red,green,blue --bands 1,2,3`: each scene read the asset bands and --bands went unused."""
    import json

    from geodino import cli

    item = _item(tmp_path)
    base = ["embed", str(item), "-b", SPEC, *RUN, "--asset", "image", "--asset-bands", "red,green,blue"]
    one_line_exit_2(
        capsys, tmp_path, *base, "--bands", "1,2,3", "--out", tmp_path / "f",
        expect=("--bands 1,2,3 and --asset-bands red,green,blue both choose the bands of STAC asset image",),
    )  # fmt: skip
    assert cli.main([*base, "--out", str(tmp_path / "g")]) == 0, capsys.readouterr().err
    assert json.loads((tmp_path / "g" / "one.stac.json").read_text())["properties"]["geodino:input_bands"] == [3, 2, 1]
