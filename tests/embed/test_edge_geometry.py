"""Products on unusual grids and geometries: south-up and rotated rasters, engineering (LOCAL_CS) CRSs and rasters
without a CRS, null / empty / edge-touching geometries, points and lines, and similarity rounding."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest
from affine import Affine

from geodino.embed import similarity_map, zonal_embeddings
from geodino.embed.classify import classify_map
from geodino.errors import InputError

SOUTH_UP = Affine(40.0, 0.0, 500000.0, 0.0, 40.0, 4000000.0)  # positive pixel height: row 0 is the southern edge
ROTATED = Affine.translation(500000.0, 4000000.0) @ Affine.rotation(20.0) @ Affine.scale(40.0, -40.0)
NORTH_UP = Affine(40.0, 0.0, 500000.0, 0.0, -40.0, 4000800.0)
LOCAL_WKT = 'LOCAL_CS["Local Coordinates (m)",UNIT["metre",1],AXIS["Easting",EAST],AXIS["Northing",NORTH]]'


def apply_affine(transform: Affine, x, y):
    """`transform` on points (arrays too), written out (affine 3 deprecates `*`)."""
    a, b, c, d, e, f = tuple(transform)[:6]
    return a * x + b * y + c, d * x + e * y + f


def feature_raster(path: Path, feats: np.ndarray, transform: Affine, crs: str | None = "EPSG:32633") -> Path:
    """A float32 feature raster with the backbone record `geodino embed` writes, on any grid and CRS."""
    from tests.embed import test_products

    return test_products.feature_raster(path, feats, crs, transform=transform)


def features(h: int = 20, w: int = 30, d: int = 6, seed: int = 0) -> np.ndarray:
    """Random vectors (every cell its own), a nodata block at rows 0-2, columns 0-2."""
    f = np.random.default_rng(seed).normal(size=(d, h, w)).astype(np.float32)
    f[:, :3, :3] = np.nan
    return f


def centre_mask(geom, transform: Affine, shape: tuple[int, int]) -> np.ndarray:
    """Cells whose centre lies inside `geom`, by shapely point-in-polygon on the cell centres (independent of GDAL)."""
    import shapely

    rows, cols = np.mgrid[0 : shape[0], 0 : shape[1]]
    x, y = apply_affine(transform, cols + 0.5, rows + 0.5)
    return shapely.contains_xy(geom, x, y)


def polygons_on(transform: Affine) -> list:
    """Three polygons well inside a 20 x 30 raster on `transform` (one over the nodata corner), as world polygons
    built from pixel coordinates so they land inside whatever the grid's orientation."""
    from shapely.geometry import Polygon

    def poly(pts):
        return Polygon([apply_affine(transform, *p) for p in pts])

    return [
        poly([(2.3, 4.2), (9.6, 4.2), (9.6, 11.7), (2.3, 11.7)]),
        poly([(15.2, 1.4), (27.1, 3.3), (24.6, 17.8), (13.9, 15.2)]),  # a skewed quadrilateral
        poly([(0.4, 0.4), (5.3, 0.4), (5.3, 5.2), (0.4, 5.2)]),  # over the nodata corner: some cells valid
    ]


@pytest.mark.parametrize("transform", [SOUTH_UP, ROTATED], ids=["south_up", "rotated"])
def test_zonal_means_on_south_up_and_rotated_rasters_match_an_independent_mask(tmp_path, transform):
    """`from_bounds` refused a positive pixel height and a broad except made every polygon "outside"; the cells are
    now those `rasterio.features.geometry_mask` (full raster) and a shapely cell-centre test select."""
    import geopandas as gpd
    from rasterio.features import geometry_mask

    f = features()
    src = feature_raster(tmp_path / "f.tif", f, transform)
    geoms = polygons_on(transform)
    gpd.GeoDataFrame({"id": [0, 1, 2]}, geometry=geoms, crs="EPSG:32633").to_file(tmp_path / "p.gpkg")
    valid = ~np.isnan(f).any(0)
    for all_touched in (False, True):
        res = gpd.read_parquet(
            zonal_embeddings(src, tmp_path / "p.gpkg", tmp_path / f"z{all_touched}.parquet", all_touched=all_touched)
        )
        assert list(res["status"]) == ["ok", "ok", "ok"]
        for g, geom in enumerate(geoms):
            inside = geometry_mask(
                [geom], out_shape=f.shape[1:], transform=transform, invert=True, all_touched=all_touched
            )
            if not all_touched:
                np.testing.assert_array_equal(inside, centre_mask(geom, transform, f.shape[1:]))
            m = inside & valid
            assert res["n_cells"][g] == m.sum() > 0
            np.testing.assert_allclose(np.asarray(res["embedding"][g]), f[:, m].mean(1), rtol=1e-5, atol=1e-6)


# two tiny classes in one block of labels: no cross-validation, as said
@pytest.mark.filterwarnings("ignore:no cross-validation:UserWarning")
@pytest.mark.parametrize("transform", [SOUTH_UP, ROTATED], ids=["south_up", "rotated"])
def test_similar_polygon_and_classify_polygons_on_south_up_and_rotated_rasters(tmp_path, transform):
    """`similar --polygon` said the polygons "cover no valid cell" and `classify` "3 outside it" on a south-up
    raster; both now read the polygons' cells."""
    import geopandas as gpd
    import rasterio
    from rasterio.features import geometry_mask

    f = features()
    src = feature_raster(tmp_path / "f.tif", f, transform)
    geoms = polygons_on(transform)
    gdf = gpd.GeoDataFrame({"cls": ["a", "b", "a"]}, geometry=geoms, crs="EPSG:32633")
    gdf.iloc[[0]].to_file(tmp_path / "q.gpkg")
    with rasterio.open(similarity_map(src, tmp_path / "s.tif", polygon=tmp_path / "q.gpkg")) as ds:
        s = ds.read(1)
    inside = geometry_mask([geoms[0]], out_shape=f.shape[1:], transform=transform, invert=True, all_touched=True)
    q = f[:, inside].mean(1)
    u = f / np.linalg.norm(f, axis=0)
    expected = np.einsum("d,dhw->hw", q / np.linalg.norm(q), u)
    np.testing.assert_allclose(s[3:, 3:], expected[3:, 3:], atol=1e-5)
    gdf.to_file(tmp_path / "labels.gpkg")
    metrics = classify_map(src, tmp_path / "labels.gpkg", tmp_path / "c.tif", column="cls")
    cells = {c: v["cells"] for c, v in metrics["train"].items()}
    valid = ~np.isnan(f).any(0)
    centre = [geometry_mask([g], out_shape=f.shape[1:], transform=transform, invert=True) & valid for g in geoms]
    assert cells == {"a": int(centre[0].sum() + centre[2].sum()), "b": int(centre[1].sum())}


def test_outside_bounds_print_low_to_high_on_a_south_up_raster(tmp_path):
    """The extent in "outside" messages read `y 4000800..4000000` on a south-up raster."""
    import geopandas as gpd
    from shapely.geometry import box

    src = feature_raster(tmp_path / "f.tif", features(), SOUTH_UP)
    gpd.GeoDataFrame(geometry=[box(0, 0, 10, 10)], crs="EPSG:32633").to_file(tmp_path / "far.gpkg")
    extent = r"\(CRS EPSG:32633, bounds x 500000\.\.501200, y 4000000\.\.4000800\)"
    with pytest.raises(InputError, match=r"the 1 polygon in .* lies outside the feature raster .*" + extent):
        zonal_embeddings(src, tmp_path / "far.gpkg", tmp_path / "z.parquet")
    with pytest.raises(InputError, match=r"query point \(0\.0, 0\.0\) lies outside .*" + extent):
        similarity_map(src, tmp_path / "s.tif", point=(0.0, 0.0))
    with pytest.raises(InputError, match=r"none of the 1 labels .*; " + extent[2:]):
        gpd.GeoDataFrame({"c": ["a"]}, geometry=[box(0, 0, 10, 10)], crs="EPSG:32633").to_file(tmp_path / "l.gpkg")
        classify_map(src, tmp_path / "l.gpkg", tmp_path / "c.tif", column="c")


def test_engineering_crs_rasters_say_which_crs_cannot_be_transformed(tmp_path, capsys):
    """A LOCAL_CS raster with EPSG:4326 points, polygons or labels, and `change --resample` onto an EPSG raster,
    ended in pyproj's ProjError / GDAL's CPLE_NotSupportedError tracebacks; now one line naming both CRSs."""
    import geopandas as gpd
    from shapely.geometry import Point, box

    from tests.test_bad_inputs import one_line_exit_2

    local = feature_raster(tmp_path / "local.tif", features(), Affine(1, 0, 0, 0, -1, 20), crs=LOCAL_WKT)
    utm = feature_raster(tmp_path / "utm.tif", features(), NORTH_UP)
    gpd.GeoDataFrame({"cls": ["a"]}, geometry=[box(1, 1, 5, 5)], crs="EPSG:4326").to_file(tmp_path / "z.gpkg")
    pts = gpd.GeoDataFrame({"cls": ["a", "b"]}, geometry=[Point(10, 10), Point(11, 11)], crs="EPSG:4326")
    pts.to_file(tmp_path / "pts.gpkg")
    name = "(Engineering CRS 'Local Coordinates (m)'): PROJ has no coordinate operation between them"
    one_line_exit_2(
        capsys, tmp_path, "embed", "similar", local, "--point=10,10", "--point-crs", "EPSG:4326",
        "--out", tmp_path / "s.tif",
        expect=(f"--point-crs EPSG:4326 (point_crs= in Python) cannot be transformed to the CRS of feature raster "
                f"{local} {name}",
                "give --point 10,10 in the raster's own coordinates (bounds x 0..30, y 0..20) with a bare "
                "--point-crs or none"),
    )  # fmt: skip
    for argv, what, file in (
        (["zonal", local, tmp_path / "z.gpkg", "--out", tmp_path / "z.parquet"], "polygons", "z.gpkg"),
        (["similar", local, "--polygon", tmp_path / "z.gpkg", "--out", tmp_path / "s.tif"], "polygons", "z.gpkg"),
        (["classify", local, tmp_path / "pts.gpkg", "--column", "cls", "--out", tmp_path / "c.tif"], "labels",
         "pts.gpkg"),
    ):  # fmt: skip
        one_line_exit_2(
            capsys, tmp_path, "embed", *argv,
            expect=(f"{what} in {tmp_path / file} (EPSG:4326) cannot be transformed to the CRS of feature raster "
                    f"{local} {name}", f"give {what} in the raster's own CRS"),
        )  # fmt: skip
    one_line_exit_2(
        capsys, tmp_path, "embed", "change", local, utm, "--resample", "--out", tmp_path / "ch.tif",
        expect=(f"feature raster {utm} (EPSG:32633) cannot be resampled onto the grid of {local} {name}",
                "embed both dates from inputs in one CRS"),
    )  # fmt: skip


def test_point_crs_on_a_raster_without_crs_says_it_cannot_place_the_point(tmp_path):
    """`--point-crs EPSG:4326` on a raster embedded with --allow-no-crs said "lies outside ... CRS none", or was
    ignored for a point inside the raster's own coordinates; now it says why it cannot place the point."""
    src = feature_raster(tmp_path / "f.tif", features(), Affine(1, 0, 0, 0, -1, 20), crs=None)
    for point in ((10.0, 10.0), (100.0, 45.0)):
        with pytest.raises(
            InputError,
            match=r"feature raster .*f\.tif has no CRS, so --point-crs EPSG:4326 \(point_crs= in Python\) cannot "
            rf"place the point {point[0]:g},{point[1]:g} on it; give --point in the raster's own coordinates "
            r"\(bounds x 0\.\.30, y 0\.\.20\) with a bare --point-crs or none \(point_crs='raster' or None in "
            r"Python\)$",
        ):
            similarity_map(src, tmp_path / "s.tif", point=point, point_crs="EPSG:4326")
    assert similarity_map(src, tmp_path / "s.tif", point=(10.0, 10.0)).exists()  # raster coordinates: fine


def test_zonal_statuses_of_null_empty_edge_point_and_line_geometries(tmp_path):
    """Null and empty geometries are `no_geometry` (were `outside`, with matplotlib's empty-geometry warning); a box
    touching the raster's right edge from outside is `outside` in its own CRS and in EPSG:4326 (was `nodata`, 0
    cells, or `too_small` after reprojection); a point is the cell it falls in, a line every cell it touches."""
    import geopandas as gpd
    from rasterio.features import geometry_mask
    from shapely.geometry import LineString, Point, Polygon, box

    f = features()
    src = feature_raster(tmp_path / "f.tif", f, NORTH_UP)
    right = 500000.0 + 30 * 40
    line = LineString([(500100, 4000100), (500900, 4000700)])
    rows = {
        "ok": box(500200, 4000200, 500600, 4000600),
        "null": None,
        "empty": Polygon(),
        "edge": box(right, 4000100, right + 400, 4000700),
        "point": Point(500500, 4000500),
        "line": line,
    }
    gdf = gpd.GeoDataFrame({"k": list(rows)}, geometry=list(rows.values()), crs="EPSG:32633")
    gdf.to_file(tmp_path / "odd.gpkg")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")  # none of matplotlib's "composed of empty geometries", geopandas' notna()
        res = gpd.read_parquet(zonal_embeddings(src, tmp_path / "odd.gpkg", tmp_path / "z.parquet"))
    # only zonal's own warning (the CLI shows it as "geodino: warning: ...")
    assert [(w.category, str(w.message)) for w in caught] == [
        (
            UserWarning,
            "3 of 6 polygons have no embedding ({'no_geometry': 2, 'outside': 1}); first fids: 2, 3, 4 (the "
            "layer's feature ids, as QGIS shows them)",
        )
    ]
    assert list(res["status"]) == ["ok", "no_geometry", "no_geometry", "outside", "ok", "ok"]
    col, row = apply_affine(~NORTH_UP, 500500, 4000500)
    np.testing.assert_allclose(np.asarray(res["embedding"][4]), f[:, int(row), int(col)], rtol=1e-6)
    touched = geometry_mask([line], out_shape=f.shape[1:], transform=NORTH_UP, invert=True, all_touched=True)
    assert res["n_cells"][4] == 1 and res["n_cells"][5] == touched.sum() > 5
    np.testing.assert_allclose(np.asarray(res["embedding"][5]), f[:, touched].mean(1), rtol=1e-5, atol=1e-6)
    gdf.iloc[[3]].to_crs("EPSG:4326").to_file(tmp_path / "edge4326.gpkg")
    gdf.iloc[[0, 3]].to_crs("EPSG:4326").to_file(tmp_path / "two4326.gpkg")
    with pytest.warns(UserWarning, match=r"1 of 2 polygons has no embedding \(\{'outside': 1\}\)"):
        two = gpd.read_parquet(
            zonal_embeddings(src, tmp_path / "two4326.gpkg", tmp_path / "t.parquet", all_touched=True)
        )
    assert list(two["status"]) == ["ok", "outside"]
    with pytest.raises(InputError, match=r"the 1 polygon in .*edge4326\.gpkg lies outside the feature raster"):
        zonal_embeddings(src, tmp_path / "edge4326.gpkg", tmp_path / "e.parquet")
    gdf.iloc[[1, 2, 3]].to_file(tmp_path / "none_on.gpkg")  # two without geometry, one outside
    with pytest.raises(
        InputError, match=r"1 polygon in .* with a geometry lies outside .*\(the other 2 have no geometry"
    ):
        zonal_embeddings(src, tmp_path / "none_on.gpkg", tmp_path / "n.parquet")


def test_a_file_of_only_null_geometries_says_so(tmp_path, capsys):
    """It said "lies outside the feature raster ... check that they cover the same area"."""
    import geopandas as gpd
    from shapely.geometry import Polygon

    from tests.test_bad_inputs import one_line_exit_2

    src = feature_raster(tmp_path / "f.tif", features(), NORTH_UP)
    gpd.GeoDataFrame({"k": ["a", "b"]}, geometry=[None, Polygon()], crs="EPSG:32633").to_file(tmp_path / "null.gpkg")
    expect = f"polygons file {tmp_path / 'null.gpkg'} has no geometries: all 2 rows have none (null or empty)"
    one_line_exit_2(capsys, tmp_path, "embed", "zonal", src, tmp_path / "null.gpkg", "--out", tmp_path / "z.parquet",
                    expect=(expect,))  # fmt: skip
    one_line_exit_2(capsys, tmp_path, "embed", "classify", src, tmp_path / "null.gpkg", "--column", "k", "--out",
                    tmp_path / "c.tif", expect=(expect.replace("polygons", "labels"),))  # fmt: skip


# two tiny classes in one block of labels: no cross-validation, as said
@pytest.mark.filterwarnings("ignore:no cross-validation:UserWarning")
def test_lines_label_the_cells_they_touch_and_collections_are_refused(tmp_path):
    """classify refused lines while zonal averaged them: both now read a line as every cell it touches; a
    GeometryCollection is refused by both in one line."""
    import geopandas as gpd
    from rasterio.features import geometry_mask
    from shapely.geometry import GeometryCollection, LineString, Point

    f = features()
    src = feature_raster(tmp_path / "f.tif", f, NORTH_UP)
    lines = [LineString([(500200, 4000200), (500600, 4000250)]), LineString([(500700, 4000600), (501100, 4000500)])]
    gpd.GeoDataFrame({"c": ["a", "b"]}, geometry=lines, crs="EPSG:32633").to_file(tmp_path / "lines.gpkg")
    metrics = classify_map(src, tmp_path / "lines.gpkg", tmp_path / "c.tif", column="c")
    touched = [geometry_mask([g], out_shape=f.shape[1:], transform=NORTH_UP, invert=True, all_touched=True)
               for g in lines]  # fmt: skip
    assert {c: v["cells"] for c, v in metrics["train"].items()} == {"a": touched[0].sum(), "b": touched[1].sum()}
    coll = GeometryCollection([Point(500500, 4000500), lines[0]])
    gpd.GeoDataFrame({"c": ["a"]}, geometry=[coll], crs="EPSG:32633").to_file(tmp_path / "coll.geojson")
    with pytest.raises(InputError, match=r"polygons in .*coll\.geojson hold GeometryCollection geometries; use "
                       r"points, lines or polygons"):  # fmt: skip
        zonal_embeddings(src, tmp_path / "coll.geojson", tmp_path / "z.parquet")
    with pytest.raises(InputError, match=r"labels in .*coll\.geojson hold GeometryCollection geometries"):
        classify_map(src, tmp_path / "coll.geojson", tmp_path / "c2.tif", column="c")


def test_similarity_is_clamped_to_one_at_the_query_cell(tmp_path):
    """float32 rounding gave 1.0000002 at the query cell (cell (1, 1) of these vectors)."""
    import rasterio

    f = np.random.default_rng(0).normal(size=(16, 8, 8)).astype(np.float32)
    src = feature_raster(tmp_path / "f.tif", f, NORTH_UP)
    x, y = apply_affine(NORTH_UP, 1.5, 1.5)
    with rasterio.open(similarity_map(src, tmp_path / "s.tif", point=(x, y))) as ds:
        s = ds.read(1)
    assert s.max() <= 1.0 and s.min() >= -1.0 and s[1, 1] == pytest.approx(1.0, abs=1e-6)
