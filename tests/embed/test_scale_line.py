"""embed's `input DN -> reflectance` line: one bracket saying whose default the scaling is and how to change it."""

from __future__ import annotations

import pytest

from geodino.embed.scale_line import scale_line

CHANGE = "--sensor/--scale to change"
SIDECAR = "x*0.00392157 (sensor l7, recorded in l7.heads.pth (sidecar of l7.pth))"
CONFIG = "x*0.0002 (recorded in t.pth (training data config))"


@pytest.mark.parametrize(
    ("desc", "how", "recorded", "said"),
    [
        # the backbone's record: its origin without nested brackets, named as the record
        (SIDECAR, "default", SIDECAR,
         f"x*0.00392157 (the backbone's record: sensor l7, in l7.heads.pth beside l7.pth; {CHANGE})"),
        (CONFIG, "default", CONFIG, f"x*0.0002 (the backbone's record: in t.pth, training data config; {CHANGE})"),
        # the dtype rule's defaults, also when the backbone records a rule (float input does not take it)
        ("x/255 (uint8)", "default", None, f"x/255 (the default for uint8 input; {CHANGE})"),
        ("x/10000 (uint16, assumed)", "default", SIDECAR, f"x/10000 (the default for uint16 input, assumed; {CHANGE})"),
        ("x (float input used as reflectance)", "default", SIDECAR, f"x (float input used as reflectance; {CHANGE})"),
        # a rule the user or the input gave
        ("x*0.0001", "passed", SIDECAR, "x*0.0001 (passed)"),
        ("sensor:l8", "passed", None, "sensor:l8 (passed)"),
        # a rule with its own origin: one bracket for both (before: "x*0.0001-0.1 (the input's GDAL scale/offset)
        # (declared by the input)")
        ("x*0.0001-0.1 (the input's GDAL scale/offset)", "declared by the input", None,
         "x*0.0001-0.1 (declared by the input: its GDAL scale/offset)"),
        ("x*0.0001-0.1 (the input's CF scale_factor/add_offset)", "declared by the input", SIDECAR,
         "x*0.0001-0.1 (declared by the input: its CF scale_factor/add_offset)"),
        ("x*0.0001-0.1 (band_scale/band_offset)", "declared by its STAC item", None,
         "x*0.0001-0.1 (declared by its STAC item: band_scale/band_offset)"),
        ("x*[0.0001,0.0002] (band_scale/band_offset)", "passed", SIDECAR,
         "x*[0.0001,0.0002] (passed as band_scale/band_offset)"),
    ],
)  # fmt: skip
def test_the_scale_line_says_whose_default_in_one_bracket(desc, how, recorded, said):
    assert scale_line(desc, how, recorded) == said


def test_viz_says_the_record_with_its_own_way_to_change_it():
    from geodino.embed.scale_line import record_said

    said = scale_line(SIDECAR, "default", SIDECAR, change="--sensor to change")
    assert said == "x*0.00392157 (the backbone's record: sensor l7, in l7.heads.pth beside l7.pth; --sensor to change)"
    # a clause naming the record: one pair of brackets
    assert record_said(SIDECAR) == "x*0.00392157 (sensor l7, in l7.heads.pth beside l7.pth)"
    assert record_said("x*0.0001") == "x*0.0001"
