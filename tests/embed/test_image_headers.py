"""`geodino embed images` at native size checks the images' sizes on their headers: a phone photo stored sideways
(EXIF orientation 6 or 8) is read upright (`read_array`), so its size is the upright one. The check compared the
stored size and refused a folder whose images all read at one size."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest


def photo(path: Path, h: int, w: int, orientation: int = 0, fmt: str = "JPEG") -> Path:
    """An h x w photo as stored (`orientation`: its EXIF orientation tag, 0 none)."""
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    im = Image.fromarray((np.random.default_rng(h * w).random((h, w, 3)) * 255).astype(np.uint8))
    kw = {}
    if orientation:
        exif = im.getexif()
        exif[0x0112] = orientation
        kw["exif"] = exif.tobytes()
    im.save(path, format=fmt, quality=95, **kw)
    return path


@pytest.mark.parametrize("orientation", [6, 8])
def test_header_size_of_a_sideways_photo_is_its_size_as_read(tmp_path, orientation):
    from geodino.embed.images import header_size
    from geodino.eval.datasets import read_array

    p = photo(tmp_path / "portrait.jpg", 24, 40, orientation)  # stored 40 wide, 24 high
    arr = read_array(p)
    assert arr.shape[1:] == (40, 24)
    assert header_size(p) == (24, 40) == (arr.shape[2], arr.shape[1])


def test_a_sideways_photo_among_upright_ones_of_its_read_size_passes_the_size_check(tmp_path):
    """Portraits 24 wide and 40 high: two stored upright, one stored sideways (40 x 24, orientation 6). All read
    24 x 40, so the folder has one size; the sideways one was refused as 40x24 px."""
    from geodino.embed.images import check_sizes, list_images

    root = tmp_path / "photos"
    photo(root / "a.jpg", 40, 24)
    photo(root / "b.jpg", 40, 24)
    photo(root / "c.jpg", 24, 40, orientation=6)
    check_sizes(root, list_images(root))


def test_a_sideways_photo_of_another_size_is_named_with_its_size_as_read(tmp_path):
    """The odd image is named by the size it is read at (the upright one)."""
    from geodino.embed.images import check_sizes, list_images
    from geodino.errors import InputError

    root = tmp_path / "photos"
    photo(root / "a.jpg", 40, 24)
    photo(root / "b.jpg", 40, 24)
    photo(root / "c.jpg", 32, 48, orientation=8)  # stored 48 x 32, read 32 x 48
    with pytest.raises(InputError, match=r"c\.jpg is 32x48 px, the most common size is 24x40 px \(2 of 3 images"):
        check_sizes(root, list_images(root))


def test_embed_images_at_native_size_takes_a_folder_with_a_sideways_photo(tmp_path):
    """End to end: the folder embeds at native size, every row 24 x 40 as read."""
    import geopandas as gpd

    from geodino.backbones import load_backbone
    from geodino.embed import embed_images

    root = tmp_path / "photos"
    photo(root / "a.jpg", 40, 24)
    photo(root / "c.jpg", 24, 40, orientation=6)
    bb = load_backbone("arch:vit_tiny?depth=1&patch_size=8&seed=0")
    out = embed_images(root, bb, tmp_path / "o.parquet", progress=False)
    df = gpd.read_parquet(out).set_index("path")
    assert sorted(df.index) == ["a.jpg", "c.jpg"]
    assert df["width"].tolist() == [24, 24] and df["height"].tolist() == [40, 40]
