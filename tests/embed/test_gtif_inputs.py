"""`.gtif`/`.gtiff` GeoTIFFs (684c00d made them rasters in geodino.data) are also georeferenced TIFFs to `embed
images` (their footprint is read, not taken for a plain photo's) and are named in embed_raster's folder refusal."""

from __future__ import annotations

from pathlib import Path

import pytest

from geodino.embed.images import footprint_4326
from geodino.embed.sources import open_source
from geodino.errors import InputError
from tests.data.conftest import ramp, write_tif


@pytest.mark.parametrize("suffix", [".gtif", ".GTiff"])
def test_a_gtif_image_has_the_footprint_of_the_same_tif(tmp_path: Path, suffix: str) -> None:
    data = ramp(3, 16, 16)
    tif = footprint_4326(write_tif(tmp_path / "a.tif", data))
    gtif = footprint_4326(write_tif(tmp_path / f"a{suffix}", data))
    assert tif is not None and gtif is not None
    assert gtif.equals(tif)


def test_a_folder_of_gtif_files_is_named_as_a_folder_of_rasters(tmp_path: Path) -> None:
    folder = tmp_path / "scenes"
    folder.mkdir()
    write_tif(folder / "a.gtif", ramp(3, 16, 16))
    with pytest.raises(InputError, match=r"is a folder of 1 raster \(a\.gtif\); embed_raster takes one raster"):
        open_source(str(folder))
