"""`geodino data curate` refuses out-of-range counts in one line (exit 2) before reading or writing anything: they
crashed with tracebacks (IndexError, ZeroDivisionError, torch's ValueError) or were accepted (--resamples -1)."""

from __future__ import annotations

import pytest

from geodino.data.curate import CurateConfig
from geodino.errors import ConfigError
from tests.data.test_curate import SPEC


@pytest.mark.parametrize(
    ("flags", "expect"),
    [
        (
            ["--resample-size", "0", "--resamples", "1"],
            "--resample-size 0 (resample_size= in Python) is out of range: give an integer >= 1",
        ),
        (["--chunk", "0"], "--chunk 0 (chunk= in Python) is out of range: give an integer >= 1"),
        (["--batch-size", "0"], "--batch-size 0 (batch_size= in Python) is out of range: give an integer >= 1"),
        (["--workers", "-1"], "--workers -1 (workers= in Python) is out of range: give an integer >= 0"),
        (["--resamples", "-1"], "--resamples -1 (resamples= in Python) is out of range: give an integer >= 0"),
        (["--tile-size", "0"], "--tile-size 0 (tile_size= in Python) is out of range: give an integer >= 1"),
    ],
)
def test_out_of_range_counts_one_line_and_nothing_written(curate_refuses, flags, expect):
    curate_refuses(flags, expect)


def test_validate_names_the_option_and_its_range():
    base = {"paths": ["x"], "backbone": SPEC, "size": 1}
    with pytest.raises(
        ConfigError, match=r"^--chunk 0 \(chunk= in Python\) is out of range: give an integer >= 1 \(tiles"
    ):
        CurateConfig(**base, chunk=0).validate()
    with pytest.raises(ConfigError, match=r"^--resample-size -3 \(resample_size= in Python\) is out of range: give an"):
        CurateConfig(**base, resample_size=-3).validate()
    CurateConfig(**base, resamples=0, workers=0, resample_size=1, chunk=1, batch_size=1).validate()  # the bounds
