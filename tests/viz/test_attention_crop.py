"""viz attention on an image that is not a multiple of the patch size: the crop is said once, a point in the part
cut off is refused naming both sizes, and the similarity band stays within [-1, 1]."""

from __future__ import annotations

import numpy as np
import torch

from geodino import cli
from tests.embed.conftest import random_image, write_tif
from tests.test_bad_inputs import one_line_exit_2

SPEC = "arch:vit_tiny?depth=1&patch_size=8&bands=3&seed=0"


def test_a_point_in_the_cropped_off_part_names_the_crop(tmp_path, capsys):
    tif = write_tif(tmp_path / "odd.tif", random_image(40, 37))  # 37 x 40 px (width x height)
    base = ["viz", "attention", tif, "-b", SPEC, "-o", tmp_path / "att"]
    one_line_exit_2(
        capsys,
        tmp_path,
        *base, "--point", "36,39",
        expect=("point (col 36, row 39) is in the part cut off", "the 37 x 40 px image is read as 32 x 40 px",
                "whole 8 px patches", "col < 32 and row < 40"),
    )  # fmt: skip
    one_line_exit_2(
        capsys, tmp_path, *base, "--point", "37,0", expect=("is outside the 37 x 40 px image (width x height)",)
    )
    capsys.readouterr()
    assert cli.main([str(a) for a in base] + ["--point", "3,39"]) == 0
    crop = [ln for ln in capsys.readouterr().err.splitlines() if "is read as" in ln]
    assert crop == [
        "geodino: the 37 x 40 px image is read as 32 x 40 px (width x height; whole 8 px patches from the top-left), "
        "leaving out its last 5 columns"
    ]
    capsys.readouterr()
    whole = write_tif(tmp_path / "whole.tif", random_image(40, 32))
    assert cli.main(["viz", "attention", str(whole), "-b", SPEC, "-o", str(tmp_path / "att2")]) == 0
    assert "is read as" not in capsys.readouterr().err  # nothing cut, nothing said


def test_similarity_is_clamped_to_minus_one_one(monkeypatch):
    """Unit vectors' float32 dot products reached 1.0000002 at the query cell itself; rounding past 1 is clamped."""
    from geodino.backbones import load_backbone
    from geodino.viz.attention import attention_maps

    bb = load_backbone(SPEC)
    real = torch.nn.functional.normalize

    def past_one(x, dim=0, **kw):  # what float32 rounding does at worst, exaggerated so it shows
        return real(x, dim=dim, **kw) * 1.001

    monkeypatch.setattr(torch.nn.functional, "normalize", past_one)
    maps = attention_maps(bb, random_image(32, 32).astype(np.float32) / 255, point=(12, 12))
    assert maps.similarity.max() == 1.0 and maps.similarity[1, 1] == 1.0 and maps.similarity.min() >= -1.0
