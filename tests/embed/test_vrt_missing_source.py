"""A VRT whose band file is gone (moved, deleted, or named from the wrong place): embed said the VRT "is truncated
or corrupt; re-download or re-create it", when a file it names is missing; the line now says which."""

from __future__ import annotations

import numpy as np
import pytest

from geodino.data.vrt import stack_scenes
from geodino.embed import embed_raster
from geodino.errors import InputError
from tests.embed.conftest import write_tif


def test_a_missing_band_file_of_a_vrt_is_named(tmp_path, conv_bb) -> None:
    scene = tmp_path / "root" / "s1"
    scene.mkdir(parents=True)
    for k, band in enumerate(("B02", "B03", "B04")):
        write_tif(scene / f"{band}.tif", np.full((1, 32, 32), k + 1, np.float32))
    (vrt,) = stack_scenes(tmp_path / "root", ["B02", "B03", "B04"], tmp_path / "vrts")
    (scene / "B03.tif").unlink()
    with pytest.raises(InputError, match=r"a file it names is missing \(.*B03\.tif: No such file or directory\)"):
        embed_raster(vrt, conv_bb, tmp_path / "f.tif", progress=False)
    assert not (tmp_path / "f.tif").exists()
