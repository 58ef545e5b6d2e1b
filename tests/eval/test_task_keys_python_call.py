"""A suite task's error names its config keys as `tasks.<name>.<key>`, but not the keyword arguments of a Python
call its advice quotes: `load_backbone(spec, bands=6)` stays as it is.

Before: the band-count error of a dense probe in a suite read `load_backbone(spec, tasks.s.bands=6)`, a call that
does not exist, beside the right config key `tasks.s.bands=[...]`.
"""

from __future__ import annotations

from geodino.errors import InputError
from geodino.eval.dense import check_bands
from geodino.eval.runner_inputs import name_task_keys
from geodino.eval.segmentation import SegmentationProbeConfig


class _Backbone:
    in_chans, spec = 3, "arch:vit_tiny?seed=0"


def test_a_quoted_call_keeps_its_keyword_while_the_config_key_is_named():
    try:
        check_bands(6, _Backbone(), "image a.tif")
    except InputError as exc:
        line = name_task_keys(str(exc), "s", SegmentationProbeConfig)
    assert "tasks.s.bands=[...]" in line
    assert "load_backbone(spec, bands=6)" in line and "tasks.s.bands=6" not in line
    assert "'?bands=6'" in line


def test_keys_outside_a_call_are_still_named():
    line = name_task_keys("head='foo' must be one of linear (see f(x)); set head=linear", "s", SegmentationProbeConfig)
    assert line == "tasks.s.head='foo' must be one of linear (see f(x)); set tasks.s.head=linear"
