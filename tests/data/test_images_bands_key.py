"""`bands:` on an image source names the bands the files hold, in file order; a subset or another order cannot be
read, and the line says so (it said "web images give bands ...; `bands:` cannot select others", which read as if
the names were wrong)."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from geodino.data.config import SourceConfig
from geodino.data.source_build import build_source
from geodino.errors import InputError


def test_an_image_source_says_bands_cannot_select_or_reorder(tmp_path) -> None:
    Image.fromarray(np.zeros((8, 8, 3), dtype=np.uint8)).save(tmp_path / "a.png")
    ok = build_source(SourceConfig(type="images", paths=[str(tmp_path)], bands=["R", "G", "B"]), progress=False)
    assert list(ok.sensor.bands) == ["R", "G", "B"]
    for bands in (["R", "G"], ["B", "G", "R"]):
        with pytest.raises(InputError) as e:
            build_source(SourceConfig(type="images", paths=[str(tmp_path)], bands=bands), progress=False)
        msg = str(e.value)
        assert f"`bands: {bands}` cannot select or reorder them; drop `bands:`" in msg
        assert "['R', 'G', 'B'] in file order" in msg and "\n" not in msg
