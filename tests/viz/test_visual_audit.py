"""Pictures checked against known answers: where an attention map puts its bright spot (non-square input, PNG and
COG), nodata left out of the attention colours, class colours of segmentation panels, and loss-curve axes."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from geodino.backbones import load_backbone
from geodino.models import build_model
from geodino.viz.attention import attention_maps, read_input, write_attention
from tests.embed.conftest import random_image, write_tif


def pointer_model(patch: int = 16):
    """A one-block ViT whose head 0 CLS query attends to the brightest patch and nowhere else.

    The patch embedding writes a patch's mean into channel 0 (channel 1 is a constant 1 so that LayerNorm keeps the
    difference); only the CLS token has channel 2, which feeds head 0's query; head 0's key reads channel 0. Both
    use the RoPE pair of the slowest y frequency, which rotates by < 0.1 rad over the whole grid."""
    torch.manual_seed(0)
    m = build_model("vit_tiny", depth=1, patch_size=patch).eval()
    dim, hd = m.embed_dim, m.blocks[0].attn.head_dim
    with torch.no_grad():
        pe = m.patch_embed.proj
        pe.weight.zero_()
        pe.bias.zero_()
        pe.weight[0] = 1.0 / (3 * patch * patch)
        pe.bias[1] = 1.0
        m.cls_token.zero_()
        m.cls_token[0, 0, 2] = 5.0
        m.storage_tokens.zero_()
        blk = m.blocks[0]
        blk.norm1.weight.fill_(1.0)
        blk.norm1.bias.zero_()
        blk.attn.qkv.weight.zero_()
        blk.attn.qkv.bias.zero_()
        i = hd // 4 - 1
        blk.attn.qkv.weight[i, 2] = 10.0  # q, head 0
        blk.attn.qkv.weight[dim + i, 0] = 10.0  # k, head 0
    return m


def test_bright_patch_lands_where_it_is_in_maps_pngs_and_cog(tmp_path):
    """A bright 16 px square in the bottom-right of a 48 x 80 px (non-square) raster: head 0's map, the mean PNG
    and the COG cell all put the peak there (a transposed or flipped map puts it elsewhere)."""
    import rasterio
    from PIL import Image

    data = np.full((3, 48, 80), 30, np.uint8)
    data[:, 32:48, 64:80] = 220
    tif = write_tif(tmp_path / "s.tif", data)
    sample = read_input(tif)
    maps = attention_maps(load_backbone(pointer_model()), sample, heads=[0])
    assert maps.grid == (3, 5)
    assert np.unravel_index(np.argmax(maps.heads[0]), maps.grid) == (2, 4)
    assert maps.heads[0][2, 4] > 0.99  # the CLS query of head 0 looks at that one patch
    files = write_attention(maps, sample, tmp_path / "o")
    png = np.asarray(Image.open(files["mean"])).astype(int)
    assert png.shape[0] == 48 and png.shape[1] > 80  # the map's 80 columns, then its colour bar
    png = png[:, :80]
    # inferno's top is pale yellow: its blue channel is high only in the attended patch
    hot = png[..., 2] > 100
    assert hot[32:48, 64:80].all() and not hot[:32].any() and not hot[:, :64].any()
    with rasterio.open(files["cog"]) as cog, rasterio.open(tif) as src:
        assert (cog.height, cog.width) == (3, 5)
        assert cog.transform.a == 16 * src.transform.a and cog.transform.e == 16 * src.transform.e
        assert (cog.transform.c, cog.transform.f) == (src.transform.c, src.transform.f)
        mean = cog.read(1)
        assert np.unravel_index(np.argmax(mean), mean.shape) == (2, 4)
        # the bright cell's centre is the bright square's centre on the ground
        assert cog.xy(2, 4) == src.transform * (72, 40)  # (x, y) of the square's centre: pixel edges 64-80, 32-48


def test_nodata_patches_are_nodata_in_the_pngs_and_the_cog(tmp_path):
    """Nodata patches took the heat colours like data, and their attention set the colour range: with a nodata
    patch at the top of the scale, the best data patch was drawn dark. Now nodata pixels keep the image's nodata
    magenta, colours are scaled over the patches holding data, and the COG has NaN (its nodata) there."""
    import matplotlib
    import rasterio
    from PIL import Image

    data = random_image(64, 64)
    data[:, :, :40] = 0  # columns 0-39 nodata: patch columns 0 and 1 hold none, column 2 holds 8 valid columns
    tif = write_tif(tmp_path / "nd.tif", data, nodata=0)
    sample = read_input(tif)
    m = build_model("vit_tiny", depth=1).eval()
    maps = attention_maps(load_backbone(m), sample)
    assert maps.valid.tolist() == [[False, False, True, True]] * 4
    # hand-made values: nodata patches 1.0 (the largest), data patches 0..0.015, the largest at (3, 3)
    maps.mean = np.where(maps.valid, np.arange(16, dtype=np.float32).reshape(4, 4) / 1000, 1.0)
    files = write_attention(maps, sample, tmp_path / "o")
    rgb = np.asarray(Image.open(files["image"])).astype(int)
    mean = np.asarray(Image.open(files["mean"])).astype(int)
    magenta = np.array([255, 0, 255])
    assert (rgb[:, :40] == magenta).all() and (mean[:, :40] == magenta).all()  # nodata stays nodata
    top = np.asarray(matplotlib.colormaps["inferno"](1.0)[:3]) * 255
    cell = (rgb[48:64, 48:64] * 0.4 + top.astype(np.uint8) * 0.6).astype(int)
    np.testing.assert_allclose(mean[48:64, 48:64], cell, atol=1)  # the best data patch is the top colour
    bottom = np.asarray(matplotlib.colormaps["inferno"](0.0)[:3]) * 255
    cell = (rgb[0:16, 40:48] * 0.4 + bottom.astype(np.uint8) * 0.6).astype(int)
    np.testing.assert_allclose(mean[0:16, 40:48], cell, atol=1)  # the lowest data patch the bottom colour
    mask = np.asarray(Image.open(files["mask"])).astype(int)
    assert (mask[:, :40] == magenta).all()
    with rasterio.open(files["cog"]) as cog:
        assert np.isnan(cog.nodata)
        band = cog.read(1)
        assert np.isnan(band[:, :2]).all() and np.isfinite(band[:, 2:]).all()
        assert band[3, 3] == pytest.approx(0.015)
        assert np.isnan(cog.read(2)[:, :2]).all()  # the mask band too


def _captured_figure(monkeypatch, module) -> list:
    """Replace `module.save_figure` by a recorder: the figure's artists can then be inspected."""
    seen: list = []
    monkeypatch.setattr(module, "save_figure", lambda fig, path, **kw: seen.append(fig))
    return seen


@pytest.mark.parametrize("k", [5, 25, 70])
def test_segmentation_panels_give_every_class_its_own_colour(monkeypatch, tmp_path, k):
    """tab20 resampled to k > 20 colours repeats colours: with 25 classes, 5 pairs of classes were drawn (and listed
    in the legend) alike. Each class id must map to its own colour in the truth and prediction panels, and the
    legend patch of class i must be that colour."""
    from geodino.eval import plots

    seen = _captured_figure(monkeypatch, plots)
    mask = torch.arange(k).repeat(4, 1)  # one column per class
    plots.plot_examples([(torch.rand(3, 4, k), mask, mask.clone())], k, 255, tmp_path / "x.png")
    fig = seen[0]
    truth = fig.axes[1].get_images()[0]
    drawn = [tuple(np.round(truth.cmap(truth.norm(i)), 4)) for i in range(k)]
    assert len(set(drawn)) == k
    handles = fig.legends[0].legend_handles[:k]
    assert [tuple(np.round(h.get_facecolor(), 4)) for h in handles] == drawn
    pred = fig.axes[2].get_images()[0]
    assert [tuple(np.round(pred.cmap(pred.norm(i)), 4)) for i in range(k)] == drawn


def test_gram_loss_curve_gets_an_axis_of_its_own(monkeypatch, tmp_path):
    """KoLeo (~1) and Gram (~1e-2) shared one axis, so a Gram loss that fell tenfold was drawn as a flat line at 0.
    The axis the Gram curve is on must span its own range, not KoLeo's."""
    import geodino.viz.figures
    from geodino.train.curves import plot_curves

    seen = _captured_figure(monkeypatch, geodino.viz.figures)
    steps = range(0, 100, 10)
    metrics = {
        "dino_global_loss": {s: 8.0 - s / 100 for s in steps},
        "koleo_loss": {s: 1.5 - s / 100 for s in steps},
        "gram_loss": {s: 0.02 - s / 10000 for s in steps},  # 0.02 -> 0.011
    }
    plot_curves(metrics, tmp_path / "c.png", n_prototypes=4096)
    axes = {line.get_label(): ax for ax in seen[0].axes for line in ax.get_lines()}
    lo, hi = axes["gram"].get_ylim()
    assert axes["gram"] is not axes["koleo"]
    assert lo > 0.0 and hi < 0.03  # the curve fills its axis (matplotlib's 5 % margins)
    lo, hi = axes["koleo"].get_ylim()
    assert lo < 0.7 and hi > 1.4


def _ibot_plateau(fig) -> tuple[float, str]:
    """(height, label) of the dashed reference line on the axis that holds the iBOT curve."""
    ax = next(a for a in fig.axes if any(line.get_label() == "ibot" for line in a.get_lines()))
    ref = next(line for line in ax.get_lines() if line.get_linestyle() == "--")
    return float(ref.get_ydata()[0]), ref.get_label()


def test_ibot_plateau_line_follows_the_runs_mask_share(monkeypatch, tmp_path):
    """The iBOT loss is averaged over all global crops and only ssl.ibot.mask_sample_probability of them are
    masked, so it sits at p x ln K when nothing is learned; the line was drawn at ln K / 2 whatever p was, and a
    run at p = 0.3 stuck on its plateau looked 0.2 ln K below it (learning)."""
    import math

    import geodino.viz.figures
    from geodino.train.curves import plot_run

    seen = _captured_figure(monkeypatch, geodino.viz.figures)
    logs = tmp_path / "logs"
    logs.mkdir()
    k = 1024
    (logs / "metrics.csv").write_text(f"step,dino_global_loss,ibot_loss\n0,{math.log(k)},2.1\n10,6.5,2.0\n")
    plot_run(tmp_path, n_prototypes=k)
    height, label = _ibot_plateau(seen[-1])
    assert height == pytest.approx(0.5 * math.log(k)) and label == "ln K / 2"  # no config.yaml: the default
    (tmp_path / "config.yaml").write_text("ssl:\n  ibot:\n    mask_sample_probability: 0.3\n")
    plot_run(tmp_path, n_prototypes=k)
    height, label = _ibot_plateau(seen[-1])
    assert height == pytest.approx(0.3 * math.log(k)) and label == "0.3 ln K"


def _cog(path, arr: np.ndarray, nodata: float) -> str:
    import rasterio
    from rasterio.transform import from_origin

    prof = {"driver": "GTiff", "width": arr.shape[1], "height": arr.shape[0], "count": 1, "dtype": arr.dtype.name}
    prof.update(crs="EPSG:32633", transform=from_origin(500000, 4000000, 10, 10), nodata=nodata)
    with rasterio.open(path, "w", **prof) as dst:
        dst.write(arr, 1)
    return str(path)


def test_quicklooks_say_where_the_data_ends(monkeypatch, tmp_path):
    """Quick-looks drew nodata white on a white page with the axes off: an 80 x 60 px map whose left 20 columns are
    nodata looked like a 60 x 60 square, the class legend did not list the white cells, and the colour bar of a
    ramp clipped at the 99th percentile gave no sign that cells lay beyond its ends. Now the raster's frame is
    drawn, "nodata" is in the class legend when the map has some, and the colour bar gets arrows where the data go
    beyond vmin / vmax."""
    from geodino.embed import quicklook

    seen: list = []
    monkeypatch.setattr(quicklook, "save_png", lambda fig, png: seen.append(fig))
    dist = np.full((60, 80), 0.1, np.float32)
    dist[:, :20] = np.nan
    dist[30, 40] = 1.5  # above vmax
    quicklook.ramp_png(
        _cog(tmp_path / "d.tif", dist, float("nan")), tmp_path / "d.png", vmin=0, vmax=0.3, ramp="magma", label="d"
    )
    ax = seen[-1].axes[0]
    assert ax.axison and all(s.get_visible() for s in ax.spines.values())
    assert ax.get_images()[0].colorbar.extend == "max"
    dist[30, 41] = -0.5  # below vmin too
    quicklook.ramp_png(
        _cog(tmp_path / "e.tif", dist, float("nan")), tmp_path / "e.png", vmin=0, vmax=0.3, ramp="magma", label="d"
    )
    assert seen[-1].axes[0].get_images()[0].colorbar.extend == "both"
    quicklook.ramp_png(
        _cog(tmp_path / "f.tif", np.full((4, 4), 0.2, np.float32), float("nan")),
        tmp_path / "f.png",
        vmin=0,
        vmax=0.3,
        ramp="magma",
        label="d",
    )
    assert seen[-1].axes[0].get_images()[0].colorbar.extend == "neither"

    entries = {0: ((200, 200, 200, 0), "no change"), 1: ((220, 30, 30, 255), "change")}
    mask = np.where(np.isnan(dist), 255, dist > 0.2).astype(np.uint8)
    quicklook.classes_png(_cog(tmp_path / "m.tif", mask, 255), tmp_path / "m.png", entries)
    labels = [t.get_text() for t in seen[-1].axes[0].get_legend().get_texts()]
    assert labels == ["no change", "change", "nodata"]
    full = np.zeros((4, 4), np.uint8)
    quicklook.classes_png(_cog(tmp_path / "n.tif", full, 255), tmp_path / "n.png", entries)
    assert [t.get_text() for t in seen[-1].axes[0].get_legend().get_texts()] == ["no change", "change"]


def test_canopy_scatter_counts_every_pixel(monkeypatch, tmp_path):
    """hexbin drops points outside its extent ([0, 99.5th percentile]), so the largest over-predictions vanished
    from the predicted-vs-reference density: 1000 pixels, 3 of them predicted at 80 m against 2 m references, gave
    bins summing to 996. Now every pixel is counted (those beyond the axes on the edge, said in the plot)."""
    from geodino.eval import plots

    seen = _captured_figure(monkeypatch, plots)
    rng = np.random.default_rng(0)
    ref = rng.uniform(0, 20, 1000)
    pred = ref + rng.normal(0, 1, 1000).clip(0, None)  # never below 0, as the height decoder
    ref[:3], pred[:3] = 2.0, 80.0
    plots.plot_scatter([(ref, pred)], tmp_path / "s.png", {"MAE": 1.0, "RMSE": 2.0, "R2": 0.5})
    ax = seen[0].axes[0]
    assert ax.collections[0].get_array().sum() == 1000
    assert any("beyond the axes" in t.get_text() for t in ax.texts)
