"""16-bit web-format photos (PNG) reach a backbone at the reflectance pretraining gave them: pretraining brings
them to 0..255 (/257) and scales that by its 8-bit sensor (`geodino.data.photos.match_bit_depth`); the probes and
`embed images` took them for 16-bit sensor DN (x/10000 by dtype, the backbone's 8-bit scale refused for values above
255): 6.55 times brighter. Now a group of their own (`geodino.eval.photo_scaling`)."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from geodino.data.images import ImageFolderSource
from geodino.eval.datasets import DatasetConfig, build_dataset
from geodino.eval.scaling import InputScaling
from tests.data.test_photo_16bit import H, W, png16
from tests.eval.test_scaling_record_said import RGB8, SidecarBackbone

RGB16 = {**RGB8, "sensor": "sentinel2_l2a", "scale": 1e-4}


def _rounded(v):
    """Pretraining's reflectance of 16-bit photo values `v` with an 8-bit sensor: round(v / 257) / 255."""
    return ((v.astype(np.uint32) + 128) // 257).astype(np.uint8).astype(np.float32) * np.float32(1 / 255)


def _folder(tmp_path, values):
    """An image_folder of one 16-bit RGB PNG per class; returns {class: the file's values [3,H,W]}."""
    got = {}
    for c, v in zip("ab", values, strict=True):
        (tmp_path / "photos" / c).mkdir(parents=True)
        got[c] = png16(tmp_path / "photos" / c / f"{c}.png", v)
    return tmp_path / "photos"


def _pretraining(root, names):
    src = ImageFolderSource(root, shuffle=False)  # pretraining's web-image source, its default sensor (imagenet)
    found = {str(src.get(i, 0)["path"]): src.get(i, 0)["image"] for i in range(len(names))}
    return {n: next(v for p, v in found.items() if p.endswith(f"{n}.png")) for n in names}


@pytest.mark.parametrize("backbone", [None, SidecarBackbone()], ids=["no record", "8-bit record"])
def test_the_probe_reads_a_16_bit_png_as_pretraining_does(tmp_path, backbone):
    steps = (np.arange(3 * H * W, dtype=np.uint32).reshape(3, H, W) * 1021 % 256 * 257).astype(np.uint16)
    steps[0, 0, 0] = 65535
    rng = np.random.default_rng(0)
    any_values = rng.integers(0, 65536, size=(3, H, W), dtype=np.uint16)
    root = _folder(tmp_path, [steps, any_values])
    ds = build_dataset(DatasetConfig(name="image_folder", root=str(root), val_fraction=0.0), "train", backbone)
    probe = {"ab"[int(ds.labels[i])]: ds[i]["image"].numpy() for i in range(len(ds))}
    trained = _pretraining(root, "ab")
    np.testing.assert_array_equal(probe["a"], trained["a"])  # whole 8-bit steps
    # any values: rounded to 8 bits as pretraining reads them (x/65535 was up to half a step, 0.002, off)
    np.testing.assert_array_equal(probe["b"], trained["b"])
    np.testing.assert_array_equal(probe["b"], _rounded(any_values))
    assert float(probe["a"].max()) == pytest.approx(1.0)  # 65535: white, as pretraining saw it (x/10000: 6.55)
    said = ds.scaling
    assert said.startswith(
        "round(x/257), x*0.00392157 (16-bit photos to 8 bits, then" if backbone else "round(x/257), x/255 (by format"
    ), said
    # embed images reads them as the probe does (`ImageFiles`, its folder's rule settled first)
    from geodino.embed.image_files import ImageFiles

    files = ImageFiles(
        root,
        ["a/a.png", "b/b.png"],
        SimpleNamespace(in_chans=3),  # what ImageFiles asks of a backbone; the rule comes from `backbone`
        InputScaling(backbone),
        bands=None,
        on_error="stop",
        native=True,
    )
    files.prime()
    np.testing.assert_array_equal(files[1]["image"].numpy(), trained["b"])


def test_a_16_bit_record_applies_as_it_is_and_other_uint16_data_keeps_the_dtype_rule(tmp_path):
    rng = np.random.default_rng(1)
    v = rng.integers(0, 65536, size=(3, H, W), dtype=np.uint16)
    png = png16(tmp_path / "p.png", v)
    s2 = SidecarBackbone()
    s2.normalization = RGB16
    scaling = InputScaling(s2)
    np.testing.assert_allclose(scaling.apply(v, str(png)).numpy(), v * 1e-4, rtol=1e-6)
    plain = InputScaling()
    plain.settle([png], lambda p: (v, None))
    tif = plain.apply(v, str(tmp_path / "t.tif")).numpy()  # a 16-bit TIFF holds some sensor's DN: by dtype
    np.testing.assert_allclose(tif, v / 10000, rtol=1e-6)
    np.testing.assert_array_equal(plain.apply(v, str(png)).numpy(), _rounded(v))
    assert "; round(x/257), x/255 (by format: 16-bit photos span 0..65535, to 8 bits; set data_scale if wrong)" in (
        plain.describe()
    )
    given = InputScaling(s2, scale=2e-5)
    np.testing.assert_allclose(given.apply(v, str(png)).numpy(), v * 2e-5, rtol=1e-6)  # a given scale wins


def test_embed_images_says_the_photo_rule(tmp_path, capsys):
    from geodino.embed import embed_images
    from geodino.embed.pipeline import run_lines
    from tests.eval.test_declared_scaling import SPEC

    root = _folder(tmp_path, [np.full((3, H, W), 65535, np.uint16), np.zeros((3, H, W), np.uint16)])
    with run_lines():
        embed_images(root, SPEC, tmp_path / "o.parquet", progress=False, image_size=8)
    assert "input scaling round(x/257), x/255 (by format: 16-bit photos span 0..65535, to 8 bits; set --scale" in (
        capsys.readouterr().err
    )
