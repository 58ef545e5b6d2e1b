"""A probe's input-scaling line names a `.pth` export's sidecar record in one pair of brackets, as `geodino embed`
and `viz attention` say it (was "(the backbone's DN scale: sensor rgb, recorded in t.heads.pth (sidecar of
t.pth))", brackets nested)."""

from __future__ import annotations

import numpy as np
import pytest

from geodino.eval.scaling import InputScaling

RGB8 = {"sensor": "rgb", "bands": ["red", "green", "blue"], "scale": 1 / 255, "offset": 0.0}
RGB8 |= {"mean": [0.2, 0.2, 0.2], "std": [0.2, 0.2, 0.2]}


class SidecarBackbone:
    """The two attributes `recorded_scale` reads of a `.pth` export whose record sits in its `.heads.pth`."""

    spec = "run/export/teacher.pth"
    normalization = RGB8
    norm_source = "recorded in teacher.heads.pth (sidecar of teacher.pth): rgb (red, green, blue), pretraining data"


def test_the_probe_scaling_line_names_a_sidecar_record_without_nested_brackets():
    scale, offset, text = InputScaling(SidecarBackbone()).rule(np.full((3, 2, 2), 9, np.uint8))
    assert scale == pytest.approx(1 / 255) and offset == 0.0
    assert text == "x*0.00392157 (the backbone's DN scale: sensor rgb, in teacher.heads.pth beside teacher.pth)"


def test_a_record_that_does_not_fit_names_the_sidecar_in_one_pair_of_brackets_too():
    s2 = SidecarBackbone()
    s2.normalization = {**RGB8, "sensor": "sentinel2_l2a", "scale": 1e-4}  # 16-bit DN: uint8 files do not fit it
    s2.norm_source = s2.norm_source.replace(": rgb ", ": sentinel2_l2a ")
    scale, _, text = InputScaling(s2).rule(np.full((3, 2, 2), 9, np.uint8))
    assert scale == pytest.approx(1 / 255)
    expected = "the backbone's DN scale x*0.0001 (sensor sentinel2_l2a, in teacher.heads.pth beside teacher.pth) does"
    assert expected in text
    assert "sidecar of" not in text and "((" not in text and "))" not in text
