"""A band named twice (bands=["B04", "B04", "B03"], src_bands with a repeat, or two names of one band such as red and
R, B04 and red for Sentinel-2) was accepted: two inputs took one kernel (scaled as if new) and two kernels shared one
name (the last won). load_backbone, load_model and `geodino convert --bands/--src-bands` now refuse it in one line
naming the repeated band."""

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
        (
            {"bands": "red,R"},
            r"requested from checkpoint .*bb.safetensors \(red, R\) name one band twice \(red and R\)",
        ),
        ({"bands": ["B04", "red"], "sensor": "sentinel2_l2a"}, r"name one band twice \(B04 and red\); name each"),
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
    model = load_model(export, bands=["nir", "red"])
    src = load_model(export).patch_embed.proj.weight
    torch.testing.assert_close(model.patch_embed.proj.weight, src[:, [3, 2]])


def test_convert_refuses_it_in_one_line(export, tmp_path, capsys):
    out = tmp_path / "o.safetensors"
    for flags in (["--bands", "red", "red"], ["--src-bands", "R", "G", "R", "N"]):
        assert geodino.cli.main(["convert", str(export), str(out), *flags]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and "list each band once" in err[0] and "is listed twice" in err[0], err
    assert not out.exists()
