"""`data preview` and `data curate --config` find the shipped pretraining configs from any folder, as `pretrain -c`
does: the README's `geodino data preview --config configs/pretrain/s2_vits16.yaml ...` and `geodino data curate
--config configs/pretrain/small_vit_tiny.yaml ...` failed outside a checkout ("config file ... not found")."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from geodino.config import CONFIGS


def _chips(folder: Path) -> Path:
    folder.mkdir()
    for i in range(2):
        Image.fromarray(np.full((64, 64, 3), 60 * i + 20, np.uint8)).save(folder / f"{i}.png")
    return folder


@pytest.mark.parametrize("spec", ["configs/pretrain/small_vit_tiny.yaml", "small_vit_tiny"])
def test_preview_reads_a_shipped_config_from_another_folder(tmp_path, monkeypatch, spec):
    from geodino import cli
    from geodino.data import preview

    imgs = _chips(tmp_path / "imgs")
    monkeypatch.chdir(tmp_path)  # no configs/ folder here
    seen = {}

    def spy(cfg, out, *, crops=None, in_chans=None, **kw):
        seen.update(cfg=cfg, crops=crops, in_chans=in_chans)
        Path(out).write_bytes(b"\x89PNG\r\n\x1a\n")
        return Path(out)

    monkeypatch.setattr(preview, "write_preview", spy)
    src = f"data.sources=[{{type: images, paths: [{imgs}], sensor: imagenet}}]"
    assert cli.main(["data", "preview", "--config", spec, "--out", "p.png", "--samples", "1", src]) == 0
    # the pretraining config's own sections reached the preview (not a bare data config's defaults)
    assert seen["in_chans"] == 3 and seen["crops"] is not None
    assert seen["cfg"].sources[0].paths == [str(imgs)]


def test_curate_reads_a_shipped_config_from_another_folder(tmp_path, monkeypatch):
    from geodino import cli
    from geodino.data import curate as curate_mod

    monkeypatch.chdir(tmp_path)
    seen = {}

    class Stop(Exception):
        pass

    def spy(cfg, out, **kw):
        seen["config"] = cfg.config
        raise Stop

    monkeypatch.setattr(curate_mod, "curate", spy)
    argv = ["data", "curate", "--config", "configs/pretrain/small_vit_tiny.yaml", "-b", "arch:vit_tiny",
            "--size", "10", "-o", str(tmp_path / "cur")]  # fmt: skip
    with pytest.raises(Stop):
        cli.main(argv)
    assert Path(seen["config"]) == CONFIGS / "pretrain" / "small_vit_tiny.yaml"


def test_a_config_that_is_nowhere_is_still_one_line(tmp_path, monkeypatch, capsys):
    from geodino import cli

    monkeypatch.chdir(tmp_path)
    assert cli.main(["data", "preview", "--config", "configs/pretrain/nope.yaml", "--out", "p.png"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "nope.yaml not found" in err[0]
