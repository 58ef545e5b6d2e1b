"""`embed images` on a photo folder holding one greyscale JPEG/PNG: it refused the whole folder, advising the backbone
be adapted to 1 band (`?bands=1`), which would break every RGB photo. A greyscale web photo now reads as three equal
bands for a 3-band backbone, as pretraining reads it; a folder whose band counts still differ (a 4-band TIFF among
RGB photos) is one line naming the file and the folder's count, suggesting no band adaptation."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from tests import helpers

SPEC = "arch:vit_tiny?depth=1&patch_size=8&seed=0"


@pytest.fixture(scope="module")
def bb():
    from geodino.backbones import load_backbone

    return load_backbone(SPEC)


def photos(root, n: int = 3):
    root.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for i in range(n):
        Image.fromarray(rng.integers(0, 255, (16, 16, 3), dtype=np.uint8)).save(root / f"rgb{i}.png")
    return root


@pytest.mark.parametrize("name", ["grey.png", "grey.jpg"])
def test_a_grey_photo_is_embedded_as_rgb(tmp_path, bb, name):
    import geopandas as gpd

    from geodino.embed.images import embed_images

    root = photos(tmp_path / "photos")
    grey = np.random.default_rng(1).integers(0, 255, (16, 16), dtype=np.uint8)
    Image.fromarray(grey, "L").save(root / name, **({"quality": 100} if name.endswith("jpg") else {}))
    Image.fromarray(np.dstack([grey] * 3)).save(root / "same.png")  # the PNG's pixels as RGB
    out = embed_images(root, bb, tmp_path / "o.parquet", progress=False)
    df = gpd.read_parquet(out).set_index("path")
    assert len(df) == 5 and df.loc[name, "bands"] == 3
    if name.endswith("png"):  # lossless: the grey PNG's vector is that of its RGB copy
        np.testing.assert_allclose(np.asarray(df.loc[name, "embedding"]), np.asarray(df.loc["same.png", "embedding"]))


def test_a_four_band_tiff_among_photos_is_one_line_without_band_advice(tmp_path, bb, capsys):
    from geodino.cli import main

    root = photos(tmp_path / "mixed")
    helpers.write_tif(root / "odd.tif", np.zeros((4, 16, 16), np.uint8), crs=None, transform=None)
    code = main(["embed", "images", str(root), "-b", SPEC, "--out", str(tmp_path / "o.parquet"), "--no-progress"])
    err = [line for line in capsys.readouterr().err.splitlines() if line.startswith("geodino: error:")]
    assert code == 2 and len(err) == 1
    assert "odd.tif has 4 bands but 3 of the 4 images of folder" in err[0] and "have 3" in err[0]
    assert "bands=" not in err[0] and "--bands" not in err[0]
    assert not (tmp_path / "o.parquet").exists()
