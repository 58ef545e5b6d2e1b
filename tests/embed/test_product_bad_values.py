"""Embed flags that were taken without working: `change --mask` without `--threshold` (no mask was written, nothing
said so), `zonal --png z.jpg` (a PNG written under .jpg, as pca/cluster/similar refuse) and a `--chunk` whose one
storage chunk exceeds the 2 GiB a compressed chunk holds ("the work folder ... is damaged" from the store's
read-back, or an EiB allocation). Each one line, exit 2, before anything is written."""

from __future__ import annotations

import numpy as np
import pytest

from geodino.errors import ConfigError
from tests import helpers


def test_change_mask_without_threshold_is_refused(tmp_path):
    from geodino.embed.change import change_map

    with pytest.raises(
        ConfigError, match=r"--mask .*m\.tif \(mask= in Python\) names the binary change COG.*add --threshold"
    ):
        change_map(tmp_path / "a.tif", tmp_path / "b.tif", tmp_path / "d.tif", mask=tmp_path / "m.tif")
    assert list(tmp_path.iterdir()) == []


def test_zonal_png_must_be_a_png_name(tmp_path):
    from geodino.embed.products import zonal_embeddings

    with pytest.raises(
        ConfigError, match=r"--png .*z\.jpg \(png= in Python\): zonal writes a PNG, not \.jpg; name it z\.png"
    ):
        zonal_embeddings(tmp_path / "f.tif", tmp_path / "p.gpkg", tmp_path / "z.parquet", png=tmp_path / "z.jpg")
    assert list(tmp_path.iterdir()) == []


def test_a_chunk_over_two_gib_is_one_line_and_nothing_is_written(tmp_path, capsys):
    from geodino.cli import main

    src = helpers.write_tif(tmp_path / "in.tif", np.full((3, 16, 16), 100, np.uint8))
    out = tmp_path / "f.zarr"
    spec = "arch:vit_tiny?depth=1&patch_size=8&seed=0"  # 192 float32 bands: at most 1672 cells a side
    assert main(["embed", str(src), "-b", spec, "--out", str(out), "--chunk", "3000", "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "--chunk 3000 (chunk= in Python) makes one storage chunk of 6.4 GiB" in err, err
    assert "pass --chunk 1672 or less" in err and "Traceback" not in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.tif"]
