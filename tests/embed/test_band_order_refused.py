"""`geodino embed` refuses input bands that are the backbone's recorded bands in another order (one line naming both
orders, the --bands to pass and the ?bands= that adapts the backbone instead): `--bands blue,green,red` with an
export recording red, green, blue fed blue to the kernels trained on red, silently. Positions and colour tags alone
name no band and are left alone."""

from __future__ import annotations

import numpy as np
import pytest
import rasterio
import torch

from geodino import cli
from geodino.embed import embed_raster
from geodino.errors import InputError
from geodino.models import build_model
from geodino.models.checkpoints import save_backbone
from tests import helpers
from tests.embed.conftest import random_image
from tests.test_bad_inputs import one_line_exit_2

RUN = ["--tile", "32", "--overlap", "8", "--no-progress", "--threads", "1"]
RECORD = {"bands": ["red", "green", "blue"], "mean": [0.4, 0.5, 0.6], "std": [0.2, 0.25, 0.3], "scale": 1 / 255}


@pytest.fixture(scope="module")
def export(tmp_path_factory):
    """A tiny export whose sidecar records its bands as red, green, blue."""
    torch.manual_seed(0)
    model = build_model("vit_tiny", depth=1, patch_size=8)
    with torch.no_grad():
        model.patch_embed.proj.weight.normal_()  # distinct kernels per band
    return save_backbone(model, tmp_path_factory.mktemp("bb") / "rgb.pth", normalization={**RECORD, "offset": 0.0})


def _rgb(path, descriptions=("red", "green", "blue")):
    return helpers.write_tif(path, random_image(32, 40, 3, seed=1), descriptions=list(descriptions) or None)


def test_named_bands_in_another_order_are_refused(tmp_path, export, capsys):
    src = _rgb(tmp_path / "in.tif")
    line = one_line_exit_2(capsys, tmp_path, "embed", src, "-b", export, "--out", tmp_path / "o.tif", "--bands",
                           "3,2,1", *RUN)  # fmt: skip
    assert line == (
        f"geodino: error: bands 3,2,1 of {src} are blue, green, red but backbone {export} takes red, green, blue: "
        "the same bands in another order (each would feed the kernels of another); pass --bands 1,2,3 (bands=[1, 2, "
        f"3] in Python) to read them in its order, or adapt the backbone to this one: --backbone "
        f"'{export}?bands=blue,green,red'"
    ), line
    out = tmp_path / "n.tif"
    assert cli.main(["embed", str(src), "-b", str(export), "--out", str(out), "--bands", "blue,green,red", *RUN]) == 2
    assert f"bands 3,2,1 of {src} are blue, green, red but" in capsys.readouterr().err and not out.exists()


def test_the_backbones_order_and_the_adapted_backbone_give_the_same_features(tmp_path, export):
    src = _rgb(tmp_path / "in.tif")
    a, b = tmp_path / "a.tif", tmp_path / "b.tif"
    assert cli.main(["embed", str(src), "-b", str(export), "--out", str(a), "--bands", "red,green,blue", *RUN]) == 0
    adapted = f"{export}?bands=blue,green,red"  # what the refusal offers: the kernels move to the order read
    assert cli.main(["embed", str(src), "-b", adapted, "--out", str(b), "--bands", "blue,green,red", *RUN]) == 0
    with rasterio.open(a) as fa, rasterio.open(b) as fb:
        np.testing.assert_allclose(fb.read(), fa.read(), atol=1e-4)


def test_a_file_stored_in_another_order_and_names_through_sensor_aliases(tmp_path):
    """No --bands: a file of B02, B03, B04 into a backbone of B04, B03, B02; and blue, green, red, the data sensor's
    aliases of the same file bands, in the same order."""
    data = random_image(32, 40, 3, dtype="uint16")
    src = helpers.write_tif(tmp_path / "s2.tif", data, descriptions=["B02", "B03", "B04"])
    spec = "arch:vit_tiny?depth=1&patch_size=8&sensor=sentinel2_l2a&bands=B04,B03,B02"
    run = {"progress": False, "tile": 32, "overlap": 8, "sensor": "sentinel2_l2a"}
    tail = r"but backbone .* takes B04, B03, B02: .* pass --bands 3,2,1 \(bands=\[3, 2, 1\] in Python\)"
    with pytest.raises(InputError, match=rf"^bands 1,2,3 of {src} are B02, B03, B04 {tail}"):
        embed_raster(src, spec, tmp_path / "o.tif", **run)
    with pytest.raises(InputError, match=rf"^bands 1,2,3 of {src} are B02, B03, B04 {tail}"):
        embed_raster(src, spec, tmp_path / "o.tif", bands=["blue", "green", "red"], **run)
    assert embed_raster(src, spec, tmp_path / "o.tif", bands=["red", "green", "blue"], **run).exists()


def test_positions_and_colour_tags_are_left_alone(tmp_path, export):
    """A file without descriptions: b1..b3 (uint16), or an 8-bit one GDAL tagged red, green, blue, which a BGR file
    is too: the numbers the user gives are read as given."""
    for dtype in ("uint8", "uint16"):
        src = helpers.write_tif(tmp_path / f"{dtype}.tif", random_image(32, 40, 3, dtype=dtype))
        out = tmp_path / f"o_{dtype}.tif"
        assert cli.main(["embed", str(src), "-b", str(export), "--out", str(out), "--bands", "3,2,1", "--scale",
                         "0.004", *RUN]) == 0  # fmt: skip
        assert out.exists()


def test_a_file_without_descriptions_is_named_by_a_sensor_of_its_band_count(tmp_path):
    """No band descriptions: a --sensor of the file's band count (naip: R, G, B, N) names its bands by position, from
    the file's whole header (not the bands read, which alone match no sensor): bands 3,2,1 are B, G, R, refused for
    a backbone of R, G, B."""
    src = helpers.write_tif(tmp_path / "naip.tif", random_image(32, 40, 4))
    spec = "arch:vit_tiny?depth=1&patch_size=8&sensor=naip&bands=R,G,B"
    run = {"progress": False, "tile": 32, "overlap": 8, "sensor": "naip"}
    with pytest.raises(InputError, match=rf"^bands 3,2,1 of {src} are B, G, R but backbone .* takes R, G, B: "):
        embed_raster(src, spec, tmp_path / "o.tif", bands=[3, 2, 1], **run)
    assert embed_raster(src, spec, tmp_path / "o.tif", bands=[1, 2, 3], **run).exists()
