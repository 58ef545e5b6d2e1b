"""A run on a datacube without a CRS (`allow_no_crs`) exported a STAC item with a null geometry that did not say why
(only the docs did). The recorded extent now carries a note, and the item says why in `geodino:extent_note`: the
data have no CRS, the sources' kind has no footprint here, or the extent failed to compute (each its own text)."""

from __future__ import annotations

import json
from types import SimpleNamespace

import numpy as np
import pytest

import geodino
from geodino.data.sensor_yaml import save_sensor_yaml
from geodino.data.sensors import Sensor
from geodino.models.checkpoints.stac_item import export_item_path, training_properties
from geodino.train.data_extent import training_extent
from tests.helpers import write_zarr3
from tests.train.test_pretrain_api_bands import TINY


def _nocrs(root) -> tuple[str, str]:
    """(store, sensor YAML): a 3-band uint16 (band, y, x) store with plain pixel coordinates and no CRS."""
    import xarray as xr

    data = np.random.default_rng(0).integers(1, 4000, (3, 32, 32)).astype("uint16")
    coords = {"band": ["B1", "B2", "B3"], "y": np.arange(32) + 0.5, "x": np.arange(32) + 0.5}
    store = root / "web.zarr"
    write_zarr3(xr.DataArray(data, dims=("band", "y", "x"), coords=coords, name="dn").to_dataset(), store)
    sensor = save_sensor_yaml(Sensor("s3", ("B1", "B2", "B3"), 1e-4, (0.2,) * 3, (0.1,) * 3, True), root / "s3.yaml")
    return str(store), str(sensor)


def test_the_export_of_a_run_on_a_cube_without_crs_says_why_it_has_no_geometry(tmp_path):
    store, sensor = _nocrs(tmp_path)
    source = f"{{type: cube, paths: ['{store}'], sensor: '{sensor}', tile_size: 16, allow_no_crs: true, name: web}}"
    out = geodino.pretrain(None, tmp_path / "run", steps=1, overrides=[f"data.sources=[{source}]", *TINY])
    item = json.loads(export_item_path(out / "export" / "teacher.pth").read_text())
    assert item["geometry"] is None and "bbox" not in item
    note = item["properties"]["geodino:extent_note"]
    assert note == (
        f"no geometry: the training data have no CRS ({store} of source 'web', read with allow_no_crs), so they "
        "cannot be placed on a map"
    )


def test_a_failed_extent_and_sources_without_footprints_have_their_own_notes(monkeypatch):
    import geodino.data.footprints as footprints

    def boom(*args, **kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr(footprints, "union_footprint", boom)
    raster = SimpleNamespace(placed_scenes=lambda: [SimpleNamespace(crs="EPSG:32633")], tiles=None)
    with pytest.warns(UserWarning, match=r"extent was not computed \(boom\)"):
        extent = training_extent([raster])
    props = training_properties({"data_extent": extent})
    assert props["geodino:extent_note"] == "no geometry: the training data's extent failed to compute (boom)"
    assert "geometry" not in props

    from geodino.data.images import ImageFolderSource

    chips = object.__new__(ImageFolderSource)  # its class names its kind; nothing of it is read
    props = training_properties({"data_extent": training_extent([chips])})
    assert props["geodino:extent_note"] == (
        "no geometry: only raster sources and datacubes give a footprint here, and this run's data are image folders"
    )
    assert "geodino:extent_note" not in training_properties({"data_extent": None})  # a checkpoint from before


def test_a_cube_with_a_crs_gives_its_footprint(tmp_path):
    """Datacube sources had no footprint (only raster sources did): a run on a placed cube exported a null
    geometry. Its extent is now the cube's grid, projected to EPSG:4326 like a raster scene's."""
    from rasterio.warp import transform_bounds

    from geodino.data.config import SourceConfig
    from geodino.data.source_build import build_source
    from tests.data.test_curate_cube_dates import T, write_dated_cube

    data = np.random.default_rng(0).uniform(0.1, 0.5, (3, 3, 64, 64)).astype("float32")
    store, sensor = write_dated_cube(tmp_path, data)
    cfg = SourceConfig(name="cube", type="cube", paths=[store], sensor=sensor, tile_size=32)
    source = build_source(cfg, progress=False)
    extent = training_extent([source])
    assert extent["geometry"] is not None and "note" not in extent
    west, south, east, north = transform_bounds("EPSG:32633", "EPSG:4326", T.c, T.f - 640, T.c + 640, T.f)
    assert np.allclose(extent["bbox"], [west, south, east, north], atol=1e-6)
