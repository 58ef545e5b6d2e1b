"""`geodino data curate --config`: every source type pretraining reads (image folders, tar shards, raster grids,
datacubes with time) curated from a config's data.sources, and the curated lists (and `config.yaml`) read back
by data.sources as exactly the kept tiles; bad inputs of the new paths."""

from __future__ import annotations

import io
import json
import tarfile

import numpy as np
import pandas as pd
import pytest
import yaml

from geodino import cli
from geodino.config import load_config
from geodino.data.loaders import build_sources
from geodino.train.config import PretrainConfig
from tests.data.conftest import write_tif
from tests.helpers import write_zarr3
from tests.test_bad_inputs import one_line_exit_2

SPEC = "arch:vit_tiny?depth=1&seed=0&layerscale_init=1.0"


def _png(arr: np.ndarray) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="PNG")
    return buf.getvalue()


def _noise(rng: np.random.Generator, *shape: int) -> np.ndarray:
    return rng.integers(1, 255, shape).astype(np.uint8)


def _archive(root) -> dict:
    """6 images, 2 shards of 3 members, a 64x64 GeoTIFF (4 tiles of 32) and a 64x64 cube with 2 time steps (8)."""
    import rioxarray  # noqa: F401
    import xarray as xr

    rng = np.random.default_rng(0)
    (root / "imgs").mkdir(parents=True)
    for i in range(6):
        (root / "imgs" / f"{i}.png").write_bytes(_png(_noise(rng, 32, 32, 3)))
    for s in range(2):
        with tarfile.open(root / f"shard-{s}.tar", "w") as tf:
            for k in range(3):
                for name, data in [(f"k{s}{k}.png", _png(_noise(rng, 32, 32, 3))), (f"k{s}{k}.json", b"{}")]:
                    info = tarfile.TarInfo(name)
                    info.size = len(data)
                    tf.addfile(info, io.BytesIO(data))
    write_tif(root / "scene.tif", _noise(rng, 3, 64, 64))
    x, y = 500000 + 5 + 10 * np.arange(64), 4650000 - 5 - 10 * np.arange(64)
    da = xr.DataArray(
        _noise(rng, 2, 3, 64, 64),
        dims=("time", "band", "y", "x"),
        coords={
            "time": np.array(["2024-01-01", "2024-02-01"], "datetime64[ns]"),
            "band": ["R", "G", "B"],
            "y": y,
            "x": x,
        },
        name="refl",
    ).rio.write_crs("EPSG:32633")
    da.attrs["_FillValue"] = 0
    write_zarr3(da.to_dataset(), root / "cube.zarr")
    sources = [
        {"name": "imgs", "type": "images", "paths": [str(root / "imgs")]},
        {"name": "shards", "type": "tar", "paths": [str(root / "shard-*.tar")], "weight": 0.5},
        {"name": "scene", "type": "raster", "paths": [str(root / "scene.tif")], "sensor": "sat493m", "tile_size": 32},
        {"name": "cube", "type": "cube", "paths": [str(root / "cube.zarr")], "sensor": "sat493m", "tile_size": 32},
    ]
    cfg = root / "pretrain.yaml"
    cfg.write_text(yaml.safe_dump({"batch_size": 2, "output_dir": "runs/mine", "data": {"sources": sources}}))
    return {"config": cfg, "sources": sources}


def test_curate_every_source_type_from_a_pretraining_config(tmp_path, capsys):
    arch = _archive(tmp_path / "a")
    out = tmp_path / "cur"
    argv = ["data", "curate", "--config", arch["config"], "-b", SPEC, "-o", out, "--size", "14"]
    argv += ["--clusters", "3", "--dedup", "1.0", "--no-progress"]
    assert cli.main([str(a) for a in argv]) == 0
    assert "geodino pretrain --config" in capsys.readouterr().out
    report = json.loads((out / "report.json").read_text())
    assert report["sources"] == {"imgs": 6, "shards": 6, "scene": 4, "cube": 8}
    assert report["tiles"] == 24 and report["kept"] == 14 and report["removed"]["cloud"] == 0
    assert set(report["cloud_rules"].values()) == {"rgb(blue=2, green=1, red=0; t=0.5)"}
    tiles = pd.read_parquet(out / "tiles.parquet")
    kept = tiles[tiles.status == "kept"]
    # the cube's 8 tiles are its 4 windows at both time steps
    cube = tiles[tiles.source == "cube"]
    assert sorted(zip(cube.col, cube.row, cube.time)) == sorted(
        (c, r, t) for c in (0, 32) for r in (0, 32) for t in (0, 1)
    )
    # config.yaml extends the input and reads back, through data.sources, exactly the kept tiles of each source
    cur = yaml.safe_load((out / "config.yaml").read_text())
    assert cur["_base_"] == str(arch["config"].resolve())
    # a run of its own: the input's output_dir would be taken for a resume of that run (refused since it changes data)
    assert cur["output_dir"] == "runs/mine_curated"
    data = load_config(PretrainConfig, out / "config.yaml").data
    assert data.sources and all(s.paths[0].endswith(f"curated_{s.name}.parquet") for s in data.sources)
    assert {s.name: s.weight for s in data.sources}.get("shards", 0.5) == 0.5
    built = {s.name: s for s in build_sources(data, progress=False)}
    assert sum(len(s) for s in built.values()) == 14
    for name, src in built.items():
        rows = kept[kept.source == name]
        listed = pd.read_parquet(out / f"curated_{name}.parquet")
        assert len(src) == len(rows) == len(listed)
        got = [src.get(i, 0) for i in range(len(src))]
        if name == "imgs":
            assert sorted(g["path"] for g in got) == sorted(rows.path)
        elif name == "shards":
            assert sorted(g["path"].split(":")[-1] for g in got) == sorted(rows.member)
            assert "member" in listed.columns and "col" not in listed.columns
        else:
            want = sorted(zip(rows.col, rows.row, rows.time)) if name == "cube" else sorted(zip(rows.col, rows.row))
            seen = []
            for g in got:
                t = g["transform"]
                col, row = round((t.c - 500000) / 10), round((4650000 - t.f) / 10)
                seen.append(
                    (col, row, ["2024-01-01", "2024-02-01"].index(g["time"][:10])) if name == "cube" else (col, row)
                )
            assert sorted(seen) == want
            assert listed.geometry.notna().all() if hasattr(listed, "geometry") else True
    assert (out / "map.png").exists() and (out / "exemplars.png").exists()


def test_curate_paths_mode_reads_tar_and_cube(tmp_path):
    arch = _archive(tmp_path / "a")
    for kind, paths, n in (
        ("tar", [str(tmp_path / "a" / "shard-0.tar")], 3),
        ("cube", [str(tmp_path / "a" / "cube.zarr")], 8),
    ):
        out = tmp_path / f"cur_{kind}"
        tiles = ["--tile-size", "32"] if kind == "cube" else []  # tar members are whole tiles (refused there)
        argv = ["data", "curate", *paths, "--type", kind, "--sensor", "sat493m", *tiles, "-b", SPEC]
        argv += ["-o", str(out), "--size", "2", "--clusters", "2", "--dedup", "1.0", "--no-progress"]
        assert cli.main(argv) == 0
        assert json.loads((out / "report.json").read_text())["tiles"] == n
        assert len(pd.read_parquet(out / "curated.parquet")) == 2
    assert arch["config"].exists()


def test_curate_config_bad_inputs(capsys, tmp_path):
    arch = _archive(tmp_path / "a")
    base = ["data", "curate", "-b", SPEC, "-o", tmp_path / "o", "--size", "2"]

    def config_with(sources) -> str:
        p = tmp_path / "a" / f"bad{len(list((tmp_path / 'a').glob('bad*')))}.yaml"
        p.write_text(yaml.safe_dump({"data": {"sources": sources}}))
        return str(p)

    one_line_exit_2(capsys, tmp_path, *base, "--config", tmp_path / "nope.yaml", expect=("nope.yaml does not exist",))
    one_line_exit_2(capsys, tmp_path, *base, expect=("either PATHS or --config", "give one"))
    one_line_exit_2(capsys, tmp_path, *base, tmp_path / "a" / "imgs", "--config", arch["config"], expect=("not both",))
    synth = config_with([{"type": "synthetic", "sensor": "sat493m"}])
    one_line_exit_2(
        capsys, tmp_path, *base, "--config", synth, expect=("data.sources[0] (type synthetic)", "no fixed tile list")
    )
    stack = config_with([{**arch["sources"][3], "time_sampling": "stack"}])
    one_line_exit_2(capsys, tmp_path, *base, "--config", stack, expect=("data.sources[0]: time_sampling stack",))
    one_line_exit_2(
        capsys, tmp_path, *base, "--config", arch["config"], "--cloud-rule", "qa",
        expect=("--cloud-rule qa: sensor 'imagenet' has no SCL, QA60 or QA_PIXEL band; choose another --cloud-rule",
                "(cloud_rule= in Python)"),
    )  # fmt: skip
    one_line_exit_2(
        capsys,
        tmp_path,
        *base,
        "--config",
        arch["config"],
        "--size",
        "99",
        expect=("larger than the archive (24 tiles)",),
    )


def test_a_tile_list_naming_a_missing_member_is_one_line(tmp_path):
    from geodino.data.config import SourceConfig
    from geodino.data.loaders import build_source
    from geodino.errors import InputError

    _archive(tmp_path / "a")
    lst = tmp_path / "list.parquet"
    pd.DataFrame({"path": [str(tmp_path / "a" / "shard-0.tar")], "member": ["gone.png"]}).to_parquet(lst)
    with pytest.raises(InputError, match=r"tile list names gone\.png in .*shard-0\.tar, which the shard does not hold"):
        build_source(SourceConfig(type="tar", paths=[str(lst)]))


def test_a_raster_window_list_is_refused_by_an_images_source(tmp_path):
    """Read as images, a curated list of raster windows gave one whole-scene image per listed scene."""
    from geodino.data.loaders import DataConfig, SourceConfig
    from geodino.errors import InputError

    scene = write_tif(tmp_path / "s.tif", np.zeros((3, 64, 64), np.uint8))
    listed = tmp_path / "curated.parquet"
    pd.DataFrame(
        {"path": [str(scene)] * 2, "col": [0, 32], "row": [0, 0], "width": [32, 32], "height": [32, 32]}
    ).to_parquet(listed)
    for kind in ("images", "tar"):
        cfg = DataConfig(sources=[SourceConfig(type=kind, paths=[str(listed)])])
        with pytest.raises(
            InputError, match=rf"\(type {kind}\): .*curated.parquet lists raster windows .*type: raster"
        ):
            build_sources(cfg, progress=False)
