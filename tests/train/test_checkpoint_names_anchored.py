"""Step checkpoints are matched by their whole name in ASCII digits (`checkpoint_folder.CKPT_PATTERN`): `$` also
matched before a trailing newline and `\\d` any Unicode digit, so files geodino never writes (`step_00000003.ckpt`
plus a newline, `step_` with Arabic-Indic digits) were listed as checkpoints, pruned by `keep_last` and resumed from."""

from __future__ import annotations

from pathlib import Path

from geodino.train.checkpoint_folder import checkpoint_step, find_checkpoints, prune_checkpoints


def _folder(tmp_path: Path) -> tuple[Path, list[Path]]:
    ours = [tmp_path / "step_00000002.ckpt", tmp_path / "step_00000005.ckpt"]
    others = [tmp_path / "step_00000003.ckpt\n", tmp_path / "step_\u0660\u0660\u0664.ckpt"]
    for p in ours + others:
        p.write_bytes(b"x")
    return tmp_path, others


def test_only_geodino_step_names_are_checkpoints(tmp_path: Path) -> None:
    folder, others = _folder(tmp_path)
    assert [p.name for p in find_checkpoints(folder)] == ["step_00000002.ckpt", "step_00000005.ckpt"]
    assert [checkpoint_step(p) for p in others] == [None, None]


def test_keep_last_leaves_other_names(tmp_path: Path) -> None:
    folder, others = _folder(tmp_path)
    removed = prune_checkpoints(folder, 5, 1, Path.unlink)
    assert [p.name for p in removed] == ["step_00000002.ckpt"]
    assert all(p.is_file() for p in others)
