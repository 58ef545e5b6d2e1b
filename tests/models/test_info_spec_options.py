"""`geodino info SPEC` refuses the spec options `load_backbone(SPEC)` refuses, in the same one line (exit 2): its
checkpoint and timm branches read the spec without the shared check, so `timm:NAME?depth=1` was described as the
full 12-block model and `FILE?seed=1` as the file, exit 0, while every other command refused those specs. A timm
spec's `?bands=` now sets the described input layer as the load does (bands=4 showed 3 bands)."""

from __future__ import annotations

import re

import pytest

from geodino import cli
from geodino.backbones import load_backbone
from geodino.errors import CheckpointError, ConfigError
from geodino.models.info import describe
from tests.helpers import four_band_backbone
from tests.test_bad_inputs import one_line_exit_2

TIMM = "timm:vit_tiny_patch16_224"


@pytest.fixture(scope="module")
def four_band_file(tmp_path_factory):
    return four_band_backbone(tmp_path_factory.mktemp("i") / "four.safetensors")


def _load_error(spec: str) -> str:
    with pytest.raises(ConfigError) as exc:
        load_backbone(spec)
    return str(exc.value)


@pytest.mark.parametrize(
    "option, expect",
    [
        ("depth=1", ("1 unknown option", ": depth; timm: specs accept")),
        ("pretrained=true&seed=1", ("?seed= draws random weights, but pretrained=true",)),
        ("fill=zeros", ("?fill= applies to checkpoint specs only",)),
        ("subset=rescale", ("?subset= applies to checkpoint specs only",)),
        ("seed=abc", ("seed='abc' must be an integer",)),
        ("pretrained=maybe", ("pretrained='maybe' must be true or false",)),  # was described, exit 0
    ],
)
def test_info_refuses_timm_options_as_the_load_does(capsys, tmp_path, option, expect):
    spec = f"{TIMM}?{option}"
    line = one_line_exit_2(capsys, tmp_path, "info", spec, expect=expect)
    if "pretrained" not in option:  # the load would fetch weights first; the check is the same function
        assert line == f"geodino: error: {_load_error(spec)}"


@pytest.mark.parametrize(
    "option, expect",
    [
        ("seed=1", ("?seed= applies to arch: and timm: specs only", "a checkpoint's weights come from its file")),
        ("depth=1", ("1 unknown option", ": depth; checkpoint specs accept bands, sensor, fill, subset, which")),
        ("depth=1&img_size=32", ("2 unknown options", ": depth, img_size;")),
        ("fill=foo", ("fill='foo' must be 'mean' or 'zeros'",)),
        ("subset=foo", ("subset='foo' must be 'copy' or 'rescale'",)),
        ("bands=2", ("has 4 input bands but bands=2 was requested; name the bands",)),
        # ?sensor= and ?bands= names were not checked: described, exit 0, while the load refused them
        ("sensor=nosuch", ("unknown sensor 'nosuch'",)),
        ("sensor=sat493m", ("sat493m",)),
        ("bands=SR_B2,SR_B3,SR_B4", ("mean different bands in different sensors", "SR_B2: blue in landsat8")),
    ],
)
def test_info_refuses_checkpoint_options_as_the_load_does(capsys, tmp_path, four_band_file, option, expect):
    spec = f"{four_band_file}?{option}"
    line = one_line_exit_2(capsys, tmp_path, "info", spec, expect=expect)
    if option == "bands=2":  # the load's line also lists the file's bands (read from its record)
        with pytest.raises(CheckpointError, match=re.escape(line.removeprefix("geodino: error: "))):
            load_backbone(spec)
        return
    assert line == f"geodino: error: {_load_error(spec)}"


@pytest.mark.parametrize("spec", ["arch:vit_tiny?depth=1&subset=rescale", "baseline:colour?seed=3"])
def test_info_refuses_arch_and_baseline_options_as_the_load_does(capsys, tmp_path, spec):
    line = one_line_exit_2(capsys, tmp_path, "info", spec)
    assert line == f"geodino: error: {_load_error(spec)}"


def test_options_that_act_are_still_described(capsys, four_band_file):
    """What the shared check lets through is described: a seeded arch/timm spec, a checkpoint's fill/subset/bands,
    and a timm spec's bands, whose input layer is the one load_backbone builds (4 bands, not timm's 3)."""
    seeded = describe(f"{TIMM}?seed=1&img_size=32")
    assert seeded["depth"] == 12 and seeded["bands"] == 3
    four = describe(f"{TIMM}?bands=4")
    assert four["bands"] == 4 == load_backbone(f"{TIMM}?bands=4").in_chans
    assert four["params"] == describe(TIMM)["params"] + 192 * 16 * 16  # one more input channel of the 16x16 patch
    assert describe("arch:vit_tiny?depth=1&seed=2")["depth"] == 1
    plain = describe(four_band_file)
    assert plain["bands"] == 4 and "loaded_bands" not in plain
    adapted = describe(f"{four_band_file}?bands=red,nir&subset=rescale&fill=zeros")
    assert adapted["bands"] == 4  # the rows describe the file ...
    assert adapted["loaded_bands"].startswith("2 (red, nir), the spec's ?bands=")  # ... and this the load
    assert load_backbone(f"{four_band_file}?bands=red,nir").in_chans == 2
    assert cli.main(["info", f"{four_band_file}?sensor=sentinel2_l2a&bands=4"]) == 0
    out = capsys.readouterr().out
    assert "loaded_bands" not in out
    assert "loaded_sensor   sentinel2_l2a, the spec's ?sensor=" in out  # the normalization row is the file's
    assert "loaded_sensor" not in describe(four_band_file)


def test_check_spec_refuses_an_unknown_sensor_on_a_checkpoint(four_band_file):
    """`check_spec` (probe --compare's precheck) looked for the file only: `FILE?sensor=nosuch` passed it."""
    from geodino.backbones.load import check_spec

    with pytest.raises(ConfigError, match="unknown sensor 'nosuch'"):
        check_spec(f"{four_band_file}?sensor=nosuch")
    check_spec(f"{four_band_file}?sensor=sentinel2_l2a")
