"""`geodino data preview` draws the crops training makes: a pretraining config's own `crops` section."""

from __future__ import annotations

import numpy as np
from PIL import Image

from geodino.data.config import CropsConfig, CropSet, DataConfig, SourceConfig


def test_preview_uses_the_configs_crops_and_the_crop_set_of_each_step(tmp_path, monkeypatch):
    """It drew CropsConfig defaults (grayscale, solarize, Gram, one crop set) whatever the config said."""
    from geodino.data import crops as crops_mod
    from geodino.data.crops import choose_crop_set
    from geodino.data.preview import write_preview

    (tmp_path / "imgs").mkdir()
    for i in range(3):
        Image.fromarray(np.full((64, 64, 3), 40 * i, np.uint8)).save(tmp_path / "imgs" / f"{i}.png")
    data = DataConfig(sources=[SourceConfig(type="images", paths=[str(tmp_path / "imgs")])])
    crops = CropsConfig(
        n_local=2,
        grayscale_prob=0.0,
        solarize_prob=0.0,
        crop_sets=[CropSet(32, 16, None, 0.5), CropSet(48, 16, 64, 0.5)],
    )
    seen: list[tuple[CropsConfig, int, list[int]]] = []
    real = crops_mod.MultiCropTransform.__call__

    def spy(self, sample, rng, crop_set=0, **kw):
        out = real(self, sample, rng, crop_set, **kw)
        seen.append((self.cfg, crop_set, [int(g.shape[-1]) for g in out["global_crops"]]))
        return out

    monkeypatch.setattr(crops_mod.MultiCropTransform, "__call__", spy)
    out = write_preview(data, tmp_path / "p.png", samples=3, seed=5, crops=crops)
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert [s[0] for s in seen] == [crops] * 3
    assert [s[1] for s in seen] == [choose_crop_set(crops, 5, r) for r in range(3)]
    assert all(sizes == [(32, 48)[k]] * 2 for _, k, sizes in seen)
    seen.clear()
    write_preview(data, tmp_path / "d.png", samples=1)  # a data config alone: the defaults, with Gram crops
    assert seen[0][0].gram and seen[0][0].n_local == 4


def test_preview_of_a_pretraining_config_says_when_the_bands_do_not_fit_the_student(tmp_path):
    """`data preview --config s2_vits16.yaml` (in_chans 12) on RGB images drew the preview without a word; the
    mismatch showed only when pretrain started. Now it warns in one line, and still draws the preview."""
    from geodino import cli

    (tmp_path / "imgs").mkdir()
    for i in range(2):
        Image.fromarray(np.full((64, 64, 3), 60 * i, np.uint8)).save(tmp_path / "imgs" / f"{i}.png")
    argv = ["data", "preview", "--config", "configs/pretrain/s2_vits16.yaml", "--out", str(tmp_path / "p.png"),
            "--samples", "1", f"data.sources=[{{type: images, paths: [{tmp_path / 'imgs'}], sensor: imagenet}}]",
            "crops.global_size=32", "crops.local_size=16"]  # fmt: skip
    import warnings

    import pytest

    with pytest.warns(UserWarning, match=r"the first source gives 3 bands per image but ssl\.student\.in_chans=12: "
                      r"pretrain will refuse this config; set ssl\.student\.in_chans=3"):  # fmt: skip
        assert cli.main(argv) == 0
    assert (tmp_path / "p.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert cli.main([*argv[:5], str(tmp_path / "q.png"), *argv[6:], "ssl.student.in_chans=3"]) == 0
    assert not [w for w in caught if "pretrain will refuse" in str(w.message)]
