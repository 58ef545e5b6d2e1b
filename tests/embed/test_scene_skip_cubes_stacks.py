"""`--on-error skip` over many scenes skipped a GeoTIFF whose header GDAL cannot open, but a datacube scene no
reader opens (a Zarr store with damaged metadata, junk named .nc) and a STAC item stacked from one-band assets with
an asset GDAL cannot open still refused the whole run. Now both are skipped like the GeoTIFF (one warning, a record,
left out of the mosaic); without the flag each is one line naming the scene (or asset), and a `--resume` that forgot
the flag says an earlier run skipped it."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pytest

from geodino import cli
from geodino.embed import embed_scenes
from geodino.errors import InputError
from tests.embed.test_cube_scene_headers import _store

OPTS = {"tile": 32, "overlap": 8, "progress": False, "scale": 1e-4}


def skips(caught) -> list[str]:
    return [str(w.message) for w in caught if "skipped scene" in str(w.message)]


def test_unreadable_cubes_are_skipped_and_refused_in_one_line_without_skip(tmp_path: Path, conv_bb, capfd) -> None:
    d = tmp_path / "in"
    d.mkdir()
    _store(d / "a.zarr", 4e6)
    _store(d / "b.zarr", 4e6 - 320)
    for meta in (d / "b.zarr").glob(".z*"):  # metadata damaged (a copy cut short): no reader opens the store
        meta.write_text("{not json")
    (d / "c.nc").write_bytes(np.random.default_rng(0).integers(0, 256, 100, dtype=np.uint8).tobytes())
    out = tmp_path / "f"
    with pytest.warns(UserWarning) as caught:
        (mosaic,) = embed_scenes(d, backbone=conv_bb, out=out, bands=[1, 2, 3], on_error="skip", **OPTS)
    lines = skips(caught)
    assert len(lines) == 2 and "skipped scene b (" in lines[0] and "skipped scene c (" in lines[1], lines
    assert "cannot open its header (JSONDecodeError: " in lines[0] and "re-download or re-copy it" in lines[0]
    assert sorted(p.name for p in out.glob("*.tif")) == ["a.tif"] and mosaic.exists()
    assert json.loads((out / "b.skipped.json").read_text())["file"] == str(d / "b.zarr")
    assert sorted(r["scene"] for r in json.loads((out / "catalog.json").read_text())["geodino:skipped"]) == ["b", "c"]

    # the default stops before anything is written: one line naming the store, exit 2; a resume is told of the skip
    argv = ["embed", str(d), "-b", "arch:vit_tiny?depth=1&patch_size=8&bands=3&seed=0", "--bands", "1,2,3"]
    capfd.readouterr()
    with warnings.catch_warnings():
        assert cli.main([*argv, "--out", str(tmp_path / "g"), "--no-progress", "--scale", "1e-4"]) == 2
    (err,) = capfd.readouterr().err.strip().splitlines()
    assert (
        err.startswith(f"geodino: error: 2 of 3 scenes cannot be read: {d / 'b.zarr'}: JSONDecodeError: ")
        and not (tmp_path / "g").exists()
    )  # both unreadable scenes in one line (the first alone before)
    assert f"; also {d / 'c.nc'}; " in err and "(datacubes: open them with xarray), re-download or re-copy them" in err
    with pytest.raises(InputError, match=r"b\.zarr: .*an earlier run into .* skipped b, c: pass --on-error skip"):
        embed_scenes(d, backbone=conv_bb, out=out, bands=[1, 2, 3], resume=True, **OPTS)


def test_a_stack_with_an_unreadable_asset_is_skipped_and_retried_once_fixed(tmp_path: Path, conv_bb) -> None:
    pytest.importorskip("pystac")
    from tests.embed.test_stac_bands import archive

    items, _ = archive(tmp_path, n=3)
    green = tmp_path / "cogs" / "S2_1_green.tif"
    good = green.read_bytes()
    green.write_bytes(b"junk" * 10)
    out = tmp_path / "f"
    run = {"backbone": conv_bb, "out": out, "asset": "red,green,blue", **OPTS}
    with pytest.raises(InputError, match=r"^cannot read 'green' \(.*S2_1_green\.tif\) of assets red, green, blue"):
        embed_scenes(items, **run)
    assert not out.exists()  # refused before anything was written, as before
    with pytest.warns(UserWarning) as caught:
        (mosaic,) = embed_scenes(items, on_error="skip", **run)
    assert mosaic == out / "mosaic.vrt"
    (line,) = skips(caught)
    assert line.startswith("skipped scene S2_1 (") and f"cannot open its asset 'green' ('{green}' not " in line
    assert sorted(p.name for p in out.glob("*.tif")) == ["S2_0.tif", "S2_2.tif"]
    assert sorted(p.name for p in (out / "stacked").iterdir()) == ["S2_0.vrt", "S2_2.vrt"]  # no VRT of a skip
    assert "S2_1" in json.loads((out / "catalog.json").read_text())["description"]

    with pytest.raises(InputError, match=r"S2_1_green\.tif.*earlier run into .* skipped it: pass --on-error skip"):
        embed_scenes(items, resume=True, **run)
    green.write_bytes(good)  # fixed: --resume embeds it and adds it to the mosaic
    embed_scenes(items, resume=True, on_error="skip", **run)
    assert (out / "S2_1.tif").exists() and not (out / "S2_1.skipped.json").exists()

    for k in range(3):  # every item unreadable: one line naming an item, nothing written
        (tmp_path / "cogs" / f"S2_{k}_red.tif").write_bytes(b"junk")
    with pytest.raises(InputError, match=r"^none of the 3 scenes can be read \(e\.g\. assets red, green, blue of STAC"):
        embed_scenes(items, backbone=conv_bb, out=tmp_path / "g", asset="red,green,blue", on_error="skip", **OPTS)
    assert not (tmp_path / "g").exists()
