"""`baseline:colour`: per-band colour statistics behind the frozen-backbone interface, checked against numpy, through
the spec parser, the classification and segmentation probes, the feature cache and the CLI's bad-input path."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch

from geodino.backbones import load_backbone
from geodino.backbones.colour import ColourStatistics
from geodino.errors import ConfigError, InputError


def _numpy_stats(x: np.ndarray, bins: int, limit: float) -> np.ndarray:
    """[C*(2+bins)] statistics of one window [C, h, w] written out with numpy (values beyond the range in the edge
    bins, as the module documents)."""
    mean, std = x.mean((1, 2)), x.std((1, 2))
    clipped = np.clip(x, -limit, np.nextafter(limit, 0))
    hist = [np.histogram(band, bins=bins, range=(-limit, limit))[0] / band.size for band in clipped]
    return np.concatenate([mean, std, np.concatenate(hist)])


def test_statistics_equal_numpy_per_patch_and_per_image():
    torch.manual_seed(0)
    x = torch.randn(2, 3, 16, 24) * 1.5  # some values beyond +-3 land in the edge bins
    m = ColourStatistics(3, patch_size=8, bins=5, limit=3.0)
    maps, cls = m.features(x, [0])
    assert m.embed_dim == 3 * 7 and maps[0].shape == (2, 21, 2, 3) and cls[0].shape == (2, 21)
    xn = x.numpy().astype(np.float64)
    for b, (i, j) in ((0, (0, 0)), (1, (1, 2)), (0, (1, 1))):
        want = _numpy_stats(xn[b, :, 8 * i : 8 * i + 8, 8 * j : 8 * j + 8], 5, 3.0)
        np.testing.assert_allclose(maps[0][b, :, i, j].numpy(), want, atol=1e-5)
    for b in range(2):
        np.testing.assert_allclose(cls[0][b].numpy(), _numpy_stats(xn[b], 5, 3.0), atol=1e-5)
    assert (x.abs() > 3).any()  # the edge-bin rule was exercised


def test_it_sees_colour_not_arrangement():
    """The same pixels in another arrangement give the same whole-image statistics (what the baseline cannot
    see, a ViT can); a change of colour changes them."""
    torch.manual_seed(1)
    x = torch.randn(1, 2, 16, 16)
    shuffled = x.flatten(2)[..., torch.randperm(256)].view(1, 2, 16, 16)
    m = ColourStatistics(2, patch_size=8)
    a, b, c = (m.features(t, [0])[1][0] for t in (x, shuffled, x + 0.5))
    torch.testing.assert_close(a, b, atol=1e-6, rtol=0)
    assert (a - c).abs().max() > 0.4


def test_spec_options_band_count_and_errors(tmp_path):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fb = load_backbone("baseline:colour?bands=4&patch_size=8&bins=4")
    assert any("no sensor" in str(w.message) for w in caught)  # 4 raw bands: the bins would see raw values
    assert (fb.in_chans, fb.patch_size, fb.embed_dim, fb.n_blocks, fb.kind) == (4, 8, 24, 1, "baseline")
    # the band count from the sensor; "color" is read as "colour"; RGB without a sensor uses ImageNet stats
    s2 = load_backbone("baseline:color", sensor="sentinel2_l2a")
    from geodino.data.sensors import get_sensor

    n_s2 = get_sensor("sentinel2_l2a").n_bands
    assert (s2.in_chans, s2.mean.numel(), s2.embed_dim) == (n_s2, n_s2, n_s2 * 18)
    rgb = load_backbone("baseline:colour")
    assert rgb.in_chans == 3 and rgb.mean.flatten().tolist() == pytest.approx([0.485, 0.456, 0.406])
    with pytest.warns(UserWarning, match="no sensor, so the 5 bands are not standardised and the histogram bins .±2 "):
        assert load_backbone("baseline:colour?in_chans=5&range=2").in_chans == 5
    for spec, msg in (
        ("baseline:texture", "unknown baseline 'texture'"),
        ("baseline:colour?depth=2", r"1 unknown option in backbone spec baseline:colour\?depth=2: depth;"),
        ("baseline:colour?bins=0", "positive in_chans, patch_size and bins"),
        ("baseline:colour?range=-1", "range=-1.0 must be a positive"),
        ("baseline:colour?range=wide", "range='wide' must be a number"),
        ("baseline:colour?bands=3&in_chans=4", "bands=3 but in_chans=4"),
    ):
        with pytest.raises(ConfigError, match=msg):
            load_backbone(spec)
    x = torch.zeros(1, 3, 32, 32)
    with pytest.raises(ConfigError, match="out of range for a backbone with 1 block "):
        rgb.features(x, layers=[2])
    with pytest.raises(InputError, match="input has 4 bands but backbone baseline:colour takes 3"):
        rgb.features(torch.zeros(1, 4, 32, 32))


def test_the_fast_path_leaves_it_alone():
    from geodino.inference import accelerate

    fb = load_backbone("baseline:colour")
    with pytest.warns(UserWarning, match="mode='float32' does not apply to backbone baseline:colour"):
        path = accelerate(fb, mode="float32")
    assert not path.enabled and path.reason == "not a geodino ViT"
    assert isinstance(fb.model, ColourStatistics)


def test_classification_probe_separates_colours_and_the_cache_keys_on_the_sensor(tmp_path):
    """kNN on the baseline's features of chips whose classes differ in colour is perfect; the same spec with
    another sensor (other mean/std, same fingerprint) gets its own cache entry instead of the first one's
    features."""
    from geodino.data.sensors import Sensor
    from geodino.eval.classification import knn_scores
    from geodino.eval.features import FeatureConfig, extract_features

    class Chips(torch.utils.data.Dataset):
        bands = ("a", "b")
        name, split = "chips", "train"

        def __init__(self, n: int, seed: int) -> None:
            r = np.random.default_rng(seed)
            self.y = np.arange(n) % 2
            self.x = [(r.normal(0.2 + 0.3 * c, 0.05, (2, 16, 16))).astype(np.float32) for c in self.y]
            self.key = f"chips-{seed}"

        def __len__(self) -> int:
            return len(self.y)

        def __getitem__(self, i: int) -> dict:
            return {"image": torch.from_numpy(self.x[i]), "label": int(self.y[i])}

    sensor_a = Sensor("a", ("a", "b"), 1.0, (0.35, 0.35), (0.2, 0.2), False)
    sensor_b = Sensor("b", ("a", "b"), 1.0, (0.0, 0.0), (1.0, 1.0), False)
    fb = load_backbone("baseline:colour?patch_size=8", sensor=sensor_a)
    cfg = FeatureConfig(layers="last", cache=True, cache_dir=str(tmp_path / "cache"))
    tr = extract_features(fb, Chips(20, 0), cfg, progress=False)
    te = extract_features(fb, Chips(10, 1), cfg, progress=False)
    votes = knn_scores(tr.cls[:, -1], tr.targets, te.cls[:, -1], [5], num_classes=2)[5]
    assert (votes.argmax(1) == te.targets).all()
    again = extract_features(fb, Chips(20, 0), cfg, progress=False)
    assert again.from_cache and torch.equal(again.cls, tr.cls)
    other = load_backbone("baseline:colour?patch_size=8", sensor=sensor_b)
    assert other.fingerprint == fb.fingerprint  # same spec: only the normalisation tells the features apart
    fresh = extract_features(other, Chips(20, 0), cfg, progress=False)
    assert not fresh.from_cache and not torch.allclose(fresh.cls, tr.cls)


def test_segmentation_probe_on_the_patch_maps(tmp_path):
    """A linear segmentation head on the per-patch statistics segments blocks that differ in colour."""
    from geodino.eval.segmentation import SegmentationProbeConfig, run_segmentation
    from tests.eval.test_segmentation import make_folder

    img, msk = make_folder(tmp_path, n=5)
    fb = load_backbone("baseline:colour?patch_size=8")
    cfg = SegmentationProbeConfig(
        train_images=str(img),
        train_masks=str(msk),
        num_classes=2,
        head="linear",
        crop_size=32,
        epochs=15,
        min_steps=1,  # a short head meant: an explicit min_steps keeps it from warning
        batch_size=8,
        lr=1e-2,
        plots=0,
    )
    assert run_segmentation(fb, cfg, tmp_path / "out")["mIoU"] > 0.9


def test_cli_reports_a_bad_baseline_option_with_exit_code_2(tmp_path, capsys):
    from PIL import Image

    from geodino.cli import main

    for split in ("train", "test"):
        for c in ("dark", "bright"):
            (tmp_path / split / c).mkdir(parents=True)
            for i in range(5 if split == "train" else 2):  # val_fraction 0.2 carves one val image per class
                Image.fromarray(np.full((16, 16, 3), 40 if c == "dark" else 200, np.uint8)).save(
                    tmp_path / split / c / f"{i}.png"
                )
    argv = ["probe", "--config", "configs/eval/demo.yaml", "--backbone", "baseline:colour?bins=x"]
    argv += ["--out", str(tmp_path / "o"), f"tasks.demo_landcover.data.root={tmp_path}", "progress=false"]
    argv += ["tasks.demo_landcover.data.bands=[]", "tasks.demo_landcover.data.scale=1.0"]
    code = main(argv)
    err = capsys.readouterr().err
    assert code == 2 and "backbone spec option bins='x' must be an integer" in err


def test_dense_heads_that_need_four_layers_say_to_use_the_linear_head(tmp_path):
    from geodino.eval.segmentation import SegmentationProbeConfig, run_segmentation
    from tests.eval.test_segmentation import make_folder

    img, msk = make_folder(tmp_path, n=2, size=32)
    cfg = SegmentationProbeConfig(train_images=str(img), train_masks=str(msk), num_classes=2, head="upernet", plots=0)
    with pytest.raises(ConfigError, match=r"needs four layers but the backbone has 1 block; use head=linear"):
        run_segmentation(load_backbone("baseline:colour?patch_size=8"), cfg, tmp_path / "out")


def test_four_last_on_the_colour_baseline_is_its_one_block_without_a_warning():
    # the probes' default layer set, compared against the baseline beside a real backbone (`--compare`): the
    # baseline has one block by construction, so there is no short backbone to warn about (make demo printed it)
    from geodino.eval.features import _blocks

    fb = load_backbone("baseline:colour?bands=3&patch_size=8&bins=4")
    x = torch.rand(2, 3, 16, 16)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        maps, cls = fb.features(x, layers="four_last")
        assert _blocks(fb, "four_last") == [0]
    assert len(maps) == len(cls) == 1
    # a real short backbone still warns
    with pytest.warns(UserWarning, match="layers=four_last on a backbone with 2 blocks"):
        load_backbone("arch:vit_tiny?depth=2&patch_size=8&in_chans=3").features(x, layers="four_last")


def test_the_layer_rule_reads_a_fixed_depth_from_the_backbone_not_its_kind():
    """`four_last` on fewer than four blocks warns for a depth the user chose (a 2-block ViT), not for one fixed by
    construction (`fixed_depth`, set by the colour baseline): the rule reads the attribute, so every caller that
    holds a backbone (features, embed, embed images) agrees, where a `kind != "baseline"` check in one place did not."""
    from geodino.backbones.layers import backbone_layer_indices

    assert ColourStatistics.fixed_depth is True
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert backbone_layer_indices("four_last", ColourStatistics(3, patch_size=8)) == [0]
    vit = load_backbone("arch:vit_tiny?depth=2&patch_size=8&in_chans=3")
    assert not getattr(vit, "fixed_depth", False)
    with pytest.warns(UserWarning, match="layers=four_last on a backbone with 2 blocks gives 2 maps"):
        assert backbone_layer_indices("four_last", vit) == [0, 1]


def test_embed_and_embed_images_take_four_last_on_the_colour_baseline_without_a_warning(tmp_path):
    """The baseline backbone carries its model's fixed depth, so `geodino embed` (which resolves the layer set in
    `prepare`) and `embed images` say nothing about `four_last` on it; a 2-block ViT still gets the line."""
    from geodino.embed.images import embed_images
    from geodino.embed.pipeline import embed_raster
    from tests import helpers

    fb = load_backbone("baseline:colour?bands=3&patch_size=8&bins=4")
    assert fb.fixed_depth is True
    img = (np.random.default_rng(0).random((3, 16, 16)) * 200).astype(np.uint8)
    (tmp_path / "imgs").mkdir()
    src = helpers.write_tif(tmp_path / "imgs" / "in.tif", img)
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        embed_raster(src, fb, tmp_path / "f.tif", layers="four_last", tile=16, overlap=0, progress=False)
        embed_images(tmp_path / "imgs", fb, tmp_path / "v.parquet", layers="four_last", progress=False)
    assert not [str(w.message) for w in seen if "four_last" in str(w.message)]
    vit = load_backbone("arch:vit_tiny?depth=2&patch_size=8&in_chans=3")
    with pytest.warns(UserWarning, match="layers=four_last on a backbone with 2 blocks gives 2 maps"):
        embed_images(tmp_path / "imgs", vit, tmp_path / "v2.parquet", layers="four_last", progress=False)
