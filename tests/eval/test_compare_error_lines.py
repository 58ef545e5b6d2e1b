"""A comparison whose backbone fails with an error of several lines quoted its first line only (torch's
"Error(s) in loading state_dict for X:" without the missing keys its next line names); the whole text is now
folded into the one line (`compare._one_line`, which the failing comparison backbone's line and comparison.json
entry use too)."""

from __future__ import annotations

from pathlib import Path

from geodino.errors import CheckpointError
from geodino.eval.compare import _main_failed


def test_a_backbone_s_multi_line_error_keeps_its_second_line():
    exc = CheckpointError('Error(s) in loading state_dict for VisionTransformer:\n\tMissing key(s): "cls_token".')
    error = _main_failed(exc, ["main", "other"], [Path("out"), Path("out/compare/1_other")])
    assert str(error) == (
        "main backbone main failed: Error(s) in loading state_dict for VisionTransformer: "
        'Missing key(s): "cls_token".; '
        "the 1 comparison backbone (other) did not run and no comparison.md was written"
    )
    assert error.exit_code == exc.exit_code
