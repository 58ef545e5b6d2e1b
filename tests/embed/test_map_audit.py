"""Findings of the GIS map-product audit: each test fails on the code before its fix.

1 models and change across normalisations, 2 cross-validation blocked by shared and neighbouring cells, 3 product
outputs that would overwrite each other, 4 mosaics of ranks run with other input settings, 5 numeric class codes,
6 upsampled nodata, 7-9 one-line errors and messages.
"""

from __future__ import annotations

import json
import re
import warnings
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest

from geodino.embed import embed_raster, embed_scenes
from geodino.embed.classify import blocked_cv, class_codes, classify_map, cv_groups, natural_order
from geodino.errors import InputError
from tests.embed.conftest import random_image, write_tif
from tests.embed.test_classify import TAGS, T, feature_raster, points, polygons, stripes
from tests.test_bad_inputs import one_line_exit_2

FAST = {"tile": 32, "overlap": 8, "progress": False}
FLOAT = dict(TAGS, GEODINO_FINAL_NORM="true", GEODINO_L2_NORMALIZE="false", GEODINO_DTYPE="float32")


def stripe_points(path: Path) -> Path:
    return points(path, [(c, r, f"class_{c // 15}") for c in (2, 8, 17, 25, 33, 40) for r in (6, 22)])


# -- 1: a model or a change map across normalisations ----------------------------------------------------------------


def test_model_and_change_refuse_other_normalisations(tmp_path):
    """final_norm and l2_normalize are part of the identity (with both values named); the dtype is not."""
    from geodino.embed.change import change_map

    feats = feature_raster(tmp_path / "f.tif", stripes(), tags=FLOAT)
    classify_map(feats, stripe_points(tmp_path / "p.gpkg"), tmp_path / "a.tif", column="landcover")
    model = tmp_path / "a.model.safetensors"
    for key, value, said in (
        ("GEODINO_L2_NORMALIZE", "true", "l2_normalize (embed option --l2) false vs true"),
        ("GEODINO_FINAL_NORM", "false", "final_norm (embed option norm) true vs false"),
    ):
        other = feature_raster(tmp_path / f"{key}.tif", stripes(seed=1), tags=dict(FLOAT, **{key: value}))
        with pytest.raises(InputError, match=rf"different backbone outputs: {re.escape(said)}; a model applies"):
            classify_map(other, None, tmp_path / "b.tif", model=model)
        assert not (tmp_path / "b.tif").exists()
    f16 = feature_raster(tmp_path / "f16.tif", stripes(seed=1), tags=dict(FLOAT, GEODINO_DTYPE="float16"))
    assert classify_map(f16, None, tmp_path / "c.tif", model=model)["classes"] == ["class_0", "class_1", "class_2"]
    old = feature_raster(tmp_path / "old.tif", stripes(seed=1))  # a raster that records no normalisation
    with pytest.raises(InputError, match=r"final_norm .* true vs not recorded"):
        classify_map(old, None, tmp_path / "d.tif", model=model)
    # change: the final LayerNorm changes directions (refused); vector lengths do not (accepted)
    normed = feature_raster(tmp_path / "n.tif", stripes(), tags=dict(FLOAT, GEODINO_FINAL_NORM="false"))
    with pytest.raises(InputError, match=r"final_norm .* true vs false; embed both dates with the same"):
        change_map(feats, normed, tmp_path / "ch.tif")
    unit = feature_raster(tmp_path / "u.tif", stripes(), tags=dict(FLOAT, GEODINO_L2_NORMALIZE="true"))
    assert change_map(feats, unit, tmp_path / "ch.tif")["valid_cells"] == 30 * 45 - 9


def test_int8_raster_and_a_float_model_through_the_cli(capsys, tmp_path, conv_bb, rgb_tif):
    """The audit's case, on rasters `geodino embed` wrote: a model fitted on un-normalised float32 features is
    refused on the int8 raster of the same backbone; fitted on L2-normalised float32 it applies (int8 is read
    dequantised and re-normalised) and gives the same map."""
    import rasterio

    f32 = embed_raster(rgb_tif, conv_bb, tmp_path / "f32.tif", **FAST)
    unit = embed_raster(rgb_tif, conv_bb, tmp_path / "unit.tif", l2_normalize=True, **FAST)
    i8 = embed_raster(rgb_tif, conv_bb, tmp_path / "i8.tif", dtype="int8", **FAST)
    cells = [(c, r, "ab"[c * 2 // 38]) for c in range(1, 38, 4) for r in range(1, 30, 5)]
    lab = points(tmp_path / "p.gpkg", cells)  # 4 px of 10 m: the helper's 40 m cells
    classify_map(f32, lab, tmp_path / "m32.tif", column="landcover")
    one_line_exit_2(
        capsys, tmp_path, "embed", "classify", i8, "--model", tmp_path / "m32.model.safetensors", "--out",
        tmp_path / "bad.tif", expect=("l2_normalize (embed option --l2) false vs true", "i8.tif"),
    )  # fmt: skip
    classify_map(unit, lab, tmp_path / "mu.tif", column="landcover")
    classify_map(i8, None, tmp_path / "m8.tif", model=tmp_path / "mu.model.safetensors")
    with rasterio.open(tmp_path / "mu.tif") as a, rasterio.open(tmp_path / "m8.tif") as b:
        assert (a.read(1) == b.read(1)).mean() > 0.97


# -- 2: cross-validation blocked by shared and neighbouring cells ---------------------------------------------------


def test_cv_groups_join_features_by_shared_and_neighbouring_cells():
    features = np.array([0, 1, 2, 3, 3, 4])
    cells = np.array([[5, 5], [5, 5], [6, 6], [20, 20], [20, 21], [22, 23]])
    assert cv_groups(features, cells, gap=0).tolist() == [0, 0, 2, 3, 3, 4]  # 0 and 1 share a cell
    assert cv_groups(features, cells, gap=1).tolist() == [0, 0, 0, 3, 3, 4]  # 2 touches them by a corner
    assert cv_groups(features, cells, gap=2).tolist() == [0, 0, 0, 3, 3, 3]  # (22, 23) is 2 cells from (20, 21)


def _random_sites(tmp_path: Path, offsets: list[tuple[float, float]], seed: int = 0) -> tuple[Path, Path]:
    """24 sites with random classes (4, chance 25 %) on random features, each labelled once per offset (in cells
    from the site's cell corner): twice inside one cell, or in two neighbouring cells."""
    tmp_path = tmp_path / f"seed{seed}"
    tmp_path.mkdir(exist_ok=True)
    rng = np.random.default_rng(seed)
    f = rng.normal(size=(8, 40, 40)).astype(np.float32)
    for r in range(1, 40):  # rows alike (correlation 0.95 with the next), as neighbouring features are
        f[:, r] = 0.95 * f[:, r - 1] + np.sqrt(1 - 0.95**2) * f[:, r]
    feats = feature_raster(tmp_path / "noise.tif", f)
    classes = rng.permutation(np.repeat(["a", "b", "c", "d"], 6))
    sites = [(c, r) for r in (2, 8, 14, 20, 26, 32) for c in (3, 12, 21, 30)]
    rows = [(c + dc, r + dr, k) for (c, r), k in zip(sites, classes, strict=True) for dc, dr in offsets]
    import geopandas as gpd
    from shapely.geometry import Point

    gdf = gpd.GeoDataFrame(
        {"landcover": [k for *_, k in rows]}, geometry=[Point(*(T @ (c, r))) for c, r, _ in rows], crs="EPSG:32633"
    )
    gdf.to_file(tmp_path / "sites.gpkg")
    return feats, tmp_path / "sites.gpkg"


@pytest.mark.parametrize(
    "offsets", [[(0.25, 0.25), (0.75, 0.75)], [(0.5, 0.5), (0.5, 1.5)]], ids=["two-clicks-in-a-cell", "neighbours"]
)
def test_random_labels_score_near_chance(tmp_path, offsets):
    """Two labels per site: the old CV (one group per label feature) put one in training and its twin in the test
    fold and scored random classes far above chance; blocked by shared or touching cells it stays near chance."""
    from geodino.embed.classify import class_names, read_labels, sample_labels
    from geodino.embed.writers import EmbeddingReader

    accuracy, leaky = [], []
    for seed in range(4):  # 24 sites: one seed's score is noisy (+-9 points), the mean of four is not
        feats, lab = _random_sites(tmp_path, offsets, seed)
        m = classify_map(feats, lab, feats.with_name("m.tif"), column="landcover", method="knn", neighbors=1)
        assert m["cv"]["groups"] == 24
        accuracy.append(m["cv"]["accuracy"])
        with EmbeddingReader(feats) as rd:  # what the old grouping (one group per label feature) scored
            x, y, g, _ = sample_labels(rd, read_labels(lab, "landcover"), "landcover")
        leaky.append(blocked_cv(x, class_names(y), g, method="knn", neighbors=1, folds=5, seed=0)["accuracy"])
    assert np.mean(accuracy) < 0.4 and np.mean(leaky) > 0.7, (accuracy, leaky)


def test_cv_gap_zero_joins_only_shared_cells_and_the_metrics_say_how(tmp_path):
    feats, lab = _random_sites(tmp_path, [(0.5, 0.5), (0.5, 1.5)])
    m = classify_map(feats, lab, tmp_path / "m.tif", column="landcover", method="knn", neighbors=1, cv_gap=0)
    assert m["cv"]["groups"] == 48 and m["cv"]["blocked_by"] == "label features sharing a cell"
    m = classify_map(feats, lab, tmp_path / "n.tif", column="landcover", method="knn", neighbors=1)
    assert m["cv"]["blocked_by"] == "label features within 1 cell(s) of each other"


# -- 3: outputs that are one file ------------------------------------------------------------------------------------


def test_product_outputs_must_be_geotiffs_and_distinct(capsys, tmp_path):
    feats = feature_raster(tmp_path / "f.tif", stripes(), tags=FLOAT)
    other = feature_raster(tmp_path / "g.tif", stripes(seed=1), tags=FLOAT)
    lab = stripe_points(tmp_path / "p.gpkg")
    png = tmp_path / "map.png"
    for argv in (
        ["classify", feats, lab, "--column", "landcover"],
        ["change", feats, other],
        ["similar", feats, "--point", "500100,3999900"],
        ["pca", feats],
        ["cluster", feats, "--k", "3"],
    ):
        one_line_exit_2(
            capsys, tmp_path, "embed", *argv, "--out", png,
            expect=(f"--out {png} (out= in Python): {argv[0]} writes a GeoTIFF (COG), not .png; name it map.tif",),
        )  # fmt: skip
    one_line_exit_2(
        capsys, tmp_path, "embed", "change", feats, other, "--out", tmp_path / "c.tif", "--threshold", "otsu",
        "--mask", tmp_path / "c.tif", expect=("--out and --mask are the same file", "its own name"),
    )  # fmt: skip
    one_line_exit_2(
        capsys, tmp_path, "embed", "pca", feats, "--out", tmp_path / "p.tif", "--png", tmp_path / "p.tif",
        expect=(f"--png {tmp_path / 'p.tif'} (png= in Python): pca writes a PNG, not .tif; name it p.png",),
    )  # fmt: skip


# -- 4: a mosaic of ranks launched with other input settings ---------------------------------------------------------


def test_mosaic_refuses_ranks_with_other_bands_or_scaling(tmp_path, conv_bb):
    from geodino.embed.scene_mosaic import scale_setting

    (tmp_path / "scenes").mkdir()
    for i in range(2):
        write_tif(tmp_path / "scenes" / f"s{i}.tif", random_image(32, 32, seed=i))
    out = tmp_path / "feats"
    assert embed_scenes(tmp_path / "scenes", backbone=conv_bb, out=out, world_size=2, rank=0, scale=0.0001,
                        bands=[3, 2, 1], **FAST) == []  # fmt: skip
    with pytest.raises(InputError) as err:
        embed_scenes(tmp_path / "scenes", backbone=conv_bb, out=out, world_size=2, rank=1, **FAST)
    assert "s0.tif and s1.tif" in str(err.value) and "cannot share one mosaic" in str(err.value)
    assert "input_bands [3, 2, 1] vs [1, 2, 3]; input_scale x*0.0001 vs x/255 (uint8)" in str(err.value)
    assert not (out / "mosaic.vrt").exists()
    # the dtype defaults are one setting: scenes of another data type in one run are not refused
    assert scale_setting("x/255 (uint8)") == scale_setting("x/10000 (uint16, assumed)") != scale_setting("x*0.01")


# -- 5: numeric class codes -------------------------------------------------------------------------------------------


def test_integer_classes_keep_their_codes_as_pixel_values(tmp_path):
    import geopandas as gpd
    import rasterio

    feats = feature_raster(tmp_path / "f.tif", stripes(), tags=FLOAT)
    lab = gpd.read_file(stripe_points(tmp_path / "p.gpkg"))
    lab["code"] = lab["landcover"].map({"class_0": 10, "class_1": 2, "class_2": 3}).astype(float)  # floats, as
    lab.loc[len(lab)] = {"landcover": "x", "code": np.nan, "geometry": lab.geometry[0]}  # with an empty cell
    lab.set_crs("EPSG:32633", allow_override=True).to_file(tmp_path / "codes.gpkg")  # pandas < 3's loc drops it
    with pytest.warns(UserWarning, match=r"1 of 13 labels in .*codes\.gpkg has no 'code' value"):
        m = classify_map(feats, tmp_path / "codes.gpkg", tmp_path / "m.tif", column="code")
    assert m["classes"] == ["2", "3", "10"] and m["values"] == {"2": 2, "3": 3, "10": 10}
    with rasterio.open(tmp_path / "m.tif") as ds:
        cls = ds.read(1)
        assert json.loads(ds.tags()["GEODINO_CLASS_NAMES"]) == ["2", "3", "10"]
        assert json.loads(ds.tags()["GEODINO_CLASS_VALUES"]) == [2, 3, 10]
        cmap = ds.colormap(1)
    assert (cls[5:, :15] == 10).mean() > 0.95 and (cls[:, 15:30] == 2).mean() > 0.95 and (cls[:, 30:] == 3).all()
    assert len({cmap[2], cmap[3], cmap[10]}) == 3
    r = ET.parse(tmp_path / "m.qml").getroot().find("pipe/rasterrenderer")
    assert {e.get("value"): e.get("label") for e in r.iter("paletteEntry")} == {"2": "2", "3": "3", "10": "10"}
    # a saved model writes the same codes on another raster
    other = feature_raster(tmp_path / "g.tif", stripes(seed=1), tags=FLOAT)
    classify_map(other, None, tmp_path / "n.tif", model=tmp_path / "m.model.safetensors")
    with rasterio.open(tmp_path / "n.tif") as ds:
        assert set(np.unique(ds.read(1)).tolist()) == {2, 3, 10, 255}


def test_text_classes_in_natural_order_numbered_from_zero():
    assert natural_order(["class_10", "class_2", "b", "a"]) == ["a", "b", "class_2", "class_10"]
    assert class_codes(["1", "2", "10"]) == {"1": 1, "2": 2, "10": 10}
    assert class_codes(["2", "255"]) == {"2": 0, "255": 1}  # 255 is nodata: positions
    assert class_codes(["07", "8"]) == {"07": 0, "8": 1}  # not written as a plain integer: positions


# -- 6: upsampled nodata follows the input's own mask -----------------------------------------------------------------


def test_upsampled_nodata_is_the_inputs_nodata(tmp_path, const_bb):
    import rasterio

    data = random_image(40, 48)
    rng = np.random.default_rng(0)
    holes = rng.random((40, 48)) < 0.1  # single nodata pixels inside valid cells
    data[:, holes] = 0
    src = write_tif(tmp_path / "in.tif", data, nodata=0)
    out = embed_raster(src, const_bb, tmp_path / "up.tif", upsample=True, **FAST)
    with rasterio.open(out) as ds:
        a = ds.read()
    np.testing.assert_array_equal(np.isnan(a).all(axis=0), holes)
    assert not np.isnan(a[:, ~holes]).any()


# -- 7-9: one-line errors and clearer messages ------------------------------------------------------------------------


def test_csv_labels_and_bad_classify_numbers_are_one_line(capsys, tmp_path):
    feats = feature_raster(tmp_path / "f.tif", stripes(), tags=FLOAT)
    lab = stripe_points(tmp_path / "p.gpkg")
    csv = tmp_path / "labels.csv"
    csv.write_text("x,y,landcover\n500100,3999900,a\n500500,3999700,b\n")
    out = tmp_path / "m.tif"
    base = ("embed", "classify", feats)
    for argv, expect in (
        ([csv, "--column", "landcover"], ("labels file", "labels.csv holds a table without geometries", "GeoPackage")),
        ([lab, "--column", "landcover", "--test", csv], ("test labels file", "labels.csv holds a table")),
        ([lab, "--column", "landcover", "--max-cells", "0"], ("--max-cells 0: sample at least 1 cell",)),
        ([lab, "--column", "landcover", "--max-cells", "-5"], ("--max-cells -5",)),
        ([lab, "--column", "landcover", "--folds", "0"], ("--folds 0: cross-validation needs at least 2 folds",)),
        ([lab, "--column", "landcover", "--folds", "1"], ("--folds 1",)),
        ([lab, "--column", "landcover", "--neighbors", "0", "--method", "knn"], ("--neighbors 0",)),
        ([lab, "--column", "landcover", "--cv-gap", "-1"], ("--cv-gap -1",)),
    ):
        one_line_exit_2(capsys, tmp_path, *base, *argv, "--out", out, expect=expect)


def test_classify_names_coordinates_their_crs_cannot_place(capsys, tmp_path):
    import geopandas as gpd

    feats = feature_raster(tmp_path / "f.tif", stripes(), tags=FLOAT)
    wrong = gpd.read_file(polygons(tmp_path / "lab.gpkg", crs="EPSG:32633")).set_crs("EPSG:4326", allow_override=True)
    wrong.to_file(tmp_path / "wrong.gpkg")
    one_line_exit_2(
        capsys, tmp_path, "embed", "classify", feats, tmp_path / "wrong.gpkg", "--column", "landcover", "--out",
        tmp_path / "m.tif",
        expect=("none of the 6 labels", "6 of them have coordinates that their declared CRS EPSG:4326 cannot place",
                "metres declared as lon/lat"),
    )  # fmt: skip


def test_one_class_test_layer_leaks_no_sklearn_warning(tmp_path, capsys):
    feats = feature_raster(tmp_path / "f.tif", stripes(), tags=FLOAT)
    test = points(tmp_path / "t.gpkg", [(5, 12, "class_0"), (6, 14, "class_0")])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        m = classify_map(feats, stripe_points(tmp_path / "p.gpkg"), tmp_path / "m.tif", column="landcover", test=test)
    assert not [w for w in caught if "labels" in str(w.message)], [str(w.message) for w in caught]
    assert m["test"]["accuracy"] == 1.0 and m["test"]["balanced_accuracy"] == 1.0


def test_a_rank_without_scenes_says_so_and_writes_nothing(tmp_path, conv_bb, capsys):
    (tmp_path / "scenes").mkdir()
    for i in range(2):
        write_tif(tmp_path / "scenes" / f"s{i}.tif", random_image(32, 32, seed=i))
    with warnings.catch_warnings(record=True) as caught:  # a warning: the CLI shows it as "geodino: warning: ..."
        warnings.simplefilter("always")
        assert embed_scenes(tmp_path / "scenes", backbone=conv_bb, out=tmp_path / "feats", world_size=8, rank=6,
                            **FAST) == []  # fmt: skip
    assert [str(w.message) for w in caught] == [
        "rank 6 of --world-size 8 has no scene: the run has 2 scenes, done by ranks 0..1; nothing to do here"
    ]
    assert capsys.readouterr().err == "" and not (tmp_path / "feats").exists()


def test_missing_mosaic_names_the_per_crs_mosaics(capsys, tmp_path):
    feats = tmp_path / "feats"
    feats.mkdir()
    for name in ("mosaic_EPSG_32632.vrt", "mosaic_EPSG_32633.vrt"):
        (feats / name).write_text("<VRTDataset/>")
    one_line_exit_2(
        capsys, tmp_path, "embed", "pca", feats / "mosaic.vrt", "--out", tmp_path / "p.tif",
        expect=("mosaic.vrt does not exist, but", "mosaic_EPSG_32632.vrt, mosaic_EPSG_32633.vrt",
                "one mosaic per CRS"),
    )  # fmt: skip
