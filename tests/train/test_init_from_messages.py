"""`init_from` of a file that does not fit: the message names the recorded architecture and the keys to set."""

from __future__ import annotations

import pytest
import torch

from geodino.errors import CheckpointError
from geodino.models.checkpoints import save_export
from geodino.train import checkpointing as ck
from geodino.train.ssl import SSLMetaArch
from tests.train.ssl_fixtures import tiny_cfg


def _arch(depth: int, *extra: str) -> SSLMetaArch:
    torch.manual_seed(0)
    return SSLMetaArch(
        tiny_cfg(f"student.overrides={{depth: {depth}, pos_embed_rope_rescale_coords: null}}", *extra), total_iters=2
    )


def _export(tmp_path, arch: SSLMetaArch, state: dict[str, torch.Tensor] | None = None):
    """Export `arch`'s teacher as `geodino export` does (X.pth, X.safetensors, X.heads.pth with the build kwargs)."""
    t = arch.teacher
    heads = {"dino_head": t["dino_head"], "ibot_head": t["ibot_head"]}
    return save_export(tmp_path / "x.pth", state or t["backbone"].state_dict(), dict(t["backbone"].config), heads)


def test_a_shallower_export_names_depth_and_its_config_key(tmp_path):
    pth, st, sidecar = _export(tmp_path, _arch(2))
    expected = (
        rf"init_from {pth} was trained with depth=2 but this config builds depth=4; "
        r"set ssl.student.overrides.depth=2 \(ssl.student.arch=from_init to build the file's architecture, or "
        r"init from a matching run\)$"
    )
    with pytest.raises(CheckpointError, match=expected) as err:
        ck.apply_init(_arch(4), ck.read_init_source(pth))
    assert "incomplete or damaged" not in str(err.value) and "\n" not in str(err.value)
    # a .safetensors export copied without its sidecar records the same build kwargs in its metadata
    sidecar.unlink()
    with pytest.raises(CheckpointError, match=r"was trained with depth=2 but this config builds depth=4"):
        ck.apply_init(_arch(4), ck.read_init_source(st))


def test_every_differing_field_is_named_with_its_key(tmp_path):
    pth, _, _ = _export(tmp_path, _arch(2, "student.patch_size=4"))
    with pytest.raises(CheckpointError) as err:
        ck.apply_init(_arch(3), ck.read_init_source(pth))
    msg = str(err.value)
    assert "was trained with patch_size=4, depth=2 but this config builds patch_size=8, depth=3" in msg
    assert "set ssl.student.patch_size=4, ssl.student.overrides.depth=2" in msg


def test_a_truncated_file_of_the_same_architecture_is_still_called_incomplete(tmp_path):
    arch = _arch(2)
    state = {k: v for k, v in arch.teacher["backbone"].state_dict().items() if not k.startswith("blocks.1.")}
    pth, _, _ = _export(tmp_path, arch, state)
    with pytest.raises(CheckpointError, match="may be incomplete or damaged") as err:
        ck.apply_init(_arch(2), ck.read_init_source(pth))
    assert "does not fit the student backbone" in str(err.value) and "this config builds" not in str(err.value)
