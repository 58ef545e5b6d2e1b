"""Many scenes in one run: folder / glob / list / STAC -> one feature raster per scene + a VRT mosaic."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from rasterio.transform import from_origin

from geodino.embed import embed_raster, embed_scenes
from geodino.embed.pipeline import run_lines
from geodino.embed.stac import gdal_path, read_stac
from tests.embed.conftest import random_image, read_all, stac_item, write_tif

OPTS = {"tile": 32, "overlap": 8, "progress": False}
X0, Y0 = 500000.0, 4000000.0


def three_scenes(root: Path) -> dict[str, Path]:
    """a and c overlap (c's top-left quarter is nodata), b lies to the right of a with a 4-cell gap."""
    root.mkdir(parents=True, exist_ok=True)
    c = random_image(64, 64, seed=3)
    c[:, :32, :32] = 0  # nodata=0 in every band: invalid
    return {
        "a": write_tif(root / "a.tif", random_image(64, 64, seed=1), transform=from_origin(X0, Y0, 10, 10)),
        "b": write_tif(root / "b.tif", random_image(64, 64, seed=2), transform=from_origin(X0 + 800, Y0, 10, 10)),
        "c": write_tif(root / "c.tif", c, transform=from_origin(X0 + 320, Y0 - 320, 10, 10), nodata=0),
    }


def test_folder_gives_one_raster_per_scene_and_a_mosaic(tmp_path, conv_bb):
    scenes = three_scenes(tmp_path / "scenes")
    out = tmp_path / "feats"
    (mosaic,) = embed_scenes(tmp_path / "scenes", backbone=conv_bb, out=out, **OPTS)
    assert mosaic == out / "mosaic.vrt"
    singles = {}
    for name, path in scenes.items():  # each scene's raster is what embed_raster writes for it alone
        ref = embed_raster(path, conv_bb, tmp_path / "ref" / f"{name}.tif", **OPTS)
        singles[name] = read_all(ref)[0]
        np.testing.assert_array_equal(read_all(out / f"{name}.tif")[0], singles[name])
    m, crs, t, desc, tags, nodata = read_all(mosaic)
    assert crs == "EPSG:32633" and t == from_origin(X0, Y0, 40, 40)
    assert m.shape == (8, 24, 36)  # a: rows 0-16 cols 0-16; b: rows 0-16 cols 20-36; c: rows 8-24 cols 8-24
    assert desc[0] == "E000" and tags["GEODINO_MODEL_FINGERPRINT"] == "toyconv" and np.isnan(nodata)
    # the scenes' input bounds together (not a's alone), no one scene's window or input nodata (a: none, c: 0)
    assert json.loads(tags["GEODINO_INPUT_BOUNDS"]) == [X0, Y0 - 960, X0 + 1440, Y0]
    assert "GEODINO_INPUT_WINDOW" not in tags and "GEODINO_INPUT_NODATA" not in tags
    a, b, c = singles["a"], singles["b"], singles["c"]
    np.testing.assert_array_equal(m[:, :16, :8], a[:, :, :8])
    np.testing.assert_array_equal(m[:, :8, 20:], b[:, :8])
    np.testing.assert_array_equal(m[:, 8:16, 24:], b[:, 8:, 4:])
    assert np.isnan(m[:, :8, 16:20]).all() and np.isnan(m[:, 16:, :8]).all() and np.isnan(m[:, 16:, 24:]).all()
    # c (drawn last) wins over a and b where it is valid; a shows through c's nodata quarter
    np.testing.assert_array_equal(m[:, 16:24, 8:24], c[:, 8:])
    np.testing.assert_array_equal(m[:, 8:16, 16:24], c[:, :8, 8:])
    np.testing.assert_array_equal(m[:, 8:16, 8:16], a[:, 8:16, 8:16])
    from geodino.embed.writers import EmbeddingReader

    with EmbeddingReader(mosaic) as r:  # the products read the mosaic like one feature raster
        assert r.metadata["model_fingerprint"] == "toyconv" and r.metadata["input"] == "mosaic of 3 scenes"
        feats, valid = r.read()
        assert valid.sum() == np.isfinite(m[0]).sum() and np.allclose(feats[:, valid], m[:, valid])
    assert np.isnan(c[:, :8, :8]).all()


def test_scenes_in_two_crs_get_one_mosaic_each(tmp_path, conv_bb):
    (tmp_path / "s").mkdir()
    write_tif(tmp_path / "s" / "north.tif", random_image(32, 32, seed=1), crs="EPSG:32633")
    write_tif(tmp_path / "s" / "south.tif", random_image(32, 32, seed=2), crs="EPSG:32733")
    written = embed_scenes(tmp_path / "s", backbone=conv_bb, out=tmp_path / "f", **OPTS)
    assert [p.name for p in written] == ["mosaic_EPSG_32633.vrt", "mosaic_EPSG_32733.vrt"]
    for p, name in zip(written, ("north", "south")):
        np.testing.assert_array_equal(read_all(p)[0], read_all(tmp_path / "f" / f"{name}.tif")[0])


def test_a_killed_run_redoes_only_unfinished_scenes(tmp_path, conv_bb, monkeypatch):
    import geodino.embed.pipeline as pipeline
    from geodino.embed import sweep
    from geodino.errors import InputError

    three_scenes(tmp_path / "scenes")
    glob, out, opts = str(tmp_path / "scenes" / "*.tif"), tmp_path / "feats", {**OPTS, "chunk": 8}
    embed_scenes(glob, backbone=conv_bb, out=tmp_path / "ref", **opts)  # the uninterrupted run
    calls: list[str] = []
    real = pipeline.embed_raster
    spy = lambda inp, *a, **k: calls.append(Path(inp).name) or real(inp, *a, **k)
    monkeypatch.setattr(pipeline, "embed_raster", spy)

    def kill(n_blocks: int, n_rows: int) -> None:  # the sweep's fault seam: killed in scene b after one block
        if calls[-1] == "b.tif" and n_blocks >= 1:
            raise KeyboardInterrupt("simulated kill")

    monkeypatch.setattr(sweep, "_after_row", kill)
    with pytest.raises(KeyboardInterrupt):
        embed_scenes(glob, backbone=conv_bb, out=out, **opts)
    monkeypatch.setattr(sweep, "_after_row", lambda *a: None)
    left = sorted(p.name for p in out.iterdir())  # a: done, with its item; the cells the scenes share
    assert left == [".b.tif.partial", "a.stac.json", "a.tif", "cell_grid.json"]
    with pytest.raises(InputError, match=r"2 of 3 scene outputs already exist .*pass --resume"):
        embed_scenes(glob, backbone=conv_bb, out=out, **opts)
    a_time = (out / "a.tif").stat().st_mtime_ns
    calls.clear()
    embed_scenes(glob, backbone=conv_bb, out=out, resume=True, **opts)
    assert calls == ["b.tif", "c.tif"] and (out / "a.tif").stat().st_mtime_ns == a_time
    for name in ("a", "b", "c"):  # b resumed inside the scene, bytes as the uninterrupted run
        np.testing.assert_array_equal(read_all(out / f"{name}.tif")[0], read_all(tmp_path / "ref" / f"{name}.tif")[0])
    assert (out / "mosaic.vrt").exists() and not (out / ".b.tif.partial").exists()


def test_a_resumed_folder_prepares_each_scene_once(tmp_path, monkeypatch):
    """The resume check of a partial scene prepares it (input opened, probe forward, plan) and its run reuses that
    preparation: one `prepare` per scene (finished, partial or untouched), and the bytes of an uninterrupted run."""
    from collections import Counter

    import geodino.embed.pipeline as pipeline
    from geodino.embed import sweep

    three_scenes(tmp_path / "scenes")
    bb, opts = "arch:vit_tiny?seed=0&depth=1&patch_size=8", {**OPTS, "chunk": 8}
    embed_scenes(tmp_path / "scenes", backbone=bb, out=tmp_path / "ref", **opts)  # the uninterrupted run
    running: list[str] = []
    real_embed, real_prepare = pipeline.embed_raster, pipeline.prepare
    monkeypatch.setattr(
        pipeline, "embed_raster", lambda inp, *a, **k: running.append(Path(inp).name) or real_embed(inp, *a, **k)
    )

    def kill(n_blocks: int, n_rows: int) -> None:  # killed in scene b after one block: a finished, c untouched
        if running[-1] == "b.tif" and n_blocks >= 1:
            raise KeyboardInterrupt("simulated kill")

    monkeypatch.setattr(sweep, "_after_row", kill)
    out = tmp_path / "feats"
    with pytest.raises(KeyboardInterrupt):
        embed_scenes(tmp_path / "scenes", backbone=bb, out=out, **opts)
    monkeypatch.setattr(sweep, "_after_row", lambda *a: None)
    left = sorted(p.name for p in out.iterdir())  # a: done, with its item; the cells the scenes share
    assert left == [".b.tif.partial", "a.stac.json", "a.tif", "cell_grid.json"]
    prepared: Counter[str] = Counter()

    def prepare(inp, *a):  # a run opens its input (a source) before it loads the backbone, then prepares it
        prepared.update([Path(getattr(inp, "path", inp)).name])
        return real_prepare(inp, *a)

    monkeypatch.setattr(pipeline, "prepare", prepare)
    running.clear()
    embed_scenes(tmp_path / "scenes", backbone=bb, out=out, resume=True, **opts)
    assert running == ["b.tif", "c.tif"]
    assert prepared == {"a.tif": 1, "b.tif": 1, "c.tif": 1}  # b was prepared twice: by its check and by its run
    for name in ("a", "b", "c"):
        np.testing.assert_array_equal(read_all(out / f"{name}.tif")[0], read_all(tmp_path / "ref" / f"{name}.tif")[0])


def test_ranks_split_scenes_and_the_last_writes_the_mosaic(tmp_path, conv_bb):
    scenes = three_scenes(tmp_path / "scenes")
    listing = tmp_path / "list.txt"
    listing.write_text("# scenes\n" + "\n".join(f"scenes/{p.name}" for p in scenes.values()) + "\n")
    out = tmp_path / "feats" / "all.vrt"
    assert embed_scenes(listing, backbone=conv_bb, out=out, world_size=2, rank=0, **OPTS) == []
    made = sorted(p.name for p in out.parent.iterdir())
    assert made == ["a.stac.json", "a.tif", "c.stac.json", "c.tif", "cell_grid.json"]  # 0, 2; the shared cells
    assert embed_scenes(listing, backbone=conv_bb, out=out, world_size=2, rank=1, **OPTS) == [out]
    names = ["a.stac.json", "a.tif", "all.vrt", "b.stac.json", "b.tif", "c.stac.json", "c.tif", "catalog.json"]
    names.append("cell_grid.json")  # the cells the scenes share, recorded by rank 0
    assert sorted(p.name for p in out.parent.iterdir()) == names  # each scene's STAC item; the last rank's catalog


def write_cog(path: Path, seed: int, x0: float) -> Path:
    import rasterio

    data = random_image(48, 48, c=4, seed=seed)
    profile = {"driver": "COG", "height": 48, "width": 48, "count": 4, "dtype": "uint8", "crs": "EPSG:32633"}
    with rasterio.open(path, "w", transform=from_origin(x0, Y0, 10, 10), **profile) as dst:
        dst.write(data)
    return path


EO_BANDS = [{"name": n, "common_name": c} for n, c in (("B2", "blue"), ("B3", "green"), ("B4", "red"), ("B8", "nir"))]


def item_dict(item_id: str, href: str, asset: str = "image") -> dict:
    return stac_item(item_id, {asset: {"href": href, "type": "image/tiff; application=geotiff", "eo:bands": EO_BANDS}})


def item_collection(root: Path, items: list[dict]) -> Path:
    path = root / "items.json"
    path.write_text(json.dumps({"type": "FeatureCollection", "features": items}))
    return path


def test_stac_item_collection_bands_by_name(tmp_path, conv_bb):
    pytest.importorskip("pystac")
    (tmp_path / "cogs").mkdir()
    cogs = [write_cog(tmp_path / "cogs" / f"s{k}.tif", k, X0 + 480 * k) for k in range(2)]
    items = item_collection(tmp_path, [item_dict(f"S2_{k}", f"cogs/s{k}.tif") for k in range(2)])
    scenes = read_stac(str(items), "image", ["red", "green", "B2"])
    assert [(s.name, s.path, s.bands) for s in scenes] == [(f"S2_{k}", str(cogs[k]), [3, 2, 1]) for k in range(2)]
    (mosaic,) = embed_scenes(items, backbone=conv_bb, out=tmp_path / "feats", asset="image",
                             asset_bands=["red", "green", "blue"], **OPTS)  # fmt: skip
    ref = embed_raster(cogs[1], conv_bb, tmp_path / "ref.tif", bands=[3, 2, 1], **OPTS)
    np.testing.assert_array_equal(read_all(tmp_path / "feats" / "S2_1.tif")[0], read_all(ref)[0])
    m = read_all(mosaic)[0]
    assert m.shape == (8, 12, 24)
    np.testing.assert_array_equal(m[:, :, 12:], read_all(ref)[0])


def test_stac_static_catalog_written_by_pystac(tmp_path, conv_bb):
    pystac = pytest.importorskip("pystac")
    cog = write_cog(tmp_path / "scene.tif", 5, X0)
    cat = pystac.Catalog(id="archive", description="test archive")
    item = pystac.Item.from_dict(item_dict("scene-1", str(cog)))
    cat.add_item(item)
    cat.normalize_hrefs(str(tmp_path / "catalog"))
    cat.make_all_asset_hrefs_relative()
    cat.save(catalog_type=pystac.CatalogType.SELF_CONTAINED)
    href = json.loads((tmp_path / "catalog" / "scene-1" / "scene-1.json").read_text())["assets"]["image"]["href"]
    assert not Path(href).is_absolute()  # resolved against the item's own file
    scenes = read_stac(str(tmp_path / "catalog" / "catalog.json"), "image", ["1", "2", "3"])
    assert [(s.name, Path(s.path).resolve(), s.bands) for s in scenes] == [("scene-1", cog.resolve(), [1, 2, 3])]
    embed_scenes(tmp_path / "catalog" / "catalog.json", backbone=conv_bb, out=tmp_path / "f", asset="image",
                 asset_bands=["1", "2", "3"], **OPTS)  # fmt: skip
    ref = embed_raster(cog, conv_bb, tmp_path / "ref.tif", bands=[1, 2, 3], **OPTS)
    np.testing.assert_array_equal(read_all(tmp_path / "f" / "scene-1.tif")[0], read_all(ref)[0])


def test_remote_hrefs_become_gdal_virtual_paths(tmp_path):
    pytest.importorskip("pystac")
    assert gdal_path("https://host/a/b.tif") == "/vsicurl/https://host/a/b.tif"
    assert gdal_path("s3://bucket/key/b.tif") == "/vsis3/bucket/key/b.tif"
    assert gdal_path("gs://bucket/b.tif") == "/vsigs/bucket/b.tif"
    assert gdal_path("file:///data/b.tif") == "/data/b.tif" and gdal_path("/data/b.tif") == "/data/b.tif"
    items = item_collection(tmp_path, [item_dict("r", "https://example.invalid/s/r.tif")])
    (scene,) = read_stac(str(items), "image", None)  # parsing only: nothing is fetched
    assert scene.path == "/vsicurl/https://example.invalid/s/r.tif" and scene.bands is None


def test_shell_expanded_glob_reaches_the_cli_as_many_inputs(tmp_path, monkeypatch):
    from geodino import cli
    from geodino.embed import scenes as scenes_mod

    three_scenes(tmp_path / "scenes")
    seen = {}
    monkeypatch.setattr(scenes_mod, "embed_scenes", lambda inputs, cfg: seen.update(inputs=inputs, cfg=cfg))
    files = sorted(str(p) for p in (tmp_path / "scenes").glob("*.tif"))
    assert cli.main(["embed", *files, "-b", "arch:vit_tiny", "--out", str(tmp_path / "f"), "tile=64"]) == 0
    assert seen["inputs"] == files and seen["cfg"].tile == 64


def test_outputs_inside_the_input_folder_are_not_scenes_and_pystac_is_named(tmp_path, conv_bb, monkeypatch):
    import sys

    from geodino.errors import ConfigError

    three_scenes(tmp_path / "scenes")
    out = tmp_path / "scenes" / "feats"
    embed_scenes(tmp_path / "scenes", backbone=conv_bb, out=out, **OPTS)
    mtimes = {p.name: p.stat().st_mtime_ns for p in out.glob("*.tif")}
    (mosaic,) = embed_scenes(tmp_path / "scenes", backbone=conv_bb, out=out, resume=True, **OPTS)
    assert read_all(mosaic)[4]["GEODINO_INPUT"] == "mosaic of 3 scenes"  # not of its own outputs
    assert sorted(mtimes) == ["a.tif", "b.tif", "c.tif"]
    assert {p.name: p.stat().st_mtime_ns for p in out.glob("*.tif")} == mtimes
    monkeypatch.setitem(sys.modules, "pystac", None)  # as if the [stac] extra were not installed
    with pytest.raises(ConfigError, match=r"reading STAC needs pystac: pip install 'geodino\[stac\]'"):
        read_stac(str(item_collection(tmp_path, [])), "image")


def test_an_earlier_runs_output_folder_in_the_inputs_is_left_out_unless_named(tmp_path, conv_bb):
    """`embed archive/ --out archive/feats/`, then `--out archive/feats2/`: the second run took feats/ (its
    feature rasters and mosaic.vrt, 8 bands here, 192 for a ViT-S) for scenes and refused the band counts."""
    from geodino.embed.scene_list import list_scenes

    three_scenes(tmp_path / "scenes")
    embed_scenes(tmp_path / "scenes", backbone=conv_bb, out=tmp_path / "scenes" / "feats", **OPTS)
    with pytest.warns(UserWarning, match=r"left out 4 rasters of an earlier geodino embed output \(.*feats \(4\): "
                      r"its catalog\.json says so\); to embed them as scenes, name the files"):  # fmt: skip
        (mosaic,) = embed_scenes(tmp_path / "scenes", backbone=conv_bb, out=tmp_path / "scenes" / "feats2", **OPTS)
    assert read_all(mosaic)[4]["GEODINO_INPUT"] == "mosaic of 3 scenes"
    named = list_scenes([str(tmp_path / "scenes"), str(tmp_path / "scenes" / "feats" / "a.tif")], quiet=True)
    paths = sorted(Path(s.path).relative_to(tmp_path).as_posix() for s in named)
    assert paths == ["scenes/a.tif", "scenes/b.tif", "scenes/c.tif", "scenes/feats/a.tif"], paths
    # a catalog two folders up (`--out project/` once) leaves the scenes below it alone; its stacked/ VRTs not
    project = tmp_path / "project"
    for sub in ("scenes", "stacked"):
        (project / sub).mkdir(parents=True)
        (project / sub / "s.tif").write_bytes((tmp_path / "scenes" / "a.tif").read_bytes())
    (project / "catalog.json").write_text((tmp_path / "scenes" / "feats" / "catalog.json").read_text())
    with pytest.warns(UserWarning, match=r"left out 1 raster of an earlier geodino embed output \(.*project \(1\)"):
        kept = list_scenes([str(project)])
    assert [Path(s.path).relative_to(project).as_posix() for s in kept] == ["scenes/s.tif"]


def test_resume_checks_the_settings_of_scenes_already_done(tmp_path, conv_bb, capsys):
    """A folder resumed with another backbone is refused before any scene is written (one line naming the scene
    and what differs), so per-scene rasters and the mosaic never mix two backbones."""
    from geodino.errors import InputError
    from tests.embed.toy_backbones import ConvBackbone

    three_scenes(tmp_path / "scenes")
    out = tmp_path / "feats"
    embed_scenes(tmp_path / "scenes", backbone=conv_bb, out=out, **OPTS)
    (out / "b.tif").unlink()
    other = ConvBackbone(in_chans=3, dim=8, patch=4, n_convs=2, seed=1)
    other.fingerprint = "toyconv-seed1"
    with pytest.raises(InputError, match=r"output .*feats/a\.tif is complete but was written with other settings: "
                       r"backbone weights toyconv \(this run: toyconv-seed1\)"):  # fmt: skip
        embed_scenes(tmp_path / "scenes", backbone=other, out=out, resume=True, **OPTS)
    assert not (out / "b.tif").exists() and not any(p.name.startswith(".b.tif") for p in out.iterdir())
    with pytest.raises(InputError, match=r"a\.tif is complete but was written with other settings: tile 32 \(this"):
        embed_scenes(tmp_path / "scenes", backbone=conv_bb, out=out, resume=True, **{**OPTS, "tile": 16})
    capsys.readouterr()
    with run_lines():  # the command's lines, without the bar
        embed_scenes(tmp_path / "scenes", backbone=conv_bb, out=out, resume=True, **OPTS)  # the same settings
    err = capsys.readouterr().err
    assert f"wrote {out / 'b.tif'} (" in err and "2 scenes already done with these settings, skipped" in err
    assert f"wrote {out / 'a.tif'}" not in err and (out / "b.tif").exists()


def test_a_mosaic_refuses_scenes_of_two_backbones(tmp_path, conv_bb):
    """Ranks launched with different backbones: the last one does not write a mosaic claiming one of them."""
    from geodino.errors import InputError
    from tests.embed.toy_backbones import ConvBackbone

    three_scenes(tmp_path / "scenes")
    other = ConvBackbone(in_chans=3, dim=8, patch=4, n_convs=2, seed=1)
    other.fingerprint = "toyconv-seed1"
    out = tmp_path / "feats"
    assert embed_scenes(tmp_path / "scenes", backbone=conv_bb, out=out, world_size=2, rank=0, **OPTS) == []
    with pytest.raises(InputError, match=r"a\.tif and b\.tif .* other settings \(model_fingerprint \S+ vs "
                       r"toyconv-seed1\), so they cannot share one mosaic"):  # fmt: skip
        embed_scenes(tmp_path / "scenes", backbone=other, out=out, world_size=2, rank=1, **OPTS)
    assert not (out / "mosaic.vrt").exists()


def test_existing_outputs_message_says_whether_the_run_is_done(tmp_path, conv_bb):
    from geodino.errors import InputError

    three_scenes(tmp_path / "scenes")
    out = tmp_path / "feats"
    embed_scenes(tmp_path / "scenes", backbone=conv_bb, out=out, **OPTS)
    with pytest.raises(InputError, match=r"all 3 scene outputs already exist in .*: this run is done; pass "
                       r"--overwrite to redo them"):  # fmt: skip
        embed_scenes(tmp_path / "scenes", backbone=conv_bb, out=out, **OPTS)
    (out / "c.tif").unlink()
    with pytest.raises(InputError, match=r"2 of 3 scene outputs already exist .*; pass --resume to finish the others"):
        embed_scenes(tmp_path / "scenes", backbone=conv_bb, out=out, **OPTS)


def test_scenes_of_one_name_in_two_formats_get_two_names(tmp_path):
    """a.tif beside a.vrt built over it (or the same stem in two folders): the folder prefix alone left the two
    names equal, and the run was refused as if one raster were listed twice. The format is added where the folder
    does not tell them apart; the same file listed twice is still refused."""
    import rasterio

    from geodino.embed.scenes import list_scenes
    from geodino.errors import InputError

    folder, other = tmp_path / "s" / "x", tmp_path / "t" / "x"
    folder.mkdir(parents=True)
    other.mkdir(parents=True)
    tif = write_tif(folder / "a.tif", random_image(3, 32, 32))
    with rasterio.open(tif) as src, rasterio.vrt.WarpedVRT(src) as vrt:
        from rasterio.shutil import copy

        copy(vrt, folder / "a.vrt", driver="VRT")
    write_tif(other / "a.tif", random_image(3, 32, 32))
    names = {Path(s.path).relative_to(tmp_path).as_posix(): s.name for s in list_scenes([str(tmp_path)])}
    assert names == {"s/x/a.tif": "s_x_a_tif", "s/x/a.vrt": "s_x_a_vrt", "t/x/a.tif": "t_x_a"}
    single = {s.name for s in list_scenes([str(folder)])}
    assert single == {"s_x_a_tif", "s_x_a_vrt"}
    with pytest.raises(InputError, match=r"appear twice in the input list"):
        list_scenes([str(tif), str(folder / ".." / "x" / "a.tif")])
