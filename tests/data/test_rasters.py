"""Raster archives: pixels and georeference equal direct rasterio reads; nodata; CRSs; sharding; bad input."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import rasterio
from rasterio.windows import Window
from rasterio.windows import transform as window_transform

from geodino.data.archive import RasterArchive, RasterSource
from geodino.data.loaders import DataConfig, SourceConfig, build_sample_loader
from geodino.data.rasters import read_window
from geodino.data.sensors import Sensor
from geodino.errors import InputError

from .conftest import ramp, write_tif

S4 = Sensor("s4", ("B1", "B2", "B3", "N"), 1e-4, (0.1,) * 4, (0.05,) * 4, False, nodata=None, aliases={"nir": "N"})


def test_pixels_and_georeference_equal_rasterio(scenes):
    archive = RasterArchive(sorted(scenes.values()), sensor=S4)
    assert len(archive) == 3
    source = RasterSource(archive, tile_size=32, max_nodata_fraction=1.0, name="t")
    for i in range(12):
        s = source.get(i, seed=3)
        sid, col, row, w, h = source.tile(i, seed=3)
        path = archive.scenes[sid].path
        assert s["path"] == path
        with rasterio.open(path) as src:
            ref = src.read(window=Window(col, row, w, h))
            np.testing.assert_allclose(s["image"], ref.astype(np.float32) * 1e-4, rtol=1e-6)
            assert s["transform"] == window_transform(Window(col, row, w, h), src.transform)
            assert rasterio.crs.CRS.from_wkt(s["crs"]) == src.crs
            assert s["valid"].tolist() == (~(ref == 0).all(0)).tolist()


def test_boundless_window_fills_and_masks(scenes):
    with rasterio.open(scenes["utm32_cog"]) as src:
        data, valid = read_window(src, [1, 2], 90, -5, 20, 10, nodata=0)
        assert data.shape == (2, 10, 20)
        inner = src.read([1, 2], window=Window(90, 0, 10, 5))
    np.testing.assert_array_equal(data[:, 5:, :10], inner)
    assert valid[5:, :10].all() and not valid[:5].any() and not valid[:, 10:].any()
    assert (data[:, :5] == 0).all()


def test_random_tiles_redraw_nodata(scenes):
    archive = RasterArchive([scenes["utm33"]], sensor=S4)
    source = RasterSource(archive, tile_size=48, max_nodata_fraction=0.05, max_tries=50, name="n")
    fracs = [source.get(i, seed=0)["nodata_fraction"] for i in range(30)]
    assert max(fracs) <= 0.05
    assert source.redraws > 0  # a quarter of the scene is nodata, so some draws were rejected
    # with no threshold, nodata tiles do come out
    loose = RasterSource(archive, tile_size=48, max_nodata_fraction=1.0, name="n")
    assert max(loose.get(i, seed=0)["nodata_fraction"] for i in range(30)) > 0.05


def test_grid_prescan_drops_nodata_tiles(scenes):
    archive = RasterArchive([scenes["utm33"]], sensor=S4)
    full = RasterSource(archive, tile_size=40, sampling="grid", max_nodata_fraction=1.0)
    kept = RasterSource(archive, tile_size=40, sampling="grid", max_nodata_fraction=0.2)
    assert len(full) == 12 and len(kept) == 8  # the 2x2 tiles of the nodata quarter go (60x80 px = 1.5x2 tiles)
    for i in range(len(kept)):
        assert kept.get(i, 0)["valid"].mean() >= 0.8


def test_native_crs_per_scene_and_reprojection(scenes):
    archive = RasterArchive(sorted(scenes.values()), sensor=S4)
    crss = {rasterio.crs.CRS.from_wkt(s.crs).to_epsg() for s in archive.scenes}
    assert crss == {32633, 32632, 4326}
    warped = RasterArchive(sorted(scenes.values()), sensor=S4, crs="EPSG:3857", res=15.0)
    src = RasterSource(warped, tile_size=16, max_nodata_fraction=1.0)
    for i in range(6):
        s = src.get(i, 0)
        assert rasterio.crs.CRS.from_wkt(s["crs"]).to_epsg() == 3857
        t = s["transform"]
        assert t.a == pytest.approx(15.0) and t.e == pytest.approx(-15.0)
        assert (t.c / 15.0) == pytest.approx(round(t.c / 15.0))  # aligned to the res grid
        assert s["image"].shape == (4, 16, 16)


def test_tile_size_in_metres(scenes):
    archive = RasterArchive([scenes["utm33"], scenes["wgs84"]], sensor=S4)
    src = RasterSource(archive, tile_size=300, units="m", max_nodata_fraction=1.0)
    shapes = {src.archive.scenes[src.tile(i, 0)[0]].path: src.get(i, 0)["image"].shape for i in range(20)}
    assert shapes[str(scenes["utm33"])] == (4, 30, 30)  # 300 m at 10 m
    h, w = shapes[str(scenes["wgs84"])][1:]
    assert h == 27 and 36 <= w <= 40  # 0.0001 deg ~ 11 m north-south, ~7.9 m east-west at 45N


def test_roi_polygon_keeps_tile_centres_inside(scenes):
    import shapely

    archive = RasterArchive([scenes["utm33"]], sensor=S4)
    roi = shapely.box(500800, 4649400, 501400, 4649000)  # x in [800, 1400] m, y rows 60..100 from the origin
    src = RasterSource(archive, tile_size=16, roi=roi.wkt, roi_crs="EPSG:32633", max_nodata_fraction=1.0)
    for i in range(40):
        _, col, row, w, h = src.tile(i, 1)
        cx, cy = col + w / 2, row + h / 2
        assert 80 - 1 <= cx <= 140 + 1 and 60 - 1 <= cy <= 100 + 1
    grid = RasterSource(
        archive, tile_size=20, sampling="grid", roi=roi.wkt, roi_crs="EPSG:32633", max_nodata_fraction=1.0
    )
    assert 0 < len(grid) < 48


def test_roi_from_vector_files_and_their_errors(tmp_path):
    """An ROI file goes through the same reader as every vector input: GeoJSON and GeoParquet read with their CRS,
    an empty or unreadable file gets one line naming it."""
    import geopandas as gpd
    import shapely

    from geodino.data.tiling import load_roi

    box = shapely.box(0, 0, 10, 10)
    gdf = gpd.GeoDataFrame(geometry=[box, shapely.box(5, 5, 20, 20)], crs="EPSG:32633")
    gdf.to_file(tmp_path / "roi.geojson", driver="GeoJSON")
    gdf.to_parquet(tmp_path / "roi.parquet")
    for name in ("roi.geojson", "roi.parquet"):
        geom, crs = load_roi(str(tmp_path / name))
        assert geom.area == pytest.approx(100 + 225 - 25)
        assert "32633" in crs
    gdf.iloc[:0].to_file(tmp_path / "empty.geojson", driver="GeoJSON")
    with pytest.raises(InputError, match=r"ROI file .*empty.geojson has no features"):
        load_roi(str(tmp_path / "empty.geojson"))
    (tmp_path / "broken.geojson").write_text("{not json")
    with pytest.raises(InputError, match=r"cannot read ROI from .*broken.geojson"):
        load_roi(str(tmp_path / "broken.geojson"))


def test_window_affine_equals_rasterio_without_its_warning():
    """Tile transforms equal rasterio's window transform (rotated grids too) and raise no affine deprecation
    warning, which rasterio's `*` did on every tile a training run read."""
    from affine import Affine
    from rasterio.windows import transform as window_transform

    from geodino.data.rasters import window_affine

    for t in (Affine(10.0, 0.0, 500000.0, 0.0, -10.0, 4.6e6), Affine(0.5, 0.2, -120.0, 0.1, -0.4, 45.0)):
        for col, row in ((0, 0), (37, 5), (-3, 1024)):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                want = window_transform(Window(col, row, 16, 16), t)
            with warnings.catch_warnings():
                warnings.simplefilter("error")
                got = window_affine(tuple(t), col, row)
            assert got.almost_equals(want, precision=1e-9)
            assert (got.c, got.f) == pytest.approx((t.a * col + t.b * row + t.c, t.d * col + t.e * row + t.f))


def test_band_selection_by_name_and_alias(scenes):
    archive = RasterArchive([scenes["utm32_cog"]], sensor=S4, bands=["nir", "B2"])
    assert archive.band_names == ("N", "B2")
    s = archive.sample(0, 10, 20, 8, 8)
    with rasterio.open(scenes["utm32_cog"]) as src:
        ref = src.read([4, 2], window=Window(10, 20, 8, 8))
    np.testing.assert_allclose(s["image"], ref * 1e-4, rtol=1e-6)
    assert archive.sensor.bands == ("N", "B2")


def test_band_descriptions_and_13_bands_vrt(tmp_path):
    names = ["B01", "B02", "B03", "B04", "B05", "B06", "B07", "B08", "B8A", "B09", "B10", "B11", "B12"]
    p = write_tif(tmp_path / "s2.tif", ramp(13, 40, 40), descriptions=names)
    archive = RasterArchive([p], sensor="sentinel2_l1c", bands=["B8A", "B04"])
    assert archive.scenes[0].band_indexes == (9, 4)
    one = write_tif(tmp_path / "one.tif", ramp(1, 20, 20))
    vrt = tmp_path / "one.vrt"
    vrt.write_text(
        '<VRTDataset rasterXSize="20" rasterYSize="20"><SRS>EPSG:32633</SRS>'
        "<GeoTransform>500000, 10, 0, 4650000, 0, -10</GeoTransform>"
        '<VRTRasterBand dataType="UInt16" band="1"><SimpleSource><SourceFilename relativeToVRT="1">one.tif'
        "</SourceFilename><SourceBand>1</SourceBand></SimpleSource></VRTRasterBand></VRTDataset>"
    )
    single = Sensor("single", ("x",), 1.0, (0.0,), (1.0,), False)
    a = RasterArchive([vrt], sensor=single)
    with rasterio.open(one) as src:
        np.testing.assert_array_equal(a.sample(0, 2, 3, 5, 5)["image"][0], src.read(1, window=Window(2, 3, 5, 5)))


def test_grid_sharding_ranks_and_workers_cover_once(scenes):
    cfg = DataConfig(
        sources=[
            SourceConfig(
                type="raster",
                paths=[str(scenes["utm32_cog"]), str(scenes["utm33"])],
                sensor="",
                tile_size=25,
                sampling="grid",
                max_nodata_fraction=1.0,
            )
        ]
    )
    cfg.sources[0].sensor = None
    cfg.sources[0].band_names = ["B1", "B2", "B3", "N"]
    with pytest.raises(InputError, match="need a sensor"):
        build_sample_loader(cfg, batch_size=4)
    yaml_sensor = scenes["utm33"].parent / "s4.yaml"
    from geodino.data.sensors import save_sensor_yaml

    save_sensor_yaml(S4, yaml_sensor)
    cfg.sources[0].sensor = str(yaml_sensor)
    seen = []
    for rank in range(2):
        loader = build_sample_loader(cfg, batch_size=3, num_workers=0, rank=rank, world_size=2, seed=5)
        for batch in loader:
            for p, t in zip(batch["path"], batch["transform"]):
                seen.append((p, t.c, t.f))
    n_tiles = 4 * 4 + 5 * 7  # 100x100 at 25 px, 120x160 at 25 px (edge tiles flush)
    assert len(seen) == n_tiles and len(set(seen)) == n_tiles


@pytest.mark.slow
def test_grid_sharding_with_workers(scenes):
    from geodino.data.sensors import save_sensor_yaml

    yaml_sensor = save_sensor_yaml(S4, scenes["utm33"].parent / "s4.yaml")
    cfg = DataConfig(
        sources=[
            SourceConfig(
                type="raster",
                paths=[str(scenes["utm33"])],
                sensor=str(yaml_sensor),
                tile_size=20,
                sampling="grid",
                max_nodata_fraction=1.0,
            )
        ]
    )
    seen = []
    for rank in range(2):
        for batch in build_sample_loader(cfg, batch_size=2, num_workers=2, rank=rank, world_size=2):
            seen.extend(zip(batch["index"].tolist(), [(t.c, t.f) for t in batch["transform"]]))
    assert len(seen) == 48 and len({xy for _, xy in seen}) == 48


def test_determinism_per_seed(scenes):
    archive = RasterArchive(sorted(scenes.values()), sensor=S4)
    a = RasterSource(archive, tile_size=16, name="x")
    b = RasterSource(archive, tile_size=16, name="x")
    for i in range(5):
        np.testing.assert_array_equal(a.get(i, 7)["image"], b.get(i, 7)["image"])
    assert any(not np.array_equal(a.get(i, 7)["image"], a.get(i, 8)["image"]) for i in range(5))
    g = RasterSource(archive, tile_size=30, sampling="grid", max_nodata_fraction=1.0, name="g")
    order1 = [g.tile(i, 1) for i in range(len(g))]
    order2 = [g.tile(i + len(g), 1) for i in range(len(g))]
    assert sorted(order1) == sorted(order2) and order1 != order2  # each epoch: all tiles, new order


# -- bad input ------------------------------------------------------------------------------------------------------
def test_empty_folder_and_glob(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match=r"folder .*empty holds no raster files"):
        RasterArchive(tmp_path / "empty", sensor=S4)
    with pytest.raises(InputError, match=r"glob .*nothing\*\.tif' matched no raster files"):
        RasterArchive(str(tmp_path / "nothing*.tif"), sensor=S4)


def test_corrupt_file_stop_or_skip(scenes, tmp_path):
    bad = scenes["utm33"].parent / "zz_corrupt.tif"
    bad.write_bytes(b"II*\x00 not really a tiff")
    with pytest.raises(InputError, match=r"raster .*zz_corrupt.tif: cannot be read"):
        RasterArchive(scenes["utm33"].parent, sensor=S4)
    with pytest.warns(UserWarning, match="skipping raster .*zz_corrupt.tif"):
        archive = RasterArchive(scenes["utm33"].parent, sensor=S4, on_error="skip")
    assert len(archive) == 3 and archive.skipped[0][0] == str(bad)


def test_file_without_crs(tmp_path):
    p = write_tif(tmp_path / "nocrs.tif", ramp(4, 20, 20), crs=None)
    with pytest.raises(InputError, match=r"raster .*nocrs.tif: has no CRS; assign one"):
        RasterArchive([p], sensor=S4)


def test_missing_band_name(scenes):
    with pytest.raises(InputError, match=r"raster .*a_utm33.tif has no band 'B9' \(its bands: B1, B2, B3, N\)"):
        RasterArchive([scenes["utm33"]], sensor=S4, bands=["B1", "B9"])


def test_unnamed_bands_are_not_matched_to_a_larger_sensor_by_position_names(tmp_path):
    """A 3-band file without band descriptions reads as b1..b3; against the 4-band S4 (bands B1, B2, B3, N) the names
    would case-match B1..B3, but they only say where a band sits, so the count mismatch is an error."""
    p = write_tif(tmp_path / "plain.tif", ramp(3, 20, 20))
    with pytest.raises(InputError, match=r"3 unnamed bands \(b1, b2, b3\) but sensor 's4' has 4 .*band_names"):
        RasterArchive([p], sensor=S4)
    named = write_tif(tmp_path / "named.tif", ramp(3, 20, 20), descriptions=["B1", "B2", "N"])
    assert RasterArchive([named], sensor=S4).sensor.bands == ("B1", "B2", "N")  # real names still select


def test_tile_larger_than_raster(scenes):
    archive = RasterArchive([scenes["utm32_cog"]], sensor=S4)
    with pytest.raises(InputError, match=r"tile size 512 px is larger than every raster \(largest: .*100x100 px\)"):
        RasterSource(archive, tile_size=512)
    two = RasterArchive([scenes["utm32_cog"], scenes["utm33"]], sensor=S4)
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        src = RasterSource(two, tile_size=110, max_nodata_fraction=1.0)
    assert any("smaller than the tile" in str(x.message) for x in w)
    assert {src.tile(i, 0)[0] for i in range(10)} == {1}


def test_index_cache_reused_until_files_change(scenes, tmp_path, monkeypatch):
    cache = tmp_path / "index.json"
    a = RasterArchive(sorted(scenes.values()), sensor=S4, index_cache=cache)
    assert cache.is_file()
    calls = []
    monkeypatch.setattr(RasterArchive, "_index", lambda self, progress: calls.append(1) or [])
    b = RasterArchive(sorted(scenes.values()), sensor=S4, index_cache=cache)
    assert b.scenes == a.scenes and not calls  # served from the cache
    import os

    os.utime(scenes["utm33"], ns=(1, 1))  # a changed file invalidates the cache
    with pytest.raises(InputError, match="no readable raster"):
        RasterArchive(sorted(scenes.values()), sensor=S4, index_cache=cache)
    assert calls


def test_file_breaking_mid_run_is_skipped_or_named(scenes):
    paths = [scenes["utm33"], scenes["utm32_cog"]]
    skip = RasterSource(RasterArchive(paths, sensor=S4, on_error="skip"), tile_size=16, max_nodata_fraction=1.0)
    stop = RasterSource(RasterArchive(paths, sensor=S4), tile_size=16, max_nodata_fraction=1.0)
    scenes["utm32_cog"].write_bytes(b"truncated")  # the COG breaks after indexing
    from geodino.data import rasters

    rasters._handles.clear()
    with pytest.warns(UserWarning, match=r"raster .*b_utm32.tif: window read failed.*drawing another tile"):
        got = {skip.get(i, 0)["path"] for i in range(12)}
    assert got == {str(scenes["utm33"])}
    with pytest.raises(InputError, match=r"raster .*b_utm32.tif: window read failed"):
        for i in range(12):
            stop.get(i, 0)


def test_a_raster_rewritten_in_place_is_read_anew(tmp_path):
    """open_raster caches handles per process; a file rewritten under the same path (a notebook re-creating a
    scene) must not be read through the old file's handle."""
    import os

    from geodino.data.rasters import open_raster

    p = write_tif(tmp_path / "s.tif", np.full((1, 8, 8), 5, np.uint8))
    assert open_raster(str(p)).read(1)[0, 0] == 5
    write_tif(p, np.full((1, 8, 8), 7, np.uint8))
    st = os.stat(p)
    os.utime(p, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000))  # a new mtime even on a coarse-clock filesystem
    assert open_raster(str(p)).read(1)[0, 0] == 7


def test_grid_prescan_uses_the_one_validity_rule(tmp_path):
    """The grid pre-scan kept its own test (a pixel NaN in every band); pixels ±inf, or NaN in one band, are invalid
    for the readers (`valid_pixels`) and are now for the pre-scan too: a quarter of ±inf drops its tiles."""
    data = np.full((4, 80, 80), 0.1, np.float32)
    data[0, :40, :40] = np.inf
    data[2, :40, :40] = -np.inf  # bands 1, 3 finite: the old rule kept these pixels
    path = write_tif(tmp_path / "inf.tif", data, nodata=None)
    s = Sensor("f4", ("B1", "B2", "B3", "N"), 1.0, (0.1,) * 4, (0.05,) * 4, False)
    archive = RasterArchive([str(path)], sensor=s)
    kept = RasterSource(archive, tile_size=40, sampling="grid", max_nodata_fraction=0.2)
    assert len(kept) == 3  # 2x2 tiles, the ±inf quarter dropped
    assert all(kept.get(i, 0)["valid"].all() for i in range(len(kept)))


def test_evicted_reprojected_handles_close_their_source_files(tmp_path, monkeypatch):
    """A WarpedVRT does not close the file under it: the handle cache closed the VRT only, so every evicted
    reprojected scene kept its file open (until the GC ran), enough to exhaust a process's file limit over an
    archive of thousands of scenes."""
    import geodino.data.rasters as rasters

    monkeypatch.setattr(rasters, "_HANDLE_CACHE_SIZE", 2)
    rasters._handles.clear()
    paths = [write_tif(tmp_path / f"s{i}.tif", ramp(1, 20, 20, seed=i)) for i in range(4)]
    opened = [rasters.open_raster(str(p), crs="EPSG:4326") for p in paths]
    sources = [vrt.src_dataset for vrt in opened]
    assert [v.closed for v in opened] == [True, True, False, False]  # the two oldest evicted
    assert [s.closed for s in sources] == [True, True, False, False]  # and the files under them closed too
    rasters._handles.clear()
