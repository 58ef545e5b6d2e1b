"""`embed_scenes` and `embed_images` called from Python name the keyword their caller passed (`asset=`,
`asset_bands=`, `out=`) beside the CLI flag, in one line, before a backbone loads or anything is written."""

from __future__ import annotations

import json

import pytest

from geodino.errors import ConfigError, InputError
from tests.embed.conftest import stac_item

pytest.importorskip("pystac")

SPEC = "arch:vit_small?depth=1&embed_dim=32&num_heads=2&seed=0"


@pytest.fixture()
def item(tmp_path):
    assets = {"visual": {"href": "visual.tif", "type": "image/tiff"}, "red": {"href": "red.tif"}}
    path = tmp_path / "item.json"
    path.write_text(json.dumps(stac_item("S1", assets)))
    return path


def test_stac_refusals_name_asset_keywords(item, tmp_path):
    from geodino.embed import embed_scenes

    out = tmp_path / "feats"
    with pytest.raises(ConfigError, match=r"needs --asset NAME \(asset= in Python\)"):
        embed_scenes(str(item), backbone=SPEC, out=out)
    with pytest.raises(InputError, match=r"has no asset 'nope'.*pass one of them with --asset \(asset= in Python\)$"):
        embed_scenes(str(item), backbone=SPEC, out=out, asset="nope")
    with pytest.raises(ConfigError, match=r"^--asset-bands \(asset_bands= in Python\) chooses bands inside one"):
        embed_scenes(str(item), backbone=SPEC, out=out, asset="visual,red", asset_bands=["1"])
    assert not out.exists()


def test_embed_images_output_suffix_names_out(tmp_path):
    from geodino.embed import embed_images

    with pytest.raises(ConfigError, match=r"^--out .*feats\.txt \(out= in Python\): embed images writes GeoParquet"):
        embed_images(tmp_path, SPEC, tmp_path / "feats.txt")
    assert not (tmp_path / "feats.txt").exists()
