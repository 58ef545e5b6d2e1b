"""`viz attention --overwrite` replaces the earlier set whole: a run stopped after a few PNGs (the audit's kill) left
the new PNGs beside the earlier run's others and its JSON, a mix of two runs."""

from __future__ import annotations

import json

from PIL import Image

import geodino.viz.attention_outputs as ao
from geodino import cli
from tests.embed.conftest import random_image

SPEC = "arch:vit_tiny?depth=1&seed=0"


def _files(folder):
    return {f.name: f.read_bytes() for f in sorted(folder.iterdir())}


def test_an_overwrite_stopped_mid_write_leaves_the_earlier_set_whole(tmp_path, monkeypatch):
    for name, seed in (("a.png", 0), ("b.png", 1)):
        Image.fromarray(random_image(32, 32, seed=seed).transpose(1, 2, 0)).save(tmp_path / name)
    out = tmp_path / "v2"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    assert cli.main(["viz", "attention", str(tmp_path / "a.png"), "-b", SPEC, "-o", str(out)]) == 0
    first = _files(out)
    assert json.loads(first["attention.json"])["input"].endswith("a.png")

    real, n = ao._save_png, []

    def dies_after_two(path, arr):
        if len(n) == 2:
            raise KeyboardInterrupt  # the audit's kill, after 2 PNGs
        n.append(path)
        real(path, arr)

    monkeypatch.setattr(ao, "_save_png", dies_after_two)
    assert cli.main(["viz", "attention", str(tmp_path / "b.png"), "-b", SPEC, "-o", str(out), "--overwrite"]) == 130
    assert _files(out) == first  # not one PNG of the second run, no temporary left

    monkeypatch.undo()
    assert cli.main(["viz", "attention", str(tmp_path / "b.png"), "-b", SPEC, "-o", str(out), "--overwrite"]) == 0
    now = _files(out)
    summary = json.loads(now["attention.json"])
    assert summary["input"].endswith("b.png") and now["notes.txt"] == b"mine"
    assert set(now) == set(summary["files"].values()) | {"attention.json", "notes.txt"}
    assert all(now[name] != first[name] for name in summary["files"].values() if name != "attention_mask.png")
