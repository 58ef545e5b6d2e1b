"""A Python caller's bad argument is named as the keyword it passed (`out=`, `column=`, `heads=` ...), not only as
the CLI flag it never typed; a probe config given as a mapping is read (or refused in one line) instead of failing on
a missing attribute."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from geodino.errors import ConfigError, InputError
from tests.helpers import write_tif

SPEC = "arch:vit_small?depth=1&embed_dim=32&num_heads=2&seed=0"


@pytest.fixture(scope="module")
def tif(tmp_path_factory) -> Path:
    rng = np.random.default_rng(0)
    return write_tif(tmp_path_factory.mktemp("in") / "in.tif", rng.integers(1, 255, (3, 32, 32), dtype=np.uint8))


def test_embed_raster_without_out_or_backbone_names_the_keywords(tif):
    from geodino.embed import embed_raster, embed_scenes

    with pytest.raises(ConfigError, match=r"no output given; pass --out OUT\.tif or OUT\.zarr \(out= in Python\)"):
        embed_raster(tif, SPEC)
    with pytest.raises(ConfigError, match=r"no backbone given; pass --backbone SPEC \(backbone= in Python\)"):
        embed_raster(tif, out=tif.with_name("o.tif"))
    with pytest.raises(ConfigError, match=r"--out FOLDER \(out= in Python\)"):
        embed_scenes([str(tif)], backbone=SPEC)
    assert not tif.with_name("o.tif").exists()


def test_embed_raster_tiling_refusal_names_the_keywords(tif, tmp_path):
    from geodino.embed import embed_raster

    with pytest.raises(
        ConfigError, match=r"overlap=32 must be at most half of tile=32.*\(overlap= and tile= in Python\)"
    ):
        embed_raster(tif, SPEC, tmp_path / "o.tif", tile=32, overlap=32, progress=False)
    assert not (tmp_path / "o.tif").exists()


def test_products_name_the_keywords(tmp_path):
    from geodino.embed import change_map, classify_map, similarity_map

    f = tmp_path / "f.tif"  # never read: each refusal comes before the inputs are opened
    with pytest.raises(InputError, match=r"point=\(x, y\) in Python.*polygon= in Python"):
        similarity_map(f, tmp_path / "s.tif")
    with pytest.raises(InputError, match=r"--column NAME \(column= in Python\)"):
        classify_map(f, tmp_path / "l.gpkg", tmp_path / "c.tif")
    with pytest.raises(InputError, match=r"labels= and column= in Python.*model= in Python"):
        classify_map(f, None, tmp_path / "c.tif")
    with pytest.raises(ConfigError, match=r"\(mask= in Python\).*\(threshold= in Python\)"):
        change_map(f, f, tmp_path / "d.tif", mask=tmp_path / "m.tif")


def test_attention_refusals_name_the_keywords(tif, tmp_path):
    from geodino.backbones import load_backbone
    from geodino.viz.attention import attention_maps, read_input

    bb, sample = load_backbone(SPEC), read_input(tif)
    with pytest.raises(InputError, match=r"--layer 5 \(layer= in Python\) is out of range"):
        attention_maps(bb, sample, layer=5)
    with pytest.raises(InputError, match=r"--heads \[0, 0\] \(heads= in Python\) names head 0 twice"):
        attention_maps(bb, sample, heads=[0, 0])
    with pytest.raises(InputError, match=r"--window \(window= in Python\) takes 4 numbers"):
        read_input(tif, window=(0, 0, 8))


def test_probe_configs_as_mappings_are_read_with_the_config_checks(tmp_path):
    from geodino.eval import run_classification
    from geodino.eval.canopy import run_canopy

    data = {"name": "image_folder", "root": str(tmp_path / "none")}
    with pytest.raises(ConfigError, match=r"unknown config key 'eval_splits'"):
        run_classification(SPEC, {"data": data, "eval_splits": "val"}, tmp_path / "refused")
    with pytest.raises(InputError, match=r"dataset folder .*none for 'image_folder' not found"):
        run_classification(SPEC, {"data": data}, tmp_path / "o")  # the mapping was read: its data root is checked
    with pytest.raises(ConfigError, match=r"run_classification takes cfg=ClassificationConfig\(\.\.\.\) or a mapping"):
        run_classification(SPEC, "task.yaml", tmp_path / "refused")
    with pytest.raises(
        ConfigError, match=r"run_canopy takes cfg=CanopyProbeConfig\(\.\.\.\) or a mapping.*load_config"
    ):
        run_canopy(SPEC, None, tmp_path / "refused")
    assert not (tmp_path / "refused").exists()  # refused before the output folder is made


def test_attention_arguments_given_as_text_or_one_number(tif, tmp_path):
    """layer="x" was a raw ValueError, heads=0 a raw TypeError, and overwrite="no" (truthy) replaced the earlier maps
    without a word."""
    from geodino.backbones import load_backbone
    from geodino.viz.attention import attention_maps, read_input, write_attention

    bb, sample = load_backbone(SPEC), read_input(tif)
    with pytest.raises(ConfigError, match=r"layer must be a whole number \(e\.g\. layer=-1\), got 'x'"):
        attention_maps(bb, sample, layer="x")
    with pytest.raises(ConfigError, match=r"heads must be head indices \(e\.g\. heads=\[0, 2\].*got 'ab'"):
        attention_maps(bb, sample, heads="ab")
    maps = attention_maps(bb, sample, layer="0", heads=1)  # text as the CLI reads it; one number is one head
    assert maps.head_ids == [1] and maps.heads.shape == (1, 2, 2) and maps.layer == 0
    files = write_attention(maps, sample, tmp_path / "att")
    assert all(p.is_file() for p in files.values())
    with pytest.raises(InputError, match=r"already holds attention maps.*overwrite=True in Python"):
        write_attention(maps, sample, tmp_path / "att", overwrite="no")
    with pytest.raises(ConfigError, match=r"overwrite must be true or false .*got 'maybe'"):
        write_attention(maps, sample, tmp_path / "att", overwrite="maybe")
    assert write_attention(maps, sample, tmp_path / "att", overwrite="yes") == files


def test_embed_config_given_a_yaml_path_says_how_to_read_it(tif, tmp_path):
    from geodino.embed import embed_raster

    with pytest.raises(ConfigError, match=r"not the YAML path 'e\.yaml'; read it with config=load_config\(EmbedConfig"):
        embed_raster(tif, SPEC, tmp_path / "o.tif", config="e.yaml")


def test_product_outputs_given_as_flags_are_one_line(tmp_path):
    """png=True (a "yes, a quick-look" guess) was a raw TypeError of Path(); every product names the argument."""
    from geodino.embed import change_map, classify_map, pca_map, similarity_map

    f = tmp_path / "f.tif"  # never read: the outputs are checked first
    with pytest.raises(ConfigError, match=r"^png= takes a file name \(e\.g\. png='pca\.png'\), got True$"):
        pca_map(f, tmp_path / "p.tif", png=True)
    with pytest.raises(ConfigError, match=r"^png= takes a file name \(e\.g\. png='similar\.png'\), got True$"):
        similarity_map(f, tmp_path / "s.tif", point=(1.0, 2.0), png=True)
    with pytest.raises(ConfigError, match=r"^mask= takes a file name \(e\.g\. mask='change\.tif'\), got 1$"):
        change_map(f, f, tmp_path / "d.tif", threshold=0.5, mask=1)
    with pytest.raises(ConfigError, match=r"^save_model= takes a file name .*'classify\.safetensors'\), got True$"):
        classify_map(f, tmp_path / "l.gpkg", tmp_path / "c.tif", column="c", save_model=True)
    assert list(tmp_path.iterdir()) == []
