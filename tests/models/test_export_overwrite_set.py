"""A re-export (`export ... --overwrite`, `save_export`) that fails or is killed part-way never leaves files of the
earlier export beside files of the new one (the audit found X.pth new, X.safetensors and X.heads.pth old, and
`geodino info` accepting the mix)."""

from __future__ import annotations

import os

import pytest
import torch

import geodino.models.checkpoints.save as save_mod
from geodino.models.checkpoints import save_export

CONFIG = {"embed_dim": 4}


def _state(value: float) -> dict[str, torch.Tensor]:
    return {"w": torch.full((4, 4), value)}


def _files(folder):
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


def test_a_failed_safetensors_write_leaves_the_earlier_export_whole(tmp_path, monkeypatch):
    out = tmp_path / "ex" / "m.pth"
    save_export(out, _state(1.0), CONFIG)
    before = _files(out.parent)
    assert {"m.pth", "m.safetensors", "m.heads.pth", "m.stac.json"} <= set(before)

    def boom(*args, **kwargs):
        raise OSError("killed during the .safetensors write")

    monkeypatch.setattr(save_mod, "save_safetensors", boom)
    with pytest.raises(OSError, match="killed"):
        save_export(out, _state(2.0), CONFIG)
    assert _files(out.parent) == before  # the old set, whole; no new .pth beside it, no temporary left


def test_an_export_stopped_between_its_renames_has_no_old_file_beside_a_new_one(tmp_path, monkeypatch):
    out = tmp_path / "ex" / "m.pth"
    save_export(out, _state(1.0), CONFIG)
    old = _files(out.parent)
    real_replace = os.replace

    def replace_once(src, dst):  # the new .pth has landed; the process "dies" before the .safetensors does
        if str(dst) == str(out.with_suffix(".safetensors")):
            raise KeyboardInterrupt
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", replace_once)
    with pytest.raises(KeyboardInterrupt):
        save_export(out, _state(2.0), CONFIG)
    monkeypatch.setattr(os, "replace", real_replace)
    now = _files(out.parent)
    assert set(now) == {"m.pth"} and now["m.pth"] != old["m.pth"]  # only the new file: nothing old beside it
    save_export(out, _state(2.0), CONFIG)  # the re-run completes the set
    assert set(_files(out.parent)) == {"m.pth", "m.safetensors", "m.heads.pth", "m.stac.json"}
