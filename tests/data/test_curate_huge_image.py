"""`data curate` embeds each image file whole, so an image above `MAX_IMAGE_PIXELS` is refused from its header before
it is decoded (`--on-error skip`: dropped as nodata, with a warning naming it). A 30000 x 30000 px PNG of 0.9 MB was
decoded (2.7 GB: torchvision's decoder has no decompression-bomb guard) and the run killed for memory."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from geodino import cli
from geodino.data.curate import tiles as curate_tiles
from tests.data.test_curate import SPEC
from tests.test_bad_inputs import one_line_exit_2


@pytest.fixture
def folder(tmp_path, monkeypatch):
    """Three 32 x 32 chips and one 48 x 40 image, above a limit lowered to 40 x 40 px; decoding the large one fails
    the test (the refusal comes from its header)."""
    monkeypatch.setattr(curate_tiles, "MAX_IMAGE_PIXELS", 40 * 40)
    chips = tmp_path / "chips"
    chips.mkdir()
    rng = np.random.default_rng(0)
    for i in range(3):
        Image.fromarray(rng.integers(0, 255, (32, 32, 3), dtype=np.uint8)).save(chips / f"{i}.png")
    Image.fromarray(rng.integers(0, 255, (40, 48, 3), dtype=np.uint8)).save(chips / "big.png")
    from geodino.data import images

    decode = images.decode_photo

    def guarded(data, name, *args, **kwargs):
        assert not str(name).endswith("big.png"), "the large image was decoded"
        return decode(data, name, *args, **kwargs)

    monkeypatch.setattr(images, "decode_photo", guarded)
    return chips


def test_a_huge_image_is_refused_before_it_is_decoded(folder, tmp_path, capsys):
    argv = ["data", "curate", folder, "-b", SPEC, "-o", tmp_path / "cur", "--size", "2", "--clusters", "2"]
    one_line_exit_2(
        capsys,
        tmp_path,
        *argv,
        "--dedup",
        "1.01",
        "--no-progress",
        expect=("big.png is 48 x 40 px, more than curate embeds as one tile", "--on-error skip"),
    )


def test_on_error_skip_drops_it_as_nodata(folder, tmp_path):
    out = tmp_path / "cur"
    argv = ["data", "curate", str(folder), "-b", SPEC, "-o", str(out), "--size", "2", "--clusters", "2"]
    with pytest.warns(UserWarning, match="big.png is 48 x 40 px.*dropped as nodata"):
        assert cli.main([*argv, "--dedup", "1.01", "--no-progress", "--on-error", "skip"]) == 0
    t = pd.read_parquet(out / "tiles.parquet")
    status = dict(zip(t["path"].map(lambda p: p.rsplit("/", 1)[-1]), t["status"]))
    assert status["big.png"] == "nodata"
    assert sorted(v for k, v in status.items() if k != "big.png") == ["kept", "kept", "not sampled"]
