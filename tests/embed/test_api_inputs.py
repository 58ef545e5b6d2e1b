"""Python entry points of `geodino.embed` given wrong values (API audit): each is one GeoDinoError line naming the
value and both spellings (Python keyword and CLI flag), or a value read the way YAML and the CLI read it."""

from __future__ import annotations

import numpy as np
import pytest

from geodino.embed import change_map, cluster_map, embed_images, embed_raster, embed_scenes, similarity_map
from geodino.embed.config import EmbedConfig, make_config
from geodino.errors import ConfigError, InputError
from tests.embed.conftest import random_image, write_tif
from tests.embed.test_classify import feature_raster

FAST = {"progress": False}
BAND_HINT = r"1-based band numbers .*bands=\[4,3,2\].*band names go to the backbone .*\?bands=.* or a sensor"


def features(tmp_path, name="f.tif"):
    rng = np.random.default_rng(0)
    return feature_raster(tmp_path / name, rng.normal(size=(8, 10, 12)).astype(np.float32))


# 1. change_map: an int threshold is a number like a float (the range check applies), a bool is not one
@pytest.mark.parametrize("bad", [-1, 3, -1.0, 2.5, float("nan")])
def test_change_threshold_outside_range_refused_int_or_float(tmp_path, bad):
    f = features(tmp_path)
    with pytest.raises(InputError, match=r"threshold .* must lie in \[0, 2\] .*\(threshold= in Python\)"):
        change_map(f, f, tmp_path / "c.tif", threshold=bad)
    assert not (tmp_path / "c.tif").exists()


@pytest.mark.parametrize("bad", [True, "abc", [0.5]])
def test_change_threshold_not_a_number_refused(tmp_path, bad):
    f = features(tmp_path)
    with pytest.raises(InputError, match=r"must be a number in \[0, 2\] or 'otsu'"):
        change_map(f, f, tmp_path / "c.tif", threshold=bad)


def test_change_threshold_int_and_numpy_taken_as_numbers(tmp_path):
    f = features(tmp_path)
    with pytest.warns(UserWarning, match=r"the change mask is empty"):
        s = change_map(f, f, tmp_path / "c.tif", threshold=1)
    assert s["threshold"] == 1.0 and s["changed_share"] == 0.0 and s["method"] == "given"
    with pytest.warns(UserWarning, match=r"the change mask is empty"):
        s = change_map(f, f, tmp_path / "c.tif", threshold=np.float32(0.5), overwrite=True)
    assert s["threshold"] == 0.5 and s["changed_share"] == 0.0


# 2. embed's bands are 1-based numbers: names and a bare count are refused up front, in one line
@pytest.mark.parametrize("bad", [3, "B04,B03", [1.5, 2], ""])  # a list of names: test_config_band_names.py
def test_embed_raster_band_names_or_count_refused(tmp_path, conv_bb, bad):
    src = write_tif(tmp_path / "in.tif", random_image(32, 32, c=4))
    with pytest.raises(ConfigError, match=r"^bands=.* cannot be used: embed's bands are " + BAND_HINT):
        embed_raster(src, conv_bb, tmp_path / "o.tif", bands=bad, **FAST)
    assert not (tmp_path / "o.tif").exists()


def test_band_numbers_as_text_or_tuple_pass():
    cfg = EmbedConfig(bands=("4", 3, np.int64(2)))
    cfg.validate()
    assert cfg.bands == [4, 3, 2] and all(type(b) is int for b in cfg.bands)
    text = EmbedConfig(bands="4,3, 2")
    text.validate()
    assert text.bands == [4, 3, 2]
    empty = EmbedConfig(bands=[])
    empty.validate()
    assert empty.bands is None


def test_embed_images_band_names_refused(tmp_path, conv_bb):
    with pytest.raises(ConfigError, match=r"^bands=\['R', 'G', 'B'\] cannot be used: embed_images' bands are 1-based"):
        embed_images(tmp_path, conv_bb, tmp_path / "x.parquet", bands=["R", "G", "B"], progress=False)


# 3. similarity_map's point: "x,y" text as the CLI takes it, a 2-sequence, else one line naming the value
def test_similarity_point_as_text_or_sequence(tmp_path):
    import rasterio

    f = features(tmp_path)
    x, y = 500000.0 + 40 * 5.5, 4000000.0 - 40 * 3.5  # cell (3, 5)
    ref = similarity_map(f, tmp_path / "ref.tif", point=(x, y))
    with rasterio.open(ref) as ds:
        want = ds.read(1)
    for i, point in enumerate([f"{x},{y}", f"{x} {y}", [x, y], np.array([x, y])]):
        out = similarity_map(f, tmp_path / f"s{i}.tif", point=point)
        with rasterio.open(out) as ds:
            np.testing.assert_array_equal(ds.read(1), want)
            assert ds.tags()["GEODINO_QUERY"] == str((x, y))


@pytest.mark.parametrize("bad", ["500100", "a,b", "1,2,3", 5, (1, 2, 3), (True, 2)])
def test_similarity_bad_point_refused(tmp_path, bad):
    f = features(tmp_path)
    with pytest.raises(InputError, match=r"^point=.* must be two numbers X,Y .*point='500100,4999900'.*--point X,Y"):
        similarity_map(f, tmp_path / "s.tif", point=bad)
    assert not (tmp_path / "s.tif").exists()


# 4. config= takes an EmbedConfig: a spec string or a dict there is one line saying what to pass
def test_embed_scenes_spec_as_second_positional_refused(tmp_path):
    with pytest.raises(ConfigError, match=r"second argument of embed_scenes is config; pass backbone='arch:vit_small'"):
        embed_scenes(str(tmp_path), "arch:vit_small", out=str(tmp_path / "feats"))
    assert not (tmp_path / "feats").exists()


def test_embed_raster_config_dict_refused(tmp_path, conv_bb, rgb_tif):
    with pytest.raises(
        ConfigError, match=r"config= takes an EmbedConfig, not a dict .*as keywords.*EmbedConfig\(\*\*d\)"
    ):
        embed_raster(rgb_tif, conv_bb, tmp_path / "o.tif", config={"tile": 64}, **FAST)
    with pytest.raises(ConfigError, match=r"config= takes an EmbedConfig \(or None\), not a int"):
        make_config(3, None, None, {})


# 5. numeric text is read as YAML and the CLI read it, in make_config / EmbedConfig.validate; else one line
def test_scalar_options_coerced_from_text():
    cfg = make_config(None, "arch:vit_small", "o.tif", {"tile": "256", "overlap": " 64 ", "scale": "1e-4"})
    assert (cfg.tile, cfg.overlap, cfg.scale) == (256, 64, 1e-4) and type(cfg.tile) is int
    cfg = make_config(None, None, "o.tif", {"overwrite": "false", "resume": "yes", "norm": 0, "workers": 2.0})
    assert (cfg.overwrite, cfg.resume, cfg.norm, cfg.workers) == (False, True, False, 2)
    assert make_config(None, None, "o.tif", {"margin": None}).margin is None


@pytest.mark.parametrize(
    ("key", "value", "msg"),
    [
        ("tile", "abc", r"tile must be a whole number \(e.g. tile=512\), got 'abc'"),
        ("batch_size", 2.5, r"batch_size must be a whole number"),
        ("tile", True, r"tile must be a whole number"),
        ("scale", "x", r"scale must be a number \(e.g. scale=1e-4\), got 'x'"),
        ("overwrite", "maybe", r"overwrite must be true or false \(e.g. overwrite=True\), got 'maybe'"),
        ("resume", 2, r"resume must be true or false"),
    ],
)
def test_scalar_options_bad_text_refused(key, value, msg):
    with pytest.raises(ConfigError, match=msg):
        make_config(None, None, "o.tif", {key: value})


def test_embed_raster_tile_text_runs(tmp_path, conv_bb, rgb_tif):
    """tile="64", overlap="16" are read as the numbers: the record says 64/16 and the features are those of the
    int spelling (120 x 152 px at 4 px cells: 30 x 38)."""
    import rasterio

    out = embed_raster(rgb_tif, conv_bb, tmp_path / "o.tif", tile="64", overlap="16", **FAST)
    ref = embed_raster(rgb_tif, conv_bb, tmp_path / "r.tif", tile=64, overlap=16, **FAST)
    with rasterio.open(out) as ds, rasterio.open(ref) as rs:
        tags, got, want = ds.tags(), ds.read(), rs.read()
    assert (tags["GEODINO_TILE"], tags["GEODINO_OVERLAP"]) == ("64", "16")
    assert got.shape == (8, 30, 38) and np.isfinite(got).all()
    np.testing.assert_array_equal(got, want)


def test_cluster_k_text(tmp_path):
    import rasterio

    f = features(tmp_path)
    with rasterio.open(cluster_map(f, tmp_path / "c.tif", k="3")) as ds:
        assert set(np.unique(ds.read(1))) <= {0, 1, 2}
    with pytest.raises(ConfigError, match=r"k must be a whole number \(e.g. k=8\), got 'eight'"):
        cluster_map(f, tmp_path / "c2.tif", k="eight")


# 6. messages users meet from Python name the keyword beside the flag
def test_band_count_message_names_python_form(tmp_path, conv_bb):
    src = write_tif(tmp_path / "in5.tif", random_image(32, 32, c=5))
    with pytest.raises(InputError, match=r"--bands \(e.g. --bands 1,2,3\), bands=\[1, 2, 3\] in Python, or adapt"):
        embed_raster(src, conv_bb, tmp_path / "o.tif", **FAST)
    with pytest.raises(InputError, match=r"pass 3 band numbers \(e.g. --bands 1,2,3\), bands=\[1, 2, 3\] in Python"):
        embed_raster(src, conv_bb, tmp_path / "o.tif", bands=[1, 2], **FAST)
    rgba = write_tif(tmp_path / "in4.tif", random_image(32, 32, c=4))  # band 4: alpha
    with pytest.raises(InputError, match=r"pass --bands 1,2,3 \(bands=\[1, 2, 3\] in Python\) to embed its 3 data"):
        embed_raster(rgba, conv_bb, tmp_path / "o.tif", **FAST)


def test_existing_output_and_dn_warning_name_python_form(tmp_path, conv_bb):
    src = write_tif(tmp_path / "in.tif", random_image(32, 32, dtype="uint16"))
    with pytest.warns(UserWarning, match=r"--sensor NAME or --scale FACTOR \(sensor=NAME or scale=FACTOR in Python\)"):
        out = embed_raster(src, conv_bb, tmp_path / "o.tif", tile=32, overlap=0, **FAST)
    with pytest.raises(InputError, match=r"--resume to keep it \(overwrite=True or resume=True in Python\)"):
        embed_raster(src, conv_bb, out, tile=32, overlap=0, **FAST)
