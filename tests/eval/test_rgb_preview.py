"""The dense probes' image previews show the data's red, green and blue bands, stretched over valid pixels.

`rgb_preview` took the first three bands (Sentinel-2-like B, G, R, NIR data showed blue as red) and stretched
2-98 % over every pixel, nodata included (a mostly-nodata tile got a crushed, washed-out stretch).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from geodino.eval import dense, plots
from geodino.eval.segmentation import SegmentationProbeConfig, run_segmentation


def test_the_preview_takes_the_sensors_red_green_blue():
    ramp = torch.linspace(0.0, 1.0, 8).expand(8, 8)  # rises left to right
    image = torch.stack([ramp.flip(-1), torch.full((8, 8), 0.5), ramp, ramp * 0.3])  # B, G, R, NIR
    assert dense.rgb_indices(["B02", "B03", "B04", "B08"], "sentinel2_l2a") == [2, 1, 0]
    assert dense.rgb_indices(["blue", "green", "red", "nir"]) == [2, 1, 0]  # no sensor: the names say it
    assert dense.rgb_indices(["b1", "b2", "b3"]) is None  # unknown names: the first three bands, as before
    out = dense.rgb_preview(image, [2, 1, 0])
    # red is the rising ramp (2-98 % stretch of 0..1: 0 at the left edge, 1 at the right), blue the falling one
    assert out[0, 0, 0] == 0.0 and out[0, -1, 0] == 1.0
    assert out[0, 0, 2] == 1.0 and out[0, -1, 2] == 0.0


def test_the_stretch_leaves_nodata_out():
    values = torch.linspace(0.2, 0.3, 101)  # 2nd and 98th percentiles: 0.202 and 0.298
    image = torch.zeros(3, 20, 20)  # nodata 0 everywhere else (299 of 400 pixels)
    valid = torch.zeros(20, 20, dtype=torch.bool)
    valid.view(-1)[:101] = True
    image.view(3, -1)[:, :101] = values
    out = dense.rgb_preview(image, None, valid)
    flat = out.reshape(-1, 3)
    assert flat[50] == pytest.approx([0.5] * 3)  # 0.25 -> (0.25 - 0.202) / 0.096; with nodata: 0.25 / 0.298
    assert flat[2] == pytest.approx([0.0] * 3, abs=1e-9) and flat[98] == pytest.approx([1.0] * 3)
    assert not flat[101:].any()  # nodata drawn black


# band names without a sensor are this test's input (the preview reads them); the backbone says they bring no
# statistics, which tests/test_band_args.py checks
@pytest.mark.filterwarnings("ignore:backbone .* were given without a sensor:UserWarning")
def test_segmentation_previews_its_bgrn_data_in_rgb_over_valid_pixels(tmp_path, monkeypatch):
    import rasterio
    from rasterio.transform import from_origin

    from geodino.backbones import load_backbone

    (tmp_path / "img").mkdir()
    (tmp_path / "msk").mkdir()
    dn = np.random.default_rng(0).integers(1, 4000, (4, 16, 16)).astype(np.uint16)
    dn[:, :4] = 0  # nodata rows
    with rasterio.open(tmp_path / "img" / "a.tif", "w", driver="GTiff", width=16, height=16, count=4,
                       dtype="uint16", nodata=0, transform=from_origin(0, 16, 1, 1)) as dst:  # fmt: skip
        dst.write(dn)
    Image.fromarray((np.arange(16)[None] // 8 % 2 * np.ones((16, 1))).astype(np.uint8)).save(tmp_path / "msk" / "a.png")
    seen: list[tuple] = []
    real = plots.rgb_preview
    monkeypatch.setattr(
        plots, "rgb_preview", lambda img, rgb=None, valid=None: (seen.append((rgb, valid)), real(img, rgb, valid))[1]
    )
    bb = load_backbone("arch:vit_tiny?seed=0&patch_size=8&bands=blue,green,red,nir")
    folder = {"train_images": str(tmp_path / "img"), "train_masks": str(tmp_path / "msk")}
    cfg = SegmentationProbeConfig(**folder, val_images=folder["train_images"], val_masks=folder["train_masks"],
                                  num_classes=2, crop_size=16, epochs=1, min_steps=1, plots=1,
                                  progress=False)  # fmt: skip
    run_segmentation(bb, cfg, tmp_path / "out")
    assert len(seen) == 1 and seen[0][0] == [2, 1, 0]
    assert seen[0][1] is not None and not seen[0][1][:4].any() and seen[0][1][4:].all()
