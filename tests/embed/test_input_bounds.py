"""The feature grid's last partial cell reaches up to p-1 input pixels past the input's edge. The input's own bounds
are recorded (GEODINO_INPUT_BOUNDS in a COG, `input_bounds` in a Zarr store, `geodino:input_bbox` in the STAC item;
the item's bbox stays the asset's), and the products that take positions treat that margin as outside the input:
`similar --point` refuses it, zonal gives it status `outside_input`, classify leaves such labels out and counts them.
Rasters without the record place positions on the whole raster, as before."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pytest
from affine import Affine

from geodino.embed import embed_raster, similarity_map, zonal_embeddings
from geodino.embed.writers import EmbeddingReader
from geodino.errors import InputError
from tests.embed.conftest import random_image, write_tif

OPTS = dict(tile=32, overlap=8, progress=False, chunk=16, block_rows=16)
# 42 x 38 px of 10 m from (500000, 4000000): x 500000..500420, y 3999620..4000000. Patch 4: 11 x 10 cells, whose
# last column and row reach 20 m past the input (x to 500440, y down to 3999600).
INPUT_BOUNDS = [500000.0, 3999620.0, 500420.0, 4000000.0]
IN_MARGIN = (500430.0, 3999700.0)  # in the last cell column, east of every input pixel
INSIDE = (500415.0, 3999700.0)  # the same cell, over input pixels


@pytest.fixture(scope="module")
def cog(tmp_path_factory) -> Path:
    from tests.embed.toy_backbones import ConvBackbone

    root = tmp_path_factory.mktemp("bounds")
    src = write_tif(root / "in.tif", random_image(38, 42))
    return embed_raster(src, ConvBackbone(in_chans=3, dim=8, patch=4, n_convs=2), root / "f.tif", **OPTS)


def _points(path: Path, xy: list[tuple[float, float]]) -> Path:
    import geopandas as gpd
    from shapely.geometry import Point

    gdf = gpd.GeoDataFrame({"id": list(range(len(xy)))}, geometry=[Point(*p) for p in xy], crs="EPSG:32633")
    gdf.to_file(path)
    return path


@pytest.mark.parametrize("south_up", [False, True])
def test_cog_zarr_and_stac_record_the_inputs_bounds(tmp_path, conv_bb, south_up):
    import rasterio

    transform = Affine(10.0, 0.0, 500000.0, 0.0, 10.0, 3999620.0) if south_up else None
    src = write_tif(tmp_path / "in.tif", random_image(38, 42), transform=transform)
    out = embed_raster(src, conv_bb, tmp_path / "f.tif", **OPTS)
    with rasterio.open(out) as ds:
        assert (ds.width, ds.height) == (11, 10)
        assert json.loads(ds.tags()["GEODINO_INPUT_BOUNDS"]) == INPUT_BOUNDS
        b = ds.bounds
        assert max(b.left, b.right) == 500440.0  # the partial cell reaches past the input
    store = embed_raster(src, conv_bb, tmp_path / "f.zarr", **OPTS)
    with EmbeddingReader(store) as rd:
        value = rd.metadata["input_bounds"]  # the store's attribute (text JSON, as every list attribute)
        assert [float(v) for v in (json.loads(value) if isinstance(value, str) else value)] == INPUT_BOUNDS
    for written in (out, store):
        item = json.loads(written.with_name(written.name.rsplit(".", 1)[0] + ".stac.json").read_text())
        lon0, lat0, lon1, lat1 = item["properties"]["geodino:input_bbox"]
        w, s, e, n = item["bbox"]  # the asset's: wider, by the partial cells
        assert w - 1e-7 <= lon0 < lon1 <= e + 1e-7 and s - 1e-7 <= lat0 < lat1 <= n + 1e-7
        # 20 m narrower and lower than the asset (about 2e-4 degrees): the margin of the last column and row
        assert (e - w) - (lon1 - lon0) > 1e-4 and (n - s) - (lat1 - lat0) > 1e-4


def test_input_bounds_of_a_window_are_the_windows(tmp_path, conv_bb):
    import rasterio

    src = write_tif(tmp_path / "in.tif", random_image(64, 64))
    out = embed_raster(src, conv_bb, tmp_path / "f.tif", window=(8, 16, 24, 20), **OPTS)
    with rasterio.open(out) as ds:
        assert json.loads(ds.tags()["GEODINO_INPUT_BOUNDS"]) == [500080.0, 3999640.0, 500320.0, 3999840.0]


def test_similar_point_in_the_margin_is_refused(tmp_path, cog):
    with pytest.raises(InputError) as err:
        similarity_map(cog, tmp_path / "s.tif", point=IN_MARGIN)
    text = str(err.value)
    assert "\n" not in text and "500430" in text and "input bounds x 500000..500420, y 3999620..4000000" in text
    assert similarity_map(cog, tmp_path / "s.tif", point=INSIDE).exists()  # the same cell, over input pixels


def test_zonal_point_in_the_margin_is_outside_input(tmp_path, cog):
    import geopandas as gpd

    pts = _points(tmp_path / "p.gpkg", [IN_MARGIN, INSIDE])
    with pytest.warns(UserWarning, match="outside_input"):
        out = zonal_embeddings(cog, pts, tmp_path / "z.parquet")
    res = gpd.read_parquet(out)
    assert res["status"].tolist() == ["outside_input", "ok"]
    assert res["n_cells"].tolist() == [0, 1] and res["embedding"].iloc[0] is None


def test_classify_labels_in_the_margin_are_left_out_and_counted(tmp_path, cog):
    import geopandas as gpd

    from geodino.embed.labels import sample_labels

    gdf = gpd.read_file(_points(tmp_path / "l.gpkg", [IN_MARGIN, INSIDE, (500100.0, 3999900.0)]))
    gdf["cover"] = ["a", "a", "b"]
    with EmbeddingReader(cog) as rd, pytest.warns(UserWarning) as seen:
        x, y, g, _ = sample_labels(rd, gdf, "cover")
    assert y.tolist() == ["a", "b"]
    assert g.tolist() == [1, 2] and len(x) == 2
    said = " ".join(str(w.message) for w in seen)
    assert "1 of 3 labels is ignored" in said and "1 outside its input's bounds" in said


def test_rasters_without_the_record_place_positions_on_the_whole_raster(tmp_path, cog):
    import geopandas as gpd
    import rasterio

    old = tmp_path / "old.tif"
    with rasterio.open(cog) as src:
        profile, data, tags = src.profile, src.read(), src.tags()
    tags.pop("GEODINO_INPUT_BOUNDS")
    with rasterio.open(old, "w", **profile) as dst:  # as written before the bounds were recorded
        dst.write(data)
        dst.update_tags(**tags)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = gpd.read_parquet(zonal_embeddings(old, _points(tmp_path / "p.gpkg", [IN_MARGIN]), tmp_path / "z.parquet"))
    assert res["status"].tolist() == ["ok"]
    assert similarity_map(old, tmp_path / "s.tif", point=IN_MARGIN).exists()
    assert np.isfinite(rasterio.open(tmp_path / "s.tif").read(1)).any()
