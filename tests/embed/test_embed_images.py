"""`geodino embed images DIR` / `embed_images`: one vector per image file as GeoParquet.

Vectors are checked against `backbone.features` of the same pixels computed here by hand; footprints against
`rasterio.warp.transform_bounds`; errors through `geodino.cli.main` (one line, exit code 2, nothing written).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import shapely
import torch

from geodino.embed.pipeline import run_lines
from tests import helpers

SPEC = "arch:vit_tiny?depth=1&patch_size=8&seed=0"


@pytest.fixture(scope="module")
def bb():
    from geodino.backbones import load_backbone

    return load_backbone(SPEC)


def rgb(h: int = 32, w: int = 32, seed: int = 0, c: int = 3, dtype=np.uint8, top: int = 255) -> np.ndarray:
    """[C,H,W] random pixels."""
    return (np.random.default_rng(seed).random((c, h, w)) * top).astype(dtype)


def save_png(path: Path, arr: np.ndarray) -> Path:
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(arr.transpose(1, 2, 0)).save(path)
    return path


def by_hand(bb, reflectance: np.ndarray, size: tuple[int, int] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(CLS, mean patch token) of the last block for one reflectance image [C,H,W], resized like the probes."""
    x = torch.from_numpy(reflectance.astype(np.float32))[None]
    if size is not None and tuple(x.shape[-2:]) != size:
        x = torch.nn.functional.interpolate(x, size=size, mode="bilinear", antialias=True, align_corners=False)
    maps, cls = bb.features(bb.normalize(x), layers="last")
    return cls[0][0].numpy(), maps[0][0].mean(dim=(-2, -1)).numpy()


def read(out: Path):
    import geopandas as gpd

    return gpd.read_parquet(out).set_index("path")


def meta_of(out: Path) -> dict:
    import pyarrow.parquet as pq

    return json.loads(pq.read_schema(out).metadata[b"geodino"])


def vectors(df) -> dict[str, np.ndarray]:
    return {p: np.asarray(v) for p, v in df["embedding"].items()}


def folder(tmp_path: Path) -> tuple[Path, dict[str, np.ndarray]]:
    """DIR/top.png, DIR/forest/a.png, DIR/water/deep/b.png, plus a text file and hidden images (left out)."""
    root = tmp_path / "chips"
    pix = {"top.png": rgb(seed=1), "forest/a.png": rgb(seed=2), "water/deep/b.png": rgb(seed=3)}
    for rel, arr in pix.items():
        save_png(root / rel, arr)
    (root / "notes.txt").write_text("not an image")
    save_png(root / ".cache" / "hidden.png", rgb(seed=4))
    save_png(root / "forest" / ".x.png", rgb(seed=5))
    return root, pix


# ------------------------------------------------------------------------------------------------ values


def test_cls_mean_and_both_equal_the_backbone_features_by_hand(tmp_path, bb) -> None:
    from geodino.embed import embed_images

    root, pix = folder(tmp_path)
    want = {rel: by_hand(bb, a / 255.0) for rel, a in pix.items()}
    for pool in ("cls", "mean", "cls+mean"):
        out = embed_images(root, bb, tmp_path / f"{pool}.parquet", pool=pool, progress=False)
        got = vectors(read(out))
        assert sorted(got) == sorted(pix)
        for rel, (cls, mean) in want.items():
            expect = {"cls": cls, "mean": mean, "cls+mean": np.concatenate([cls, mean])}[pool]
            assert got[rel].dtype == np.float32 and got[rel].shape == (bb.embed_dim * (2 if "+" in pool else 1),)
            np.testing.assert_allclose(got[rel], expect, rtol=1e-4, atol=1e-4)
    out = embed_images(root, bb, tmp_path / "l2.parquet", l2_normalize=True, progress=False)
    for rel, v in vectors(read(out)).items():
        np.testing.assert_allclose(v, want[rel][0] / np.linalg.norm(want[rel][0]), rtol=1e-4, atol=1e-5)


def test_several_layers_concatenate_cls_tokens_of_each_block(tmp_path) -> None:
    from geodino.backbones import load_backbone
    from geodino.embed import embed_images

    bb2 = load_backbone("arch:vit_tiny?depth=2&patch_size=8&seed=0")
    root = tmp_path / "d"
    arr = rgb(seed=7)
    save_png(root / "a.png", arr)
    out = embed_images(root, bb2, tmp_path / "o.parquet", layers="0,1", pool="cls+mean", progress=False)
    maps, cls = bb2.features(bb2.normalize(torch.from_numpy(arr / 255.0).float()[None]), layers=[0, 1])
    want = np.concatenate([cls[0][0].numpy(), cls[1][0].numpy(), maps[1][0].mean(dim=(-2, -1)).numpy()])
    np.testing.assert_allclose(vectors(read(out))["a.png"], want, rtol=1e-4, atol=1e-4)
    meta = meta_of(out)
    assert meta["layers"] == [0, 1] and meta["dim"] == 3 * bb2.embed_dim and meta["pool"] == "cls+mean"


def test_image_size_resizes_every_image_and_native_rounds_up_to_the_patch(tmp_path, bb) -> None:
    from geodino.embed import embed_images

    root = tmp_path / "mixed"
    a, b = rgb(32, 32, seed=1), rgb(24, 40, seed=2)
    save_png(root / "a.png", a)
    save_png(root / "b.png", b)
    df = read(embed_images(root, bb, tmp_path / "o.parquet", image_size=16, progress=False))
    for rel, arr in (("a.png", a), ("b.png", b)):
        np.testing.assert_allclose(df.loc[rel, "embedding"], by_hand(bb, arr / 255.0, (16, 16))[0], atol=1e-4)
    assert (df.loc["b.png", "width"], df.loc["b.png", "height"], df.loc["b.png", "bands"]) == (40, 24, 3)
    # native size 20x20 is fed at 24x24 (rounded up to the patch size 8, resized as the probes do)
    odd = tmp_path / "odd"
    c = rgb(20, 20, seed=3)
    save_png(odd / "c.png", c)
    df = read(embed_images(odd, bb, tmp_path / "odd.parquet", progress=False))
    np.testing.assert_allclose(df.loc["c.png", "embedding"], by_hand(bb, c / 255.0, (24, 24))[0], atol=1e-4)


def test_uint16_tiff_scaled_by_dtype_and_bands_selected(tmp_path, bb, capsys) -> None:
    from geodino.embed import embed_images

    root = tmp_path / "tifs"
    root.mkdir()
    dn = rgb(32, 32, seed=5, c=4, dtype=np.uint16, top=9000)
    helpers.write_tif(root / "s.tif", dn, crs=None)
    with run_lines():  # the command's lines, without the bar
        out = embed_images(root, bb, tmp_path / "o.parquet", bands=[3, 2, 1], progress=False)
    np.testing.assert_allclose(vectors(read(out))["s.tif"], by_hand(bb, dn[[2, 1, 0]] / 10000.0)[0], atol=1e-4)
    err = capsys.readouterr().err
    assert "x/10000 (by dtype: uint16" in err and "geodino: wrote" in err and "1 image, 192 dims" in err
    # an explicit scale and offset win
    with run_lines():
        embed_images(root, bb, out, bands=[1, 2, 3], scale=2e-4, offset=-0.1, overwrite=True, progress=False)
    np.testing.assert_allclose(vectors(read(out))["s.tif"], by_hand(bb, dn[:3] * 2e-4 - 0.1)[0], rtol=1e-4, atol=2e-4)
    assert "x*0.0002-0.1 (--scale, --offset)" in capsys.readouterr().err


def test_a_dark_16bit_first_image_does_not_set_the_rule_for_the_folder(tmp_path) -> None:
    """A backbone recording 8-bit DN (x/255) fits 16-bit files only while they stay <= 255. The rule used to be
    the dtype's first image's: a dark first tile (max 200) gave x/255 to every 16-bit image after it, 39x too
    bright. Now the folder is settled first (as the probes): one rule, x/10000, for both."""
    from geodino.backbones import load_backbone
    from geodino.embed import embed_images

    eight = load_backbone("arch:vit_tiny?depth=1&patch_size=8&seed=0&bands=red,green,blue&sensor=maxar")
    root = tmp_path / "tifs"
    root.mkdir()
    dark = rgb(32, 32, seed=7, dtype=np.uint16, top=200)
    light = rgb(32, 32, seed=8, dtype=np.uint16, top=4000)
    helpers.write_tif(root / "a_dark.tif", dark, crs=None)  # read first
    helpers.write_tif(root / "b_light.tif", light, crs=None)
    got = vectors(read(embed_images(root, eight, tmp_path / "o.parquet", progress=False)))
    np.testing.assert_allclose(got["a_dark.tif"], by_hand(eight, dark / 10000.0)[0], atol=1e-4)
    np.testing.assert_allclose(got["b_light.tif"], by_hand(eight, light / 10000.0)[0], atol=1e-4)


def test_the_backbones_recorded_dn_scale_is_applied(tmp_path, capsys) -> None:
    from geodino.backbones import load_backbone
    from geodino.embed import embed_images

    ls = load_backbone("arch:vit_tiny?depth=1&patch_size=8&seed=0&sensor=landsat8&bands=6")
    root = tmp_path / "ls"
    root.mkdir()
    dn = (8000 + rgb(32, 32, seed=6, c=6, dtype=np.uint16, top=20000)).astype(np.uint16)
    helpers.write_tif(root / "l.tif", dn)
    with run_lines():  # the command's lines, without the bar
        out = embed_images(root, ls, tmp_path / "o.parquet", progress=False)
    np.testing.assert_allclose(vectors(read(out))["l.tif"], by_hand(ls, dn * 2.75e-5 - 0.2)[0], atol=2e-4)
    assert "x*2.75e-05-0.2 (the backbone's DN scale: sensor landsat8)" in capsys.readouterr().err


# ------------------------------------------------------------------------------------ paths, labels, geometry


def test_paths_labels_and_sizes_of_nested_folders_read_back_with_pandas(tmp_path, bb) -> None:
    import pandas as pd
    import pyarrow.parquet as pq

    from geodino.embed import embed_images

    root, _ = folder(tmp_path)
    out = embed_images(root, bb, tmp_path / "o.parquet", progress=False)
    df = pd.read_parquet(out)
    assert df["path"].tolist() == ["forest/a.png", "top.png", "water/deep/b.png"]  # sorted; hidden, .txt left out
    assert [None if pd.isna(v) else v for v in df["label"]] == ["forest", None, "water"]
    assert df[["width", "height", "bands"]].to_numpy().tolist() == [[32, 32, 3]] * 3
    assert df["geometry"].isna().all()  # PNGs without georeferencing: null footprints, the column is still there
    # the documented way to get one numpy matrix
    col = pq.read_table(out, columns=["embedding"]).column("embedding").combine_chunks()
    x = col.flatten().to_numpy().reshape(len(col), col.type.list_size)
    assert x.shape == (3, bb.embed_dim) and x.dtype == np.float32
    np.testing.assert_array_equal(x, np.stack(df["embedding"].to_numpy()))
    assert str(pq.read_schema(out).field("embedding").type) == f"fixed_size_list<element: float>[{bb.embed_dim}]"


def test_a_georeferenced_tiff_gets_its_4326_footprint(tmp_path, bb) -> None:
    from affine import Affine
    from rasterio.warp import transform_bounds

    from geodino.embed import embed_images

    root = tmp_path / "geo"
    t = Affine(10.0, 0.0, 500000.0, 0.0, -10.0, 4650000.0)
    (root / "g").mkdir(parents=True)
    helpers.write_tif(root / "g" / "utm.tif", rgb(32, 40, seed=1), crs="EPSG:32633", transform=t)
    save_png(root / "plain.png", rgb(32, 40, seed=2))
    # crossing the antimeridian (UTM 60N): split in two at +-180 degrees (transform_bounds says west > east)
    far = Affine(2000.0, 0.0, 700000.0, 0.0, -1000.0, 5000000.0)
    helpers.write_tif(root / "g" / "dateline.tif", rgb(32, 40, seed=3), crs="EPSG:32660", transform=far)
    # a rotated grid: its true quadrilateral, whose bounds are transform_bounds' of the rotated corners
    rot = Affine.translation(500000.0, 4650000.0) * Affine.rotation(30.0) * Affine.scale(10.0, -10.0)
    helpers.write_tif(root / "rot.tif", rgb(32, 40, seed=4), crs="EPSG:32633", transform=rot)
    df = read(embed_images(root, bb, tmp_path / "o.parquet", progress=False))
    assert df.crs.to_epsg() == 4326
    want = transform_bounds("EPSG:32633", "EPSG:4326", 500000.0, 4650000.0 - 320, 500000.0 + 400, 4650000.0)
    g = df.loc["g/utm.tif", "geometry"]
    np.testing.assert_allclose(g.bounds, want, rtol=0, atol=1e-9)
    assert g.geom_type == "Polygon" and len(g.exterior.coords) == 4 * 20 + 1  # 21 points per edge, as GDAL's
    assert df.loc["g/utm.tif", "label"] == "g" and df.loc["plain.png", "geometry"] is None
    w, s, e, n = transform_bounds("EPSG:32660", "EPSG:4326", 700000.0, 5000000.0 - 32000, 780000.0, 5000000.0)
    assert w > e
    g = df.loc["g/dateline.tif", "geometry"]
    assert g.geom_type == "MultiPolygon" and len(g.geoms) == 2
    east, west = sorted(g.geoms, key=lambda p: -p.bounds[0])
    np.testing.assert_allclose([east.bounds[0], east.bounds[2], west.bounds[0], west.bounds[2]], [w, 180, -180, e])
    np.testing.assert_allclose([g.bounds[1], g.bounds[3]], [s, n], atol=1e-9)
    xs, ys = zip(*(rot @ (c, r) for c, r in ((0, 0), (40, 0), (0, 32), (40, 32))), strict=True)
    want = transform_bounds("EPSG:32633", "EPSG:4326", min(xs), min(ys), max(xs), max(ys))
    g = df.loc["rot.tif", "geometry"]
    assert g.area < 0.9 * shapely.box(*want).area  # not the axis-aligned box
    np.testing.assert_allclose(g.bounds, want, rtol=0, atol=1e-6)


# ------------------------------------------------------------------------------------------------ errors


def test_unreadable_images_are_skipped_with_a_warning_or_stop_the_run_leaving_no_file(tmp_path, bb) -> None:
    from geodino.embed import embed_images
    from geodino.errors import InputError

    root, _ = folder(tmp_path)
    (root / "forest" / "broken.png").write_bytes(b"\x89PNG not really")
    with pytest.warns(UserWarning, match=r"skipped unreadable image .*forest/broken\.png"):
        out = embed_images(root, bb, tmp_path / "skip.parquet", progress=False)
    assert "forest/broken.png" not in read(out).index and len(read(out)) == 3
    meta = meta_of(out)
    assert meta["skipped"] == ["forest/broken.png"] and meta["n_images"] == 3
    stop = tmp_path / "stop.parquet"
    with pytest.raises(InputError, match=r"cannot read image .*broken\.png.*--on-error skip"):
        embed_images(root, bb, stop, on_error="stop", progress=False)
    assert not stop.exists() and not list(tmp_path.glob(".stop*"))  # no partial or temporary file


def test_the_throughput_line_counts_only_the_images_embedded(tmp_path, bb, capsys) -> None:
    """A skipped file's zero stand-in runs through the model but is no image embedded: the throughput line printed
    after extraction counts the 3 embedded images, as the summary line does (it counted 4)."""
    from geodino.embed import embed_images

    root, _ = folder(tmp_path)
    (root / "forest" / "broken.png").write_bytes(b"\x89PNG not really")
    with pytest.warns(UserWarning, match="skipped unreadable image"):
        embed_images(root, bb, tmp_path / "o.parquet", batch_size=2)
    err = capsys.readouterr().err
    speed = [ln for ln in err.splitlines() if ln.startswith("embed images: path ")]
    assert len(speed) == 1 and ", 3 images in " in speed[0], err
    assert "(3 images, " in err and "1 unreadable image skipped" in err


def test_mixed_sizes_at_native_size_are_refused_from_the_headers_before_any_forward(tmp_path, bb, monkeypatch):
    """The odd image last, one image a batch: the sizes are checked on the headers up front (the check stopped
    only at the odd image, after the others ran through the model), naming the odd file, its size and the most
    common size; an unreadable file is left to --on-error (skipped with its warning when the sizes agree)."""
    from geodino.embed import embed_images
    from geodino.errors import InputError

    root = tmp_path / "sizes"
    save_png(root / "a.png", rgb(32, 32))
    save_png(root / "b.png", rgb(32, 32))
    helpers.write_tif(root / "c.tif", rgb(32, 32))  # a TIFF's size from its header too
    save_png(root / "d.png", rgb(16, 24))
    (root / "e.png").write_bytes(b"\x89PNG not really")
    calls = []
    monkeypatch.setattr(bb, "features", lambda *a, **k: calls.append(a) or pytest.fail("a forward ran"))
    out = tmp_path / "o.parquet"
    want = r"d\.png is 24x16 px, the most common size is 32x32 px \(3 of 4 images, e\.g\. a\.png; 1 image of other"
    with pytest.raises(InputError, match=want + r".*pass --image-size N"):
        embed_images(root, bb, out, batch_size=1, progress=False)
    assert not calls and not out.exists() and not list(tmp_path.glob(".o*"))
    monkeypatch.undo()
    (root / "d.png").unlink()
    with pytest.warns(UserWarning, match=r"skipped unreadable image .*e\.png"):
        embed_images(root, bb, out, batch_size=1, progress=False)
    assert sorted(read(out).index) == ["a.png", "b.png", "c.tif"]


def test_an_existing_output_is_refused_without_overwrite(tmp_path, bb) -> None:
    from geodino.embed import embed_images
    from geodino.errors import InputError

    root, _ = folder(tmp_path)
    out = embed_images(root, bb, tmp_path / "o.parquet", progress=False)
    before = out.read_bytes()
    with pytest.raises(InputError, match="already exists; pass --overwrite"):
        embed_images(root, bb, out, progress=False)
    assert out.read_bytes() == before
    embed_images(root, bb, out, pool="mean", overwrite=True, progress=False)
    assert meta_of(out)["pool"] == "mean"


def cli(*argv: str) -> int:
    from geodino.cli import main

    return main(list(argv))


def one_error_line(err: str) -> str:
    lines = [ln for ln in err.splitlines() if ln.startswith("geodino: error:")]
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


def test_cli_writes_and_prints_one_summary_line(tmp_path, capsys) -> None:
    root, _ = folder(tmp_path)
    out = tmp_path / "feats.parquet"
    assert cli("embed", "images", str(root), "-b", SPEC, "--out", str(out), "--no-progress", "--pool", "cls+mean") == 0
    err = capsys.readouterr().err
    summary = [ln for ln in err.splitlines() if ln.startswith("geodino: wrote")]
    assert len(summary) == 1 and f"{out} (3 images, 384 dims: cls+mean of block 0" in summary[0]
    assert "input scaling x/255 (by dtype: uint8" in summary[0] and "inference path " in summary[0]
    assert len(read(out)) == 3
    # --on-error stop and the existing output, through the CLI
    (root / "bad.jpg").write_bytes(b"nope")
    assert cli("embed", "images", str(root), "-b", SPEC, "--out", str(out), "--no-progress") == 2
    assert "already exists; pass --overwrite" in one_error_line(capsys.readouterr().err)
    args = ("embed", "images", str(root), "-b", SPEC, "--out", str(out), "--no-progress", "--overwrite")
    assert cli(*args, "--on-error", "stop") == 2
    assert "bad.jpg" in one_error_line(capsys.readouterr().err)
    said = r"skipped unreadable image .*bad\.jpg \(UnidentifiedImageError: not an image .* starts with b'nope'\)"
    with pytest.warns(UserWarning, match=said):  # what the file is, not the error type alone
        assert cli(*args, "--l2", "true") == 0
    assert "1 unreadable image skipped" in capsys.readouterr().err


def test_cli_bad_inputs_are_one_line_and_exit_2(tmp_path, capsys, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)  # no ./images here: a bare `embed images` is this command, not a folder of scenes
    out = str(tmp_path / "o.parquet")
    base = ("-b", SPEC, "--out", out, "--no-progress")
    empty = tmp_path / "empty"
    (empty / "sub").mkdir(parents=True)
    (empty / "readme.md").write_text("x")
    four = tmp_path / "four"
    four.mkdir()
    helpers.write_tif(four / "x.tif", rgb(c=4), crs=None)
    sizes = tmp_path / "sizes"
    save_png(sizes / "a.png", rgb(32, 32))
    save_png(sizes / "b.png", rgb(16, 24))
    cases = [
        (("embed", "images", str(empty), *base), "holds no image files"),
        (("embed", "images", str(tmp_path / "missing"), *base), "not found"),
        (("embed", "images", str(four), *base), "has 4 bands but backbone"),
        (("embed", "images", str(four), *base, "--bands", "1,2,5"), "asks for band 5"),
        (("embed", "images", str(sizes), *base), "b.png is 24x16 px, the most common size is 32x32 px (1 of 2"),
        (("embed", "images", str(sizes), *base, "--image-size", "30"), "not a multiple of the patch size 8"),
        (("embed", "images", str(sizes), "-b", SPEC, "--out", str(tmp_path / "o.tif")), "give the output a .parquet"),
        (("embed", "images", str(sizes), *base, "--tile", "64"), "--tile does not apply to geodino embed images"),
        (("embed", "images", str(sizes), "x", *base), "takes one folder"),
        (("embed", "images", *base), "takes one folder: geodino embed images DIR"),
        (("embed", "images", str(sizes), *base, "--offset", "0.1"), "--offset=0.1 needs --scale"),
        (("embed", "scene.tif", *base, "--pool", "mean"), "--pool applies to geodino embed images DIR only"),
        (("embed", "images", str(sizes), *base, "--sensor", "landsat8"), "--backbone 'SPEC?sensor=landsat8'"),
    ]
    for argv, want in cases:
        assert cli(*argv) == 2, argv
        line = one_error_line(capsys.readouterr().err)
        assert want in line, (argv, line)
    assert not Path(out).exists()
    assert cli("embed", "images", str(four), *base) == 2
    msg = one_error_line(capsys.readouterr().err)
    assert "select 3 bands with --bands (1-based, e.g. --bands 1,2,3)" in msg and f"--backbone '{SPEC}&bands=4'" in msg
