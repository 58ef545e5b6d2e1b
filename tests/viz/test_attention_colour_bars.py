"""The attention panel's heat maps (mean, each head, similarity) carry a colour bar of the values their colours
stand for. Before, the tiles were min-max scaled one by one and showed no scale: a head's brightest patch looked
the same at a 0.9 and at a 0.01 attention share. The image and the mask tiles (no value scale) have none."""

from __future__ import annotations

import numpy as np
from PIL import Image

import geodino.viz.figures as figures_module
from geodino.viz.attention import AttentionMaps, write_attention


def _maps(similarity: bool) -> AttentionMaps:
    rng = np.random.default_rng(0)
    heads = rng.random((2, 3, 4)).astype(np.float32)
    heads[1] *= 0.01  # a faint head: its bar must end near 0.01, not at the mean's range
    mean = heads.mean(axis=0)
    return AttentionMaps(
        heads=heads,
        head_ids=[0, 1],
        mean=mean,
        mask=mean > np.median(mean),
        head_masks=heads > 0.5,
        layer=0,
        mass=0.6,
        patch_size=8,
        image_size=(24, 32),
        similarity=rng.uniform(-1, 1, (3, 4)).astype(np.float32) if similarity else None,
        point=(4, 4) if similarity else None,
        info={"spec": "toy"},
    )


def _about(size: tuple[int, int], want: tuple[float, float]) -> bool:
    """A figure's pixel size is figsize x dpi to the pixel: 2.4 * 6 * 110 is 1583.99...in floats, which matplotlib
    3.8 truncates (1583) and later versions round (1584)."""
    return all(abs(got - w) < 1 for got, w in zip(size, want, strict=True))


def _write(tmp_path, monkeypatch, maps: AttentionMaps) -> tuple[dict, dict]:
    seen: dict = {}
    original = figures_module.save_figure

    def spy(fig, path, **kw):  # what the figure holds before it is saved (and cleared)
        seen["axes"] = len(fig.axes)
        seen["bars"] = [(ax.get_xlabel(), ax.get_xlim()) for ax in fig.axes if ax.get_label() == "<colorbar>"]
        return original(fig, path, **kw)

    monkeypatch.setattr(figures_module, "save_figure", spy)
    sample = {"image": np.random.default_rng(1).random((3, 24, 32)).astype(np.float32), "path": "toy.tif"}
    return write_attention(maps, sample, tmp_path / "out"), seen


def test_panel_heat_maps_have_colour_bars_of_their_own_range(tmp_path, monkeypatch):
    maps = _maps(similarity=True)
    files, seen = _write(tmp_path, monkeypatch, maps)
    # 6 tiles (image, mean, mask, similarity, head 0, head 1) in one row of 6, and 4 colour bars
    assert seen["axes"] == 6 + 4
    labels = [label for label, _ in seen["bars"]]
    assert labels == ["attention (softmax share)", "cosine similarity"] + ["attention (softmax share)"] * 2
    ranges = [lim for _, lim in seen["bars"]]
    np.testing.assert_allclose(ranges[0], (maps.mean.min(), maps.mean.max()), rtol=1e-6)
    np.testing.assert_allclose(ranges[1], (maps.similarity.min(), maps.similarity.max()), rtol=1e-6)
    np.testing.assert_allclose(ranges[3], (maps.heads[1].min(), maps.heads[1].max()), rtol=1e-6)
    with Image.open(files["panel"]) as im:
        assert _about(im.size, (2.4 * 6 * 110, (2.7 + 0.3) * 110))  # figsize x dpi, as before


def test_no_similarity_means_one_bar_fewer(tmp_path, monkeypatch):
    files, seen = _write(tmp_path, monkeypatch, _maps(similarity=False))
    assert seen["axes"] == 5 + 3  # image, mean, mask, two heads; bars for mean and the heads
    assert files["panel"].stat().st_size > 0


def test_single_heat_pngs_have_a_colour_bar_beside_the_map(tmp_path, monkeypatch):
    """`attention_mean.png`, `_headNN.png` and `_similarity.png` had no scale: each now keeps the map's 32 columns
    one to one and has, on the right, a bar from its top colour (its highest value) to its bottom colour with the
    two values written beside it. The image and the mask (no value scale) keep the map's size."""
    import matplotlib

    from geodino.viz.attention_outputs import HEAT_CMAP, overlay

    maps = _maps(similarity=True)
    files, _ = _write(tmp_path, monkeypatch, maps)
    top, bottom = (np.round(np.asarray(matplotlib.colormaps[HEAT_CMAP](v)[:3]) * 255) for v in (1.0, 0.0))
    rgb = np.asarray(Image.open(files["image"])).astype(int)
    assert rgb.shape == (24, 32, 3) and np.asarray(Image.open(files["mask"])).shape == (24, 32, 3)
    for name, grid in [("mean", maps.mean), ("head00", maps.heads[0]), ("head01", maps.heads[1]),
                       ("similarity", maps.similarity)]:  # fmt: skip
        png = np.asarray(Image.open(files[name])).astype(int)
        assert png.shape[0] == 24 and png.shape[1] > 32 + 20  # a bar and its labels, not a border
        np.testing.assert_array_equal(png[:, :32], overlay(rgb.astype(np.uint8), grid, 8))  # the map as before
        strip = png[:, 32:]
        bar = [c for c in range(strip.shape[1]) if np.abs(strip[0, c] - top).max() <= 1]
        assert bar and np.abs(strip[-1, bar[0]] - bottom).max() <= 1, name  # highest value on top, lowest below
        right = strip[:, bar[-1] + 1 :]
        assert (right.sum(axis=2) < 200).sum() > 10, name  # dark label ink beside the bar (the two values)
    # the faint head's bar says so: its labels differ from the mean's (another range), the bar colours do not
    a, b = (np.asarray(Image.open(files[n])) for n in ("mean", "head01"))
    assert not np.array_equal(a[:, 32:], b[:, 32:]) and np.array_equal(a[:, 33:40], b[:, 33:40])


def test_a_flat_map_gets_a_bar_of_one_colour_and_one_value():
    from geodino.viz.heat_bar import with_colour_bar

    img = np.full((40, 16, 3), 90, np.uint8)
    out = with_colour_bar(img, 0.25, 0.25, "inferno")
    ramp = with_colour_bar(img, 0.0, 1.0, "inferno")
    assert out.shape[0] == 40 and out.shape[1] > 16 and np.array_equal(out[:, :16], img)
    bar = out[:, 16 + 3]  # a column inside the bar: gap 3 px (9 px font // 3)
    assert (bar == bar[0]).all() and not (ramp[:, 16 + 3] == ramp[0, 16 + 3]).all()


def test_a_panel_of_two_rows_holds_no_empty_places(tmp_path, monkeypatch):
    """The last row's empty places were blank axes that matplotlib still built, ticked and laid out (time, no
    picture): 8 tiles in rows of 6 hold 8 tile axes and 6 colour bars (mean, similarity, 4 heads), not 12 + 6."""
    import dataclasses

    maps = _maps(similarity=True)
    heads = np.concatenate([maps.heads, maps.heads[::-1] * 0.5])
    maps = dataclasses.replace(maps, heads=heads, head_ids=[0, 1, 2, 3], head_masks=heads > 0.5)
    files, seen = _write(tmp_path, monkeypatch, maps)
    assert seen["axes"] == 8 + 6 and len(seen["bars"]) == 6
    with Image.open(files["panel"]) as im:
        assert _about(im.size, (2.4 * 6 * 110, (2.7 * 2 + 0.3) * 110))  # the same figure size
