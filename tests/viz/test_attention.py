"""geodino.viz.attention: CLS-to-patch weights that reproduce the block's output, an unchanged fused path, the
attention-mass mask, every backbone spec, multispectral RGB, the COG on the patch grid, and the CLI."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from geodino import cli
from geodino.backbones import load_backbone
from geodino.errors import InputError
from geodino.models.checkpoints import save_backbone
from geodino.viz.attention import _geodino_capture, _geodino_cls_attention, attention_maps, mass_mask, read_input
from tests.embed.conftest import random_image, write_tif
from tests.helpers import trained_like


def test_mass_mask_hand_computed():
    a = np.array([[0.1, 0.5], [0.3, 0.1]])
    assert mass_mask(a, 0.6).tolist() == [[False, True], [True, False]]  # 0.5 + 0.3 reaches 60 %
    assert mass_mask(a, 0.5).tolist() == [[False, True], [False, False]]  # 0.5 alone holds 50 %
    assert mass_mask(a, 1.0).all()
    heads = np.stack([a, a[::-1]])
    assert mass_mask(heads, 0.6).sum(axis=(1, 2)).tolist() == [2, 2]  # per leading index
    with pytest.raises(InputError, match="mass share"):
        mass_mask(a, 0.0)


def test_weights_reproduce_the_cls_output_and_leave_the_fused_path_identical():
    m = trained_like()
    x = torch.randn(1, 3, 48, 32)
    with torch.no_grad():
        ref = m.forward_features(x)["x_norm_patchtokens"]
    attn = m.blocks[-1].attn
    store: dict = {}
    seen = {}
    original = attn.compute_attention

    def outer(qkv, rope=None):  # the real output of the SDPA call, to check the weights against
        seen["out"] = original(qkv, rope)
        return seen["out"]

    attn.compute_attention = outer
    with torch.no_grad(), _geodino_capture(m, 1, store):
        out = m.forward_features(x)["x_norm_patchtokens"]
    del attn.compute_attention
    assert torch.equal(out, ref)  # bit-identical forward with the capture in place
    assert "compute_attention" not in attn.__dict__  # the method is restored
    w = _geodino_cls_attention(attn, store, n_prefix=0)  # [B, heads, N] over all tokens
    torch.testing.assert_close(w.sum(-1), torch.ones(1, attn.num_heads))
    v = store["qkv"].view(1, w.shape[-1], 3, attn.num_heads, attn.head_dim)[:, :, 2]
    cls_out = torch.einsum("bhn,bnhd->bhd", w, v).reshape(1, -1)
    torch.testing.assert_close(cls_out, seen["out"][:, 0], atol=1e-5, rtol=1e-5)


@pytest.fixture
def rgb_scene(tmp_path):
    return write_tif(tmp_path / "rgb.tif", random_image(48, 64))


# a checkpoint or folder without a normalisation record is this test's input (that warning is
# test_normalization_records' subject)
@pytest.mark.filterwarnings("ignore:.*records no input normalisation:UserWarning")
def test_every_geodino_spec_gives_the_same_maps(tmp_path, rgb_scene):
    m = trained_like()
    pth = save_backbone(m, tmp_path / "official.pth")
    hf = save_backbone(m, tmp_path / "hf", layout="hf")
    sample = read_input(rgb_scene)
    ref = attention_maps(load_backbone(m), sample, point=(20, 30))
    assert ref.heads.shape == (3, 3, 4) and ref.mean.shape == (3, 4)
    # storage tokens and CLS excluded: the patch share of a softmax row is below 1
    assert (ref.heads.sum(axis=(1, 2)) < 1).all() and (ref.heads > 0).all()
    np.testing.assert_allclose(ref.mean, ref.heads.mean(0))
    assert ref.similarity[30 // 16, 20 // 16] == pytest.approx(1.0, abs=1e-5)
    assert ref.similarity.max() == pytest.approx(1.0, abs=1e-5)
    for spec in (pth, hf):
        other = attention_maps(load_backbone(spec), sample, point=(20, 30))
        np.testing.assert_allclose(other.heads, ref.heads, atol=1e-5)
    sub = attention_maps(load_backbone(m), sample, layer=0, heads=[2, 0])
    assert sub.head_ids == [2, 0] and sub.layer == 0
    np.testing.assert_allclose(sub.mean, sub.heads.mean(0))


def test_timm_vit_attention_through_the_unfused_path(rgb_scene):
    bb = load_backbone("timm:vit_tiny_patch16_224?seed=0")
    ref_maps, _ = bb.features(torch.zeros(1, 3, 48, 64))
    maps = attention_maps(bb, read_input(rgb_scene))
    assert maps.heads.shape == (3, 3, 4)
    assert (maps.heads.sum(axis=(1, 2)) < 1).all()  # the CLS column is left out
    attn = bb.model.blocks[-1].attn
    assert attn.fused_attn is True  # restored
    assert not attn.attn_drop._forward_hooks
    assert bb.features(torch.zeros(1, 3, 48, 64))[0][0].shape == ref_maps[0].shape


def test_multispectral_png_uses_the_sensor_rgb_bands(tmp_path):
    from PIL import Image

    data = (np.random.default_rng(0).random((4, 64, 64)) * 3000).astype(np.uint16)
    data[2] = np.tile(np.linspace(500, 3000, 64), (64, 1)).astype(np.uint16)  # file band 3 = red: a ramp in x
    tif = write_tif(tmp_path / "ms.tif", data)
    import rasterio

    with rasterio.open(tif, "r+") as d:
        d.descriptions = ("blue", "green", "red", "nir")
    out = tmp_path / "out"
    code = cli.main(
        [
            "viz",
            "attention",
            str(tif),
            "--backbone",
            "arch:vit_tiny?depth=2&in_chans=4&seed=0",
            "--out",
            str(out),
            "--sensor",
            "sentinel2_l2a",
            "--point",
            "500010",
            "3999990",
            "--point-crs",
        ]
    )
    assert code == 0
    png = np.asarray(Image.open(out / "attention_image.png"))
    assert (np.diff(png[..., 0].astype(int), axis=1) >= 0).all()  # R channel = the red ramp
    assert not (np.diff(png[..., 2].astype(int), axis=1) >= 0).all()  # B channel = noise
    with rasterio.open(out / "attention.tif") as cog, rasterio.open(tif) as src:
        assert cog.crs == src.crs and cog.res == (160.0, 160.0) and (cog.height, cog.width) == (4, 4)
        assert cog.transform.c == src.transform.c and cog.transform.f == src.transform.f
        assert cog.descriptions[:3] == ("attention_mean", "mask_60pct", "head_0")
        assert cog.descriptions[-1] == "similarity"
        assert cog.read(cog.count)[0, 0] == pytest.approx(1.0, abs=1e-5)  # the point's patch
    summary = json.loads((out / "attention.json").read_text())
    assert summary["point"] == [1, 1] and summary["patch_grid"] == [4, 4]
    assert {"panel", "mean", "mask", "head00", "similarity"} <= set(summary["files"])


def test_plain_image_gives_pngs_and_no_cog(tmp_path):
    from PIL import Image

    Image.fromarray(random_image(40, 40).transpose(1, 2, 0)).save(tmp_path / "a.png")
    out = tmp_path / "o"
    assert (
        cli.main(
            [
                "viz",
                "attention",
                str(tmp_path / "a.png"),
                "-b",
                "arch:vit_tiny?depth=1&seed=0",
                "-o",
                str(out),
                "--heads",
                "1",
                "--mass",
                "0.9",
            ]
        )
        == 0
    )
    assert (out / "attention_head01.png").exists() and not (out / "attention.tif").exists()
    assert not (out / "attention_head00.png").exists()
    assert Image.open(out / "attention_image.png").size == (32, 32)  # cropped to whole patches
    assert Image.open(out / "attention_mean.png").height == 32  # the map, then its colour bar on the right


def test_image_bands_window_point_and_a_reused_folder(tmp_path, monkeypatch):
    """--bands selects (and orders) a JPEG/PNG's bands as it does a raster's; --point is in the file's pixels also
    with --window; a second run into the same folder leaves none of the first run's maps; the size guard covers
    images too."""
    from PIL import Image

    import geodino.viz.attention_input as att

    rgb = random_image(64, 64)
    Image.fromarray(rgb.transpose(1, 2, 0)).save(tmp_path / "a.png")
    s = read_input(tmp_path / "a.png", bands=["B", "G", "R"])
    assert s["bands"] == ["B", "G", "R"]
    np.testing.assert_allclose(s["image"][0], rgb[2] / 255.0, atol=1e-6)  # file band 3 (blue) first
    with pytest.raises(InputError, match="band 'nir' is not a band of sensor 'imagenet'"):
        read_input(tmp_path / "a.png", bands=["nir"])

    spec = "arch:vit_tiny?depth=1&seed=0"
    out = tmp_path / "o"
    assert cli.main(["viz", "attention", str(tmp_path / "a.png"), "-b", spec, "-o", str(out), "--heads", "0", "2"]) == 0
    assert (out / "attention_head02.png").exists()
    # a window of the file and a point in the file's pixels: the point's patch is (1, 1) of the window's grid
    args = ["viz", "attention", str(tmp_path / "a.png"), "-b", spec, "-o", str(out), "--heads", "1", "--overwrite"]
    assert cli.main([*args, "--window", "16", "16", "48", "48", "--point", "40", "40"]) == 0
    summary = json.loads((out / "attention.json").read_text())
    assert summary["point"] == [24, 24] and summary["bands"] == ["R", "G", "B"] and summary["input"].endswith("a.png")
    assert summary["window"] == [16, 16, 48, 48]  # the point's frame: it was not recorded
    assert cli.main([*args, "--point-crs"]) == 2  # --point-crs without --point was ignored silently
    assert not (out / "attention_head02.png").exists() and not (out / "attention_head00.png").exists()
    assert (out / "attention_head01.png").exists() and (out / "attention_similarity.png").exists()

    monkeypatch.setattr(att, "MAX_PIXELS", 60 * 60)
    with pytest.raises(InputError, match=r"image .*a.png is 64x64 px; .*--window"):
        read_input(tmp_path / "a.png")


def test_a_folder_with_earlier_maps_is_refused_without_overwrite(tmp_path, capsys, monkeypatch):
    """A second run into the same --out replaced the first run's maps without a word; now it stops with one line
    (exit 2, before the backbone is loaded, nothing touched) unless --overwrite, as the other writers do; the
    Python API refuses likewise, and an empty or unrelated folder is fine."""
    from PIL import Image

    import geodino.backbones
    from geodino.viz.attention import visualize_attention, write_attention
    from tests.test_bad_inputs import one_line_exit_2

    Image.fromarray(random_image(32, 32).transpose(1, 2, 0)).save(tmp_path / "a.png")
    out = tmp_path / "att"
    out.mkdir()
    (out / "notes.txt").write_text("mine")  # a folder with other files is not an earlier run
    args = ["viz", "attention", tmp_path / "a.png", "-b", "arch:vit_tiny?depth=1&seed=0", "-o", out]
    assert cli.main([str(a) for a in args]) == 0
    first = {f.name: f.read_bytes() for f in out.iterdir()}
    loads = []
    monkeypatch.setattr(geodino.backbones, "load_backbone", lambda *a, **k: loads.append(a))
    one_line_exit_2(
        capsys, tmp_path, *args,
        expect=(f"output folder {out} already holds attention maps (attention.json,", "pass --overwrite"),
    )  # fmt: skip
    assert not loads  # refused before the backbone is loaded
    assert {f.name: f.read_bytes() for f in out.iterdir()} == first
    with pytest.raises(InputError, match="already holds attention maps"):
        visualize_attention(tmp_path / "a.png", "arch:vit_tiny?depth=1&seed=0", out)
    assert not loads
    monkeypatch.undo()
    bb = load_backbone("arch:vit_tiny?depth=1&seed=0")
    sample = read_input(tmp_path / "a.png")
    maps = attention_maps(bb, sample, heads=[1])
    with pytest.raises(InputError, match="already holds attention maps"):
        write_attention(maps, sample, out)
    files = write_attention(maps, sample, out, overwrite=True)
    assert (out / "notes.txt").read_text() == "mine" and not (out / "attention_head00.png").exists()
    assert files["head01"].exists()
    assert write_attention(maps, sample, tmp_path / "other", prefix="b")["json"].name == "b.json"
    assert write_attention(maps, sample, tmp_path / "other")["json"].exists()  # another prefix is not in the way
    assert cli.main([str(a) for a in args] + ["--overwrite", "--heads", "0"]) == 0
    assert (out / "attention_head00.png").exists() and not (out / "attention_head01.png").exists()


def test_every_spelling_of_a_point_finds_the_same_patch(tmp_path, capsys):
    """`--point X Y` and `--point X,Y`, in pixels, in the raster's CRS (bare --point-crs) or in lon,lat
    (`--point-crs EPSG:4326`) name the same patch. viz attention took only `X Y` and the raster's CRS while
    `embed similar` took only `X,Y` and a CRS, so a point copied from one command failed in the other."""
    import rasterio
    from pyproj import Transformer

    tif = write_tif(tmp_path / "s.tif", random_image(64, 64))
    with rasterio.open(tif) as src:
        x, y = src.transform * (40.5, 24.5)  # the centre of pixel (col 40, row 24)
        lon, lat = Transformer.from_crs(src.crs, "EPSG:4326", always_xy=True).transform(x, y)
    # one head: the point is what is tested, and each head adds a tile to the panel (matplotlib: most of a run's time)
    spec = "arch:vit_tiny?depth=1&patch_size=8&seed=0"
    base = ["viz", "attention", str(tif), "-b", spec, "--overwrite", "--heads", "0"]
    spellings = (
        ["--point", "40", "24"],
        ["--point", "40,24"],
        ["--point", f"{x}", f"{y}", "--point-crs"],
        [f"--point={x},{y}", "--point-crs"],
        ["--point", f"{lon:.9f},{lat:.9f}", "--point-crs", "EPSG:4326"],
    )
    for i, extra in enumerate(spellings):
        assert cli.main([*base, "-o", str(tmp_path / f"o{i}"), *extra]) == 0, extra
        assert json.loads((tmp_path / f"o{i}" / "attention.json").read_text())["point"] == [40, 24], extra
    for extra, said in (
        (["--point", "1", "2", "3"], "--point '1 2 3' must be two numbers, X Y or X,Y"),
        (["--point", "a,b"], "--point 'a,b' must be two numbers"),
        (["--point", "1,2", "--point-crs", "EPSG:99999"], "--point-crs 'EPSG:99999' is not a CRS pyproj knows"),
    ):
        capsys.readouterr()
        assert cli.main([*base, "-o", str(tmp_path / "bad"), *extra]) == 2
        err = capsys.readouterr().err
        assert err.startswith(f"geodino: error: {said}") and len(err.splitlines()) == 1, err
