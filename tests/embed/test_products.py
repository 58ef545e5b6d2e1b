"""Products on feature rasters: PCA colour map, k-means classes, similarity, zonal embeddings in GeoParquet."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from rasterio.transform import from_origin

from geodino.embed import cluster_map, pca_map, similarity_map, zonal_embeddings
from geodino.errors import InputError

T = from_origin(500000.0, 4000000.0, 40.0, 40.0)


def feature_raster(
    path: Path, feats: np.ndarray, crs: str | None = "EPSG:32633", *, transform=T, dtype: str = "float32", nodata=np.nan
) -> Path:
    """A feature raster with the backbone record `geodino embed` writes (the products require it): float32 unless
    `dtype`, on `transform` (default T: 40 m cells), in `crs` (a CRS string, a LOCAL_CS WKT, or None)."""
    import rasterio
    from rasterio.crs import CRS

    d, h, w = feats.shape
    crs_ = None if crs is None else CRS.from_wkt(crs) if crs.startswith("LOCAL_CS") else crs
    with rasterio.open(
        path, "w", driver="GTiff", height=h, width=w, count=d, dtype=dtype, crs=crs_, transform=transform, nodata=nodata
    ) as dst:
        dst.write(feats.astype(dtype))
        dst.update_tags(GEODINO_MODEL_SPEC="arch:test", GEODINO_MODEL_FINGERPRINT="abc123")
    return path


@pytest.fixture
def two_class(tmp_path) -> tuple[Path, np.ndarray]:
    """Left half one vector, right half another (plus noise); a nodata corner."""
    from tests.embed.conftest import two_regions

    f = two_regions(0.01)
    f[:, :3, :3] = np.nan
    return feature_raster(tmp_path / "feat.tif", f), f


def test_pca_map(tmp_path, two_class):
    import rasterio

    src, _ = two_class
    out = pca_map(src, tmp_path / "pca.tif", png=tmp_path / "pca.png")
    with rasterio.open(out) as ds:
        assert ds.count == 3 and ds.dtypes[0] == "uint8" and ds.nodata == 0 and ds.transform == T
        rgb = ds.read()
    assert (rgb[:, :3, :3] == 0).all() and (rgb[:, 3:, :] > 0).all()
    # the first component separates the halves
    left, right = rgb[0, 5:, :15].astype(int), rgb[0, 5:, 15:].astype(int)
    assert abs(left.mean() - right.mean()) > 150
    assert (tmp_path / "pca.png").stat().st_size > 0


def test_cluster_map(tmp_path, two_class):
    import rasterio

    src, _ = two_class
    out = cluster_map(src, tmp_path / "k.tif", k=2, png=tmp_path / "k.png")
    with rasterio.open(out) as ds:
        lab = ds.read(1)
        cmap = ds.colormap(1)
        assert ds.nodata == 255
    assert (lab[:3, :3] == 255).all()
    assert len(np.unique(lab[5:, :15])) == 1 and len(np.unique(lab[:, 15:])) == 1 and lab[5, 0] != lab[5, 20]
    assert cmap[0] != cmap[1]
    with pytest.raises(InputError, match="k=1"):
        cluster_map(src, tmp_path / "k1.tif", k=1)


def test_pca_and_cluster_quicklooks_do_not_paint_nodata_black(tmp_path):
    """The PCA and cluster PNGs painted nodata (0, 0, 0): black, which the darkest PCA colours (1..255 per band)
    cannot be told from, and unlisted. As the class and ramp quick-looks do, nodata is now a legend entry in a
    framed figure: grey hatching on the PCA (no flat colour is free of PCA colours), white on the cluster map (its
    palette has no white); here half the raster is nodata, so half the image was black."""
    import rasterio
    from PIL import Image

    rng = np.random.default_rng(0)
    f = np.full((8, 20, 40), np.nan, np.float32)
    f[:, :, 20:30] = rng.normal(size=8)[:, None, None]
    f[:, :, 30:] = rng.normal(size=8)[:, None, None]
    f[:, :, 20:] += rng.normal(scale=0.01, size=(8, 20, 20))
    src = feature_raster(tmp_path / "half.tif", f)

    def shares(png: Path, colour: tuple[int, int, int], tol: int = 2) -> tuple[float, float]:
        """Share of the image's pixels near black, and near `colour`."""
        rgb = np.asarray(Image.open(png).convert("RGB")).reshape(-1, 3).astype(int)
        return float((rgb.max(1) <= 1).mean()), float((np.abs(rgb - colour).max(1) <= tol).mean())

    pca_map(src, tmp_path / "pca.tif", png=tmp_path / "pca.png")
    black, hatch = shares(tmp_path / "pca.png", (217, 217, 217))  # NODATA_HATCH's 0.85 grey
    assert black < 0.05 and hatch > 0.15
    cluster_map(src, tmp_path / "k.tif", k=2, png=tmp_path / "k.png")
    black, white = shares(tmp_path / "k.png", (255, 255, 255))
    assert black < 0.05 and white > 0.3
    with rasterio.open(tmp_path / "k.tif") as ds:
        cmap = ds.colormap(1)
    for k in (0, 1):  # both clusters drawn in their colour-table colour (the legend and .qml share them)
        assert shares(tmp_path / "k.png", cmap[k][:3], tol=0)[1] > 0.05


def test_similarity_map_point_and_polygon(tmp_path, two_class):
    import geopandas as gpd
    import rasterio
    from shapely.geometry import box

    src, _ = two_class
    x, y = 500000.0 + 40 * 5.5, 4000000.0 - 40 * 10.5  # cell (10, 5): left half
    out = similarity_map(src, tmp_path / "s.tif", point=(x, y))
    with rasterio.open(out) as ds:
        s = ds.read(1)
    assert np.isnan(s[:3, :3]).all()
    assert s[10, 5] == pytest.approx(1.0, abs=1e-5) and s[5:, :15].min() > 0.99 and s[:, 15:].max() < 0.9
    poly = gpd.GeoDataFrame(geometry=[box(500000 + 40 * 20, 4000000 - 40 * 15, 500000 + 40 * 25, 4000000 - 40 * 5)])
    poly.set_crs("EPSG:32633").to_file(tmp_path / "q.gpkg")
    with rasterio.open(similarity_map(src, tmp_path / "s2.tif", polygon=tmp_path / "q.gpkg")) as ds:
        s2 = ds.read(1)
    assert s2[:, 15:].min() > 0.99
    with pytest.raises(InputError, match="outside the feature raster"):
        similarity_map(src, tmp_path / "s3.tif", point=(0.0, 0.0))
    with pytest.raises(InputError, match="exactly one query"):
        similarity_map(src, tmp_path / "s4.tif")


def test_similar_records_the_crs_of_its_query_point(tmp_path):
    """GEODINO_QUERY held the --point numbers without --point-crs, so a lon,lat query read as map metres lay far
    outside the raster. GEODINO_QUERY_CRS now says the CRS (as given, else the raster's): from the tags alone the
    query goes back to its cell, and its vector is the one every other cell was compared with."""
    import ast

    import geopandas as gpd
    import rasterio
    from pyproj import Transformer
    from shapely.geometry import box

    feats = np.random.default_rng(1).normal(size=(8, 20, 30)).astype(np.float32)  # every cell its own vector
    src = feature_raster(tmp_path / "f.tif", feats)
    x, y = 500000.0 + 40 * 7.5, 4000000.0 - 40 * 12.5  # cell (12, 7)
    lon, lat = Transformer.from_crs("EPSG:32633", "EPSG:4326", always_xy=True).transform(x, y)
    geo = similarity_map(src, tmp_path / "geo.tif", point=(lon, lat), point_crs="EPSG:4326")
    utm = similarity_map(src, tmp_path / "utm.tif", point=(x, y))
    for out, crs in ((geo, "EPSG:4326"), (utm, "EPSG:32633")):
        with rasterio.open(out) as ds:
            tags, s = ds.tags(), ds.read(1)
        assert tags["GEODINO_QUERY_CRS"] == crs
        qx, qy = ast.literal_eval(tags["GEODINO_QUERY"])
        mx, my = Transformer.from_crs(tags["GEODINO_QUERY_CRS"], "EPSG:32633", always_xy=True).transform(qx, qy)
        col, row = (int(np.floor(v)) for v in ~T * (mx, my))
        assert (row, col) == (12, 7) == np.unravel_index(np.nanargmax(s), s.shape)
        assert s[12, 7] == pytest.approx(1.0, abs=1e-5)
    gpd.GeoDataFrame(geometry=[box(500040, 3999600, 500200, 3999800)], crs="EPSG:32633").to_file(tmp_path / "q.gpkg")
    with rasterio.open(similarity_map(src, tmp_path / "poly.tif", polygon=tmp_path / "q.gpkg")) as ds:
        assert ds.tags()["GEODINO_QUERY"] == str(tmp_path / "q.gpkg") and "GEODINO_QUERY_CRS" not in ds.tags()


def test_zonal_embeddings(tmp_path, two_class):
    import geopandas as gpd
    from shapely.geometry import box

    src, f = two_class
    cell = lambda r0, c0, r1, c1: box(500000 + 40 * c0, 4000000 - 40 * r1, 500000 + 40 * c1, 4000000 - 40 * r0)
    polys = gpd.GeoDataFrame(
        {"name": ["left", "both", "outside", "nodata", "tiny"]},
        geometry=[
            cell(5, 2, 10, 6),  # 5x4 cells, left half
            cell(10, 13, 12, 17),  # 2x4 cells across the halves
            cell(100, 100, 110, 110),
            cell(0, 0, 2, 2),
            cell(15.1, 15.1, 15.3, 15.3),  # inside one cell but no cell centre
        ],
        crs="EPSG:32633",
    )
    path = tmp_path / "polys.geojson"
    polys.to_crs("EPSG:4326").to_file(path)  # another CRS: reprojected to the raster's
    with pytest.warns(UserWarning) as caught:  # a warning, not a line on stderr
        out = zonal_embeddings(src, path, tmp_path / "z.parquet")
    res = gpd.read_parquet(out)
    assert list(res["name"]) == ["left", "both", "outside", "nodata", "tiny"]
    assert list(res["status"]) == ["ok", "ok", "outside", "nodata", "too_small"]
    assert list(res["n_cells"]) == [20, 8, 0, 0, 0]
    np.testing.assert_allclose(np.asarray(res["embedding"][0]), f[:, 5:10, 2:6].mean((1, 2)), atol=1e-5)
    np.testing.assert_allclose(np.asarray(res["embedding"][1]), f[:, 10:12, 13:17].mean((1, 2)), atol=1e-5)
    assert res["embedding"][2] is None and res.crs.to_epsg() == 4326
    said = "\n".join(str(w.message) for w in caught)
    assert "3 of 5 polygons have no embedding" in said and "first fids: 2, 3, 4 (the layer's" in said
    assert said.endswith("; too_small: no cell centre inside, try --all-touched (all_touched=True)")  # its advice
    with pytest.warns(UserWarning, match="2 of 5 polygons have no embedding"):
        touched = gpd.read_parquet(zonal_embeddings(src, path, tmp_path / "t.parquet", all_touched=True))
    assert touched["status"][4] == "ok" and touched["n_cells"][4] == 1
    polys.iloc[[2]].to_file(tmp_path / "far.gpkg")
    with pytest.raises(InputError, match=r"the 1 polygon in .* lies outside the feature raster"):
        zonal_embeddings(src, tmp_path / "far.gpkg", tmp_path / "far.parquet")


def test_products_on_int8_zarr_and_cli(tmp_path, monkeypatch, capsys):
    import rasterio

    from geodino import cli
    from geodino.embed import embed_raster

    monkeypatch.setattr(cli, "COMMAND_MODULES", ("geodino.embed.commands",))
    from conftest import random_image, write_tif
    from toy_backbones import ConvBackbone

    src = write_tif(tmp_path / "in.tif", random_image(64, 96))
    feats = embed_raster(src, ConvBackbone(), tmp_path / "f.zarr", tile=32, overlap=8, dtype="int8", progress=False)
    capsys.readouterr()
    assert cli.main(["embed", "pca", str(feats), "--out", str(tmp_path / "p.tif")]) == 0
    assert capsys.readouterr().out == (
        f"pca: {tmp_path / 'p.tif'} (3-band uint8 COG of the first principal components), {tmp_path / 'p.qml'}, "
        f"{tmp_path / 'p.sld'}\n"
    )  # every file the line names (the .sld since 37c2bf0) exists
    assert (tmp_path / "p.qml").is_file() and (tmp_path / "p.sld").is_file()
    assert cli.main(["embed", "cluster", str(feats), "--out", str(tmp_path / "c.tif"), "--k", "3"]) == 0
    c = tmp_path / "c"
    assert capsys.readouterr().out == (
        f"cluster: {c}.tif (3 k-means classes, colour table), {c}.tif.aux.xml (class table: keep it with the .tif), "
        f"{c}.qml, {c}.sld\n"
    )
    assert all(Path(f"{c}{ext}").is_file() for ext in (".tif.aux.xml", ".qml", ".sld"))
    with rasterio.open(tmp_path / "c.tif") as ds:
        assert set(np.unique(ds.read(1))) <= {0, 1, 2} and ds.shape == (16, 24)
    code = cli.main(["embed", "similar", str(feats), "--out", str(tmp_path / "s.tif"), "--point", "1,2,3"])
    assert code == 2 and "must be two numbers, X Y or X,Y" in capsys.readouterr().err
    with rasterio.open(tmp_path / "c.tif") as ds:  # the feature raster's grid
        x, y = ds.xy(8, 12)
    assert cli.main(["embed", "similar", str(feats), "--out", str(tmp_path / "s.tif"), "--point", f"{x},{y}"]) == 0
    s = tmp_path / "s"
    assert capsys.readouterr().out == (
        f"similar: {s}.tif (cosine similarity to the point {x},{y}), {s}.qml, {s}.sld, {s}.png\n"
    )
    assert Path(f"{s}.sld").is_file()
    assert (tmp_path / "s.png").read_bytes()[:4] == b"\x89PNG"


def test_similarity_and_zonal_write_a_png_quicklook(tmp_path, two_class, capsys):
    import geopandas as gpd
    from PIL import Image
    from shapely.geometry import box

    from geodino import cli

    src, _ = two_class
    similarity_map(src, tmp_path / "s.tif", point=(500000.0 + 40 * 5.5, 4000000.0 - 40 * 10.5), png=tmp_path / "q.png")
    assert Image.open(tmp_path / "q.png").size[0] > 100  # a figure with a colour bar, not the 30x20 raster
    cells = [box(500000 + 40 * c, 4000000 - 40 * 12, 500000 + 40 * (c + 3), 4000000 - 40 * 9) for c in (2, 8, 18, 24)]
    gpd.GeoDataFrame({"id": range(4)}, geometry=cells, crs="EPSG:32633").to_file(tmp_path / "p.gpkg")
    code = cli.main(["embed", "zonal", str(src), str(tmp_path / "p.gpkg"), "--out", str(tmp_path / "z.parquet")])
    z = tmp_path / "z"
    assert code == 0 and capsys.readouterr().out == (
        f"zonal: {z}.parquet (4 of 4 polygons with a mean embedding), {z}.png\n"
    )
    img = np.asarray(Image.open(f"{z}.png").convert("RGB"))
    # the two left polygons and the two right ones lie on different embeddings: two distinct PCA colours
    colours = {tuple(c) for c in img.reshape(-1, 3) if len(set(c)) > 1 and max(c) < 250}
    assert len(colours) >= 2


def test_progress_bar_shows_when_writing_takes_more_than_a_second(tmp_path, two_class, capsys, monkeypatch):
    import time

    from rasterio.windows import Window

    from geodino.embed.products import write_cog

    profile = {"height": 2, "width": 2, "count": 1, "dtype": "uint8", "crs": "EPSG:32633", "transform": T, "nodata": 0}

    def slow_blocks():
        for r in range(2):
            time.sleep(0.6)
            yield Window(0, r, 2, 1), np.ones((1, 1, 2), np.uint8)

    # the bar a terminal shows (captured stderr is no terminal: a bar that clears itself writes no line there)
    monkeypatch.setenv("GEODINO_PROGRESS", "bar")
    write_cog(tmp_path / "fast.tif", iter([(Window(0, 0, 2, 2), np.ones((1, 2, 2), np.uint8))]), profile, desc="x")
    assert "x:" not in capsys.readouterr().err  # a quick write prints no bar
    write_cog(tmp_path / "slow.tif", slow_blocks(), profile, desc="slowproduct", total=2)
    assert "slowproduct: 100%" in capsys.readouterr().err


def test_similar_point_crs_and_outside_point_errors(tmp_path, two_class, monkeypatch, capsys):
    """A CRS pyproj does not know is one line (exit 2 on the CLI, not a CRSError traceback); a point that misses
    the raster names the raster's CRS and bounds, and suggests --point-crs for what looks like lon,lat."""
    import warnings

    import rasterio

    from geodino import cli
    from geodino.errors import ConfigError

    src, _ = two_class
    for bad in ("EPSG:99999", "WGS84x"):
        with pytest.raises(ConfigError, match=rf"--point-crs '{bad}' is not a CRS pyproj knows .*EPSG:4326"):
            similarity_map(src, tmp_path / "s.tif", point=(15.0, 40.0), point_crs=bad)
    monkeypatch.setattr(cli, "COMMAND_MODULES", ("geodino.embed.commands",))
    code = cli.main(["embed", "similar", str(src), "--out", str(tmp_path / "s.tif"), "--point=1,1", "--point-crs",
                     "EPSG:99999"])  # fmt: skip
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("geodino: error: --point-crs 'EPSG:99999'") and len(err.splitlines()) == 1
    # X Y as viz attention spells it, and the bare --point-crs (the raster's CRS), give the X,Y map
    outs = []
    for i, spelling in enumerate((["--point=500600,3999500"], ["--point", "500600", "3999500", "--point-crs"])):
        outs.append(tmp_path / f"sim{i}.tif")
        assert cli.main(["embed", "similar", str(src), "--out", str(outs[-1]), *spelling]) == 0, spelling
    assert "(cosine similarity to the point 500600,3999500)" in capsys.readouterr().out
    with rasterio.open(outs[0]) as a, rasterio.open(outs[1]) as b:
        np.testing.assert_array_equal(a.read(), b.read())
    extent = r"\(CRS EPSG:32633, bounds x 500000\.\.501200, y 3999200\.\.4000000\)"
    with pytest.raises(InputError, match=extent + r"; --point is read in the raster's CRS: for lon,lat pass "
                       r"--point-crs EPSG:4326$"):  # fmt: skip
        similarity_map(src, tmp_path / "s.tif", point=(-77.5, 24.5))
    with warnings.catch_warnings(record=True) as caught:  # far outside (inf after PROJ): no numpy warnings
        warnings.simplefilter("always")
        with pytest.raises(InputError, match=r"query point \(1e\+30, 1e\+30\) lies outside .*" + extent + "$"):
            similarity_map(src, tmp_path / "s.tif", point=(1e30, 1e30))
        with pytest.raises(InputError, match=r"\(in EPSG:4326; .* in the raster's CRS\) lies outside .*" + extent):
            similarity_map(src, tmp_path / "s.tif", point=(170.0, -89.0), point_crs="EPSG:4326")
    assert not [w for w in caught if issubclass(w.category, RuntimeWarning)]
    assert not (tmp_path / "s.tif").exists()


def test_zonal_with_coordinates_its_crs_cannot_place(tmp_path, two_class):
    """UTM metres in a file declared EPSG:4326: PROJ gives inf; the polygons are outside, no numpy warnings, and
    the error says the file's CRS is the likely cause."""
    import warnings

    import geopandas as gpd
    from shapely.geometry import box

    src, _ = two_class
    polys = gpd.GeoDataFrame(geometry=[box(500040, 3999600, 500200, 3999800)], crs="EPSG:4326")
    polys.to_file(tmp_path / "wrong.gpkg")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        placed = r"; 1 of them have coordinates that their declared CRS EPSG:4326 cannot place; check the file's CRS"
        with pytest.raises(InputError, match=r"the 1 polygon .* \(CRS EPSG:32633, bounds .*\)" + placed):
            zonal_embeddings(src, tmp_path / "wrong.gpkg", tmp_path / "z.parquet")
    assert not [w for w in caught if issubclass(w.category, RuntimeWarning)]


def test_similar_polygons_its_crs_cannot_place_say_so(tmp_path, two_class):
    """The same wrong CRS as a `similar --polygon` query said only "cover no valid cell"; it now names the cause as
    zonal does."""
    import geopandas as gpd
    from shapely.geometry import box

    src, _ = two_class
    gpd.GeoDataFrame(geometry=[box(500040, 3999600, 500200, 3999800)], crs="EPSG:4326").to_file(tmp_path / "w.gpkg")
    placed = r"; 1 of them have coordinates that their declared CRS EPSG:4326 cannot place; check the file's CRS"
    with pytest.raises(InputError, match=r"query polygons in .*w\.gpkg cover no valid cell .*\)" + placed):
        similarity_map(src, tmp_path / "s.tif", polygon=tmp_path / "w.gpkg")
    assert not (tmp_path / "s.tif").exists()


def test_an_output_name_held_by_a_folder_is_refused_before_any_work(tmp_path, two_class):
    """`--overwrite` onto a folder named like the output ended in IsADirectoryError from os.replace and left its
    temporary file; it is refused in one line, the folder and its content kept."""
    src, _ = two_class
    (tmp_path / "p.tif").mkdir()
    (tmp_path / "p.tif" / "keep.txt").write_text("x")
    with pytest.raises(InputError, match=r"output .*p\.tif is an existing folder, and a \.tif output is a file"):
        pca_map(src, tmp_path / "p.tif", overwrite=True)
    assert (tmp_path / "p.tif" / "keep.txt").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([Path(src).name, "p.tif"])


def test_zonal_output_must_be_geoparquet(tmp_path, two_class):
    import geopandas as gpd
    from shapely.geometry import box

    from geodino.errors import ConfigError

    src, _ = two_class
    gpd.GeoDataFrame(geometry=[box(500040, 3999600, 500200, 3999800)], crs="EPSG:32633").to_file(tmp_path / "p.gpkg")
    with pytest.raises(
        ConfigError,
        match=r"--out .*z\.tif \(out= in Python\): zonal writes GeoParquet .*, not \.tif; name it z\.parquet",
    ):
        zonal_embeddings(src, tmp_path / "p.gpkg", tmp_path / "z.tif")
    assert not (tmp_path / "z.tif").exists() and not (tmp_path / "z.png").exists()
    assert zonal_embeddings(src, tmp_path / "p.gpkg", tmp_path / "z.geoparquet").exists()


def test_multi_layer_polygons_are_read_by_layer_without_pyogrio_warnings(tmp_path, two_class, capsys):
    import warnings

    import geopandas as gpd
    from shapely.geometry import box

    src, _ = two_class
    path = tmp_path / "multi.gpkg"
    geoms = [box(500040, 3999600, 500200, 3999800)]
    gpd.GeoDataFrame({"name": ["r"]}, geometry=geoms, crs="EPSG:32633").to_file(path, layer="roads")
    gpd.GeoDataFrame({"field": ["f"]}, geometry=geoms, crs="EPSG:32633").to_file(path, layer="fields")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        res = gpd.read_parquet(zonal_embeddings(src, path, tmp_path / "z.parquet"))
    assert list(res.columns[:1]) == ["name"]  # the first layer, as GDAL orders them
    # only geodino's own note, a UserWarning the CLI shows as "geodino: warning: ..." (none of pyogrio's)
    assert [(w.category, str(w.message)) for w in caught] == [
        (
            UserWarning,
            f"polygons file {path} has 2 layers (roads, fields); reading the first, 'roads'; pass --layer "
            "NAME for another",
        )
    ]
    assert capsys.readouterr().err == ""
    res = gpd.read_parquet(zonal_embeddings(src, path, tmp_path / "f.parquet", layer="fields"))
    assert "field" in res.columns and "layers" not in capsys.readouterr().err
    with pytest.raises(InputError, match=r"has no layer 'feilds'; did you mean 'fields'\? its layers: roads, fields"):
        zonal_embeddings(src, path, tmp_path / "x.parquet", layer="feilds")


def test_product_cogs_name_their_bands(tmp_path, two_class):
    import rasterio

    src, _ = two_class
    outs = {
        ("PC1", "PC2", "PC3"): pca_map(src, tmp_path / "p.tif"),
        ("cluster",): cluster_map(src, tmp_path / "k.tif", k=2),
        ("cosine similarity",): similarity_map(src, tmp_path / "s.tif", point=(500000.0 + 220, 4000000.0 - 420)),
    }
    for names, out in outs.items():
        with rasterio.open(out) as ds:
            assert ds.descriptions == names


def test_every_product_refuses_a_raster_that_geodino_embed_did_not_write(tmp_path, two_class, capsys):
    """`embed pca rgb.tif` made a "PCA map" of a plain RGB GeoTIFF (cluster, similar, zonal, classify and change
    mapped its pixel values too); now each stops with one line naming the file and saying to run `geodino embed`
    first (exit 2, nothing written), through one check shared by the products."""
    import geopandas as gpd
    from shapely.geometry import Point, box

    from geodino.embed.change import change_map
    from geodino.embed.classify import classify_map
    from tests.embed.conftest import random_image, write_tif
    from tests.test_bad_inputs import one_line_exit_2

    feats, _ = two_class
    rgb = write_tif(tmp_path / "rgb.tif", random_image(20, 30), transform=T)
    pca = pca_map(feats, tmp_path / "pca.tif")  # a geodino product, but not a feature raster either
    x0, y0 = 500000.0, 4000000.0
    gpd.GeoDataFrame(geometry=[box(x0, y0 - 400, x0 + 400, y0)], crs="EPSG:32633").to_file(tmp_path / "z.gpkg")
    labels = gpd.GeoDataFrame(
        {"c": ["a", "b"]}, geometry=[Point(x0 + 100, y0 - 500), Point(x0 + 1000, y0 - 500)], crs="EPSG:32633"
    )
    labels.to_file(tmp_path / "l.gpkg")
    calls = {
        "pca": lambda f, o: pca_map(f, o),
        "cluster": lambda f, o: cluster_map(f, o, k=2),
        "similar": lambda f, o: similarity_map(f, o, point=(x0 + 220, y0 - 420)),
        "zonal": lambda f, o: zonal_embeddings(f, tmp_path / "z.gpkg", o.with_suffix(".parquet")),
        "classify": lambda f, o: classify_map(f, tmp_path / "l.gpkg", o, column="c"),
        "change A": lambda f, o: change_map(f, feats, o),
        "change B": lambda f, o: change_map(feats, f, o),
    }
    for plain, what in ((rgb, "3 uint8 bands"), (pca, "3 uint8 bands")):
        for name, call in calls.items():
            out = tmp_path / "out" / f"{name.replace(' ', '_')}.tif"
            with pytest.raises(InputError) as err:
                call(plain, out)
            assert str(err.value) == (
                f"{plain} is not a feature raster from `geodino embed` ({what}, no GEODINO_MODEL_SPEC metadata); run "
                f"`geodino embed {plain} --backbone SPEC --out features.tif` first and pass features.tif"
            ), name
            assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir()), name
    for argv in (
        ["embed", "pca", rgb, "--out", tmp_path / "o" / "p.tif"],
        ["embed", "cluster", rgb, "--out", tmp_path / "o" / "k.tif", "--k", "2"],
        ["embed", "similar", rgb, "--out", tmp_path / "o" / "s.tif", "--point", f"{x0 + 220},{y0 - 420}"],
        ["embed", "zonal", rgb, tmp_path / "z.gpkg", "--out", tmp_path / "o" / "z.parquet"],
        ["embed", "classify", rgb, tmp_path / "l.gpkg", "--column", "c", "--out", tmp_path / "o" / "m.tif"],
        ["embed", "change", feats, rgb, "--out", tmp_path / "o" / "c.tif"],
    ):
        one_line_exit_2(capsys, tmp_path, *argv, expect=(f"{rgb} is not a feature raster", "run `geodino embed"))
    assert pca_map(feats, tmp_path / "again.tif").exists()  # a feature raster is still fine
