"""How `which` names a student of a distill checkpoint (`geodino.models.checkpoints.distill.parse_student_which`):
a key path (`students.NAME`, `students_ema.NAME`) is read as one only when NAME is a student, so a student named
`students` keeps its own `students.raw` (it was taken for the key path of a student `raw`, and refused)."""

from __future__ import annotations

from pathlib import Path

import pytest

from geodino.errors import CheckpointError
from geodino.models.checkpoints.distill import parse_student_which

P = Path("run/checkpoints/step_00000010.ckpt")


@pytest.mark.parametrize(
    "which, names, want",
    [
        (None, ["a"], ("a", True)),
        ("a", ["a", "b"], ("a", True)),
        ("a.ema", ["a", "b"], ("a", True)),
        ("b.raw", ["a", "b"], ("b", False)),
        ("b.student", ["a", "b"], ("b", False)),
        ("students_ema.b", ["a", "b"], ("b", True)),
        ("students.b.backbone", ["a", "b"], ("b", False)),
        ("students.raw", ["students", "a"], ("students", False)),
        ("students", ["students"], ("students", True)),
    ],
)
def test_which_names_a_student_and_its_ema_or_raw_weights(which, names, want) -> None:
    assert parse_student_which(which, names, P) == want


@pytest.mark.parametrize("which", [None, "teacher", "c", "a.rawx", "students_ema.c"])
def test_which_naming_no_student_is_one_line_listing_them(which) -> None:
    with pytest.raises(CheckpointError) as exc:
        parse_student_which(which, ["a", "b"], P)
    msg = str(exc.value)
    assert "\n" not in msg and "a, b" in msg and "which=a.raw" in msg, msg


def test_the_refusal_spells_the_student_for_each_place_which_is_given() -> None:
    """A `geodino convert --which nope` user is answered with `--which a` too, not only the spec's `which=a`."""
    with pytest.raises(CheckpointError) as exc:
        parse_student_which("nope", ["a", "b"], P)
    msg = str(exc.value)
    assert "--which a in geodino convert" in msg and "FILE?which=" in msg and "which='a' in Python" in msg, msg
