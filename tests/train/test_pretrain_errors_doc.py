"""docs/pretraining.md "Errors" quotes the crop-range refusals (crops.n_local < 0, crops.mask_ratio and
crops.mask_probability outside [0, 1], since 117b12a) as `geodino pretrain` prints them: each quoted line is the
one error line of a run with that override (nothing written)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

DOC = Path(__file__).resolve().parents[2] / "docs" / "pretraining.md"


def errors_section() -> str:
    text = DOC.read_text()
    body = text.split("\n## Errors\n", 1)[1].split("\n## ", 1)[0]
    return " ".join(body.split())  # the quotes wrap across lines


@pytest.mark.parametrize(
    "override, start",
    [
        ("crops.n_local=-1", "crops.n_local=-1 must be"),
        ("crops.mask_ratio=[0.1,1.5]", "crops.mask_ratio=[0.1, 1.5] must be"),
        ("crops.mask_probability=1.5", "crops.mask_probability=1.5 must be"),
        ("crops.mask_ratio=[0.1,0.4]", "crops.mask_ratio=[0.1, 0.4] is not read"),
    ],
)
def test_the_quoted_crop_errors_are_what_pretrain_prints(tmp_path, capsys, override, start) -> None:
    from geodino.cli import main
    from tests.data.conftest import ramp, write_tif

    quotes = [q for q in re.findall(r"`([^`]+)`", errors_section()) if q.startswith(start)]
    assert len(quotes) == 1, f"docs/pretraining.md Errors quotes no message starting {start!r}"
    tif = write_tif(tmp_path / "a.tif", ramp(3, 64, 64, dtype="uint8", seed=0), nodata=None, origin=(5e5, 4.65e6))
    out = tmp_path / "run"
    source = f"data.sources=[{{type: raster, paths: [{tif}]}}]"
    assert main(["pretrain", override, f"output_dir={out}", source]) == 2
    err = capsys.readouterr().err
    lines = [ln.removeprefix("geodino: error: ") for ln in err.splitlines() if ln.startswith("geodino: error:")]
    assert len(lines) == 1 and "Traceback" not in err, err
    quote = quotes[0].removesuffix(" ...").removesuffix("...")
    assert lines[0].startswith(quote), (lines[0], quote)
    assert not out.exists()
