"""A suite task's error names its keys as `tasks.<name>.<key>` in its advice too: 'set train_per_class <= 6'
named the bare key after the error's own `tasks.cls.train_per_class=7` (runner_inputs.name_task_keys rewrote only
`key=...` and a key starting the line). Now a key of the task's config right after the word "set" is named in
full; other words after "set", keys of other configs and "test-set" are left alone."""

from __future__ import annotations

from geodino.eval.classification import ClassificationConfig
from geodino.eval.runner_inputs import name_task_keys
from geodino.eval.segmentation import SegmentationProbeConfig
from tests.eval.test_suite_task_keys import SPEC, suite  # noqa: F401 (the suite fixture)


def test_set_advice_names_the_task_key():
    cls, seg = ClassificationConfig, SegmentationProbeConfig
    msg = "train_per_class=8 is more than the 6 training images of class 'a'; set train_per_class <= 6 (smallest)"
    assert name_task_keys(msg, "c", cls) == (
        "tasks.c.train_per_class=8 is more than the 6 training images of class 'a'; "
        "set tasks.c.train_per_class <= 6 (smallest)"
    )
    assert name_task_keys("labels above; set num_classes to cover every label", "s", seg) == (
        "labels above; set tasks.s.num_classes to cover every label"
    )
    assert name_task_keys("sizes differ; set features.image_size (e.g. 224)", "c", cls) == (
        "sizes differ; set tasks.c.features.image_size (e.g. 224)"
    )
    assert name_task_keys("x; set num_classes=0 to take it", "s", seg) == "x; set tasks.s.num_classes=0 to take it"


def test_other_words_after_set_are_left_alone():
    seg = SegmentationProbeConfig
    for msg in (
        "test-set epochs differ; set the folder",  # 'epochs' after 'test-set': no advice
        "set logreg.standardize to true",  # a classification key, not a segmentation one
        "set epochsx to 3",  # no key: a longer word
        "reset epochs",  # not the word 'set'
    ):
        assert name_task_keys(msg, "s", seg) == msg


def test_geodino_probe_names_the_task_key_in_the_advice(suite, tmp_path, capsys):  # noqa: F811
    from geodino.cli import main

    argv = ["probe", "-c", str(suite), "-b", SPEC, "--out", str(tmp_path / "out"), "--no-progress"]
    assert main([*argv, "tasks.cls.train_per_class=7"]) == 2
    lines = [ln for ln in capsys.readouterr().err.splitlines() if ln.startswith("geodino: error:")]
    assert len(lines) == 1 and "; set tasks.cls.train_per_class <= 6 " in lines[0], lines
