"""`trainer.profile_steps` that a resumed run has already passed is a real warning (`UserWarning`): it was printed
on stderr ("geodino: warning: ..."), so a Python caller could neither catch nor filter it. It is attributed to
`geodino/train/profiling.py`, not to Lightning's hook caller: Lightning's `warnings.formatwarning` shows a warning
from its own files as "path:line: message", which would have replaced the CLI's one line "geodino: warning: ..."."""

from __future__ import annotations

import warnings
from pathlib import Path
from types import SimpleNamespace

import pytest

from geodino.train.profiling import StepProfiler


def test_a_range_before_the_resumed_step_is_a_user_warning_from_profiling(tmp_path, capsys):
    prof = StepProfiler(2, 4, tmp_path / "profile")
    with pytest.warns(UserWarning) as caught:
        prof.on_train_start(SimpleNamespace(global_step=10, is_global_zero=True), None)
    assert [str(w.message) for w in caught] == [
        "trainer.profile_steps=2-4 lies before step 10, where this run resumes; nothing is profiled (pick later steps)"
    ]
    assert Path(caught[0].filename).name == "profiling.py"
    assert prof.done and capsys.readouterr().err == ""
    with warnings.catch_warnings():  # no warning for a run resumed inside the range, nor on another rank
        warnings.simplefilter("error")
        StepProfiler(2, 4, tmp_path / "p2").on_train_start(SimpleNamespace(global_step=3, is_global_zero=True), None)
        StepProfiler(2, 4, tmp_path / "p3").on_train_start(SimpleNamespace(global_step=10, is_global_zero=False), None)
