"""A band named twice (bands=["B04", "B04", "B03"], src_bands with a repeat, or a file's bands with two names of one
band such as red and B04) was accepted: a name listed twice says nothing about which input is which, and two of the
file's kernels under one name left the last one winning. load_backbone, load_model and `geodino convert
--bands/--src-bands` now refuse it in one line naming the repeat. Two different names of one band among the
requested bands (B04 and SR_B4: a stack of two sensors' red bands) still each take that band's kernel."""

from __future__ import annotations

import pytest
import torch

import geodino.cli
from geodino.backbones import load_backbone
from geodino.data.band_args import parse_backbone_bands
from geodino.errors import ConfigError
from geodino.models.checkpoints import load_model
from tests.helpers import four_band_backbone

pytestmark = pytest.mark.usefixtures("only_model_commands")


@pytest.fixture(scope="module")
def export(tmp_path_factory):
    """A 4-band export recording blue, green, red, nir (tests.helpers.four_band_backbone)."""
    return four_band_backbone(tmp_path_factory.mktemp("rep") / "bb.safetensors")


def test_the_parser_names_the_repeat():
    with pytest.raises(ConfigError, match=r"^bands=\['B04', 'b04 ', 'B03'\] cannot be used: list each band once; "):
        parse_backbone_bands(["B04", "b04 ", "B03"])
    with pytest.raises(ConfigError, match=r"^src_bands='a,b,a' cannot be used: list each band once; 'a' is listed"):
        parse_backbone_bands("a,b,a", "src_bands")
    assert parse_backbone_bands(["B04", "B03", "B02"]) == (3, ["B04", "B03", "B02"])


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"bands": ["nir", "nir", "red"]}, r"^bands=\['nir', 'nir', 'red'\] cannot be used: list each band once"),
        ({"bands": ["nir"], "src_bands": ["a", "b", "A", "c"]}, r"^src_bands=\['a', 'b', 'A', 'c'\] cannot be used"),
    ],
)
def test_load_backbone_refuses_a_band_named_twice(export, kwargs, message):
    with pytest.raises(ConfigError, match=message):
        load_backbone(export, **kwargs)


def test_load_model_refuses_it_and_distinct_names_pass(export):
    with pytest.raises(ConfigError, match=r"name one band twice \(nir and NIR\)"):
        load_model(export, bands=["nir", "NIR"])
    with pytest.raises(ConfigError, match=r"the bands of checkpoint .* \(x, y, x, z\) name one band twice"):
        load_model(export, bands=["x"], src_bands=["x", "y", "x", "z"])
    src = load_model(export).patch_embed.proj.weight
    model = load_model(export, bands=["nir", "red"])
    torch.testing.assert_close(model.patch_embed.proj.weight, src[:, [3, 2]])
    with pytest.raises(ConfigError, match=r"bands of checkpoint .* \(B02, B03, red, B04\) name one band twice \(red"):
        load_model(export, bands=["nir"], src_bands=["B02", "B03", "red", "B04"])  # which kernel is red's?
    # two names of one band (Sentinel-2's B04 and red) each take its kernel, as before (no longer a subset: x 4/3)
    model = load_model(export, bands=["B04", "red", "nir"])
    torch.testing.assert_close(model.patch_embed.proj.weight, src[:, [2, 2, 3]] * 4 / 3)


def test_convert_refuses_it_in_one_line(export, tmp_path, capsys):
    out = tmp_path / "o.safetensors"
    for flags in (["--bands", "red", "red"], ["--src-bands", "R", "G", "R", "N"]):
        assert geodino.cli.main(["convert", str(export), str(out), *flags]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and "list each band once" in err[0] and "is listed twice" in err[0], err
    assert not out.exists()
