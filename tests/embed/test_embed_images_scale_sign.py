"""`geodino embed images --scale`: a negative factor is refused in one line (it was read as "unset" and the
default rule silently applied); 0 keeps its documented meaning in Python (the backbone's recorded scale, else by
dtype) and NaN stays refused."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from geodino.errors import ConfigError

SPEC = "arch:vit_tiny?depth=1&patch_size=8&seed=0"


def chips(tmp_path: Path) -> Path:
    from PIL import Image

    root = tmp_path / "chips"
    root.mkdir()
    arr = (np.random.default_rng(0).random((16, 16, 3)) * 255).astype(np.uint8)
    Image.fromarray(arr).save(root / "a.png")
    return root


@pytest.mark.parametrize("value", ["-1", "-1e-4", "nan"])
def test_cli_negative_or_nan_scale_is_one_line_exit_2_and_nothing_written(tmp_path, capsys, value) -> None:
    from geodino.cli import main

    out = tmp_path / "o.parquet"
    argv = ["embed", "images", str(chips(tmp_path)), "-b", SPEC, "--out", str(out), "--no-progress"]
    assert main([*argv, f"--scale={value}"]) == 2  # argparse reads "-1e-4" after a space as a flag
    err = capsys.readouterr().err
    lines = [ln for ln in err.splitlines() if ln.startswith("geodino: error:")]
    assert len(lines) == 1 and "Traceback" not in err, err
    assert "--scale" in lines[0] and "scale= in Python" in lines[0], lines[0]
    assert not out.exists()


def test_python_negative_scale_refused_and_zero_is_the_default_rule(tmp_path, capsys) -> None:
    from geodino.embed import embed_images

    root = chips(tmp_path)
    with pytest.raises(ConfigError, match=r"--scale -0\.5 \(scale= in Python\) must be a positive"):
        embed_images(root, SPEC, tmp_path / "neg.parquet", scale=-0.5, progress=False)
    assert not (tmp_path / "neg.parquet").exists()
    from geodino.embed.pipeline import run_lines

    with run_lines():
        embed_images(root, SPEC, tmp_path / "zero.parquet", scale=0, progress=False)
    assert "input scaling x/255 (by dtype: uint8" in capsys.readouterr().err
