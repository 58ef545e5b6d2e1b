"""Gram anchoring in the meta-architecture: Gram teacher sources, refresh schedule, high-res path, weight ramp."""

from __future__ import annotations

import pytest
import torch
from torch.nn import functional as F

from geodino.errors import CheckpointError, ConfigError
from geodino.losses import GramLoss
from geodino.train.ssl import SSLMetaArch, gram_updates_before, resize_patch_tokens
from tests.train.ssl_fixtures import ssl_batch, tiny_cfg


def _official_refreshes(n_iters: int, first: int, every: int, max_updates: int | None) -> list[int]:
    """The official training loop's refresh condition, written out."""
    done, count = [], 0
    for it in range(n_iters):
        if (it + 1) >= first and (it + 1) % every == 0 and (max_updates is None or count < max_updates):
            done.append(it)
            count += 1
    return done


@pytest.mark.parametrize(("first", "every", "max_updates"), [(0, 3, None), (7, 3, 2), (10, 5, 3), (4, 4, 0)])
def test_refresh_schedule_matches_official_loop(first: int, every: int, max_updates: int | None) -> None:
    arch = SSLMetaArch.__new__(SSLMetaArch)  # only the refresh logic: no models needed
    torch.nn.Module.__init__(arch)
    cfg = tiny_cfg(
        "gram.use_loss=true",
        f"gram.it_first_update={first}",
        f"gram.update_frequency={every}",
        f"gram.max_updates={'null' if max_updates is None else max_updates}",
    )
    arch.cfg = cfg
    arch.gram_teacher = torch.nn.ModuleDict()
    calls: list[int] = []
    arch.snapshot_gram_from_teacher = lambda: calls.append(1)  # type: ignore[method-assign]
    refreshed = [it for it in range(30) if arch.maybe_refresh_gram(it)]
    assert refreshed == _official_refreshes(30, first, every, max_updates)
    assert len(calls) == len(refreshed)
    # the count is a pure function of the iteration (resume needs no state)
    for it in range(30):
        assert gram_updates_before(it, first, every) == len(_official_refreshes(it, first, every, None))


def test_resize_identity_and_bicubic_shapes() -> None:
    x = torch.randn(2, 16, 5)
    assert resize_patch_tokens(x, (4, 4), (4, 4)) is x
    y = resize_patch_tokens(torch.randn(2, 64, 5), (8, 8), (4, 4))
    assert y.shape == (2, 16, 5)
    maps = torch.randn(1, 3, 8, 6)
    tokens = maps.flatten(2).transpose(1, 2)
    for aa in (False, True):
        ref = F.interpolate(maps, size=(4, 3), mode="bicubic", align_corners=False, antialias=aa)
        out = resize_patch_tokens(tokens, (8, 6), (4, 3), "bicubic", antialias=aa)
        assert torch.allclose(out, ref.flatten(2).transpose(1, 2), atol=1e-6)
    a = resize_patch_tokens(tokens, (8, 6), (4, 3), antialias=False)
    b = resize_patch_tokens(tokens, (8, 6), (4, 3), antialias=True)
    assert not torch.allclose(a, b)  # the option changes the result


@pytest.fixture(scope="module")
def gram_arch() -> SSLMetaArch:
    torch.manual_seed(0)
    return SSLMetaArch(
        tiny_cfg(
            "gram.use_loss=true",
            "gram.img_level=true",
            "gram.loss_weight=2.0",
            "gram.weight_start_iter=4",
            "gram.weight_ramp_iters=2",
        ),
        total_iters=10,
    )


def test_gram_term_uses_high_res_teacher_resized(gram_arch: SSLMetaArch) -> None:
    arch = gram_arch
    assert arch.gram_teacher is not None and not arch.gram_teacher.training
    assert all(not p.requires_grad for p in arch.gram_teacher.parameters())
    batch = ssl_batch(gram_size=64, seed=3)  # Gram teacher crops at 2x: an 8x8 grid for a 4x4 student grid
    calls: list[tuple[int, ...]] = []
    h = arch.gram_teacher["backbone"].register_forward_hook(lambda m, a, kw_out: calls.append(tuple(a[0].shape)))
    try:
        with torch.no_grad():
            loss, logs = arch(batch, iteration=3)  # weight still 0: the Gram teacher does not run
            assert "gram_loss" not in logs and logs["gram_weight"] == 0.0 and calls == []
            loss, logs = arch(batch, iteration=6)
    finally:
        h.remove()
    assert calls == [(8, 3, 64, 64)] and logs["gram_weight"] == pytest.approx(2.0)
    assert bool(arch.gram_initialized)  # snapshotted from the EMA teacher (no gram.ckpt) before first use
    arch.eval()
    with torch.no_grad():
        target = arch.gram_teacher["backbone"](batch["gram_crops"], is_training=True)["x_norm_patchtokens"]
        target = F.interpolate(
            target.transpose(1, 2).reshape(8, -1, 8, 8), size=(4, 4), mode="bicubic", align_corners=False
        )
        target = target.flatten(2).transpose(1, 2)
        student = arch.student["backbone"].forward_features(batch["global_crops"], masks=batch["masks"])
        expected = GramLoss(img_level=True)(student["x_norm_patchtokens"], target)
    arch.train()
    assert float(logs["gram_loss"]) == pytest.approx(float(expected), rel=1e-4)
    rest = 0.8 * logs["dino_local_loss"] + 0.2 * logs["dino_global_loss"] + 0.2 * logs["koleo_loss"] + logs["ibot_loss"]
    assert float(loss) == pytest.approx(float(rest + 2.0 * logs["gram_loss"]), rel=1e-5)


def test_snapshot_and_refresh_copy_the_ema_teacher(gram_arch: SSLMetaArch) -> None:
    arch = gram_arch
    with torch.no_grad():
        for p in arch.teacher["backbone"].parameters():
            p.add_(0.01)
    key = "blocks.0.attn.qkv.weight"
    assert not torch.equal(arch.gram_teacher["backbone"].state_dict()[key], arch.teacher["backbone"].state_dict()[key])
    arch.snapshot_gram_from_teacher()
    for k, v in arch.teacher["backbone"].state_dict().items():
        assert torch.equal(arch.gram_teacher["backbone"].state_dict()[k], v), k


def test_gram_teacher_from_checkpoint_and_bad_checkpoints(tmp_path) -> None:
    torch.manual_seed(5)
    donor = SSLMetaArch(tiny_cfg(), total_iters=2)
    path = tmp_path / "teacher.pth"
    torch.save({"teacher": donor.teacher.state_dict()}, path)  # the official eval-dump layout
    arch = SSLMetaArch(tiny_cfg("gram.use_loss=true", f"gram.ckpt={path}"), total_iters=2)
    for k, v in donor.teacher["backbone"].state_dict().items():
        assert torch.equal(arch.gram_teacher["backbone"].state_dict()[k], v)
    assert bool(arch.gram_initialized)
    other = SSLMetaArch(tiny_cfg("student.overrides={depth: 3, pos_embed_rope_rescale_coords: null}"), total_iters=2)
    bad = tmp_path / "deeper.pth"
    torch.save(other.teacher["backbone"].state_dict(), bad)
    with pytest.raises(CheckpointError, match=r"Gram checkpoint .*deeper.pth does not fit the Gram teacher"):
        arch.load_gram_teacher(bad)
    with pytest.raises(CheckpointError, match=r"checkpoint .*missing.pth not found; fix gram.ckpt"):
        SSLMetaArch(tiny_cfg("gram.use_loss=true", f"gram.ckpt={tmp_path / 'missing.pth'}"))


def test_ema_teacher_mode_and_token_selection() -> None:
    torch.manual_seed(0)
    arch = SSLMetaArch(
        tiny_cfg("gram.use_loss=true", "gram.ema_teacher=true", "gram.rep_update=false", "gram.tokens_used=masked"),
        total_iters=3,
    )
    assert arch.gram_teacher is None
    with torch.no_grad():
        _, logs = arch(ssl_batch(), iteration=0)
    assert torch.isfinite(logs["gram_loss"])
    with pytest.raises(ConfigError, match=r"gram\.ema_teacher=true needs gram\.rep_update=false"):
        SSLMetaArch(tiny_cfg("gram.use_loss=true", "gram.ema_teacher=true"))
