"""A student's build options (`students[i].overrides`) that the teacher fixes, or that `build_model` refuses, are
refused in one line naming the key, before the run writes anything. `overrides.patch_size` and `.in_chans` were
dropped silently: a student asked for patch 16 of a patch-8 teacher trained at patch 8, its export said 8."""

from __future__ import annotations

import pytest

from geodino.config import load_config
from geodino.errors import ConfigError
from geodino.models import build_model
from geodino.train.distill import DistillConfig
from geodino.train.distill.students import check_students


@pytest.fixture(scope="module")
def teacher():
    """A patch-8, 3-band teacher's shapes (meta device: no weights)."""
    return build_model("vit_tiny", patch_size=8, depth=1, device="meta")


def _check(teacher, overrides: str) -> None:
    students = f"students=[{{name: s, arch: vit_tiny, overrides: {overrides}}}]"
    cfg = load_config(DistillConfig, None, [students, "data.sources=[{type: synthetic}]"])
    check_students(cfg, teacher, 64, 64)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ("{patch_size: 16}", r"students\[0\] \(s\)\.overrides\.patch_size=16 differs from the teacher's patch size 8"),
        ("{in_chans: 6}", r"students\[0\] \(s\)\.overrides\.in_chans=6 differs from the teacher's input band count 3"),
        ("{patch_size: '8'}", r"overrides\.patch_size='8' differs"),
        ("{depht: 1}", r"^students\[0\]\.overrides \(s\): 1 unknown backbone option for vit_tiny: depht \(did"),
        ("{embed_dim: 100}", r"^students\[0\]\.overrides \(s\): embed_dim 100 with num_heads 3"),
    ],
)
def test_a_build_option_the_student_cannot_have_is_refused_naming_its_key(teacher, overrides, message) -> None:
    with pytest.raises(ConfigError, match=message) as e:
        _check(teacher, overrides)
    assert "\n" not in str(e.value)
    if "differs" in message:  # says what to do
        assert "remove" in str(e.value) and "from students[0].overrides" in str(e.value)


def test_the_teachers_own_patch_size_and_bands_in_overrides_pass(teacher) -> None:
    _check(teacher, "{patch_size: 8, in_chans: 3, depth: 1}")
