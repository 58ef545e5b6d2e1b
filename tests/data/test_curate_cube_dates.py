"""Curated cube tiles under time_sampling first/last name the date the cube source reads: where the chosen date
is a missing acquisition (all NaN in the tile), the source falls back to the nearest date with data
(`CubeSource.dated_read`), and the curated list records that date, not the missing one."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import yaml
from affine import Affine

from geodino import cli
from geodino.config import load_config
from geodino.data.config import SourceConfig
from geodino.data.curate.tiles import Tiles
from geodino.data.loaders import build_sources
from geodino.data.sensor_yaml import save_sensor_yaml
from geodino.data.sensors import Sensor
from geodino.train.config import PretrainConfig
from tests.helpers import write_zarr3

T = Affine(10.0, 0.0, 500000.0, 0.0, -10.0, 4650000.0)
SPEC = "arch:vit_tiny?depth=1&seed=0&layerscale_init=1.0"


def _cube(root, missing: int) -> tuple[str, str]:
    """(store, sensor YAML): a float32 64x64 cube of 3 dates (2024-01..03), date k holding k + 1 over 3 bands,
    except date `missing`, all NaN over columns 0-31 (a missing acquisition there)."""
    data = np.stack([np.full((3, 64, 64), k + 1.0, "float32") for k in range(3)])
    data[missing, :, :, :32] = np.nan
    rng = np.random.default_rng(0)
    data += rng.uniform(0, 0.5, data.shape).astype("float32")  # distinct tiles for the embedding
    return write_dated_cube(root, data)


def write_dated_cube(root, data: np.ndarray) -> tuple[str, str]:
    """(store, sensor YAML) of `data` [3 dates (2024-01..03), 3 bands B1-B3, 64, 64] as a Zarr cube in UTM 33N
    (10 m pixels), and a sensor with scale 0.1."""
    import rioxarray  # noqa: F401
    import xarray as xr

    coords = {
        "time": np.array(["2024-01-01", "2024-02-01", "2024-03-01"], "datetime64[ns]"),
        "band": ["B1", "B2", "B3"],
        "y": T.f + (np.arange(64) + 0.5) * T.e,
        "x": T.c + (np.arange(64) + 0.5) * T.a,
    }
    da = xr.DataArray(data, dims=("time", "band", "y", "x"), coords=coords, name="refl").rio.write_crs("EPSG:32633")
    store = root / "cube.zarr"
    write_zarr3(da.to_dataset(), store)
    sensor = save_sensor_yaml(Sensor("s3", ("B1", "B2", "B3"), 0.1, (0.2,) * 3, (0.1,) * 3, True), root / "s3.yaml")
    return str(store), str(sensor)


@pytest.mark.parametrize(("sampling", "missing", "fallback"), [("last", 2, 1), ("first", 0, 1)])
def test_curated_tiles_record_the_date_the_source_falls_back_to(tmp_path, sampling, missing, fallback):
    """The chosen date is all NaN in the left half: tiles there record the nearest date with data (the previous
    one for last, the next for first) and read valid pixels of that date; the right half keeps the chosen date."""
    store, sensor = _cube(tmp_path, missing)
    cfg = SourceConfig(name="cube", type="cube", paths=[store], sensor=sensor, tile_size=32, time_sampling=sampling)
    tiles = Tiles([cfg])
    assert len(tiles) == 4
    tiles.set_times([tiles.read(k)[3] for k in range(len(tiles))])  # the dates the reads fell back to
    by_col = dict(zip(tiles.table["col"], tiles.table["time"]))
    assert by_col == {0: fallback, 32: missing}
    for k in range(len(tiles)):
        image, valid, _ = tiles[k]
        assert valid.all()
        t = tiles.table["time"][k]
        assert np.all((image >= (t + 1) * 0.1 - 1e-6) & (image <= (t + 1.5) * 0.1 + 1e-6))


def test_curated_list_of_a_cube_with_a_missing_last_date_trains_on_data(tmp_path, capsys):
    """`geodino data curate` on a last-date cube whose last date is missing in the left half keeps every tile
    (none dropped as nodata), records the previous date there, and the curated list reads valid pixels back."""
    store, sensor = _cube(tmp_path, 2)
    out = curate_cube(tmp_path, store, sensor, "last", size=4)
    table = pd.read_parquet(out / "tiles.parquet")
    assert dict(zip(table.col, table.time)) == {0: 1, 32: 2}
    assert (table.status != "nodata").all()
    data = load_config(PretrainConfig, out / "config.yaml").data
    (src,) = build_sources(data, progress=False)
    for i in range(len(src)):
        s = src.get(i, 0)
        col = round((s["transform"].c - T.c) / 10)
        assert s["time"][:10] == ("2024-02-01" if col == 0 else "2024-03-01")
        assert s["valid"].all()


def curate_cube(root, store: str, sensor: str, sampling: str, size: int):
    """The output folder of `geodino data curate` (2 clusters, no dedup, `size` kept) on the cube `store` read in
    tiles of 32 px with `time_sampling: sampling`."""
    source = {"name": "cube", "type": "cube", "paths": [str(store)], "sensor": str(sensor), "tile_size": 32}
    source["time_sampling"] = sampling
    config = root / "pretrain.yaml"
    config.write_text(yaml.safe_dump({"batch_size": 2, "output_dir": "runs/c", "data": {"sources": [source]}}))
    out = root / "cur"
    argv = ["data", "curate", "--config", config, "-b", SPEC, "-o", out, "--size", str(size)]
    argv += ["--clusters", "2", "--dedup", "1.0", "--no-progress"]
    assert cli.main([str(a) for a in argv]) == 0
    return out
