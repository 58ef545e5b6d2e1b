"""Segmentation masks from a vector file: `train_masks: buildings.gpkg` (GeoPackage, GeoJSON, Shapefile, ...).

Before: a vector file given as the masks was taken for a mask image and every image was refused with "no mask for N
images ... name each mask like its image", though footprints digitised in a GIS are the labels most segmentation
sets start from. Now the polygons are reprojected to each image's CRS and burnt onto its grid (pixel centres), with
class ids or class names from `mask_column`; polygons that fall on no image, and names missing from `class_names`,
are refused in one line.
"""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pytest
import rasterio
from rasterio.transform import from_origin
from shapely.geometry import box

from geodino.errors import ConfigError, InputError
from geodino.eval.segmentation import SegmentationProbeConfig, run_segmentation
from geodino.eval.segmentation_data import load_folder

ORIGIN = (300000.0, 4000000.0)  # UTM 11N, 1 m pixels


def _image(path, origin=ORIGIN):
    profile = {"driver": "GTiff", "width": 32, "height": 32, "count": 3, "dtype": "uint8", "crs": "EPSG:32611"}
    with rasterio.open(path, "w", transform=from_origin(*origin, 1.0, 1.0), **profile) as dst:
        dst.write(np.full((3, 32, 32), 90, np.uint8))


def _polygons(path, crs="EPSG:4326", names=("building", "shed")):
    """A 10x10 m building at pixels rows 2-11, cols 4-13 and a 4x4 m shed at rows 20-23, cols 20-23 of the image at
    ORIGIN, written in `crs` (another CRS than the image's)."""
    x0, y0 = ORIGIN
    geoms = [box(x0 + 4, y0 - 12, x0 + 14, y0 - 2), box(x0 + 20, y0 - 24, x0 + 24, y0 - 20)]
    gdf = gpd.GeoDataFrame({"kind": list(names), "code": [1, 2]}, geometry=geoms, crs="EPSG:32611")
    gdf.to_crs(crs).to_file(path)
    return path


@pytest.fixture
def scene(tmp_path):
    (tmp_path / "images").mkdir()
    _image(tmp_path / "images" / "a.tif")
    return tmp_path


@pytest.mark.parametrize("suffix", [".gpkg", ".geojson", ".shp"])
def test_polygons_in_another_crs_are_burnt_onto_the_image_grid(scene, suffix):
    vec = _polygons(scene / f"buildings{suffix}")
    cfg = SegmentationProbeConfig(num_classes=3, mask_column="code")
    mask = load_folder(str(scene / "images"), str(vec), cfg)[0]["mask"].numpy()
    assert (mask[2:12, 4:14] == 1).all() and (mask[20:24, 20:24] == 2).all()
    assert int((mask == 1).sum()) == 100 and int((mask == 2).sum()) == 16  # pixel centres, not touched pixels
    assert int((mask == 0).sum()) == 32 * 32 - 116


def test_class_names_and_no_column(scene):
    vec = _polygons(scene / "b.geojson")
    named = SegmentationProbeConfig(num_classes=3, mask_column="kind", class_names=["background", "shed", "building"])
    mask = load_folder(str(scene / "images"), str(vec), named)[0]["mask"].numpy()
    assert (mask[2:12, 4:14] == 2).all() and (mask[20:24, 20:24] == 1).all()
    one = load_folder(str(scene / "images"), str(vec), SegmentationProbeConfig(num_classes=2))[0]["mask"].numpy()
    assert int(one.sum()) == 116 and one.max() == 1


def test_bad_polygons_are_refused_in_one_line(scene, tmp_path):
    vec = _polygons(scene / "b.gpkg")
    with pytest.raises(ConfigError, match=r"holds names \(building, shed\).*class_names"):
        load_folder(str(scene / "images"), str(vec), SegmentationProbeConfig(num_classes=3, mask_column="kind"))
    with pytest.raises(ConfigError, match=r"not a column of .*its columns: kind, code"):
        load_folder(str(scene / "images"), str(vec), SegmentationProbeConfig(num_classes=3, mask_column="typo"))
    (tmp_path / "far").mkdir()
    _image(tmp_path / "far" / "a.tif", origin=(ORIGIN[0] + 5000, ORIGIN[1]))
    with pytest.raises(InputError, match=r"no polygon of .* lies on any of the 1 images"):
        load_folder(str(tmp_path / "far"), str(vec), SegmentationProbeConfig(num_classes=2))


def test_the_probe_trains_on_vector_masks(scene, tmp_path):
    (scene / "images" / "b.tif").write_bytes((scene / "images" / "a.tif").read_bytes())
    vec = _polygons(scene / "b.shp")
    cfg = SegmentationProbeConfig(
        train_images=str(scene / "images"), train_masks=str(vec), mask_column="code", num_classes=3,
        val_fraction=0.5, crop_size=32, epochs=1, progress=False, plots=0,
    )  # fmt: skip
    with pytest.warns(UserWarning):  # a head this short is barely trained
        m = run_segmentation("arch:vit_tiny?patch_size=16&seed=0", cfg, tmp_path / "out")
    assert 0.0 <= m["mIoU"] <= 1.0 and m["pixel_acc"] > 0


def _with(scene, name, **columns_or_geometry):
    """b.gpkg's two polygons with some columns (or the geometry) replaced, written to `name`."""
    gdf = gpd.read_file(_polygons(scene / "b.gpkg"))
    for key, value in columns_or_geometry.items():
        gdf[key] = value
    gdf.to_file(scene / name)
    return scene / name


def test_points_and_lines_are_refused_in_one_line(scene):
    """Building centroids (or outlines) given as masks were burnt as one pixel each (or a thread of pixels), and the
    probe trained on almost no labelled pixels without a word."""
    points = _with(
        scene, "centroids.gpkg", geometry=gpd.read_file(_polygons(scene / "p.gpkg", crs="EPSG:32611")).geometry.centroid
    )
    with pytest.raises(InputError, match=r"centroids.gpkg holds 2 Point geometries of 2; .*buffer points or lines"):
        load_folder(str(scene / "images"), str(points), SegmentationProbeConfig(num_classes=2))
    lines = _with(
        scene, "outlines.gpkg", geometry=gpd.read_file(_polygons(scene / "p.gpkg", crs="EPSG:32611")).geometry.boundary
    )
    with pytest.raises(InputError, match=r"holds 2 LineString geometries of 2"):
        load_folder(str(scene / "images"), str(lines), SegmentationProbeConfig(num_classes=2))


def test_class_ids_that_are_not_whole_numbers_are_not_called_names(scene):
    """A column of 1.5 (or true/false) was said to hold names, with class_names: [background, 1.5, 2.0] suggested."""
    frac = _with(scene, "frac.gpkg", code=[1.5, 2.0])
    with pytest.raises(ConfigError, match=r"holds numbers that are not whole \(1\.5\), not class ids") as info:
        load_folder(str(scene / "images"), str(frac), SegmentationProbeConfig(num_classes=3, mask_column="code"))
    assert "class_names: [" not in str(info.value)
    flags = _with(scene, "flags.gpkg", code=[True, False])
    with pytest.raises(ConfigError, match=r"holds true/false values, not class ids"):
        load_folder(str(scene / "images"), str(flags), SegmentationProbeConfig(num_classes=3, mask_column="code"))
    whole = _with(scene, "whole.gpkg", code=[1.0, 2.0])  # floats of whole values stay class ids
    mask = load_folder(str(scene / "images"), str(whole), SegmentationProbeConfig(num_classes=3, mask_column="code"))
    assert int((mask[0]["mask"].numpy() == 2).sum()) == 16


def test_a_multi_layer_file_says_which_layer_in_its_own_words(scene):
    """pyogrio's 'Specify layer parameter to avoid this warning' named an option the probe does not have."""
    vec = _polygons(scene / "two.gpkg")
    gpd.read_file(vec).iloc[:1].to_file(vec, layer="sheds")
    with pytest.warns(UserWarning) as caught:
        mask = load_folder(str(scene / "images"), str(vec), SegmentationProbeConfig(num_classes=2))[0]["mask"]
    texts = [str(w.message) for w in caught]
    assert not any("layer parameter" in t for t in texts), texts
    assert any("has 2 layers (two, sheds); reading the first, 'two'; to train on another" in t for t in texts), texts
    assert int(mask.numpy().sum()) == 116


def test_mask_layer_picks_a_layer_and_names_the_layers_when_wrong(scene, recwarn):
    """A GeoPackage's second layer could not be trained on (the first was read, the note said to split the file)."""
    vec = _polygons(scene / "two.gpkg")
    gpd.read_file(vec).iloc[1:].to_file(vec, layer="sheds")  # the 4 x 4 m shed alone
    cfg = SegmentationProbeConfig(num_classes=2, mask_layer="sheds")
    mask = load_folder(str(scene / "images"), str(vec), cfg)[0]["mask"].numpy()
    assert int(mask.sum()) == 16 and (mask[20:24, 20:24] == 1).all()
    assert not [w for w in recwarn if "layers" in str(w.message)]  # a named layer: no first-layer note
    with pytest.raises(ConfigError, match=r"^mask_layer='shed' is not a layer of .*two\.gpkg; did you mean 'sheds'\? "
                       r"its layers: two, sheds$"):  # fmt: skip
        load_folder(str(scene / "images"), str(vec), SegmentationProbeConfig(num_classes=2, mask_layer="shed"))
    parquet = scene / "b.parquet"
    gpd.read_file(vec).to_parquet(parquet)
    with pytest.raises(
        ConfigError, match=r"^mask_layer='two': .*b\.parquet has no layers to pick from; drop mask_layer"
    ):
        load_folder(str(scene / "images"), str(parquet), SegmentationProbeConfig(num_classes=2, mask_layer="two"))
    (scene / "m").mkdir()
    (scene / "m" / "a.png").write_bytes(b"")
    with pytest.raises(
        ConfigError, match=r"^mask_layer='sheds' applies to a vector file of polygons .*drop mask_layer"
    ):
        load_folder(str(scene / "images"), str(scene / "m"), cfg)


@pytest.mark.filterwarnings("ignore::rasterio.errors.NotGeoreferencedWarning")  # writing the PNGs
def test_every_image_is_checked_for_a_georeference_before_training(scene):
    """A PNG among GeoTIFFs was refused only when its mask was burnt: after the head trained, when it was held out
    for validation (the check stopped at the first image the polygons lie on)."""
    for name in ("x.png", "y.png"):
        with rasterio.open(
            scene / "images" / name, "w", driver="PNG", width=32, height=32, count=3, dtype="uint8"
        ) as d:
            d.write(np.zeros((3, 32, 32), np.uint8))
    vec = _polygons(scene / "b.gpkg")
    with pytest.raises(InputError, match=r"image .*x\.png \(and 1 more: y\.png\) has no georeference"):
        load_folder(str(scene / "images"), str(vec), SegmentationProbeConfig(num_classes=2))
    (scene / "images" / "x.png").unlink()
    (scene / "images" / "y.png").write_bytes(b"not an image")  # left to the image reader's one line
    samples = load_folder(str(scene / "images"), str(vec), SegmentationProbeConfig(num_classes=2))
    assert len(samples) == 2
