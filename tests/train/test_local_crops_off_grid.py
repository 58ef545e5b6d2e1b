"""Local crops whose size is not a multiple of the patch size train as the official code trains them.

The official high-res stage (`configs/pretrain/vit7b16_highres.yaml`, from dinov3's
`vit7b16_high_res_adapt.yaml`) draws 168 px local crops at patch 16 in 30 % of its steps. The official patch conv
(kernel = stride = patch, no padding) reads their top-left 160 px; geodino's patch embedding refuses such input (a
safeguard for inference), so that stage stopped at its first such step with `image size 168x168 is not a multiple of
the patch size 16`. Training now trims local crops to their patch grid (`trim_to_patch_grid`), which is exactly what
the official conv reads."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from geodino.models.layers.patch_embed import trim_to_patch_grid
from tests.train.ssl_fixtures import ssl_batch, tiny_cfg


def test_the_trim_is_what_the_official_patch_conv_reads() -> None:
    g = torch.Generator().manual_seed(0)
    x, w = torch.randn(2, 3, 168, 168, generator=g), torch.randn(8, 3, 16, 16, generator=g)
    trimmed = trim_to_patch_grid(x, 16)
    assert trimmed.shape[-2:] == (160, 160)
    torch.testing.assert_close(F.conv2d(trimmed, w, stride=16), F.conv2d(x, w, stride=16), rtol=0, atol=0)
    on_grid = torch.randn(1, 3, 32, 48, generator=g)
    assert trim_to_patch_grid(on_grid, 16) is on_grid  # nothing to trim: the same tensor, no copy
    assert trim_to_patch_grid(torch.randn(1, 3, 20, 36), 8).shape[-2:] == (16, 32)


def test_a_pretraining_step_on_off_grid_local_crops_equals_one_on_their_trimmed_crops() -> None:
    from geodino.train.ssl import SSLMetaArch

    torch.manual_seed(0)
    arch = SSLMetaArch(tiny_cfg(), total_iters=10, global_batch_size=4)
    batch = ssl_batch(local=20)  # patch 8: 2.5 patches (before: InputError at the patch embedding)
    trimmed = {**batch, "local_crops": batch["local_crops"][..., :16, :16].clone()}
    losses = []
    for b in (batch, trimmed):
        torch.manual_seed(1)  # drop path draws the same
        loss, logs = arch(b, iteration=0)
        losses.append((loss.detach(), logs["dino_local_loss"]))
    assert torch.equal(losses[0][0], losses[1][0]) and torch.equal(losses[0][1], losses[1][1])


def test_a_distillation_student_reads_off_grid_local_crops_as_their_trimmed_crops() -> None:
    from geodino.models import build_model
    from geodino.models.heads import DINOHead
    from geodino.train.distill_arch import DistillStudent

    torch.manual_seed(0)
    bb = build_model("vit_tiny", patch_size=8, depth=1)
    student = DistillStudent(bb, DINOHead(bb.embed_dim, 64, 32, 16), DINOHead(bb.embed_dim, 64, 32, 16)).eval()
    g, local = torch.randn(4, 3, 32, 32), torch.randn(8, 3, 20, 20)
    idx = torch.tensor([0, 5, 17])
    with torch.no_grad():
        off = student(g, local, idx)["local_logits"]
        on = student(g, local[..., :16, :16].contiguous(), idx)["local_logits"]
    torch.testing.assert_close(off, on, rtol=0, atol=0)


def test_crop_sizes_the_loader_cannot_use_are_one_line(tmp_path) -> None:
    """Distillation learns its patch size from the teacher, so its crops are checked by the loader: a global size of
    0 passed `size % patch == 0` and stopped in a resize with `RuntimeError: Input and output sizes should be greater
    than 0`; an off-grid global size and a local size below one patch are refused too, the official 168 px is not."""
    import pytest

    from geodino.data.config import CropsConfig, CropSet
    from geodino.data.loaders import build_ssl_loader
    from geodino.errors import ConfigError, InputError

    def build(crops: CropsConfig) -> None:
        build_ssl_loader([str(tmp_path / "none")], crops, batch_size=2, num_workers=0, patch_size=16, progress=False)

    for crops, said in (
        (CropsConfig(global_size=0), "crops.global_size=0 is not a multiple of the patch size 16; use one, e.g. 16"),
        (
            CropsConfig(global_size=40),
            "crops.global_size=40 is not a multiple of the patch size 16; use one, e.g. 32 or 48",
        ),
        (CropsConfig(local_size=8), "crops.local_size=8 is smaller than one patch (16 px); use at least 16"),
        (
            CropsConfig(crop_sets=[CropSet(224, 96, None, 0.5), CropSet(200, 96, None, 0.5)]),
            "crops.crop_sets[1].global_size=200 is not a multiple of the patch size 16; use one, e.g. 192 or 208",
        ),
    ):
        with pytest.raises(ConfigError) as err:
            build(crops)
        assert str(err.value) == said
    with pytest.raises(InputError, match=r"image path .*none does not exist") as err:  # 168 px local crops pass
        build(CropsConfig(global_size=768, local_size=168))  # the crop checks; the data is what is refused then
    assert "patch size" not in str(err.value) and "local_size" not in str(err.value), err.value
